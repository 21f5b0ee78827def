/* supervisor-internal.h — what supervisor.c, supervisor_spare.c and
 * reconcile.c share. Only those include it. Everything here is owned by the loop thread. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/proc.h"
#include "supervisor.h"

struct child {
	struct supervisor *sv;
	struct child *next;
	int64_t task_id;
	char *app_id;
	bool app_task;
	struct proc_ref proc; /* the worker; its pidfd is polled */
	bool own;          /* our child: we can read its exit status */
	bool term_sent;
	bool timeout_armed; /* the timeout counts from the task's startedAt */
	bool ended;
	int open_handles;
	uv_poll_t poll;
	uv_timer_t kill_timer;
	uv_timer_t timeout_timer;
};

/* A worker started ahead of its task (`boxd task standby`, see worker.h):
 * exec and library loading are paid before the next task arrives. */
struct spare {
	struct proc_ref proc; /* pid 0: none */
	int sock;             /* our end of its socketpair */
};

/* A task whose worker is gone but whose end is not recorded yet: its
 * locks are to be freed and its final state written, which the store did
 * not take when the worker ended (an outage). Retried every housekeeping
 * tick until it works; never forgotten. */
struct pending_end {
	struct pending_end *next;
	int64_t task_id;
	pid_t pid;
	bool have_status;     /* info holds the worker's exit */
	siginfo_t info;
	bool released;        /* its locks are free */
	bool gone_before;     /* found dead by the reconcile, not seen ending */
	bool gone_while_down; /* ... and it died while no boxd ran */
	bool reported;        /* the delay was logged */
	char last_error[256];
};

struct supervisor {
	struct supervisor_opts o;
	struct child *children;
	size_t n_children;
	struct pending_end *pending;
	size_t n_pending;
	bool closing;
	struct spare spare;
	int64_t started_wall_ms; /* when this daemon's supervisor started */
};

/* Watch a worker through its pidfd (the reference is taken over on
 * success: closed with the child). */
int supervisor_watch(struct supervisor *sv, int64_t task_id, const char *app_id, bool app_task,
		     const struct proc_ref *proc, bool own);

/* The task's worker is gone: free its locks and record its end, now or,
 * when the store does not take it, from the housekeeping tick on.
 * Consumes nothing; copies what it keeps. */
void supervisor_end_task(struct supervisor *sv, struct pending_end *tmpl);

bool supervisor_has_pending(const struct supervisor *sv, int64_t task_id);

/* The start of every worker's argv, which the daemon passes its state dir
 * and config file on with (config.h): ARGV0 --state-dir D [--config F].
 * Fills argv (room for SUPERVISOR_WORKER_ARGV_MAX) and returns how many it
 * wrote. */
#define SUPERVISOR_WORKER_ARGV_MAX 5
int supervisor_worker_argv(const struct boxd_config *cfg, const char *argv0, const char **argv);

/* Start a worker process: spawn_process(), or the test's spawner. */
int supervisor_spawn_process(const struct supervisor *sv, const struct spawn_opts *so, struct proc_ref *ret);

/* ---- the standby worker (supervisor_spare.c) ---- */

/* Keep one standby worker ready (not with [tasks] user: sudo closes the
 * socket it would wait on). Best effort: without one, tasks start by exec. */
void supervisor_spare_ensure(struct supervisor *sv);

/* Hand task `id` to the standby worker (its worker opens the task's log
 * itself). Returns 0 with the worker (now the task's), or negative errno
 * (no spare, or it died: the caller starts the task by exec). */
int supervisor_spare_take(struct supervisor *sv, int64_t id, int64_t claim, struct proc_ref *ret);

/* Stop the standby worker (closing its socket makes it exit) and reap it. */
void supervisor_spare_drop(struct supervisor *sv);
