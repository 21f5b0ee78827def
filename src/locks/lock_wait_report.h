/* lock_wait_report.h — when a waiting request tells its caller what it
 * waits for (locks_acquire_opts.on_wait), for both ways of waiting: the
 * direct loop (locks.c) and the broker's client (broker_client.c).
 *
 * A waiter is told at once when it starts waiting, when it waits for
 * another lock, or when it goes from waiting outside the queue (deferred)
 * to queued. A new holder or earlier waiter of the same lock is told at
 * most every LOCK_WAIT_REPORT_MS, the latest one, because each report is a
 * write of the task's row: with N tasks queued on one name, each hand-off
 * changed the holder of all N and the fleet wrote N rows per hand-off
 * (N² per queue drained; 3 hosts x 200 waiters stalled PostgreSQL). The
 * row may thus name a holder that has just finished, for at most that
 * long.
 *
 * The lock broker applies the same rule, with a shorter interval, to the
 * WAITING messages it sends its waiting clients (broker.c): otherwise each
 * hand-off of a lock woke every waiter of that lock on the host. It also
 * tells a client nothing of a wait shorter than a few milliseconds: a
 * message and a wake-up for a request granted a moment later.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "locks.h"

#define LOCK_WAIT_REPORT_MS 5000

struct lock_wait_report {
	int64_t interval_ms;        /* 0: LOCK_WAIT_REPORT_MS */
	/* The first report waits until the request has waited first_after_ms
	 * since since_mono_ms (0: at once): a wait shorter than that is told
	 * nothing (the broker's WAITING, below). */
	int64_t first_after_ms, since_mono_ms;
	struct lock_blocker shown;  /* what on_wait last got */
	struct lock_blocker latest; /* what the waiter waits for now */
	int64_t shown_mono_ms;      /* when; 0: never */
	bool pending;               /* latest differs from shown, not told yet */
};

/* The waiter now waits for `b`: on_wait at once, or later (pending). True
 * when on_wait was called. */
bool lock_wait_report_seen(struct lock_wait_report *wr, const struct lock_blocker *b,
			   const struct locks_acquire_opts *opts);
/* Tell a pending report once it is due. True when on_wait was called. */
bool lock_wait_report_flush(struct lock_wait_report *wr, const struct locks_acquire_opts *opts);
/* The blocker the waiter waits for now, told or not; NULL before the first. */
const struct lock_blocker *lock_wait_report_current(const struct lock_wait_report *wr);
/* Milliseconds until a pending report is due (0: now), or INT64_MAX when
 * none is pending: a waiter that sleeps wakes up for it. */
int64_t lock_wait_report_due_in_ms(const struct lock_wait_report *wr);
