/* task_ctx_lock.c — see task_ctx_lock.h. */
#include "task_ctx_lock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "locks/broker.h"
#include "locks/broker_client.h"
#include "locks/locks.h"
#include "store/store_retry.h"
#include "task.h"
#include "task_outage.h"

const char *task_lock_broker_path(const struct boxd_config *cfg)
{
	static char path[108];
	if (!cfg->lock_broker || lock_broker_socket_path(cfg->state_dir, path, sizeof(path)) < 0)
		return NULL;
	return path;
}

struct waiter {
	struct task_ctx *ctx;
	struct task_outage outage;
	bool waited;
};

static struct store *lock_store(const struct task_ctx *ctx)
{
	return ctx->lock_store ? ctx->lock_store : ctx->store;
}

/* The row shows what the task waits for and who holds it. */
static void on_wait(const struct lock_blocker *b, void *userdata)
{
	struct waiter *w = userdata;
	char msg[256];
	if (task_report_waiting(w->ctx->store, w->ctx->task->id, b, msg, sizeof(msg)) >= 0)
		log_info("task %lld: %s", (long long)w->ctx->task->id, msg);
	w->waited = true;
}

static void on_store_error(int err, const struct store_retry *rt, const char *msg, void *userdata)
{
	struct waiter *w = userdata;
	if (err == 0) {
		char since[32];
		store_retry_since(rt, since, sizeof(since));
		log_info("task %lld: store available again (waiting for locks): the outage since %s lasted %lld ms",
			 (long long)w->outage.task_id, since, (long long)store_retry_elapsed_ms(rt));
		return;
	}
	task_outage_note(&w->outage, rt, err, msg, "waiting for locks");
}

static int wait_for(struct task_ctx *ctx, const struct lock_req *reqs, size_t n, int64_t *ret_token,
		    bool *ret_waited)
{
	struct waiter w = { .ctx = ctx, .outage = { .s = ctx->store, .task_id = ctx->task->id } };
	struct store_retry rt;
	store_retry_init(&rt, ctx->config->outage_grace_ms);
	rt.busy_is_waiting = true; /* waiting is our job, not the busy handler's */
	struct locks_acquire_opts opts = {
		.timeout_ms = -1, .on_wait = on_wait, .userdata = &w, .cancel = ctx->cancel,
		.lease_ms = config_lease_ms(ctx->config),
		/* Whoever reaps a gone host's locks first fails its task. */
		.on_expired = task_lock_lease_expired, .expired_userdata = ctx->store,
		.retry = &rt, .on_store_error = on_store_error,
		/* An exclusive request that a full backup blocks waits outside
		 * the queue, so app tasks go on (lock_doc.h). */
		.defer_ms = ctx->config->backup_wait_max_ms,
	};
	/* Through the daemon's lock broker when it runs; else, or when it goes
	 * away meanwhile, directly (broker_client.h). */
	int r = locks_acquire_brokered(task_lock_broker_path(ctx->config), lock_store(ctx), ctx->owner, reqs, n, &opts,
				       ret_token, NULL);
	if (ret_waited)
		*ret_waited = w.waited;
	return r;
}

int task_ctx_lock_all(struct task_ctx *ctx, const struct lock_req *reqs, size_t n, int64_t *ret_token)
{
	return wait_for(ctx, reqs, n, ret_token, NULL);
}

int task_ctx_lock(struct task_ctx *ctx, const char *name, enum lock_mode mode)
{
	struct lock_req req = { .mode = mode };
	const struct task_type *type = task_type_find(ctx->task->type);
	if (snprintf(req.name, sizeof(req.name), "%s", name) >= (int)sizeof(req.name) || !type ||
	    !task_type_declares_later(type, &req))
		return task_ctx_fail(ctx, -EPERM, "undeclared_lock",
				     "task type %s does not declare %s %s among the locks it takes while it runs",
				     ctx->task->type, name, lock_mode_name(mode));
	int64_t token;
	bool waited;
	int r = wait_for(ctx, &req, 1, &token, &waited);
	if (r == -ECANCELED)
		return r;
	if (r < 0)
		return task_ctx_fail(ctx, r, "lock_error", "cannot take %s: %s", req.name, store_errmsg(lock_store(ctx)));
	log_info("task %lld: took %s %s (fencing token %lld)", (long long)ctx->task->id, req.name, lock_mode_name(mode),
		 (long long)token);
	if (waited)
		(void)task_set_running(ctx->store, ctx->task->id); /* back from waiting */
	return 0;
}

void task_ctx_unlock(struct task_ctx *ctx, const char *name)
{
	const char *names[] = { name };
	(void)locks_unlock_brokered(task_lock_broker_path(ctx->config), lock_store(ctx), ctx->owner, names, 1, NULL);
}

int task_ctx_lock_here(struct task_ctx *ctx, const char *base, enum lock_mode mode)
{
	char name[LOCK_NAME_MAX];
	int r = task_host_lock_name(base, name, sizeof(name));
	if (r < 0)
		return task_ctx_fail(ctx, r, "lock_error", "cannot name this host's %s lock: %s", base, strerror(-r));
	return task_ctx_lock(ctx, name, mode);
}

void task_ctx_unlock_here(struct task_ctx *ctx, const char *base)
{
	char name[LOCK_NAME_MAX];
	if (task_host_lock_name(base, name, sizeof(name)) == 0)
		task_ctx_unlock(ctx, name);
}
