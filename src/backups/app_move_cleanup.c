/* app_move_cleanup.c — what a move leaves on its source host (app_move.h):
 * the stopped container and the data dir, removed once the target has the
 * app. The move task removes them itself when it sees the target's step
 * succeed; `move.cleanup` is the same removal as a task of its own, so
 * that a source whose move worker died after the target's commit (killed,
 * host rebooted) still gets rid of them.
 *
 * The move queues the cleanup on its own host (run_on), before it hands
 * the app over, with the container's id and the data dir. It waits for
 * `app:<id>` behind the move, so it runs once the move has ended, however
 * it ended, and then decides from the app's row alone:
 *   - installed on another host: the move committed; remove the container
 *     (by its id: the name may be the target's on a shared engine) and the
 *     data dir (below this host's roots only, fs_remove_tree());
 *   - installed on this host (the move was called off), or gone: nothing
 *     to remove;
 *   - pending_move: the move's outcome is not decided yet (its source
 *     died mid-way and the target may still commit): wait for it, as the
 *     move would have.
 * Nothing is removed while the app may still be this host's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps/app.h"
#include "backups-internal.h"
#include "common/fs.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "common/proc.h"
#include "engine/engine.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"

#define SETTLE_POLL_MS 1000

int backups_move_remove_leftovers(struct task_ctx *ctx, struct engine *eng, const char *container_id,
				  const char *dir, char *err, size_t errlen)
{
	if (container_id && container_id[0]) {
		int r = engine_container_remove(eng, container_id, ENGINE_REMOVE_FORCE | ENGINE_REMOVE_VOLUMES);
		if (r < 0 && r != -ENOENT) {
			snprintf(err, errlen, "its old container %s was not removed: %s", container_id, engine_errmsg(eng));
			return r;
		}
	}
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(ctx->config, roots);
	struct stat st;
	if (!dir || lstat(dir, &st) < 0)
		return 0; /* gone already */
	char why[512];
	int r = mount_release(dir, why, sizeof(why));
	if (r >= 0)
		r = fs_remove_tree(roots, dir, why, sizeof(why));
	if (r < 0)
		snprintf(err, errlen, "its old data dir %s was not removed: %s", dir, why);
	return r;
}

int backups_move_queue_cleanup(struct task_ctx *ctx, const char *app_id, const char *self,
			       const char *container_id, const char *dir)
{
	json_t *args = json_pack("{s:s, s:s, s:s, s:I}", "appId", app_id, "containerId", container_id ? container_id : "",
				 "dataDir", dir, "moveTask", (json_int_t)ctx->task->id);
	char *text = args ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(args);
	if (!text)
		return task_ctx_fail(ctx, -ENOMEM, "internal", "out of memory");
	struct task_enqueue e = { .type = "move.cleanup", .args_json = text, .run_on = self };
	struct task_enqueued out;
	int r = task_enqueue(ctx->store, ctx->config, &e, &out);
	free(text);
	if (r < 0)
		return task_ctx_fail(ctx, r, "store_error", "cannot queue the cleanup of the move: %s",
				     out.message[0] ? out.message : store_errmsg(ctx->store));
	printf("queued task %lld (move.cleanup) on host %s: it removes what stays here once the move is done\n",
	       (long long)out.id, self);
	fflush(stdout);
	return 0;
}

int backups_run_move_cleanup(struct task_ctx *ctx)
{
	const char *id = json_string_value(json_object_get(ctx->args, "appId"));
	const char *cid = json_string_value(json_object_get(ctx->args, "containerId"));
	const char *dir = json_string_value(json_object_get(ctx->args, "dataDir"));
	char self[HOST_ID_MAX + 1], host[64] = "", err[700];
	int r = host_id_get(self, sizeof(self));
	if (r < 0 || !id || !dir)
		return task_ctx_fail(ctx, r < 0 ? r : -EINVAL, "internal", "no host id, or bad args");
	struct app a;
	for (;;) {
		r = app_get(ctx->store, id, &a);
		if (r == -ENOENT) {
			ctx->result = json_pack("{s:s, s:b}", "appId", id, "removed", 0);
			printf("app %s is gone: nothing to remove\n", id);
			return 0;
		}
		if (r < 0 || (r = backups_app_host_get(ctx->store, id, host, sizeof(host))) < 0) {
			if (r >= 0)
				app_release(&a);
			return task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", id, store_errmsg(ctx->store));
		}
		bool pending = strcmp(a.install_state, "pending_move") == 0;
		app_release(&a);
		if (!pending)
			break;
		task_ctx_progress(ctx, 10, "Waiting for the move of app %s to %s to be decided", id, host);
		if (task_ctx_sleep(ctx, SETTLE_POLL_MS) < 0)
			return -ECANCELED;
	}
	if (!host[0] || strcmp(host, self) == 0) {
		/* The move was called off: the data dir is the app's again. */
		ctx->result = json_pack("{s:s, s:b}", "appId", id, "removed", 0);
		printf("app %s is on this host: nothing to remove\n", id);
		return 0;
	}
	struct engine *eng = NULL;
	struct engine_options eo = { .socket_path = ctx->config->engine_socket };
	if (cid && cid[0] && (r = engine_open_opts(&eo, &eng, err, sizeof(err))) < 0)
		return task_ctx_fail(ctx, r, "engine_unavailable", "%s", err);
	if ((r = task_ctx_fence_check(ctx, "removing a moved app's leftovers")) == 0) {
		task_ctx_progress(ctx, 50, "Removing what app %s left on %s (it runs on %s)", id, self, host);
		r = backups_move_remove_leftovers(ctx, eng, cid, dir, err, sizeof(err));
		if (r < 0)
			r = task_ctx_fail(ctx, r, "cleanup_failed", "app %s moved to %s, but %s", id, host, err);
	}
	engine_close(eng);
	if (r < 0)
		return r;
	ctx->result = json_pack("{s:s, s:s, s:b}", "appId", id, "movedTo", host, "removed", 1);
	printf("removed what app %s left on %s\n", id, self);
	fflush(stdout);
	return 0;
}
