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
#include <sys/stat.h>
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
	assert_int_equal(update_sha256_file(path, hex, err, sizeof(err)), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(update_sha256_equal(hex, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
	assert_false(update_sha256_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae"));
	assert_false(update_sha256_equal(hex, "ba78"));
	assert_false(update_sha256_equal(hex, NULL));
	snprintf(path, sizeof(path), "%s/missing", tmp);
	assert_int_equal(update_sha256_file(path, hex, err, sizeof(err)), -ENOENT);
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
	assert_int_equal(update_sha256_file(p, hex, err, sizeof(err)), 0);
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
		cmocka_unit_test_setup_teardown(test_current, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_version, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
