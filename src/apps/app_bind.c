/* app_bind.c — see app_bind.h. */
#include "app_bind.h"
#include "app_tasks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "common/bind_source.h"
#include "common/paths.h"
#include "engine/engine.h"
#include "tasks/task_type.h"

int app_bind_check(struct task_ctx *ctx, const struct app *a, const char *dir, struct fs_id *ret_id)
{
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(ctx->config, roots);
	char what[128], err[1024];
	snprintf(what, sizeof(what), "the data dir of app %s", a->id);
	struct bind_source b = { .path = dir, .what = what, .expect = a->has_data_id ? &a->data_id : NULL };
	struct fs_id id;
	int r = bind_source_check(roots, &b, &id, err, sizeof(err));
	if (r == -ENOENT)
		return task_ctx_fail(ctx, r, "missing_source",
				     "%s; boxd does not let the engine create an empty one: restore it, or uninstall the app",
				     err);
	if (r < 0)
		return task_ctx_fail(ctx, r, "bind_source_changed", "%s", err);
	if (!a->has_data_id) {
		/* A row from before identities were recorded: this is the
		 * directory from now on. */
		r = app_set_data_id(ctx->store, a->id, &id);
		if (r < 0)
			return task_ctx_fail(ctx, r, "store_error", "cannot record the identity of %s: %s", dir,
					     store_errmsg(ctx->store));
	}
	*ret_id = id;
	return 0;
}

int app_bind_check_started(struct task_ctx *ctx, struct engine *e, const char *app_id, const char *dir,
			   const char *container, const struct fs_id *id)
{
	struct engine_container c = { 0 };
	int r = engine_container_inspect(e, container, &c);
	if (r < 0)
		return task_ctx_fail(ctx, r, "engine_error", "cannot inspect container %s: %s", container,
				     engine_errmsg(e));
	int pid = c.running ? c.pid : 0;
	engine_container_release(&c);
	if (pid <= 0)
		return 0; /* not running: nothing is bound now */
	char what[128], err[1024];
	snprintf(what, sizeof(what), "the data dir of app %s", app_id);
	r = bind_source_check_mounted(pid, APP_DATA_TARGET, id, what, err, sizeof(err));
	if (r == -ESRCH)
		return 0; /* exited meanwhile */
	if (r == -EACCES) {
		const char *roots[PATHS_TRUSTED_MAX + 1];
		paths_trusted_roots(ctx->config, roots);
		struct bind_source b = { .path = dir, .what = what, .expect = id };
		r = bind_source_check(roots, &b, NULL, err, sizeof(err));
	}
	if (r < 0) {
		/* Whatever it got must not stay exposed to the app. */
		engine_container_stop(e, container, 0);
		app_set(ctx->store, app_id, "run_state", "stopped");
		return task_ctx_fail(ctx, r, "bind_source_changed", "%s; container %s was stopped", err, container);
	}
	return 0;
}

int app_container_start_checked(struct task_ctx *ctx, struct engine *e, const struct app *a, const char *dir,
				const char *container, bool restart, int timeout_s)
{
	struct fs_id id;
	int r = app_bind_check(ctx, a, dir, &id);
	if (r < 0)
		return r;
	r = restart ? engine_container_restart(e, container, timeout_s) : engine_container_start(e, container);
	if (r < 0)
		return task_ctx_fail(ctx, r, "engine_error", "cannot %s container %s: %s", restart ? "restart" : "start",
				     container, engine_errmsg(e));
	r = app_bind_check_started(ctx, e, a->id, dir, container, &id);
	if (r >= 0)
		app_routes_sync_warn(ctx, a); /* a started container may have a new address */
	return r;
}
