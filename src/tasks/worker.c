/* worker.c — see worker.h. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "locks/locks.h"
#include "store/store.h"
#include "task.h"
#include "task_type.h"
#include "tasks/store_open.h"

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

struct wait_report {
	struct store *store;
	int64_t task_id;
};

static void report_wait(const struct lock_blocker *b, void *userdata)
{
	struct wait_report *w = userdata;
	char msg[256];
	if (task_report_waiting(w->store, w->task_id, b, msg, sizeof(msg)) >= 0)
		log_info("task %lld: %s", (long long)w->task_id, msg);
}

/* Record a stop, as a timeout or an operator's stop (the supervisor wrote
 * the reason before it signalled us). */
static int finish_stopped(struct store *s, int64_t id)
{
	struct task t;
	bool timeout = false;
	if (task_get(s, id, &t) == 0) {
		timeout = t.stop_reason && strcmp(t.stop_reason, "timeout") == 0;
		task_release(&t);
	}
	log_info("task %lld: %s; stopping", (long long)id, timeout ? "timed out" : "stop requested");
	if (timeout)
		task_finish(s, id, TASK_FAILED, TASK_ERR_TIMEOUT, "the task ran longer than its timeout and was stopped",
			    NULL);
	else
		task_finish(s, id, TASK_CANCELLED, TASK_ERR_STOPPED, "stopped by request", NULL);
	return WORKER_EXIT_STOPPED;
}

int worker_standby(const struct boxd_config *cfg, int sock_fd)
{
	int64_t task_id = 0;
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &task_id, .iov_len = sizeof(task_id) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	ssize_t n;
	do
		n = recvmsg(sock_fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	close(sock_fd);
	if (n != (ssize_t)sizeof(task_id) || task_id <= 0)
		return WORKER_EXIT_DONE; /* the daemon went away: nothing to do */
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
		int logfd;
		memcpy(&logfd, CMSG_DATA(cm), sizeof(logfd));
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	return worker_main(cfg, task_id);
}

int worker_main(const struct boxd_config *cfg, int64_t task_id)
{
	struct sigaction term = { .sa_handler = on_term };
	sigaction(SIGTERM, &term, NULL);
	sigaction(SIGINT, &term, NULL);
	struct sigaction crash = { .sa_handler = on_crash, .sa_flags = SA_RESETHAND };
	sigaction(SIGSEGV, &crash, NULL);
	sigaction(SIGBUS, &crash, NULL);
	sigaction(SIGFPE, &crash, NULL);
	sigaction(SIGILL, &crash, NULL);

	struct store *s = NULL, *ls = NULL;
	char err[512];
	if (store_open_config(cfg, STORE_OPEN_NO_MIGRATE, &s, err, sizeof(err)) < 0 ||
	    store_open_config(cfg, STORE_OPEN_NO_MIGRATE | STORE_OPEN_RELAXED, &ls, err, sizeof(err)) < 0) {
		log_error("task %lld: cannot open the store: %s", (long long)task_id, err);
		store_close(s);
		return WORKER_EXIT_SETUP;
	}

	int code = WORKER_EXIT_DONE;
	struct task t = { 0 };
	json_t *args = NULL;
	struct lock_req *reqs = NULL;
	size_t n_reqs = 0;
	struct lock_owner owner;
	bool have_owner = false;

	int r = task_get(s, task_id, &t);
	if (r < 0) {
		log_error("task %lld: cannot load it: %s", (long long)task_id, r == -ENOENT ? "no such task" : store_errmsg(s));
		code = WORKER_EXIT_SETUP;
		goto out;
	}
	if (task_state_is_final(t.state)) {
		log_info("task %lld is already %s; nothing to do", (long long)task_id, task_state_name(t.state));
		goto out;
	}
	log_info("task %lld (%s) starting in pid %d", (long long)task_id, t.type, (int)getpid());
	uint64_t my_start = 0;
	if (proc_start_time(getpid(), &my_start) == 0)
		task_set_pid_if_unset(s, task_id, getpid(), my_start);

	const struct task_type *type = task_type_find(t.type);
	args = json_loads(t.args ? t.args : "{}", 0, NULL);
	if (!type || !json_is_object(args)) {
		task_finish(s, task_id, TASK_FAILED, "bad_task",
			    !type ? "unknown task type" : "the task's arguments are not a JSON object", NULL);
		goto out;
	}
	if (cancel_requested || t.stop_reason) {
		code = finish_stopped(s, task_id);
		goto out;
	}

	r = lock_owner_self(&owner, task_id);
	if (r < 0) {
		task_finish(s, task_id, TASK_FAILED, "internal", "cannot identify the worker process", NULL);
		goto out;
	}
	have_owner = true;
	if (type->locks) {
		r = type->locks(&t, args, &reqs, &n_reqs);
		if (r < 0) {
			task_finish(s, task_id, TASK_FAILED, "bad_task", "cannot compute the task's locks", NULL);
			goto out;
		}
	}
	if (n_reqs > 0) {
		struct wait_report wr = { s, task_id };
		struct locks_acquire_opts opts = {
			.timeout_ms = -1, .on_wait = report_wait, .userdata = &wr, .cancel = &cancel_requested,
			.lease_ms = config_lease_ms(cfg),
			.on_expired = task_lock_lease_expired, .expired_userdata = s,
		};
		int64_t token;
		r = locks_acquire(ls, &owner, reqs, n_reqs, &opts, &token, NULL);
		if (r == -ECANCELED) {
			code = finish_stopped(s, task_id);
			goto out;
		}
		if (r < 0) {
			char msg[600];
			snprintf(msg, sizeof(msg), "cannot take the task's locks: %s", store_errmsg(ls));
			task_finish(s, task_id, TASK_FAILED, "lock_error", msg, NULL);
			goto out;
		}
		log_info("task %lld: locks taken (fencing token %lld)", (long long)task_id, (long long)token);
	}
	if (task_set_running(s, task_id) == 0) {
		/* It ended while it waited: another host took this host for gone
		 * (its leases expired) and failed it. Do not run it now. */
		log_warn("task %lld ended while it waited for its locks; not running it", (long long)task_id);
		goto out;
	}

	struct task_ctx ctx = {
		.store = s, .config = cfg, .task = &t, .args = args, .owner = &owner, .cancel = &cancel_requested,
	};
	r = type->run(&ctx);
	/* Release before the final state is visible: whoever sees this task
	 * ended may rely on its locks being free. */
	locks_release_task(ls, task_id, NULL);
	if (r == -ECANCELED || (r < 0 && cancel_requested)) {
		code = finish_stopped(s, task_id);
	} else if (r < 0) {
		if (!ctx.error_code[0])
			task_ctx_fail(&ctx, r, "failed", "%s", strerror(-r));
		log_error("task %lld failed: %s: %s", (long long)task_id, ctx.error_code, ctx.error_message);
		task_finish(s, task_id, TASK_FAILED, ctx.error_code, ctx.error_message, NULL);
	} else {
		char *result = ctx.result ? json_dumps(ctx.result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		/* Log first: a log stream ends once it sees the final state and
		 * must not miss this line. */
		log_info("task %lld succeeded", (long long)task_id);
		task_finish(s, task_id, TASK_SUCCEEDED, NULL, NULL, result);
		free(result);
	}
	json_decref(ctx.result);
out:
	if (have_owner)
		locks_release_task(ls, task_id, NULL);
	free(reqs);
	json_decref(args);
	task_release(&t);
	store_close(ls);
	store_close(s);
	return code;
}
