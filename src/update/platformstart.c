/* platformstart.c — the `platformstart` task type (see update.h) and the
 * daemon's side of it (platformstart.h). */
#include "platformstart.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps/app.h"
#include "apps/app_bind.h"
#include "apps/app_tasks.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "locks/locks.h"
#include "services/mounts.h"
#include "services/service.h"
#include "services/proxy.h"
#include "services/sftp.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"
#include "update.h"

#define WAIT_POLL_US 2000

/* ---- the daemon's side ---------------------------------------------------------- */

/* One platformstart per host at a time: a start finds its host's own
 * still active (a re-exec) and joins it. */
static int admit_platformstart(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	return task_admit_join(s, &(struct task_match){ .type = "platformstart", .host = e->claim_host }, ret);
}

int platformstart_queue(struct store *s, const struct boxd_config *cfg, const char *host, int64_t *ret_id,
			bool *ret_created)
{
	/* Created and claimed for this host in one transaction: another
	 * host's scheduler never sees it unclaimed. */
	struct task_enqueue e = { .type = "platformstart", .claim_host = host, .admit = admit_platformstart };
	struct task_enqueued out;
	int r = task_enqueue(s, cfg, &e, &out);
	if (r < 0)
		return r;
	*ret_id = out.id;
	*ret_created = !out.joined;
	return 0;
}

int platformstart_spawn(struct store *s, struct supervisor *sv, int64_t id)
{
	struct task t;
	int r = task_get(s, id, &t);
	if (r < 0)
		return r;
	r = supervisor_spawn(sv, &t);
	task_release(&t);
	return r;
}

int platformstart_wait_queued(struct store *lock_store, struct store *store, int64_t id, int64_t timeout_ms)
{
	int64_t until = now_mono_ms() + timeout_ms, next_state_check = 0;
	char platform[LOCK_NAME_MAX];
	int r0 = task_host_lock_name("platform", platform, sizeof(platform));
	if (r0 < 0)
		return r0;
	for (;;) {
		struct lock_doc doc;
		int r = locks_read(lock_store, &doc, NULL, NULL);
		if (r < 0)
			return r;
		bool done = lock_doc_task_in_line(&doc, id, platform);
		lock_doc_release(&doc);
		if (done)
			return 0;
		int64_t now = now_mono_ms();
		if (now >= next_state_check) {
			/* A worker that failed to start never takes a ticket. */
			struct task t;
			if (task_get(store, id, &t) == 0) {
				done = task_state_is_final(t.state);
				task_release(&t);
				if (done)
					return 0;
			}
			next_state_check = now + 50;
		}
		if (now >= until)
			return -ETIMEDOUT;
		sleep_us(WAIT_POLL_US);
	}
}

/* ---- the task --------------------------------------------------------------------- */

struct ps_run {
	struct task_ctx *ctx;
	char code[64];           /* of the first problem */
	char problems[2048];     /* "; "-separated, for the error message */
	json_t *started, *recreated, *running, *skipped, *failed, *stopped;
};

static void problem(struct ps_run *ps, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(struct ps_run *ps, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("platformstart: %s", msg);
	if (!ps->code[0])
		snprintf(ps->code, sizeof(ps->code), "%s", code);
	size_t used = strlen(ps->problems);
	snprintf(ps->problems + used, sizeof(ps->problems) - used, "%s%s", used ? "; " : "", msg);
}

static void sftp_progress(void *userdata, int percent, const char *message)
{
	struct task_ctx *ctx = userdata;
	task_ctx_progress(ctx, 20 + percent * 25 / 100, "sftp: %s", message);
}

static void proxy_progress(void *userdata, int percent, const char *message)
{
	struct task_ctx *ctx = userdata;
	task_ctx_progress(ctx, 90 + percent * 9 / 100, "proxy: %s", message);
}

/* A service: rebuilt only when its spec hash differs. */
static int ensure_service(struct ps_run *ps, struct engine *e, const struct service_def *def,
			  void (*progress)(void *, int, const char *), json_t *result)
{
	struct task_ctx *ctx = ps->ctx;
	struct service_op op = { .cancel = ctx->cancel, .progress = progress, .userdata = ctx };
	struct service_rebuild_result res;
	struct service_error serr;
	int r = service_rebuild(e, def, ctx->config, ctx->store, false, &op, &res, &serr);
	if (r == -ECANCELED)
		return r;
	if (r < 0) {
		problem(ps, serr.code, "%s: %s", def->name, serr.message);
		json_object_set_new(result, def->name,
				    json_pack("{s:s, s:s}", "error", serr.code, "message", serr.message));
		return 0;
	}
	log_info("platformstart: %s %s (%s)", def->name, res.rebuilt ? "rebuilt" : "up to date", res.reason);
	json_object_set_new(result, def->name, json_pack("{s:b, s:s, s:s}", "rebuilt", res.rebuilt, "reason",
							 res.reason, "containerId", res.container_id));
	return 0;
}

static int ensure_sftp(struct ps_run *ps, struct engine *e, json_t *result)
{
	task_ctx_progress(ps->ctx, 20, "Bringing the sftp service to its spec");
	return ensure_service(ps, e, &sftp_service, sftp_progress, result);
}

/* The proxy, when enabled: after the apps, whose addresses its routes
 * name (its start, or the rebuild that finds it unchanged, loads them). */
static int ensure_proxy(struct ps_run *ps, struct engine *e, json_t *result)
{
	if (!ps->ctx->config->proxy.enabled)
		return 0;
	task_ctx_progress(ps->ctx, 90, "Bringing the proxy service to its spec");
	return ensure_service(ps, e, &proxy_service, proxy_progress, result);
}

/* An app the operator stopped (app.h) stays stopped: its container is
 * stopped if something started it meanwhile, never recreated. */
static void keep_stopped(struct ps_run *ps, struct engine *e, const struct app *a, const char *name)
{
	struct task_ctx *ctx = ps->ctx;
	int r = engine_container_stop(e, name, -1);
	if (r < 0 && r != -ENOENT) {
		problem(ps, "engine_error", "app %s: stopped by the operator, but its container cannot be stopped: %s",
			a->id, engine_errmsg(e));
		json_array_append_new(ps->failed, json_string(a->id));
		return;
	}
	if (r == 0)
		log_info("platformstart: stopped %s (the app is stopped by the operator)", name);
	if (!a->run_state || strcmp(a->run_state, "stopped") != 0)
		app_set(ctx->store, a->id, "run_state", "stopped");
	json_array_append_new(ps->stopped, json_string(a->id));
}

/* One installed app: stopped by the operator → it stays so; running →
 * nothing; stopped → start; removed → recreate (only over an existing data
 * dir). */
static void ensure_app(struct ps_run *ps, struct engine *e, const struct app *a)
{
	struct task_ctx *ctx = ps->ctx;
	char name[APP_ID_MAX + 8];
	snprintf(name, sizeof(name), "app-%s", a->id);
	if (a->stopped) {
		keep_stopped(ps, e, a, name);
		return;
	}
	struct engine_container c = { 0 };
	int r = engine_container_inspect(e, name, &c);
	if (r == 0) {
		bool running = c.running;
		engine_container_release(&c);
		char *dir = NULL, err[512];
		if (app_data_dir_checked(ctx->config, a, &dir, err, sizeof(err)) < 0) {
			/* Not one boxd may hand to the engine: stop it if it runs. */
			if (running)
				engine_container_stop(e, name, 0);
			app_set(ctx->store, a->id, "run_state", "stopped");
			problem(ps, "bad_path", "app %s: %s; its container is not started", a->id, err);
			json_array_append_new(ps->failed, json_string(a->id));
			return;
		}
		if (running) {
			/* Started while boxd was down (by the engine's restart
			 * policy, say): check what it got. */
			r = a->has_data_id ? app_bind_check_started(ctx, e, a->id, dir, name, &a->data_id) : 0;
			free(dir);
			if (r < 0) {
				problem(ps, ctx->error_code, "app %s: %s", a->id, ctx->error_message);
				ctx->error_code[0] = ctx->error_message[0] = '\0';
				json_array_append_new(ps->failed, json_string(a->id));
				return;
			}
			json_array_append_new(ps->running, json_string(a->id));
			if (!a->run_state || strcmp(a->run_state, "running") != 0)
				app_set(ctx->store, a->id, "run_state", "running");
			return;
		}
		r = app_container_start_checked(ctx, e, a, dir, name, false, 0);
		free(dir);
		if (r < 0) {
			problem(ps, "app_start_failed", "app %s: cannot start %s: %s", a->id, name, ctx->error_message);
			ctx->error_code[0] = ctx->error_message[0] = '\0';
			json_array_append_new(ps->failed, json_string(a->id));
			return;
		}
		app_set(ctx->store, a->id, "run_state", "running");
		log_info("platformstart: started %s", name);
		json_array_append_new(ps->started, json_string(a->id));
		return;
	}
	if (r != -ENOENT) {
		problem(ps, "engine_error", "app %s: cannot inspect %s: %s", a->id, name, engine_errmsg(e));
		json_array_append_new(ps->failed, json_string(a->id));
		return;
	}
	/* Removed while boxd was down. The engine would create a missing
	 * bind source, an empty data dir in place of the app's data: never. */
	char *dir = NULL, err[512];
	if (app_data_dir_checked(ctx->config, a, &dir, err, sizeof(err)) < 0) {
		problem(ps, "app_start_failed", "app %s: not recreated: %s", a->id, err);
		json_array_append_new(ps->failed, json_string(a->id));
		return;
	}
	struct stat st;
	bool have_dir = lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	if (!have_dir) {
		problem(ps, "app_start_failed", "app %s: its container is gone and its data dir %s is missing; not recreated",
			a->id, dir ? dir : "?");
		json_array_append_new(ps->failed, json_string(a->id));
		app_set(ctx->store, a->id, "run_state", "stopped");
		free(dir);
		return;
	}
	free(dir);
	r = app_container_recreate(ctx, e, a);
	if (r < 0) {
		problem(ps, "app_start_failed", "app %s: cannot recreate its container: %s", a->id, ctx->error_message);
		ctx->error_code[0] = '\0';
		ctx->error_message[0] = '\0';
		json_array_append_new(ps->failed, json_string(a->id));
		return;
	}
	log_info("platformstart: recreated and started %s (it had been removed)", name);
	json_array_append_new(ps->recreated, json_string(a->id));
}

static int ensure_apps(struct ps_run *ps, struct engine *e)
{
	struct task_ctx *ctx = ps->ctx;
	struct app *apps;
	size_t n;
	int r = app_list(ctx->store, &apps, &n);
	if (r < 0) {
		problem(ps, "store_error", "cannot list the apps: %s", store_errmsg(ctx->store));
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (*ctx->cancel) {
			app_list_free(apps, n);
			return -ECANCELED;
		}
		const struct app *a = &apps[i];
		task_ctx_progress(ctx, 50 + (int)(45 * i / n), "Starting app %zu of %zu: %s", i + 1, n, a->id);
		if (strcmp(a->install_state, "installed") != 0) {
			/* Mid-task or failed: its next task decides, not us. */
			json_array_append_new(ps->skipped, json_pack("{s:s, s:s}", "id", a->id, "state", a->install_state));
			continue;
		}
		ensure_app(ps, e, a);
	}
	app_list_free(apps, n);
	return 0;
}

static int run_platformstart(struct task_ctx *ctx)
{
	const struct boxd_config *cfg = ctx->config;
	struct ps_run ps = { .ctx = ctx, .started = json_array(), .recreated = json_array(), .running = json_array(),
			     .skipped = json_array(), .failed = json_array(), .stopped = json_array() };
	json_t *result = json_object();
	struct engine *e = NULL;
	char err[600];
	int r;

	task_ctx_progress(ctx, 5, "Making the appsdata and volumes roots shared mounts");
	r = services_prepare_roots(cfg, err, sizeof(err));
	if (r < 0) {
		/* Like at daemon start: not fatal, only no propagation. */
		log_warn("platformstart: the roots are not shared mounts: %s", err);
		json_object_set_new(result, "roots", json_pack("{s:b, s:s}", "shared", 0, "error", err));
	} else {
		json_object_set_new(result, "roots", json_pack("{s:b, s:[s,s]}", "shared", 1, "paths", cfg->appsdata_root,
							       cfg->volumes_root));
	}

	/* Data dirs and volume dirs as mount points of their own (binds do
	 * not survive a reboot): what sftp shows writable, and what carries
	 * mounts made below them later. */
	task_ctx_progress(ctx, 10, "Making the data dirs and volumes shared mount points");
	r = services_prepare_data_dirs(cfg, ctx->store, err, sizeof(err));
	if (r != 0) {
		log_warn("platformstart: %d data dir(s) or volume(s) are not shared mount points: %s", r > 0 ? r : 1, err);
		json_object_set_new(result, "dataDirs", json_pack("{s:b, s:s}", "shared", 0, "error", err));
	}

	task_ctx_progress(ctx, 15, "Connecting to the container engine");
	r = service_engine_open(cfg, 0, &e, err, sizeof(err));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, SERVICE_ERR_ENGINE_UNAVAILABLE,
				  "no container engine answers (%s): the sftp service and the apps' containers were not "
				  "started; boxd works on without them, and its next start tries again",
				  err);
		goto out;
	}
	if ((r = ensure_sftp(&ps, e, result)) < 0)
		goto out;
	if ((r = ensure_apps(&ps, e)) < 0)
		goto out;
	if ((r = ensure_proxy(&ps, e, result)) < 0)
		goto out;
	json_object_set_new(result, "apps",
			    json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "running", ps.running, "started", ps.started,
				      "recreated", ps.recreated, "stopped", ps.stopped, "skipped", ps.skipped, "failed",
				      ps.failed));
	if (ps.problems[0]) {
		r = task_ctx_fail(ctx, -EIO, ps.code, "%s", ps.problems);
		goto out;
	}
	task_ctx_progress(ctx, 100, "Platform started: %zu app(s) running, %zu started, %zu recreated",
			  json_array_size(ps.running), json_array_size(ps.started), json_array_size(ps.recreated));
	ctx->result = json_incref(result);
	r = 0;
out:
	engine_close(e);
	json_decref(result);
	json_decref(ps.started);
	json_decref(ps.recreated);
	json_decref(ps.running);
	json_decref(ps.skipped);
	json_decref(ps.failed);
	json_decref(ps.stopped);
	return r;
}

static int platformstart_validate(json_t *args, char *err, size_t errlen)
{
	if (json_object_size(args) > 0) {
		snprintf(err, errlen, "platformstart takes no arguments");
		return -EINVAL;
	}
	return 0;
}

static const struct task_type platformstart_type = {
	.name = "platformstart",
	.generic = false,
	.host_bound = true,
	.validate = platformstart_validate,
	.locks = { { "type:platformstart:%h", LOCK_EXCLUSIVE }, { "platform:%h", LOCK_EXCLUSIVE },
		   { "service:sftp:%h", LOCK_EXCLUSIVE }, { "service:proxy:%h", LOCK_EXCLUSIVE } },
	.run = run_platformstart,
};

void platformstart_register(void)
{
	task_type_register(&platformstart_type);
}
