/* backups.c — the fullbackup, backup and restore task types: their
 * arguments, their locks, and their registration (see backups.h). The work
 * is in backups_full.c, backups_archive.c (app backup) and
 * backups_restore.c.
 *
 * Files in the backup dir (config [backups] dir):
 *   box-<UTC stamp>-t<task>.tar.zst        the box state (box_state.h)
 *   app-<app>-<UTC stamp>-t<task>.tar.zst  one app's data dir
 *   <archive>.json                         its metadata (the row, as JSON)
 *   full-<UTC stamp>-t<task>.json          a full backup's manifest
 * Each written with the temp/fsync/rename/fsync-dir sequence (tarball.h).
 * A row in `backups` is inserted only once its archive is durable, so a
 * row in state ok always names a complete file.
 */
#include "backups.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "app_move.h"
#include "backups-internal.h"
#include "tasks/task.h"
#include "tasks/task_type.h"

/* ---- types ------------------------------------------------------------------------------------ */

static int restore_validate(json_t *args, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v) {
		if (strcmp(key, "backupId") != 0) {
			snprintf(err, errlen, "restore: unknown argument \"%s\" (expected \"backupId\")", key);
			return -EINVAL;
		}
	}
	json_t *id = json_object_get(args, "backupId");
	if (!json_is_integer(id) || json_integer_value(id) <= 0) {
		snprintf(err, errlen, "restore: \"backupId\" must be a positive integer");
		return -EINVAL;
	}
	return 0;
}

/* A full backup: one at a time, `platform` shared for its whole run (an
 * update's apply waits for it, deferring meanwhile: lock_doc.h), and each
 * app's lock while it archives that app (backups_full.c). An app backup
 * like an app task; a restore replaces a data dir: service:sftp shared,
 * like the app tasks that create, move or delete one (app_tasks.h). */
static const struct task_type backup_types[] = {
	{ .name = "fullbackup",
	  .locks = { { "type:fullbackup:%h", LOCK_EXCLUSIVE }, { "platform:%h", LOCK_SHARED },
		     { "app:%s", LOCK_EXCLUSIVE, .later = true } },
	  .run = backups_run_fullbackup },
	{ .name = "backup", .app_task = true,
	  .locks = { { "app:%s", LOCK_EXCLUSIVE }, { "platform:%h", LOCK_SHARED } },
	  .run = backups_run_backup },
	{ .name = "restore", .app_task = true, .validate = restore_validate,
	  .locks = { { "app:%s", LOCK_EXCLUSIVE }, { "platform:%h", LOCK_SHARED }, { "service:sftp:%h", LOCK_SHARED } },
	  .run = backups_run_restore },
};

void backups_register_task_types(void)
{
	for (size_t i = 0; i < sizeof(backup_types) / sizeof(backup_types[0]); i++)
		task_type_register(&backup_types[i]);
	/* An uninstall keeps a final backup of the app (app_tasks.h). */
	backups_set_final_backup();
	/* A move to another host: a backup and a restore (app_move.h). */
	app_move_register_task_types();
}
