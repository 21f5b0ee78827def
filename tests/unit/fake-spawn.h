/* fake-spawn.h — a FAKE worker spawner for the supervisor and scheduler
 * unit tests (the test seam supervisor_opts.spawn).
 *
 * Instead of exec'ing `boxd task run|standby`, fake_spawn() forks a
 * stand-in: a real process that leads its own session as a worker does
 * (so the supervisor's killpg() reaches it), and waits for a signal:
 *   SIGUSR1  exit 0 (ended without recording a result)
 *   SIGUSR2  exit WORKER_EXIT_UNRECORDED_SUCCEEDED
 *   SIGTERM  exit WORKER_EXIT_STOPPED, or nothing when the test set
 *            fake->ignore_term (then only SIGKILL ends it)
 * A standby stand-in waits on its socket (fd passed as pass_fd) for a
 * task, as `boxd task standby` does, and exits 0 on EOF. By default it
 * answers with its own pid and becomes that task's stand-in (the standby's
 * fallback); with fake->standby_clones it clones a sibling stand-in for
 * each task (CLONE_PARENT, as the real one does), answers with its pid and
 * pidfd, and waits for the next; with fake->standby_mute it answers
 * nothing. The real exec of boxd is covered by the end-to-end tests.
 *
 * Every call is logged (argv, pid, standby or not); what the stand-ins
 * learn is written to memory shared with the test.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tasks/spawn.h"

#define FAKE_MAX 64

struct fake_spawned {
	pid_t pid;
	bool standby;
	char argv[8192]; /* argv joined with spaces */
};

/* In memory shared with every stand-in (MAP_SHARED). */
struct fake_shared {
	volatile int ignore_term;              /* stand-ins ignore SIGTERM */
	volatile int standby_clones;           /* standbys clone a worker per task */
	volatile int standby_mute;             /* standbys never answer */
	volatile int n_taken;
	struct {
		pid_t pid;                      /* the stand-in that runs it */
		int64_t task_id, claim;
	} taken[FAKE_MAX];                      /* tasks handed to standby stand-ins */
};

extern struct fake_spawned fake_log[FAKE_MAX];
extern int fake_n;
extern struct fake_shared *fake;
/* Make the next call fail with this negative errno (0: spawn). */
extern int fake_fail_next;

/* Map the shared memory and clear the log (once per test). */
int fake_spawn_reset(void);
/* SIGKILL every stand-in still there and reap it. */
void fake_spawn_kill_all(void);

int fake_spawn(const struct spawn_opts *opts, struct proc_ref *ret);

/* The log entries of `task run` spawns (not standby ones). */
int fake_count_runs(void);
/* The pid of the last standby stand-in spawned; 0 if none. */
pid_t fake_last_standby(void);
