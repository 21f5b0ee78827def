/* tarball.c — see tarball.h.
 *
 * Writing: the tree is walked with openat()/fstatat(AT_SYMLINK_NOFOLLOW)
 * from a directory fd, so a symlink planted in a data dir is archived as a
 * symlink and never followed. libarchive compresses and frames; its output
 * goes through write_block(), which hashes and counts every byte on its
 * way into the temp file, so the SHA-256 in the metadata is the hash of
 * exactly what reached the disk without reading the file again.
 *
 * Cleanup style: one forward `goto out` per function.
 */
#include "tarball.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define IO_CHUNK (1024 * 1024)

int tarball_format_from_string(const char *s, enum tarball_format *ret)
{
	if (strcmp(s, "zstd") == 0 || strcmp(s, "zst") == 0)
		*ret = TARBALL_ZSTD;
	else if (strcmp(s, "gzip") == 0 || strcmp(s, "gz") == 0)
		*ret = TARBALL_GZIP;
	else
		return -EINVAL;
	return 0;
}

const char *tarball_format_name(enum tarball_format f) { return f == TARBALL_GZIP ? "gzip" : "zstd"; }
const char *tarball_format_ext(enum tarball_format f) { return f == TARBALL_GZIP ? ".tar.gz" : ".tar.zst"; }

/* "<fmt with arg>: <strerror(e)>" into err; returns -e. */
static int fail(char *err, size_t errlen, int e, const char *fmt, const char *arg)
{
	int n = snprintf(err, errlen, fmt, arg);
	if (n >= 0 && (size_t)n < errlen)
		snprintf(err + n, errlen - (size_t)n, ": %s", strerror(e));
	return -e;
}

static bool cancelled(const volatile sig_atomic_t *cancel) { return cancel && *cancel; }

static void to_hex(const unsigned char *md, unsigned n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- the temp file ------------------------------------------------------------ */

/* Split `path` into its directory (malloc'ed into *ret_dir) and make the
 * temp name ".BASE.tmp-XXXXXX" beside it in tmpl. */
static int temp_name_for(const char *path, char *tmpl, size_t len, char **ret_dir)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char *dir = slash ? strndup(path, (size_t)(slash == path ? 1 : slash - path)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	if (!*base || snprintf(tmpl, len, "%s/.%s.tmp-XXXXXX", dir, base) >= (int)len) {
		free(dir);
		return -ENAMETOOLONG;
	}
	*ret_dir = dir;
	return 0;
}

/* fsync the temp file, rename it over `path`, fsync the directory. */
static int commit_temp(int fd, const char *tmp, const char *path, const char *dir, char *err, size_t errlen)
{
	if (fsync(fd) < 0)
		return fail(err, errlen, errno, "cannot fsync %s", tmp);
	if (rename(tmp, path) < 0)
		return fail(err, errlen, errno, "cannot rename the temp file to %s", path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return fail(err, errlen, e, "cannot fsync directory %s", dir);
	}
	close(dfd);
	return 0;
}

int tarball_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	char *dir = NULL;
	int fd = -1;
	int r = temp_name_for(path, tmp, sizeof(tmp), &dir);
	if (r < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
		return r;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = fail(err, errlen, errno, "cannot create a temp file in %s", dir);
		tmp[0] = '\0';
		goto out;
	}
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail(err, errlen, errno, "cannot write %s", tmp);
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	r = commit_temp(fd, tmp, path, dir, err, errlen);
	if (r == 0)
		tmp[0] = '\0'; /* renamed: nothing to remove */
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	free(dir);
	return r;
}

/* ---- writing an archive ---------------------------------------------------------- */

struct writer {
	struct archive *a;
	struct archive_entry_linkresolver *links;
	int fd;
	EVP_MD_CTX *md;
	int64_t size;
	int64_t data_bytes;
	int64_t entries;
	const volatile sig_atomic_t *cancel;
	char *buf;
	char *err;
	size_t errlen;
};

static la_ssize_t write_block(struct archive *a, void *userdata, const void *buf, size_t len)
{
	struct writer *w = userdata;
	const char *p = buf;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(w->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			archive_set_error(a, errno, "cannot write the archive");
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	EVP_DigestUpdate(w->md, buf, len);
	w->size += (int64_t)len;
	return (la_ssize_t)len;
}

static int archive_fail(struct writer *w, const char *what, const char *path)
{
	int e = archive_errno(w->a);
	snprintf(w->err, w->errlen, "%s %s: %s", what, path, archive_error_string(w->a) ? archive_error_string(w->a) : "?");
	return e > 0 ? -e : -EIO;
}

/* Copy the file data of an open regular file: exactly `size` bytes (a file
 * that shrank meanwhile is padded with zeros by libarchive; one that grew is
 * cut at the size the header announced). */
static int write_data(struct writer *w, int fd, int64_t size, const char *rel)
{
	int64_t left = size;
	while (left > 0) {
		if (cancelled(w->cancel))
			return -ECANCELED;
		size_t want = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
		ssize_t n = read(fd, w->buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(w->err, w->errlen, errno, "cannot read %s", rel);
		if (n == 0)
			break;
		if (archive_write_data(w->a, w->buf, (size_t)n) < 0)
			return archive_fail(w, "cannot archive", rel);
		w->data_bytes += n;
		left -= n;
	}
	return 0;
}

/* Write one entry (and, for a regular file, its data read from `fd`). */
static int write_entry(struct writer *w, const char *rel, const struct stat *st, const char *link_target, int fd)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, rel);
	archive_entry_copy_stat(e, st);
	archive_entry_set_uname(e, NULL);
	archive_entry_set_gname(e, NULL);
	/* Reading the tree changes atimes, and ctime cannot be restored: keep
	 * neither, so that the same tree gives the same archive. */
	archive_entry_unset_atime(e);
	archive_entry_unset_ctime(e);
	archive_entry_unset_birthtime(e);
	if (!S_ISREG(st->st_mode))
		archive_entry_set_size(e, 0);
	if (link_target)
		archive_entry_set_symlink(e, link_target);
	/* Hard links: the tar strategy hands back the first occurrence as is and
	 * every later one as a link to it (size 0, no data). */
	struct archive_entry *spare = NULL;
	if (S_ISREG(st->st_mode) && st->st_nlink > 1)
		archive_entry_linkify(w->links, &e, &spare);
	if (!e) /* not with the tar strategy; kept for safety */
		return 0;
	int r = 0;
	if (archive_write_header(w->a, e) < ARCHIVE_WARN) {
		r = archive_fail(w, "cannot archive", rel);
	} else {
		w->entries++;
		if (fd >= 0 && archive_entry_size(e) > 0 && !archive_entry_hardlink(e))
			r = write_data(w, fd, archive_entry_size(e), rel);
	}
	archive_entry_free(e);
	archive_entry_free(spare);
	return r;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The names in the directory open as dfd, sorted (for archives that do not
 * depend on readdir order). */
static int list_dir(int dfd, const char *rel, char ***ret, size_t *ret_n, char *err, size_t errlen)
{
	int fd2 = dup(dfd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!d) {
		int e = errno;
		if (fd2 >= 0)
			close(fd2);
		return fail(err, errlen, e, "cannot read directory %s", rel);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			names = grown;
		}
		if (!(names[n] = strdup(de->d_name))) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	if (r == 0 && errno)
		r = fail(err, errlen, errno, "cannot read directory %s", rel);
	closedir(d);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return r;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*ret = names;
	*ret_n = n;
	return 0;
}

/* Archive the contents of the directory open as `dfd`, whose path in the
 * archive is `rel` ("." for the top). */
static int walk(struct writer *w, int dfd, const char *rel)
{
	char **names = NULL;
	size_t n = 0;
	int r = list_dir(dfd, rel, &names, &n, w->err, w->errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (cancelled(w->cancel)) {
			r = -ECANCELED;
			break;
		}
		char child[PATH_MAX];
		if (snprintf(child, sizeof(child), "%s%s%s", strcmp(rel, ".") == 0 ? "" : rel,
			     strcmp(rel, ".") == 0 ? "" : "/", names[i]) >= (int)sizeof(child)) {
			r = fail(w->err, w->errlen, ENAMETOOLONG, "cannot archive %s/...", rel);
			break;
		}
		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* vanished while we walked: a live tree */
			r = fail(w->err, w->errlen, errno, "cannot stat %s", child);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				if (errno == ENOENT)
					continue;
				r = fail(w->err, w->errlen, errno, "cannot open directory %s", child);
				break;
			}
			r = write_entry(w, child, &st, NULL, -1);
			if (r == 0)
				r = walk(w, sub, child);
			close(sub);
		} else if (S_ISREG(st.st_mode)) {
			int fd = openat(dfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd < 0) {
				if (errno == ENOENT)
					continue;
				r = fail(w->err, w->errlen, errno, "cannot open %s", child);
				break;
			}
			/* The size and identity of what we opened, not of what the
			 * name pointed at a moment ago. */
			if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
				close(fd);
				continue;
			}
			r = write_entry(w, child, &st, NULL, fd);
			close(fd);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(dfd, names[i], target, sizeof(target) - 1);
			if (len < 0) {
				if (errno == ENOENT)
					continue;
				r = fail(w->err, w->errlen, errno, "cannot read symlink %s", child);
				break;
			}
			target[len] = '\0';
			r = write_entry(w, child, &st, target, -1);
		} else if (!S_ISSOCK(st.st_mode)) {
			r = write_entry(w, child, &st, NULL, -1); /* fifo, device node */
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int tarball_create(const char *src_dir, const char *dest_path, enum tarball_format fmt,
		   const volatile sig_atomic_t *cancel, struct tarball_info *ret, char *err, size_t errlen)
{
	char tmp[PATH_MAX] = "";
	char *dir = NULL;
	int src = -1, r;
	struct writer w = { .fd = -1, .cancel = cancel, .err = err, .errlen = errlen };

	src = open(src_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0)
		return fail(err, errlen, errno, "cannot open directory %s", src_dir);
	r = temp_name_for(dest_path, tmp, sizeof(tmp), &dir);
	if (r < 0) {
		snprintf(err, errlen, "cannot write %s: %s", dest_path, strerror(-r));
		tmp[0] = '\0';
		goto out;
	}
	w.fd = mkostemp(tmp, O_CLOEXEC);
	if (w.fd < 0) {
		r = fail(err, errlen, errno, "cannot create a temp file in %s", dir);
		tmp[0] = '\0';
		goto out;
	}
	w.md = EVP_MD_CTX_new();
	w.buf = malloc(IO_CHUNK);
	w.a = archive_write_new();
	w.links = archive_entry_linkresolver_new();
	if (!w.md || !w.buf || !w.a || !w.links || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	archive_entry_linkresolver_set_strategy(w.links, ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE);
	if (archive_write_set_format_pax(w.a) != ARCHIVE_OK ||
	    (fmt == TARBALL_GZIP ? archive_write_add_filter_gzip(w.a) : archive_write_add_filter_zstd(w.a)) !=
		    ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w.a, 64 * 1024) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w.a, 1) != ARCHIVE_OK ||
	    archive_write_open(w.a, &w, NULL, write_block, NULL) != ARCHIVE_OK) {
		r = archive_fail(&w, "cannot start archive", dest_path);
		goto out;
	}
	struct stat st;
	if (fstat(src, &st) < 0) {
		r = fail(err, errlen, errno, "cannot stat %s", src_dir);
		goto out;
	}
	r = write_entry(&w, ".", &st, NULL, -1);
	if (r == 0)
		r = walk(&w, src, ".");
	if (r < 0) {
		if (r == -ECANCELED)
			snprintf(err, errlen, "cancelled");
		goto out;
	}
	if (archive_write_close(w.a) != ARCHIVE_OK) {
		r = archive_fail(&w, "cannot finish archive", dest_path);
		goto out;
	}
	r = commit_temp(w.fd, tmp, dest_path, dir, err, errlen);
	if (r < 0)
		goto out;
	tmp[0] = '\0';
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	EVP_DigestFinal_ex(w.md, md, &md_len);
	to_hex(md, md_len, ret->sha256);
	ret->size = w.size;
	ret->data_bytes = w.data_bytes;
	ret->entries = w.entries;
out:
	if (w.a)
		archive_write_free(w.a); /* after a failure: closes without flushing more */
	archive_entry_linkresolver_free(w.links);
	EVP_MD_CTX_free(w.md);
	free(w.buf);
	if (w.fd >= 0)
		close(w.fd);
	if (tmp[0])
		unlink(tmp);
	free(dir);
	close(src);
	return r;
}

/* ---- reading an archive ------------------------------------------------------------- */

/* No absolute path, no ".." component. */
static bool safe_rel_path(const char *p)
{
	if (!p || !*p || *p == '/')
		return false;
	for (const char *s = p; *s;) {
		size_t n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return false;
		s += n;
		s += *s == '/';
	}
	return true;
}

static int read_fail(struct archive *a, char *err, size_t errlen, const char *what, const char *path)
{
	int e = archive_errno(a);
	snprintf(err, errlen, "%s %s: %s", what, path, archive_error_string(a) ? archive_error_string(a) : "?");
	return e > 0 && e != EINVAL ? -e : -EBADMSG;
}

/* The "." entry describes dest_dir itself: apply it by fd. */
static int apply_top(int dfd, struct archive_entry *e, char *err, size_t errlen)
{
	if (geteuid() == 0 && fchown(dfd, archive_entry_uid(e), archive_entry_gid(e)) < 0)
		return fail(err, errlen, errno, "cannot set the owner of %s", "the restored directory");
	if (fchmod(dfd, archive_entry_perm(e)) < 0)
		return fail(err, errlen, errno, "cannot set the mode of %s", "the restored directory");
	return 0;
}

static int apply_top_time(int dfd, struct archive_entry *e)
{
	struct timespec ts[2] = {
		{ .tv_sec = archive_entry_atime(e), .tv_nsec = archive_entry_atime_nsec(e) },
		{ .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
	};
	if (!archive_entry_atime_is_set(e))
		ts[0] = ts[1];
	return futimens(dfd, ts) < 0 ? -errno : 0;
}

int tarball_extract(const char *path, const char *dest_dir, const volatile sig_atomic_t *cancel, char *err,
		    size_t errlen)
{
	int r = 0, cwd = -1, dfd = -1;
	struct archive *in = archive_read_new(), *out = archive_write_disk_new();
	struct archive_entry *top = NULL;
	if (!in || !out) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto done;
	}
	archive_read_support_format_tar(in);
	archive_read_support_filter_zstd(in);
	archive_read_support_filter_gzip(in);
	int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_write_disk_set_options(out, flags);

	dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		r = fail(err, errlen, errno, "cannot open %s", dest_dir);
		goto done;
	}
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0 || fchdir(dfd) < 0) {
		r = fail(err, errlen, errno, "cannot change into %s", dest_dir);
		goto done;
	}
	if (archive_read_open_filename(in, path, 64 * 1024) != ARCHIVE_OK) {
		r = read_fail(in, err, errlen, "cannot open archive", path);
		goto done;
	}
	struct archive_entry *e;
	for (;;) {
		if (cancelled(cancel)) {
			snprintf(err, errlen, "cancelled");
			r = -ECANCELED;
			goto done;
		}
		int rr = archive_read_next_header(in, &e);
		if (rr == ARCHIVE_EOF)
			break;
		if (rr < ARCHIVE_WARN) {
			r = read_fail(in, err, errlen, "cannot read archive", path);
			goto done;
		}
		const char *name = archive_entry_pathname(e);
		if (name && (strcmp(name, ".") == 0 || strcmp(name, "./") == 0)) {
			/* Applied at the end: its mtime must survive the entries
			 * created inside it. */
			archive_entry_free(top);
			top = archive_entry_clone(e);
			if (!top || (r = apply_top(dfd, top, err, errlen)) < 0) {
				r = r < 0 ? r : -ENOMEM;
				goto done;
			}
			continue;
		}
		const char *hl = archive_entry_hardlink(e);
		if (!safe_rel_path(name) || (hl && !safe_rel_path(hl))) {
			snprintf(err, errlen, "archive %s: refusing entry \"%s\" (absolute or with \"..\")", path,
				 name ? name : "");
			r = -EBADMSG;
			goto done;
		}
		if (archive_write_header(out, e) < ARCHIVE_WARN) {
			r = read_fail(out, err, errlen, "cannot restore", name);
			goto done;
		}
		if (archive_entry_size(e) > 0 && !hl) {
			const void *buf;
			size_t len;
			la_int64_t off;
			while ((rr = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
				if (cancelled(cancel)) {
					snprintf(err, errlen, "cancelled");
					r = -ECANCELED;
					goto done;
				}
				if (archive_write_data_block(out, buf, len, off) < ARCHIVE_WARN) {
					r = read_fail(out, err, errlen, "cannot restore", name);
					goto done;
				}
			}
			if (rr != ARCHIVE_EOF) {
				r = read_fail(in, err, errlen, "cannot read archive", path);
				goto done;
			}
		}
		if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
			r = read_fail(out, err, errlen, "cannot restore", name);
			goto done;
		}
	}
	/* Directory modes and times are applied at close (after their
	 * contents were written). */
	if (archive_write_close(out) < ARCHIVE_WARN) {
		r = read_fail(out, err, errlen, "cannot finish restoring into", dest_dir);
		goto done;
	}
	if (top && apply_top_time(dfd, top) < 0) {
		r = fail(err, errlen, errno, "cannot set the mtime of %s", dest_dir);
		goto done;
	}
done:
	if (cwd >= 0) {
		if (fchdir(cwd) < 0 && r == 0)
			r = fail(err, errlen, errno, "cannot return to the working directory%s", "");
		close(cwd);
	}
	if (dfd >= 0)
		close(dfd);
	archive_entry_free(top);
	if (in)
		archive_read_free(in);
	if (out)
		archive_write_free(out);
	return r;
}

int tarball_sha256_file(const char *path, char ret_hex[TARBALL_SHA256_HEX], int64_t *ret_size, char *err,
			size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, errno, "cannot open %s", path);
	int r = 0;
	int64_t size = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(IO_CHUNK);
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail(err, errlen, errno, "cannot read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		size += n;
	}
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	EVP_DigestFinal_ex(md, digest, &len);
	to_hex(digest, len, ret_hex);
	if (ret_size)
		*ret_size = size;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	close(fd);
	return r;
}

int tarball_verify(const char *path, const char *sha256, int64_t size, char *err, size_t errlen)
{
	char sha[TARBALL_SHA256_HEX];
	int64_t got;
	int r = tarball_sha256_file(path, sha, &got, err, errlen);
	if (r < 0)
		return r;
	if (strcasecmp(sha, sha256) != 0 || got != size) {
		snprintf(err, errlen, "%s has SHA-256 %s and %lld bytes; it was written with %s and %lld bytes", path, sha,
			 (long long)got, sha256, (long long)size);
		return -EBADMSG;
	}
	return 0;
}
