/* tempfile.h — files that must not be lost or half-written (git's
 * lockfile.c, redis's rdb.c): write to a temp file beside the target,
 * fsync it, rename it over the target, fsync the directory. A crash at any
 * point leaves the old file or the new one, never a mix; the only debris is
 * a temp file, which tempfile_sweep() removes at the next start.
 *
 *	r = tempfile_write("/var/lib/boxd/tokens", text, strlen(text), 0600);
 *
 * The temp file is "<target>.tmp-<pid>" (so a sweep can tell whether its
 * writer still runs), created with O_NOFOLLOW and close-on-exec.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Replace `path` with `len` bytes of `data`, mode `mode` (before umask).
 * 0, or a negative errno with nothing changed and no temp file left. */
int tempfile_write(const char *path, const void *data, size_t len, mode_t mode);

/* The last steps of tempfile_write() for a temp file that the caller named
 * and wrote itself (a stream: an archive, an SQLite copy, a JSON export):
 * fsync `tmp` (through `fd`, or opened read-only when fd < 0), rename it
 * over `path`, fsync the directory of `path`. 0, or a negative errno with
 * the step that failed in err; `tmp` is then the caller's to remove (it is
 * gone already when only the directory's fsync failed). `fd` stays open. */
int tempfile_commit(int fd, const char *tmp, const char *path, char *err, size_t errlen);

/* Remove the temp files in `dir` whose writer is gone (a crash between
 * create and rename): names ending in ".tmp-<pid>" with no process <pid>.
 * Returns how many were removed, or a negative errno. */
int tempfile_sweep(const char *dir);
