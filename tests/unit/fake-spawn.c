/* fake-spawn.c — see fake-spawn.h. A FAKE spawner: the test seam of the
 * supervisor, never used by boxd. */
#include "fake-spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fd_pass.h"
#include "tasks/worker.h"

struct fake_spawned fake_log[FAKE_MAX];
int fake_n;
struct fake_shared *fake;
int fake_fail_next;

int fake_spawn_reset(void)
{
	if (!fake) {
		fake = mmap(NULL, sizeof(*fake), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (fake == MAP_FAILED) {
			fake = NULL;
			return -errno;
		}
	}
	memset(fake, 0, sizeof(*fake));
	memset(fake_log, 0, sizeof(fake_log));
	fake_n = 0;
	fake_fail_next = 0;
	return 0;
}

void fake_spawn_kill_all(void)
{
	for (int i = 0; i < fake_n; i++) {
		kill(fake_log[i].pid, SIGKILL);
		waitpid(fake_log[i].pid, NULL, 0); /* ECHILD when the supervisor reaped it */
	}
	/* Stand-ins cloned by standbys: our children too. */
	for (int i = 0; fake && i < fake->n_taken && i < FAKE_MAX; i++) {
		if (!fake->taken[i].pid)
			continue;
		kill(fake->taken[i].pid, SIGKILL);
		waitpid(fake->taken[i].pid, NULL, 0);
	}
}

/* ---- the stand-in (child side; async-signal-safe from the handlers on) -- */

static void on_usr1(int sig) { (void)sig; _exit(0); }
static void on_usr2(int sig) { (void)sig; _exit(WORKER_EXIT_UNRECORDED_SUCCEEDED); }
static void on_term(int sig)
{
	(void)sig;
	if (!fake->ignore_term)
		_exit(WORKER_EXIT_STOPPED);
}

/* The answer of `boxd task standby` (worker.h): the pid of the task's
 * process, with its pidfd when that is not the standby itself. */
static void standby_answer(int sock, pid_t pid, int pidfd)
{
	int64_t v = pid;
	(void)fd_pass_send(sock, &v, sizeof(v), pidfd);
}

/* Returns in the process that is to stand in for the task (the standby
 * itself, or the sibling it cloned); _exit(0) on EOF. */
static void standby_wait(int sock)
{
	for (;;) {
		int64_t ids[2];
		int logfd = -1;
		if (fd_pass_recv(sock, ids, sizeof(ids), &logfd, 0) < 0)
			_exit(0); /* EOF: the supervisor dropped its standby */
		if (logfd >= 0)
			close(logfd);
		int slot = __atomic_fetch_add(&fake->n_taken, 1, __ATOMIC_SEQ_CST);
		if (slot < FAKE_MAX) {
			fake->taken[slot].task_id = ids[0];
			fake->taken[slot].claim = ids[1];
			fake->taken[slot].pid = getpid();
		}
		if (fake->standby_mute)
			continue;
		if (!fake->standby_clones) {
			standby_answer(sock, getpid(), -1);
			close(sock);
			return;
		}
		int pidfd = -1;
		struct clone_args ca = { .flags = CLONE_PARENT | CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd };
		long pid = syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid == 0) {
			close(sock);
			setsid();
			if (slot < FAKE_MAX)
				fake->taken[slot].pid = getpid();
			return;
		}
		if (slot < FAKE_MAX && pid > 0)
			fake->taken[slot].pid = (pid_t)pid;
		standby_answer(sock, pid > 0 ? (pid_t)pid : 0, pidfd);
		if (pidfd >= 0)
			close(pidfd);
	}
}

/* Keep 0-2 and pass_fd, as exec would (boxd's fds are close-on-exec): a
 * copy of the supervisor's end of the standby socket kept here would hide
 * its EOF. */
static void close_inherited(int pass_fd)
{
	if (pass_fd < 0) {
		syscall(SYS_close_range, 3U, ~0U, 0U);
		return;
	}
	if (pass_fd > 3)
		syscall(SYS_close_range, 3U, (unsigned)pass_fd - 1, 0U);
	syscall(SYS_close_range, (unsigned)pass_fd + 1, ~0U, 0U);
}

/* Like the real spawn, fake_spawn() returns only once the stand-in leads
 * its own session with its handlers set (ready_fd): a stop sent at once
 * reaches it (killpg needs the group). */
static void stand_in(int pass_fd, int ready_fd)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	setsid();
	(void)!write(ready_fd, "r", 1);
	close_inherited(pass_fd); /* ready_fd too */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* handlers are in place now */
	if (pass_fd >= 0)
		standby_wait(pass_fd);
	for (;;)
		pause();
}

int fake_spawn(const struct spawn_opts *opts, struct proc_ref *ret)
{
	if (fake_fail_next) {
		int r = fake_fail_next;
		fake_fail_next = 0;
		return r;
	}
	if (fake_n >= FAKE_MAX)
		return -EMFILE;
	struct fake_spawned *e = &fake_log[fake_n];
	size_t off = 0;
	for (int i = 0; opts->argv[i]; i++)
		off += (size_t)snprintf(e->argv + off, off < sizeof(e->argv) ? sizeof(e->argv) - off : 0, "%s%s",
					i ? " " : "", opts->argv[i]);
	e->standby = opts->pass_fd >= 0;

	/* Signals stay blocked until the stand-in's handlers are set, so a
	 * signal sent right away is not lost or fatal. */
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		stand_in(opts->pass_fd, ready[1]);
	int fork_errno = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(ready[1]);
	if (pid < 0) {
		close(ready[0]);
		return -fork_errno;
	}
	char c;
	ssize_t n;
	do
		n = read(ready[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(ready[0]);
	int pidfd = pidfd_open_pid(pid);
	if (pidfd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return pidfd;
	}
	e->pid = pid;
	fake_n++;
	*ret = proc_ref_of_child(pid, pidfd);
	return 0;
}

int fake_count_runs(void)
{
	int n = 0;
	for (int i = 0; i < fake_n; i++)
		n += !fake_log[i].standby;
	return n;
}

pid_t fake_last_standby(void)
{
	for (int i = fake_n - 1; i >= 0; i--)
		if (fake_log[i].standby)
			return fake_log[i].pid;
	return 0;
}
