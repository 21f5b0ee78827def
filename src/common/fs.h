/* fs.h — directory operations that must not escape where they are aimed.
 *
 * Data directories are created, moved and deleted by app tasks running as
 * root, on paths that came from users. Every operation here refuses to
 * follow a symlink (O_NOFOLLOW / AT_SYMLINK_NOFOLLOW, openat walks), so a
 * symlink planted inside a data dir can never redirect a delete or a copy
 * outside it. Callers validate the top-level path first (paths.h).
 * Functions return 0 or a negative errno, with a message in err.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with `mode` for the directories it creates. */
int fs_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen);

/* Delete `path` and everything below it, never following symlinks (a
 * symlink is removed, not its target) and never crossing into another
 * filesystem (a mount point below is refused: -EXDEV). A missing path is
 * success. */
int fs_remove_tree(const char *path, char *err, size_t errlen);

/* Copy the tree `src` to `dst` (which must not exist): regular files (with
 * fsync), directories, symlinks (as symlinks), modes, owners and mtimes. */
int fs_copy_tree(const char *src, const char *dst, char *err, size_t errlen);

/* Move a directory: rename(2) when on the same filesystem, else copy to a
 * temporary sibling of dst, fsync, rename into place, then remove src. The
 * data is never in only a half-written place. dst must be missing or an
 * empty directory (else -EEXIST before anything is copied); a failed copy
 * leaves no temporary behind. */
int fs_move_tree(const char *src, const char *dst, char *err, size_t errlen);

/* fsync a directory (after creating/renaming entries in it). */
int fs_fsync_dir(const char *path);
