/* test-bind-source.c — common/bind_source.c: a bind source is checked
 * without following symlinks and against the identity boxd recorded, and
 * what a process really has mounted is compared with it (issue 10,
 * finding 1). The mount test needs root (a private mount namespace);
 * skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/bind_source.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/boxd-test-bind-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(const char *rel, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, rel);
}

static struct fs_id id_of(const char *rel)
{
	char p[PATH_MAX];
	path_of(rel, p);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return (struct fs_id){ .dev = st.st_dev, .ino = st.st_ino };
}

static int check(const char *rel, const struct fs_id *expect, struct fs_id *ret, char *err)
{
	char p[PATH_MAX];
	path_of(rel, p);
	const char *roots[] = { dir, NULL };
	struct bind_source b = { .path = p, .what = "the data dir of app t", .expect = expect };
	return bind_source_check(roots, &b, ret, err, 1024);
}

static void test_check(void **state)
{
	(void)state;
	char p[PATH_MAX], q[PATH_MAX], err[1024];
	path_of("apps", p);
	assert_int_equal(mkdir(p, 0755), 0);
	path_of("apps/esc", p);
	assert_int_equal(mkdir(p, 0755), 0);
	path_of("apps/other", p);
	assert_int_equal(mkdir(p, 0755), 0);
	path_of("hostetc", p);
	assert_int_equal(mkdir(p, 0755), 0);
	struct fs_id esc = id_of("apps/esc"), got;
	/* As recorded: fine, and the identity is handed back. */
	assert_int_equal(check("apps/esc", &esc, &got, err), 0);
	assert_true(got.ino == esc.ino && got.dev == esc.dev);
	assert_int_equal(check("apps/esc", NULL, &got, err), 0);
	/* The sftp user's move: the dir renamed away, a symlink in its place. */
	path_of("apps/esc", p);
	path_of("apps/esc.old", q);
	assert_int_equal(rename(p, q), 0);
	path_of("hostetc", q);
	assert_int_equal(symlink(q, p), 0);
	assert_int_equal(check("apps/esc", &esc, &got, err), -ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(check("apps/esc", NULL, &got, err), -ELOOP); /* even without a record */
	/* Another app's dir renamed into its place: a directory, but not
	 * the one boxd made there. */
	assert_int_equal(unlink(p), 0);
	path_of("apps/other", q);
	assert_int_equal(rename(q, p), 0);
	assert_int_equal(check("apps/esc", &esc, &got, err), -EXDEV);
	assert_non_null(strstr(err, "replaced"));
	/* A symlink higher up, a file, nothing. */
	path_of("apps2", p);
	path_of("apps", q);
	assert_int_equal(symlink(q, p), 0);
	assert_int_equal(check("apps2/esc.old", NULL, &got, err), -ELOOP);
	path_of("file", p);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	close(fd);
	assert_int_equal(check("file", NULL, &got, err), -ENOTDIR);
	assert_int_equal(check("missing", NULL, &got, err), -ENOENT);
}

/* A process with `src` bound at `target` in its own mount namespace,
 * standing in for a container: waits until killed. */
static pid_t container_with(const char *src, const char *target, int ready_fd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(src, target, NULL, MS_BIND, NULL) < 0)
		_exit(1);
	(void)!write(ready_fd, "x", 1);
	for (;;)
		pause();
}

static void test_check_mounted(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	char data[PATH_MAX], other[PATH_MAX], target[PATH_MAX], err[1024];
	path_of("data", data);
	path_of("other", other);
	path_of("target", target);
	assert_int_equal(mkdir(data, 0755), 0);
	assert_int_equal(mkdir(other, 0755), 0);
	assert_int_equal(mkdir(target, 0755), 0);
	struct fs_id data_id = id_of("data"), other_id = id_of("other");
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = container_with(data, target, pfd[1]);
	close(pfd[1]);
	char c;
	bool ready = read(pfd[0], &c, 1) == 1;
	close(pfd[0]);
	int ok = ready ? bind_source_check_mounted(pid, target, &data_id, "the data dir", err, sizeof(err)) : -1;
	int swapped = ready ? bind_source_check_mounted(pid, target, &other_id, "the other dir", err, sizeof(err)) : -1;
	/* A worker that is not root ([tasks] user) may not look inside: it
	 * is told so (-EACCES), to check the host path instead. */
	int as_nobody = -1;
	pid_t w = ready ? fork() : -1;
	if (w == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		_exit(bind_source_check_mounted(pid, target, &data_id, "x", err, sizeof(err)) == -EACCES ? 0 : 1);
	}
	if (w > 0) {
		int status;
		waitpid(w, &status, 0);
		as_nobody = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (!ready)
		skip(); /* no mount namespaces here */
	assert_int_equal(ok, 0);
	assert_int_equal(swapped, -EXDEV);
	assert_int_equal(as_nobody, 0);
	assert_non_null(strstr(err, "another directory"));
	/* In our own namespace nothing is mounted at target: its own dir. */
	assert_int_equal(bind_source_check_mounted(getpid(), target, &data_id, "x", err, sizeof(err)), -EXDEV);
	/* A process that is gone. */
	assert_int_equal(bind_source_check_mounted(pid, target, &data_id, "x", err, sizeof(err)), -ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_mounted, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
