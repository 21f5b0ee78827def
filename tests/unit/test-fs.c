/* test-fs.c — common/fs.c: trees are created, moved and deleted through
 * descriptors, never by resolving a path twice, and never through a
 * symlink put on the way (issue 10, findings 6 and 7).
 *
 * The race test plays the attacker of finding 6 for real: an unprivileged
 * process (uid nobody) owns a directory on the way to a data dir and keeps
 * swapping a component for a symlink to a root-owned directory while the
 * test checks the path (as the uninstall does) and deletes the tree. The
 * root-owned victim must survive every round. Needs root (to become
 * nobody); skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/paths.h"

/* Paths here are short temp dirs; truncation cannot happen. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

struct fx {
	char dir[PATH_MAX];
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/boxd-test-fs-XXXXXX";
	if (!f || !mkdtemp(tmpl) || !realpath(tmpl, f->dir) || chmod(f->dir, 0755) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	int r = system(cmd);
	free(f);
	return r == 0 ? 0 : -1;
}

static void mk(const char *base, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void touch(const char *base, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "x", 1) != 1)
		fail_msg("create %s: %s", p, strerror(errno));
	close(fd);
}

static void link_to(const char *base, const char *rel, const char *target)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	if (symlink(target, p) < 0)
		fail_msg("symlink %s: %s", p, strerror(errno));
}

static bool exists(const char *base, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

static int remove_tree(const char *base, const char *rel, char *err, size_t errlen)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	const char *roots[] = { base, NULL };
	return fs_remove_tree(roots, p, err, errlen);
}

/* Finding 7: a file (the database, say) given as a tree root is refused
 * and stays; so does a symlink (not its target either). */
static void test_remove_tree_root_not_a_dir(void **state)
{
	struct fx *f = *state;
	char err[512] = "";
	touch(f->dir, "boxd.db");
	assert_int_equal(remove_tree(f->dir, "boxd.db", err, sizeof(err)), -ENOTDIR);
	assert_non_null(strstr(err, "not a directory"));
	assert_true(exists(f->dir, "boxd.db"));
	mk(f->dir, "target");
	touch(f->dir, "target/keep");
	link_to(f->dir, "link", "target");
	assert_int_equal(remove_tree(f->dir, "link", err, sizeof(err)), -ENOTDIR);
	assert_true(exists(f->dir, "link"));
	assert_true(exists(f->dir, "target/keep"));
	/* Missing: nothing to do. */
	assert_int_equal(remove_tree(f->dir, "nothing/here", err, sizeof(err)), 0);
	/* A real tree goes, symlinks inside it as links (their targets stay). */
	mk(f->dir, "tree");
	mk(f->dir, "tree/sub");
	touch(f->dir, "tree/sub/file");
	link_to(f->dir, "tree/out", "../target");
	assert_int_equal(remove_tree(f->dir, "tree", err, sizeof(err)), 0);
	assert_false(exists(f->dir, "tree"));
	assert_true(exists(f->dir, "target/keep"));
}

/* Finding 6, without the race: a symlink in the middle of the path is
 * never followed (the old code resolved the path again and deleted the
 * symlink target's tree). */
static void test_remove_tree_symlink_on_the_way(void **state)
{
	struct fx *f = *state;
	char err[512] = "";
	mk(f->dir, "victim");
	mk(f->dir, "victim/data");
	touch(f->dir, "victim/data/precious");
	mk(f->dir, "user");
	link_to(f->dir, "user/app", "../victim");
	assert_int_equal(remove_tree(f->dir, "user/app/data", err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	assert_true(exists(f->dir, "victim/data/precious"));
	/* Absolute targets the same. */
	char abs[PATH_MAX];
	snprintf(abs, sizeof(abs), "%s/victim", f->dir);
	link_to(f->dir, "user/abs", abs);
	assert_int_equal(remove_tree(f->dir, "user/abs/data", err, sizeof(err)), -ELOOP);
	assert_true(exists(f->dir, "victim/data/precious"));
	/* Not normalized: refused before anything is looked at. */
	char bad[PATH_MAX];
	snprintf(bad, sizeof(bad), "%s/user/../victim/data", f->dir);
	const char *roots[] = { f->dir, NULL };
	assert_int_equal(fs_remove_tree(roots, bad, err, sizeof(err)), -EINVAL);
	assert_true(exists(f->dir, "victim/data/precious"));
}

/* The swapper: as nobody, keep the app's data dir in place and swap its
 * parent for a symlink to the victim's parent, over and over. */
static void swapper(const char *user_dir, const char *victim, uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		_exit(3);
	char a[PATH_MAX], data[PATH_MAX], real[PATH_MAX];
	snprintf(a, sizeof(a), "%s/a", user_dir);
	snprintf(data, sizeof(data), "%s/a/data", user_dir);
	snprintf(real, sizeof(real), "%s/a.real", user_dir);
	for (;;) {
		mkdir(a, 0755);
		mkdir(data, 0755);
		if (rename(a, real) < 0)
			continue;
		symlink(victim, a);
		unlink(a);
		rename(real, a);
	}
}

/* Finding 6 with the race, as the audit ran it: check the path (the
 * uninstall's check), then delete it, while nobody swaps. */
static void test_remove_tree_race(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0)
		skip();
	struct passwd *pw = getpwnam("nobody");
	if (!pw)
		skip();
	char victim[PATH_MAX], user_dir[PATH_MAX], path[PATH_MAX], err[512];
	mk(f->dir, "victim");
	mk(f->dir, "victim/data");
	touch(f->dir, "victim/data/precious");
	snprintf(victim, sizeof(victim), "%s/victim", f->dir);
	mk(f->dir, "u");
	snprintf(user_dir, sizeof(user_dir), "%s/u", f->dir);
	assert_int_equal(chown(user_dir, pw->pw_uid, pw->pw_gid), 0);
	snprintf(path, sizeof(path), "%s/u/a/data", f->dir);

	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		swapper(user_dir, victim, pw->pw_uid, pw->pw_gid);

	/* Rounds whose check passed, i.e. in which the delete ran against a
	 * path that looked clean. Bounded by a count and, on a busy machine,
	 * by time (this is not a timing assertion: it only bounds the loop). */
	int checked = 0, removed = 0;
	bool lost = false;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const char *roots[] = { f->dir, NULL };
	for (int i = 0; i < 1000000 && checked < 20000; i++) {
		if (path_check(path, NULL, true, err, sizeof(err)) == 0) {
			checked++;
			if (fs_remove_tree(roots, path, err, sizeof(err)) == 0)
				removed++;
		}
		if (!exists(f->dir, "victim/data/precious")) {
			lost = true;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5)
			break;
	}
	kill(child, SIGKILL);
	int status;
	waitpid(child, &status, 0);
	print_message("# %d rounds checked clean, %d deletes succeeded\n", checked, removed);
	if (lost)
		fail_msg("the root-owned victim/data/precious was deleted through the swapped-in symlink "
			 "(after %d rounds)", checked);
	assert_true(checked > 100); /* the race really ran */
	assert_true(removed > 0);   /* and the legitimate deletes happened */
}

static void test_mkdir_nofollow(void **state)
{
	struct fx *f = *state;
	char err[512] = "", p[PATH_MAX];
	const char *roots[] = { f->dir, NULL };
	struct fs_id id = { 0 };
	snprintf(p, sizeof(p), "%s/new/deeper/data", f->dir);
	assert_int_equal(fs_mkdir_nofollow(roots, p, 0755, &id, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(id.dev == (uint64_t)st.st_dev && id.ino == (uint64_t)st.st_ino);
	/* Again: fine, same dir. */
	struct fs_id again;
	assert_int_equal(fs_mkdir_nofollow(roots, p, 0755, &again, err, sizeof(err)), 0);
	assert_true(again.ino == id.ino);
	/* Through a symlink: refused, nothing created at the target. */
	mk(f->dir, "elsewhere");
	link_to(f->dir, "via", "elsewhere");
	snprintf(p, sizeof(p), "%s/via/data", f->dir);
	assert_int_equal(fs_mkdir_nofollow(roots, p, 0755, NULL, err, sizeof(err)), -ELOOP);
	assert_false(exists(f->dir, "elsewhere/data"));
	/* The trusted root itself may be reached through a symlink (the
	 * operator's choice); below it, no. */
	char root_link[PATH_MAX];
	snprintf(root_link, sizeof(root_link), "%s/rootlink", f->dir);
	link_to(f->dir, "rootlink", "elsewhere");
	const char *linked_roots[] = { root_link, NULL };
	snprintf(p, sizeof(p), "%s/rootlink/app", f->dir);
	assert_int_equal(fs_mkdir_nofollow(linked_roots, p, 0755, NULL, err, sizeof(err)), 0);
	assert_true(exists(f->dir, "elsewhere/app"));
}

/* Moves: same filesystem (rename) and across filesystems (copy), never
 * through a symlink, and only onto a missing or empty target. */
static void test_move_tree(void **state)
{
	struct fx *f = *state;
	char err[512] = "", src[PATH_MAX], dst[PATH_MAX];
	const char *roots[] = { f->dir, NULL };
	mk(f->dir, "src");
	mk(f->dir, "src/sub");
	touch(f->dir, "src/sub/file");
	link_to(f->dir, "src/link", "sub/file");
	snprintf(src, sizeof(src), "%s/src", f->dir);
	snprintf(dst, sizeof(dst), "%s/moved/here", f->dir);
	struct fs_id id;
	assert_int_equal(fs_move_tree(roots, src, dst, &id, err, sizeof(err)), 0);
	assert_false(exists(f->dir, "src"));
	assert_true(exists(f->dir, "moved/here/sub/file"));
	assert_true(exists(f->dir, "moved/here/link"));
	/* Onto something that holds data: refused, nothing moved. */
	mk(f->dir, "full");
	touch(f->dir, "full/x");
	snprintf(dst, sizeof(dst), "%s/full", f->dir);
	snprintf(src, sizeof(src), "%s/moved/here", f->dir);
	assert_int_equal(fs_move_tree(roots, src, dst, NULL, err, sizeof(err)), -EEXIST);
	assert_true(exists(f->dir, "moved/here/sub/file"));
	/* Through a symlink, on either side: refused. */
	mk(f->dir, "victim");
	link_to(f->dir, "trap", "victim");
	snprintf(dst, sizeof(dst), "%s/trap/data", f->dir);
	assert_int_equal(fs_move_tree(roots, src, dst, NULL, err, sizeof(err)), -ELOOP);
	assert_false(exists(f->dir, "victim/data"));
	/* Across filesystems (when /dev/shm is another one): copied, then
	 * the source removed. */
	struct stat a, b;
	if (stat(f->dir, &a) < 0 || stat("/dev/shm", &b) < 0 || a.st_dev == b.st_dev)
		return;
	char other[] = "/dev/shm/boxd-test-fs-XXXXXX";
	assert_non_null(mkdtemp(other));
	snprintf(dst, sizeof(dst), "%s/data", other);
	const char *both[] = { f->dir, other, NULL };
	int r = fs_move_tree(both, src, dst, &id, err, sizeof(err));
	char check[PATH_MAX + 32];
	snprintf(check, sizeof(check), "%s/sub/file", dst);
	bool copied = access(check, F_OK) == 0;
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", other);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(r, 0);
	assert_true(copied);
	assert_false(exists(f->dir, "moved/here"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_remove_tree_root_not_a_dir, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_symlink_on_the_way, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_race, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_nofollow, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_move_tree, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
