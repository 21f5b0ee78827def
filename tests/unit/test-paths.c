/* test-paths.c — common/paths.c: what a root, a custom data dir or a volume
 * host path may be. Normalization (no '..', '.', '//', trailing '/'),
 * absolute only, never '/' or a system dir, no symlink in any existing
 * component, the state dir, and where volumes outside the volumes root may
 * lie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"

#define STATE "/var/lib/boxd"

static int check(const char *path)
{
	char err[512] = "";
	return path_check(path, STATE, false, err, sizeof(err));
}

/* path_check fails and its message contains `what`. */
static void refused(const char *path, const char *what)
{
	char err[512] = "";
	int r = path_check(path, STATE, false, err, sizeof(err));
	if (r != -EINVAL)
		fail_msg("%s: expected -EINVAL, got %d", path ? path : "(null)", r);
	if (what && !strstr(err, what))
		fail_msg("%s: message '%s' does not mention '%s'", path ? path : "(null)", err, what);
}

static void test_normalized(void **state)
{
	(void)state;
	refused(NULL, "empty");
	refused("", "empty");
	refused("srv/data", "absolute");
	refused("./srv", "absolute");
	refused("/", "root directory");
	refused("/srv/data/../../etc", "normalized");
	refused("/srv/..", "normalized");
	refused("/srv/data/..", "normalized");
	refused("/srv/./data", "normalized");
	refused("/srv/data/.", "normalized");
	refused("/srv//data", "normalized");
	refused("//srv/data", "normalized");
	refused("/srv/data/", "normalized");
	refused("/srv/data//", "normalized");
	/* Names that merely contain dots are fine. */
	assert_int_equal(check("/srv/data/..hidden"), 0);
	assert_int_equal(check("/srv/data/a..b"), 0);
	assert_int_equal(check("/srv/data/.config"), 0);
	assert_int_equal(check("/srv/boxd-test-does-not-exist/app"), 0);
	/* Too long. */
	char *lng = malloc(5000);
	memset(lng, 'a', 4999);
	lng[0] = '/';
	lng[4999] = '\0';
	refused(lng, "too long");
	free(lng);
}

static void test_system_dirs(void **state)
{
	(void)state;
	static const char *const sys[] = {
		"/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
		"/run", "/var/run", "/var/lib/dpkg", "/var/lib/apt", "/var/log", "/root", "/tmp/.X11-unix",
	};
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		char below[256];
		refused(sys[i], "not allowed");
		snprintf(below, sizeof(below), "%s/boxd-data", sys[i]);
		refused(below, "not allowed");
		snprintf(below, sizeof(below), "%s/a/b/c", sys[i]);
		refused(below, "not allowed");
	}
	/* Top-level dirs themselves, but not what is below them. */
	static const char *const top[] = { "/var", "/var/lib", "/home", "/mnt", "/media", "/srv", "/opt" };
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
		refused(top[i], "top-level");
		char below[256];
		snprintf(below, sizeof(below), "%s/boxd-test-x", top[i]);
		assert_int_equal(check(below), 0);
	}
	/* A name that starts like a system dir is not one. */
	assert_int_equal(check("/etcetera/x"), 0);
	assert_int_equal(check("/usrdata"), 0);
	assert_int_equal(check("/devices/x"), 0);
}

static void test_state_dir(void **state)
{
	(void)state;
	char err[512];
	refused(STATE, "state dir");
	refused("/var/lib/boxd/appsdata/x", "inside boxd's state dir");
	/* A parent of the state dir would contain it. */
	assert_int_equal(path_check("/data", "/data/boxd", false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "state dir"));
	/* Inside is allowed where asked for (the default roots live there). */
	assert_int_equal(path_check("/var/lib/boxd/appsdata/x", STATE, true, err, sizeof(err)), 0);
	assert_int_equal(path_check(STATE, STATE, true, err, sizeof(err)), -EINVAL);
	/* A sibling that shares a prefix is not inside. */
	assert_int_equal(path_check("/var/lib/boxd2/x", STATE, false, err, sizeof(err)), 0);
	/* Without a state dir only the other rules apply. */
	assert_int_equal(path_check("/var/lib/boxd/x", NULL, false, err, sizeof(err)), 0);
	assert_int_equal(path_check_app_data("/var/lib/boxd/appsdata/wiki", STATE, err, sizeof(err)), 0);
	assert_int_equal(path_check_app_data("/srv/wiki", STATE, err, sizeof(err)), 0);
	assert_int_equal(path_check_app_data("/etc/wiki", STATE, err, sizeof(err)), -EINVAL);
	assert_int_equal(path_check_app_data("/srv/../etc", STATE, err, sizeof(err)), -EINVAL);
}

static void test_is_under(void **state)
{
	(void)state;
	assert_true(path_is_under("/a/b", "/a"));
	assert_true(path_is_under("/a", "/a"));
	assert_true(path_is_under("/a/b/c", "/a/b"));
	assert_false(path_is_under("/ab", "/a"));
	assert_false(path_is_under("/a", "/a/b"));
	assert_false(path_is_under("/b/a", "/a"));
	assert_true(path_is_under("/anything", "/"));
}

/* A temp dir with symlinks in it; its real path (TMPDIR may be a link). */
struct fx {
	char dir[PATH_MAX];
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/boxd-test-paths-XXXXXX";
	if (!f || !mkdtemp(tmpl) || !realpath(tmpl, f->dir)) {
		free(f);
		return -1;
	}
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/real", f->dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/real/sub", f->dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/link", f->dir);
	if (symlink("real", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/escape", f->dir);
	if (symlink("/etc", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/real/file", f->dir);
	FILE *fp = fopen(p, "we");
	if (!fp)
		return -1;
	fclose(fp);
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

static void test_symlinks(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/real/sub", f->dir);
	assert_int_equal(check(p), 0);
	snprintf(p, sizeof(p), "%s/real/not-yet/deeper", f->dir); /* a missing tail is fine */
	assert_int_equal(check(p), 0);
	snprintf(p, sizeof(p), "%s/link", f->dir); /* the last component */
	refused(p, "symbolic link");
	snprintf(p, sizeof(p), "%s/link/sub", f->dir); /* a middle component */
	refused(p, "symbolic link");
	snprintf(p, sizeof(p), "%s/link/not-yet", f->dir);
	refused(p, "symbolic link");
	snprintf(p, sizeof(p), "%s/escape/passwd-dir", f->dir); /* points at /etc */
	refused(p, "symbolic link");
	snprintf(p, sizeof(p), "%s/real/file/below", f->dir); /* a file as a directory */
	refused(p, "not a directory");
	char err[512];
	snprintf(p, sizeof(p), "%s/escape/x", f->dir);
	assert_int_equal(path_check_volume(p, "/var/lib/boxd/volumes", STATE, err, sizeof(err)), -EINVAL);
}

static void test_volumes(void **state)
{
	(void)state;
	char err[512];
	const char *root = "/var/lib/boxd/volumes";
	/* Under the volumes root (inside the state dir): allowed. */
	assert_int_equal(path_check_volume("/var/lib/boxd/volumes/media", root, STATE, err, sizeof(err)), 0);
	assert_int_equal(path_check_volume("/var/lib/boxd/volumes/a/b", root, STATE, err, sizeof(err)), 0);
	/* The root itself is not a volume. */
	assert_int_equal(path_check_volume(root, root, STATE, err, sizeof(err)), -EINVAL);
	/* Outside the root: only under /mnt, /media, /srv, /opt. */
	static const char *const ok[] = { "/mnt/nas", "/media/usb1", "/srv/share", "/opt/data/x" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (path_check_volume(ok[i], root, STATE, err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", ok[i], err);
	static const char *const bad[] = { "/home/alice/share", "/data/share", "/tmp/share", "/var/share",
					   "/mntx/share", "/srv2/share", "/var/lib/boxd/other" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (path_check_volume(bad[i], root, STATE, err, sizeof(err)) != -EINVAL)
			fail_msg("%s accepted", bad[i]);
	assert_int_equal(path_check_volume("/home/alice/share", root, STATE, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/mnt, /media, /srv or /opt"));
	/* The allowed parents themselves, traversal, system dirs: refused. */
	static const char *const worse[] = { "/mnt", "/media", "/srv", "/opt", "/mnt/../etc", "/mnt/./x",
					     "/mnt//x", "/mnt/x/", "mnt/x", "/etc/x", "/", "/var/lib/boxd/volumes/../x" };
	for (size_t i = 0; i < sizeof(worse) / sizeof(worse[0]); i++)
		if (path_check_volume(worse[i], root, STATE, err, sizeof(err)) != -EINVAL)
			fail_msg("%s accepted", worse[i]);
	/* Without a volumes root, only the allowed parents. */
	assert_int_equal(path_check_volume("/mnt/nas", NULL, STATE, err, sizeof(err)), 0);
	assert_int_equal(path_check_volume("/var/lib/boxd/volumes/x", NULL, STATE, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalized),
		cmocka_unit_test(test_system_dirs),
		cmocka_unit_test(test_state_dir),
		cmocka_unit_test(test_is_under),
		cmocka_unit_test_setup_teardown(test_symlinks, fx_setup, fx_teardown),
		cmocka_unit_test(test_volumes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
