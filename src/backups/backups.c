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
#include <stdlib.h>
#include <string.h>

#include "backups-internal.h"
#include "locks/locks.h"
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

static int locks_of(const struct task *t, const char *const *names, const enum lock_mode *modes, size_t n,
		    struct lock_req **ret, size_t *ret_n)
{
	struct lock_req *reqs = calloc(n, sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], "app:") == 0)
			snprintf(reqs[i].name, sizeof(reqs[i].name), "app:%s", t->app_id);
		else
			snprintf(reqs[i].name, sizeof(reqs[i].name), "%s", names[i]);
		reqs[i].mode = modes[i];
	}
	*ret = reqs;
	*ret_n = n;
	return 0;
}

static int fullbackup_locks(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)args;
	static const char *const names[] = { "type:fullbackup", "platform" };
	static const enum lock_mode modes[] = { LOCK_EXCLUSIVE, LOCK_SHARED };
	return locks_of(t, names, modes, 2, ret, ret_n);
}

static int backup_locks(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)args;
	if (!t->app_id)
		return -EINVAL;
	static const char *const names[] = { "app:", "platform" };
	static const enum lock_mode modes[] = { LOCK_EXCLUSIVE, LOCK_SHARED };
	return locks_of(t, names, modes, 2, ret, ret_n);
}

/* A restore replaces a data dir: service:sftp shared, like the app tasks
 * that create, move or delete one (app_tasks.h). */
static int restore_locks(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)args;
	if (!t->app_id)
		return -EINVAL;
	static const char *const names[] = { "app:", "platform", "service:sftp" };
	static const enum lock_mode modes[] = { LOCK_EXCLUSIVE, LOCK_SHARED, LOCK_SHARED };
	return locks_of(t, names, modes, 3, ret, ret_n);
}

static const struct task_type backup_types[] = {
	{ .name = "fullbackup", .locks = fullbackup_locks, .run = backups_run_fullbackup },
	{ .name = "backup", .app_task = true, .locks = backup_locks, .run = backups_run_backup },
	{ .name = "restore", .app_task = true, .validate = restore_validate, .locks = restore_locks, .run = backups_run_restore },
};

void backups_register_task_types(void)
{
	for (size_t i = 0; i < sizeof(backup_types) / sizeof(backup_types[0]); i++)
		task_type_register(&backup_types[i]);
	/* An uninstall keeps a final backup of the app (app_tasks.h). */
	backups_set_final_backup();
}
