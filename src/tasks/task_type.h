/* task_type.h — the registry of task types and the context a handler runs in.
 *
 * A task type says how to validate its arguments (in the API thread, before
 * a row exists), which locks its worker takes before the handler runs, and
 * the handler itself (in the worker process). Modules above `tasks` (apps,
 * backups, update, services) register their types at program start with
 * task_type_register(); the `hold` type is built in (task_hold.c).
 *
 * Handlers run in the worker process. They report progress through
 * task_ctx_progress(), must return promptly once *ctx->cancel becomes
 * non-zero (SIGTERM: a stop or a timeout), and on failure return a negative
 * errno after task_ctx_fail() has recorded an error code and message.
 */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "locks/lock_doc.h"
#include "store/store.h"
#include "store/store_retry.h"
#include "task.h"

struct worker_lease;

/* What a handler's fencing check compares with the lock document: the
 * task's locks and the token of their grant (task_ctx_fence_check()). */
struct task_fence {
	int64_t token;                /* the document version of the grant */
	const struct lock_req *locks; /* the task's locks (task_type_locks()) */
	size_t n_locks;
	int64_t lease_ms;             /* [store] lease; 0: none (SQLite) */
	struct worker_lease *lease;   /* the renewal thread; NULL: none */
	int64_t outage_grace_ms;
};

struct task_ctx {
	struct store *store;                  /* the worker's connection */
	/* The lock document's connection (on SQLite a relaxed one; on a
	 * server database `store`): task_ctx_lock.h. NULL: `store`. */
	struct store *lock_store;
	const struct boxd_config *config;
	const struct task *task;
	json_t *args;                         /* parsed task args (borrowed) */
	const struct lock_owner *owner;       /* this worker as lock owner */
	const volatile sig_atomic_t *cancel;  /* set on SIGTERM */
	json_t *result;                       /* set by the handler; owned by ctx */
	char error_code[64];
	char error_message[1024];
	/* Progress writes that fail while the store is out (logged once per
	 * outage; progress is advisory and never retried). */
	struct store_retry progress_retry;
	const struct task_fence *fence;       /* NULL: the task holds no locks */
};

/* How many locks a task type's template may name. */
#define TASK_LOCKS_MAX 6

/* One lock of a task type's template (struct task_type .locks). The
 * templates of all types are the lock matrix in docs/ARCHITECTURE.md
 * ("Task types and their locks"); tests/unit/test-lock-matrix.c compares
 * the two. */
struct task_lock_template {
	/* A lock name ("type:update"), or a pattern: %s is the task's app
	 * id ("app:%s"), or the string argument `arg` when set; %h is the id
	 * of the host that runs the task ("platform:%h"), for what each host
	 * has its own of (docs/ARCHITECTURE.md "Lock names and their
	 * scope"). NULL ends the template. */
	const char *name;
	enum lock_mode mode;
	const char *arg;
	/* Taken by the handler while it runs (task_ctx_lock(); %s: any
	 * value), not by the worker before run(). */
	bool later;
};

struct task_type {
	const char *name;
	/* App tasks need an appId, queue per app (one active per app) and count
	 * against the app-task concurrency limit. */
	bool app_task;
	/* May be created through POST /api/v1/tasks (generic types). */
	bool generic;
	/* Runs only on the host that created it, and each start of that host
	 * queues a new one (platformstart): a claimed one that never got a
	 * worker is cancelled, not queued again for any host. */
	bool host_bound;
	/* Check args (a JSON object) before the task is created. Return 0, or
	 * -EINVAL with a message for the user in err. NULL: any object. */
	int (*validate)(json_t *args, char *err, size_t errlen);
	/* The locks: the worker takes those not `later`, all at once, before
	 * run() (task_type_locks()); the handler may take the `later` ones,
	 * and no others, while it runs (task_ctx_lock()). */
	struct task_lock_template locks[TASK_LOCKS_MAX];
	/* Only for locks that a template cannot say, computed from the args
	 * (a configure that moves the data dir; hold): added after the
	 * template's. *ret is malloc'ed (may be NULL with *ret_n = 0). NULL:
	 * none. */
	int (*dynamic_locks)(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n);
	/* The work. 0 = succeeded; negative errno = failed (see task_ctx_fail). */
	int (*run)(struct task_ctx *ctx);
};

/* Register a type (the struct must outlive the program). */
void task_type_register(const struct task_type *type);
const struct task_type *task_type_find(const char *name);
/* The i-th registered type, in order of registration; NULL past the end. */
const struct task_type *task_type_at(size_t i);

/* The locks the worker takes for task t (args: its parsed args) before
 * run(): the template's that are not `later`, expanded, then those of
 * dynamic_locks. *ret is malloc'ed (NULL with *ret_n = 0: no locks).
 * -EINVAL when the template needs an app id or a string argument the task
 * does not have, or a name comes out invalid; -ENOMEM. */
int task_type_locks(const struct task_type *type, const struct task *t, json_t *args, struct lock_req **ret,
		    size_t *ret_n);

/* Does `type` declare req as a `later` lock (same mode, the name matching
 * the pattern with this host's id for %h and a non-empty %s)? */
bool task_type_declares_later(const struct task_type *type, const struct lock_req *req);
/* The per-host lock name "<base>:<host id>" of this host (host_id_get())
 * into buf: what a template's "<base>:%h" names for a task run here.
 * 0, -ENAMETOOLONG, or host_id_get()'s error. */
int task_host_lock_name(const char *base, char *buf, size_t len);

/* Register the built-in types (hold). Idempotent. */
void task_types_register_builtin(void);

/* Progress: percent 0..100 and a message shown to the operator. */
void task_ctx_progress(struct task_ctx *ctx, int percent, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Record why the task failed; returns `err` for `return task_ctx_fail(...)`. */
int task_ctx_fail(struct task_ctx *ctx, int err, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fencing: call right before an irreversible step (creating or removing a
 * container, swapping a data dir, switching the release). Checks against
 * the lock document that the worker still holds every lock of its grant
 * (the fencing token is valid while the document records that grant) and,
 * with a lease, that the lease has at least a second to run by the
 * database's clock. Returns 0 to go ahead, or -ESTALE after recording the
 * error lease_lost (the handler must abort without the step). A store that
 * cannot be read is retried for up to [store] outage_grace, but never past
 * the lease: nothing irreversible happens meanwhile. `step` names the step
 * for the message. 0 at once for a task without locks. */
int task_ctx_fence_check(struct task_ctx *ctx, const char *step);

/* Sleep up to ms, returning early (-ECANCELED) when the task is cancelled. */
int task_ctx_sleep(struct task_ctx *ctx, int64_t ms);

/* Parse a "locks" array of {"name","mode"} objects (used by hold and
 * tests). On error -EINVAL with a message. */
int task_parse_lock_list(json_t *locks, struct lock_req **ret, size_t *ret_n, char *err, size_t errlen);
