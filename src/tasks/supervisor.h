/* supervisor.h — the daemon's side of worker processes.
 *
 * Runs in the libuv loop thread only (no locking: every field is owned by
 * that thread). It spawns workers, watches each through a pidfd, enforces
 * timeouts and stops (SIGTERM to the worker's process group, SIGKILL after
 * the grace period), and when a worker ends for any reason it releases every
 * lock still owned by the task and finalizes the row if the worker did not.
 * At start it re-adopts workers that survived a restart of the daemon.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/config.h"
#include "store/store.h"
#include "task.h"

struct supervisor;
struct spawn_opts;
struct proc_ref;

/* How a worker process is started: spawn_process() (spawn.h) has this
 * signature. */
typedef int (*supervisor_spawn_fn)(const struct spawn_opts *opts, struct proc_ref *ret);

/* Called in the loop thread after a worker ended and its task was
 * finalized (the scheduler starts the next task from here). */
typedef void (*supervisor_exit_fn)(int64_t task_id, const char *app_id, void *userdata);

struct supervisor_opts {
	uv_loop_t *loop;
	struct store *store;       /* loop thread's connection (durable) */
	struct store *lock_store;  /* loop thread's lock connection */
	const struct boxd_config *config;
	const char *self_exe;      /* path of the boxd binary for workers */
	const char *host;          /* this host's id */
	supervisor_exit_fn on_exit;
	void *userdata;
	/* A test seam: NULL (always, in boxd) means spawn_process(). The unit
	 * tests pass a fake spawner that forks a stand-in worker instead of
	 * exec'ing boxd (the real exec is covered end to end). */
	supervisor_spawn_fn spawn;
};

int supervisor_new(const struct supervisor_opts *opts, struct supervisor **ret);

/* Stop watching (at daemon shutdown): workers keep running and are
 * re-adopted by the next daemon. Closes handles; free after the loop ran
 * the close callbacks with supervisor_free(). */
void supervisor_close(struct supervisor *sv);
void supervisor_free(struct supervisor *sv);

/* Spawn the worker of a claimed task. On failure the task is finalized as
 * failed with the reason and a negative errno is returned. */
int supervisor_spawn(struct supervisor *sv, const struct task *t);

/* What a reconcile found (see supervisor_reconcile()). */
struct supervisor_reconcile_report {
	int adopted;   /* live workers watched again */
	int ended;     /* tasks of gone workers: locks freed, end recorded */
	int requeued;  /* claimed tasks that never got a worker: queued again */
	int cancelled; /* host-bound ones of those (platformstart): cancelled */
};

/* Compare the active task rows of this host with the live workers
 * (reconcile.c), at start and from then on periodically and after every
 * store outage:
 *   - a worker that runs (pid + start time, opened as a pidfd) but is not
 *     watched is watched again (re-adopted);
 *   - a task whose worker is gone gets its locks freed and a truthful
 *     final state: what the worker left (task_outcome.h), or, failing
 *     that, crashed with "the worker died while boxd ran" or "... while
 *     boxd was down" (told apart by the time its log was last written);
 *   - a claimed task whose worker never registered is queued again (its
 *     claim forgotten: a late worker of that claim leaves it alone), or
 *     cancelled when its type is bound to this host and a new one is
 *     queued at every start (platformstart).
 * Tasks being watched, and those whose end is already being retried, are
 * left alone. Returns 0 or negative errno (the store's). */
int supervisor_reconcile(struct supervisor *sv, struct supervisor_reconcile_report *ret);

/* At daemon start: supervisor_reconcile(), plus the previous image's
 * children after a re-exec, and the first standby worker. */
int supervisor_adopt(struct supervisor *sv, struct supervisor_reconcile_report *ret);

/* Retry recording the ends the store did not take when their workers
 * ended (an outage): every housekeeping tick. Returns how many were
 * recorded now; *ret_left (optional) how many are still waiting. */
int supervisor_retry_pending(struct supervisor *sv, size_t *ret_left);

/* Apply stop requests recorded in the store (task_request_stop) to the
 * workers being watched. */
void supervisor_apply_stops(struct supervisor *sv);

/* Running workers: all, and app tasks (optionally of one app). */
size_t supervisor_count(const struct supervisor *sv);
size_t supervisor_count_app_tasks(const struct supervisor *sv, const char *app_id);
bool supervisor_watches(const struct supervisor *sv, int64_t task_id);
