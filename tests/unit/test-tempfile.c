/* test-tempfile.c — common/tempfile.h in a fresh mkdtemp directory: a write
 * replaces the target whole, with its mode, and leaves no temp file; a
 * failed write changes nothing; the sweep removes the temp files of dead
 * writers only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/tempfile.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/boxd-test-tempfile-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir); /* our own mkdtemp path */
	return system(cmd) == 0 ? 0 : -1;
}

static void touch(const char *name)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static bool exists(const char *name)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static size_t entries(void)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	assert_int_equal(fscanf(f, "%zu", &n), 1);
	pclose(f);
	return n;
}

static void test_write_replaces_whole(void **state)
{
	(void)state;
	char path[512], buf[64] = "";
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(tempfile_write(path, "first version\n", 14, 0640), 0);
	assert_int_equal(tempfile_write(path, "second\n", 7, 0600), 0);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, "second\n");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600 & ~umask(022));
	assert_int_equal(entries(), 1); /* no temp file left */
}

static void test_failed_write_changes_nothing(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/missing/state", dir);
	assert_int_equal(tempfile_write(path, "x", 1, 0600), -ENOENT);
	/* The target is a directory: the rename fails, the temp file goes. */
	snprintf(path, sizeof(path), "%s/adir", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tempfile_write(path, "x", 1, 0600), -EISDIR);
	assert_int_equal(entries(), 1);
}

/* tempfile_commit(): a temp file the caller wrote (through its fd, or
 * closed already) replaces the target; a failed rename changes nothing and
 * leaves the temp file to the caller. */
static void test_commit_streamed(void **state)
{
	(void)state;
	char tmp[512], path[512], err[256] = "", buf[64] = "";
	snprintf(tmp, sizeof(tmp), "%s/.out.tmp-1", dir);
	snprintf(path, sizeof(path), "%s/out", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "streamed\n", 9), 9);
	assert_int_equal(tempfile_commit(fd, tmp, path, err, sizeof(err)), 0);
	close(fd);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
	fclose(f);
	assert_string_equal(buf, "streamed\n");
	assert_false(exists(".out.tmp-1"));
	/* fd < 0: the file is opened to be fsynced. */
	touch(".out.tmp-1");
	assert_int_equal(tempfile_commit(-1, tmp, path, err, sizeof(err)), 0);
	assert_int_equal(entries(), 1);
	/* The target is a directory: nothing changes, the temp file stays. */
	touch(".out.tmp-1");
	snprintf(path, sizeof(path), "%s/adir", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tempfile_commit(-1, tmp, path, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "cannot rename"));
	assert_true(exists(".out.tmp-1"));
	/* No temp file: the fsync step says so. */
	snprintf(tmp, sizeof(tmp), "%s/none", dir);
	assert_int_equal(tempfile_commit(-1, tmp, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot fsync"));
}

static void test_sweep_removes_dead_writers_only(void **state)
{
	(void)state;
	pid_t dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	char dead_tmp[64], live_tmp[64];
	snprintf(dead_tmp, sizeof(dead_tmp), "outcome.tmp-%d", (int)dead);
	snprintf(live_tmp, sizeof(live_tmp), "tokens.tmp-%d", (int)getpid());
	touch(dead_tmp);
	touch(live_tmp);
	touch("a.tmp-x1");   /* not a pid */
	touch(".tmp-1");     /* no target name */
	touch("keep.txt");
	assert_int_equal(tempfile_sweep(dir), 1);
	assert_false(exists(dead_tmp));
	assert_true(exists(live_tmp));
	assert_true(exists("a.tmp-x1"));
	assert_true(exists(".tmp-1"));
	assert_true(exists("keep.txt"));
	assert_int_equal(tempfile_sweep(dir), 0);
	char missing[512];
	snprintf(missing, sizeof(missing), "%s/none", dir);
	assert_int_equal(tempfile_sweep(missing), -ENOENT);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_write_replaces_whole),
		T(test_failed_write_changes_nothing),
		T(test_commit_streamed),
		T(test_sweep_removes_dead_writers_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
