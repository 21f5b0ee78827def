/* enqueue.c — the HTTP side of queueing a task (api-internal.h). The
 * rules of whether a task may be queued live in the module it belongs to
 * (admission hooks, tasks/task_enqueue.h); here only statuses and bodies. */
#include <errno.h>

#include "api-internal.h"
#include "tasks/task_enqueue.h"

int api_enqueue(struct api_req *req, struct task_enqueue *e, json_t *body)
{
	struct task_idempotency idem;
	struct task_enqueued res;
	e->idem = api_idempotency(req, &idem);
	int r = task_enqueue(req->store, api_config(req), e, &res);
	api_reply_enqueued(req, r, &res, body);
	return r;
}

void api_reply_enqueued(struct api_req *req, int r, const struct task_enqueued *res, json_t *body)
{
	if (r < 0 && !res->message[0]) {
		json_decref(body);
		api_reply_store_error(req, r);
		return;
	}
	if (r < 0) {
		json_decref(body);
		unsigned status = r == -ENOENT ? 404 : r == -EINVAL ? 400 : r == -EPERM ? 422 : 409;
		const char *code = res->code ? res->code
				   : r == -ENOENT ? "not_found"
				   : r == -EINVAL ? "bad_request"
				   : r == -EPERM  ? "unprocessable"
						  : "conflict";
		json_t *err = json_pack("{s:s, s:s}", "code", code, "message", res->message);
		if (err && res->id > 0)
			json_object_set_new(err, "taskId", json_integer(res->id));
		api_reply_json(req, status, json_pack("{s:o}", "error", err));
		return;
	}
	if (!res->joined)
		api_wake(req);
	if (!body)
		body = json_object();
	json_object_set_new(body, "taskId", json_integer(res->id));
	api_reply_json(req, 202, body);
}
