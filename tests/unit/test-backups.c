/* test-backups.c — the backups module without a daemon:
 *   - archive round trips (zstd and gzip): a tree with regular files of
 *     several modes and sizes, an empty file, empty and nested dirs, a
 *     setgid dir, symlinks (relative, absolute, dangling), a hard link and a
 *     fifo comes back byte for byte with modes, mtimes and links;
 *   - the SHA-256 recorded while writing equals what sha256sum(1) says;
 *   - a corrupted archive (bytes flipped, truncated, missing) fails
 *     tarball_verify(), and extraction refuses entries that escape;
 *   - the temp/fsync/rename sequence leaves no temp file behind, on
 *     success and on every kind of failure;
 *   - the box state dump of SQLite is a database with the rows; on MariaDB
 *     and PostgreSQL (when the test env names them) a JSON-lines export;
 *   - rows round trip through a real SQLite store, and the retention plan
 *     never deletes the newest good backup of an app.
 * Every test works in its own mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <archive.h>
#include <archive_entry.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "apps/app.h"
#include "backups/app_record.h"
#include "backups/backup_crypt.h"
#include "backups/backup_key.h"
#include "backups/backup_store.h"
#include "backups/box_state.h"
#include "backups/tarball.h"
#include "common/config.h"
#include "common/fs.h"
#include "store/store.h"

#include <jansson.h>
#include "fixture-store.h"

struct fx {
	char dir[256];
};

/* snprintf into an array, asserting that it fit. */
#define FMT(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/boxd-test-backups-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char err[256];
	/* A test may leave read-only dirs behind: make them writable first. */
	char cmd[512];
	FMT(cmd, "chmod -R u+rwx '%s' 2>/dev/null", f->dir);
	(void)!system(cmd);
	fs_remove_tree(NULL, f->dir, err, sizeof(err));
	free(f);
	return 0;
}

/* Everything as it was: owners, setuid bits, fifos (the round trips). */
static const struct tarball_extract_opts faithful = { .owners = true, .special = true };

/* tarball_extract() into the directory `dst`. */
static int extract_to(const char *arc, const char *dst, const struct tarball_extract_opts *o, char *err,
		      size_t errlen)
{
	int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int r = tarball_extract(arc, dfd, o, NULL, NULL, err, errlen);
	close(dfd);
	return r;
}

static void path_in(const struct fx *f, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, rel);
}

static void write_bytes(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void set_mtime(const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* The test tree under `root`. */
static void make_tree(const char *root)
{
	char p[PATH_MAX], q[PATH_MAX];
	assert_int_equal(mkdir(root, 0750), 0);
#define P(rel) (FMT(p, "%s/%s", root, rel), p)
	write_bytes(P("hello.txt"), "hello, world\n", 13, 0644);
	write_bytes(P("empty"), "", 0, 0600);
	write_bytes(P("script.sh"), "#!/bin/sh\necho hi\n", 18, 0755);
	write_bytes(P("readonly"), "ro", 2, 0400);
	/* 3 MiB + 17 bytes of pseudo-random data: several write blocks. */
	size_t big = 3 * 1024 * 1024 + 17;
	unsigned char *buf = malloc(big);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < big; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	write_bytes(P("big.bin"), buf, big, 0640);
	free(buf);
	assert_int_equal(mkdir(P("empty-dir"), 0700), 0);
	assert_int_equal(mkdir(P("a"), 0755), 0);
	assert_int_equal(mkdir(P("a/b"), 0711), 0);
	assert_int_equal(mkdir(P("a/b/c"), 0755), 0);
	write_bytes(P("a/b/c/deep.txt"), "deep\n", 5, 0664);
	assert_int_equal(mkdir(P("shared"), 0755), 0);
	assert_int_equal(chmod(P("shared"), 02775), 0);
	assert_int_equal(symlink("hello.txt", P("link-rel")), 0);
	assert_int_equal(symlink("/etc/passwd", P("link-abs")), 0);
	assert_int_equal(symlink("does/not/exist", P("a/dangling")), 0);
	assert_int_equal(symlink("../..", P("a/b/up")), 0);
	FMT(q, "%s/hello.txt", root);
	assert_int_equal(link(q, P("a/hardlink")), 0);
	assert_int_equal(mkfifo(P("fifo"), 0620), 0);
	set_mtime(P("hello.txt"), 1000000000, 123456789);
	set_mtime(P("big.bin"), 1600000000, 0);
	set_mtime(P("link-rel"), 1500000000, 0);
	set_mtime(P("empty-dir"), 1400000000, 0);
	set_mtime(P("a/b/c"), 1300000000, 0);
	set_mtime(P("a/b"), 1300000001, 0);
	set_mtime(root, 1200000000, 0);
#undef P
}

static bool same_file_data(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	while (same) {
		int ca = fgetc(fa), cb = fgetc(fb);
		if (ca != cb)
			same = false;
		if (ca == EOF || cb == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Compare two trees entry by entry: type, mode, owner, size, content,
 * symlink target, mtime (directories too), and the hard link. */
static void assert_same_tree(const char *a, const char *b, bool top)
{
	struct stat sa, sb;
	assert_int_equal(lstat(a, &sa), 0);
	assert_int_equal(lstat(b, &sb), 0);
	if ((sa.st_mode & 07777) != (sb.st_mode & 07777) || (sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
		fail_msg("%s: mode %o, restored %s: %o", a, sa.st_mode, b, sb.st_mode);
	assert_int_equal(sa.st_uid, sb.st_uid);
	assert_int_equal(sa.st_gid, sb.st_gid);
	if (!S_ISLNK(sa.st_mode) && (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec))
		fail_msg("%s: mtime %ld.%09ld, restored %ld.%09ld", a, (long)sa.st_mtim.tv_sec, sa.st_mtim.tv_nsec,
			 (long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
	if (S_ISREG(sa.st_mode)) {
		assert_int_equal(sa.st_size, sb.st_size);
		assert_int_equal(sa.st_nlink, sb.st_nlink);
		if (!same_file_data(a, b))
			fail_msg("%s: content differs", a);
	} else if (S_ISLNK(sa.st_mode)) {
		char ta[PATH_MAX], tb[PATH_MAX];
		ssize_t na = readlink(a, ta, sizeof(ta)), nb = readlink(b, tb, sizeof(tb));
		assert_true(na > 0);
		assert_int_equal(na, nb);
		assert_memory_equal(ta, tb, (size_t)na);
	} else if (S_ISDIR(sa.st_mode)) {
		char *names[64], *names_b[64];
		size_t n = 0, nb = 0;
		DIR *d = opendir(a);
		struct dirent *de;
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				names[n++] = strdup(de->d_name);
		closedir(d);
		d = opendir(b);
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				names_b[nb++] = strdup(de->d_name);
		closedir(d);
		assert_int_equal(n, nb);
		qsort(names, n, sizeof(char *), cmp_str);
		qsort(names_b, nb, sizeof(char *), cmp_str);
		for (size_t i = 0; i < n; i++) {
			assert_string_equal(names[i], names_b[i]);
			char ca[PATH_MAX], cb[PATH_MAX];
			FMT(ca, "%s/%s", a, names[i]);
			FMT(cb, "%s/%s", b, names[i]);
			assert_same_tree(ca, cb, false);
			free(names[i]);
			free(names_b[i]);
		}
		/* Recursing may have changed nothing; compare the dir's own
		 * mtime last (restore sets it after the contents). */
		assert_int_equal(lstat(b, &sb), 0);
		if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec)
			fail_msg("%s%s: directory mtime %ld, restored %ld", a, top ? " (top)" : "", (long)sa.st_mtim.tv_sec,
				 (long)sb.st_mtim.tv_sec);
	}
}

static void round_trip(struct fx *f, enum tarball_format fmt)
{
	char src[PATH_MAX], arc[PATH_MAX], dst[PATH_MAX], err[1024];
	path_in(f, "src", src, sizeof(src));
	FMT(arc, "%s/backup%s", f->dir, tarball_format_ext(fmt));
	path_in(f, "restored", dst, sizeof(dst));
	make_tree(src);
	struct tarball_info info;
	int r = tarball_create(src, arc, fmt, 0, NULL, &info, err, sizeof(err));
	if (r < 0)
		fail_msg("tarball_create: %s", err);
	assert_true(info.size > 0);
	assert_int_equal(info.data_bytes, 13 + 18 + 2 + 3 * 1024 * 1024 + 17 + 5);
	/* ".", 6 files, 5 dirs, 4 symlinks, the hard link, the fifo */
	assert_int_equal(info.entries, 1 + 6 + 5 + 4 + 1 + 1);
	struct stat st;
	assert_int_equal(stat(arc, &st), 0);
	assert_int_equal(st.st_size, info.size);

	/* The format on disk is the one asked for. */
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	assert_int_equal(archive_read_open_filename(a, arc, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	assert_string_equal(archive_entry_pathname(e), "./"); /* directories end in '/' */
	assert_int_equal(archive_filter_code(a, 0), fmt == TARBALL_GZIP ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_ZSTD);
	archive_read_free(a);

	assert_int_equal(mkdir(dst, 0700), 0);
	r = extract_to(arc, dst, &faithful, err, sizeof(err));
	if (r < 0)
		fail_msg("tarball_extract: %s", err);
	assert_same_tree(src, dst, true);
	/* The hard link is a hard link again. */
	char h1[PATH_MAX], h2[PATH_MAX];
	struct stat s1, s2;
	FMT(h1, "%s/hello.txt", dst);
	FMT(h2, "%s/a/hardlink", dst);
	assert_int_equal(stat(h1, &s1), 0);
	assert_int_equal(stat(h2, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	/* The working directory is back. */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_true(strncmp(cwd, dst, strlen(dst)) != 0);
}

static void test_round_trip_zstd(void **state) { round_trip(*state, TARBALL_ZSTD); }
static void test_round_trip_gzip(void **state) { round_trip(*state, TARBALL_GZIP); }

/* Same tree, same bytes: entries are sorted, not in readdir order. */
static void test_deterministic(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], a1[PATH_MAX], a2[PATH_MAX], err[512];
	path_in(f, "src", src, sizeof(src));
	path_in(f, "one.tar.zst", a1, sizeof(a1));
	path_in(f, "two.tar.zst", a2, sizeof(a2));
	make_tree(src);
	struct tarball_info i1, i2;
	assert_int_equal(tarball_create(src, a1, TARBALL_ZSTD, 0, NULL, &i1, err, sizeof(err)), 0);
	assert_int_equal(tarball_create(src, a2, TARBALL_ZSTD, 0, NULL, &i2, err, sizeof(err)), 0);
	assert_string_equal(i1.sha256, i2.sha256);
}

static void sha256sum_of(const char *path, char out[65])
{
	char cmd[PATH_MAX + 32];
	FMT(cmd, "sha256sum '%s'", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, 65, p));
	pclose(p);
	out[64] = '\0';
}

static void test_sha256_matches_sha256sum(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], arc[PATH_MAX], err[512], want[65], got[TARBALL_SHA256_HEX];
	path_in(f, "src", src, sizeof(src));
	make_tree(src);
	for (int fmt = TARBALL_ZSTD; fmt <= TARBALL_GZIP; fmt++) {
		FMT(arc, "%s/a%s", f->dir, tarball_format_ext(fmt));
		struct tarball_info info;
		assert_int_equal(tarball_create(src, arc, fmt, 0, NULL, &info, err, sizeof(err)), 0);
		sha256sum_of(arc, want);
		assert_string_equal(info.sha256, want);
		int64_t size;
		assert_int_equal(tarball_sha256_file(arc, got, &size, err, sizeof(err)), 0);
		assert_string_equal(got, want);
		assert_int_equal(size, info.size);
		assert_int_equal(tarball_verify(arc, want, size, err, sizeof(err)), 0);
	}
	/* The empty file's well-known hash. */
	path_in(f, "nothing", arc, sizeof(arc));
	write_bytes(arc, "", 0, 0600);
	assert_int_equal(tarball_sha256_file(arc, got, NULL, err, sizeof(err)), 0);
	assert_string_equal(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	unsigned char c;
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_corrupt_detected(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], arc[PATH_MAX], err[1024];
	path_in(f, "src", src, sizeof(src));
	make_tree(src);
	for (int fmt = TARBALL_ZSTD; fmt <= TARBALL_GZIP; fmt++) {
		FMT(arc, "%s/a%s", f->dir, tarball_format_ext(fmt));
		struct tarball_info info;
		assert_int_equal(tarball_create(src, arc, fmt, 0, NULL, &info, err, sizeof(err)), 0);
		flip_byte(arc, info.size / 2);
		assert_int_equal(tarball_verify(arc, info.sha256, info.size, err, sizeof(err)), -EBADMSG);
		assert_non_null(strstr(err, info.sha256));
		/* Flipped back: good again. Truncated: bad. Missing: -ENOENT. */
		flip_byte(arc, info.size / 2);
		assert_int_equal(tarball_verify(arc, info.sha256, info.size, err, sizeof(err)), 0);
		assert_int_equal(truncate(arc, info.size - 1), 0);
		assert_int_equal(tarball_verify(arc, info.sha256, info.size, err, sizeof(err)), -EBADMSG);
		assert_int_equal(unlink(arc), 0);
		assert_int_equal(tarball_verify(arc, info.sha256, info.size, err, sizeof(err)), -ENOENT);
	}
	/* Extraction alone would not do: libarchive does not check the gzip
	 * CRC, so a flipped byte in stored (incompressible) data is restored
	 * as garbage without an error. Hence restore verifies the SHA-256
	 * before it touches anything. */
}

/* An archive whose entries try to leave the target is refused. */
static void test_extract_refuses_escape(void **state)
{
	struct fx *f = *state;
	char arc[PATH_MAX], dst[PATH_MAX], outside[PATH_MAX], err[1024];
	static const char *const bad[] = { "../escaped", "a/../../escaped", "/tmp/boxd-escaped-abs" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FMT(arc, "%s/evil%zu.tar.gz", f->dir, i);
		struct archive *a = archive_write_new();
		archive_write_set_format_pax_restricted(a);
		archive_write_add_filter_gzip(a);
		assert_int_equal(archive_write_open_filename(a, arc), ARCHIVE_OK);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, bad[i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, 4);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, "evil", 4), 4);
		archive_entry_free(e);
		archive_write_free(a);
		FMT(dst, "%s/dst%zu", f->dir, i);
		assert_int_equal(mkdir(dst, 0700), 0);
		assert_int_equal(extract_to(arc, dst, &faithful, err, sizeof(err)), -EBADMSG);
	}
	path_in(f, "escaped", outside, sizeof(outside));
	assert_int_equal(access(outside, F_OK), -1);
	assert_int_equal(access("/tmp/boxd-escaped-abs", F_OK), -1);

	/* Through a symlink in the archive: a/link -> .., then a/link/x. */
	FMT(arc, "%s/evil-link.tar.gz", f->dir);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, arc), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "link");
	archive_entry_set_filetype(e, AE_IFLNK);
	archive_entry_set_symlink(e, f->dir);
	archive_entry_set_perm(e, 0777);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "link/through-link");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 4);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, "evil", 4), 4);
	archive_entry_free(e);
	archive_write_free(a);
	path_in(f, "dst-link", dst, sizeof(dst));
	assert_int_equal(mkdir(dst, 0700), 0);
	assert_true(extract_to(arc, dst, &faithful, err, sizeof(err)) < 0);
	path_in(f, "through-link", outside, sizeof(outside));
	assert_int_equal(access(outside, F_OK), -1);
}

/* Names in `dir` other than `except` (NULL: none), as a count. */
static int count_entries(const char *dir, const char *except)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (except && !strcmp(de->d_name, except))
			continue;
		if (strstr(de->d_name, ".tmp-"))
			fail_msg("temp file left behind: %s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void test_no_temp_left(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], out[PATH_MAX], arc[PATH_MAX], err[1024];
	path_in(f, "src", src, sizeof(src));
	path_in(f, "out", out, sizeof(out));
	make_tree(src);
	assert_int_equal(mkdir(out, 0700), 0);
	struct tarball_info info;

	/* Success: exactly the archive. */
	FMT(arc, "%s/ok.tar.zst", out);
	assert_int_equal(tarball_create(src, arc, TARBALL_ZSTD, 0, NULL, &info, err, sizeof(err)), 0);
	assert_int_equal(count_entries(out, NULL), 1);
	/* Replacing it: still exactly one file, the new one. */
	assert_int_equal(tarball_create(src, arc, TARBALL_GZIP, 0, NULL, &info, err, sizeof(err)), 0);
	assert_int_equal(count_entries(out, NULL), 1);
	assert_int_equal(tarball_verify(arc, info.sha256, info.size, err, sizeof(err)), 0);

	/* Cancelled half-way (before the first entry). */
	volatile sig_atomic_t cancel = 1;
	FMT(arc, "%s/cancelled.tar.zst", out);
	assert_int_equal(tarball_create(src, arc, TARBALL_ZSTD, 0, &cancel, &info, err, sizeof(err)), -ECANCELED);
	assert_int_equal(count_entries(out, NULL), 1);

	/* The rename fails: the target is a non-empty directory. */
	FMT(arc, "%s/busy", out);
	assert_int_equal(mkdir(arc, 0700), 0);
	char inner[PATH_MAX];
	FMT(inner, "%s/x", arc);
	write_bytes(inner, "x", 1, 0600);
	assert_true(tarball_create(src, arc, TARBALL_ZSTD, 0, NULL, &info, err, sizeof(err)) < 0);
	assert_int_equal(count_entries(out, NULL), 2);
	assert_true(tarball_write_file(arc, "{}", 2, err, sizeof(err)) < 0);
	assert_int_equal(count_entries(out, NULL), 2);

	/* A source that cannot be read: a file in it without permission
	 * (unless we are root, who reads anyway), or no source at all. */
	char missing[PATH_MAX];
	path_in(f, "no-such-dir", missing, sizeof(missing));
	FMT(arc, "%s/missing.tar.zst", out);
	assert_int_equal(tarball_create(missing, arc, TARBALL_ZSTD, 0, NULL, &info, err, sizeof(err)), -ENOENT);
	assert_int_equal(count_entries(out, NULL), 2);
	/* A source that is a symlink is not followed. */
	char link_path[PATH_MAX];
	path_in(f, "src-link", link_path, sizeof(link_path));
	assert_int_equal(symlink(src, link_path), 0);
	assert_true(tarball_create(link_path, arc, TARBALL_ZSTD, 0, NULL, &info, err, sizeof(err)) < 0);
	assert_int_equal(count_entries(out, NULL), 2);

	/* tarball_write_file: success writes the bytes, no temp. */
	FMT(arc, "%s/meta.json", out);
	assert_int_equal(tarball_write_file(arc, "{\"a\":1}\n", 8, err, sizeof(err)), 0);
	assert_int_equal(count_entries(out, NULL), 3);
	FILE *fp = fopen(arc, "r");
	char buf[32] = "";
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_string_equal(buf, "{\"a\":1}\n");
	/* A directory that does not exist: nothing anywhere. */
	FMT(arc, "%s/nodir/meta.json", out);
	assert_int_equal(tarball_write_file(arc, "{}", 2, err, sizeof(err)), -ENOENT);
	assert_int_equal(count_entries(out, NULL), 3);
}

/* ---- hostile and special archives (issue 10) ---------------------------------------- */

/* An archive with a setuid and a setgid file, a device node, a fifo and
 * entries of a foreign owner, written with libarchive. */
static void make_hostile(const char *arc)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, arc), ARCHIVE_OK);
	struct {
		const char *name;
		mode_t type, perm;
		unsigned uid;
	} ents[] = {
		{ "./", AE_IFDIR, 0777, 4321 },    { "suid", AE_IFREG, 04755, 0 }, { "sgid", AE_IFREG, 02755, 0 },
		{ "null", AE_IFCHR, 0666, 0 },     { "pipe", AE_IFIFO, 0644, 0 },  { "foreign", AE_IFREG, 0644, 4321 },
		{ "dir", AE_IFDIR, 02775, 4321 },
	};
	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, ents[i].name);
		archive_entry_set_filetype(e, ents[i].type);
		archive_entry_set_perm(e, ents[i].perm);
		archive_entry_set_uid(e, ents[i].uid);
		archive_entry_set_gid(e, ents[i].uid);
		if (ents[i].type == AE_IFCHR)
			archive_entry_set_rdev(e, makedev(1, 3));
		archive_entry_set_size(e, ents[i].type == AE_IFREG ? 2 : 0);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (ents[i].type == AE_IFREG)
			assert_int_equal(archive_write_data(a, "x\n", 2), 2);
		archive_entry_free(e);
	}
	archive_write_free(a);
}

/* By default (finding 2): no setuid/setgid bit, no device node, no fifo,
 * no foreign owner — and the restore dir stays private until the end. */
static void test_extract_hostile_defaults(void **state)
{
	struct fx *f = *state;
	char arc[PATH_MAX], dst[PATH_MAX], p[PATH_MAX], err[1024];
	FMT(arc, "%s/hostile.tar.gz", f->dir);
	make_hostile(arc);
	path_in(f, "dst", dst, sizeof(dst));
	assert_int_equal(mkdir(dst, 0700), 0);
	struct tarball_extract_opts o = { 0 };
	int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct tarball_extract_info info;
	int r = tarball_extract(arc, dfd, &o, NULL, &info, err, sizeof(err));
	close(dfd);
	if (r < 0)
		fail_msg("tarball_extract: %s", err);
	assert_int_equal(info.skipped, 2);  /* null, pipe */
	assert_int_equal(info.stripped, 3); /* suid, sgid, dir */
	struct stat st;
	static const char *const kept[] = { "suid", "sgid", "foreign", "dir" };
	for (size_t i = 0; i < 4; i++) {
		FMT(p, "%s/%s", dst, kept[i]);
		assert_int_equal(lstat(p, &st), 0);
		if (st.st_mode & 06000)
			fail_msg("%s kept mode %o", kept[i], st.st_mode & 07777);
		assert_int_equal(st.st_uid, geteuid());
	}
	FMT(p, "%s/null", dst);
	assert_int_equal(lstat(p, &st), -1);
	FMT(p, "%s/pipe", dst);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0777); /* the "." entry, applied last */
	assert_int_equal(st.st_uid, geteuid());

	/* Asked for (and as root): all of it, as in the archive. */
	if (geteuid() != 0)
		return;
	path_in(f, "dst2", dst, sizeof(dst));
	assert_int_equal(mkdir(dst, 0700), 0);
	r = extract_to(arc, dst, &faithful, err, sizeof(err));
	if (r < 0)
		fail_msg("tarball_extract (faithful): %s", err);
	FMT(p, "%s/suid", dst);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	FMT(p, "%s/null", dst);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	FMT(p, "%s/foreign", dst);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_uid, 4321);
}

/* The checks before anything is extracted: boxd's own file, the size
 * limit, the SHA-256. */
static void test_open_verified(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], arc[PATH_MAX], err[1024];
	path_in(f, "src", src, sizeof(src));
	make_tree(src);
	FMT(arc, "%s/a.tar.zst", f->dir);
	struct tarball_info info;
	assert_int_equal(tarball_create(src, arc, TARBALL_ZSTD, 0, NULL, &info, err, sizeof(err)), 0);
	struct tarball_extract_opts o = { .sha256 = info.sha256, .size = info.size, .require_own = true };
	int fd = -1;
	assert_int_equal(tarball_open_verified(arc, &o, &fd, err, sizeof(err)), 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0); /* rewound for the extraction */
	close(fd);
	o.max_size = info.size - 1;
	assert_int_equal(tarball_open_verified(arc, &o, &fd, err, sizeof(err)), -EFBIG);
	o.max_size = 0;
	char other[TARBALL_SHA256_HEX];
	memcpy(other, info.sha256, sizeof(other));
	other[0] = other[0] == '0' ? '1' : '0';
	o.sha256 = other;
	assert_int_equal(tarball_open_verified(arc, &o, &fd, err, sizeof(err)), -EBADMSG);
	o.sha256 = info.sha256;
	assert_int_equal(chmod(arc, 0666), 0); /* writable by others: not boxd's */
	assert_int_equal(tarball_open_verified(arc, &o, &fd, err, sizeof(err)), -EPERM);
	assert_int_equal(chmod(arc, 0600), 0);
	char hard[PATH_MAX];
	FMT(hard, "%s/hard.tar.zst", f->dir);
	assert_int_equal(link(arc, hard), 0); /* a second link: not boxd's */
	assert_int_equal(tarball_open_verified(arc, &o, &fd, err, sizeof(err)), -EPERM);
	unlink(hard);
	if (geteuid() == 0) {
		assert_int_equal(chown(arc, 65534, 65534), 0);
		assert_int_equal(tarball_open_verified(arc, &o, &fd, err, sizeof(err)), -EPERM);
		assert_int_equal(chown(arc, 0, 0), 0);
	}
	/* Rewritten in place between the check and the extraction (same
	 * inode, by whoever can write it): the extraction hashes what it
	 * reads and fails; what it extracted is for the caller to discard. */
	assert_int_equal(tarball_open_verified(arc, &o, &fd, err, sizeof(err)), 0);
	char other_arc[PATH_MAX], dst[PATH_MAX];
	FMT(other_arc, "%s/hostile.tar.gz", f->dir);
	make_hostile(other_arc);
	FILE *in = fopen(other_arc, "rb"), *out = fopen(arc, "r+b");
	assert_non_null(in);
	assert_non_null(out);
	int c;
	while ((c = fgetc(in)) != EOF)
		fputc(c, out);
	fclose(in);
	fclose(out);
	path_in(f, "rewritten", dst, sizeof(dst));
	assert_int_equal(mkdir(dst, 0700), 0);
	int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(tarball_extract_fd(fd, arc, dfd, &o, NULL, NULL, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "changed while it was extracted"));
	close(dfd);
	close(fd);
	struct stat dst_st;
	assert_int_equal(stat(dst, &dst_st), 0);
	assert_int_equal(dst_st.st_mode & 07777, 0700); /* the "." entry was not applied */
	/* A symlink or a fifo in the archive's place: refused, never waited on. */
	char link_path[PATH_MAX], fifo[PATH_MAX];
	FMT(link_path, "%s/link.tar.zst", f->dir);
	assert_int_equal(symlink(arc, link_path), 0);
	assert_true(tarball_open_verified(link_path, &o, &fd, err, sizeof(err)) < 0);
	FMT(fifo, "%s/fifo.tar.zst", f->dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(tarball_open_verified(fifo, &o, &fd, err, sizeof(err)), -EBADMSG);
}

/* Finding 9: a file with holes is read and stored sparse, and comes back
 * sparse; [backups] max_archive_size stops a backup that grows too big. */
static void test_sparse_and_limit(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], p[PATH_MAX], arc[PATH_MAX], dst[PATH_MAX], err[1024];
	path_in(f, "src", src, sizeof(src));
	assert_int_equal(mkdir(src, 0755), 0);
	FMT(p, "%s/sparse.img", src);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	const int64_t size = 256LL * 1024 * 1024;
	assert_int_equal(ftruncate(fd, size), 0);
	assert_int_equal(pwrite(fd, "head", 4, 0), 4);
	assert_int_equal(pwrite(fd, "middle", 6, size / 2), 6);
	assert_int_equal(pwrite(fd, "tail", 4, size - 4), 4);
	close(fd);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	if ((int64_t)st.st_blocks * 512 >= size)
		skip(); /* no holes on this filesystem */
	FMT(arc, "%s/sparse.tar.zst", f->dir);
	struct tarball_info info;
	assert_int_equal(tarball_create(src, arc, TARBALL_ZSTD, 0, NULL, &info, err, sizeof(err)), 0);
	if (info.data_bytes > 1024 * 1024)
		fail_msg("read %lld bytes of a file with 14 bytes of data", (long long)info.data_bytes);
	path_in(f, "dst", dst, sizeof(dst));
	assert_int_equal(mkdir(dst, 0700), 0);
	assert_int_equal(extract_to(arc, dst, &faithful, err, sizeof(err)), 0);
	FMT(p, "%s/sparse.img", dst);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, size);
	if ((int64_t)st.st_blocks * 512 > 1024 * 1024)
		fail_msg("restored with %lld bytes allocated", (long long)st.st_blocks * 512);
	char buf[8] = "";
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, buf, 6, size / 2), 6);
	assert_memory_equal(buf, "middle", 6);
	assert_int_equal(pread(fd, buf, 4, size - 4), 4);
	assert_memory_equal(buf, "tail", 4);
	close(fd);

	/* The limit: the big (random) file of make_tree does not fit in 1 MiB. */
	char src2[PATH_MAX], out[PATH_MAX];
	path_in(f, "src2", src2, sizeof(src2));
	make_tree(src2);
	path_in(f, "out", out, sizeof(out));
	assert_int_equal(mkdir(out, 0700), 0);
	FMT(arc, "%s/big.tar.zst", out);
	assert_int_equal(tarball_create(src2, arc, TARBALL_ZSTD, 1024 * 1024, NULL, &info, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "max_archive_size"));
	assert_int_equal(count_entries(out, NULL), 0); /* no archive, no temp */
	assert_int_equal(tarball_create(src2, arc, TARBALL_ZSTD, 64 * 1024 * 1024, NULL, &info, err, sizeof(err)), 0);
}

/* backup_key.h: boxd's archives carry a MAC only this state dir's key
 * makes. */
static void test_backup_mac(void **state)
{
	struct fx *f = *state;
	struct boxd_config cfg = { .state_dir = f->dir };
	char mac[BACKUP_MAC_HEX], err[512], key[PATH_MAX];
	const char *sha = "ab12000000000000000000000000000000000000000000000000000000000000";
	assert_int_equal(backup_mac(&cfg, "app", "wiki", sha, 1234, mac, err, sizeof(err)), 0);
	FMT(key, "%s/backup.key", f->dir);
	struct stat st;
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 32);
	assert_true(backup_mac_ok(&cfg, "app", "wiki", sha, 1234, mac));
	char again[BACKUP_MAC_HEX];
	assert_int_equal(backup_mac(&cfg, "app", "wiki", sha, 1234, again, err, sizeof(err)), 0);
	assert_string_equal(mac, again); /* the same key, not a new one */
	/* Any field changed: not boxd's. */
	assert_false(backup_mac_ok(&cfg, "app", "other", sha, 1234, mac));
	assert_false(backup_mac_ok(&cfg, "app", "wiki", sha, 1235, mac));
	assert_false(backup_mac_ok(&cfg, "box", "wiki", sha, 1234, mac));
	assert_false(backup_mac_ok(&cfg, "app", "wiki", sha, 1234, NULL));
	assert_false(backup_mac_ok(&cfg, "app", "wiki", sha, 1234, "00"));
	/* A key others can read is not trusted. */
	assert_int_equal(chmod(key, 0644), 0);
	assert_false(backup_mac_ok(&cfg, "app", "wiki", sha, 1234, mac));
	/* Another state dir, another key. */
	char other_dir[PATH_MAX];
	path_in(f, "other", other_dir, sizeof(other_dir));
	assert_int_equal(mkdir(other_dir, 0700), 0);
	struct boxd_config other = { .state_dir = other_dir };
	assert_int_equal(backup_mac(&other, "app", "x", sha, 1, again, err, sizeof(err)), 0);
	assert_false(backup_mac_ok(&other, "app", "wiki", sha, 1234, mac));
}

/* ---- box state ------------------------------------------------------------------ */

static void test_box_state_sqlite(void **state)
{
	struct fx *f = *state;
	char db[PATH_MAX], out[PATH_MAX], dump[PATH_MAX], err[512];
	path_in(f, "boxd.db", db, sizeof(db));
	path_in(f, "dump", out, sizeof(out));
	assert_int_equal(mkdir(out, 0700), 0);
	struct store_options o = { .backend = STORE_BACKEND_SQLITE, .sqlite_path = db };
	struct store *s;
	assert_int_equal(store_open(&o, &s, err, sizeof(err)), 0);
	assert_true(store_run(s, "INSERT INTO apps (id, image, env, install_state, run_state, health, created_at, "
				 "updated_at) VALUES ('wiki', 'img', '{}', 'installed', 'running', 'ok', 1, 2)",
			      NULL) == 1);
	/* Another connection in the middle of a read transaction does not
	 * hold the dump up. */
	assert_int_equal(store_begin(s, false), 0);
	int64_t n;
	assert_int_equal(store_query_int64(s, &n, "SELECT COUNT(*) FROM apps", NULL), 0);

	struct boxd_config cfg = { 0 };
	config_set(&cfg.store_backend, "sqlite");
	config_set(&cfg.sqlite_path, db);
	config_set(&cfg.state_dir, f->dir);
	const char *name = NULL;
	int r = box_state_dump(&cfg, out, &name, err, sizeof(err));
	if (r < 0)
		fail_msg("box_state_dump: %s", err);
	store_rollback(s);
	store_close(s);
	assert_string_equal(name, "boxd.db");
	assert_int_equal(count_entries(out, NULL), 1);

	FMT(dump, "%s/boxd.db", out);
	sqlite3 *copy;
	assert_int_equal(sqlite3_open_v2(dump, &copy, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(copy, "SELECT id FROM apps", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wiki");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(copy, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "delete");
	sqlite3_finalize(st);
	sqlite3_close(copy);
	config_release(&cfg);
}

/* The logical export on MariaDB and PostgreSQL, when the test env names
 * their servers (BOXD_TEST_MYSQL_DSN, BOXD_TEST_PG_DSN); skipped otherwise.
 * A fresh database per backend, dropped at the end. */


static void check_logical_dump(struct fx *f, enum store_backend backend, const char *admin_dsn)
{
	char db[64], dsn[1024], sql[256], err[512], out[PATH_MAX], file[PATH_MAX];
	FMT(db, "boxd_test_backups_%d_%d", (int)getpid(), (int)backend);
	struct store_options ao = { .backend = backend, .dsn = admin_dsn, .no_migrate = true };
	struct store *admin;
	if (store_open(&ao, &admin, err, sizeof(err)) < 0)
		fail_msg("cannot connect to %s: %s", admin_dsn, err);
	FMT(sql, "CREATE DATABASE %s%s", db,
	    backend == STORE_BACKEND_MYSQL ? " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" : "");
	assert_true(store_run(admin, sql, NULL) >= 0);
	fixture_dsn_for(admin_dsn, db, dsn, sizeof(dsn));

	struct store_options o = { .backend = backend, .dsn = dsn };
	struct store *s;
	int r = store_open(&o, &s, err, sizeof(err));
	if (r == 0) {
		assert_true(store_run(s, "INSERT INTO apps (id, image, env, install_state, run_state, health, created_at, "
					 "updated_at) VALUES ('wiki', 'img', '{\"K\":\"v \\u00e9\"}', 'installed', 'running', "
					 "'ok', 1, 2)",
				      NULL) == 1);
		struct backup b = { .kind = "full", .task_id = 3, .format = "zstd", .state = "ok", .size = 5 };
		int64_t id;
		assert_int_equal(backup_insert(s, &b, &id), 0);
		store_close(s);
	}
	struct boxd_config cfg = { 0 };
	config_set(&cfg.store_backend, store_backend_name(backend));
	config_set(&cfg.dsn, dsn);
	config_set(&cfg.state_dir, f->dir);
	FMT(out, "%s/dump-%d", f->dir, (int)backend);
	assert_int_equal(mkdir(out, 0700), 0);
	const char *name = NULL;
	int dr = r == 0 ? box_state_dump(&cfg, out, &name, err, sizeof(err)) : r;
	config_release(&cfg);
	FMT(sql, "DROP DATABASE IF EXISTS %s%s", db, backend == STORE_BACKEND_POSTGRES ? " WITH (FORCE)" : "");
	store_run(admin, sql, NULL);
	store_close(admin);
	if (r < 0)
		fail_msg("store_open(%s): %s", dsn, err);
	if (dr < 0)
		fail_msg("box_state_dump: %s", err);
	assert_string_equal(name, "boxd-state.jsonl");
	assert_int_equal(count_entries(out, NULL), 1);

	FMT(file, "%s/%s", out, name);
	FILE *fp = fopen(file, "r");
	assert_non_null(fp);
	char line[8192];
	int lines = 0, apps = 0, backups = 0;
	bool tasks_columns = false;
	while (fgets(line, sizeof(line), fp)) {
		json_error_t je;
		json_t *v = json_loads(line, 0, &je);
		if (!v)
			fail_msg("line %d is not JSON: %s", lines + 1, je.text);
		if (lines == 0) {
			assert_int_equal(json_integer_value(json_object_get(v, "boxdStateExport")), 1);
			assert_string_equal(json_string_value(json_object_get(v, "backend")), store_backend_name(backend));
			assert_true(json_integer_value(json_object_get(v, "schemaVersion")) >= 4);
		}
		const char *t = json_string_value(json_object_get(v, "table"));
		json_t *row = json_object_get(v, "row");
		if (t && !strcmp(t, "tasks") && json_object_get(v, "columns"))
			tasks_columns = true;
		if (t && !strcmp(t, "apps") && row) {
			apps++;
			assert_string_equal(json_string_value(json_object_get(row, "id")), "wiki");
			assert_string_equal(json_string_value(json_object_get(row, "env")), "{\"K\":\"v \\u00e9\"}");
			assert_int_equal(json_integer_value(json_object_get(row, "updated_at")), 2);
			assert_true(json_is_null(json_object_get(row, "data_dir")));
		}
		if (t && !strcmp(t, "backups") && row) {
			backups++;
			assert_true(json_is_null(json_object_get(row, "full_backup_id")));
			assert_int_equal(json_integer_value(json_object_get(row, "task_id")), 3);
		}
		json_decref(v);
		lines++;
	}
	fclose(fp);
	assert_int_equal(apps, 1);
	assert_int_equal(backups, 1);
	assert_true(tasks_columns); /* an empty table still names its columns */
}

static void test_box_state_mysql(void **state)
{
	const char *dsn = getenv("BOXD_TEST_MYSQL_DSN");
	if (!dsn || !*dsn)
		skip();
	check_logical_dump(*state, STORE_BACKEND_MYSQL, dsn);
}

static void test_box_state_postgres(void **state)
{
	const char *dsn = getenv("BOXD_TEST_PG_DSN");
	if (!dsn || !*dsn)
		skip();
	check_logical_dump(*state, STORE_BACKEND_POSTGRES, dsn);
}

/* ---- rows and retention ------------------------------------------------------------ */

struct spec {
	int64_t id;
	const char *kind;
	const char *app;
	int64_t full;
	const char *state;
	int64_t at;
};

static struct backup *make_rows(const struct spec *sp, size_t n)
{
	struct backup *b = calloc(n, sizeof(*b));
	for (size_t i = 0; i < n; i++)
		b[i] = (struct backup){ .id = sp[i].id, .kind = (char *)sp[i].kind, .app_id = (char *)sp[i].app,
					.full_backup_id = sp[i].full, .state = (char *)sp[i].state, .created_at = sp[i].at };
	return b;
}

static bool has(const int64_t *ids, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Full backups F1 < F2 < F3 < F4 (ok), F0 failed, F5 creating. Apps a and
 * b in every full backup; app c only in F1 (uninstalled since); app d in
 * F2 and a newer standalone backup; app e's newest archive is in the
 * failed F0. */
static const struct spec scenario[] = {
	{ 1, "full", NULL, 0, "ok", 100 },     { 2, "box", NULL, 1, "ok", 101 },
	{ 3, "app", "a", 1, "ok", 102 },       { 4, "app", "b", 1, "ok", 103 },
	{ 5, "app", "c", 1, "ok", 104 },       { 10, "full", NULL, 0, "ok", 200 },
	{ 11, "box", NULL, 10, "ok", 201 },    { 12, "app", "a", 10, "ok", 202 },
	{ 13, "app", "b", 10, "ok", 203 },     { 14, "app", "d", 10, "ok", 204 },
	{ 15, "app", "d", 0, "ok", 250 },      { 20, "full", NULL, 0, "ok", 300 },
	{ 21, "box", NULL, 20, "ok", 301 },    { 22, "app", "a", 20, "ok", 302 },
	{ 23, "app", "b", 20, "ok", 303 },     { 30, "full", NULL, 0, "ok", 400 },
	{ 31, "box", NULL, 30, "ok", 401 },    { 32, "app", "a", 30, "ok", 402 },
	{ 33, "app", "b", 30, "ok", 403 },     { 40, "full", NULL, 0, "failed", 450 },
	{ 41, "box", NULL, 40, "ok", 451 },    { 42, "app", "e", 40, "ok", 452 },
	{ 43, "app", "a", 40, "ok", 453 },     { 50, "full", NULL, 0, "creating", 500 },
	{ 51, "box", NULL, 50, "ok", 501 },    { 52, "app", "a", 50, "ok", 502 },
	{ 60, "app", "b", 0, "ok", 50 },
};
#define N_SCENARIO (sizeof(scenario) / sizeof(scenario[0]))

static void check_scenario_plan(const struct retention_plan *p)
{
	/* Kept: F3, F4 (keep 2), the creating F5 and everything in them. */
	static const int64_t kept[] = { 20, 21, 22, 23, 30, 31, 32, 33, 50, 51, 52, 15, 60 };
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		if (has(p->delete_ids, p->n_delete, kept[i]) || has(p->detach_ids, p->n_detach, kept[i]))
			fail_msg("backup %lld should be kept as it is", (long long)kept[i]);
	}
	/* Deleted: F1, F2, failed F0 with their box states and app archives... */
	static const int64_t gone[] = { 1, 2, 3, 4, 10, 11, 12, 13, 14, 40, 41, 43 };
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		if (!has(p->delete_ids, p->n_delete, gone[i]))
			fail_msg("backup %lld should be deleted", (long long)gone[i]);
	/* ...except the newest good backup of c (in F1) and of e (in the
	 * failed F0): detached and kept. d's newest is standalone (15), so
	 * its archive in F2 goes. */
	assert_int_equal(p->n_detach, 2);
	assert_true(has(p->detach_ids, p->n_detach, 5));
	assert_true(has(p->detach_ids, p->n_detach, 42));
	assert_false(has(p->delete_ids, p->n_delete, 5));
	assert_false(has(p->delete_ids, p->n_delete, 42));
	assert_int_equal(p->n_delete, sizeof(gone) / sizeof(gone[0]));
	/* Archives go before their full backup's row. */
	size_t pos_f1 = 0, pos_a1 = 0;
	for (size_t i = 0; i < p->n_delete; i++) {
		if (p->delete_ids[i] == 1)
			pos_f1 = i;
		if (p->delete_ids[i] == 3)
			pos_a1 = i;
	}
	assert_true(pos_a1 < pos_f1);
}

static void test_retention_plan(void **state)
{
	(void)state;
	struct backup *rows = make_rows(scenario, N_SCENARIO);
	struct retention_plan p;
	assert_int_equal(backup_retention_plan(rows, N_SCENARIO, 2, &p), 0);
	check_scenario_plan(&p);
	retention_plan_release(&p);

	/* keep 1, and every app's only backups are in full backups: the newest
	 * of each app must survive whatever keep says. */
	assert_int_equal(backup_retention_plan(rows, N_SCENARIO, 1, &p), 0);
	static const char *const apps[] = { "a", "b", "c", "d", "e" };
	for (size_t k = 0; k < sizeof(apps) / sizeof(apps[0]); k++) {
		int64_t newest = 0, at = -1;
		for (size_t i = 0; i < N_SCENARIO; i++)
			if (!strcmp(scenario[i].kind, "app") && !strcmp(scenario[i].app, apps[k]) && scenario[i].at > at) {
				at = scenario[i].at;
				newest = scenario[i].id;
			}
		if (has(p.delete_ids, p.n_delete, newest))
			fail_msg("keep 1 deletes %lld, the newest backup of app %s", (long long)newest, apps[k]);
	}
	retention_plan_release(&p);

	/* Nothing to do with a large keep (only the failed one goes, minus
	 * e's archive). */
	assert_int_equal(backup_retention_plan(rows, N_SCENARIO, 100, &p), 0);
	assert_int_equal(p.n_delete, 3); /* 40, 41, 43 */
	assert_int_equal(p.n_detach, 1); /* 42 */
	retention_plan_release(&p);
	free(rows);

	/* Empty input. */
	assert_int_equal(backup_retention_plan(NULL, 0, 3, &p), 0);
	assert_int_equal(p.n_delete + p.n_detach, 0);
	retention_plan_release(&p);
}

/* The same scenario through a real store: rows written with
 * backup_insert() and read back with backup_list() give the same plan. */
static void test_rows_and_retention_in_store(void **state)
{
	struct fx *f = *state;
	char db[PATH_MAX], err[512];
	path_in(f, "boxd.db", db, sizeof(db));
	struct store_options o = { .backend = STORE_BACKEND_SQLITE, .sqlite_path = db };
	struct store *s;
	assert_int_equal(store_open(&o, &s, err, sizeof(err)), 0);
	/* Ids are assigned by the store: map the scenario's to the real ones. */
	int64_t real[64] = { 0 };
	for (size_t i = 0; i < N_SCENARIO; i++) {
		int64_t full = 0;
		for (size_t j = 0; j < i; j++)
			if (scenario[j].id == scenario[i].full)
				full = real[j];
		struct backup b = { .kind = (char *)scenario[i].kind, .app_id = (char *)scenario[i].app, .task_id = 7,
				    .path = "/x", .format = "zstd", .sha256 = "00", .size = 10,
				    .created_at = scenario[i].at, .state = (char *)scenario[i].state,
				    .full_backup_id = full };
		assert_int_equal(backup_insert(s, &b, &real[i]), 0);
	}
	struct backup *all;
	size_t n;
	assert_int_equal(backup_list(s, NULL, &all, &n), 0);
	assert_int_equal(n, N_SCENARIO);
	assert_true(all[0].created_at >= all[n - 1].created_at); /* newest first */
	/* Translate back to scenario ids and plan. */
	for (size_t i = 0; i < n; i++) {
		int64_t id = 0, full = 0;
		for (size_t j = 0; j < N_SCENARIO; j++) {
			if (real[j] == all[i].id)
				id = scenario[j].id;
			if (all[i].full_backup_id && real[j] == all[i].full_backup_id)
				full = scenario[j].id;
		}
		all[i].id = id;
		all[i].full_backup_id = full;
	}
	struct retention_plan p;
	assert_int_equal(backup_retention_plan(all, n, 2, &p), 0);
	check_scenario_plan(&p);
	retention_plan_release(&p);
	backup_list_free(all, n);

	/* Filters. */
	struct backup_filter fa = { .app_id = "a" };
	assert_int_equal(backup_list(s, &fa, &all, &n), 0);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(all[i].app_id, "a");
	backup_list_free(all, n);
	struct backup_filter ff = { .kind = "full" };
	assert_int_equal(backup_list(s, &ff, &all, &n), 0);
	assert_int_equal(n, 6);
	backup_list_free(all, n);

	/* Detach, delete, get. */
	struct backup b;
	assert_int_equal(backup_detach(s, real[4]), 0);
	assert_int_equal(backup_get(s, real[4], &b), 0);
	assert_int_equal(b.full_backup_id, 0);
	assert_string_equal(b.app_id, "c");
	json_t *j = backup_to_json(&b);
	assert_true(json_is_null(json_object_get(j, "fullBackupId")));
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "app");
	json_decref(j);
	backup_release(&b);
	assert_int_equal(backup_delete(s, real[4]), 0);
	assert_int_equal(backup_get(s, real[4], &b), -ENOENT);
	assert_int_equal(backup_delete(s, real[4]), -ENOENT);

	/* A creating full backup of a task that is not active is stale. */
	int marked = -1;
	assert_int_equal(backup_mark_stale_failed(s, &marked), 0);
	assert_int_equal(marked, 1);
	assert_int_equal(backup_finish_full(s, real[23], "ok", "/y.json", "ab", 99), 0);
	assert_int_equal(backup_get(s, real[23], &b), 0);
	assert_string_equal(b.state, "ok");
	assert_string_equal(b.path, "/y.json");
	assert_int_equal(b.size, 99);
	backup_release(&b);
	store_close(s);
}

/* ---- the app record, progress, encryption (issue 15) ------------------------------ */

struct progress_seen {
	int calls;
	int64_t last;
	bool monotonic;
};

static void on_progress(void *userdata, int64_t bytes)
{
	struct progress_seen *p = userdata;
	if (bytes < p->last)
		p->monotonic = false;
	p->last = bytes;
	p->calls++;
}

/* A record travels as the first entry: tarball_read_record() gives it
 * back, extraction leaves it out, an archive without one says -ENOENT.
 * The tree size known before equals the data read, and progress goes up
 * to it. */
static void test_record_and_progress(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], arc[PATH_MAX], old[PATH_MAX], dst[PATH_MAX], err[1024];
	path_in(f, "src", src, sizeof(src));
	path_in(f, "rec.tar.zst", arc, sizeof(arc));
	path_in(f, "old.tar.zst", old, sizeof(old));
	path_in(f, "restored", dst, sizeof(dst));
	make_tree(src);
	int64_t total = 0, entries = 0;
	assert_int_equal(tarball_tree_size(src, &total, &entries, err, sizeof(err)), 0);
	const char *record = "{\"boxdAppRecord\":1,\"id\":\"wiki\",\"image\":\"img:1\"}";
	struct progress_seen seen = { .monotonic = true };
	struct tarball_create_opts o = { .fmt = TARBALL_ZSTD, .record = record, .progress = on_progress,
					  .userdata = &seen };
	struct tarball_info info;
	assert_int_equal(tarball_create_ex(src, arc, &o, NULL, &info, err, sizeof(err)), 0);
	assert_int_equal(total, info.data_bytes);
	assert_int_equal(entries + 1, info.entries); /* the record is an entry too */
	assert_true(seen.calls >= 3); /* every MiB of the 3 MiB file, and the end */
	assert_true(seen.monotonic);
	assert_int_equal(seen.last, total);

	int fd;
	struct tarball_extract_opts xo = { .sha256 = info.sha256, .size = info.size };
	assert_int_equal(tarball_open_verified(arc, &xo, &fd, err, sizeof(err)), 0);
	char *got = NULL;
	assert_int_equal(tarball_read_record(fd, arc, &xo, &got, err, sizeof(err)), 0);
	assert_string_equal(got, record);
	free(got);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	assert_int_equal(mkdir(dst, 0700), 0);
	int dfd = open(dst, O_RDONLY | O_DIRECTORY);
	assert_int_equal(tarball_extract_fd(fd, arc, dfd, &faithful, NULL, NULL, err, sizeof(err)), 0);
	close(dfd);
	close(fd);
	assert_same_tree(src, dst, true); /* no boxd-app.json in it */

	assert_int_equal(tarball_create(src, old, TARBALL_GZIP, 0, NULL, &info, err, sizeof(err)), 0);
	fd = open(old, O_RDONLY);
	assert_int_equal(tarball_read_record(fd, old, &xo, &got, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no app record"));
	close(fd);
}

/* An encrypted archive round trips; the app id and the data are not in
 * its bytes; a wrong key, no key, a flipped byte and a cut are refused
 * by tarball_open_verified() — before anything is extracted — even
 * without a SHA-256 to compare (a restore from elsewhere). */
static void test_encrypted_archive(void **state)
{
	struct fx *f = *state;
	char src[PATH_MAX], arc[PATH_MAX], dst[PATH_MAX], err[1024];
	path_in(f, "src", src, sizeof(src));
	path_in(f, "enc.tar.zst.enc", arc, sizeof(arc));
	path_in(f, "restored", dst, sizeof(dst));
	make_tree(src);
	struct backup_secret s, wrong, none = { 0 };
	assert_int_equal(backup_secret_set(BACKUP_KEY_PASSPHRASE, "secret words", 12, &s, err, sizeof(err)), 0);
	assert_int_equal(backup_secret_set(BACKUP_KEY_PASSPHRASE, "other words", 11, &wrong, err, sizeof(err)), 0);
	s.scrypt_log2n = wrong.scrypt_log2n = 10;
	const char *record = "{\"boxdAppRecord\":1,\"id\":\"wiki-private-id\"}";
	struct tarball_create_opts o = { .fmt = TARBALL_ZSTD, .record = record, .secret = &s };
	struct tarball_info info;
	assert_int_equal(tarball_create_ex(src, arc, &o, NULL, &info, err, sizeof(err)), 0);
	char sum[65];
	sha256sum_of(arc, sum);
	assert_string_equal(sum, info.sha256);
	/* Nothing readable inside: neither the record nor a file's text. */
	FILE *fp = fopen(arc, "rb");
	char *bytes = malloc((size_t)info.size);
	assert_int_equal(fread(bytes, 1, (size_t)info.size, fp), (size_t)info.size);
	fclose(fp);
	assert_memory_equal(bytes, BACKUP_CRYPT_MAGIC, 8);
	assert_null(memmem(bytes, (size_t)info.size, "wiki-private-id", 15));
	assert_null(memmem(bytes, (size_t)info.size, "hello, world", 12));

	int fd;
	struct tarball_extract_opts xo = { .sha256 = info.sha256, .size = info.size, .secret = &s };
	assert_int_equal(tarball_open_verified(arc, &xo, &fd, err, sizeof(err)), 0);
	char *got = NULL;
	assert_int_equal(tarball_read_record(fd, arc, &xo, &got, err, sizeof(err)), 0);
	assert_string_equal(got, record);
	free(got);
	assert_int_equal(mkdir(dst, 0700), 0);
	int dfd = open(dst, O_RDONLY | O_DIRECTORY);
	struct tarball_extract_opts fx = faithful;
	fx.secret = &s;
	fx.sha256 = info.sha256;
	fx.size = info.size;
	assert_int_equal(tarball_extract_fd(fd, arc, dfd, &fx, NULL, NULL, err, sizeof(err)), 0);
	close(dfd);
	close(fd);
	assert_same_tree(src, dst, true);

	/* Refusals, without a SHA-256 to lean on. */
	struct tarball_extract_opts nosum = { .secret = &wrong };
	assert_int_equal(tarball_open_verified(arc, &nosum, &fd, err, sizeof(err)), -EKEYREJECTED);
	assert_non_null(strstr(err, "wrong backup passphrase"));
	nosum.secret = &none;
	assert_int_equal(tarball_open_verified(arc, &nosum, &fd, err, sizeof(err)), -ENOKEY);
	nosum.secret = NULL;
	assert_int_equal(tarball_open_verified(arc, &nosum, &fd, err, sizeof(err)), -ENOKEY);
	nosum.secret = &s;
	int64_t offs[] = { 100, info.size / 2, info.size - 1 };
	for (size_t i = 0; i < 3; i++) {
		char b = bytes[offs[i]] ^ 1;
		int wfd = open(arc, O_WRONLY);
		assert_int_equal(pwrite(wfd, &b, 1, offs[i]), 1);
		int r = tarball_open_verified(arc, &nosum, &fd, err, sizeof(err));
		if (r != -EBADMSG)
			fail_msg("a flipped byte at %lld: %d (%s)", (long long)offs[i], r, err);
		assert_non_null(strstr(err, "does not authenticate"));
		assert_int_equal(pwrite(wfd, bytes + offs[i], 1, offs[i]), 1);
		close(wfd);
	}
	assert_int_equal(truncate(arc, info.size - 20), 0);
	assert_int_equal(tarball_open_verified(arc, &nosum, &fd, err, sizeof(err)), -EBADMSG);
	free(bytes);
	backup_secret_release(&s);
	backup_secret_release(&wrong);
}

/* The record: made from an app, parsed back; another app's, a bad one,
 * and one without version are refused. */
static void test_app_record(void **state)
{
	(void)state;
	struct boxd_config cfg = { .appsdata_root = "/var/lib/boxd/appsdata" };
	struct app a = { .id = "wiki", .image = "img:1", .env = "{\"A\":\"1\",\"B\":\"two\"}",
			 .data_dir = "/srv/wiki", .install_state = "installed", .run_state = "running",
			 .health = "healthy", .ports = "[{\"container\":80,\"host\":18080,\"protocol\":\"tcp\"}]",
			 .domains = "[\"wiki.example.com\"]", .http_port = 8080 };
	char *text = app_record_make(&cfg, &a);
	assert_non_null(text);
	assert_null(strstr(text, "runState"));
	assert_null(strstr(text, "installationState"));
	struct app_record r;
	char err[256];
	assert_int_equal(app_record_parse(text, "wiki", &r, err, sizeof(err)), 0);
	assert_string_equal(r.id, "wiki");
	assert_string_equal(r.image, "img:1");
	assert_string_equal(r.env_json, "{\"A\":\"1\",\"B\":\"two\"}");
	assert_string_equal(r.data_dir, "/srv/wiki");
	assert_int_equal(json_array_size(r.ports), 1);
	assert_int_equal(json_array_size(r.domains), 1);
	assert_int_equal(r.http_port, 8080);
	app_record_release(&r);
	assert_int_equal(app_record_parse(text, "blog", &r, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "of app wiki, not blog"));
	free(text);
	a.data_dir = NULL; /* the default dir: not carried over as a custom one */
	text = app_record_make(&cfg, &a);
	assert_int_equal(app_record_parse(text, "wiki", &r, err, sizeof(err)), 0);
	assert_null(r.data_dir);
	app_record_release(&r);
	free(text);
	static const char *const bad[] = {
		"not json", "{\"id\":\"wiki\",\"image\":\"x\"}",
		"{\"boxdAppRecord\":1,\"id\":\"wiki\"}",
		"{\"boxdAppRecord\":1,\"id\":\"wiki\",\"image\":\"x\",\"env\":{\"A\":1}}",
		"{\"boxdAppRecord\":1,\"id\":\"wiki\",\"image\":\"x\",\"customDataDir\":true,\"dataDir\":\"rel\"}",
		"{\"boxdAppRecord\":1,\"id\":\"../x\",\"image\":\"x\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (app_record_parse(bad[i], NULL, &r, err, sizeof(err)) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip_zstd),
		T(test_round_trip_gzip),
		T(test_deterministic),
		T(test_sha256_matches_sha256sum),
		T(test_corrupt_detected),
		T(test_extract_refuses_escape),
		T(test_no_temp_left),
		T(test_extract_hostile_defaults),
		T(test_open_verified),
		T(test_sparse_and_limit),
		T(test_backup_mac),
		T(test_box_state_sqlite),
		T(test_box_state_mysql),
		T(test_box_state_postgres),
		T(test_retention_plan),
		T(test_rows_and_retention_in_store),
		T(test_record_and_progress),
		T(test_encrypted_archive),
		T(test_app_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
