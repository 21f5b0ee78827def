/* tarball.h — backup archives on disk: write a directory tree into a
 * compressed tar, read it back, hash files, and write small files safely.
 *
 * An archive holds the tree below a directory: the directory itself as
 * ".", then every entry by its relative path ("a", "a/b"), in name order.
 * Regular files, directories, symlinks (as symlinks, never followed), hard
 * links (stored once, then as links), fifos and device nodes keep their
 * mode, numeric owner and mtime. Sockets are skipped. The tree is read
 * live: a file that vanishes during the walk is left out; one that changes
 * may be captured in a mixed state (boxd archives data dirs of running apps
 * on purpose, see docs/ARCHITECTURE.md "Backups").
 *
 * Every file written here goes through the same sequence (STYLE.md "Files
 * that must not be lost"): a temp file ".NAME.tmp-XXXXXX" in the target's
 * directory, fsync, rename over the target, fsync of the directory. On any
 * failure the temp file is removed and the target is untouched.
 *
 * Functions return 0 or a negative errno with a message for the operator in
 * err; ret_* outputs are written only on success. -ECANCELED when *cancel
 * became non-zero (checked between files and every MiB).
 */
#pragma once

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

enum tarball_format {
	TARBALL_ZSTD, /* tar + zstd (libarchive's default level, 3) */
	TARBALL_GZIP, /* tar + gzip (level 6) */
};

/* "zstd" / "gzip" (also "gz"). 0 or -EINVAL. */
int tarball_format_from_string(const char *s, enum tarball_format *ret);
const char *tarball_format_name(enum tarball_format f);
/* The file name suffix: ".tar.zst" or ".tar.gz". */
const char *tarball_format_ext(enum tarball_format f);

#define TARBALL_SHA256_HEX 65 /* 64 hex digits and the NUL */

struct tarball_info {
	char sha256[TARBALL_SHA256_HEX]; /* of the archive file as written */
	int64_t size;                    /* bytes of the archive file */
	int64_t data_bytes;              /* bytes of file data read from the tree */
	int64_t entries;                 /* entries written, "." included */
};

/* Archive the tree at `src_dir` (a directory; not followed if it is a
 * symlink) into `dest_path`, which must not lie inside it. The SHA-256 and
 * size are computed from the bytes as they are written. An existing file at
 * dest_path is replaced (atomically). */
int tarball_create(const char *src_dir, const char *dest_path, enum tarball_format fmt,
		   const volatile sig_atomic_t *cancel, struct tarball_info *ret, char *err, size_t errlen);

/* Extract the archive at `path` (zstd or gzip, detected) into `dest_dir`,
 * an existing empty directory, which takes the mode, owner (when running
 * as root) and mtime of the archive's "." entry. Entries with an absolute
 * path or a ".." component, and entries that would be written through a
 * symlink, are refused (-EBADMSG): a damaged or hostile archive cannot
 * write outside dest_dir. On failure dest_dir may hold part of the tree:
 * extract into a temp dir and rename it into place only on success.
 * The process's working directory is dest_dir during the call (libarchive
 * resolves hard links and its symlink checks relative to it), so this is
 * not for threaded callers; it is restored before returning. */
int tarball_extract(const char *path, const char *dest_dir, const volatile sig_atomic_t *cancel, char *err,
		    size_t errlen);

/* SHA-256 of a file, as 64 lowercase hex digits, and its size. */
int tarball_sha256_file(const char *path, char ret_hex[TARBALL_SHA256_HEX], int64_t *ret_size, char *err,
			size_t errlen);

/* Check that the file at `path` is what was written: its SHA-256 (hex, any
 * case) and size. 0; -EBADMSG when it differs (err says how); -ENOENT and
 * other errors when it cannot be read. */
int tarball_verify(const char *path, const char *sha256, int64_t size, char *err, size_t errlen);

/* Write `len` bytes to `path` with the temp/fsync/rename/fsync-dir
 * sequence; mode 0600. */
int tarball_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen);
