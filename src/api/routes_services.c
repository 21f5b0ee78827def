/* routes_services.c — /api/v1/services: status of each service, and the
 * restart and rebuild tasks.
 *
 *	GET  /api/v1/services               {"services": [status, ...]}
 *	GET  /api/v1/services/:name         status (service_status() in service.h); 404 unknown
 *	POST /api/v1/services/:name/restart 202 {"taskId"}; a container whose bind source is gone:
 *	                                    202 {"taskId", "rebuild": true, "reason"} (a rebuild, when no
 *	                                    app work is queued or running) or 409 rebuild_pending
 *	POST /api/v1/services/:name/rebuild 202 {"taskId", "coalesced"}; ?force=1 (or a body {"force": true});
 *	                                    joins a rebuild of the service still queued or waiting
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
#include "tasks/task_enqueue.h"

/* Status calls talk to the engine from an API thread: keep them short. */
#define ENGINE_TIMEOUT_MS 3000

static const struct service_def *find_service(struct api_req *req)
{
	const char *name = req->n_params > 0 ? req->params[0] : "";
	const struct service_def *def = service_find(name);
	if (!def) {
		api_reply_error(req, 404, "not_found", "no service \"%s\"", name);
	} else if (!service_enabled(def, api_config(req))) {
		api_reply_error(req, 404, "not_found", "the %s service is not enabled ([%s] enabled = true)", name, name);
		def = NULL;
	}
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
		if (service_enabled(defs[i], api_config(req)))
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

/* POST .../rebuild: queue one, or join the one already waiting
 * (service_rebuild_queue): 202 {"taskId", "coalesced"}. */
static void rebuild_service(struct api_req *req)
{
	const struct service_def *def = find_service(req);
	if (!def)
		return;
	bool force = false;
	json_t *body = NULL;
	const char *q = api_query(req, "force");
	if (q && !truthy(q) && strcmp(q, "0") != 0 && strcmp(q, "false") != 0 && strcmp(q, "no") != 0) {
		api_reply_error(req, 400, "bad_request", "force must be 1 or 0, not \"%s\"", q);
		return;
	}
	force = truthy(q);
	if (req->body_len > 0) {
		static const char *const fields[] = { "force", NULL };
		body = api_body_object(req);
		if (!body || !api_check_fields(req, body, fields))
			goto out;
		json_t *f = json_object_get(body, "force");
		if (f && !json_is_boolean(f)) {
			api_reply_error(req, 400, "bad_request", "\"force\" must be true or false");
			goto out;
		}
		force = force || json_is_true(f);
	}
	int64_t id;
	bool coalesced;
	struct task_idempotency idem;
	int r = service_rebuild_queue(req->store, api_config(req), def->name, force, api_idempotency(req, &idem), &id,
				      &coalesced);
	if (r < 0) {
		api_reply_store_error(req, r);
		goto out;
	}
	if (!coalesced)
		api_wake(req);
	api_reply_json(req, 202, json_pack("{s:I, s:b}", "taskId", (json_int_t)id, "coalesced", coalesced));
out:
	json_decref(body);
}

/* App tasks queued or active: while there are any, a rebuild would wait for
 * them (they hold service:sftp shared) — and the scheduler queues one as
 * soon as they are over. -errno on a store error. */
static int64_t app_work(struct store *s)
{
	int64_t n = 0;
	int r = task_count_active(s, &(struct task_match){ .app_tasks = true }, &n);
	return r < 0 ? r : n;
}

/* POST .../restart. A container that binds a source gone since (the data
 * dir of a custom-dir app uninstalled; its rebuild is pending until app
 * work is quiet) cannot be restarted: the engine would fail to re-bind it
 * and the service would stay down. Then: with app work quiet, the rebuild
 * is queued now (202 with its task, "rebuild": true, and why); otherwise
 * 409 rebuild_pending naming the source. */
static void restart_service(struct api_req *req)
{
	const struct service_def *def = find_service(req);
	if (!def)
		return;
	if (req->body_len > 0) {
		static const char *const no_fields[] = { NULL };
		json_t *body = api_body_object(req);
		bool ok = body && api_check_fields(req, body, no_fields);
		json_decref(body);
		if (!ok)
			return;
	}
	char missing[800] = "", err[600];
	struct engine *e = NULL;
	int n = 0;
	if (service_engine_open(api_config(req), ENGINE_TIMEOUT_MS, &e, err, sizeof(err)) == 0) {
		n = service_missing_sources(e, def, api_config(req), missing, sizeof(missing));
		engine_close(e);
	}
	/* No engine, no container, an engine error: the task reports it. */
	if (n > 0) {
		int64_t busy = app_work(req->store);
		if (busy < 0) {
			api_reply_store_error(req, (int)busy);
			return;
		}
		if (busy > 0) {
			api_reply_error(req, 409, SERVICE_ERR_REBUILD_PENDING,
					"the %s container binds %s, which no longer exist%s; a restart would fail. A rebuild "
					"drops it and runs once app work is quiet (%lld app task%s queued or running) or at "
					"the latest after [sftp] rebuild_max_delay",
					def->name, missing, n > 1 ? "" : "s", (long long)busy, busy == 1 ? "" : "s");
			return;
		}
		int64_t id;
		bool coalesced;
		struct task_idempotency idem;
		int r = service_rebuild_queue(req->store, api_config(req), def->name, false, api_idempotency(req, &idem),
					      &id, &coalesced);
		if (r < 0) {
			api_reply_store_error(req, r);
			return;
		}
		if (!coalesced)
			api_wake(req);
		char why[1000];
		snprintf(why, sizeof(why), "the %s container binds %s, which no longer exist%s: rebuilt instead of restarted",
			 def->name, missing, n > 1 ? "" : "s");
		api_reply_json(req, 202, json_pack("{s:I, s:b, s:b, s:s}", "taskId", (json_int_t)id, "rebuild", 1,
						   "coalesced", coalesced, "reason", why));
		return;
	}
	json_t *args = json_pack("{s:s}", "name", def->name);
	char *text = args ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(args);
	if (!text) {
		api_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	/* The container is this host's own: only this host restarts it. */
	struct task_enqueue enq = { .type = "service.restart", .args_json = text, .run_on = api_host(req) };
	api_enqueue(req, &enq, NULL);
	free(text);
}

const struct api_route api_routes_services[] = {
	{ "GET", "/api/v1/services", list_services },
	{ "GET", "/api/v1/services/:name", get_service },
	{ "POST", "/api/v1/services/:name/restart", restart_service },
	{ "POST", "/api/v1/services/:name/rebuild", rebuild_service },
	{ NULL, NULL, NULL },
};
