/* routes_update.c — /api/v1/updater: start a platform update. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api-internal.h"
#include "tasks/task_enqueue.h"
#include "update/update.h"

/* POST /api/v1/updater/update {"package": path, "sha256": hex, "skipBackup": bool}
 * → 202 {taskId}; 400 bad input; 404 no such package; 409 an update is
 * already queued or running (its id in error.taskId): update_admit(). */
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
	char *args = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!args) {
		api_reply_error(req, 500, "internal", "out of memory");
		goto out;
	}
	struct task_enqueue e = { .type = "platformupdate", .args_json = args, .admit = update_admit };
	api_enqueue(req, &e, NULL);
	free(args);
out:
	json_decref(body);
}

const struct api_route api_routes_update[] = {
	{ "POST", "/api/v1/updater/update", post_update },
	{ NULL, NULL, NULL },
};
