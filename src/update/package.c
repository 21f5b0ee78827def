/* package.c — update packages: checksum, check, unpack (see release.h).
 *
 * One forward `goto out` per function for cleanup. Every descriptor is
 * opened O_CLOEXEC.
 */
#include "release.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backups/archive_lib.h"
#include "common/fs.h"
#include "common/sha256.h"

#define MANIFEST_MAX (64 * 1024)
#define READ_CHUNK (64 * 1024)

bool update_version_valid(const char *v)
{
	size_t n = v ? strlen(v) : 0;
	if (n == 0 || n >= UPDATE_VERSION_MAX)
		return false;
	if (!((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= 'A' && v[0] <= 'Z') || (v[0] >= '0' && v[0] <= '9')))
		return false;
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._+-", *p)))
			return false;
	return true;
}

/* ---- reading the archive ------------------------------------------------ */

/* Feeds libarchive from the package fd, hashing every byte it reads (when
 * md is set), so that what was unpacked can be compared with what was
 * verified. */
struct pkg_reader {
	int fd;
	EVP_MD_CTX *md;
	unsigned char buf[READ_CHUNK];
};

static la_ssize_t pkg_read(struct archive *a, void *cls, const void **buf)
{
	struct pkg_reader *r = cls;
	ssize_t n;
	do
		n = read(r->fd, r->buf, sizeof(r->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		sym_archive_set_error(a, errno, "cannot read the package: %s", strerror(errno));
		return -1;
	}
	if (n > 0 && r->md)
		EVP_DigestUpdate(r->md, r->buf, (size_t)n);
	*buf = r->buf;
	return n;
}

static void pkg_close(struct pkg_reader *rd, struct archive *a)
{
	if (a)
		sym_archive_read_free(a);
	if (rd)
		EVP_MD_CTX_free(rd->md);
	free(rd);
}

/* Read the package `fd` from its start with libarchive (*ret_a), through a
 * reader (*ret_rd) that hashes every byte when `hash`. pkg_close() both.
 * 0, -ENOMEM, or -EBADMSG for what is no tar.gz or tar.zst. */
static int pkg_open(int fd, bool hash, struct pkg_reader **ret_rd, struct archive **ret_a, char *err, size_t errlen)
{
	struct pkg_reader *rd = calloc(1, sizeof(*rd));
	struct archive *a = NULL;
	int r = 0;
	if (!rd || (hash && (!(rd->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(rd->md, EVP_sha256(), NULL)))) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	rd->fd = fd;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		snprintf(err, errlen, "cannot rewind the package: %s", strerror(errno));
		r = -EBADMSG;
		goto fail;
	}
	if (!(a = archive_lib_read_new())) {
		snprintf(err, errlen, "%s", archive_lib_failure());
		r = -EBADMSG;
		goto fail;
	}
	sym_archive_read_support_format_tar(a);
	sym_archive_read_support_filter_gzip(a);
	sym_archive_read_support_filter_zstd(a);
	if (sym_archive_read_open(a, rd, NULL, pkg_read, NULL) != ARCHIVE_OK) {
		snprintf(err, errlen, "not a tar.gz or tar.zst package: %s", sym_archive_error_string(a));
		r = -EBADMSG;
		goto fail;
	}
	*ret_rd = rd;
	*ret_a = a;
	return 0;
fail:
	pkg_close(rd, a);
	return r;
}

/* The entry's path relative to the release root, in `out` ("" for the root
 * itself). -EBADMSG with a message for an unsafe name. */
static int clean_name(const char *name, char *out, size_t len, char *err, size_t errlen)
{
	if (!name) {
		snprintf(err, errlen, "an entry has no name");
		return -EBADMSG;
	}
	const char *p = name;
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (*p == '/') {
		snprintf(err, errlen, "entry %s: absolute names are not allowed", name);
		return -EBADMSG;
	}
	if (strcmp(p, ".") == 0)
		p = "";
	size_t n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n >= len) {
		snprintf(err, errlen, "entry %.100s...: name too long", name);
		return -EBADMSG;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	/* Every component: not empty, not ".", not "..". */
	for (const char *c = out; *c;) {
		size_t k = strcspn(c, "/");
		if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.')) {
			snprintf(err, errlen, "entry %s: empty, \".\" or \"..\" path components are not allowed", name);
			return -EBADMSG;
		}
		c += k;
		if (*c == '/')
			c++;
	}
	return 0;
}

/* Only plain files and directories: a package cannot plant a symlink or a
 * hard link that a later entry would be written through. */
static int check_entry_type(struct archive_entry *e, const char *name, char *err, size_t errlen)
{
	mode_t type = sym_archive_entry_filetype(e);
	if (sym_archive_entry_hardlink(e) || (type != AE_IFREG && type != AE_IFDIR)) {
		snprintf(err, errlen, "entry %s: only regular files and directories are allowed", name);
		return -EBADMSG;
	}
	return 0;
}

static int manifest_parse(const char *text, size_t len, char ret_version[UPDATE_VERSION_MAX], char *err,
			  size_t errlen)
{
	json_error_t jerr;
	json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	int r = 0;
	if (!json_is_object(m)) {
		snprintf(err, errlen, "manifest.json is not a JSON object%s%s", m ? "" : ": ", m ? "" : jerr.text);
		r = -EBADMSG;
		goto out;
	}
	const char *v = json_string_value(json_object_get(m, "version"));
	if (!update_version_valid(v)) {
		snprintf(err, errlen,
			 "manifest.json: \"version\" must be 1-64 characters of letters, digits and ._+- "
			 "(starting with a letter or digit)");
		r = -EBADMSG;
		goto out;
	}
	snprintf(ret_version, UPDATE_VERSION_MAX, "%s", v);
out:
	json_decref(m);
	return r;
}

int update_package_check(int fd, struct update_manifest *ret, char *err, size_t errlen)
{
	struct pkg_reader *rd = NULL;
	char *data = malloc(READ_CHUNK);
	char *manifest = NULL;
	size_t manifest_len = 0;
	struct archive *a = NULL;
	int r = 0;
	struct update_manifest m = { 0 };
	bool have_manifest = false, have_boxd = false, have_boxctl = false;
	if (!data) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if ((r = pkg_open(fd, false, &rd, &a, err, errlen)) < 0)
		goto out;
	struct archive_entry *e;
	int ar;
	while ((ar = sym_archive_read_next_header(a, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		char name[4096];
		const char *raw = sym_archive_entry_pathname(e);
		if ((r = clean_name(raw, name, sizeof(name), err, errlen)) < 0 ||
		    (r = check_entry_type(e, raw, err, errlen)) < 0)
			goto out;
		m.entries++;
		bool is_reg = sym_archive_entry_filetype(e) == AE_IFREG;
		bool is_manifest = strcmp(name, "manifest.json") == 0;
		if (is_manifest && (!is_reg || sym_archive_entry_size(e) > MANIFEST_MAX)) {
			snprintf(err, errlen, "manifest.json must be a file of at most %d bytes", MANIFEST_MAX);
			r = -EBADMSG;
			goto out;
		}
		if (is_manifest) {
			free(manifest);
			manifest = malloc(MANIFEST_MAX + 1);
			manifest_len = 0;
			if (!manifest) {
				r = -ENOMEM;
				goto out;
			}
		}
		have_boxd |= is_reg && strcmp(name, "bin/boxd") == 0;
		have_boxctl |= is_reg && strcmp(name, "bin/boxctl") == 0;
		/* Decompress every byte: a truncated or corrupt package must fail
		 * now, not halfway through the unpack. */
		for (;;) {
			la_ssize_t n = sym_archive_read_data(a, data, READ_CHUNK);
			if (n < 0) {
				snprintf(err, errlen, "the package is damaged (entry %s): %s", raw,
					 sym_archive_error_string(a));
				r = -EBADMSG;
				goto out;
			}
			if (n == 0)
				break;
			m.bytes += n;
			if (is_manifest) {
				if (manifest_len + (size_t)n > MANIFEST_MAX) {
					snprintf(err, errlen, "manifest.json is larger than %d bytes", MANIFEST_MAX);
					r = -EBADMSG;
					goto out;
				}
				memcpy(manifest + manifest_len, data, (size_t)n);
				manifest_len += (size_t)n;
			}
		}
		if (is_manifest) {
			if ((r = manifest_parse(manifest, manifest_len, m.version, err, errlen)) < 0)
				goto out;
			have_manifest = true;
		}
	}
	if (ar != ARCHIVE_EOF) {
		snprintf(err, errlen, "the package is damaged: %s", sym_archive_error_string(a));
		r = -EBADMSG;
		goto out;
	}
	if (!have_manifest || !have_boxd || !have_boxctl) {
		snprintf(err, errlen, "not a boxd release: the package has no %s",
			 !have_manifest ? "manifest.json" : !have_boxd ? "bin/boxd" : "bin/boxctl");
		r = -EBADMSG;
		goto out;
	}
	*ret = m;
out:
	pkg_close(rd, a);
	free(manifest);
	free(data);
	return r;
}

/* ---- unpacking ------------------------------------------------------------ */

static int fsync_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag != FTW_F && flag != FTW_DP && flag != FTW_D)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int extract(struct archive *a, const char *dest, const volatile sig_atomic_t *cancel, char *err,
		   size_t errlen)
{
	struct archive *w = archive_lib_write_disk_new();
	if (!w)
		return -ENOMEM;
	/* Names were checked (clean_name) and are made absolute below dest,
	 * so NOABSOLUTEPATHS cannot be used; the other guards stay as a second
	 * line of defence. */
	sym_archive_write_disk_set_options(w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						  ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	int r = 0, ar;
	struct archive_entry *e;
	while ((ar = sym_archive_read_next_header(a, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		if (cancel && *cancel) {
			r = -ECANCELED;
			snprintf(err, errlen, "cancelled");
			goto out;
		}
		char name[4096], path[8200];
		const char *raw = sym_archive_entry_pathname(e);
		if ((r = clean_name(raw, name, sizeof(name), err, errlen)) < 0 ||
		    (r = check_entry_type(e, raw, err, errlen)) < 0)
			goto out;
		if (!name[0])
			continue; /* the root: dest itself */
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dest, name) >= sizeof(path)) {
			snprintf(err, errlen, "entry %s: path too long", raw);
			r = -ENAMETOOLONG;
			goto out;
		}
		sym_archive_entry_set_pathname(e, path);
		/* A release never needs a setuid or setgid file. */
		sym_archive_entry_set_perm(e, sym_archive_entry_perm(e) & ~(mode_t)06000);
		if (sym_archive_write_header(w, e) < ARCHIVE_WARN) {
			snprintf(err, errlen, "cannot unpack %s: %s", name, sym_archive_error_string(w));
			r = -EIO;
			goto out;
		}
		if (sym_archive_entry_size(e) > 0) {
			const void *buf;
			size_t size;
			la_int64_t off;
			int dr;
			while ((dr = sym_archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
				if (sym_archive_write_data_block(w, buf, size, off) < ARCHIVE_WARN) {
					snprintf(err, errlen, "cannot write %s: %s", name, sym_archive_error_string(w));
					r = -EIO;
					goto out;
				}
			}
			if (dr != ARCHIVE_EOF) {
				snprintf(err, errlen, "the package is damaged (entry %s): %s", name, sym_archive_error_string(a));
				r = -EBADMSG;
				goto out;
			}
		}
		if (sym_archive_write_finish_entry(w) < ARCHIVE_WARN) {
			snprintf(err, errlen, "cannot finish %s: %s", name, sym_archive_error_string(w));
			r = -EIO;
			goto out;
		}
	}
	if (ar != ARCHIVE_EOF) {
		snprintf(err, errlen, "the package is damaged: %s", sym_archive_error_string(a));
		r = -EBADMSG;
		goto out;
	}
	if (sym_archive_write_close(w) != ARCHIVE_OK) {
		snprintf(err, errlen, "cannot unpack: %s", sym_archive_error_string(w));
		r = -EIO;
	}
out:
	sym_archive_write_free(w);
	return r;
}

int update_release_unpack(int fd, const char *want_sha256, const char *root, const char *version,
			  const volatile sig_atomic_t *cancel, char *err, size_t errlen)
{
	char releases[4096], tmp[4200], target[4200], path[4300];
	struct pkg_reader *rd = NULL;
	struct archive *a = NULL;
	bool have_tmp = false;
	int r;
	if (!update_version_valid(version)) {
		snprintf(err, errlen, "invalid version '%s'", version);
		return -EINVAL;
	}
	snprintf(releases, sizeof(releases), "%s/releases", root);
	snprintf(target, sizeof(target), "%s/%s", releases, version);
	if ((r = fs_mkdir_p(releases, 0755, err, errlen)) < 0)
		goto out;
	struct stat st;
	if (lstat(target, &st) == 0 && !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a directory", target);
		r = -ENOTDIR;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-XXXXXX", releases, version);
	if (!mkdtemp(tmp)) {
		r = -errno;
		snprintf(err, errlen, "cannot create a temp dir in %s: %s", releases, strerror(errno));
		goto out;
	}
	have_tmp = true;
	/* mkdtemp made it 0700: until the bytes are known to be the verified
	 * ones, no other user may reach (and run) anything in it. */

	if ((r = pkg_open(fd, true, &rd, &a, err, errlen)) < 0)
		goto out;
	if ((r = extract(a, tmp, cancel, err, errlen)) < 0)
		goto out;
	char got[UPDATE_SHA256_HEX];
	/* What libarchive left unread (tar padding after the end marker) is
	 * part of the package too. */
	if ((r = sha256_update_fd(rd->md, fd, NULL)) < 0 || (r = sha256_final_hex(rd->md, got)) < 0) {
		snprintf(err, errlen, "cannot hash the package: %s", strerror(-r));
		goto out;
	}
	if (want_sha256 && !sha256_hex_equal(got, want_sha256)) {
		snprintf(err, errlen, "the package changed after it was verified (SHA-256 now %s, expected %s)", got,
			 want_sha256);
		r = -EBADMSG;
		goto out;
	}
	static const char *const bins[] = { "bin/boxd", "bin/boxctl" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, bins[i]);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || chmod(path, (st.st_mode & 07777) | 0755) < 0) {
			snprintf(err, errlen, "%s is missing from the unpacked release", bins[i]);
			r = -EBADMSG;
			goto out;
		}
	}
	/* Durable before visible: every file and dir, then the rename. */
	if ((r = nftw(tmp, fsync_one, 16, FTW_PHYS | FTW_DEPTH)) != 0) {
		r = r < 0 ? r : -EIO;
		snprintf(err, errlen, "cannot fsync the unpacked release: %s", strerror(-r));
		goto out;
	}
	if (lstat(target, &st) == 0) {
		/* A release dir of this version exists (not the running one: the
		 * update refuses to re-apply the running version). Swap it out in
		 * one step, then delete it from its temp name. */
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot replace %s: %s", target, strerror(errno));
			goto out;
		}
	} else if (rename(tmp, target) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot rename the release into %s: %s", target, strerror(errno));
		goto out;
	} else {
		have_tmp = false;
	}
	/* Verified and in place: now others may read and run it (never
	 * under the temp name, which only ever held unverified bytes). */
	if (chmod(target, 0755) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make %s readable: %s", target, strerror(errno));
		goto out;
	}
	if ((r = fs_fsync_dir(releases)) < 0) {
		snprintf(err, errlen, "cannot fsync %s: %s", releases, strerror(-r));
		goto out;
	}
	r = 0;
out:
	if (have_tmp) {
		char e2[256];
		const char *roots[] = { releases, NULL };
		fs_remove_tree(roots, tmp, e2, sizeof(e2));
	}
	pkg_close(rd, a);
	return r;
}

int update_release_remove(const char *root, const char *version, char *err, size_t errlen)
{
	if (!update_version_valid(version)) {
		snprintf(err, errlen, "invalid version '%s'", version);
		return -EINVAL;
	}
	char path[4400], releases[4200];
	snprintf(releases, sizeof(releases), "%s/releases", root);
	snprintf(path, sizeof(path), "%s/%s", releases, version);
	const char *roots[] = { releases, NULL };
	int r = fs_remove_tree(roots, path, err, errlen);
	if (r >= 0)
		fs_fsync_dir(releases);
	return r;
}

int update_release_version(const char *release_dir, char ret_version[UPDATE_VERSION_MAX], char *err,
			   size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/manifest.json", release_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	char *buf = malloc(MANIFEST_MAX + 1);
	size_t len = 0;
	int r = 0;
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, MANIFEST_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MANIFEST_MAX) {
			snprintf(err, errlen, "%s is larger than %d bytes", path, MANIFEST_MAX);
			r = -EBADMSG;
			goto out;
		}
	}
	r = manifest_parse(buf, len, ret_version, err, errlen);
out:
	free(buf);
	close(fd);
	return r;
}
