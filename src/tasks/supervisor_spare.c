/* supervisor_spare.c — the standby worker: one `boxd task standby`
 * process started ahead of the next task, so exec and library loading are
 * paid while the current task runs (worker.h). The supervisor hands it a
 * task and its log over a socketpair; without one, tasks start by exec.
 * Owned by the loop thread, like the rest of the supervisor. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

/* Hand task `id` and its log to the standby worker. Returns 0 with the
 * worker's pid and pidfd (now the task's), or negative errno (no spare, or
 * it died: the caller starts the task by exec). */
int supervisor_spare_take(struct supervisor *sv, int64_t id, int64_t claim, int logfd, struct proc_ref *ret)
{
	struct spare *sp = &sv->spare;
	if (!sp->proc.pid)
		return -ENOENT;
	char control[CMSG_SPACE(sizeof(int))];
	memset(control, 0, sizeof(control));
	int64_t ids[2] = { id, claim };
	struct iovec iov = { .iov_base = ids, .iov_len = sizeof(ids) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &logfd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sp->sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(ids)) {
		supervisor_spare_drop(sv);
		return -EPIPE;
	}
	close(sp->sock);
	*ret = sp->proc;
	*sp = (struct spare){ .proc = PROC_REF_NONE };
	return 0;
}
