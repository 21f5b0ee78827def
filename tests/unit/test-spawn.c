/* test-spawn.c — spawn_process() (src/tasks/spawn.h) with real processes:
 * the descriptors the child gets when the caller's own descriptors sit on
 * the numbers the child needs (0..3). A daemon started with a closed stdin,
 * or one whose socket for a standby worker happens to be fd 3, hits these.
 *
 * The child is /bin/sh with a fixed script (no user string reaches it).
 * Each test moves the descriptors it needs into place and puts back what it
 * found, so the tests stay independent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tasks/spawn.h"

/* A copy of `fd` out of the way (or -1 when fd is not open), to put back. */
static int save_fd(int fd)
{
	if (fcntl(fd, F_GETFD) < 0)
		return -1;
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	assert_true(copy >= 0);
	return copy;
}

static void restore_fd(int saved, int fd)
{
	if (saved >= 0) {
		assert_int_equal(dup2(saved, fd), fd);
		close(saved);
	} else {
		close(fd);
	}
}

/* A socket pair away from the low numbers the tests rearrange. */
static void high_socketpair(int sp[2])
{
	int low[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, low), 0);
	for (int i = 0; i < 2; i++) {
		sp[i] = fcntl(low[i], F_DUPFD_CLOEXEC, 50);
		assert_true(sp[i] >= 50);
		close(low[i]);
	}
}

static int wait_exit(pid_t pid, int pidfd)
{
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(pidfd);
	if (!WIFEXITED(status))
		fail_msg("child did not exit: status 0x%x", status);
	return WEXITSTATUS(status);
}

/* Everything the peer wrote until it closed its end. */
static void read_all(int fd, char *buf, size_t size)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
}

/* The descriptor to pass already is fd 3 (close-on-exec, as every
 * descriptor of boxd): dup2(3, 3) is a no-op that keeps FD_CLOEXEC, and
 * the worker started without its fd 3. */
static void test_pass_fd_already_3(void **state)
{
	(void)state;
	int saved3 = save_fd(3);
	int sp[2];
	high_socketpair(sp);
	assert_int_equal(dup3(sp[1], 3, O_CLOEXEC), 3);
	close(sp[1]);

	char *const argv[] = { "sh", "-c", "echo ok >&3", NULL };
	struct spawn_opts so = { .path = "/bin/sh", .argv = argv, .output_fd = -1, .pass_fd = 3 };
	struct proc_ref proc;
	assert_int_equal(spawn_process(&so, &proc), 0);
	restore_fd(saved3, 3); /* our copy of the child's end */
	char buf[64];
	read_all(sp[0], buf, sizeof(buf));
	close(sp[0]);
	assert_int_equal(wait_exit(proc.pid, proc.pidfd), 0);
	assert_string_equal(buf, "ok\n");
}

/* With stdin closed, the exec-error pipe is {0, 3}: its write end is fd 3,
 * where the passed descriptor goes. The exec error must still come back
 * (not be written into the passed socket, nor lost so that a failed exec
 * looks like a start). */
static void test_exec_error_pipe_on_3(void **state)
{
	(void)state;
	int saved0 = save_fd(0), saved3 = save_fd(3), saved4 = save_fd(4);
	close(0);
	close(3);
	close(4);
	int sp[2];
	high_socketpair(sp);
	int pass = sp[1], peer = sp[0];
	/* 0, 3 and 4 are free now: pipe2() in spawn_process() takes 0 and 3. */
	char *const argv[] = { "missing", NULL };
	struct spawn_opts so = { .path = "/nonexistent/boxd-test-missing", .argv = argv, .output_fd = -1,
				 .pass_fd = pass };
	struct proc_ref proc = PROC_REF_NONE;
	int r = spawn_process(&so, &proc);
	restore_fd(saved0, 0);
	restore_fd(saved3, 3);
	restore_fd(saved4, 4);
	close(pass);
	if (r == 0) {
		waitpid(proc.pid, NULL, 0);
		proc_ref_close(&proc);
	}
	assert_int_equal(r, -ENOENT);
	/* Nothing of the child's error went into the passed socket. */
	char buf[64];
	read_all(peer, buf, sizeof(buf));
	close(peer);
	assert_string_equal(buf, "");
}

/* The output descriptor already is fd 1 and close-on-exec (a daemon run
 * with its stdout closed, whose log file then opened at 1): it must stay
 * open in the child as its stdout and stderr. */
static void test_output_fd_already_1(void **state)
{
	(void)state;
	int saved1 = save_fd(1);
	int sp[2];
	high_socketpair(sp);
	assert_int_equal(dup3(sp[1], 1, O_CLOEXEC), 1);
	close(sp[1]);
	char *const argv[] = { "sh", "-c", "echo out; echo err >&2", NULL };
	struct spawn_opts so = { .path = "/bin/sh", .argv = argv, .output_fd = 1, .pass_fd = -1 };
	struct proc_ref proc;
	int r = spawn_process(&so, &proc);
	restore_fd(saved1, 1);
	assert_int_equal(r, 0);
	char buf[128];
	read_all(sp[0], buf, sizeof(buf));
	close(sp[0]);
	assert_int_equal(wait_exit(proc.pid, proc.pidfd), 0);
	assert_string_equal(buf, "out\nerr\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_fd_already_3),
		cmocka_unit_test(test_exec_error_pipe_on_3),
		cmocka_unit_test(test_output_fd_already_1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
