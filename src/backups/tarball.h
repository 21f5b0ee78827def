/* tarball.h — backup archives on disk: write a directory tree into a
 * compressed tar, read it back, hash files, and write small files safely.
 *
 * An archive holds the tree below a directory: the directory itself as
 * ".", then every entry by its relative path ("a", "a/b"), in name order.
 * Regular files, directories, symlinks (as symlinks, never followed), hard
 * links (stored once, then as links), fifos and device nodes keep their
 * mode, numeric owner and mtime. Sockets are skipped. A file with holes is
 * stored sparse (its data regions only, found with SEEK_DATA/SEEK_HOLE;
 * pax GNU.sparse 1.0) and restored with its holes. The tree is read
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
#include <stdbool.h>
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

#define TARBALL_SHA256_HEX 65 /* 64 hex digits and the NUL: common/sha256.h SHA256_HEX */

struct tarball_info {
	char sha256[TARBALL_SHA256_HEX]; /* of the archive file as written */
	int64_t size;                    /* bytes of the archive file */
	int64_t data_bytes;              /* bytes of file data read from the tree */
	int64_t entries;                 /* entries written, "." included */
};

/* The app's record (backups.h) travels in its archive as the first entry,
 * a regular file of this name, before the "." entry: boxd's archives always
 * start the tree with ".", so an entry before it cannot be part of the
 * tree. Extraction skips it; tarball_read_record() reads it. */
#define TARBALL_RECORD_NAME "boxd-app.json"
#define TARBALL_RECORD_MAX (1024 * 1024)

struct backup_secret;

struct tarball_create_opts {
	enum tarball_format fmt;
	int64_t max_size;           /* > 0: abandon the archive beyond this many bytes (-EFBIG) */
	const char *record;         /* JSON text written as TARBALL_RECORD_NAME; NULL: none */
	/* Seal the archive (backup_crypt.h); NULL or kind NONE: plain. */
	const struct backup_secret *secret;
	/* Called after every MiB of file data read (and at the end) with the
	 * bytes read so far; the caller rate-limits what it reports. */
	void (*progress)(void *userdata, int64_t data_bytes);
	void *userdata;
};

/* tarball_create() with the options above. */
int tarball_create_ex(const char *src_dir, const char *dest_path, const struct tarball_create_opts *o,
		      const volatile sig_atomic_t *cancel, struct tarball_info *ret, char *err, size_t errlen);

/* The bytes of file data an archive of `src_dir` will read: the sum of
 * the sizes of its regular files (of the data regions of a file with
 * holes), each hard-linked file once; and the number of entries. For
 * progress: known before the archive starts, exact for a tree at rest. */
int tarball_tree_size(const char *src_dir, int64_t *ret_bytes, int64_t *ret_entries, char *err, size_t errlen);

/* Archive the tree at `src_dir` (a directory; not followed if it is a
 * symlink) into `dest_path`, which must not lie inside it. The SHA-256 and
 * size are computed from the bytes as they are written. An existing file at
 * dest_path is replaced (atomically). `max_size` > 0: an archive that grows
 * beyond that many bytes is abandoned (-EFBIG, no file left). */
int tarball_create(const char *src_dir, const char *dest_path, enum tarball_format fmt, int64_t max_size,
		   const volatile sig_atomic_t *cancel, struct tarball_info *ret, char *err, size_t errlen);

struct tarball_extract_opts {
	/* The archive must be this file: its SHA-256 (hex, any case) and
	 * size. NULL: not checked. */
	const char *sha256;
	int64_t size;
	/* The file must be boxd's: a regular file with one link, owned by
	 * this process's user, not writable by group or others. */
	bool require_own;
	/* Refuse an archive file larger than this (-EFBIG); 0: no limit. */
	int64_t max_size;
	/* Restore the numeric owners (only when running as root); else every
	 * entry belongs to this process's user. */
	bool owners;
	/* Restore setuid/setgid bits, device nodes and fifos; else the bits
	 * are cleared and such entries skipped (counted in `skipped`). */
	bool special;
	/* The secret an encrypted archive (backup_crypt.h, told by its
	 * header) is opened with; NULL: none configured. An encrypted archive
	 * is authenticated in full when it is opened: every record, before
	 * anything is extracted (-ENOKEY no secret, -EKEYREJECTED the wrong
	 * one, -EBADMSG damaged, reordered or cut short). */
	const struct backup_secret *secret;
};

struct tarball_extract_info {
	int64_t entries;    /* entries restored, "." included */
	int64_t skipped;    /* device nodes, fifos, sockets left out */
	int64_t stripped;   /* entries whose setuid/setgid bits were cleared */
	int64_t data_bytes; /* bytes of file data written (holes not counted) */
};

/* Extract the archive at `path` (zstd or gzip, detected) into the empty
 * directory open as `dest_fd` (an O_RDONLY|O_DIRECTORY descriptor).
 *
 * The file is opened once (no symlink followed, a fifo never waited for);
 * the checks of `o`, the SHA-256 check and the extraction all read that
 * descriptor, and the extraction hashes the bytes it reads again: if they
 * differ from the checked ones (the file was rewritten in place meanwhile)
 * the call fails with -EBADMSG. So the tree extracted is the tree that was
 * verified, or the call fails.
 *
 * Entries with an absolute path or a ".." component, and entries that
 * would be written through a symlink, are refused (-EBADMSG): a damaged or
 * hostile archive cannot write outside dest. The "." entry's mode, owner
 * (with `owners`) and mtime are applied to dest last, only once the
 * archive checked out, so that dest stays as private as the caller made
 * it (0700) while unverified bytes land in it. Holes of sparse entries
 * stay holes, and runs of zeros in other files become holes.
 *
 * On failure dest may hold part of the tree: extract into a temp dir and
 * rename it into place only on success. The process's working directory
 * is dest during the call (libarchive resolves hard links and its symlink
 * checks relative to it), so this is not for threaded callers; it is
 * restored before returning. *ret (optional) is filled on success. */
int tarball_extract(const char *path, int dest_fd, const struct tarball_extract_opts *o,
		    const volatile sig_atomic_t *cancel, struct tarball_extract_info *ret, char *err, size_t errlen);

/* tarball_extract() in two steps, for a caller that must tell a bad
 * archive (nothing touched yet) from a failed extraction:
 * tarball_open_verified() opens `path` and does the checks of `o` (0 and
 * an open descriptor at offset 0 in *ret_fd, the caller's to close; -ENOENT,
 * -EPERM not boxd's file, -EFBIG too large, -EBADMSG the SHA-256 or size
 * differs); tarball_extract_fd() extracts from that descriptor, hashing
 * again (`path` only names it in messages). */
int tarball_open_verified(const char *path, const struct tarball_extract_opts *o, int *ret_fd, char *err,
			  size_t errlen);
int tarball_extract_fd(int fd, const char *path, int dest_fd, const struct tarball_extract_opts *o,
		       const volatile sig_atomic_t *cancel, struct tarball_extract_info *ret, char *err, size_t errlen);

/* The record (TARBALL_RECORD_NAME) of the archive open as `fd`, read from
 * offset 0 (decrypting with o->secret if the archive is encrypted): a
 * malloc'ed NUL-terminated text in *ret. -ENOENT: the archive has none
 * (made before records existed). The offset is back at 0 afterwards. Call
 * it on a descriptor tarball_open_verified() gave: only that one was
 * verified. */
int tarball_read_record(int fd, const char *path, const struct tarball_extract_opts *o, char **ret, char *err,
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
