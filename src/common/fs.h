/* fs.h — directory operations that must not escape where they are aimed.
 *
 * Data directories are created, moved and deleted by app tasks running as
 * root, on paths that came from users or from the store (which is not
 * trusted for path safety either). A path is never resolved twice: each
 * operation opens the directories on its way one component at a time with
 * O_NOFOLLOW (an openat() walk) and then works relative to the descriptor
 * it holds (mkdirat, unlinkat, renameat). So a symlink planted anywhere on
 * the way — before the call or while it runs — makes the call fail
 * (-ELOOP), it never redirects a create, a delete or a move elsewhere.
 *
 * Trusted roots. The directories the config names (the appsdata and
 * volumes roots, the backup dir, the state dir, the install root) are
 * resolved as given: a symlink in /var/lib/boxd is the operator's choice.
 * Below the longest such root that contains a path, no symlink is
 * followed; a path under none of them is walked from "/". Callers pass
 * the list (paths_trusted_roots() in paths.h builds it from the config);
 * NULL means none.
 *
 * Paths must be absolute and normalized (no "", "." or ".." component):
 * -EINVAL otherwise. Functions return 0 or a negative errno, with a
 * message in err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The identity of a directory (device and inode), as fstat() tells it. */
struct fs_id {
	uint64_t dev;
	uint64_t ino;
};

/* Open `path` for *at() use, without following a symlink below its
 * trusted root (see above). `flags` apply to the last component
 * (O_PATH|O_DIRECTORY, O_RDONLY|O_DIRECTORY, ...); O_NOFOLLOW and
 * O_CLOEXEC are added. -ELOOP when a component below the root is a
 * symlink, -ENOTDIR when one is not a directory, -ENOENT when missing. */
int fs_open_nofollow(const char *const *roots, const char *path, int flags, int *ret_fd);

/* The parent directory of `path` opened O_RDONLY|O_DIRECTORY the same way
 * (so it can be fsynced), and a pointer into `path` at its last component.
 * `path` must lie strictly below its root. */
int fs_open_parent(const char *const *roots, const char *path, int *ret_fd, const char **ret_name);

/* mkdir -p with `mode` for the directories it creates, following
 * symlinks: for the roots the config names only. */
int fs_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen);

/* mkdir -p without following a symlink below the trusted root (the root
 * itself is created with fs_mkdir_p when missing). An existing directory
 * is fine; a symlink or a file on the way is -ELOOP / -ENOTDIR. *ret_id
 * (optional) gets the identity of the directory `path` names. */
int fs_mkdir_nofollow(const char *const *roots, const char *path, mode_t mode, struct fs_id *ret_id, char *err,
		      size_t errlen);

/* Delete the directory `path` and everything below it. Never follows a
 * symlink (one inside the tree is removed, not its target; one on the way
 * to `path` fails the call), never crosses into another filesystem (a
 * mount point below is refused: -EXDEV), and never deletes anything but a
 * directory tree: a file or a symlink given as `path` is refused
 * (-ENOTDIR) and left alone. A missing path is success. */
int fs_remove_tree(const char *const *roots, const char *path, char *err, size_t errlen);

/* The same for the entry `name` of the directory open as `dirfd`. */
int fs_remove_tree_at(int dirfd, const char *name, char *err, size_t errlen);

/* Move a directory: renameat(2) when on the same filesystem, else copy to
 * a temporary sibling of dst, fsync, rename into place, then remove src.
 * The data is never in only a half-written place. dst must be missing or
 * an empty directory (else -EEXIST before anything is copied); its parent
 * is created (fs_mkdir_nofollow); a failed copy leaves no temporary
 * behind. Both paths are opened without following symlinks (see above).
 * Regular files, directories and symlinks (as symlinks) are copied with
 * their modes, owners and mtimes; fifos, sockets and devices are not
 * data and are skipped. *ret_id (optional) gets the identity of the
 * directory at dst afterwards. */
int fs_move_tree(const char *const *roots, const char *src, const char *dst, struct fs_id *ret_id, char *err,
		 size_t errlen);

/* fsync a directory (after creating/renaming entries in it). */
int fs_fsync_dir(const char *path);

/* A path a data dir may be moved or restored into: it does not exist, or
 * is an empty directory (not a symlink). *ret_exists (optional) says
 * whether it exists. */
bool fs_dir_is_free(const char *path, bool *ret_exists);

/* Write all `len` bytes of `data` to `fd`, going on after short writes and
 * EINTR. 0 or a negative errno (-EIO when write() returns 0). */
int fs_write_all(int fd, const void *data, size_t len);
