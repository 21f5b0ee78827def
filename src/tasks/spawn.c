/* spawn.c — see spawn.h. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int pidfd_open_pid(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	/* pidfds are close-on-exec by definition; say so for the reader. */
	return fd;
}

static void child_fail(int fd, int err)
{
	/* Only async-signal-safe calls from here on. */
	(void)!write(fd, &err, sizeof(err));
	_exit(127);
}

int spawn_process(const struct spawn_opts *opts, pid_t *ret_pid, int *ret_pidfd)
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
		if (setsid() < 0)
			child_fail(pipefd[1], errno);
		int out = opts->output_fd >= 0 ? opts->output_fd : devnull;
		/* dup2 clears FD_CLOEXEC on the new descriptor. */
		if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
			child_fail(pipefd[1], errno);
		if (opts->pass_fd >= 0 && dup2(opts->pass_fd, 3) < 0)
			child_fail(pipefd[1], errno);
		execv(opts->path, opts->argv);
		child_fail(pipefd[1], errno);
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
	*ret_pid = pid;
	*ret_pidfd = pidfd;
	return 0;
}
