/* supervisor_spare.c — the standby worker: one `boxd task standby`
 * process started ahead of the tasks, so exec and library loading are paid
 * once, not per task (worker.h). The supervisor hands it a task over a
 * socketpair; it answers with the pid of the task's worker, a
 * child of ours it cloned, and waits for the next. Without one, tasks
 * start by exec.
 * Owned by the loop thread, like the rest of the supervisor. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/fd_pass.h"
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "spawn.h"
#include "supervisor-internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

void supervisor_spare_drop(struct supervisor *sv)
{
	struct spare *sp = &sv->spare;
	if (!sp->proc.pid)
		return;
	close(sp->sock);
	/* Closing the socket makes it exit; reap it so no zombie stays. */
	siginfo_t info;
	waitid(P_PIDFD, (id_t)sp->proc.pidfd, &info, WEXITED);
	proc_ref_close(&sp->proc);
	*sp = (struct spare){ .proc = PROC_REF_NONE };
}

/* Keep one standby worker ready (not with [tasks] user: sudo closes the
 * socket it would wait on). Best effort: without one, tasks start by exec. */
void supervisor_spare_ensure(struct supervisor *sv)
{
	const struct boxd_config *cfg = sv->o.config;
	if (sv->spare.proc.pid || sv->closing || cfg->task_user)
		return;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return;
	const char *argv[SUPERVISOR_WORKER_ARGV_MAX + 3];
	int n = supervisor_worker_argv(cfg, "boxd", argv);
	argv[n++] = "task";
	argv[n++] = "standby";
	argv[n] = NULL;
	struct spawn_opts so = { .path = sv->o.self_exe, .argv = (char *const *)argv, .output_fd = -1,
				 .pass_fd = sp[1] };
	struct proc_ref proc;
	int r = supervisor_spawn_process(sv, &so, &proc);
	close(sp[1]);
	if (r < 0) {
		close(sp[0]);
		log_warn("cannot start a standby worker: %s", strerror(-r));
		return;
	}
	sv->spare = (struct spare){ .proc = proc, .sock = sp[0] };
}

/* How long the loop thread waits for the standby's answer: it clones
 * and answers at once, so only a stopped or dying standby takes long. */
#define SPARE_REPLY_MS 2000

/* The standby's answer to a task: the pid of the process that runs it,
 * with its pidfd unless that process is the standby itself. 0, or
 * negative errno (no answer). */
static int spare_reply(int sock, pid_t *ret_pid, int *ret_pidfd)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int r;
	do
		r = poll(&pfd, 1, SPARE_REPLY_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r < 0 ? -errno : -ETIMEDOUT;
	int64_t pid = 0;
	int pidfd = -1;
	if ((r = fd_pass_recv(sock, &pid, sizeof(pid), &pidfd, MSG_DONTWAIT)) < 0)
		return r;
	if (pid <= 0) {
		if (pidfd >= 0)
			close(pidfd);
		return -EPIPE;
	}
	*ret_pid = (pid_t)pid;
	*ret_pidfd = pidfd;
	return 0;
}

/* Hand task `id` to the standby worker (worker.h: it starts
 * the task's worker as our child and stays, or becomes it). Returns 0
 * with the worker's pid and pidfd (now the task's); -ENOENT or -EPIPE
 * when the task did not reach it (no spare, or it died: the caller starts
 * the task by exec); -EINPROGRESS when it did but no answer came, so a
 * worker may run it: not a second one then (the reconcile re-adopts the
 * worker once it registered, or queues the task again). */
int supervisor_spare_take(struct supervisor *sv, int64_t id, int64_t claim, struct proc_ref *ret)
{
	struct spare *sp = &sv->spare;
	if (!sp->proc.pid)
		return -ENOENT;
	int64_t ids[2] = { id, claim };
	if (fd_pass_send(sp->sock, ids, sizeof(ids), -1) < 0) {
		supervisor_spare_drop(sv);
		return -EPIPE;
	}
	pid_t pid = 0;
	int pidfd = -1;
	int r = spare_reply(sp->sock, &pid, &pidfd);
	if (r < 0) {
		log_warn("task %lld: the standby worker (pid %d) did not say which process runs the task (%s); "
			 "stopping it", (long long)id, (int)sp->proc.pid, strerror(-r));
		kill(sp->proc.pid, SIGKILL); /* our unreaped child: the pid is still its */
		supervisor_spare_drop(sv);
		return -EINPROGRESS;
	}
	if (pid == sp->proc.pid) {
		/* It became the task's worker itself. */
		if (pidfd >= 0)
			close(pidfd);
		close(sp->sock);
		*ret = sp->proc;
		*sp = (struct spare){ .proc = PROC_REF_NONE };
		return 0;
	}
	if (pidfd < 0)
		pidfd = pidfd_open_pid(pid); /* our child, unreaped: still that process */
	if (pidfd < 0) {
		/* Cannot happen short of running out of descriptors. */
		log_error("task %lld: no pidfd for its worker (pid %d): %s; stopping it", (long long)id, (int)pid,
			  strerror(-pidfd));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -EINPROGRESS;
	}
	*ret = proc_ref_of_child(pid, pidfd);
	return 0;
}
