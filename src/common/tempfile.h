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

/* Remove the temp files in `dir` whose writer is gone (a crash between
 * create and rename): names ending in ".tmp-<pid>" with no process <pid>.
 * Returns how many were removed, or a negative errno. */
int tempfile_sweep(const char *dir);
