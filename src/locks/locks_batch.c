/* locks_batch.c — see locks_batch.h. */
#include "locks_batch.h"

#include <errno.h>
#include <stdlib.h>

static int apply_release(struct lock_doc *doc, struct lock_batch_item *it)
{
	if (it->op == LOCK_BATCH_UNLOCK)
		return lock_doc_unlock(doc, &it->owner, it->names, it->n_names);
	return lock_doc_cancel_ticket(doc, it->ticket);
}

static int apply_acquire(struct lock_doc *doc, struct lock_batch_item *it, int64_t now_ms)
{
	/* The lease is stamped in the database's clock of this change. */
	struct lock_owner owner = lock_owner_leased(&it->owner, now_ms, it->lease_ms);
	it->attempt_ticket = it->ticket;
	it->blocker = (struct lock_blocker){ .lock = "" };
	it->next_in_line = false;
	int r = lock_doc_acquire_ex(doc, &owner, it->reqs, it->n, it->queue ? &it->attempt_ticket : NULL, now_ms,
				    it->ttl_ms, it->flags, &it->blocker);
	if (r == 0)
		it->next_in_line = lock_doc_next_in_line(doc, &it->owner, it->reqs, it->n, it->attempt_ticket);
	return r;
}

/* FIFO among the acquires: tickets ascending, newcomers (0) after them in
 * the order given. */
static int by_ticket(const void *a, const void *b)
{
	const struct lock_batch_item *x = *(struct lock_batch_item *const *)a;
	const struct lock_batch_item *y = *(struct lock_batch_item *const *)b;
	if ((x->ticket == 0) != (y->ticket == 0))
		return x->ticket == 0 ? 1 : -1;
	if (x->ticket != y->ticket)
		return x->ticket < y->ticket ? -1 : 1;
	return x < y ? -1 : x > y; /* stable: the order given */
}

int lock_doc_apply_batch(struct lock_doc *doc, struct lock_batch_item *items, size_t n, int64_t now_ms)
{
	int ok = 0;
	size_t n_acq = 0;
	for (size_t i = 0; i < n; i++) {
		if (items[i].op == LOCK_BATCH_ACQUIRE) {
			n_acq++;
			continue;
		}
		items[i].result = apply_release(doc, &items[i]);
		ok += items[i].result >= 0;
	}
	lock_doc_prune_tickets(doc, now_ms);
	if (n_acq == 0)
		return ok;
	struct lock_batch_item **order = calloc(n_acq, sizeof(*order));
	if (!order) {
		for (size_t i = 0; i < n; i++)
			if (items[i].op == LOCK_BATCH_ACQUIRE)
				items[i].result = -ENOMEM;
		return ok;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (items[i].op == LOCK_BATCH_ACQUIRE)
			order[k++] = &items[i];
	qsort(order, n_acq, sizeof(*order), by_ticket);
	for (size_t i = 0; i < n_acq; i++) {
		order[i]->result = apply_acquire(doc, order[i], now_ms);
		ok += order[i]->result >= 0;
	}
	free(order);
	return ok;
}
