/* test-update.c — update packages and the install root (update/release.h):
 * version names, checksums, the package check (hostile and damaged
 * archives), the unpack (atomic, verified, nothing left on failure), the
 * `current` symlink, and the running version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "update/release.h"

static char tmp[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/test-update.XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char err[256];
	fs_remove_tree(NULL, tmp, err, sizeof(err));
	return 0;
}

/* ---- building packages ---------------------------------------------------- */

struct entry {
	const char *name;
	mode_t type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK */
	const char *data;     /* file data, or symlink target */
};

/* Write a tarball of `entries` to tmp/name; returns the path (static). */
static const char *make_pkg(const char *name, const struct entry *entries, size_t n, bool zstd)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (zstd)
		archive_write_add_filter_zstd(a);
	else
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[i].name);
		archive_entry_set_filetype(e, entries[i].type);
		archive_entry_set_perm(e, entries[i].type == AE_IFDIR ? 0755 : 0644);
		size_t len = 0;
		if (entries[i].type == AE_IFREG) {
			len = strlen(entries[i].data);
			archive_entry_set_size(e, (la_int64_t)len);
		} else if (entries[i].type == AE_IFLNK) {
			archive_entry_set_symlink(e, entries[i].data);
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (len)
			assert_int_equal(archive_write_data(a, entries[i].data, len), (la_ssize_t)len);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return path;
}

static const struct entry good[] = {
	{ "./", AE_IFDIR, NULL },
	{ "./manifest.json", AE_IFREG, "{\"version\": \"2.0.0-rc1\", \"notes\": \"x\"}" },
	{ "./bin/", AE_IFDIR, NULL },
	{ "./bin/boxd", AE_IFREG, "#!/bin/sh\necho boxd 2.0.0-rc1\n" },
	{ "./bin/boxctl", AE_IFREG, "#!/bin/sh\nexit 0\n" },
	{ "./share/doc/README", AE_IFREG, "hello\n" },
};
#define N_GOOD (sizeof(good) / sizeof(good[0]))

static int check_file(const char *path, struct update_manifest *m, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	int r = update_package_check(fd, m, err, errlen);
	close(fd);
	return r;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_version_valid(void **state)
{
	(void)state;
	assert_true(update_version_valid("1.2.3"));
	assert_true(update_version_valid("9.9.9-test"));
	assert_true(update_version_valid("2024.01+build.7_x"));
	assert_false(update_version_valid(""));
	assert_false(update_version_valid(NULL));
	assert_false(update_version_valid("."));
	assert_false(update_version_valid(".."));
	assert_false(update_version_valid("-1"));
	assert_false(update_version_valid("1/2"));
	assert_false(update_version_valid("1 2"));
	assert_false(update_version_valid("../../etc"));
	char longv[80];
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	assert_false(update_version_valid(longv));
	longv[64] = '\0';
	assert_true(update_version_valid(longv));
	longv[64] = 'a';
	longv[65] = '\0';
	assert_false(update_version_valid(longv));
}

static void test_sha256(void **state)
{
	(void)state;
	char path[512], hex[UPDATE_SHA256_HEX], err[256];
	snprintf(path, sizeof(path), "%s/abc", tmp);
	FILE *f = fopen(path, "w");
	fputs("abc", f);
	fclose(f);
	assert_int_equal(sha256_file(path, hex, err, sizeof(err)), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(sha256_hex_equal(hex, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
	assert_false(sha256_hex_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae"));
	assert_false(sha256_hex_equal(hex, "ba78"));
	assert_false(sha256_hex_equal(hex, NULL));
	snprintf(path, sizeof(path), "%s/missing", tmp);
	assert_int_equal(sha256_file(path, hex, err, sizeof(err)), -ENOENT);
}

static void test_check_good(void **state)
{
	(void)state;
	char err[512];
	struct update_manifest m;
	for (int z = 0; z < 2; z++) {
		const char *p = make_pkg(z ? "good.tar.zst" : "good.tar.gz", good, N_GOOD, z);
		assert_int_equal(check_file(p, &m, err, sizeof(err)), 0);
		assert_string_equal(m.version, "2.0.0-rc1");
		assert_int_equal(m.entries, N_GOOD);
	}
	/* Names without "./" work too. */
	static const struct entry plain[] = {
		{ "manifest.json", AE_IFREG, "{\"version\": \"3\"}" },
		{ "bin/boxd", AE_IFREG, "x" },
		{ "bin/boxctl", AE_IFREG, "y" },
	};
	assert_int_equal(check_file(make_pkg("plain.tar.gz", plain, 3, false), &m, err, sizeof(err)), 0);
	assert_string_equal(m.version, "3");
}

static void expect_bad(const char *name, const struct entry *entries, size_t n, const char *needle)
{
	char err[512] = "";
	struct update_manifest m = { .version = "untouched" };
	int r = check_file(make_pkg(name, entries, n, false), &m, err, sizeof(err));
	if (r != -EBADMSG || !strstr(err, needle))
		fail_msg("%s: got %d \"%s\", wanted -EBADMSG with \"%s\"", name, r, err, needle);
	assert_string_equal(m.version, "untouched");
}

static void test_check_bad(void **state)
{
	(void)state;
	static const struct entry no_boxctl[] = {
		{ "manifest.json", AE_IFREG, "{\"version\": \"3\"}" },
		{ "bin/boxd", AE_IFREG, "x" },
	};
	expect_bad("no-boxctl.tar.gz", no_boxctl, 2, "bin/boxctl");
	static const struct entry no_manifest[] = {
		{ "bin/boxd", AE_IFREG, "x" },
		{ "bin/boxctl", AE_IFREG, "y" },
	};
	expect_bad("no-manifest.tar.gz", no_manifest, 2, "manifest.json");
	static const struct entry bad_version[] = {
		{ "manifest.json", AE_IFREG, "{\"version\": \"../../etc\"}" },
		{ "bin/boxd", AE_IFREG, "x" },
		{ "bin/boxctl", AE_IFREG, "y" },
	};
	expect_bad("bad-version.tar.gz", bad_version, 3, "version");
	static const struct entry not_json[] = {
		{ "manifest.json", AE_IFREG, "version=3" },
		{ "bin/boxd", AE_IFREG, "x" },
		{ "bin/boxctl", AE_IFREG, "y" },
	};
	expect_bad("not-json.tar.gz", not_json, 3, "manifest.json");
	static const struct entry dotdot[] = {
		{ "manifest.json", AE_IFREG, "{\"version\": \"3\"}" },
		{ "bin/../../evil", AE_IFREG, "x" },
	};
	expect_bad("dotdot.tar.gz", dotdot, 2, "..");
	static const struct entry absolute[] = {
		{ "/etc/evil", AE_IFREG, "x" },
	};
	expect_bad("absolute.tar.gz", absolute, 1, "absolute");
	static const struct entry symlink[] = {
		{ "manifest.json", AE_IFREG, "{\"version\": \"3\"}" },
		{ "bin", AE_IFLNK, "/usr/bin" },
		{ "bin/boxd", AE_IFREG, "x" },
	};
	expect_bad("symlink.tar.gz", symlink, 3, "only regular files and directories");

	/* Damaged: half of a good package. */
	const char *p = make_pkg("whole.tar.gz", good, N_GOOD, false);
	char cut[512], err[512] = "";
	snprintf(cut, sizeof(cut), "%s/cut.tar.gz", tmp);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	FILE *in = fopen(p, "r"), *out = fopen(cut, "w");
	char buf[8192];
	size_t n = fread(buf, 1, (size_t)st.st_size / 2, in);
	fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
	struct update_manifest m;
	assert_int_equal(check_file(cut, &m, err, sizeof(err)), -EBADMSG);
	/* Not an archive at all. */
	snprintf(cut, sizeof(cut), "%s/text.tar.gz", tmp);
	out = fopen(cut, "w");
	fputs("hello, this is not a tarball\n", out);
	fclose(out);
	assert_int_equal(check_file(cut, &m, err, sizeof(err)), -EBADMSG);
}

static void test_unpack(void **state)
{
	(void)state;
	char root[512], path[600], err[512], hex[UPDATE_SHA256_HEX];
	snprintf(root, sizeof(root), "%s/root", tmp);
	const char *p = make_pkg("u.tar.zst", good, N_GOOD, true);
	assert_int_equal(sha256_file(p, hex, err, sizeof(err)), 0);
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	/* A wrong expected hash: nothing is left behind. */
	char wrong[UPDATE_SHA256_HEX];
	memcpy(wrong, hex, sizeof(wrong));
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	assert_int_equal(update_release_unpack(fd, wrong, root, "2.0.0-rc1", NULL, err, sizeof(err)), -EBADMSG);
	snprintf(path, sizeof(path), "%s/releases", root);
	assert_int_equal(rmdir(path), 0); /* empty: no release, no temp dir */

	assert_int_equal(update_release_unpack(fd, hex, root, "2.0.0-rc1", NULL, err, sizeof(err)), 0);
	struct stat st;
	snprintf(path, sizeof(path), "%s/releases/2.0.0-rc1/bin/boxd", root);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode) && (st.st_mode & 0111) == 0111);
	snprintf(path, sizeof(path), "%s/releases/2.0.0-rc1/share/doc/README", root);
	assert_int_equal(stat(path, &st), 0);
	char v[UPDATE_VERSION_MAX];
	snprintf(path, sizeof(path), "%s/releases/2.0.0-rc1", root);
	assert_int_equal(update_release_version(path, v, err, sizeof(err)), 0);
	assert_string_equal(v, "2.0.0-rc1");

	/* Again over the existing dir: swapped, the stray file goes with it. */
	snprintf(path, sizeof(path), "%s/releases/2.0.0-rc1/stray", root);
	close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	assert_int_equal(update_release_unpack(fd, hex, root, "2.0.0-rc1", NULL, err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1);

	/* Something else in the way: refused, untouched. */
	snprintf(path, sizeof(path), "%s/releases/9", root);
	close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	assert_int_equal(update_release_unpack(fd, hex, root, "9", NULL, err, sizeof(err)), -ENOTDIR);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	close(fd);

	/* Only the two entries are left in releases/. */
	snprintf(path, sizeof(path), "%s/releases", root);
	int n = 0;
	struct dirent **names;
	int k = scandir(path, &names, NULL, alphasort);
	for (int i = 0; i < k; i++) {
		if (names[i]->d_name[0] != '.')
			n++;
		else
			assert_true(strcmp(names[i]->d_name, ".") == 0 || strcmp(names[i]->d_name, "..") == 0);
		free(names[i]);
	}
	free(names);
	assert_int_equal(n, 2);
	assert_int_equal(update_release_remove(root, "2.0.0-rc1", err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/releases/2.0.0-rc1", root);
	assert_int_equal(access(path, F_OK), -1);
}


/* ---- finding 4 (issue 10): unverified bytes stay private -------------------------- */

/* A package whose bin/boxd is setuid root and that has 64 MiB to unpack
 * after it (the window in which a local user could run it). */
static const char *make_setuid_pkg(void)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/suid.tar.gz", tmp);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	static const char manifest[] = "{\"version\": \"3.0.0\"}", sh[] = "#!/bin/sh\nid\n";
	struct {
		const char *name;
		mode_t type, perm;
		const char *data;
		size_t size;
	} ents[] = {
		{ "./", AE_IFDIR, 0755, NULL, 0 },
		{ "./manifest.json", AE_IFREG, 0644, manifest, sizeof(manifest) - 1 },
		{ "./bin/", AE_IFDIR, 0755, NULL, 0 },
		{ "./bin/boxd", AE_IFREG, 04755, sh, sizeof(sh) - 1 },
		{ "./bin/boxctl", AE_IFREG, 02755, sh, sizeof(sh) - 1 },
		{ "./share/", AE_IFDIR, 0755, NULL, 0 },
		{ "./share/big", AE_IFREG, 0644, NULL, 64u << 20 },
	};
	static char zeros[1 << 16];
	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, ents[i].name);
		archive_entry_set_filetype(e, ents[i].type);
		archive_entry_set_perm(e, ents[i].perm);
		archive_entry_set_size(e, (la_int64_t)ents[i].size);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (ents[i].data)
			assert_int_equal(archive_write_data(a, ents[i].data, ents[i].size), (la_ssize_t)ents[i].size);
		else
			for (size_t done = 0; done < ents[i].size; done += sizeof(zeros))
				assert_int_equal(archive_write_data(a, zeros, sizeof(zeros)), (la_ssize_t)sizeof(zeros));
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return path;
}

/* The local user: as nobody, watch releases/ for the unpack's temp dir
 * and try to get into it until it is gone. Exit status: bit 0 it could
 * open the temp dir, bit 1 it saw a setuid or setgid file there, 8 error. */
static void watcher(const char *releases, int ready_fd, uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		_exit(8);
	alarm(120); /* never outlive a test that went wrong */
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, releases, IN_CREATE) < 0)
		_exit(8);
	(void)!write(ready_fd, "x", 1);
	close(ready_fd);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char name[1200] = "";
	while (!name[0]) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n <= 0)
			_exit(8);
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && strstr(ev->name, ".tmp-"))
				snprintf(name, sizeof(name), "%s/%s", releases, ev->name);
			p += sizeof(*ev) + ev->len;
		}
	}
	int result = 0;
	char bin[1300];
	snprintf(bin, sizeof(bin), "%s/bin", name);
	for (long i = 0; i < 100000000; i++) {
		int fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			break; /* renamed into place or removed: over */
		if (fd >= 0) {
			result |= 1;
			close(fd);
			struct stat st;
			char f[1400];
			snprintf(f, sizeof(f), "%s/boxd", bin);
			if (stat(f, &st) == 0 && (st.st_mode & 06000))
				result |= 2;
		}
	}
	_exit(result);
}

static void test_unpack_private(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct passwd *pw = getpwnam("nobody");
	if (!pw)
		skip();
	char root[512], releases[600], path[700], hex[UPDATE_SHA256_HEX], err[512];
	assert_int_equal(chmod(tmp, 0755), 0);
	snprintf(root, sizeof(root), "%s/install", tmp);
	snprintf(releases, sizeof(releases), "%s/releases", root);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(releases, 0755), 0);
	const char *pkg = make_setuid_pkg();
	assert_int_equal(sha256_file(pkg, hex, err, sizeof(err)), 0);

	int pipefd[2];
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(pipefd[0]);
		watcher(releases, pipefd[1], pw->pw_uid, pw->pw_gid);
	}
	close(pipefd[1]);
	char c;
	assert_int_equal(read(pipefd[0], &c, 1), 1); /* the watch is in place */
	close(pipefd[0]);

	int fd = open(pkg, O_RDONLY | O_CLOEXEC);
	int r = update_release_unpack(fd, hex, root, "3.0.0", NULL, err, sizeof(err));
	close(fd);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	if (r < 0)
		fail_msg("unpack: %s", err);
	assert_true(WIFEXITED(status));
	int seen = WEXITSTATUS(status);
	assert_int_not_equal(seen, 8);
	if (seen & 1)
		fail_msg("a local user (nobody) could enter the temp dir while unverified bytes were unpacked%s",
			 seen & 2 ? ", and saw a setuid bin/boxd there" : "");
	/* The release itself: readable now, no setuid or setgid bit. */
	struct stat st;
	snprintf(path, sizeof(path), "%s/3.0.0", releases);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	static const char *const bins[] = { "bin/boxd", "bin/boxctl" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/3.0.0/%s", releases, bins[i]);
		assert_int_equal(stat(path, &st), 0);
		if (st.st_mode & 06000)
			fail_msg("%s was unpacked with mode %o", bins[i], st.st_mode & 07777);
		assert_int_equal(st.st_mode & 0755, 0755);
	}
}

static void test_current(void **state)
{
	(void)state;
	char root[512], target[256], err[512];
	snprintf(root, sizeof(root), "%s/cur", tmp);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(update_current_read(root, target, sizeof(target), err, sizeof(err)), 0);
	assert_string_equal(target, "");
	assert_int_equal(update_current_switch(root, "releases/1", err, sizeof(err)), 0);
	assert_int_equal(update_current_read(root, target, sizeof(target), err, sizeof(err)), 0);
	assert_string_equal(target, "releases/1");
	assert_int_equal(update_current_switch(root, "releases/2", err, sizeof(err)), 0);
	assert_int_equal(update_current_read(root, target, sizeof(target), err, sizeof(err)), 0);
	assert_string_equal(target, "releases/2");
	assert_int_equal(update_current_switch(root, "", err, sizeof(err)), 0);
	assert_int_equal(update_current_read(root, target, sizeof(target), err, sizeof(err)), 0);
	assert_string_equal(target, "");
	/* No temp symlink is left behind. */
	assert_int_equal(rmdir(root), 0);
}

static void test_running_version(void **state)
{
	(void)state;
	/* This test binary does not run from an install root. */
	struct boxd_config cfg = { .install_root = tmp };
	assert_string_equal(update_running_version(&cfg), BOXD_VERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_valid),
		cmocka_unit_test_setup_teardown(test_sha256, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_current, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_version, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
