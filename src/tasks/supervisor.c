/* supervisor.c — see supervisor.h. */
#include "supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "locks/locks.h"
#include "spawn.h"
#include "supervisor-internal.h"
#include "task_outcome.h"
#include "task_type.h"
#include "worker.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int supervisor_new(const struct supervisor_opts *opts, struct supervisor **ret)
{
	struct supervisor *sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->o = *opts;
	sv->spare.proc = PROC_REF_NONE;
	sv->started_wall_ms = now_wall_ms();
	*ret = sv;
	return 0;
}

static void child_handle_closed(uv_handle_t *h)
{
	struct child *c = h->data;
	if (--c->open_handles == 0) {
		proc_ref_close(&c->proc);
		free(c->app_id);
		free(c);
	}
}

static void child_unlink(struct child *c)
{
	struct supervisor *sv = c->sv;
	for (struct child **p = &sv->children; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			sv->n_children--;
			break;
		}
	}
	uv_close((uv_handle_t *)&c->poll, child_handle_closed);
	uv_close((uv_handle_t *)&c->kill_timer, child_handle_closed);
	uv_close((uv_handle_t *)&c->timeout_timer, child_handle_closed);
}

/* ---- how a task whose worker is gone ends ---------------------------------- */

/* The end to record for a task whose worker is gone without recording it
 * (t is its row, not final). The worker's own word comes first: the
 * outcome in its log, then its exit code, then its "succeeded" line; only
 * then is it a crash. */
static void decide_end(struct supervisor *sv, const struct pending_end *p, const struct task *t,
		       struct task_outcome *o, char *how, size_t howlen)
{
	const char *state_dir = sv->o.config->state_dir;
	bool stopped = t->stop_reason && strcmp(t->stop_reason, "stopped") == 0;
	bool timed_out = t->stop_reason && strcmp(t->stop_reason, "timeout") == 0;
	int code = p->have_status && p->info.si_code == CLD_EXITED ? p->info.si_status : -1;
	*o = (struct task_outcome){ .state = TASK_FAILED };
	snprintf(how, howlen, "the worker's exit");
	if (task_outcome_read(state_dir, t->id, o) == 0) {
		snprintf(how, howlen, "the outcome the worker left in its log (%s/logs/tasks/%lld.log)", state_dir,
			 (long long)t->id);
		return;
	}
	*o = (struct task_outcome){ .state = TASK_FAILED };
	snprintf(o->error_code, sizeof(o->error_code), "%s", TASK_ERR_CRASHED);
	char *msg = o->error_message;
	size_t len = sizeof(o->error_message);
	if (code == WORKER_EXIT_UNRECORDED_SUCCEEDED || (code < 0 && task_log_says_succeeded(state_dir, t->id))) {
		/* Its handler succeeded; only the result (if any) is lost. */
		o->state = TASK_SUCCEEDED;
		o->error_code[0] = '\0';
		snprintf(how, howlen, code < 0 ? "the worker's log (\"task %lld succeeded\")" : "the worker's exit code",
			 (long long)t->id);
		return;
	}
	if (code == WORKER_EXIT_LEASE_LOST) {
		snprintf(o->error_code, sizeof(o->error_code), "lease_lost");
		snprintf(msg, len, "the worker could not renew its lock lease in time and stopped acting");
		return;
	}
	if (timed_out) {
		snprintf(o->error_code, sizeof(o->error_code), "%s", TASK_ERR_TIMEOUT);
		snprintf(msg, len, "the task ran longer than its timeout (%llds) and was killed",
			 (long long)(t->timeout_ms / 1000));
		return;
	}
	if (stopped || code == WORKER_EXIT_STOPPED || code == WORKER_EXIT_UNRECORDED_CANCELLED) {
		o->state = TASK_CANCELLED;
		snprintf(o->error_code, sizeof(o->error_code), "%s", TASK_ERR_STOPPED);
		snprintf(msg, len, stopped ? "stopped by request" : "the worker was stopped by SIGTERM");
		return;
	}
	if (code == WORKER_EXIT_UNRECORDED_FAILED) {
		snprintf(o->error_code, sizeof(o->error_code), "failed");
		snprintf(msg, len, "the task failed, but its worker could neither record why (the store was "
			 "unavailable) nor leave it in %s/logs/tasks; see the task log", state_dir);
		return;
	}
	if (p->gone_before) {
		snprintf(msg, len, "the worker (pid %d) died while boxd %s, without recording a result", p->pid,
			 p->gone_while_down ? "was down" : "ran");
		return;
	}
	if (!p->have_status) {
		snprintf(msg, len,
			 "the worker (pid %d) ended without recording a result; its exit status is unknown "
			 "(it was re-adopted after a restart of boxd)",
			 p->pid);
	} else if (p->info.si_code == CLD_EXITED) {
		int st = p->info.si_status;
		if (st == WORKER_EXIT_CAUGHT)
			snprintf(msg, len, "the task handler crashed (worker exit status %d)", st);
		else if (st == 0)
			snprintf(msg, len, "the worker exited without recording a result");
		else if (st == WORKER_EXIT_SETUP)
			snprintf(msg, len, "the worker could not load or register its task (exit status %d); see its log",
				 st);
		else
			snprintf(msg, len, "the worker exited with status %d", st);
	} else {
		snprintf(msg, len, "the worker was killed by signal %d (%s)", p->info.si_status,
			 strsignal(p->info.si_status));
	}
}

/* One try at freeing the locks of a gone worker's task and recording its
 * end. Returns 0 when done (or nothing is left to do), else negative
 * errno (p->last_error says why). */
static int end_once(struct supervisor *sv, struct pending_end *p)
{
	struct store *s = sv->o.store;
	/* Never trust a worker to clean up after itself. */
	if (!p->released) {
		int released = 0;
		int r = locks_unlock_task(sv->o.lock_store, p->task_id, &released);
		if (r < 0) {
			snprintf(p->last_error, sizeof(p->last_error), "releasing its locks: %s",
				 store_errmsg(sv->o.lock_store));
			return r;
		}
		p->released = true;
		if (released > 0)
			log_info("task %lld: released %d lock(s) its worker left behind", (long long)p->task_id, released);
	}
	struct task t;
	int r = task_get(s, p->task_id, &t);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		snprintf(p->last_error, sizeof(p->last_error), "loading it: %s", store_errmsg(s));
		return r;
	}
	if (task_state_is_final(t.state)) {
		task_release(&t);
		task_outcome_remove(sv->o.config->state_dir, p->task_id);
		return 0;
	}
	struct task_outcome o;
	char how[300];
	decide_end(sv, p, &t, &o, how, sizeof(how));
	r = task_finish(s, p->task_id, o.state, o.error_code[0] ? o.error_code : NULL,
			o.error_code[0] ? o.error_message : NULL, o.result);
	if (r < 0) {
		snprintf(p->last_error, sizeof(p->last_error), "recording its end: %s", store_errmsg(s));
	} else {
		if (r == 1 && o.error_code[0])
			log_info("task %lld %s (from %s): %s", (long long)p->task_id, task_state_name(o.state), how,
				 o.error_message);
		else if (r == 1)
			log_info("task %lld %s (from %s)", (long long)p->task_id, task_state_name(o.state), how);
		task_outcome_remove(sv->o.config->state_dir, p->task_id);
		r = 0;
	}
	task_outcome_release(&o);
	task_release(&t);
	return r;
}

bool supervisor_has_pending(const struct supervisor *sv, int64_t task_id)
{
	for (const struct pending_end *p = sv->pending; p; p = p->next)
		if (p->task_id == task_id)
			return true;
	return false;
}

void supervisor_end_task(struct supervisor *sv, struct pending_end *tmpl)
{
	if (supervisor_has_pending(sv, tmpl->task_id))
		return;
	if (end_once(sv, tmpl) == 0)
		return;
	struct pending_end *p = malloc(sizeof(*p));
	if (!p) {
		log_error("task %lld: out of memory; its end is not recorded", (long long)tmpl->task_id);
		return;
	}
	*p = *tmpl;
	p->reported = true;
	p->next = sv->pending;
	sv->pending = p;
	sv->n_pending++;
	log_warn("task %lld: its worker ended, but the store does not take its end yet (%s); retrying every second",
		 (long long)p->task_id, p->last_error);
}

int supervisor_retry_pending(struct supervisor *sv, size_t *ret_left)
{
	int done = 0;
	for (struct pending_end **pp = &sv->pending; *pp;) {
		struct pending_end *p = *pp;
		if (end_once(sv, p) == 0) {
			log_info("task %lld: its end is recorded now", (long long)p->task_id);
			*pp = p->next;
			sv->n_pending--;
			free(p);
			done++;
		} else {
			pp = &p->next;
		}
	}
	if (ret_left)
		*ret_left = sv->n_pending;
	return done;
}

static void on_child_exit(struct child *c, bool have_status, const siginfo_t *info)
{
	struct supervisor *sv = c->sv;
	c->ended = true;
	bool not_mine = have_status && info->si_code == CLD_EXITED && info->si_status == WORKER_EXIT_NOT_MINE;
	if (not_mine) {
		/* The task went to another worker: its row and locks are not
		 * ours to touch. */
		log_info("task %lld: worker pid %d left it to another worker", (long long)c->task_id, c->proc.pid);
	} else {
		struct pending_end p = { .task_id = c->task_id, .pid = c->proc.pid, .have_status = have_status };
		if (have_status)
			p.info = *info;
		supervisor_end_task(sv, &p);
	}
	int64_t id = c->task_id;
	char *app = c->app_id ? strdup(c->app_id) : NULL;
	child_unlink(c);
	if (sv->o.on_exit)
		sv->o.on_exit(id, app, sv->o.userdata);
	free(app);
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	struct child *c = h->data;
	if (c->ended)
		return;
	siginfo_t info = { 0 };
	bool have_status = false;
	if (c->own) {
		/* Peek first (WNOWAIT): while the worker is an unreaped zombie its
		 * pid, and so its process group id, cannot be reused. */
		int w = waitid(P_PIDFD, (id_t)c->proc.pidfd, &info, WEXITED | WNOHANG | WNOWAIT);
		if (w == 0 && info.si_pid == 0)
			return; /* spurious wake-up: still running */
		if (w == 0) {
			/* A task's processes must not outlive it: kill whatever the
			 * worker left in its process group, then reap it. */
			killpg(c->proc.pid, SIGKILL);
			siginfo_t reaped;
			waitid(P_PIDFD, (id_t)c->proc.pidfd, &reaped, WEXITED);
			have_status = true;
		}
	} else {
		/* A re-adopted worker. After a re-exec of the daemon (an update
		 * keeps the pid) it is still our child: then reap it and use its
		 * status like our own. Otherwise (ECHILD) someone else reaps it
		 * and its exit status is lost to us. What it started may still
		 * run in its process group; while anything does, or while it is
		 * our unreaped zombie, the group id (= its pid) stays allocated
		 * and cannot name another process. */
		int w = waitid(P_PIDFD, (id_t)c->proc.pidfd, &info, WEXITED | WNOHANG | WNOWAIT);
		if (w == 0 && info.si_pid == 0)
			return; /* spurious wake-up: still running */
		killpg(c->proc.pid, SIGKILL);
		if (w == 0) {
			siginfo_t reaped;
			waitid(P_PIDFD, (id_t)c->proc.pidfd, &reaped, WEXITED);
			have_status = true;
		} else {
			memset(&info, 0, sizeof(info));
		}
	}
	on_child_exit(c, have_status, &info);
}

static void on_kill_timer(uv_timer_t *h)
{
	struct child *c = h->data;
	log_warn("task %lld: worker did not stop within the grace period; sending SIGKILL", (long long)c->task_id);
	/* Our own worker is not reaped before we have seen its exit, so its
	 * pid (the group id) cannot have been reused yet. */
	killpg(c->proc.pid, SIGKILL);
}

static void send_term(struct supervisor *sv, struct child *c)
{
	if (c->term_sent || c->ended)
		return;
	c->term_sent = true;
	killpg(c->proc.pid, SIGTERM);
	uv_timer_start(&c->kill_timer, on_kill_timer, (uint64_t)sv->o.config->stop_grace_ms, 0);
}

static void on_timeout_timer(uv_timer_t *h)
{
	struct child *c = h->data;
	struct supervisor *sv = c->sv;
	log_warn("task %lld: timed out; stopping it", (long long)c->task_id);
	task_request_stop(sv->o.store, c->task_id, "timeout");
	send_term(sv, c);
}

int supervisor_watch(struct supervisor *sv, int64_t task_id, const char *app_id, bool app_task,
		     const struct proc_ref *proc, bool own)
{
	struct child *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (struct child){ .sv = sv, .task_id = task_id, .app_id = app_id ? strdup(app_id) : NULL,
			     .app_task = app_task, .proc = *proc, .own = own };
	uv_poll_init(sv->o.loop, &c->poll, proc->pidfd);
	uv_timer_init(sv->o.loop, &c->kill_timer);
	uv_timer_init(sv->o.loop, &c->timeout_timer);
	c->poll.data = c->kill_timer.data = c->timeout_timer.data = c;
	c->open_handles = 3;
	c->next = sv->children;
	sv->children = c;
	sv->n_children++;
	uv_poll_start(&c->poll, UV_READABLE, on_pidfd);
	return 0;
}

int supervisor_worker_argv(const struct boxd_config *cfg, const char *argv0, const char **argv)
{
	int n = 0;
	argv[n++] = argv0;
	argv[n++] = "--state-dir";
	argv[n++] = cfg->state_dir;
	if (cfg->config_path) {
		argv[n++] = "--config";
		argv[n++] = cfg->config_path;
	}
	return n;
}

int supervisor_spawn_process(const struct supervisor *sv, const struct spawn_opts *so, struct proc_ref *ret)
{
	return (sv->o.spawn ? sv->o.spawn : spawn_process)(so, ret);
}

int supervisor_spawn(struct supervisor *sv, const struct task *t)
{
	const struct boxd_config *cfg = sv->o.config;
	char id[32], claim[32];
	snprintf(id, sizeof(id), "%lld", (long long)t->id);
	snprintf(claim, sizeof(claim), "%lld", (long long)t->claim);

	/* argv before fork: [sudo -n -u USER --] boxd --state-dir D [--config F] task run ID CLAIM */
	const char *argv[16];
	int n = 0;
	const char *path = sv->o.self_exe;
	if (cfg->task_user) {
		path = "/usr/bin/sudo";
		argv[n++] = "sudo";
		argv[n++] = "-n";
		argv[n++] = "-u";
		argv[n++] = cfg->task_user;
		argv[n++] = "--";
		n += supervisor_worker_argv(cfg, sv->o.self_exe, argv + n);
	} else {
		n += supervisor_worker_argv(cfg, "boxd", argv + n);
	}
	argv[n++] = "task";
	argv[n++] = "run";
	argv[n++] = id;
	argv[n++] = claim;
	argv[n] = NULL;

	/* The standby's worker creates its own log: allocating the inode
	 * was most of this thread's time per task after many files had been
	 * deleted (ext4 without a journal skips recently freed inodes one
	 * lookup at a time; issue 18). */
	struct proc_ref proc;
	int r = supervisor_spare_take(sv, t->id, t->claim, &proc);
	if (r == -EINPROGRESS) {
		/* A worker may run it: starting another would make two. */
		log_warn("task %lld: left to the reconcile, which re-adopts its worker or queues it again",
			 (long long)t->id);
		supervisor_spare_ensure(sv);
		return r;
	}
	if (r < 0) {
		int logfd = task_log_open(cfg->state_dir, t->id);
		if (logfd < 0) {
			char msg[256];
			snprintf(msg, sizeof(msg), TASK_LOG_OPEN_FAILED_FMT, cfg->state_dir, strerror(-logfd));
			task_finish(sv->o.store, t->id, TASK_FAILED, TASK_ERR_SPAWN_FAILED, msg, NULL);
			return logfd;
		}
		struct spawn_opts so = { .path = path, .argv = (char *const *)argv, .output_fd = logfd, .pass_fd = -1 };
		r = supervisor_spawn_process(sv, &so, &proc);
		close(logfd);
	}
	if (r < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "cannot start the worker %s: %s", path, strerror(-r));
		task_finish(sv->o.store, t->id, TASK_FAILED, TASK_ERR_SPAWN_FAILED, msg, NULL);
		log_error("task %lld: %s", (long long)t->id, msg);
		return r;
	}
	/* pid + start time: what a later daemon re-adopts it by. */
	r = task_set_pid(sv->o.store, t->id, t->claim, proc.pid, proc.start_time);
	if (r < 0)
		log_error("task %lld: cannot record the worker pid: %s", (long long)t->id, store_errmsg(sv->o.store));
	const struct task_type *type = task_type_find(t->type);
	r = supervisor_watch(sv, t->id, t->app_id, type && type->app_task, &proc, true);
	if (r < 0) {
		killpg(proc.pid, SIGKILL);
		proc_ref_close(&proc);
		return r;
	}
	log_debug("task %lld (%s): worker pid %d", (long long)t->id, t->type, (int)proc.pid);
	/* The standby, loaded while this task runs, if the task took it (or
	 * started by exec). */
	supervisor_spare_ensure(sv);
	return 0;
}

static bool watches_pid(const struct supervisor *sv, pid_t pid)
{
	for (const struct child *c = sv->children; c; c = c->next)
		if (c->proc.pid == pid)
			return true;
	return false;
}

/* One child of ours that supervisor_adopt() did not adopt: a worker of the
 * image this daemon was before an update's re-exec, whose task ended. */
static void adopt_stray(struct supervisor *sv, pid_t pid)
{
	siginfo_t info = { 0 };
	if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
		return; /* not our child after all */
	if (info.si_pid == pid) {
		/* Ended while no loop watched it: nobody else will reap it. */
		killpg(pid, SIGKILL);
		waitid(P_PID, (id_t)pid, &info, WEXITED);
		log_info("reaped worker pid %d, which ended during the daemon's re-exec", (int)pid);
		return;
	}
	/* Still running (its task ended just before the exec): watch it, so
	 * that its exit is reaped and its process group cleaned up. */
	struct store_stmt *st;
	if (store_query(sv->o.store, &st, "SELECT id, type, app_id FROM tasks WHERE pid = ? AND host = ? ORDER BY id DESC "
			"LIMIT 1", "is", (int64_t)pid, sv->o.host) < 0)
		return;
	if (store_step(st) == 1) {
		const struct task_type *type = task_type_find(store_col_text(st, 1) ? store_col_text(st, 1) : "");
		struct proc_ref proc;
		if (proc_ref_open(pid, 0, &proc) == 0 &&
		    supervisor_watch(sv, store_col_int64(st, 0), store_col_text(st, 2), type && type->app_task, &proc,
				     false) < 0)
			proc_ref_close(&proc);
	} else {
		/* No task: the previous image's standby worker (it exits on the
		 * EOF of its socket, which the exec closed). Reap it. */
		kill(pid, SIGKILL);
		waitid(P_PID, (id_t)pid, &info, WEXITED);
	}
	store_finalize(st);
}

/* After a re-exec the workers of the previous image are still our children
 * (the pid stayed): find those that are not watched (/proc lists each
 * thread's children). */
static void adopt_strays(struct supervisor *sv)
{
	DIR *dir = opendir("/proc/self/task");
	if (!dir)
		return;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		int pid;
		while (fscanf(f, "%d", &pid) == 1)
			if (pid > 0 && !watches_pid(sv, pid))
				adopt_stray(sv, pid);
		fclose(f);
	}
	closedir(dir);
}

int supervisor_adopt(struct supervisor *sv, struct supervisor_reconcile_report *ret)
{
	int r = supervisor_reconcile(sv, ret);
	adopt_strays(sv);
	supervisor_spare_ensure(sv);
	return r;
}

/* The timeout counts from the task's startedAt (set by the worker once it
 * holds its locks): time spent waiting for a lock is not the task's fault,
 * and the same rule holds for a worker re-adopted after a restart. */
static void arm_timeout(struct supervisor *sv, struct child *c, const struct task *t)
{
	if (c->timeout_armed || t->timeout_ms <= 0 || t->started_at <= 0)
		return;
	c->timeout_armed = true;
	int64_t left = t->started_at + t->timeout_ms - now_wall_ms();
	uv_timer_start(&c->timeout_timer, on_timeout_timer, (uint64_t)(left > 0 ? left : 0), 0);
	(void)sv;
}

void supervisor_apply_stops(struct supervisor *sv)
{
	for (struct child *c = sv->children; c; c = c->next) {
		if (c->term_sent || c->ended)
			continue;
		struct task t;
		if (task_get(sv->o.store, c->task_id, &t) < 0)
			continue;
		if (t.stop_reason) {
			log_info("task %lld: stopping (%s)", (long long)c->task_id, t.stop_reason);
			send_term(sv, c);
		} else {
			arm_timeout(sv, c, &t);
		}
		task_release(&t);
	}
}

size_t supervisor_count(const struct supervisor *sv) { return sv->n_children; }

size_t supervisor_count_app_tasks(const struct supervisor *sv, const char *app_id)
{
	size_t n = 0;
	for (const struct child *c = sv->children; c; c = c->next)
		if (c->app_task && (!app_id || (c->app_id && strcmp(c->app_id, app_id) == 0)))
			n++;
	return n;
}

bool supervisor_watches(const struct supervisor *sv, int64_t task_id)
{
	for (const struct child *c = sv->children; c; c = c->next)
		if (c->task_id == task_id)
			return true;
	return false;
}

void supervisor_close(struct supervisor *sv)
{
	if (!sv || sv->closing)
		return;
	sv->closing = true;
	supervisor_spare_drop(sv);
	while (sv->children) {
		struct child *c = sv->children;
		c->ended = true;
		child_unlink(c);
	}
}

void supervisor_free(struct supervisor *sv)
{
	if (!sv)
		return;
	while (sv->pending) {
		struct pending_end *p = sv->pending;
		sv->pending = p->next;
		log_warn("task %lld: stopping with its end still unrecorded; the next start records it",
			 (long long)p->task_id);
		free(p);
	}
	free(sv);
}
