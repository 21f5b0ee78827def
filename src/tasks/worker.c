/* worker.c — see worker.h.
 *
 * Store outages. Every store step the worker cannot skip (loading the task,
 * registering, waiting for and releasing its locks, entering `running`,
 * recording the end) is retried with the store_retry policy while the
 * failure is transient (busy, connection lost or refused, disk full), for
 * up to [store] outage_grace; a busy database never ends a lock wait. The
 * first failure of an outage is logged and, where the store takes it, shown
 * as the task's message ("store unavailable since 12:03:04 UTC, retrying");
 * the end of the outage is logged with its length. A worker whose end
 * cannot be recorded leaves its outcome beside its log and exits with a
 * code that says so (worker.h); the supervisor records it.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fd_pass.h"
#include "common/log.h"
#include "common/proc.h"
#include "locks/broker_client.h"
#include "locks/locks.h"
#include "store/store.h"
#include "store/store_retry.h"
#include "task.h"
#include "task_ctx_lock.h"
#include "task_outage.h"
#include "task_outcome.h"
#include "task_type.h"
#include "tasks/store_open.h"
#include "worker_lease.h"

static volatile sig_atomic_t cancel_requested;

static void on_term(int sig)
{
	(void)sig;
	cancel_requested = 1;
}

static void on_crash(int sig)
{
	/* A handler bug must not look like a clean exit: tell the supervisor
	 * with the documented code. Only async-signal-safe calls here. */
	static const char msg[] = "worker: fatal signal in the task handler\n";
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)sig;
	_exit(WORKER_EXIT_CAUGHT);
}

struct worker {
	const struct boxd_config *cfg;
	int64_t id;
	struct store *s;        /* task rows */
	struct store *ls;       /* the lock document (on a server database: s) */
	struct worker_lease *lease; /* renews the lease of its locks; NULL: no lease */
	const struct lock_owner *owner; /* this worker as lock owner, once known */
	struct task_outage outage;  /* its .s is set once the store is open */
};

/* ---- riding out store outages ------------------------------------------------ */

typedef int (*store_op)(struct worker *w, void *arg);

/* Run op until it succeeds or fails for good (not transient, or the
 * outage outlasted the grace). Returns what op returned last. */
static int with_retry(struct worker *w, const char *what, struct store *msg_store, store_op op, void *arg)
{
	struct store_retry rt;
	store_retry_init(&rt, w->cfg->outage_grace_ms);
	for (;;) {
		int r = op(w, arg);
		if (r >= 0) {
			task_outage_over(&w->outage, &rt, what);
			return r;
		}
		if (store_retry_failed(&rt, r) < 0) {
			if (store_error_is_transient(r))
				log_error("task %lld: %s: the store stayed unavailable for %lld ms ([store] outage_grace); "
					  "giving up: %s", (long long)w->id, what, (long long)store_retry_elapsed_ms(&rt),
					  msg_store ? store_errmsg(msg_store) : "");
			return r;
		}
		task_outage_note(&w->outage, &rt, r, msg_store ? store_errmsg(msg_store) : "", what);
		store_retry_sleep(&rt);
	}
}

/* ---- the steps ------------------------------------------------------------------ */

struct open_arg {
	unsigned flags;
	struct store **ret;
	char err[512];
};

static int op_open(struct worker *w, void *varg)
{
	struct open_arg *a = varg;
	return store_open_config(w->cfg, a->flags, a->ret, a->err, sizeof(a->err));
}

static int open_store(struct worker *w, unsigned flags, struct store **ret)
{
	struct open_arg a = { .flags = flags, .ret = ret };
	struct store_retry rt;
	store_retry_init(&rt, w->cfg->outage_grace_ms);
	for (;;) {
		int r = op_open(w, &a);
		if (r >= 0) {
			task_outage_over(&w->outage, &rt, "opening the store");
			return r;
		}
		if (store_retry_failed(&rt, r) < 0) {
			log_error("task %lld: cannot open the store: %s", (long long)w->id, a.err);
			return r;
		}
		task_outage_note(&w->outage, &rt, r, a.err, "opening the store");
		store_retry_sleep(&rt);
	}
}

static int op_get(struct worker *w, void *t) { return task_get(w->s, w->id, t); }

struct register_arg {
	int64_t claim;
	const char *host;
	uint64_t start;
};

static int op_register(struct worker *w, void *varg)
{
	struct register_arg *a = varg;
	return task_register_worker(w->s, w->id, a->claim, a->host, getpid(), a->start);
}

static int op_running(struct worker *w, void *arg)
{
	(void)arg;
	return task_set_running(w->s, w->id);
}

static int op_release(struct worker *w, void *arg)
{
	(void)arg;
	/* Through the lock broker first: it hands the locks to the host's
	 * next waiters in the same change. Then the task's release as
	 * before, for what other processes of the task hold or wait for
	 * (nothing left: a change that writes nothing). */
	if (w->owner)
		(void)locks_unlock_brokered(task_lock_broker_path(w->cfg), w->ls, w->owner, NULL, 0, NULL);
	return locks_unlock_task(w->ls, w->id, NULL);
}

static int op_finish(struct worker *w, void *varg)
{
	const struct task_outcome *o = varg;
	return task_finish(w->s, w->id, o->state, o->error_code[0] ? o->error_code : NULL,
			   o->error_code[0] ? o->error_message : NULL, o->result);
}

static int exit_code_unrecorded(enum task_state state)
{
	return state == TASK_SUCCEEDED ? WORKER_EXIT_UNRECORDED_SUCCEEDED
	       : state == TASK_CANCELLED ? WORKER_EXIT_UNRECORDED_CANCELLED
					 : WORKER_EXIT_UNRECORDED_FAILED;
}

/* The end of every task that got past loading: leave the outcome in the
 * log (task_outcome.h), free the locks (before the end is visible: whoever sees the task
 * ended may rely on its locks being free), record the end, and say by the
 * exit code whether that worked. `code` is the exit code once recorded. */
static int end_task(struct worker *w, struct task_outcome *o, bool have_locks, int code)
{
	int wr = task_outcome_write(w->cfg->state_dir, w->id, o);
	if (wr < 0)
		log_warn("task %lld: cannot leave its outcome in %s/logs/tasks: %s", (long long)w->id, w->cfg->state_dir,
			 strerror(-wr));
	int r = 0;
	/* Acting is over: a lease that runs out from here on stops nothing. */
	worker_lease_set_holding(w->lease, false);
	if (have_locks) {
		r = with_retry(w, "releasing its locks", w->ls, op_release, NULL);
		if (r < 0)
			log_error("task %lld: cannot release its locks: %s", (long long)w->id, store_errmsg(w->ls));
	}
	if (r >= 0) {
		r = with_retry(w, "recording its end", w->s, op_finish, o);
		if (r < 0)
			log_error("task %lld: cannot record that it %s: %s", (long long)w->id, task_state_name(o->state),
				  store_errmsg(w->s));
	}
	if (r < 0) {
		/* The supervisor takes over (worker.h). */
		log_flush();
		return exit_code_unrecorded(o->state);
	}
	return code;
}

static int fail_task(struct worker *w, bool have_locks, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_task(struct worker *w, bool have_locks, const char *code, const char *fmt, ...)
{
	struct task_outcome o = { .state = TASK_FAILED };
	snprintf(o.error_code, sizeof(o.error_code), "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o.error_message, sizeof(o.error_message), fmt, ap);
	va_end(ap);
	log_error("task %lld failed: %s: %s", (long long)w->id, o.error_code, o.error_message);
	return end_task(w, &o, have_locks, WORKER_EXIT_DONE);
}

/* Record a stop, as a timeout or an operator's stop (the supervisor wrote
 * the reason before it signalled us). */
static int finish_stopped(struct worker *w, bool have_locks)
{
	struct task t;
	bool timeout = false;
	if (with_retry(w, "loading the task", w->s, op_get, &t) == 0) {
		timeout = t.stop_reason && strcmp(t.stop_reason, "timeout") == 0;
		task_release(&t);
	}
	log_info("task %lld: %s; stopping", (long long)w->id, timeout ? "timed out" : "stop requested");
	struct task_outcome o = { .state = timeout ? TASK_FAILED : TASK_CANCELLED };
	snprintf(o.error_code, sizeof(o.error_code), "%s", timeout ? TASK_ERR_TIMEOUT : TASK_ERR_STOPPED);
	snprintf(o.error_message, sizeof(o.error_message), "%s",
		 timeout ? "the task ran longer than its timeout and was stopped" : "stopped by request");
	return end_task(w, &o, have_locks, WORKER_EXIT_STOPPED);
}

static int worker_run(const struct boxd_config *cfg, int64_t task_id, int64_t claim, int log_err);

/* Run task `id` in this process, with the config file read again: a
 * standby worker started before its task, perhaps long before, must apply
 * an edit made since as a worker started by exec does (the environment,
 * which carries the daemon's flags, is the same). */
static int standby_run(const struct boxd_config *cfg, int64_t id, int64_t claim, int log_err)
{
	struct boxd_config fresh;
	char err[512];
	if (config_load(&fresh, cfg->config_path, cfg->state_dir, err, sizeof(err)) == 0) {
		log_set_level((enum log_level)fresh.log_level); /* as `boxd task run` sets it */
		int r = worker_run(&fresh, id, claim, log_err);
		config_release(&fresh);
		return r;
	}
	log_warn("task %lld: cannot read the config again (%s); using the one read at start", (long long)id, err);
	return worker_run(cfg, id, claim, log_err);
}

/* The task's log as stdout and stderr: the one the daemon sent (a daemon
 * of an older boxd does), else opened here, in the task's own process,
 * which is what spares the daemon's loop thread the inode (task_outcome.h).
 * 0, or negative errno: the output stays the standby's (the daemon's), and
 * the worker fails the task with it. */
static int standby_take_log(const struct boxd_config *cfg, int64_t id, int logfd)
{
	if (logfd < 0)
		logfd = task_log_open(cfg->state_dir, id);
	if (logfd < 0)
		return logfd;
	dup2(logfd, STDOUT_FILENO);
	dup2(logfd, STDERR_FILENO);
	close(logfd);
	return 0;
}

/* Tell the daemon which process runs the task (worker.h); pidfd < 0: none
 * to pass (this very process). */
static int standby_reply(int sock_fd, pid_t pid, int pidfd)
{
	int64_t v = pid;
	return fd_pass_send(sock_fd, &v, sizeof(v), pidfd) < 0 ? -EPIPE : 0;
}

/* A new process for one task, as a sibling (CLONE_PARENT): the daemon is
 * its parent, so it reaps it, reads its exit status and owns its pidfd
 * exactly as for a worker it started by exec. fork() cannot do that, and
 * is what this replaces: clone3 goes around glibc's fork(), so the child
 * runs no atfork handlers and glibc's record of the thread id stays the
 * standby's. That is safe here because the standby is single-threaded,
 * holds no lock, has opened no store and used no library beyond what the
 * libraries' constructors did (all it does is read the config and wait),
 * and nothing in a worker asks glibc for its own thread id to signal or
 * schedule itself (pthread_kill() on oneself asks the kernel). Returns the child's pid in the parent (and
 * its pidfd in *ret_pidfd), 0 in the child, or negative errno. */
static pid_t clone_sibling(int *ret_pidfd)
{
	int pidfd = -1;
	/* No exit_signal: with CLONE_PARENT the child gets the standby's own
	 * (SIGCHLD, as fork() in spawn_process() gave it). */
	struct clone_args ca = { .flags = CLONE_PARENT | CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd };
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
#if defined(__x86_64__) || defined(__aarch64__)
	/* clone3 refused outright (some container seccomp profiles): the
	 * older clone, whose parent_tid argument (third on these two) takes
	 * the pidfd. */
	if (pid < 0 && errno == ENOSYS)
		pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | CLONE_PIDFD | SIGCHLD), 0UL, &pidfd, 0UL, 0UL);
#endif
	if (pid < 0)
		return -errno;
	if (pid > 0)
		*ret_pidfd = pidfd;
	return (pid_t)pid;
}

int worker_standby(const struct boxd_config *cfg, int sock_fd)
{
	for (;;) {
		int64_t msg_ids[2] = { 0, 0 }; /* task id, claim token */
		int logfd = -1;
		if (fd_pass_recv(sock_fd, msg_ids, sizeof(msg_ids), &logfd, 0) < 0 || msg_ids[0] <= 0) {
			if (logfd >= 0)
				close(logfd);
			close(sock_fd);
			return WORKER_EXIT_DONE; /* the daemon went away: nothing to do */
		}
		log_flush(); /* nothing buffered may be written twice */
		int pidfd = -1;
		pid_t pid = clone_sibling(&pidfd);
		if (pid == 0) {
			/* The task's worker: its own session, as spawn_process()
			 * gives a worker started by exec. */
			close(sock_fd);
			setsid();
			int log_err = standby_take_log(cfg, msg_ids[0], logfd);
			int code = standby_run(cfg, msg_ids[0], msg_ids[1], log_err);
			/* _exit, not exit(): the destructors of the ~55 libraries
			 * the standby loaded (nearly all unused here) cost a tenth
			 * of such a worker's CPU, and none of them leaves anything
			 * a later process needs; ours are flushed here. */
			log_flush();
			fflush(NULL);
			_exit(code);
		}
		if (pid < 0) {
			/* No sibling (an old kernel, a seccomp filter): this
			 * process becomes the task's worker, as a standby did
			 * before it could start more than one. */
			int r = standby_reply(sock_fd, getpid(), -1);
			close(sock_fd);
			if (r < 0) {
				if (logfd >= 0)
					close(logfd);
				return WORKER_EXIT_DONE; /* the daemon went away: it records nothing of ours */
			}
			int log_err = standby_take_log(cfg, msg_ids[0], logfd);
			return standby_run(cfg, msg_ids[0], msg_ids[1], log_err);
		}
		close(logfd);
		int r = standby_reply(sock_fd, pid, pidfd);
		close(pidfd);
		if (r < 0) {
			/* The daemon went away after it handed the task over: the
			 * worker runs on and the next daemon re-adopts it. */
			close(sock_fd);
			return WORKER_EXIT_DONE;
		}
	}
}

/* worker_main(), for a task whose log could not be opened when log_err
 * is negative (an errno): the task fails with it once this worker has
 * registered. */
static int worker_run(const struct boxd_config *cfg, int64_t task_id, int64_t claim, int log_err)
{
	struct sigaction term = { .sa_handler = on_term };
	sigaction(SIGTERM, &term, NULL);
	sigaction(SIGINT, &term, NULL);
	struct sigaction crash = { .sa_handler = on_crash, .sa_flags = SA_RESETHAND };
	sigaction(SIGSEGV, &crash, NULL);
	sigaction(SIGBUS, &crash, NULL);
	sigaction(SIGFPE, &crash, NULL);
	sigaction(SIGILL, &crash, NULL);

	struct worker w = { .cfg = cfg, .id = task_id, .outage = { .task_id = task_id } };
	int code = WORKER_EXIT_DONE;
	struct task t = { 0 };
	json_t *args = NULL;
	struct lock_req *reqs = NULL;
	size_t n_reqs = 0;
	struct lock_owner owner;
	bool have_owner = false;

	/* One connection for the task rows and the lock document: on a
	 * server database (durability is the server's; it halves the
	 * connections of many waiting workers), and on SQLite behind the
	 * lock broker, whose own connection commits the locks: this one
	 * serves them only if the broker is gone (then at full durability),
	 * and a second SQLite open per task cost more than that fallback
	 * saves (issue 18). On SQLite without the broker, a second
	 * connection whose lock commits are relaxed (store.h). */
	if (open_store(&w, STORE_OPEN_NO_MIGRATE, &w.s) < 0) {
		code = WORKER_EXIT_SETUP;
		goto out;
	}
	w.outage.s = w.s;
	if (store_get_backend(w.s) != STORE_BACKEND_SQLITE || task_lock_broker_path(cfg))
		w.ls = w.s;
	else if (open_store(&w, STORE_OPEN_NO_MIGRATE | STORE_OPEN_RELAXED, &w.ls) < 0) {
		code = WORKER_EXIT_SETUP;
		goto out;
	}

	int r = with_retry(&w, "loading the task", w.s, op_get, &t);
	if (r < 0) {
		log_error("task %lld: cannot load it: %s", (long long)task_id, r == -ENOENT ? "no such task" : store_errmsg(w.s));
		code = WORKER_EXIT_SETUP;
		goto out;
	}
	if (task_state_is_final(t.state)) {
		log_info("task %lld is already %s; nothing to do", (long long)task_id, task_state_name(t.state));
		goto out;
	}
	log_context_task(task_id, t.app_id); /* journal fields of every later line */
	log_info("task %lld (%s) starting in pid %d", (long long)task_id, t.type, (int)getpid());
	char host[LOCK_HOST_MAX];
	struct register_arg reg = { .claim = claim, .host = host };
	if (host_owner_id_get(host, sizeof(host)) < 0 || proc_start_time(getpid(), &reg.start) < 0) {
		code = fail_task(&w, false, "internal", "cannot identify the worker process");
		goto out;
	}
	r = with_retry(&w, "registering the worker", w.s, op_register, &reg);
	if (r < 0) {
		log_error("task %lld: cannot register this worker: %s", (long long)task_id, store_errmsg(w.s));
		code = WORKER_EXIT_SETUP;
		goto out;
	}
	if (r == 0) {
		log_warn("task %lld was queued again or claimed for another worker before this one started; "
			 "leaving it alone", (long long)task_id);
		code = WORKER_EXIT_NOT_MINE;
		goto out;
	}

	if (log_err < 0) {
		code = fail_task(&w, false, TASK_ERR_SPAWN_FAILED, TASK_LOG_OPEN_FAILED_FMT, cfg->state_dir,
				 strerror(-log_err));
		goto out;
	}

	const struct task_type *type = task_type_find(t.type);
	args = json_loads(t.args ? t.args : "{}", 0, NULL);
	if (!type || !json_is_object(args)) {
		code = fail_task(&w, false, "bad_task", "%s",
				 !type ? "unknown task type" : "the task's arguments are not a JSON object");
		goto out;
	}
	if (cancel_requested || t.stop_reason) {
		code = finish_stopped(&w, false);
		goto out;
	}

	r = lock_owner_self(&owner, task_id);
	if (r < 0) {
		code = fail_task(&w, false, "internal", "cannot identify the worker process");
		goto out;
	}
	have_owner = true;
	w.owner = &owner;
	r = task_type_locks(type, &t, args, &reqs, &n_reqs);
	if (r < 0) {
		code = fail_task(&w, false, "bad_task", "cannot compute the task's locks");
		goto out;
	}
	struct task_fence fence = { .locks = reqs, .n_locks = n_reqs, .lease_ms = config_lease_ms(cfg),
				    .outage_grace_ms = cfg->outage_grace_ms };
	struct task_ctx ctx = {
		.store = w.s, .lock_store = w.ls, .config = cfg, .task = &t, .args = args, .owner = &owner,
		.cancel = &cancel_requested, .fence = n_reqs > 0 ? &fence : NULL,
	};
	store_retry_init(&ctx.progress_retry, 0);
	if (n_reqs > 0 && fence.lease_ms > 0) {
		r = worker_lease_start(cfg, &owner, task_id, &w.lease);
		if (r < 0) {
			code = fail_task(&w, false, "internal", "cannot start renewing the lock lease: %s", strerror(-r));
			goto out;
		}
		fence.lease = w.lease;
	}
	if (n_reqs > 0) {
		r = task_ctx_lock_all(&ctx, reqs, n_reqs, &fence.token);
		if (r == -ECANCELED) {
			code = finish_stopped(&w, true);
			goto out;
		}
		if (r < 0) {
			code = fail_task(&w, true, "lock_error", "cannot take the task's locks: %s", store_errmsg(w.ls));
			goto out;
		}
		worker_lease_set_holding(w.lease, true);
		log_info("task %lld: locks taken (fencing token %lld)", (long long)task_id, (long long)fence.token);
	}
	r = with_retry(&w, "entering running", w.s, op_running, NULL);
	if (r < 0) {
		code = fail_task(&w, true, "store_unavailable", "cannot record that the task runs: %s", store_errmsg(w.s));
		goto out;
	}
	if (r == 0) {
		/* It ended while it waited: another host took this host for gone
		 * (its leases expired) and failed it. Do not run it now. */
		log_warn("task %lld ended while it waited for its locks; not running it", (long long)task_id);
		goto out;
	}

	r = type->run(&ctx);
	if (r == -ECANCELED || (r < 0 && cancel_requested)) {
		code = finish_stopped(&w, true);
	} else if (r < 0) {
		if (!ctx.error_code[0])
			task_ctx_fail(&ctx, r, "failed", "%s", strerror(-r));
		code = fail_task(&w, true, ctx.error_code, "%s", ctx.error_message);
	} else {
		struct task_outcome o = { .state = TASK_SUCCEEDED };
		o.result = ctx.result ? json_dumps(ctx.result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		/* Log first: a log stream ends once it sees the final state and
		 * must not miss this line (and the reconcile reads it, should
		 * everything else be lost). */
		log_info("task %lld succeeded", (long long)task_id);
		code = end_task(&w, &o, true, WORKER_EXIT_DONE);
		task_outcome_release(&o);
	}
	json_decref(ctx.result);
	have_owner = false; /* end_task released them */
out:
	worker_lease_set_holding(w.lease, false);
	if (have_owner && code != WORKER_EXIT_NOT_MINE)
		locks_unlock_task(w.ls, task_id, NULL);
	worker_lease_stop(w.lease);
	free(reqs);
	json_decref(args);
	task_release(&t);
	if (w.ls != w.s)
		store_close(w.ls);
	store_close(w.s);
	log_flush();
	return code;
}

int worker_main(const struct boxd_config *cfg, int64_t task_id, int64_t claim)
{
	return worker_run(cfg, task_id, claim, 0);
}
