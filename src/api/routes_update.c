/* routes_update.c — /api/v1/updater: start a platform update. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api-internal.h"
#include "tasks/task.h"
#include "update/update.h"

/* POST /api/v1/updater/update {"package": path, "sha256": hex, "skipBackup": bool}
 * → 202 {taskId}; 400 bad input; 404 no such package; 409 an update is
 * already queued or running (its id in error.taskId). The check and the
 * insert run in one write transaction, so two requests cannot both pass. */
static void post_update(struct api_req *req)
{
	json_t *body = api_body_object(req);
	if (!body)
		return;
	char err[512];
	if (update_args_validate(body, err, sizeof(err)) < 0) {
		api_reply_error(req, 400, "bad_request", "%s", err);
		goto out;
	}
	const char *package = json_string_value(json_object_get(body, "package"));
	struct stat st;
	if (stat(package, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			api_reply_error(req, 404, "not_found", "no update package at %s", package);
		else
			api_reply_error(req, 400, "bad_request", "cannot read %s: %s", package, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		api_reply_error(req, 400, "bad_request", "%s is not a file", package);
		goto out;
	}
	struct store *s = req->store;
	int r = store_begin(s, true);
	if (r < 0) {
		api_reply_store_error(req, r);
		goto out;
	}
	int64_t active = 0, id = 0;
	char state[32] = "";
	r = update_find_active(s, &active, state, sizeof(state));
	if (r == 1) {
		store_rollback(s);
		char msg[200];
		snprintf(msg, sizeof(msg), "an update is already %s: task %lld", state, (long long)active);
		api_reply_json(req, 409, json_pack("{s:{s:s, s:s, s:I}}", "error", "code", "conflict", "message", msg,
						   "taskId", (json_int_t)active));
		goto out;
	}
	char *args = r == 0 ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (r == 0)
		r = args ? api_task_create(req, s, "platformupdate", NULL, args,
					      config_task_timeout_ms(api_config(req), "platformupdate"), &id)
			 : -ENOMEM;
	free(args);
	if (r >= 0)
		r = store_commit(s);
	else
		store_rollback(s);
	if (r < 0) {
		api_reply_store_error(req, r);
		goto out;
	}
	api_wake(req);
	api_reply_json(req, 202, json_pack("{s:I}", "taskId", (json_int_t)id));
out:
	json_decref(body);
}

const struct api_route api_routes_update[] = {
	{ "POST", "/api/v1/updater/update", post_update },
	{ NULL, NULL, NULL },
};
