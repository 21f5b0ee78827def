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

#include "archive_lib.h"
#include "backup_crypt.h"
#include "common/array.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/tempfile.h"

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
	r = fs_write_all(fd, data, len);
	if (r < 0) {
		r = fail(err, errlen, -r, "cannot write %s", tmp);
		goto out;
	}
	r = tempfile_commit(fd, tmp, path, err, errlen);
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
	struct backup_enc *enc; /* encrypting: libarchive's output goes through it */
	void (*progress)(void *userdata, int64_t data_bytes);
	void *userdata;
	struct archive_entry_linkresolver *links;
	int fd;
	EVP_MD_CTX *md;
	int64_t size;
	int64_t max_size;   /* > 0: abandon the archive beyond this */
	int64_t data_bytes;
	int64_t entries;
	const volatile sig_atomic_t *cancel;
	char *buf;
	char *err;
	size_t errlen;
};

/* Bytes on their way to the file: limited, written, hashed, counted. */
static int sink(void *userdata, const void *buf, size_t len)
{
	struct writer *w = userdata;
	struct archive *a = w->a;
	if (w->max_size > 0 && w->size + (int64_t)len > w->max_size) {
		sym_archive_set_error(a, EFBIG, "the archive grew beyond the limit of %lld bytes ([backups] max_archive_size)",
				  (long long)w->max_size);
		return -EFBIG;
	}
	const char *p = buf;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(w->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			sym_archive_set_error(a, e, "cannot write the archive");
			return -e;
		}
		p += n;
		left -= (size_t)n;
	}
	EVP_DigestUpdate(w->md, buf, len);
	w->size += (int64_t)len;
	return 0;
}

static la_ssize_t write_block(struct archive *a, void *userdata, const void *buf, size_t len)
{
	struct writer *w = userdata;
	int r = w->enc ? backup_enc_update(w->enc, buf, len, sink, w) : sink(w, buf, len);
	if (r < 0) {
		if (r != -EFBIG && r != -sym_archive_errno(a))
			sym_archive_set_error(a, -r, "cannot encrypt the archive");
		return -1;
	}
	return (la_ssize_t)len;
}

static int archive_fail(struct writer *w, const char *what, const char *path)
{
	int e = sym_archive_errno(w->a);
	snprintf(w->err, w->errlen, "%s %s: %s", what, path, sym_archive_error_string(w->a) ? sym_archive_error_string(w->a) : "?");
	return e > 0 ? -e : -EIO;
}

/* Read up to `len` bytes at `off` of the file into w->buf; 0 at its end. */
static ssize_t read_at(struct writer *w, int fd, int64_t off, size_t len, const char *rel)
{
	for (;;) {
		ssize_t n = pread(fd, w->buf, len, off);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return fail(w->err, w->errlen, errno, "cannot read %s", rel);
	}
}

/* Copy the file data of an open regular file: exactly `size` bytes of it,
 * as libarchive expects them (a file that shrank meanwhile is padded with
 * zeros by libarchive; one that grew is cut at the size the header
 * announced). For a sparse entry the holes are passed as zeros from a
 * buffer, never read: the pax writer skips them. */
static int write_data(struct writer *w, struct archive_entry *e, int fd, int64_t size, const char *rel)
{
	static const char zeros[IO_CHUNK];
	int64_t off = 0;
	bool sparse = sym_archive_entry_sparse_reset(e) > 0;
	/* Not sparse: one data segment, the whole file. Sparse: none yet, the
	 * loop fetches the first. */
	la_int64_t seg_off = 0, seg_len = sparse ? 0 : size;
	while (off < size) {
		if (cancelled(w->cancel))
			return -ECANCELED;
		/* The data segment at or after `off`, if the entry is sparse. */
		if (sparse && off >= seg_off + seg_len) {
			if (sym_archive_entry_sparse_next(e, &seg_off, &seg_len) != ARCHIVE_OK) {
				seg_off = size; /* a hole to the end */
				seg_len = 0;
			}
			continue;
		}
		size_t want;
		const void *p;
		if (off < seg_off) { /* a hole */
			int64_t hole = seg_off - off;
			want = hole < IO_CHUNK ? (size_t)hole : IO_CHUNK;
			p = zeros;
		} else {
			int64_t left = seg_off + seg_len - off;
			want = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
			ssize_t n = read_at(w, fd, off, want, rel);
			if (n < 0)
				return (int)n;
			if (n == 0)
				break; /* shrank: libarchive pads */
			want = (size_t)n;
			p = w->buf;
			w->data_bytes += n;
			if (w->progress)
				w->progress(w->userdata, w->data_bytes);
		}
		if (sym_archive_write_data(w->a, p, want) < 0)
			return archive_fail(w, "cannot archive", rel);
		off += (int64_t)want;
	}
	return 0;
}

#define SPARSE_MAX_SEGMENTS 4096

/* Describe the data regions of a file with holes in its entry (pax
 * GNU.sparse). Nothing is added for a file without holes, or one with
 * more than SPARSE_MAX_SEGMENTS regions (stored whole: zeros compress). */
static void add_sparse_map(struct archive_entry *e, int fd, const struct stat *st)
{
	if (st->st_size < 64 * 1024 || (int64_t)st->st_blocks * 512 >= st->st_size)
		return; /* no room for a hole worth it */
	struct { int64_t off, len; } *segs = NULL;
	size_t n = 0, cap = 0;
	for (off_t off = 0; off < st->st_size;) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0 || data >= st->st_size)
			break; /* ENXIO: only a hole is left */
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > st->st_size)
			hole = st->st_size;
		if (n == SPARSE_MAX_SEGMENTS) {
			free(segs);
			return;
		}
		if (ARRAY_GROW(segs, n + 1, cap) < 0) {
			free(segs);
			return;
		}
		segs[n].off = data;
		segs[n].len = hole - data;
		n++;
		off = hole;
	}
	/* Keep the sparse form only when it saves something: at least one
	 * hole. A file of only holes is one empty segment at its end. */
	int64_t data_total = 0;
	for (size_t i = 0; i < n; i++)
		data_total += segs[i].len;
	if (data_total < st->st_size) {
		if (n == 0)
			sym_archive_entry_sparse_add_entry(e, st->st_size, 0);
		for (size_t i = 0; i < n; i++)
			sym_archive_entry_sparse_add_entry(e, segs[i].off, segs[i].len);
	}
	free(segs);
}

/* Write one entry (and, for a regular file, its data read from `fd`). */
static int write_entry(struct writer *w, const char *rel, const struct stat *st, const char *link_target, int fd)
{
	struct archive_entry *e = archive_lib_entry_new();
	if (!e)
		return -ENOMEM;
	sym_archive_entry_set_pathname(e, rel);
	sym_archive_entry_copy_stat(e, st);
	sym_archive_entry_set_uname(e, NULL);
	sym_archive_entry_set_gname(e, NULL);
	/* Reading the tree changes atimes, and ctime cannot be restored: keep
	 * neither, so that the same tree gives the same archive. */
	sym_archive_entry_unset_atime(e);
	sym_archive_entry_unset_ctime(e);
	sym_archive_entry_unset_birthtime(e);
	if (!S_ISREG(st->st_mode))
		sym_archive_entry_set_size(e, 0);
	if (link_target)
		sym_archive_entry_set_symlink(e, link_target);
	/* Hard links: the tar strategy hands back the first occurrence as is and
	 * every later one as a link to it (size 0, no data). */
	struct archive_entry *spare = NULL;
	if (S_ISREG(st->st_mode) && st->st_nlink > 1)
		sym_archive_entry_linkify(w->links, &e, &spare);
	if (!e) /* not with the tar strategy; kept for safety */
		return 0;
	if (S_ISREG(st->st_mode) && fd >= 0 && !sym_archive_entry_hardlink(e))
		add_sparse_map(e, fd, st);
	int r = 0;
	if (sym_archive_write_header(w->a, e) < ARCHIVE_WARN) {
		r = archive_fail(w, "cannot archive", rel);
	} else {
		w->entries++;
		if (fd >= 0 && sym_archive_entry_size(e) > 0 && !sym_archive_entry_hardlink(e))
			r = write_data(w, e, fd, sym_archive_entry_size(e), rel);
	}
	sym_archive_entry_free(e);
	sym_archive_entry_free(spare);
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
		if (ARRAY_GROW(names, n + 1, cap) < 0) {
			r = -ENOMEM;
			break;
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

/* The record, as the first entry (tarball.h). */
static int write_record(struct writer *w, const char *record)
{
	size_t len = strlen(record);
	if (len > TARBALL_RECORD_MAX) {
		snprintf(w->err, w->errlen, "the app record has %zu bytes, more than %d", len, TARBALL_RECORD_MAX);
		return -EFBIG;
	}
	struct archive_entry *e = archive_lib_entry_new();
	if (!e)
		return -ENOMEM;
	sym_archive_entry_set_pathname(e, TARBALL_RECORD_NAME);
	sym_archive_entry_set_filetype(e, AE_IFREG);
	sym_archive_entry_set_perm(e, 0600);
	sym_archive_entry_set_size(e, (la_int64_t)len);
	int r = 0;
	if (sym_archive_write_header(w->a, e) < ARCHIVE_WARN ||
	    (len && sym_archive_write_data(w->a, record, len) < 0))
		r = archive_fail(w, "cannot archive", TARBALL_RECORD_NAME);
	else
		w->entries++;
	sym_archive_entry_free(e);
	return r;
}

int tarball_create(const char *src_dir, const char *dest_path, enum tarball_format fmt, int64_t max_size,
		   const volatile sig_atomic_t *cancel, struct tarball_info *ret, char *err, size_t errlen)
{
	struct tarball_create_opts o = { .fmt = fmt, .max_size = max_size };
	return tarball_create_ex(src_dir, dest_path, &o, cancel, ret, err, errlen);
}

int tarball_create_ex(const char *src_dir, const char *dest_path, const struct tarball_create_opts *o,
		      const volatile sig_atomic_t *cancel, struct tarball_info *ret, char *err, size_t errlen)
{
	char tmp[PATH_MAX] = "";
	char *dir = NULL;
	int src = -1, r;
	enum tarball_format fmt = o->fmt;
	struct writer w = { .fd = -1, .max_size = o->max_size, .cancel = cancel, .err = err, .errlen = errlen,
			    .progress = o->progress, .userdata = o->userdata };

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
	w.a = archive_lib_write_new();
	w.links = archive_lib_entry_linkresolver_new();
	if (!w.md || !w.buf || !w.a || !w.links || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "%s", !w.a || !w.links ? archive_lib_failure() : "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if (o->secret && o->secret->kind != BACKUP_KEY_NONE) {
		unsigned char header[BACKUP_CRYPT_HEADER];
		r = backup_enc_new(o->secret, &w.enc, header, err, errlen);
		if (r == 0 && (r = sink(&w, header, sizeof(header))) < 0)
			r = fail(err, errlen, -r, "cannot write %s", tmp);
		if (r < 0)
			goto out;
	}
	sym_archive_entry_linkresolver_set_strategy(w.links, ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE);
	if (sym_archive_write_set_format_pax(w.a) != ARCHIVE_OK ||
	    (fmt == TARBALL_GZIP ? sym_archive_write_add_filter_gzip(w.a) : sym_archive_write_add_filter_zstd(w.a)) !=
		    ARCHIVE_OK ||
	    sym_archive_write_set_bytes_per_block(w.a, 64 * 1024) != ARCHIVE_OK ||
	    sym_archive_write_set_bytes_in_last_block(w.a, 1) != ARCHIVE_OK ||
	    sym_archive_write_open(w.a, &w, NULL, write_block, NULL) != ARCHIVE_OK) {
		r = archive_fail(&w, "cannot start archive", dest_path);
		goto out;
	}
	struct stat st;
	if (fstat(src, &st) < 0) {
		r = fail(err, errlen, errno, "cannot stat %s", src_dir);
		goto out;
	}
	r = o->record ? write_record(&w, o->record) : 0;
	if (r == 0)
		r = write_entry(&w, ".", &st, NULL, -1);
	if (r == 0)
		r = walk(&w, src, ".");
	if (r < 0) {
		if (r == -ECANCELED)
			snprintf(err, errlen, "cancelled");
		goto out;
	}
	if (sym_archive_write_close(w.a) != ARCHIVE_OK) {
		r = archive_fail(&w, "cannot finish archive", dest_path);
		goto out;
	}
	if (w.enc && (r = backup_enc_final(w.enc, sink, &w)) < 0) {
		r = archive_fail(&w, "cannot finish archive", dest_path);
		goto out;
	}
	if (w.progress)
		w.progress(w.userdata, w.data_bytes);
	char sha[TARBALL_SHA256_HEX];
	if ((r = sha256_final_hex(w.md, sha)) < 0) {
		snprintf(err, errlen, "SHA-256 of %s failed", tmp);
		goto out;
	}
	r = tempfile_commit(w.fd, tmp, dest_path, err, errlen);
	if (r < 0)
		goto out;
	tmp[0] = '\0';
	memcpy(ret->sha256, sha, sizeof(sha));
	ret->size = w.size;
	ret->data_bytes = w.data_bytes;
	ret->entries = w.entries;
out:
	if (w.a)
		sym_archive_write_free(w.a); /* after a failure: closes without flushing more */
	sym_archive_entry_linkresolver_free(w.links);
	backup_enc_free(w.enc);
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

/* ---- the size of a tree ------------------------------------------------------------- */

struct sizer {
	int64_t bytes, entries;
	struct { dev_t dev; ino_t ino; } *links; /* hard-linked files seen */
	size_t n_links, cap_links;
};

/* A hard-linked file is read once: true the first time. */
static bool first_link(struct sizer *z, const struct stat *st)
{
	for (size_t i = 0; i < z->n_links; i++)
		if (z->links[i].dev == st->st_dev && z->links[i].ino == st->st_ino)
			return false;
	if (ARRAY_GROW(z->links, z->n_links + 1, z->cap_links) < 0)
		return true; /* counted twice: only the progress is off */
	z->links[z->n_links].dev = st->st_dev;
	z->links[z->n_links].ino = st->st_ino;
	z->n_links++;
	return true;
}

static int size_walk(struct sizer *z, int dfd, char *err, size_t errlen)
{
	int fd2 = dup(dfd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!d) {
		int e = errno;
		if (fd2 >= 0)
			close(fd2);
		return fail(err, errlen, e, "cannot read a directory%s", "");
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* vanished: a live tree */
		if (S_ISSOCK(st.st_mode))
			continue;
		z->entries++;
		if (S_ISREG(st.st_mode)) {
			if (st.st_nlink > 1 && !first_link(z, &st))
				continue;
			/* A file with holes: only its data is read. */
			int64_t used = (int64_t)st.st_blocks * 512;
			z->bytes += st.st_size >= 64 * 1024 && used < st.st_size ? used : st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue;
			r = size_walk(z, sub, err, errlen);
			close(sub);
		}
	}
	closedir(d);
	return r;
}

int tarball_tree_size(const char *src_dir, int64_t *ret_bytes, int64_t *ret_entries, char *err, size_t errlen)
{
	int fd = open(src_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, errno, "cannot open directory %s", src_dir);
	struct sizer z = { .entries = 1 };
	int r = size_walk(&z, fd, err, errlen);
	close(fd);
	free(z.links);
	if (r < 0)
		return r;
	*ret_bytes = z.bytes;
	if (ret_entries)
		*ret_entries = z.entries;
	return 0;
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
	int e = sym_archive_errno(a);
	snprintf(err, errlen, "%s %s: %s", what, path, sym_archive_error_string(a) ? sym_archive_error_string(a) : "?");
	return e > 0 && e != EINVAL ? -e : -EBADMSG;
}

/* The "." entry describes dest itself: applied by fd, last. */
static int apply_top(int dfd, struct archive_entry *e, const struct tarball_extract_opts *o, char *err,
		     size_t errlen)
{
	if (o->owners && geteuid() == 0 && fchown(dfd, sym_archive_entry_uid(e), sym_archive_entry_gid(e)) < 0)
		return fail(err, errlen, errno, "cannot set the owner of %s", "the restored directory");
	mode_t perm = sym_archive_entry_perm(e) & (o->special ? 07777 : 01777);
	if (fchmod(dfd, perm) < 0)
		return fail(err, errlen, errno, "cannot set the mode of %s", "the restored directory");
	struct timespec ts[2] = {
		{ .tv_sec = sym_archive_entry_atime(e), .tv_nsec = sym_archive_entry_atime_nsec(e) },
		{ .tv_sec = sym_archive_entry_mtime(e), .tv_nsec = sym_archive_entry_mtime_nsec(e) },
	};
	if (!sym_archive_entry_atime_is_set(e))
		ts[0] = ts[1];
	if (futimens(dfd, ts) < 0)
		return fail(err, errlen, errno, "cannot set the mtime of %s", "the restored directory");
	return 0;
}

/* Feeds libarchive from the archive's descriptor, hashing every byte on
 * its way, so that what was extracted can be compared with what was
 * verified (update/package.c reads its packages the same way). An
 * encrypted archive (backup_crypt.h) goes through its decryptor: the raw
 * bytes are hashed, libarchive gets the plaintext. */
struct source {
	int fd;
	EVP_MD_CTX *md;
	int64_t bytes; /* raw bytes read */
	char *buf;
	struct backup_dec *dec;
	char err[512]; /* the decryptor's message */
};

static ssize_t raw_in(void *cls, void *buf, size_t len)
{
	struct source *s = cls;
	ssize_t n;
	do
		n = read(s->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (s->md)
		EVP_DigestUpdate(s->md, buf, (size_t)n);
	s->bytes += n;
	return n;
}

static la_ssize_t hashed_read(struct archive *a, void *cls, const void **buf)
{
	struct source *s = cls;
	ssize_t n;
	if (s->dec) {
		n = backup_dec_next(s->dec, buf, s->err, sizeof(s->err));
		if (n < 0)
			sym_archive_set_error(a, n == -EBADMSG ? EBADMSG : (int)-n, "%s", s->err);
		return n < 0 ? -1 : n;
	}
	n = raw_in(s, s->buf, IO_CHUNK);
	if (n < 0) {
		sym_archive_set_error(a, (int)-n, "cannot read the archive");
		return -1;
	}
	*buf = s->buf;
	return n;
}

/* Start reading the archive open as `fd` at its current offset: a
 * decryptor when it is encrypted (its header checked against o->secret).
 * s->md, if set, hashes the raw bytes. */
static int source_open(struct source *s, int fd, const char *path, const struct tarball_extract_opts *o, char *err,
		       size_t errlen)
{
	s->fd = fd;
	unsigned char magic[8];
	off_t at = lseek(fd, 0, SEEK_CUR);
	ssize_t n = at >= 0 ? pread(fd, magic, sizeof(magic), at) : -1;
	if (n < 0)
		return fail(err, errlen, errno, "cannot read archive %s", path);
	if (!backup_crypt_is_encrypted(magic, (size_t)n))
		return 0;
	static const struct backup_secret none = { 0 };
	int r = backup_dec_new(o->secret ? o->secret : &none, raw_in, s, &s->dec, s->err, sizeof(s->err));
	if (r < 0)
		snprintf(err, errlen, "archive %s: %s", path, s->err);
	return r;
}

/* Read (and authenticate) what libarchive left: the rest of the
 * plaintext, then any raw bytes. */
static int source_drain(struct source *s, const char *path, char *err, size_t errlen)
{
	while (s->dec) {
		const void *p;
		ssize_t n = backup_dec_next(s->dec, &p, s->err, sizeof(s->err));
		if (n == 0)
			break;
		if (n < 0) {
			snprintf(err, errlen, "archive %s: %s", path, s->err);
			return (int)n;
		}
	}
	for (;;) {
		ssize_t n = raw_in(s, s->buf, IO_CHUNK);
		if (n < 0)
			return fail(err, errlen, (int)-n, "cannot read archive %s", path);
		if (n == 0)
			return 0;
		if (s->dec) {
			snprintf(err, errlen, "archive %s: bytes follow the last encrypted record", path);
			return -EBADMSG;
		}
	}
}

static void source_close(struct source *s)
{
	backup_dec_free(s->dec);
	s->dec = NULL;
}

static int open_checked(const char *path, const struct tarball_extract_opts *o, char *buf, int *ret_fd, char *err,
			size_t errlen)
{
	/* O_NONBLOCK: a fifo put in the archive's place must not hang us. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(err, errlen, errno, "cannot open archive %s", path);
	int r = 0;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = fail(err, errlen, errno, "cannot stat archive %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "archive %s is not a regular file", path);
		r = -EBADMSG;
		goto out;
	}
	if (o->require_own && (st.st_uid != geteuid() || (st.st_mode & 022) || st.st_nlink != 1)) {
		snprintf(err, errlen,
			 "archive %s is not boxd's own file (owner uid %u, mode %04o, %ju links; boxd writes its archives "
			 "as uid %u, mode 0600, one link)",
			 path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (uintmax_t)st.st_nlink,
			 (unsigned)geteuid());
		r = -EPERM;
		goto out;
	}
	if (o->max_size > 0 && st.st_size > o->max_size) {
		snprintf(err, errlen, "archive %s has %lld bytes, more than the limit of %lld ([backups] max_archive_size)",
			 path, (long long)st.st_size, (long long)o->max_size);
		r = -EFBIG;
		goto out;
	}
	unsigned char magic[8];
	ssize_t nm = pread(fd, magic, sizeof(magic), 0);
	bool encrypted = nm > 0 && backup_crypt_is_encrypted(magic, (size_t)nm);
	if (o->sha256 || encrypted) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		int64_t got = 0;
		if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
			EVP_MD_CTX_free(md);
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
			goto out;
		}
		if (encrypted) {
			/* Every record authenticated before anything is
			 * extracted; the same pass hashes the file. */
			struct source src = { .md = md, .buf = buf };
			r = source_open(&src, fd, path, o, err, errlen);
			if (r == 0)
				r = source_drain(&src, path, err, errlen);
			got = src.bytes;
			source_close(&src);
		} else if ((r = sha256_update_fd(md, fd, &got)) < 0) {
			r = fail(err, errlen, -r, "cannot read archive %s", path);
		}
		char hex[TARBALL_SHA256_HEX] = ""; /* stays "" (no match) if OpenSSL fails */
		sha256_final_hex(md, hex);
		EVP_MD_CTX_free(md);
		if (r < 0)
			goto out;
		if (o->sha256 && (strcasecmp(hex, o->sha256) != 0 || got != o->size)) {
			snprintf(err, errlen, "%s has SHA-256 %s and %lld bytes; it was written with %s and %lld bytes", path,
				 hex, (long long)got, o->sha256, (long long)o->size);
			r = -EBADMSG;
			goto out;
		}
		if (lseek(fd, 0, SEEK_SET) < 0) {
			r = fail(err, errlen, errno, "cannot rewind archive %s", path);
			goto out;
		}
	}
out:
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* Device nodes, fifos and sockets: not data, and a way in for a hostile
 * archive (a node that opens a disk). */
static bool is_special(struct archive_entry *e)
{
	mode_t t = sym_archive_entry_filetype(e);
	return t == AE_IFCHR || t == AE_IFBLK || t == AE_IFIFO || t == AE_IFSOCK;
}

int tarball_open_verified(const char *path, const struct tarball_extract_opts *o, int *ret_fd, char *err,
			  size_t errlen)
{
	char *buf = malloc(IO_CHUNK);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = open_checked(path, o, buf, ret_fd, err, errlen);
	free(buf);
	return r;
}

int tarball_extract_fd(int fd, const char *path, int dest_fd, const struct tarball_extract_opts *o,
		       const volatile sig_atomic_t *cancel, struct tarball_extract_info *ret, char *err, size_t errlen)
{
	int r = 0, cwd = -1;
	struct tarball_extract_info info = { 0 };
	struct source rd = { .fd = fd };
	bool first = true;
	struct archive *in = archive_lib_read_new(), *out = archive_lib_write_disk_new();
	struct archive_entry *top = NULL;
	rd.md = EVP_MD_CTX_new();
	rd.buf = malloc(IO_CHUNK);
	if (!in || !out || !rd.md || !rd.buf || !EVP_DigestInit_ex(rd.md, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "%s", !in || !out ? archive_lib_failure() : "out of memory");
		r = -ENOMEM;
		goto done;
	}
	sym_archive_read_support_format_tar(in);
	sym_archive_read_support_filter_zstd(in);
	sym_archive_read_support_filter_gzip(in);
	int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_SPARSE;
	if (o->owners && geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	sym_archive_write_disk_set_options(out, flags);

	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0 || fchdir(dest_fd) < 0) {
		r = fail(err, errlen, errno, "cannot change into the restore directory%s", "");
		goto done;
	}
	if ((r = source_open(&rd, fd, path, o, err, errlen)) < 0)
		goto done;
	if (sym_archive_read_open(in, &rd, NULL, hashed_read, NULL) != ARCHIVE_OK) {
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
		int rr = sym_archive_read_next_header(in, &e);
		if (rr == ARCHIVE_EOF)
			break;
		if (rr < ARCHIVE_WARN) {
			r = read_fail(in, err, errlen, "cannot read archive", path);
			goto done;
		}
		const char *name = sym_archive_entry_pathname(e);
		bool record = first && name && strcmp(name, TARBALL_RECORD_NAME) == 0;
		first = false;
		if (record)
			continue; /* the app's record, not part of the tree (tarball.h) */
		if (name && (strcmp(name, ".") == 0 || strcmp(name, "./") == 0)) {
			/* Applied at the end: once the archive checked out, and
			 * so that its mtime survives the entries made inside. */
			sym_archive_entry_free(top);
			if (!(top = sym_archive_entry_clone(e))) {
				r = -ENOMEM;
				goto done;
			}
			continue;
		}
		const char *hl = sym_archive_entry_hardlink(e);
		if (!safe_rel_path(name) || (hl && !safe_rel_path(hl))) {
			snprintf(err, errlen, "archive %s: refusing entry \"%s\" (absolute or with \"..\")", path,
				 name ? name : "");
			r = -EBADMSG;
			goto done;
		}
		if (!o->special) {
			if (is_special(e) && !hl) {
				info.skipped++;
				continue; /* its data (none) is skipped by the next header */
			}
			mode_t perm = sym_archive_entry_perm(e);
			if (perm & 06000) {
				sym_archive_entry_set_perm(e, perm & ~(mode_t)06000);
				info.stripped++;
			}
		}
		if (sym_archive_write_header(out, e) < ARCHIVE_WARN) {
			r = read_fail(out, err, errlen, "cannot restore", name);
			goto done;
		}
		info.entries++;
		if (sym_archive_entry_size(e) > 0 && !hl) {
			const void *buf;
			size_t len;
			la_int64_t off;
			while ((rr = sym_archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
				if (cancelled(cancel)) {
					snprintf(err, errlen, "cancelled");
					r = -ECANCELED;
					goto done;
				}
				if (sym_archive_write_data_block(out, buf, len, off) < ARCHIVE_WARN) {
					r = read_fail(out, err, errlen, "cannot restore", name);
					goto done;
				}
				info.data_bytes += (int64_t)len;
			}
			if (rr != ARCHIVE_EOF) {
				r = read_fail(in, err, errlen, "cannot read archive", path);
				goto done;
			}
		}
		if (sym_archive_write_finish_entry(out) < ARCHIVE_WARN) {
			r = read_fail(out, err, errlen, "cannot restore", name);
			goto done;
		}
	}
	/* Directory modes and times are applied at close (after their
	 * contents were written). */
	if (sym_archive_write_close(out) < ARCHIVE_WARN) {
		r = read_fail(out, err, errlen, "cannot finish restoring into", "the restore directory");
		goto done;
	}
	/* The bytes extracted must be the bytes verified: hash what libarchive
	 * left unread (the tar padding) and compare. */
	if (o->sha256 || rd.dec) {
		if ((r = source_drain(&rd, path, err, errlen)) < 0)
			goto done;
	}
	if (o->sha256) {
		char hex[TARBALL_SHA256_HEX] = ""; /* stays "" (no match) if OpenSSL fails */
		sha256_final_hex(rd.md, hex);
		if (strcasecmp(hex, o->sha256) != 0 || rd.bytes != o->size) {
			snprintf(err, errlen,
				 "%s changed while it was extracted (SHA-256 now %s, %lld bytes; verified %s): the extracted "
				 "tree is discarded",
				 path, hex, (long long)rd.bytes, o->sha256);
			r = -EBADMSG;
			goto done;
		}
	}
	if (top) {
		if ((r = apply_top(dest_fd, top, o, err, errlen)) < 0)
			goto done;
		info.entries++;
	}
	if (ret)
		*ret = info;
done:
	if (cwd >= 0) {
		if (fchdir(cwd) < 0 && r == 0)
			r = fail(err, errlen, errno, "cannot return to the working directory%s", "");
		close(cwd);
	}
	source_close(&rd);
	EVP_MD_CTX_free(rd.md);
	free(rd.buf);
	sym_archive_entry_free(top);
	if (in)
		sym_archive_read_free(in);
	if (out)
		sym_archive_write_free(out);
	return r;
}

int tarball_read_record(int fd, const char *path, const struct tarball_extract_opts *o, char **ret, char *err,
			size_t errlen)
{
	struct source rd = { .fd = fd };
	struct archive *in = archive_lib_read_new();
	char *text = NULL;
	int r = 0;
	if (!in || !(rd.buf = malloc(IO_CHUNK))) {
		snprintf(err, errlen, "%s", !in ? archive_lib_failure() : "out of memory");
		r = -ENOMEM;
		goto done;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		r = fail(err, errlen, errno, "cannot rewind archive %s", path);
		goto done;
	}
	sym_archive_read_support_format_tar(in);
	sym_archive_read_support_filter_zstd(in);
	sym_archive_read_support_filter_gzip(in);
	if ((r = source_open(&rd, fd, path, o, err, errlen)) < 0)
		goto done;
	struct archive_entry *e;
	if (sym_archive_read_open(in, &rd, NULL, hashed_read, NULL) != ARCHIVE_OK ||
	    sym_archive_read_next_header(in, &e) < ARCHIVE_WARN) {
		r = read_fail(in, err, errlen, "cannot read archive", path);
		goto done;
	}
	const char *name = sym_archive_entry_pathname(e);
	la_int64_t size = sym_archive_entry_size(e);
	if (!name || strcmp(name, TARBALL_RECORD_NAME) != 0) {
		snprintf(err, errlen, "archive %s has no app record (made by an older boxd)", path);
		r = -ENOENT;
		goto done;
	}
	if (size < 0 || size > TARBALL_RECORD_MAX || !(text = malloc((size_t)size + 1))) {
		snprintf(err, errlen, "archive %s: an app record of %lld bytes", path, (long long)size);
		r = -EBADMSG;
		goto done;
	}
	la_ssize_t got = size ? sym_archive_read_data(in, text, (size_t)size) : 0;
	if (got != size) {
		r = got < 0 ? read_fail(in, err, errlen, "cannot read archive", path) : -EBADMSG;
		if (got >= 0)
			snprintf(err, errlen, "archive %s: the app record is cut short", path);
		goto done;
	}
	text[size] = '\0';
	*ret = text;
	text = NULL;
done:
	if (in)
		sym_archive_read_free(in);
	source_close(&rd);
	free(rd.buf);
	free(text);
	if (lseek(fd, 0, SEEK_SET) < 0 && r == 0)
		r = fail(err, errlen, errno, "cannot rewind archive %s", path);
	return r;
}

int tarball_extract(const char *path, int dest_fd, const struct tarball_extract_opts *o,
		    const volatile sig_atomic_t *cancel, struct tarball_extract_info *ret, char *err, size_t errlen)
{
	int fd;
	int r = tarball_open_verified(path, o, &fd, err, errlen);
	if (r < 0)
		return r;
	r = tarball_extract_fd(fd, path, dest_fd, o, cancel, ret, err, errlen);
	close(fd);
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
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if ((r = sha256_update_fd(md, fd, &size)) < 0) {
		r = fail(err, errlen, -r, "cannot read %s", path);
		goto out;
	}
	if ((r = sha256_final_hex(md, ret_hex)) < 0) {
		snprintf(err, errlen, "SHA-256 of %s failed", path);
		goto out;
	}
	if (ret_size)
		*ret_size = size;
out:
	EVP_MD_CTX_free(md);
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
