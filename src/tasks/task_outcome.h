/* task_outcome.h — how a worker's task ended, kept in its log until the
 * store has it.
 *
 * The worker records its task's end in the store. When it cannot (the store
 * stays unavailable for longer than [store] outage_grace, or the worker is
 * killed while it retries), the daemon must still learn the truth rather
 * than guess "crashed". So once the handler has returned, the worker appends
 * the outcome to its task log, <state_dir>/logs/tasks/<id>.log, as one line
 * "<prefix>task N outcome {json}", before it releases its locks and records
 * the end. Whoever finds a worker gone without a final state (the
 * supervisor, the reconcile) reads the last such line.
 *
 * Why a line of the log and not a file of its own (<id>.outcome, written to
 * a temp name, renamed, and removed once the store had the end, until
 * session 29): creating and deleting that file was a fifth of a
 * zero-second task's CPU on ext4 (issue 18), and the log is open anyway.
 * One write(2) with O_APPEND puts the line whole after what the worker
 * logged before; a line cut short (a full disk) does not parse and counts as
 * none. Not fsynced: after a power loss every owner of the old boot is dead
 * anyway, and the page cache survives a daemon restart. An <id>.outcome file
 * that a worker of an older boxd left is still read first.
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

/* The task's log, <state_dir>/logs/tasks/<id>.log, opened to append and
 * created owner-only, with its directories when missing. Its creator is
 * the task's worker when a standby starts it (worker.h), so that the
 * daemon's loop thread does not pay for the inode; the supervisor when it
 * starts the worker by exec. The fd, or negative errno. */
int task_log_open(const char *state_dir, int64_t id);

/* The error message of a task whose log could not be opened, the same
 * from either opener: state_dir, then strerror(). */
#define TASK_LOG_OPEN_FAILED_FMT "cannot open the task log under %s/logs/tasks: %s"

/* 0 or negative errno (a full disk: the caller falls back to its exit code). */
int task_outcome_write(const char *state_dir, int64_t id, const struct task_outcome *o);

/* 0, -ENOENT when there is none, -EBADMSG when the last one does not
 * parse. */
int task_outcome_read(const char *state_dir, int64_t id, struct task_outcome *ret);

/* Remove an <id>.outcome file an older worker left (the log's record
 * stays: it is part of the task's log). */
void task_outcome_remove(const char *state_dir, int64_t id);

/* The task log's last lines say the worker's handler succeeded (the worker
 * logs "task N succeeded" before it records it): the evidence left when
 * there is no outcome file. */
bool task_log_says_succeeded(const char *state_dir, int64_t id);

/* When the task log was last written (wall ms), or 0 when unknown. */
int64_t task_log_mtime_ms(const char *state_dir, int64_t id);
