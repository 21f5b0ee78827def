/* service_tasks.c — the task types `service.rebuild` and `service.restart`.
 *
 * args: {"name": "sftp", "force": false}   ("force": rebuild only)
 * locks: service:<name> exclusive — app tasks that create, move or delete
 * data dirs hold it shared, so no data dir changes while the bind sources
 * are checked and the container is created.
 *
 * Results:
 *	service.rebuild  {"rebuilt": bool, "containerId", "previousContainerId",
 *	                  "reason", "specHash", "seconds", "downtimeMs" (old
 *	                  container stopped → new one answering; null if none
 *	                  ran), "warning" (only when there is one)}
 *	service.restart  {"restarted": true, "containerId", "seconds"}, or, when
 *	                  a source of the container was gone and it was rebuilt
 *	                  instead, the rebuild's result with "restarted": false
 *	                  and "rebuiltInstead" (why)
 * Errors: the codes of service.h (engine_unavailable when no engine
 * answers, missing_source, image_missing, not_created, unhealthy, ...).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"
#include "common/timeutil.h"
#include "service.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"

static int validate(json_t *args, bool rebuild, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v) {
		if (strcmp(key, "name") != 0 && (!rebuild || strcmp(key, "force") != 0)) {
			snprintf(err, errlen, "unknown argument \"%s\" (expected \"name\"%s)", key,
				 rebuild ? " and \"force\"" : "");
			return -EINVAL;
		}
	}
	json_t *name = json_object_get(args, "name"), *force = json_object_get(args, "force");
	if (!json_is_string(name)) {
		snprintf(err, errlen, "\"name\" must be the name of a service, e.g. \"sftp\"");
		return -EINVAL;
	}
	if (!service_find(json_string_value(name))) {
		snprintf(err, errlen, "no service \"%s\"", json_string_value(name));
		return -EINVAL;
	}
	if (force && !json_is_boolean(force)) {
		snprintf(err, errlen, "\"force\" must be true or false");
		return -EINVAL;
	}
	return 0;
}

static int validate_rebuild(json_t *args, char *err, size_t errlen) { return validate(args, true, err, errlen); }
static int validate_restart(json_t *args, char *err, size_t errlen) { return validate(args, false, err, errlen); }

static void on_progress(void *userdata, int percent, const char *message)
{
	struct task_ctx *ctx = userdata;
	task_ctx_progress(ctx, percent, "%s", message);
	printf("%s\n", message);
	fflush(stdout);
}

/* Open the engine or fail the task with engine_unavailable. */
static int open_engine(struct task_ctx *ctx, struct engine **ret)
{
	char err[600];
	int r = service_engine_open(ctx->config, 0, ret, err, sizeof(err));
	if (r < 0)
		return task_ctx_fail(ctx, r, SERVICE_ERR_ENGINE_UNAVAILABLE, "no container engine answers: %s", err);
	return 0;
}

static json_t *rebuild_result(const struct service_rebuild_result *res, double secs)
{
	json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:f}", "rebuilt", res->rebuilt, "containerId", res->container_id,
			      "reason", res->reason, "specHash", res->spec_hash, "seconds", secs);
	json_object_set_new(o, "previousContainerId", *res->previous_id ? json_string(res->previous_id) : json_null());
	json_object_set_new(o, "downtimeMs", res->downtime_ms >= 0 ? json_integer(res->downtime_ms) : json_null());
	if (res->warning[0])
		json_object_set_new(o, "warning", json_string(res->warning));
	return o;
}

/* The start of a service task: the service its args name, and the engine
 * (or the task failed). */
static int begin_run(struct task_ctx *ctx, const struct service_def **ret_def, struct engine **ret_e)
{
	/* Set on every path: the compiler cannot see that a failure returns
	 * < 0, and at -O3 warns of a caller's `def` used uninitialized. */
	const struct service_def *def = service_find(json_string_value(json_object_get(ctx->args, "name")));
	*ret_def = def;
	if (!def)
		return task_ctx_fail(ctx, -EINVAL, "bad_task", "unknown service");
	return open_engine(ctx, ret_e);
}

static int run_rebuild(struct task_ctx *ctx)
{
	bool force = json_is_true(json_object_get(ctx->args, "force"));
	const struct service_def *def;
	struct engine *e;
	int r = begin_run(ctx, &def, &e);
	if (r < 0)
		return r;
	int64_t t0 = now_mono_ms();
	struct service_op op = { .cancel = ctx->cancel, .progress = on_progress, .userdata = ctx };
	struct service_rebuild_result res;
	struct service_error err;
	r = service_rebuild(e, def, ctx->config, ctx->store, force, &op, &res, &err);
	engine_close(e);
	if (r == -ECANCELED)
		return r;
	if (r < 0)
		return task_ctx_fail(ctx, r, err.code, "%s", err.message);
	double secs = (double)(now_mono_ms() - t0) / 1000.0;
	printf("%s: %s (%s) in %.3f s", def->name, res.rebuilt ? "rebuilt" : "not rebuilt", res.reason, secs);
	if (res.downtime_ms >= 0)
		printf("; down for %lld ms (old container stopped → new one answering)", (long long)res.downtime_ms);
	printf("\n");
	ctx->result = rebuild_result(&res, secs);
	return 0;
}

/* A restart of a container that binds a source gone since (the rebuild that
 * drops it is pending) is refused by service_restart() before anything is
 * touched. This task holds service:<name> exclusively — no app task is
 * creating or deleting a data dir now — so it does that rebuild itself:
 * the operator asked for the service to come back fresh, and a rebuild is
 * the only way it can. */
static int run_restart(struct task_ctx *ctx)
{
	const struct service_def *def;
	struct engine *e;
	int r = begin_run(ctx, &def, &e);
	if (r < 0)
		return r;
	int64_t t0 = now_mono_ms();
	struct service_op op = { .cancel = ctx->cancel, .progress = on_progress, .userdata = ctx };
	struct service_error err;
	char id[ENGINE_ID_MAX];
	r = service_restart(e, def, ctx->config, ctx->store, &op, id, &err);
	if (r < 0 && strcmp(err.code, SERVICE_ERR_REBUILD_PENDING) == 0) {
		printf("%s\nrebuilding instead\n", err.message);
		task_ctx_progress(ctx, 30, "A source of the %s container is gone: rebuilding instead of restarting",
				  def->name);
		struct service_rebuild_result res;
		struct service_error rerr;
		char why[sizeof(err.message)];
		snprintf(why, sizeof(why), "%s", err.message);
		r = service_rebuild(e, def, ctx->config, ctx->store, false, &op, &res, &rerr);
		engine_close(e);
		if (r == -ECANCELED)
			return r;
		if (r < 0)
			return task_ctx_fail(ctx, r, rerr.code, "%s; the rebuild instead failed too: %s", why, rerr.message);
		double secs = (double)(now_mono_ms() - t0) / 1000.0;
		ctx->result = rebuild_result(&res, secs);
		json_object_set_new(ctx->result, "restarted", json_false());
		json_object_set_new(ctx->result, "rebuiltInstead", json_string(why));
		return 0;
	}
	engine_close(e);
	if (r == -ECANCELED)
		return r;
	if (r < 0)
		return task_ctx_fail(ctx, r, err.code, "%s", err.message);
	double secs = (double)(now_mono_ms() - t0) / 1000.0;
	printf("%s: restarted in %.3f s\n", def->name, secs);
	ctx->result = json_pack("{s:b, s:s, s:f}", "restarted", 1, "containerId", id, "seconds", secs);
	return 0;
}

/* ---- queueing ---------------------------------------------------------------- */

struct rebuild_request {
	const char *name;
	bool force;
	char host[HOST_ID_MAX + 1]; /* this host: each host rebuilds its own */
};

/* A rebuild at least as strong as the one asked for (forced, or this one
 * is not) of the same service. */
static bool rebuild_covers(const struct task *t, void *userdata)
{
	const struct rebuild_request *want = userdata;
	json_t *args = json_loads(t->args ? t->args : "", 0, NULL);
	const char *n = json_string_value(json_object_get(args, "name"));
	bool ok = n && strcmp(n, want->name) == 0 && (json_is_true(json_object_get(args, "force")) || !want->force);
	json_decref(args);
	return ok;
}

/* Join a rebuild of this host's container that is queued, or waiting for
 * service:<name>:<host> (its worker has not built a spec yet). A running
 * one may have read the spec before the change that prompts this request. */
static int admit_rebuild(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	return task_admit_join(s,
			       &(struct task_match){ .type = "service.rebuild", .run_on = e->run_on, .not_started = true,
						     .accept = rebuild_covers, .userdata = e->userdata },
			       ret);
}

static int rebuild_enqueue_init(struct task_enqueue *e, const char *name, bool force)
{
	struct rebuild_request *want = malloc(sizeof(*want));
	json_t *args = json_pack("{s:b, s:s}", "force", force, "name", name);
	char *text = args ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(args);
	if (!want || !text) {
		free(want);
		free(text);
		return -ENOMEM;
	}
	*want = (struct rebuild_request){ .name = name, .force = force };
	int r = host_id_get(want->host, sizeof(want->host));
	if (r < 0) {
		free(want);
		free(text);
		return r;
	}
	/* A service container is the host's own (service:<name>:<host>): only
	 * this host may run its rebuild. */
	*e = (struct task_enqueue){ .type = "service.rebuild", .args_json = text, .admit = admit_rebuild,
				    .userdata = want, .run_on = want->host };
	return 0;
}

static void rebuild_enqueue_release(struct task_enqueue *e)
{
	free((char *)e->args_json);
	free(e->userdata);
	e->args_json = NULL;
	e->userdata = NULL;
}

int service_rebuild_queue(struct store *s, const struct boxd_config *cfg, const char *name, bool force,
			  const struct task_idempotency *idem, int64_t *ret_id, bool *ret_coalesced)
{
	struct task_enqueue e;
	int r = rebuild_enqueue_init(&e, name, force);
	if (r < 0)
		return r;
	e.idem = idem;
	struct task_enqueued out;
	r = task_enqueue(s, cfg, &e, &out);
	rebuild_enqueue_release(&e);
	if (r < 0)
		return r;
	*ret_id = out.id;
	*ret_coalesced = out.joined;
	return 0;
}

static const struct task_type rebuild_type = {
	.name = "service.rebuild",
	.validate = validate_rebuild,
	.locks = { { "service:%s:%h", LOCK_EXCLUSIVE, .arg = "name" } },
	.run = run_rebuild,
};

static const struct task_type restart_type = {
	.name = "service.restart",
	.validate = validate_restart,
	.locks = { { "service:%s:%h", LOCK_EXCLUSIVE, .arg = "name" } },
	.run = run_restart,
};

void services_register_task_types(void)
{
	task_type_register(&rebuild_type);
	task_type_register(&restart_type);
}
