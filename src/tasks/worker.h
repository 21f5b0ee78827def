/* worker.h — the worker process: `boxd task run <id>`.
 *
 * It loads the task, takes the task's locks (state `waiting` with
 * waitingFor while it waits), runs the handler, records the result or the
 * error, releases its locks and exits. Exit codes (DESIGN.md "Processes"):
 */
#pragma once

#include <stdint.h>

#include "common/config.h"

#define WORKER_EXIT_DONE 0     /* finished: state and result are in the DB */
#define WORKER_EXIT_CAUGHT 50  /* the handler crashed and the worker caught it */
#define WORKER_EXIT_STOPPED 70 /* stopped on SIGTERM (stop or timeout) */
#define WORKER_EXIT_SETUP 71   /* could not even load the task */
/* The task ended but the worker could not record that in the store within
 * [store] outage_grace: the outcome is in its log, <state>/logs/tasks/<id>.log
 * (task_outcome.h), when that could be written, and the code says which
 * final state it is. The supervisor records it (and frees the locks) and
 * retries until the store takes it. */
#define WORKER_EXIT_UNRECORDED_SUCCEEDED 73
#define WORKER_EXIT_UNRECORDED_FAILED 74
#define WORKER_EXIT_UNRECORDED_CANCELLED 75
/* The worker could not renew its lock lease in time and stopped acting
 * (worker_lease.h): the task failed with lease_lost. */
#define WORKER_EXIT_LEASE_LOST 76
/* The task is not this worker's: it was queued again or claimed for
 * another worker before this one registered. Nothing was done; the
 * supervisor must leave the task (and its locks) alone. */
#define WORKER_EXIT_NOT_MINE 77

/* `claim`: the claim token the worker was started for (task.h), 0 when it
 * is started by hand. */
int worker_main(const struct boxd_config *cfg, int64_t task_id, int64_t claim);

/* `boxd task standby`: the process tasks start from. Starting the boxd
 * binary costs most of a task's start latency and CPU (the dynamic loader
 * maps ~55 libraries: ~14 ms of CPU), so the supervisor keeps one such
 * process ready and pays that once. It blocks on the socket `sock_fd` (fd 3)
 * for a message: the task id and its claim token (two int64_t), with the
 * task's log file as SCM_RIGHTS from a daemon of an older boxd; a daemon of
 * this one sends none, and the worker opens the log itself. For each it
 * clones the task's worker as a sibling (CLONE_PARENT: the daemon's child,
 * in a session of its own, the log as its stdout and stderr, the config
 * file read again), answers with
 * the worker's pid (an int64_t) and its pidfd (SCM_RIGHTS), and waits for
 * the next. Where the kernel refuses that clone it answers with its own pid
 * and becomes the task's worker (worker_main) instead, and the supervisor
 * starts a new standby. EOF (the daemon went away or re-exec'd): exit 0. */
int worker_standby(const struct boxd_config *cfg, int sock_fd);
