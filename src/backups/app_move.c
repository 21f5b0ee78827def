/* app_move.c — moving an app to another host: the move task on the
 * source and the admission (app_move.h); move.restore, the target's step,
 * is app_move_target.c.
 *
 * Why in `backups`: both steps are the existing backup and restore code
 * (backups_archive_app(), backups_run_restore()), and `apps` may not call
 * `backups` (layers). Whether the target is alive is
 * tasks/host_liveness.h's rule, the one sched/hosts.h uses too (`backups`
 * does not link `sched`). */
#include "app_move.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "apps/app_bind.h"
#include "backups-internal.h"
#include "common/fs.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "common/proc.h"
#include "engine/engine.h"
#include "tasks/host_liveness.h"
#include "tasks/task.h"
#include "tasks/task_ctx_lock.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"

#define CONTAINER_STOP_TIMEOUT_S 10
#define WAIT_POLL_MS 250

/* ---- the app's row: its host, and the switch -------------------------------- */

/* backups-internal.h */
int backups_app_host_get(struct store *s, const char *id, char *buf, size_t len)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT host FROM apps WHERE id = ?", "s", id);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		const char *h = store_col_text(st, 0);
		snprintf(buf, len, "%s", h ? h : "");
		r = 0;
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	return r;
}

/* The source's switch: installed on `source` (or unplaced) → pending_move
 * on `target`. 1 if done, 0 if the app was not so. */
static int64_t row_hand_over(struct store *s, const char *id, const char *source, const char *target)
{
	return store_run(s,
			 "UPDATE apps SET install_state = 'pending_move', host = ? WHERE id = ? AND "
			 "install_state = 'installed' AND (host IS NULL OR host = ?)",
			 "sss", target, id, source);
}

/* The source's abort: pending_move → installed, back on `source`. 1 if it
 * won (the target did not commit), 0 if the target committed. */
static int64_t row_abort(struct store *s, const char *id, const char *source)
{
	return store_run(s,
			 "UPDATE apps SET install_state = 'installed', host = ? WHERE id = ? AND "
			 "install_state = 'pending_move'",
			 "ss", source, id);
}

/* ---- the source: the move task ------------------------------------------------- */

struct move {
	struct task_ctx *ctx;
	struct app app;
	char self[HOST_ID_MAX + 1];
	const char *target;
	char *dir;
	char container[APP_ID_MAX + 8];
	char container_id[ENGINE_ID_MAX]; /* the source's container ("": none) */
	bool was_running;
	struct engine *eng;
};

/* Start the source's container again (it was running before the move),
 * keeping the task's error. */
static void source_restart(struct move *m)
{
	struct task_ctx *ctx = m->ctx;
	if (!m->was_running || m->app.stopped || !m->eng)
		return;
	char code[sizeof(ctx->error_code)], msg[sizeof(ctx->error_message)];
	memcpy(code, ctx->error_code, sizeof(code));
	memcpy(msg, ctx->error_message, sizeof(msg));
	if (app_container_start_checked(ctx, m->eng, &m->app, m->dir, m->container, false, 0) < 0) {
		printf("warning: container %s not started again: %s\n", m->container, ctx->error_message);
		app_set(ctx->store, m->app.id, "install_state", "error");
	} else {
		app_set(ctx->store, m->app.id, "run_state", "running");
		printf("the app runs on %s again\n", m->self);
	}
	fflush(stdout);
	memcpy(ctx->error_code, code, sizeof(code));
	memcpy(ctx->error_message, msg, sizeof(msg));
}

/* Queue move.restore on the target. 0 with *ret_id, or a negative errno
 * after task_ctx_fail(). */
static int queue_target_step(struct move *m, int64_t backup_id, int64_t *ret_id)
{
	struct task_ctx *ctx = m->ctx;
	json_t *args = json_pack("{s:I, s:I, s:s}", "backupId", (json_int_t)backup_id, "moveTask",
				 (json_int_t)ctx->task->id, "source", m->self);
	char *text = args ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(args);
	if (!text)
		return task_ctx_fail(ctx, -ENOMEM, "internal", "out of memory");
	struct task_enqueue e = { .type = "move.restore", .app_id = m->app.id, .args_json = text, .run_on = m->target };
	struct task_enqueued out;
	int r = task_enqueue(ctx->store, ctx->config, &e, &out);
	free(text);
	if (r < 0)
		return task_ctx_fail(ctx, r, "store_error", "cannot queue the restore on %s: %s", m->target,
				     out.message[0] ? out.message : store_errmsg(ctx->store));
	*ret_id = out.id;
	printf("queued task %lld (move.restore) on host %s\n", (long long)out.id, m->target);
	fflush(stdout);
	return 0;
}

/* Wait for the target's step to end. 0 with *ret (task_release it);
 * -ECANCELED / -EHOSTDOWN when the move was stopped or the target is gone
 * (the caller tries to abort then). */
static int wait_target_step(struct move *m, int64_t id, struct task *ret)
{
	struct task_ctx *ctx = m->ctx;
	for (;;) {
		struct task t;
		int r = task_get(ctx->store, id, &t);
		if (r == 0 && task_state_is_final(t.state)) {
			*ret = t;
			return 0;
		}
		if (r == 0) {
			task_ctx_progress(ctx, 60, "Restoring on %s (task %lld: %s)", m->target, (long long)id,
					  t.message && t.message[0] ? t.message : task_state_name(t.state));
			task_release(&t);
		}
		/* Gone or unknown (host_liveness.h) ends the wait; a store
		 * error does not: the next poll asks again. */
		enum host_state hs;
		if (host_liveness(ctx->store, m->target, &hs, NULL) == 0 && hs != HOST_ALIVE)
			return -EHOSTDOWN;
		if (task_ctx_sleep(ctx, WAIT_POLL_MS) < 0)
			return -ECANCELED;
	}
}

/* The target has the app: the source's container (by its id: the name
 * may be the target's own container on an engine both share) and data dir
 * go; the backup stays. */
static int source_remove(struct move *m)
{
	struct task_ctx *ctx = m->ctx;
	char err[700];
	int r = task_ctx_lock_here(ctx, "platform", LOCK_SHARED);
	if (r >= 0)
		r = task_ctx_lock_here(ctx, "service:sftp", LOCK_SHARED);
	if (r >= 0)
		r = task_ctx_fence_check(ctx, "removing the app from the source host");
	if (r < 0)
		return r;
	task_ctx_progress(ctx, 90, "Removing the app's container and data on %s", m->self);
	r = backups_move_remove_leftovers(ctx, m->eng, m->container_id, m->dir, err, sizeof(err));
	if (r < 0)
		return task_ctx_fail(ctx, r, "cleanup_failed", "the app moved to %s, but on %s %s", m->target, m->self,
				     err);
	return 0;
}

static int run_move(struct task_ctx *ctx)
{
	struct move m = { .ctx = ctx, .target = json_string_value(json_object_get(ctx->args, "host")) };
	const char *id = ctx->task->app_id;
	char host[64] = "", err[512];
	struct task step = { 0 };
	int64_t step_id = 0;
	bool handed_over = false;
	int r = host_id_get(m.self, sizeof(m.self));
	if (r < 0 || !m.target) {
		r = task_ctx_fail(ctx, r < 0 ? r : -EINVAL, "internal", "no host id, or no target host");
		goto out;
	}
	snprintf(m.container, sizeof(m.container), "app-%s", id);
	if ((r = app_get(ctx->store, id, &m.app)) < 0 || (r = backups_app_host_get(ctx->store, id, host, sizeof(host))) < 0) {
		r = task_ctx_fail(ctx, r, r == -ENOENT ? "not_found" : "store_error", "cannot load app %s: %s", id,
				  r == -ENOENT ? "no such app" : store_errmsg(ctx->store));
		goto out;
	}
	if (strcmp(m.app.install_state, "installed") != 0) {
		r = task_ctx_fail(ctx, -EBUSY, "bad_state", "app %s is %s; a move needs it installed", id,
				  m.app.install_state);
		goto out;
	}
	if (host[0] && strcmp(host, m.self) != 0) {
		r = task_ctx_fail(ctx, -EBUSY, "wrong_host", "app %s is on host %s, not on %s", id, host, m.self);
		goto out;
	}
	if ((r = app_data_dir_checked(ctx->config, &m.app, &m.dir, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_path", "%s", err);
		goto out;
	}
	struct engine_options eo = { .socket_path = ctx->config->engine_socket };
	if ((r = engine_open_opts(&eo, &m.eng, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "engine_unavailable", "%s", err);
		goto out;
	}

	/* 1. Stopped, then backed up: what the target restores is all the
	 * app wrote. */
	if ((r = task_ctx_lock_here(ctx, "platform", LOCK_SHARED)) < 0 ||
	    (r = task_ctx_fence_check(ctx, "stopping the app to move it")) < 0)
		goto out;
	struct engine_container c = { 0 };
	if (engine_container_inspect(m.eng, m.container, &c) == 0) {
		snprintf(m.container_id, sizeof(m.container_id), "%s", c.id);
		m.was_running = c.running;
		engine_container_release(&c);
	}
	task_ctx_progress(ctx, 5, "Stopping container %s on %s", m.container, m.self);
	r = engine_container_stop(m.eng, m.container, CONTAINER_STOP_TIMEOUT_S);
	if (r < 0 && r != -ENOENT) {
		r = task_ctx_fail(ctx, r, "engine_error", "cannot stop container %s: %s", m.container, engine_errmsg(m.eng));
		goto out;
	}
	app_set(ctx->store, id, "run_state", "stopped");
	struct archived ar;
	int64_t ms = 0;
	if ((r = backups_ensure_dir(ctx)) < 0 || (r = backups_archive_app(ctx, &m.app, m.dir, 10, 50, &ar, &ms)) < 0)
		goto out;
	printf("backed up %s on %s: backup %lld, %lld bytes of data in %lld ms\n", id, m.self, (long long)ar.id,
	       (long long)ar.data_bytes, (long long)ms);
	fflush(stdout);

	/* 2. Handed over to the target, which alone may claim the restore.
	 * First the cleanup of what stays here, should this worker not live
	 * to remove it (app_move_cleanup.c). */
	if ((r = backups_move_queue_cleanup(ctx, id, m.self, m.container_id, m.dir)) < 0)
		goto out;
	int64_t n = row_hand_over(ctx->store, id, m.self, m.target);
	if (n != 1) {
		r = task_ctx_fail(ctx, n < 0 ? (int)n : -EBUSY, n < 0 ? "store_error" : "bad_state",
				  "cannot hand app %s over to %s: %s", id, m.target,
				  n < 0 ? store_errmsg(ctx->store) : "its row changed");
		goto out;
	}
	handed_over = true;
	if ((r = queue_target_step(&m, ar.id, &step_id)) < 0)
		goto out;
	/* The target's step takes `platform` (its host's) and service:sftp
	 * shared: none held here while it runs, so no exclusive waiter
	 * queued between them can deadlock the two. */
	task_ctx_unlock_here(ctx, "platform");

	/* 3. Wait for it. */
	r = wait_target_step(&m, step_id, &step);
	if (r < 0) {
		int64_t won = row_abort(ctx->store, id, m.self);
		if (won == 1) {
			handed_over = false;
			task_request_stop(ctx->store, step_id, "stopped");
			r = task_ctx_fail(ctx, r, r == -ECANCELED ? TASK_ERR_STOPPED : "host_gone",
					  "%s; the move was called off, the app stays on %s",
					  r == -ECANCELED ? "stopped" : "the target host's heartbeat is gone", m.self);
		} else {
			handed_over = false;
			m.was_running = false; /* the target has it now */
			r = task_ctx_fail(ctx, r, r == -ECANCELED ? TASK_ERR_STOPPED : "host_gone",
					  "%s after host %s took app %s over (task %lld): it is placed there; its data "
					  "stays on %s too", r == -ECANCELED ? "stopped" : "the heartbeat of the target is gone",
					  m.target, id, (long long)step_id, m.self);
		}
		goto out;
	}
	if (step.state != TASK_SUCCEEDED) {
		int64_t won = row_abort(ctx->store, id, m.self);
		handed_over = false;
		if (won != 1)
			m.was_running = false;
		r = task_ctx_fail(ctx, -EIO, "move_failed", "the restore on %s (task %lld) %s: %s; %s", m.target,
				  (long long)step_id, task_state_name(step.state),
				  step.error_message ? step.error_message : "no message",
				  won == 1 ? "the app stays on this host" : "it had taken the app over: the app is placed "
									    "there, its data stays here too");
		goto out;
	}

	/* 4. The target runs it: nothing of it stays here but the backup. */
	m.was_running = false;
	if ((r = source_remove(&m)) < 0)
		goto out;
	ctx->result = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "appId", id, "from", m.self, "to", m.target,
				"backupId", (json_int_t)ar.id, "restoreTask", (json_int_t)step_id, "dataBytes",
				(json_int_t)ar.data_bytes);
	r = 0;
out:
	if (r < 0 && handed_over && row_abort(ctx->store, id, m.self) != 1)
		m.was_running = false;
	if (r < 0)
		source_restart(&m);
	task_release(&step);
	engine_close(m.eng);
	free(m.dir);
	app_release(&m.app);
	return r;
}

/* ---- admission and registration ----------------------------------------------- */

static int move_admit(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	struct app_move_admission *adm = e->userdata;
	struct app a;
	int r = app_get(s, e->app_id, &a);
	if (r == -ENOENT) {
		snprintf(ret->message, sizeof(ret->message), "no app %s", e->app_id);
		return r;
	}
	if (r < 0)
		return r;
	bool installed = strcmp(a.install_state, "installed") == 0;
	if (!installed)
		snprintf(ret->message, sizeof(ret->message), "app %s is %s; a move needs it installed", e->app_id,
			 a.install_state);
	app_release(&a);
	if (!installed)
		return -EBUSY;
	struct task t;
	r = task_find_active(s, &(struct task_match){ .app_id = e->app_id }, &t);
	if (r == 0) {
		snprintf(ret->message, sizeof(ret->message), "app %s is busy: task %lld (%s) is %s; move it once that ends",
			 e->app_id, (long long)t.id, t.type, task_state_name(t.state));
		ret->id = t.id;
		ret->code = "app_busy";
		task_release(&t);
		return -EBUSY;
	}
	if (r != -ENOENT)
		return r;
	char host[64];
	if ((r = backups_app_host_get(s, e->app_id, host, sizeof(host))) < 0)
		return r;
	snprintf(adm->source, sizeof(adm->source), "%s", host[0] ? host : adm->self_host);
	if (strcmp(adm->source, adm->target) == 0) {
		snprintf(ret->message, sizeof(ret->message), "app %s is already on host %s", e->app_id, adm->target);
		ret->code = "same_host";
		return -EEXIST;
	}
	return 0;
}

static int move_created(struct store *s, const struct task_enqueue *e, int64_t id)
{
	const struct app_move_admission *adm = e->userdata;
	int r = app_set_task(s, e->app_id, id);
	if (r < 0)
		return r;
	int64_t n = store_run(s, "UPDATE tasks SET run_on = ? WHERE id = ?", "si", adm->source, id);
	return n < 0 ? (int)n : 0;
}

void app_move_enqueue_init(struct task_enqueue *e, const char *app_id, const char *args_json,
			   struct app_move_admission *adm)
{
	*e = (struct task_enqueue){ .type = "move", .app_id = app_id, .args_json = args_json, .admit = move_admit,
				    .created = move_created, .userdata = adm };
}

static int move_validate(json_t *args, char *err, size_t errlen)
{
	json_t *h = json_object_get(args, "host");
	if (json_object_size(args) != 1 || !json_is_string(h) || !host_id_valid(json_string_value(h))) {
		snprintf(err, errlen, "move: args are {\"host\": HOST ID}");
		return -EINVAL;
	}
	return 0;
}

static int cleanup_validate(json_t *args, char *err, size_t errlen)
{
	const char *id = json_string_value(json_object_get(args, "appId"));
	if (!id || !*id || strlen(id) > APP_ID_MAX || !json_is_string(json_object_get(args, "containerId")) ||
	    !json_is_string(json_object_get(args, "dataDir"))) {
		snprintf(err, errlen, "move.cleanup: args are {\"appId\", \"containerId\", \"dataDir\", \"moveTask\"}");
		return -EINVAL;
	}
	return 0;
}

/* move: the app for the whole move; `platform` while it stops and backs
 * up, `platform` and service:sftp while it removes the old data dir — not
 * while it waits for the target's step, which takes those itself.
 * move.restore: an app task's locks but app:<id>, which its move holds. */
static const struct task_type move_types[] = {
	{ .name = "move", .app_task = true, .validate = move_validate,
	  .locks = { { "app:%s", LOCK_EXCLUSIVE }, { "platform:%h", LOCK_SHARED, .later = true },
		     { "service:sftp:%h", LOCK_SHARED, .later = true } },
	  .run = run_move },
	{ .name = "move.restore",
	  .locks = { { "platform:%h", LOCK_SHARED }, { "service:sftp:%h", LOCK_SHARED } },
	  .run = backups_run_move_restore },
	{ .name = "move.cleanup", .validate = cleanup_validate,
	  .locks = { { "app:%s", LOCK_EXCLUSIVE, .arg = "appId" }, { "platform:%h", LOCK_SHARED },
		     { "service:sftp:%h", LOCK_SHARED } },
	  .run = backups_run_move_cleanup },
};

void app_move_register_task_types(void)
{
	for (size_t i = 0; i < sizeof(move_types) / sizeof(move_types[0]); i++)
		task_type_register(&move_types[i]);
}
