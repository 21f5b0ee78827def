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

/* The default layout: the roots inside the state dir. */
static struct boxd_config cfg = {
	.state_dir = STATE, .appsdata_root = STATE "/appsdata", .volumes_root = STATE "/volumes",
	.backups_dir = STATE "/backups", .install_root = "/opt/boxd",
};

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
	assert_int_equal(path_check_app_data(&cfg, "/srv/wiki", err, sizeof(err)), 0);
	assert_int_equal(path_check_app_data(&cfg, "/etc/wiki", err, sizeof(err)), -EINVAL);
	assert_int_equal(path_check_app_data(&cfg, "/srv/../etc", err, sizeof(err)), -EINVAL);
}

/* app_refused(PATH, WHAT): a custom data dir refused, naming WHAT. */
static void app_refused(const struct boxd_config *c, const char *path, const char *what)
{
	char err[512] = "";
	if (path_check_app_data(c, path, err, sizeof(err)) != -EINVAL)
		fail_msg("%s accepted as a custom data dir", path);
	if (!strstr(err, what))
		fail_msg("%s: message '%s' does not mention '%s'", path, err, what);
}

/* Finding 7 (issue 10): a data dir is never boxd's own: not the state dir
 * (the database, the task logs), the install root (boxd's binaries), the
 * backup dir, the roots; not inside one, not a parent of one. */
static void test_own_dirs(void **state)
{
	(void)state;
	app_refused(&cfg, STATE "/boxd.db", "state dir");
	app_refused(&cfg, STATE "/logs", "state dir");
	app_refused(&cfg, STATE "/logs/tasks", "state dir");
	app_refused(&cfg, STATE, "state dir");
	app_refused(&cfg, "/var/lib", "top-level"); /* a parent, also a system dir */
	app_refused(&cfg, STATE "/appsdata", "appsdata root");
	app_refused(&cfg, STATE "/appsdata/other", "state dir");
	app_refused(&cfg, STATE "/volumes/v", "state dir");
	app_refused(&cfg, STATE "/backups/x", "state dir");
	app_refused(&cfg, "/opt/boxd", "install root");
	app_refused(&cfg, "/opt/boxd/releases/0.2.0", "install root");
	app_refused(&cfg, "/opt/boxd/current", "install root");
	/* The roots elsewhere (an operator's layout): the same rules. */
	struct boxd_config own = {
		.state_dir = "/var/lib/boxd", .appsdata_root = "/srv/apps", .volumes_root = "/srv/volumes",
		.backups_dir = "/srv/backups", .install_root = "/srv/boxd",
	};
	app_refused(&own, "/srv/backups", "backup dir");
	app_refused(&own, "/srv/backups/app-x.tar.zst", "backup dir");
	app_refused(&own, "/srv/boxd/bin", "install root");
	app_refused(&own, "/srv/apps/x", "appsdata root");
	app_refused(&own, "/srv/volumes/x", "volumes root");
	char err[512];
	assert_int_equal(path_check_app_data(&own, "/srv/own/wiki", err, sizeof(err)), 0);
	assert_int_equal(path_check_app_data(&own, "/srv/backups2", err, sizeof(err)), 0);
	/* A parent of the backup dir (it would contain the backups). */
	struct boxd_config deep = own;
	deep.backups_dir = "/srv/data/backups";
	app_refused(&deep, "/srv/data", "backup dir");
	/* Volumes: below the volumes root yes, elsewhere in the state dir no,
	 * and never in the install root (which sits under /opt). */
	assert_int_equal(path_check_volume(&cfg, STATE "/volumes/media", err, sizeof(err)), 0);
	assert_int_equal(path_check_volume(&cfg, STATE "/logs", err, sizeof(err)), -EINVAL);
	assert_int_equal(path_check_volume(&cfg, "/opt/boxd/releases", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "install root"));
	assert_int_equal(path_check_volume(&cfg, "/opt/media", err, sizeof(err)), 0);
	/* The packaged default: the install root is the state dir. */
	struct boxd_config same = cfg;
	same.install_root = STATE;
	assert_int_equal(path_check_volume(&same, STATE "/volumes/media", err, sizeof(err)), 0);
	assert_int_equal(path_check_volume(&same, STATE "/releases", err, sizeof(err)), -EINVAL);
	app_refused(&same, STATE "/current", "state dir");
	/* A backup dir inside the volumes root (an odd layout): a volume
	 * there would hold the backups. */
	struct boxd_config odd = cfg;
	odd.backups_dir = STATE "/volumes/backups";
	assert_int_equal(path_check_volume(&odd, STATE "/volumes/backups/x", err, sizeof(err)), -EINVAL);
	assert_int_equal(path_check_volume(&odd, STATE "/volumes", err, sizeof(err)), -EINVAL);
}

/* Backup rows name a file directly in the backup dir. */
static void test_backup_file(void **state)
{
	(void)state;
	char err[512];
	assert_int_equal(path_check_backup_file(&cfg, STATE "/backups/app-x-20240101T000000Z-t3.tar.zst", err,
						sizeof(err)), 0);
	static const char *const bad[] = {
		"/tmp/evil.tar.zst", STATE "/backups", STATE "/backups/", STATE "/backups/../boxd.db",
		STATE "/backups/sub/x.tar.zst", STATE "/backups/.app-x.tar.zst.tmp-123456", STATE "/backupsx/a",
		"", "relative.tar.zst",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (path_check_backup_file(&cfg, bad[i], err, sizeof(err)) != -EINVAL)
			fail_msg("%s accepted as a backup file", bad[i]);
	assert_int_equal(path_check_backup_file(&cfg, NULL, err, sizeof(err)), -EINVAL);
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
	assert_int_equal(path_check_volume(&cfg, p, err, sizeof(err)), -EINVAL);
}

static void test_volumes(void **state)
{
	(void)state;
	char err[512];
	const char *root = "/var/lib/boxd/volumes";
	struct boxd_config no_root = cfg;
	no_root.volumes_root = NULL;
	/* Under the volumes root (inside the state dir): allowed. */
	assert_int_equal(path_check_volume(&cfg, "/var/lib/boxd/volumes/media", err, sizeof(err)), 0);
	assert_int_equal(path_check_volume(&cfg, "/var/lib/boxd/volumes/a/b", err, sizeof(err)), 0);
	/* The root itself is not a volume. */
	assert_int_equal(path_check_volume(&cfg, root, err, sizeof(err)), -EINVAL);
	/* Outside the root: only under /mnt, /media, /srv, /opt. */
	static const char *const ok[] = { "/mnt/nas", "/media/usb1", "/srv/share", "/opt/data/x" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (path_check_volume(&cfg, ok[i], err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", ok[i], err);
	static const char *const bad[] = { "/home/alice/share", "/data/share", "/tmp/share", "/var/share",
					   "/mntx/share", "/srv2/share", "/var/lib/boxd/other" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (path_check_volume(&cfg, bad[i], err, sizeof(err)) != -EINVAL)
			fail_msg("%s accepted", bad[i]);
	assert_int_equal(path_check_volume(&cfg, "/home/alice/share", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/mnt, /media, /srv or /opt"));
	/* The allowed parents themselves, traversal, system dirs: refused. */
	static const char *const worse[] = { "/mnt", "/media", "/srv", "/opt", "/mnt/../etc", "/mnt/./x",
					     "/mnt//x", "/mnt/x/", "mnt/x", "/etc/x", "/", "/var/lib/boxd/volumes/../x" };
	for (size_t i = 0; i < sizeof(worse) / sizeof(worse[0]); i++)
		if (path_check_volume(&cfg, worse[i], err, sizeof(err)) != -EINVAL)
			fail_msg("%s accepted", worse[i]);
	/* Without a volumes root, only the allowed parents. */
	assert_int_equal(path_check_volume(&no_root, "/mnt/nas", err, sizeof(err)), 0);
	assert_int_equal(path_check_volume(&no_root, "/var/lib/boxd/volumes/x", err, sizeof(err)), -EINVAL);
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
		cmocka_unit_test(test_own_dirs),
		cmocka_unit_test(test_backup_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
