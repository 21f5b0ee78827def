/* spawn.c — see spawn.h. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void child_fail(int fd, int err)
{
	/* Only async-signal-safe calls from here on. */
	(void)!write(fd, &err, sizeof(err));
	_exit(127);
}

/* In the child: stdin from /dev/null, stdout and stderr to the output, the
 * passed descriptor at 3. Every descriptor of boxd is close-on-exec, and
 * any of them may already sit on 0..3 (a daemon started with stdin
 * closed gets its exec-error pipe at 0 and 3). So, as libuv's
 * uv__process_child_init() does:
 *   - the exec-error pipe moves above 3 first, or a dup2 onto its number
 *     would close it (and an exec failure would go into the passed socket
 *     or be lost, and look like a start);
 *   - a source below its target moves above the targets first, since an
 *     earlier dup2 may overwrite it;
 *   - a source already on its target (fd == use_fd) gets FD_CLOEXEC
 *     cleared: dup2(3, 3) does nothing and would leave it close-on-exec.
 * Only async-signal-safe calls. */
static void set_child_fds(const struct spawn_opts *opts, int devnull, int *err_fd)
{
	if (*err_fd <= 3) {
		int moved = fcntl(*err_fd, F_DUPFD_CLOEXEC, 4);
		if (moved < 0)
			child_fail(*err_fd, errno);
		*err_fd = moved;
	}
	int out = opts->output_fd >= 0 ? opts->output_fd : devnull;
	int src[4] = { devnull, out, out, opts->pass_fd };
	int n = opts->pass_fd >= 0 ? 4 : 3;
	for (int fd = 0; fd < n; fd++) {
		if (src[fd] >= fd)
			continue;
		src[fd] = fcntl(src[fd], F_DUPFD_CLOEXEC, n);
		if (src[fd] < 0)
			child_fail(*err_fd, errno);
	}
	for (int fd = 0; fd < n; fd++) {
		if (src[fd] == fd) {
			int flags = fcntl(fd, F_GETFD);
			if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
				child_fail(*err_fd, errno);
		} else if (dup2(src[fd], fd) < 0) { /* dup2 clears FD_CLOEXEC on fd */
			child_fail(*err_fd, errno);
		}
	}
}

int spawn_process(const struct spawn_opts *opts, struct proc_ref *ret)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		int e = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return e;
	}

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				sigaction(sig, &dfl, NULL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int err_fd = pipefd[1];
		if (setsid() < 0)
			child_fail(err_fd, errno);
		set_child_fds(opts, devnull, &err_fd);
		execv(opts->path, opts->argv);
		child_fail(err_fd, errno);
	}
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pipefd[1]);
	close(devnull);
	if (pid < 0) {
		close(pipefd[0]);
		return -fork_errno;
	}

	int child_err = 0;
	ssize_t n;
	do
		n = read(pipefd[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n > 0) {
		waitpid(pid, NULL, 0);
		return -(child_err ? child_err : EIO);
	}

	int pidfd = pidfd_open_pid(pid);
	if (pidfd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return pidfd;
	}
	*ret = proc_ref_of_child(pid, pidfd);
	return 0;
}
