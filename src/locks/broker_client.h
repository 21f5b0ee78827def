/* broker_client.h — a worker's side of the per-host lock broker
 * (broker.h), with the direct CAS loop (locks.h) as its fallback.
 *
 * locks_acquire_brokered() and locks_unlock_brokered() take the same
 * arguments as locks_acquire() and locks_unlock() plus the broker's socket
 * path (NULL: always direct). They ask the broker when one listens there
 * and go the direct way, seamlessly, when none does (the daemon is not
 * started, was killed, is re-executing), when the connection breaks, or
 * when the broker hands a request back (a round its store did not take).
 *
 * A broken connection is never taken as an answer: the client re-reads
 * the document. Holding every lock it asked for means the broker's grant
 * committed before it went away: it holds (the fencing token is then the
 * version it read, later than the grant's). Having a ticket means it keeps
 * waiting on that ticket directly (its place in the queue is kept).
 * Neither: it requests directly. An unlock whose answer was lost is done
 * again directly (idempotent); if the holdings were gone already,
 * *ret_unlocked counts them as released by the broker.
 *
 * The waiting (deadline, cancel, on_wait with the blocker) behaves as in
 * locks_acquire(); the broker tells the blocker, the client keeps the
 * deadline and the cancel: it sends a cancel and takes the broker's last
 * word (a grant that crossed the cancel is a grant: 0, as the direct loop
 * returns a grant it got before it saw the cancel).
 *
 * One connection per process, opened at the first use and kept; a process
 * that forked opens its own. Not thread-safe: one thread of a process
 * uses it (a worker's main thread).
 */
#pragma once

#include "locks.h"

int locks_acquire_brokered(const char *socket_path, struct store *s, const struct lock_owner *owner,
			   const struct lock_req *reqs, size_t n, const struct locks_acquire_opts *opts,
			   int64_t *ret_version, struct lock_blocker *ret_blocker);

int locks_unlock_brokered(const char *socket_path, struct store *s, const struct lock_owner *owner,
			  const char *const *names, size_t n, int *ret_unlocked);

/* Close this process's broker connection (the next call connects again). */
void lock_broker_client_close(void);

struct lock_broker_client_stats {
	uint64_t brokered;     /* requests answered by the broker */
	uint64_t direct;       /* requests done directly: no broker */
	uint64_t fallbacks;    /* requests the broker started and the client finished directly */
	uint64_t held_on_reread; /* ...of which the re-read found the grant committed */
	uint64_t wakeups;      /* waits woken with no message (a slice ended, a signal) */
	uint64_t waiting_messages; /* WAITING messages received: what a request waits for */
	uint64_t prepares;     /* PREPARE hints received (a grant likely follows) */
};
void lock_broker_client_stats_get(struct lock_broker_client_stats *ret);
