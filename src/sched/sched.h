/* sched.h — the scheduler: decides, in the loop thread only, which queued
 * task starts now.
 *
 * Rules (DESIGN.md "Scheduling"):
 *   - app tasks queue per app, FIFO: at most one active task per app, and
 *     at most config->app_task_concurrency app tasks active in all;
 *   - every other type starts at once; its worker waits for its locks
 *     visibly;
 *   - a task stopped while queued is cancelled without ever starting;
 *   - a task of an app placed on a host (apps.host, sched/hosts.h) is
 *     claimed by that host only; while that host is gone, the task stays
 *     queued with waitingFor {"host": H, "reason": "host_gone"} (any host's
 *     pass sets and clears it) and never runs elsewhere.
 * Because only this thread starts tasks, and it starts them one pass at a
 * time, there is no check-then-act race between threads. API threads and
 * exiting workers only ask for a pass (sched_kick).
 */
#pragma once

#include <uv.h>

#include "common/config.h"
#include "store/store.h"
#include "tasks/supervisor.h"

struct sched;

struct sched_opts {
	uv_loop_t *loop;
	struct store *store;
	struct supervisor *supervisor;
	const struct boxd_config *config;
	/* Owner id (host id + boot): what claims record. Its host id part
	 * decides placement: only tasks with run_on = it or NULL, and of apps
	 * placed here (apps.host) or nowhere (NULL), are claimed. */
	const char *host;
	/* Does the sftp service's mount spec differ from its container's?
	 * Called in the loop thread after app work went quiet; NULL: never
	 * rebuild. */
	int (*sftp_changed)(void *userdata, bool *ret_changed);
	void *userdata;
};

int sched_new(const struct sched_opts *opts, struct sched **ret);
void sched_close(struct sched *sc);
void sched_free(struct sched *sc);

/* Run a pass soon (coalesced: many kicks before the pass give one pass). */
void sched_kick(struct sched *sc);

/* Run a pass now. Returns the number of tasks started. */
int sched_pass(struct sched *sc);

/* Something that may change the sftp mount spec happened (an app task
 * ended, an operator added a volume). Once no app task is running or
 * queued for config->sftp_quiet_ms, the scheduler asks sftp_changed() and
 * queues one `service.rebuild` of sftp if the spec changed. A burst of app
 * tasks therefore causes at most one rebuild, after the burst; and the
 * rebuild holds service:sftp exclusive, which app tasks that touch data dirs
 * hold shared, so it never races them.
 *
 * Bounds: while a rebuild is queued, waiting or running, nothing is
 * compared (its container still carries the old hash) — the check comes
 * after it. And when app work does not go quiet within
 * config->sftp_rebuild_max_delay_ms of the first change, the check and the
 * rebuild happen anyway; the rebuild then waits for service:sftp like any
 * task, and app tasks that touch data dirs queue behind it (FIFO), so sftp
 * converges even under constant app work. */
void sched_note_spec_change(struct sched *sc);

/* Rebuilds of sftp queued by the scheduler so far (for tests). */
unsigned sched_sftp_rebuilds(const struct sched *sc);
