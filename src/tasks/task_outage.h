/* task_outage.h — how a worker tells of a store outage it rides out: a
 * line in the log when it begins and when it ends, and now and then the
 * task's message ("store unavailable since 12:03:04 UTC, retrying"),
 * where the store takes it. Used by the worker's own steps (worker.c) and
 * by every lock wait of a task (task_ctx_lock.h). */
#pragma once

#include <stdint.h>

#include "store/store.h"
#include "store/store_retry.h"

struct task_outage {
	struct store *s;         /* for the task's message; NULL: the log only */
	int64_t task_id;
	int64_t last_message_ms; /* monotonic; 0: never written */
};

/* A transient failure `err` (message `msg`) of step `what` during the
 * outage rt tracks. */
void task_outage_note(struct task_outage *o, const struct store_retry *rt, int err, const char *msg,
		      const char *what);

/* Step `what` worked: if an outage was going on, log its end and length
 * and reset rt. */
void task_outage_over(struct task_outage *o, struct store_retry *rt, const char *what);
