/* routes_backups.c — /api/v1/backups, and the app routes that start a
 * backup or a restore. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "apps/app.h"
#include "apps/app_admit.h"
#include "backups/backup_admit.h"
#include "backups/backup_store.h"
#include "tasks/task_enqueue.h"

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

/* POST /backups/create: one full backup at a time (backups_admit_full()). */
static void create_full(struct api_req *req)
{
	if (!api_body_empty(req))
		return;
	/* This host's: a full backup covers the apps of the host that runs it. */
	struct task_enqueue e = { .type = "fullbackup", .admit = backups_admit_full, .run_on = api_host(req) };
	api_enqueue(req, &e, NULL);
}

/* Queue an app task (backup, restore) under the app's rules; a restore
 * also under the backup's (backups_admit_restore()). */
static void queue(struct api_req *req, const char *type, json_t *args)
{
	const char *id = req->params[0];
	char *args_text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	if (!args_text) {
		api_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	struct task_enqueue e;
	apps_enqueue_init(&e, type, id, args_text, NULL);
	if (strcmp(type, "restore") == 0) {
		e.admit = backups_admit_restore;
		e.created = backups_restore_created;
	}
	api_enqueue(req, &e, json_pack("{s:s}", "id", id));
	free(args_text);
}

static void backup_app(struct api_req *req)
{
	if (!api_body_empty(req))
		return;
	json_t *args = json_object();
	queue(req, "backup", args);
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
	queue(req, "restore", body);
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
