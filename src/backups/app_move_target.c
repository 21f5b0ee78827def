/* app_move_target.c — move.restore, a move's step on the target host
 * (app_move.h): restore the source's backup into a free data dir, commit
 * (pending_move → installed, one conditional UPDATE that the source's
 * abort competes with), then create and start the container; undo all of
 * it when anything fails, un-committing so that the source's abort wins. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "apps/app_tasks.h"
#include "backups-internal.h"
#include "common/fs.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "common/proc.h"
#include "engine/engine.h"
#include "tasks/task.h"
#include "tasks/task_type.h"

/* The target's commit: pending_move on `target` → installed. 1 if it won,
 * 0 if the source aborted. */
static int64_t row_commit(struct store *s, const char *id, const char *target)
{
	return store_run(s,
			 "UPDATE apps SET install_state = 'installed' WHERE id = ? AND install_state = 'pending_move' "
			 "AND host = ?",
			 "ss", id, target);
}

/* The target's un-commit after its container failed: back to pending_move,
 * so that the source's abort wins. */
static int64_t row_uncommit(struct store *s, const char *id, const char *target)
{
	return store_run(s,
			 "UPDATE apps SET install_state = 'pending_move' WHERE id = ? AND install_state = 'installed' "
			 "AND host = ?",
			 "ss", id, target);
}


/* Undo what this step made on the target: its container and data dir. */
static void target_undo(struct task_ctx *ctx, struct engine *eng, const char *id, const char *dir)
{
	char err[512], container[APP_ID_MAX + 8];
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(ctx->config, roots);
	snprintf(container, sizeof(container), "app-%s", id);
	if (eng)
		engine_container_remove(eng, container, ENGINE_REMOVE_FORCE | ENGINE_REMOVE_VOLUMES);
	if (mount_release(dir, err, sizeof(err)) < 0 || fs_remove_tree(roots, dir, err, sizeof(err)) < 0)
		printf("warning: %s\n", err);
	fflush(stdout);
}

int backups_run_move_restore(struct task_ctx *ctx)
{
	const char *id = ctx->task->app_id;
	char self[HOST_ID_MAX + 1], host[64] = "", err[512];
	struct app a = { 0 };
	struct engine *eng = NULL;
	char *dir = NULL;
	bool made = false;
	int r = host_id_get(self, sizeof(self));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "internal", "no host id");
		goto out;
	}
	if ((r = app_get(ctx->store, id, &a)) < 0 || (r = backups_app_host_get(ctx->store, id, host, sizeof(host))) < 0) {
		r = task_ctx_fail(ctx, r, r == -ENOENT ? "not_found" : "store_error", "cannot load app %s", id);
		goto out;
	}
	if (strcmp(a.install_state, "pending_move") != 0 || strcmp(host, self) != 0) {
		r = task_ctx_fail(ctx, -ECANCELED, "move_aborted", "app %s is no longer being moved here (%s on %s)", id,
				  a.install_state, host[0] ? host : "no host");
		goto out;
	}
	if ((r = app_data_dir_checked(ctx->config, &a, &dir, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_path", "%s; nothing was changed", err);
		goto out;
	}
	bool exists;
	if (!fs_dir_is_free(dir, &exists)) {
		r = task_ctx_fail(ctx, -EEXIST, "target_exists",
				  "the data dir %s exists on %s and is not empty; nothing was changed", dir, self);
		goto out;
	}
	made = !exists;
	/* The restore (backups_restore.c) leaves the container alone for a
	 * move.restore: there is none of this host's. */
	if ((r = backups_run_restore(ctx)) < 0)
		goto out;
	json_decref(ctx->result);
	ctx->result = NULL;
	made = true;

	/* The commit: from here the app is this host's. */
	int64_t n = row_commit(ctx->store, id, self);
	if (n != 1) {
		r = task_ctx_fail(ctx, n < 0 ? (int)n : -ECANCELED, n < 0 ? "store_error" : "move_aborted",
				  "the move of app %s was called off by its source host; the restored data is removed", id);
		goto out;
	}
	app_release(&a);
	if ((r = app_get(ctx->store, id, &a)) < 0) { /* with the data dir's identity the restore recorded */
		r = task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", id, store_errmsg(ctx->store));
		goto uncommit;
	}
	struct engine_options eo = { .socket_path = ctx->config->engine_socket };
	if ((r = engine_open_opts(&eo, &eng, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "engine_unavailable", "%s", err);
		goto uncommit;
	}
	if (mount_make_shared(dir, MOUNT_NOFOLLOW, err, sizeof(err)) < 0)
		printf("warning: %s: sftp shows the data dir read-only\n", err);
	task_ctx_progress(ctx, 90, "Creating container app-%s on %s", id, self);
	if ((r = app_container_recreate(ctx, eng, &a)) < 0)
		goto uncommit;
	app_tasks_sync_routes(ctx);
	printf("app %s runs on %s\n", id, self);
	fflush(stdout);
	ctx->result = json_pack("{s:s, s:s, s:s}", "appId", id, "host", self, "dataDir", dir);
	made = false;
	r = 0;
	goto out;
uncommit:
	/* Not running here: back to pending_move, so that the source's abort
	 * wins and it starts the app again. */
	target_undo(ctx, eng, id, dir);
	made = false;
	row_uncommit(ctx->store, id, self);
out:
	if (r < 0 && made && dir)
		target_undo(ctx, eng, id, dir);
	engine_close(eng);
	free(dir);
	app_release(&a);
	return r;
}

