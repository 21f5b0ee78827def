/* task_outcome.h — how a worker's task ended, kept beside its log until the
 * store has it.
 *
 * The worker records its task's end in the store. When it cannot (the store
 * stays unavailable for longer than [store] outage_grace, or the worker is
 * killed while it retries), the daemon must still learn the truth rather
 * than guess "crashed". So once the handler has returned, the worker writes
 * the outcome to <state_dir>/logs/tasks/<id>.outcome (JSON) before it
 * releases its locks and records the end, and removes the file once the
 * store has the end. Whoever finds a worker gone without a final state (the
 * supervisor, the reconcile) reads it.
 *
 * The file is written to a temp name and renamed, so a reader sees all of
 * it or nothing. It is not fsynced: after a power loss every owner of the
 * old boot is dead anyway, and the page cache survives a daemon restart.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "task.h"

struct task_outcome {
	enum task_state state;       /* a final state */
	char error_code[64];         /* "" when none */
	char error_message[1024];
	char *result;                /* JSON text or NULL (malloc'ed) */
};

void task_outcome_release(struct task_outcome *o);

/* 0 or negative errno (a full disk: the caller falls back to its exit code). */
int task_outcome_write(const char *state_dir, int64_t id, const struct task_outcome *o);

/* 0, -ENOENT when there is none, -EBADMSG when it does not parse. */
int task_outcome_read(const char *state_dir, int64_t id, struct task_outcome *ret);

void task_outcome_remove(const char *state_dir, int64_t id);

/* The task log's last lines say the worker's handler succeeded (the worker
 * logs "task N succeeded" before it records it): the evidence left when
 * there is no outcome file. */
bool task_log_says_succeeded(const char *state_dir, int64_t id);

/* When the task log was last written (wall ms), or 0 when unknown. */
int64_t task_log_mtime_ms(const char *state_dir, int64_t id);
