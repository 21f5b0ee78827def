/* worker_lease.h — a worker holds the lease of its own locks.
 *
 * On a database shared by several hosts every holding and ticket carries a
 * lease in the database's clock, and another host frees them once it has
 * expired (locks.h). The lease is renewed by the process that acts on the
 * locks — the worker — not by its daemon: a daemon that is frozen or cut
 * off must not make its workers' locks expire while they run on, and must
 * not keep alive the locks of a worker that is frozen itself.
 *
 * worker_lease_start() starts a thread, which opens a store connection of
 * its own once the worker holds locks. While it does, it renews the
 * worker's holdings every period (a tenth of the lease), so that an outage
 * of up to lease - period - margin (8.5 s of the default 10 s) is ridden
 * out, and keeps a deadline in this process's monotonic clock: when, at
 * the earliest, a holding's lease may end, counted from before the renewal
 * was sent. (A waiting worker renews its ticket's lease itself while it
 * polls, locks.h; a worker that holds nothing needs no thread work.) While the worker holds locks, and
 *   - it could not renew before that deadline (less a margin: a store
 *     outage longer than the lease), or
 *   - it finds its holdings gone (another host freed them after they had
 *     expired, e.g. while this worker was frozen),
 * the thread stops the worker from acting at once: it kills every other
 * process of the worker's process group (what the handler started),
 * leaves the outcome (failed, lease_lost) beside the task log, and exits
 * the process with WORKER_EXIT_LEASE_LOST. The supervisor records the end
 * and frees whatever is left. A worker that only waits (holds nothing) is
 * not stopped: it acts on nothing.
 *
 * The fencing check (task_ctx_fence_check(), task_type.h) reads the lock
 * document before an irreversible step, for what the renewal cannot
 * cover: a worker frozen right before such a step.
 *
 * Threads: the renewal thread owns its connection; the fields shared with
 * the worker's main thread are atomics.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "locks/lock_doc.h"

struct worker_lease;

/* Start renewing the leases of `owner` (the worker; task `task_id`) with
 * [store] lease from cfg (> 0). 0 or negative errno. */
int worker_lease_start(const struct boxd_config *cfg, const struct lock_owner *owner, int64_t task_id,
		       struct worker_lease **ret);

/* Main thread: the worker holds its task's locks (true right after the
 * grant; false right before it releases them). */
void worker_lease_set_holding(struct worker_lease *l, bool holding);

/* How long, by this process's clock, the worker's holdings are known to
 * stay leased (INT64_MAX before any holding). */
int64_t worker_lease_left_ms(struct worker_lease *l);

/* Stop the thread and close its connection. Accepts NULL. */
void worker_lease_stop(struct worker_lease *l);
