/* app_tasks.c — see app_tasks.h. */
#include "app_tasks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"
#include "app_bind.h"
#include "app_image.h"
#include "app_publish.h"
#include "common/fs.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "engine/engine.h"
#include "tasks/task.h"
#include "tasks/task_type.h"

#define CONTAINER_STOP_TIMEOUT_S 10

static app_routes_sync_fn routes_sync;

void app_tasks_set_routes_sync(app_routes_sync_fn fn)
{
	routes_sync = fn;
}

/* The proxy routes what the store says now (app_tasks.h). A failure fails
 * the task with proxy_error; the app itself is fine, and the proxy's next
 * rebuild or restart loads every route again. */
static int sync_routes(struct task_ctx *ctx)
{
	if (!routes_sync || !ctx->config->proxy.enabled)
		return 0;
	char err[512] = "";
	int r = routes_sync(ctx->config, ctx->store, err, sizeof(err));
	if (r == -ENOTCONN) {
		/* Not running (yet): its start loads every route. */
		printf("warning: %s\n", err);
		fflush(stdout);
		return 0;
	}
	if (r < 0)
		return task_ctx_fail(ctx, r, "proxy_error", "the app is %s, but its routes are not: %s",
				     strcmp(ctx->task->type, "uninstall") == 0 ? "gone" : "running", err);
	return 0;
}

int app_tasks_sync_routes(struct task_ctx *ctx) { return sync_routes(ctx); }

void app_routes_sync_warn(struct task_ctx *ctx, const struct app *a)
{
	if (!routes_sync || !ctx->config->proxy.enabled || !a->domains)
		return;
	char err[512] = "";
	if (routes_sync(ctx->config, ctx->store, err, sizeof(err)) < 0) {
		printf("warning: the routes of app %s were not loaded into the proxy: %s\n", a->id, err);
		fflush(stdout);
	}
}

/* ---- helpers for handlers ------------------------------------------------ */

struct app_job {
	struct task_ctx *ctx;
	struct app app;
	struct engine *engine;
	char container[APP_ID_MAX + 8];
	char *data_dir;      /* checked: app_data_dir_checked() */
	const char *roots[PATHS_TRUSTED_MAX + 1]; /* for the fs_*() walks */
	bool quiet;          /* no progress reports (app_container_recreate) */
};

static int job_open(struct task_ctx *ctx, struct app_job *job, bool need_engine)
{
	memset(job, 0, sizeof(*job));
	job->ctx = ctx;
	const char *id = ctx->task->app_id;
	int r = app_get(ctx->store, id, &job->app);
	if (r == -ENOENT)
		return task_ctx_fail(ctx, r, "not_found", "no app %s", id);
	if (r < 0)
		return task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", id, store_errmsg(ctx->store));
	snprintf(job->container, sizeof(job->container), "app-%s", id);
	char err[512];
	r = app_data_dir_checked(ctx->config, &job->app, &job->data_dir, err, sizeof(err));
	if (r < 0)
		return task_ctx_fail(ctx, r, r == -ENOMEM ? "internal" : "bad_path", "%s", err);
	paths_trusted_roots(ctx->config, job->roots);
	if (!need_engine)
		return 0;
	struct engine_options eo = { .socket_path = ctx->config->engine_socket };
	r = engine_open_opts(&eo, &job->engine, err, sizeof(err));
	if (r < 0)
		return task_ctx_fail(ctx, r, "engine_unavailable", "%s", err);
	r = engine_ping(job->engine);
	if (r < 0)
		return task_ctx_fail(ctx, r, "engine_unavailable", "%s", engine_errmsg(job->engine));
	return 0;
}

static void job_close(struct app_job *job)
{
	engine_close(job->engine);
	app_release(&job->app);
	free(job->data_dir);
}

static int job_engine_fail(struct app_job *job, int r, const char *what)
{
	return task_ctx_fail(job->ctx, r, "engine_error", "%s %s: %s", what, job->container, engine_errmsg(job->engine));
}

/* Mark the app as failed (the task's error says why). */
static int job_fail_state(struct app_job *job, int r)
{
	app_set(job->ctx->store, job->app.id, "install_state", "error");
	return r;
}

/* Record the identity of the data dir boxd just made or moved: what every
 * later bind of it is checked against (app_bind.h). */
static int job_record_data_id(struct app_job *job, const struct fs_id *id)
{
	int r = app_set_data_id(job->ctx->store, job->app.id, id);
	if (r < 0)
		return job_fail_state(job, task_ctx_fail(job->ctx, r, "store_error", "cannot record the data dir: %s",
							 store_errmsg(job->ctx->store)));
	job->app.has_data_id = true;
	job->app.data_id = *id;
	return 0;
}

/* The state checked when the worker starts (tasks ahead of it may have
 * failed since the API accepted it). */
static int job_require(struct app_job *job, const char *const *states, const char *type)
{
	for (const char *const *s = states; *s; s++)
		if (strcmp(job->app.install_state, *s) == 0)
			return 0;
	return task_ctx_fail(job->ctx, -EBUSY, "bad_state", "app %s is %s; cannot %s it", job->app.id,
			     job->app.install_state, type);
}

/* Create and start app-<id> from the row's image, env and data dir,
 * replacing a container of that name left by an earlier attempt. */
static int job_create_container(struct app_job *job)
{
	struct task_ctx *ctx = job->ctx;
	/* Irreversible: the old container goes. Only while the task's locks
	 * are still its own (the fencing token). */
	char step[200];
	snprintf(step, sizeof(step), "replacing container %s", job->container);
	int fr = task_ctx_fence_check(ctx, step);
	if (fr < 0)
		return fr;
	json_t *env = json_loads(job->app.env ? job->app.env : "{}", 0, NULL);
	size_t n = json_object_size(env);
	const char **envv = calloc(n + 1, sizeof(*envv));
	char **owned = calloc(n + 1, sizeof(*owned));
	size_t i = 0;
	const char *key;
	json_t *val;
	json_object_foreach(env, key, val) {
		if (!json_is_string(val))
			continue;
		size_t len = strlen(key) + strlen(json_string_value(val)) + 2;
		owned[i] = malloc(len);
		snprintf(owned[i], len, "%s=%s", key, json_string_value(val));
		envv[i] = owned[i];
		i++;
	}
	struct engine_kv labels[] = { { "boxd.app", job->app.id } };
	/* Recursive: a filesystem mounted below the data dir is the app's too. */
	struct engine_mount mounts[] = {
		{ .type = ENGINE_MOUNT_BIND, .source = job->data_dir, .target = "/app/data", .recursive = true },
	};
	struct engine_port_binding *ports = NULL;
	size_t n_ports = 0;
	if (app_port_bindings(&job->app, &ports, &n_ports) < 0) {
		for (size_t k = 0; k < i; k++)
			free(owned[k]);
		free(owned);
		free(envv);
		json_decref(env);
		return task_ctx_fail(ctx, -EINVAL, "bad_ports", "app %s: its stored ports do not parse", job->app.id);
	}
	struct engine_container_spec spec = {
		.name = job->container, .image = job->app.image, .env = envv, .labels = labels, .n_labels = 1,
		.mounts = mounts, .n_mounts = 1, .restart = ENGINE_RESTART_UNLESS_STOPPED,
		.stop_timeout_s = CONTAINER_STOP_TIMEOUT_S, .ports = ports, .n_ports = n_ports,
	};
	/* The data dir is what boxd made: checked before the old container
	 * goes (a refused recreate leaves it as it was), right before the
	 * engine resolves the path, and below on what the new one got. */
	struct fs_id data_id;
	char id[ENGINE_ID_MAX];
	int r = app_bind_check(ctx, &job->app, job->data_dir, &data_id);
	if (r >= 0) {
		engine_container_remove(job->engine, job->container, ENGINE_REMOVE_FORCE);
		/* Until the new one runs, there is none: a failure below must
		 * not leave the row saying "running". */
		app_set(ctx->store, job->app.id, "run_state", "stopped");
		app_set(ctx->store, job->app.id, "container_id", NULL);
		r = app_bind_check(ctx, &job->app, job->data_dir, &data_id);
	}
	if (r >= 0)
		r = engine_container_create(job->engine, &spec, id);
	for (size_t k = 0; k < i; k++)
		free(owned[k]);
	free(owned);
	free(envv);
	free(ports);
	json_decref(env);
	if (r < 0)
		return ctx->error_code[0] ? r : job_engine_fail(job, r, "cannot create container");
	app_set(ctx->store, job->app.id, "container_id", id);
	if (job->app.stopped) {
		/* Stopped by the operator: the new container waits for `start`. */
		printf("app %s is stopped: container %s made, not started\n", job->app.id, job->container);
		fflush(stdout);
		return 0;
	}
	if (!job->quiet)
		task_ctx_progress(ctx, 70, "Starting container %s", job->container);
	r = engine_container_start(job->engine, id);
	if (r < 0)
		return job_engine_fail(job, r, "cannot start container");
	r = app_bind_check_started(ctx, job->engine, job->app.id, job->data_dir, id, &data_id);
	if (r < 0)
		return r;
	app_set(ctx->store, job->app.id, "run_state", "running");
	return 0;
}

int app_container_recreate(struct task_ctx *ctx, struct engine *engine, const struct app *a)
{
	/* A job around the caller's app and engine; job_create_container()
	 * only reads them. */
	struct app_job job = { .ctx = ctx, .app = *a, .engine = engine, .quiet = true };
	snprintf(job.container, sizeof(job.container), "app-%s", a->id);
	char err[512];
	int r = app_data_dir_checked(ctx->config, a, &job.data_dir, err, sizeof(err));
	if (r < 0)
		return task_ctx_fail(ctx, r, r == -ENOMEM ? "internal" : "bad_path", "%s", err);
	paths_trusted_roots(ctx->config, job.roots);
	r = job_create_container(&job);
	free(job.data_dir);
	if (r >= 0)
		app_routes_sync_warn(ctx, a); /* a new container, a new address */
	return r;
}

/* ---- the data dir as a mount point ---------------------------------------------- */

/* The data dir becomes a shared mount point of its own (common/
 * mountpoint.h): in the sftp container, where the roots are read-only, it
 * is then a writable mount that an sftp user cannot rename or replace, and
 * mounts made later on or below it reach every container that binds it.
 * Without CAP_SYS_ADMIN that fails; the app works on, and the log says
 * what sftp users lose. */
static void share_data_dir(struct app_job *job)
{
	char err[512];
	if (mount_make_shared(job->data_dir, MOUNT_NOFOLLOW, err, sizeof(err)) < 0) {
		printf("warning: %s: sftp shows the data dir read-only and mounts below it do not propagate\n", err);
		fflush(stdout);
	}
}

/* Before the data dir is moved or deleted: a mount point can be neither.
 * Containers that bind it keep their own copy of the bind (the sftp
 * container then shows the deleted dir, which accepts nothing, until its
 * spec-driven rebuild). */
static int unshare_data_dir(struct app_job *job)
{
	char err[512];
	int r = mount_release(job->data_dir, err, sizeof(err));
	if (r < 0)
		return task_ctx_fail(job->ctx, r, "fs_error", "%s", err);
	return 0;
}

/* ---- handlers ------------------------------------------------------------- */

static int run_install(struct task_ctx *ctx)
{
	struct app_job job;
	int r = job_open(ctx, &job, true);
	if (r >= 0) {
		static const char *const ok[] = { "pending_install", "error", NULL };
		r = job_require(&job, ok, "install");
	}
	if (r >= 0) {
		/* Before anything is made: a failed pull leaves no data dir
		 * and no container, only the app in error (what every failed
		 * install leaves; uninstall clears it) and the task's error. */
		r = app_image_ensure(ctx, job.engine, job.app.id, job.app.image, 5, 35);
		if (r < 0)
			job_fail_state(&job, r);
	}
	if (r >= 0) {
		char err[512];
		task_ctx_progress(ctx, 10, "Creating data directory %s", job.data_dir);
		struct fs_id made;
		r = fs_mkdir_nofollow(job.roots, job.data_dir, 0755, &made, err, sizeof(err));
		if (r < 0)
			r = job_fail_state(&job, task_ctx_fail(ctx, r, "fs_error", "%s", err));
		else
			r = job_record_data_id(&job, &made);
		if (r >= 0)
			share_data_dir(&job);
	}
	if (r >= 0) {
		task_ctx_progress(ctx, 40, "Creating container %s from %s", job.container, job.app.image);
		r = job_create_container(&job);
		if (r < 0)
			job_fail_state(&job, r);
	}
	if (r >= 0) {
		app_set(ctx->store, job.app.id, "install_state", "installed");
		ctx->result = json_pack("{s:s, s:s}", "appId", job.app.id, "dataDir", job.data_dir);
		r = sync_routes(ctx);
	}
	job_close(&job);
	return r;
}

static app_final_backup_fn final_backup_fn;

void app_set_final_backup(app_final_backup_fn fn) { final_backup_fn = fn; }

/* The uninstall's final backup, before anything is removed: a failed one
 * fails the uninstall with the app as it was. An app without a data dir
 * (an install that failed early) has nothing to keep. */
static int final_backup(struct app_job *job, int64_t *ret_id)
{
	struct task_ctx *ctx = job->ctx;
	struct stat st;
	*ret_id = 0;
	if (!final_backup_fn || json_is_true(json_object_get(ctx->args, "noBackup")))
		return 0;
	if (lstat(job->data_dir, &st) < 0 && errno == ENOENT) {
		printf("no final backup: the data dir %s does not exist\n", job->data_dir);
		fflush(stdout);
		return 0;
	}
	int r = final_backup_fn(ctx, &job->app, job->data_dir, ret_id);
	if (r < 0 && r != -ECANCELED) {
		char inner[sizeof(ctx->error_message)];
		snprintf(inner, sizeof(inner), "%s", ctx->error_message);
		snprintf(ctx->error_message, sizeof(ctx->error_message),
			 "the final backup failed, nothing was removed (uninstall with noBackup / --no-backup to skip it): "
			 "%.900s", inner);
	}
	return r;
}

static int run_uninstall(struct task_ctx *ctx)
{
	struct app_job job;
	int64_t backup_id = 0;
	int r = job_open(ctx, &job, true);
	if (r >= 0)
		r = final_backup(&job, &backup_id);
	if (r >= 0) {
		r = task_ctx_fence_check(ctx, "removing the app's container");
	}
	if (r >= 0) {
		app_set(ctx->store, job.app.id, "install_state", "pending_uninstall");
		task_ctx_progress(ctx, 20, "Removing container %s", job.container);
		r = engine_container_remove(job.engine, job.container, ENGINE_REMOVE_FORCE | ENGINE_REMOVE_VOLUMES);
		if (r == -ENOENT)
			r = 0;
		if (r < 0)
			r = job_fail_state(&job, job_engine_fail(&job, r, "cannot remove container"));
	}
	if (r >= 0)
		r = task_ctx_fence_check(ctx, "deleting the app's data directory");
	if (r >= 0 && (r = unshare_data_dir(&job)) < 0)
		job_fail_state(&job, r);
	if (r >= 0) {
		/* job_open() checked the path again; the walk below never
		 * follows a symlink put in its way since. */
		char err[512];
		task_ctx_progress(ctx, 60, "Deleting data directory %s", job.data_dir);
		r = fs_remove_tree(job.roots, job.data_dir, err, sizeof(err));
		if (r < 0)
			r = job_fail_state(&job, task_ctx_fail(ctx, r, "fs_error", "%s", err));
	}
	if (r >= 0) {
		r = app_delete(ctx->store, job.app.id);
		if (r < 0)
			r = task_ctx_fail(ctx, r, "store_error", "cannot delete the app row: %s", store_errmsg(ctx->store));
		else
			ctx->result = json_pack("{s:s, s:o}", "appId", job.app.id, "finalBackupId",
						backup_id > 0 ? json_integer(backup_id) : json_null());
	}
	if (r >= 0 && job.app.domains)
		r = sync_routes(ctx);
	job_close(&job);
	return r;
}

static int run_restart(struct task_ctx *ctx)
{
	struct app_job job;
	int r = job_open(ctx, &job, true);
	static const char *const ok[] = { "installed", NULL };
	if (r >= 0)
		r = job_require(&job, ok, "restart");
	if (r >= 0 && job.app.stopped)
		r = task_ctx_fail(ctx, -EBUSY, "bad_state", "app %s is stopped; restart needs it running (start it)",
				  job.app.id);
	if (r >= 0) {
		task_ctx_progress(ctx, 30, "Restarting container %s", job.container);
		r = app_container_start_checked(ctx, job.engine, &job.app, job.data_dir, job.container, true,
						CONTAINER_STOP_TIMEOUT_S);
		if (r >= 0) {
			app_set(ctx->store, job.app.id, "run_state", "running");
			/* Verified as the dir boxd made: a mount point of its own
			 * again, should a reboot or an operator have undone it. */
			share_data_dir(&job);
		}
	}
	job_close(&job);
	return r;
}

/* start: the operator's stopped flag goes, then the container runs — the
 * one there is (app_container_start_checked: checked binds, routes
 * reloaded), or, when it was removed, a new one over the existing data dir
 * (app_bind_check refuses a missing one). A start that fails leaves the
 * flag cleared: the operator wants it running, and platformstart tries
 * again like for any app. */
static int run_start(struct task_ctx *ctx)
{
	struct app_job job;
	int r = job_open(ctx, &job, true);
	static const char *const ok[] = { "installed", NULL };
	if (r >= 0)
		r = job_require(&job, ok, "start");
	if (r < 0)
		goto out;
	bool was_stopped = job.app.stopped;
	if ((r = app_set_stopped(ctx->store, job.app.id, false)) < 0) {
		r = task_ctx_fail(ctx, r, "store_error", "cannot clear the stopped flag: %s", store_errmsg(ctx->store));
		goto out;
	}
	job.app.stopped = false;
	struct engine_container c = { 0 };
	r = engine_container_inspect(job.engine, job.container, &c);
	bool was_running = r == 0 && c.running;
	if (r == 0)
		engine_container_release(&c);
	if (r == -ENOENT) {
		task_ctx_progress(ctx, 30, "Container %s is gone: creating it from %s", job.container, job.app.image);
		r = job_create_container(&job);
		if (r >= 0)
			app_routes_sync_warn(ctx, &job.app); /* a new container, a new address */
	} else if (r < 0) {
		r = job_engine_fail(&job, r, "cannot inspect container");
	} else {
		task_ctx_progress(ctx, 30, "Starting container %s", job.container);
		r = app_container_start_checked(ctx, job.engine, &job.app, job.data_dir, job.container, false, 0);
		if (r >= 0)
			app_set(ctx->store, job.app.id, "run_state", "running");
	}
	if (r >= 0) {
		share_data_dir(&job); /* a mount point of its own, as at every start */
		ctx->result = json_pack("{s:s, s:b, s:b}", "appId", job.app.id, "wasStopped", was_stopped, "wasRunning",
					was_running);
	}
out:
	job_close(&job);
	return r;
}

/* stop: the flag first (what platformstart and the other tasks go by,
 * even should the engine fail below), then the container, with the stop
 * timeout it was made with. Its domains are routed again: a stopped
 * container has no address, and the old one may go to another container
 * (the proxy answers 502 naming the app instead). */
static int run_stop(struct task_ctx *ctx)
{
	struct app_job job;
	int r = job_open(ctx, &job, true);
	static const char *const ok[] = { "installed", NULL };
	if (r >= 0)
		r = job_require(&job, ok, "stop");
	if (r < 0)
		goto out;
	if ((r = app_set_stopped(ctx->store, job.app.id, true)) < 0) {
		r = task_ctx_fail(ctx, r, "store_error", "cannot set the stopped flag: %s", store_errmsg(ctx->store));
		goto out;
	}
	job.app.stopped = true;
	task_ctx_progress(ctx, 30, "Stopping container %s", job.container);
	r = engine_container_stop(job.engine, job.container, CONTAINER_STOP_TIMEOUT_S);
	bool was_running = r == 0;
	if (r == -ENOENT)
		r = 0; /* no container: nothing runs; start makes one */
	if (r < 0) {
		r = job_engine_fail(&job, r, "cannot stop container");
		goto out;
	}
	app_set(ctx->store, job.app.id, "run_state", "stopped");
	app_routes_sync_warn(ctx, &job.app);
	ctx->result = json_pack("{s:s, s:b}", "appId", job.app.id, "wasRunning", was_running);
	r = 0;
out:
	job_close(&job);
	return r;
}

static int run_configure(struct task_ctx *ctx)
{
	struct app_job job;
	char *new_dir = NULL;
	int r = job_open(ctx, &job, true);
	static const char *const ok[] = { "installed", "error", NULL };
	if (r >= 0)
		r = job_require(&job, ok, "configure");
	if (r < 0)
		goto out;
	json_t *env = json_object_get(ctx->args, "env"), *dir = json_object_get(ctx->args, "dataDir");
	/* A move needs a free target: refuse one that holds something before
	 * changing anything (no stop, no copy, the app stays as it was). */
	if (dir) {
		/* The args come from the store too: checked again. */
		struct app target = job.app;
		target.data_dir = (char *)json_string_value(dir); /* NULL: the default */
		char err[512];
		r = app_data_dir_checked(ctx->config, &target, &new_dir, err, sizeof(err));
		if (r < 0) {
			r = task_ctx_fail(ctx, r, r == -ENOMEM ? "internal" : "bad_path", "%s", err);
			goto out;
		}
		if (strcmp(new_dir, job.data_dir) != 0 && !fs_dir_is_free(new_dir, NULL)) {
			r = task_ctx_fail(ctx, -EEXIST, "target_exists",
					  "cannot move the data to %s: it exists and is not an empty directory", new_dir);
			goto out;
		}
	}
	app_set(ctx->store, job.app.id, "install_state", "pending_configure");
	json_t *merged = NULL;
	json_t *env_set = json_object_get(ctx->args, "envSet"), *env_unset = json_object_get(ctx->args, "envUnset");
	if (!env && (env_set || env_unset)) {
		/* A patch: onto the env the app has now (app_tasks.h). */
		merged = json_loads(job.app.env ? job.app.env : "{}", 0, NULL);
		if (!json_is_object(merged)) {
			json_decref(merged);
			merged = json_object();
		}
		if (env_set)
			json_object_update(merged, env_set);
		size_t i;
		json_t *k;
		json_array_foreach(env_unset, i, k)
			json_object_del(merged, json_string_value(k));
		env = merged;
	}
	if (env) {
		char *text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
		app_set(ctx->store, job.app.id, "env", text);
		free(job.app.env);
		job.app.env = text;
	}
	json_decref(merged);
	if (dir) {
		/* null: back to the default dir under the appsdata root. */
		const char *new_custom = json_is_string(dir) ? json_string_value(dir) : NULL;
		if (strcmp(new_dir, job.data_dir) != 0) {
			char err[512];
			if ((r = task_ctx_fence_check(ctx, "moving the app's data directory")) < 0)
				goto out;
			task_ctx_progress(ctx, 20, "Stopping container %s", job.container);
			engine_container_stop(job.engine, job.container, CONTAINER_STOP_TIMEOUT_S);
			app_set(ctx->store, job.app.id, "run_state", "stopped");
			task_ctx_progress(ctx, 40, "Moving data from %s to %s", job.data_dir, new_dir);
			struct fs_id moved;
			r = unshare_data_dir(&job);
			if (r >= 0)
				r = fs_move_tree(job.roots, job.data_dir, new_dir, &moved, err, sizeof(err));
			if (r < 0) {
				if (!ctx->error_code[0])
					task_ctx_fail(ctx, r, "fs_error", "%s", err);
				share_data_dir(&job); /* still where it was */
				r = job_fail_state(&job, r);
				goto out;
			}
			app_set(ctx->store, job.app.id, "data_dir", new_custom);
			if ((r = job_record_data_id(&job, &moved)) < 0)
				goto out;
			free(job.data_dir);
			job.data_dir = new_dir;
			new_dir = NULL;
			share_data_dir(&job);
		}
	}
	/* Domains and httpPort are routes: the container stays as it is
	 * when nothing else changed (and it runs). */
	bool routes_only = !env && !dir && !json_object_get(ctx->args, "ports") &&
			   strcmp(job.app.install_state, "installed") == 0 && job.app.container_id;
	if (!routes_only) {
		task_ctx_progress(ctx, 60, "Recreating container %s", job.container);
		r = job_create_container(&job);
		if (r < 0) {
			job_fail_state(&job, r);
			goto out;
		}
	} else {
		task_ctx_progress(ctx, 60, "Changing the routes of %s", job.app.id);
	}
	app_set(ctx->store, job.app.id, "install_state", "installed");
	ctx->result = json_pack("{s:s, s:s}", "appId", job.app.id, "dataDir", job.data_dir);
	r = sync_routes(ctx);
out:
	free(new_dir);
	job_close(&job);
	return r;
}

static int run_update(struct task_ctx *ctx)
{
	struct app_job job;
	int r = job_open(ctx, &job, true);
	static const char *const ok[] = { "installed", NULL };
	if (r >= 0)
		r = job_require(&job, ok, "update");
	if (r < 0)
		goto out;
	const char *image = json_string_value(json_object_get(ctx->args, "image"));
	task_ctx_progress(ctx, 10, "Checking image %s", image);
	/* Pulled before anything changes: a failed pull leaves the app and
	 * its container as they were. */
	r = app_image_ensure(ctx, job.engine, job.app.id, image, 10, 40);
	if (r < 0)
		goto out;
	app_set(ctx->store, job.app.id, "install_state", "pending_update");
	app_set(ctx->store, job.app.id, "image", image);
	free(job.app.image);
	job.app.image = strdup(image);
	task_ctx_progress(ctx, 40, "Recreating container %s from %s", job.container, image);
	r = job_create_container(&job);
	if (r < 0) {
		job_fail_state(&job, r);
		goto out;
	}
	app_set(ctx->store, job.app.id, "install_state", "installed");
	ctx->result = json_pack("{s:s, s:s}", "appId", job.app.id, "image", image);
	if (job.app.domains)
		r = sync_routes(ctx);
out:
	job_close(&job);
	return r;
}

/* ---- locks and registration ------------------------------------------------ */

/* Every app task: its app exclusive, its host's `platform` shared (an
 * update's apply or a platformstart there waits for it); the host's
 * service:sftp shared when it creates, moves or deletes a data dir, which
 * the sftp container binds. */
#define APP_LOCKS { "app:%s", LOCK_EXCLUSIVE }, { "platform:%h", LOCK_SHARED }
#define SFTP_LOCK { "service:sftp:%h", LOCK_SHARED }

/* A configure moves the data dir only when it names a new one. */
static int locks_configure(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)t;
	*ret = NULL;
	*ret_n = 0;
	if (!json_object_get(args, "dataDir"))
		return 0;
	struct lock_req *req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	*req = (struct lock_req){ .mode = LOCK_SHARED };
	int r = task_host_lock_name("service:sftp", req->name, sizeof(req->name));
	if (r < 0) {
		free(req);
		return r;
	}
	*ret = req;
	*ret_n = 1;
	return 0;
}

static const struct task_type app_types[] = {
	{ .name = "install", .app_task = true, .locks = { APP_LOCKS, SFTP_LOCK }, .run = run_install },
	{ .name = "uninstall", .app_task = true, .locks = { APP_LOCKS, SFTP_LOCK }, .run = run_uninstall },
	{ .name = "restart", .app_task = true, .locks = { APP_LOCKS }, .run = run_restart },
	{ .name = "configure", .app_task = true, .locks = { APP_LOCKS }, .dynamic_locks = locks_configure,
	  .run = run_configure },
	{ .name = "update", .app_task = true, .locks = { APP_LOCKS }, .run = run_update },
	{ .name = "start", .app_task = true, .locks = { APP_LOCKS }, .run = run_start },
	{ .name = "stop", .app_task = true, .locks = { APP_LOCKS }, .run = run_stop },
};

void apps_register_task_types(void)
{
	for (size_t i = 0; i < sizeof(app_types) / sizeof(app_types[0]); i++)
		task_type_register(&app_types[i]);
}
