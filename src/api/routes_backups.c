/* routes_backups.c — /api/v1/backups, and the app routes that start a
 * backup or a restore. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "apps/app.h"
#include "apps/app_tasks.h"
#include "backups/backup_store.h"
#include "tasks/task.h"

static void list_backups(struct api_req *req)
{
	struct backup_filter f = { .app_id = api_query(req, "appId"), .kind = api_query(req, "kind") };
	if (f.app_id && !*f.app_id)
		f.app_id = NULL;
	if (f.kind && !*f.kind)
		f.kind = NULL;
	if (f.kind && strcmp(f.kind, "app") != 0 && strcmp(f.kind, "box") != 0 && strcmp(f.kind, "full") != 0) {
		api_reply_error(req, 400, "bad_request", "kind must be app, box or full");
		return;
	}
	struct backup *list;
	size_t n;
	int r = backup_list(req->store, &f, &list, &n);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, backup_to_json(&list[i]));
	backup_list_free(list, n);
	api_reply_json(req, 200, json_pack("{s:o}", "backups", arr));
}

static bool no_body(struct api_req *req)
{
	if (req->body_len == 0)
		return true;
	json_t *body = api_body_object(req);
	static const char *const none[] = { NULL };
	bool ok = body && api_check_fields(req, body, none);
	json_decref(body);
	return ok;
}

/* POST /backups/create: one full backup at a time. The check and the
 * insert are one write transaction, so two requests cannot both pass. */
static void create_full(struct api_req *req)
{
	if (!no_body(req))
		return;
	struct store *s = req->store;
	int64_t running = 0, task_id = 0;
	int r = store_begin(s, true);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	r = store_query_int64(s, &running,
			      "SELECT id FROM tasks WHERE type = 'fullbackup' AND state IN ('queued','waiting','running') "
			      "ORDER BY id LIMIT 1",
			      NULL);
	if (r == 0) {
		store_rollback(s);
		api_reply_error(req, 409, "conflict", "a full backup is already running: task %lld", (long long)running);
		return;
	}
	if (r == -ENOENT)
		r = api_task_create(req, s, "fullbackup", NULL, "{}", config_task_timeout_ms(api_config(req), "fullbackup"),
				&task_id);
	if (r >= 0)
		r = store_commit(s);
	else
		store_rollback(s);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	api_wake(req);
	api_reply_json(req, 202, json_pack("{s:I}", "taskId", (json_int_t)task_id));
}

/* Queue an app task (backup, restore) after app_task_check(), in one write
 * transaction, as routes_apps.c does. For a restore, the backup must exist
 * (404) and belong to this app (422). */
static void queue(struct api_req *req, const char *type, json_t *args, int64_t backup_id)
{
	struct store *s = req->store;
	const char *id = req->params[0];
	char msg[512] = "";
	int64_t task_id = 0;
	int r = store_begin(s, true);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	r = app_task_check(s, type, id, msg, sizeof(msg));
	/* A restore of an app that is not installed (any more) installs it
	 * again from the record in its backup (backups.h), checked below. */
	bool reinstall = r == -ENOENT && backup_id > 0;
	if (reinstall)
		r = 0;
	if (r >= 0 && backup_id > 0) {
		struct backup b;
		r = backup_get(s, backup_id, &b);
		if (r == -ENOENT) {
			store_rollback(s);
			api_reply_error(req, 404, "not_found", "no backup %lld", (long long)backup_id);
			return;
		}
		if (r == 0) {
			bool mine = strcmp(b.kind, "app") == 0 && b.app_id && strcmp(b.app_id, id) == 0;
			bool good = strcmp(b.state, "ok") == 0;
			char what[160];
			if (strcmp(b.kind, "app") != 0)
				snprintf(what, sizeof(what), "a %s backup, not an app backup", b.kind);
			else
				snprintf(what, sizeof(what), "a backup of app %s", b.app_id ? b.app_id : "?");
			backup_release(&b);
			if (!mine || !good) {
				store_rollback(s);
				if (!mine)
					api_reply_error(req, 422, "wrong_backup", "backup %lld is %s; it cannot restore app %s",
							(long long)backup_id, what, id);
				else
					api_reply_error(req, 422, "bad_backup", "backup %lld is not complete", (long long)backup_id);
				return;
			}
		}
	}
	char *args_text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	if (r >= 0)
		r = api_task_create(req, s, type, id, args_text, config_task_timeout_ms(api_config(req), type), &task_id);
	free(args_text);
	if (r >= 0 && !reinstall)
		r = app_set_task(s, id, task_id);
	if (r >= 0)
		r = store_commit(s);
	else
		store_rollback(s);
	if (r == -ENOENT)
		api_reply_error(req, 404, "not_found", "%s", msg[0] ? msg : store_errmsg(s));
	else if (r == -EBUSY || r == -EEXIST)
		api_reply_error(req, 409, "conflict", "%s", msg[0] ? msg : store_errmsg(s));
	else if (r < 0)
		api_reply_store_error(req, r);
	else {
		api_wake(req);
		api_reply_json(req, 202, json_pack("{s:s, s:I}", "id", id, "taskId", (json_int_t)task_id));
	}
}

static void backup_app(struct api_req *req)
{
	if (!no_body(req))
		return;
	json_t *args = json_object();
	queue(req, "backup", args, 0);
	json_decref(args);
}

static void restore_app(struct api_req *req)
{
	static const char *const fields[] = { "backupId", NULL };
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields))
		goto out;
	json_t *bid = json_object_get(body, "backupId");
	if (!json_is_integer(bid) || json_integer_value(bid) <= 0) {
		api_reply_error(req, 400, "bad_request", "\"backupId\" must be a positive integer");
		goto out;
	}
	queue(req, "restore", body, json_integer_value(bid));
out:
	json_decref(body);
}

const struct api_route api_routes_backups[] = {
	{ "GET", "/api/v1/backups", list_backups },
	{ "POST", "/api/v1/backups/create", create_full },
	{ "POST", "/api/v1/apps/:id/backup", backup_app },
	{ "POST", "/api/v1/apps/:id/restore", restore_app },
	{ NULL, NULL, NULL },
};
