/* routes_services.c — /api/v1/services: status of each service, and the
 * restart and rebuild tasks.
 *
 *	GET  /api/v1/services               {"services": [status, ...]}
 *	GET  /api/v1/services/:name         status (service_status() in service.h); 404 unknown
 *	POST /api/v1/services/:name/restart 202 {"taskId"}
 *	POST /api/v1/services/:name/rebuild 202 {"taskId"}; ?force=1 (or a body {"force": true})
 *
 * The GETs answer also when no engine is reachable: running:false and an
 * "error" saying why. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "services/service.h"
#include "tasks/task.h"

/* Status calls talk to the engine from an API thread: keep them short. */
#define ENGINE_TIMEOUT_MS 3000

static const struct service_def *find_service(struct api_req *req)
{
	const char *name = req->n_params > 0 ? req->params[0] : "";
	const struct service_def *def = service_find(name);
	if (!def)
		api_reply_error(req, 404, "not_found", "no service \"%s\"", name);
	return def;
}

static void list_services(struct api_req *req)
{
	struct engine *e = NULL;
	char err[600] = "";
	if (service_engine_open(api_config(req), ENGINE_TIMEOUT_MS, &e, err, sizeof(err)) < 0)
		e = NULL;
	size_t n;
	const struct service_def *const *defs = service_list(&n);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, service_status(e, err, defs[i], api_config(req), req->store));
	engine_close(e);
	api_reply_json(req, 200, json_pack("{s:o}", "services", arr));
}

static void get_service(struct api_req *req)
{
	const struct service_def *def = find_service(req);
	if (!def)
		return;
	struct engine *e = NULL;
	char err[600] = "";
	if (service_engine_open(api_config(req), ENGINE_TIMEOUT_MS, &e, err, sizeof(err)) < 0)
		e = NULL;
	json_t *st = service_status(e, err, def, api_config(req), req->store);
	engine_close(e);
	if (!st) {
		api_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	api_reply_json(req, 200, st);
}

static bool truthy(const char *v)
{
	/* A bare "?force" counts as yes. */
	return v && (!*v || strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

static void start_task(struct api_req *req, const char *type, bool rebuild)
{
	const struct service_def *def = find_service(req);
	if (!def)
		return;
	bool force = false;
	json_t *body = NULL;
	if (rebuild) {
		const char *q = api_query(req, "force");
		if (q && !truthy(q) && strcmp(q, "0") != 0 && strcmp(q, "false") != 0 && strcmp(q, "no") != 0) {
			api_reply_error(req, 400, "bad_request", "force must be 1 or 0, not \"%s\"", q);
			return;
		}
		force = truthy(q);
	}
	if (req->body_len > 0) {
		static const char *const rebuild_fields[] = { "force", NULL };
		static const char *const no_fields[] = { NULL };
		body = api_body_object(req);
		if (!body || !api_check_fields(req, body, rebuild ? rebuild_fields : no_fields))
			goto out;
		json_t *f = json_object_get(body, "force");
		if (f && !json_is_boolean(f)) {
			api_reply_error(req, 400, "bad_request", "\"force\" must be true or false");
			goto out;
		}
		force = force || json_is_true(f);
	}
	json_t *args = json_pack("{s:s}", "name", def->name);
	if (rebuild)
		json_object_set_new(args, "force", json_boolean(force));
	char *args_text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(args);
	int64_t id;
	int r = args_text ? api_task_create(req, req->store, type, NULL, args_text, config_task_timeout_ms(api_config(req), type),
					&id)
			  : -ENOMEM;
	free(args_text);
	if (r < 0) {
		api_reply_store_error(req, r);
		goto out;
	}
	api_wake(req);
	api_reply_json(req, 202, json_pack("{s:I}", "taskId", (json_int_t)id));
out:
	json_decref(body);
}

static void restart_service(struct api_req *req) { start_task(req, "service.restart", false); }
static void rebuild_service(struct api_req *req) { start_task(req, "service.rebuild", true); }

const struct api_route api_routes_services[] = {
	{ "GET", "/api/v1/services", list_services },
	{ "GET", "/api/v1/services/:name", get_service },
	{ "POST", "/api/v1/services/:name/restart", restart_service },
	{ "POST", "/api/v1/services/:name/rebuild", rebuild_service },
	{ NULL, NULL, NULL },
};
