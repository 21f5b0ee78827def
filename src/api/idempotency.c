/* idempotency.c — the Idempotency-Key header on POSTs that create a task.
 *
 * A client that sent a POST and got no answer (the connection broke, the
 * daemon was killed) cannot know whether its task was created. Sent again
 * with the same Idempotency-Key, the request gets the answer of the first
 * one (202 with the same task id) instead of a second task.
 *
 * The key is stored in the task's row by the INSERT that creates the task
 * (task_create_idempotent()), so a task and its key exist together or not
 * at all: there is no window in which the task exists and a retry would not
 * find it. A key names its task for 24 hours. The request's fingerprint
 * (SHA-256 of method, path and body) is stored with it: the same key with
 * a different request is refused (422), as it is most likely a client bug.
 * Two requests with the same key at the same time: the second INSERT hits
 * the unique index and is answered 409; sent again, it gets the task.
 *
 * Only POSTs that create a task use the key; other POSTs ignore it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "common/sha256.h"
#include "common/timeutil.h"
#include "tasks/task.h"

#define IDEMPOTENCY_WINDOW_MS (24LL * 3600 * 1000)
#define IDEMPOTENCY_KEY_MAX 255

static bool key_valid(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > IDEMPOTENCY_KEY_MAX)
		return false;
	for (const char *p = k; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

static int fingerprint(const struct api_req *req, char out[65])
{
	struct sha256 h;
	uint8_t digest[SHA256_BYTES];
	int r = sha256_init(&h);
	if (r < 0)
		return r;
	/* Each part with its NUL, so that parts cannot slide into each other. */
	if ((r = sha256_update(&h, req->method, strlen(req->method) + 1)) < 0 ||
	    (r = sha256_update(&h, req->url, strlen(req->url) + 1)) < 0 ||
	    (r = sha256_update(&h, req->body, req->body_len)) < 0 || (r = sha256_final(&h, digest)) < 0) {
		sha256_release(&h);
		return r;
	}
	hex_encode(digest, sizeof(digest), out);
	return 0;
}

/* The answer of the request that created the task: every task-creating
 * route answers 202 {"taskId"}, and the app routes also name the app. */
static void replay(struct api_req *req, int64_t task_id, const char *app_id)
{
	json_t *body = json_pack("{s:I}", "taskId", (json_int_t)task_id);
	if (app_id && strncmp(req->url, "/api/v1/apps", 12) == 0)
		json_object_set_new(body, "id", json_string(app_id));
	api_reply_json(req, 202, body);
}

bool api_idempotency_begin(struct api_req *req)
{
	req->idem_key[0] = '\0';
	if (strcmp(req->method, "POST") != 0)
		return false;
	const char *key = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Idempotency-Key");
	if (!key)
		return false;
	if (!key_valid(key)) {
		api_reply_error(req, 400, "bad_idempotency_key",
				"Idempotency-Key must be 1 to %d visible ASCII characters", IDEMPOTENCY_KEY_MAX);
		return true;
	}
	char fp[65];
	if (fingerprint(req, fp) < 0) {
		api_reply_error(req, 500, "internal", "cannot hash the request");
		return true;
	}
	int64_t id = 0;
	char stored_fp[80];
	char *app_id = NULL;
	int r = task_find_idempotent(req->store, key, now_wall_ms() - IDEMPOTENCY_WINDOW_MS, &id, stored_fp,
				     sizeof(stored_fp), &app_id);
	if (r == -ENOENT) {
		snprintf(req->idem_key, sizeof(req->idem_key), "%s", key);
		memcpy(req->idem_fp, fp, sizeof(fp));
		return false;
	}
	if (r < 0) {
		api_reply_store_error(req, r);
		return true;
	}
	if (strcmp(stored_fp, fp) != 0)
		api_reply_error(req, 422, "idempotency_key_reused",
				"Idempotency-Key \"%s\" was used for a different request (it created task %lld)", key,
				(long long)id);
	else
		replay(req, id, app_id);
	free(app_id);
	return true;
}

const struct task_idempotency *api_idempotency(struct api_req *req, struct task_idempotency *buf)
{
	if (!req->idem_key[0])
		return NULL;
	*buf = (struct task_idempotency){ .key = req->idem_key, .fingerprint = req->idem_fp,
					  .not_before_ms = now_wall_ms() - IDEMPOTENCY_WINDOW_MS };
	return buf;
}
