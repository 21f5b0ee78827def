/* reconcile.c — the active task rows of this host against its live
 * workers; see supervisor_reconcile() in supervisor.h.
 *
 * Why: the supervisor learns that a worker ended from its pidfd and then
 * records the end; but the store may not take it (an outage), a daemon may
 * have died in between, or a task may have been claimed by a daemon that
 * died before it spawned the worker. Without a second look such tasks stay
 * `running` or `queued` for ever. The reconcile is that second look: at
 * start, every few seconds, and after every store outage.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "locks/locks.h"
#include "spawn.h"
#include "supervisor-internal.h"
#include "task_outcome.h"
#include "task_type.h"

/* A worker that is gone: was it seen alive by this daemon? Its log was
 * last written when it last did something; a log older than this daemon
 * means it died while no boxd ran. */
static bool died_while_down(struct supervisor *sv, int64_t id)
{
	int64_t mtime = task_log_mtime_ms(sv->o.config->state_dir, id);
	return mtime > 0 && mtime < sv->started_wall_ms;
}

static bool watched(const struct supervisor *sv, int64_t id)
{
	return supervisor_watches(sv, id) || supervisor_has_pending(sv, id);
}

/* Watch a live worker again. 1 if it is alive (and watched), 0 if gone. */
static int adopt(struct supervisor *sv, const struct task *t)
{
	/* Only that very process: pid + the start time it registered with
	 * (a pid reused since is another process). */
	struct proc_ref proc;
	if (t->pid <= 0 || !t->pid_start || proc_ref_open(t->pid, t->pid_start, &proc) < 0)
		return 0;
	const struct task_type *type = task_type_find(t->type);
	if (supervisor_watch(sv, t->id, t->app_id, type && type->app_task, &proc, false) < 0) {
		proc_ref_close(&proc);
		return 1; /* alive all the same: leave it be, look again next time */
	}
	log_info("task %lld: re-adopted its running worker (pid %d)", (long long)t->id, t->pid);
	return 1;
}

/* A claimed task whose worker never registered. */
static int unstarted(struct supervisor *sv, const struct task *t, struct supervisor_reconcile_report *rep)
{
	const struct task_type *type = task_type_find(t->type);
	if (type && type->host_bound) {
		int r = task_finish(sv->o.store, t->id, TASK_CANCELLED, TASK_ERR_STOPPED,
				    "boxd stopped before its worker started; every start of boxd queues a new one", NULL);
		if (r == 1) {
			rep->cancelled++;
			log_info("task %lld (%s): boxd stopped before its worker started; cancelled (a new one is queued)",
				 (long long)t->id, t->type);
		}
		return r < 0 ? r : 0;
	}
	int r = task_requeue(sv->o.store, t->id, t->claim);
	if (r == 1) {
		rep->requeued++;
		log_info("task %lld (%s): claimed, but its worker never started; queued again", (long long)t->id, t->type);
	}
	return r < 0 ? r : 0;
}

int supervisor_reconcile(struct supervisor *sv, struct supervisor_reconcile_report *ret)
{
	struct supervisor_reconcile_report rep = { 0 };
	struct task_filter f = { .state = -1, .active_only = true, .per_page = 100000 };
	struct task *tasks;
	size_t n;
	int r = task_list(sv->o.store, &f, &tasks, &n, NULL);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct task *t = &tasks[i];
		/* This host before a reboot: its workers are dead, and their
		 * pid + start time may name new processes now (start times
		 * count from boot), so never adopted. */
		bool earlier_boot = t->host && host_owner_earlier_boot(t->host, sv->o.host);
		if (!t->host || (strcmp(t->host, sv->o.host) != 0 && !earlier_boot))
			continue; /* unclaimed, or another host's */
		if (watched(sv, t->id))
			continue;
		if (t->pid <= 0) {
			if (t->state == TASK_QUEUED)
				r = unstarted(sv, t, &rep);
			/* waiting/running without a pid: only a worker that
			 * registered gets there. Nothing to check. */
			continue;
		}
		if (!earlier_boot && adopt(sv, t)) {
			rep.adopted++;
			continue;
		}
		/* Gone without its end recorded (or the store did not take it). */
		struct pending_end p = { .task_id = t->id, .pid = t->pid, .gone_before = true,
					 .gone_while_down = earlier_boot || died_while_down(sv, t->id) };
		supervisor_end_task(sv, &p);
		rep.ended++;
	}
	task_list_free(tasks, n);
	if (ret)
		*ret = rep;
	return r;
}
