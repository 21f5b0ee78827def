/* task.h — task rows and their states.
 *
 * A task is one admin operation run by one worker process. Its row is the
 * single source of truth that the daemon, the worker and the API share:
 *
 *	queued ──(scheduler spawns a worker)──▶ waiting ⇄ running
 *	   │                                        │
 *	   └─(stopped before start)─▶ cancelled     └─▶ succeeded | failed | cancelled
 *
 * `waiting` means the worker runs but waits for a lock (waiting_for says
 * which, and who holds it). Once a task is in a final state nothing changes
 * it again: every transition into a final state is a conditional UPDATE
 * (`... WHERE state NOT IN (final states)`), so the worker and the
 * supervisor can both try to finalize and exactly one wins.
 *
 * Who writes what:
 *   API threads   create rows (queued), set stop_reason
 *   scheduler     claims a queued row (host, pid) when it spawns the worker
 *   worker        waiting/running, progress, result or error
 *   supervisor    finalizes rows whose worker ended without doing so
 *
 * All functions take a store connection of the calling thread and return 0
 * or a negative errno (the store's message says why).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "tasks/host_liveness.h"

enum task_state {
	TASK_QUEUED,
	TASK_WAITING,
	TASK_RUNNING,
	TASK_SUCCEEDED,
	TASK_FAILED,
	TASK_CANCELLED,
};

const char *task_state_name(enum task_state s);
int task_state_from_string(const char *s, enum task_state *ret);
bool task_state_is_final(enum task_state s);

/* Error codes recorded by the supervisor (handlers add their own). */
#define TASK_ERR_CRASHED "crashed"
#define TASK_ERR_TIMEOUT "timeout"
#define TASK_ERR_STOPPED "stopped"
/* No worker ran it: it could not be started, or its log not opened. */
#define TASK_ERR_SPAWN_FAILED "spawn_failed"

struct task {
	int64_t id;
	char *type;
	char *app_id;            /* NULL when not an app task */
	char *args;              /* JSON object text */
	enum task_state state;
	int percent;
	char *message;
	char *waiting_for;       /* JSON object text or NULL */
	char *error_code;        /* NULL unless failed/cancelled */
	char *error_message;
	char *result;            /* JSON text or NULL */
	int pid;                 /* 0 until spawned */
	uint64_t pid_start;
	char *host;              /* host id of the daemon that spawned it */
	char *stop_reason;       /* NULL, "stopped" or "timeout" */
	int64_t created_at;      /* wall ms */
	int64_t started_at;      /* 0 = not yet */
	int64_t finished_at;     /* 0 = not yet */
	int64_t timeout_ms;      /* 0 = none */
	int64_t claim;           /* token of the scheduler's claim; 0 = none */
	int64_t claimed_at;      /* database ms of the claim; 0 = none */
	char *app_host;          /* the host to run it: run_on, else apps.host; NULL: any */
};

void task_release(struct task *t);

/* Insert a queued task. args_json must be a JSON object text. */
int task_create(struct store *s, const char *type, const char *app_id, const char *args_json, int64_t timeout_ms,
		int64_t *ret_id);

/* An idempotency key a client sent with the request that creates a task
 * (the API's Idempotency-Key header), and the fingerprint of that request.
 * A key names one task while that task is younger than not_before_ms
 * (wall ms): a task created earlier gives its key up. */
struct task_idempotency {
	const char *key;
	const char *fingerprint;
	int64_t not_before_ms;
};

/* task_create() recording `idem` (may be NULL) with the row, in the same
 * statement: a task and its key are stored together or not at all. -EEXIST
 * when a task created since not_before_ms holds the key already (a
 * concurrent request with the same key won), with a message saying so. */
int task_create_idempotent(struct store *s, const char *type, const char *app_id, const char *args_json,
			   int64_t timeout_ms, const struct task_idempotency *idem, int64_t *ret_id);

/* The task created since not_before_ms with idempotency key `key`: its id,
 * the fingerprint it was stored with, and its app id (malloc'ed, NULL if
 * none). -ENOENT when there is none. */
int task_find_idempotent(struct store *s, const char *key, int64_t not_before_ms, int64_t *ret_id, char *ret_fp,
			 size_t fplen, char **ret_app_id);

/* The list of active states in SQL, for the one kind of query that must
 * test a task's state inside a statement of its own (a join, NOT EXISTS).
 * Everything else asks task_find_active() or task_count_active(). */
#define TASK_ACTIVE_STATES_SQL "('queued','waiting','running')"

/* Which active tasks (queued, waiting or running) task_find_active() and
 * task_count_active() look at. Every field may stay zero: any. */
struct task_match {
	const char *type;
	const char *app_id;
	bool app_tasks;            /* only tasks with an app id */
	const char *host;          /* only tasks claimed by this host */
	const char *run_on;        /* only tasks that only this host may claim */
	/* Only tasks whose worker has not begun the work: queued, or waiting
	 * for its locks, and no stop asked for. A request for the same work
	 * may join such a task instead of queueing another. */
	bool not_started;
	bool only_state;           /* only tasks in `state` (an active one) */
	enum task_state state;
	bool newest_first;         /* default: oldest (lowest id) first */
	/* Called on each candidate in that order; the first it accepts is
	 * the answer. NULL: the first candidate. */
	bool (*accept)(const struct task *t, void *userdata);
	void *userdata;
};

/* The first active task that matches m, into *ret (task_release() it).
 * -ENOENT when there is none. */
int task_find_active(struct store *s, const struct task_match *m, struct task *ret);
/* How many active tasks match m (m->accept is ignored). */
int task_count_active(struct store *s, const struct task_match *m, int64_t *ret_n);

/* -ENOENT when there is no such task. */
int task_get(struct store *s, int64_t id, struct task *ret);

struct task_filter {
	const char *type;       /* NULL = any */
	const char *app_id;
	int state;              /* -1 = any; else enum task_state */
	bool active_only;       /* queued, waiting or running */
	int64_t page;           /* 1-based */
	int64_t per_page;
};

/* Newest first. *ret is an array of *ret_n tasks; free with task_list_free. */
int task_list(struct store *s, const struct task_filter *f, struct task **ret, size_t *ret_n, int64_t *ret_total);
void task_list_free(struct task *tasks, size_t n);

/* Claims. The scheduler claims a queued task for its host before it spawns
 * the worker; the claim carries a random token (tasks.claim), which the
 * worker is given and proves itself with when it records its pid
 * (task_register_worker()). A claim whose worker never registered (the
 * daemon died in between, or another host that claimed it is gone) can
 * then be taken over, or queued again, safely: a late worker of the old
 * claim finds the token changed and leaves the task alone.
 *
 * task_claim(): claim an unclaimed queued task. Returns 1 if claimed, 0 if
 * it was no longer claimable (claimed by someone else, stopped). */
int task_claim(struct store *s, int64_t id, const char *host);

/* Take over the claim `old_claim` of a queued task whose worker never
 * registered (pid unset). 1 if taken, 0 if the task moved on meanwhile. */
int task_claim_again(struct store *s, int64_t id, const char *host, int64_t old_claim);

/* Queue a claimed task whose worker never registered again: forget the
 * claim. 1 if done, 0 if the task moved on meanwhile. */
int task_requeue(struct store *s, int64_t id, int64_t old_claim);

/* Supervisor: record the spawned worker (pid of what it spawned: the worker,
 * or sudo in front of it) under its claim. */
int task_set_pid(struct store *s, int64_t id, int64_t claim, int pid, uint64_t pid_start);

/* Worker: record itself under the claim token it was given (0: started by
 * hand, no claim to check), unless the supervisor already did. Returns 1
 * when the task is this worker's (its pid, or its parent's — sudo — is
 * recorded under its claim on its host), 0 when it is not (queued again or
 * claimed by another worker: the caller must leave it alone). Closes the
 * window where a daemon that dies between spawning a worker and recording
 * its pid would leave a live worker that the next daemon cannot re-adopt. */
int task_register_worker(struct store *s, int64_t id, int64_t claim, const char *host, int pid, uint64_t pid_start);

/* Set the message of an active task (a worker telling the operator what
 * it is doing outside a handler, e.g. riding out a store outage). */
int task_set_message(struct store *s, int64_t id, const char *message);

/* Worker: waiting for a lock (waiting_for JSON and a message), or running.
 * No effect on a task in a final state. task_set_running() returns 1, or 0
 * when the task had already ended (it must not run then). */
int task_set_waiting(struct store *s, int64_t id, const char *waiting_for_json, const char *message);
int task_set_running(struct store *s, int64_t id);

/* Worker or handler waiting for a lock: record waitingFor {lock, mode,
 * queued, pid, heldBy} and the message "Waiting for app:x (held by task 17,
 * fullbackup)" (the holder's type looked up here), and copy the message to
 * `msg` (may be NULL) for the caller's log. */
struct lock_blocker;
int task_report_waiting(struct store *s, int64_t id, const struct lock_blocker *b, char *msg, size_t msglen);
int task_set_progress(struct store *s, int64_t id, int percent, const char *message);

/* Enter a final state. Returns 1 if this call finalized the task, 0 if it
 * was already final (nothing changed). error_code/error_message/result may
 * be NULL. */
int task_finish(struct store *s, int64_t id, enum task_state state, const char *error_code,
		const char *error_message, const char *result_json);

/* Multi-host: the lock lease of task `id`'s worker on another host expired
 * by the database's clock (`expired_ms_ago` before the reap) and its locks
 * were freed — the worker stopped renewing. Fails the task with error code
 * crashed, with a message naming the host, if it is still active, was
 * claimed by `host` (an owner id), and that host is gone too: gone or
 * unknown by tasks/host_liveness.h's rule (no heartbeat for HOST_LEASE_MS
 * by the database's clock, or no hosts row), tested inside the UPDATE
 * that fails the task. While the host beats, the task is its host's to
 * end: a live worker that only renewed late queues again (a waiter) or
 * stops by itself on its next renewal (a holder, worker_lease.h), and a
 * dead one is ended by its own daemon's supervisor. Returns 1 if this call
 * ended it, 0 if not, negative errno. */
int task_fail_host_gone(struct store *s, int64_t id, const char *host, int64_t expired_ms_ago);

/* Multi-host: the tasks that no reap will ever end. A task in `waiting` or
 * `running`, claimed by another host whose heartbeat is TASK_SWEEP_GONE_MS
 * old (or that has none), which neither holds a lock nor waits for one in
 * `doc` (the reaper ends those, task_fail_host_gone()), is failed as
 * crashed: its host died while it held nothing (or after another host freed
 * its locks while the host still beat). Twice the gone time, as a margin
 * for a daemon that restarts while its workers run: those hold their
 * locks, renewed by themselves, and are not touched. At most
 * TASK_SWEEP_MAX tasks per call. *ret_n: how many were failed. 0 or
 * negative errno. */
#define TASK_SWEEP_GONE_MS (2 * HOST_LEASE_MS)
#define TASK_SWEEP_MAX 64
struct lock_doc;
int task_sweep_gone_hosts(struct store *s, const struct lock_doc *doc, const char *self, int *ret_n);

/* A locks_expired_fn (locks/locks.h) for whoever waits for locks: logs the
 * reap and fails the gone owner's task with task_fail_host_gone() through
 * `store` (a struct store *). Pass it as .on_expired with
 * .expired_userdata = the task's store, so that it does not matter whether a
 * waiting worker or a daemon reaps a gone host's locks first. */
struct lock_owner;
void task_lock_lease_expired(const struct lock_owner *owner, int64_t now_ms, void *store);

/* Ask for a stop: records the reason if none is recorded yet on an active
 * task. Returns 1 if recorded, 0 if the task is not active (or already being
 * stopped), -ENOENT if unknown. */
int task_request_stop(struct store *s, int64_t id, const char *reason);

/* The task as the API shows it (DESIGN.md "Task object"). */
json_t *task_to_json(const struct task *t);
