/* locks_batch.h — many lock requests applied to the document in one change.
 *
 * The per-host lock broker (broker.h) collects the requests and releases
 * of its host's workers and commits them all with one compare-and-swap
 * (group commit, locks_commit_batch() in locks.h). What one such change
 * does to the document is this pure function, so that it can be tested
 * without a store:
 *
 *   1. releases first (unlocks and cancelled tickets, in the order given):
 *      a lock released in this round can be handed to a waiter of the same
 *      round, in the same write;
 *   2. expired tickets are pruned (as every acquire of locks.c does);
 *   3. acquires in FIFO order: those with a ticket by ascending ticket,
 *      then the newcomers in the order given (the broker gives them in
 *      arrival order). Each is lock_doc_acquire_ex() on the document as
 *      the items before it left it, so the rules of lock_doc.h hold between
 *      the items of one batch exactly as between separate changes: an
 *      earlier ticket is served first, and a newcomer queues behind the
 *      waiters it conflicts with.
 *
 * Every item gets its own result; an item that fails (a bad request)
 * leaves the document as it was and does not stop the others.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock_doc.h"

enum lock_batch_op {
	LOCK_BATCH_ACQUIRE,
	LOCK_BATCH_UNLOCK,  /* names (all of the owner's holdings if n_names 0) */
	LOCK_BATCH_CANCEL,  /* remove ticket `ticket` (a waiter that gives up) */
};

struct lock_batch_item {
	enum lock_batch_op op;
	struct lock_owner owner;      /* identity; holdings get the lease below */
	/* ACQUIRE */
	const struct lock_req *reqs;
	size_t n;
	bool queue;                   /* take or keep a ticket when refused */
	int64_t ticket;               /* the committed ticket (0: none); CANCEL: the ticket */
	int64_t ttl_ms;               /* ticket expiry (> 0) */
	int64_t lease_ms;             /* holders' and tickets' lease; 0: none */
	unsigned flags;               /* LOCK_ACQ_* */
	/* UNLOCK */
	const char *const *names;
	size_t n_names;

	/* Out, from the latest application: ACQUIRE 1 granted, 0 refused;
	 * UNLOCK the number of holdings removed; CANCEL 1 removed, 0 not
	 * found; or a negative errno for this item. */
	int result;
	int64_t attempt_ticket;       /* ACQUIRE: the ticket after it (0: none) */
	struct lock_blocker blocker;  /* ACQUIRE refused: what it waits for */
	bool next_in_line;            /* ACQUIRE refused: only holders in front */
};

/* Apply `items` to `doc` at `now_ms` (the database's clock). Returns the
 * number of items applied without error (each item's `result` says how
 * it went); the document keeps every invariant of lock_doc_verify(). */
int lock_doc_apply_batch(struct lock_doc *doc, struct lock_batch_item *items, size_t n, int64_t now_ms);
