/* fence.c — task_ctx_fence_check(): see task_type.h and worker_lease.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "locks/locks.h"
#include "store/store_retry.h"
#include "task_type.h"
#include "worker_lease.h"

/* Less lease than this left by the database's clock: too little to start
 * an irreversible step under it. */
#define FENCE_MIN_LEASE_MS 1000

/* One look at the document. 1: the grant stands; 0: it does not (why in
 * msg); negative errno: the store failed. */
static int look(struct task_ctx *ctx, const struct task_fence *f, char *msg, size_t len)
{
	struct lock_doc doc;
	int64_t version = 0, now = 0;
	int r = locks_read(ctx->store, &doc, &version, NULL);
	if (r < 0)
		return r;
	if (f->lease_ms > 0 && (r = store_now_ms(ctx->store, &now)) < 0) {
		lock_doc_release(&doc);
		return r;
	}
	int ok = 1;
	for (size_t i = 0; i < f->n_locks && ok; i++) {
		int64_t lease = 0;
		if (!lock_doc_holds(&doc, ctx->owner, f->locks[i].name, &lease)) {
			snprintf(msg, len, "the lock document (version %lld) no longer records its grant of %s",
				 (long long)version, f->locks[i].name);
			ok = 0;
		} else if (f->lease_ms > 0 && lease - now < FENCE_MIN_LEASE_MS) {
			snprintf(msg, len, "its lease on %s ends in %lld ms by the database's clock", f->locks[i].name,
				 (long long)(lease - now));
			ok = 0;
		}
	}
	lock_doc_release(&doc);
	return ok;
}

int task_ctx_fence_check(struct task_ctx *ctx, const char *step)
{
	const struct task_fence *f = ctx->fence;
	if (!f || f->n_locks == 0)
		return 0;
	struct store_retry rt;
	store_retry_init(&rt, f->outage_grace_ms);
	char why[300] = "";
	for (;;) {
		if (worker_lease_left_ms(f->lease) < FENCE_MIN_LEASE_MS) {
			snprintf(why, sizeof(why), "its lease could not be renewed in time");
			break;
		}
		int r = look(ctx, f, why, sizeof(why));
		if (r == 1) {
			if (rt.since_mono_ms)
				log_info("task %lld: fencing check before %s: the store answers again after %lld ms",
					 (long long)ctx->task->id, step, (long long)store_retry_done(&rt));
			return 0;
		}
		if (r == 0)
			break;
		if (store_retry_failed(&rt, r) < 0)
			return task_ctx_fail(ctx, r, "store_unavailable",
					     "cannot check the task's locks before %s (fencing token %lld): %s", step,
					     (long long)f->token, store_errmsg(ctx->store));
		if (store_retry_first(&rt))
			log_warn("task %lld: fencing check before %s: the store is unavailable (%s); retrying",
				 (long long)ctx->task->id, step, store_errmsg(ctx->store));
		store_retry_sleep(&rt);
	}
	log_error("task %lld: fencing token %lld is stale before %s: %s; aborting", (long long)ctx->task->id,
		  (long long)f->token, step, why);
	return task_ctx_fail(ctx, -ESTALE, "lease_lost", "not done: %s (fencing token %lld is stale): %s", step,
			     (long long)f->token, why);
}
