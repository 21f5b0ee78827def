/* task_ctx_lock.h — the one way a task waits for a lock.
 *
 * A task waits for locks in two places: the worker, for the locks of its
 * type before the handler runs (task_type_locks()), and a handler, for a
 * lock it takes while it runs (the full backup's app:<id>, one app after
 * another; the update's `platform` for its apply). Both wait alike:
 *   - as the task's lock owner (ctx->owner, whose locks the worker's lease
 *     thread renews), on the worker's lock-store connection
 *     (ctx->lock_store), without deadline, until the task is stopped
 *     (*ctx->cancel: -ECANCELED);
 *   - visibly: the task is `waiting`, with waitingFor and the message
 *     "Waiting for app:x (held by task 17, restart)" (task_report_waiting()),
 *     the same line in the task's log, and `running` again once granted;
 *   - an exclusive request that a full backup's `platform` holding blocks
 *     waits outside the lock queue for up to [tasks] backup_wait_max, so
 *     that app tasks go on meanwhile (lock_doc.h, LOCK_ACQ_DEFER);
 *   - through the daemon's per-host lock broker ([locks] broker,
 *     locks/broker.h) when it runs, else directly (locks/broker_client.h:
 *     a broker that goes away mid-wait leaves the task waiting directly);
 *   - a store outage is waited out for up to [store] outage_grace and told
 *     of in the log and the task's message (task_outage.h); a busy
 *     database never ends the wait.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "locks/lock_doc.h"
#include "task_type.h"

/* The worker: take `reqs` all at once before run(). *ret_token: the
 * fencing token of the grant. 0, -ECANCELED (stopped while waiting), or
 * another negative errno (store_errmsg(ctx->lock_store) says why).
 * Records no error and leaves entering `running` to the worker. */
int task_ctx_lock_all(struct task_ctx *ctx, const struct lock_req *reqs, size_t n, int64_t *ret_token);

/* A handler: take `name` in `mode`, which the task's type must declare as
 * a `later` lock (task_type.h; the lock matrix lists them), and log
 * "took NAME MODE (fencing token N)". It stays held until
 * task_ctx_unlock() or the end of the task (the worker releases all of
 * the task's locks). 0; -ECANCELED when stopped while waiting (no error
 * recorded); another negative errno after task_ctx_fail() (lock_error, or
 * undeclared_lock for a lock the type does not declare). */
int task_ctx_lock(struct task_ctx *ctx, const char *name, enum lock_mode mode);

/* task_ctx_lock() and task_ctx_unlock() of this host's lock of a per-host
 * resource: "<base>:<host id>" (task_host_lock_name(); "platform" names
 * "platform:<host id>"). */
int task_ctx_lock_here(struct task_ctx *ctx, const char *base, enum lock_mode mode);
void task_ctx_unlock_here(struct task_ctx *ctx, const char *base);

/* The daemon's lock broker socket for `cfg`, or NULL when [locks] broker
 * is off (a static buffer). */
const char *task_lock_broker_path(const struct boxd_config *cfg);

/* Release `name` now. A failure leaves it to the worker's release at the
 * end of the task. */
void task_ctx_unlock(struct task_ctx *ctx, const char *name);
