/* routes_app_run.c — an app's container stopped and started by the
 * operator, as app tasks (apps/app_tasks.h):
 *
 *	POST /api/v1/apps/:id/stop    → 202 {id, taskId}: the app is stopped and
 *	                                stays so (platformstart leaves it) until
 *	POST /api/v1/apps/:id/start   → 202 {id, taskId}
 *
 * No body (or {}). Admitted like the other app tasks (apps/app_admit.h):
 * 404 for an unknown app, 409 when the app is not (or will not be)
 * installed, e.g. while it is being uninstalled. GET /apps/:id shows
 * "stopped" (the operator's flag) beside "runState".
 */
#include "api-internal.h"
#include "apps/app_admit.h"

static void app_run_task(struct api_req *req, const char *type)
{
	if (!api_body_empty(req))
		return;
	struct task_enqueue e;
	apps_enqueue_init(&e, type, req->params[0], NULL, NULL);
	api_enqueue(req, &e, json_pack("{s:s}", "id", req->params[0]));
}

static void start_app(struct api_req *req) { app_run_task(req, "start"); }
static void stop_app(struct api_req *req) { app_run_task(req, "stop"); }

const struct api_route api_routes_app_run[] = {
	{ "POST", "/api/v1/apps/:id/start", start_app },
	{ "POST", "/api/v1/apps/:id/stop", stop_app },
	{ NULL, NULL, NULL },
};
