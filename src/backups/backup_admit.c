/* backup_admit.c — see backup_admit.h. */
#include "backup_admit.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "apps/app_admit.h"
#include "backup_store.h"
#include "tasks/task.h"

int backups_admit_full(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	/* One at a time per host: each host backs up the apps it runs. */
	struct task t;
	int r = task_find_active(s, &(struct task_match){ .type = "fullbackup", .run_on = e->run_on }, &t);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	ret->id = t.id;
	snprintf(ret->message, sizeof(ret->message), "a full backup is already running: task %lld", (long long)t.id);
	task_release(&t);
	return -EEXIST;
}

int backups_admit_restore(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	int r = apps_admit(s, e, ret);
	/* A restore of an app that is not installed (any more) installs it
	 * again from the record in its backup (backups.h), checked below. */
	if (r == -ENOENT) {
		ret->message[0] = '\0';
		r = 0;
	}
	if (r < 0)
		return r;
	json_t *args = json_loads(e->args_json ? e->args_json : "{}", 0, NULL);
	json_int_t backup_id = json_integer_value(json_object_get(args, "backupId"));
	json_decref(args);
	struct backup b;
	r = backup_get(s, backup_id, &b);
	if (r == -ENOENT) {
		snprintf(ret->message, sizeof(ret->message), "no backup %lld", (long long)backup_id);
		return r;
	}
	if (r < 0)
		return r;
	bool mine = strcmp(b.kind, "app") == 0 && b.app_id && strcmp(b.app_id, e->app_id) == 0;
	bool good = strcmp(b.state, "ok") == 0;
	if (!mine && strcmp(b.kind, "app") != 0)
		snprintf(ret->message, sizeof(ret->message),
			 "backup %lld is a %s backup, not an app backup; it cannot restore app %s",
			 (long long)backup_id, b.kind, e->app_id);
	else if (!mine)
		snprintf(ret->message, sizeof(ret->message), "backup %lld is a backup of app %s; it cannot restore app %s",
			 (long long)backup_id, b.app_id ? b.app_id : "?", e->app_id);
	else if (!good)
		snprintf(ret->message, sizeof(ret->message), "backup %lld is not complete", (long long)backup_id);
	backup_release(&b);
	if (mine && good)
		return 0;
	ret->code = mine ? "bad_backup" : "wrong_backup";
	return -EPERM;
}

int backups_restore_created(struct store *s, const struct task_enqueue *e, int64_t id)
{
	int r = apps_task_created(s, e, id);
	return r == -ENOENT ? 0 : r; /* a reinstall: no row yet */
}
