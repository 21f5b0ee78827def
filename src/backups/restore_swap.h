/* restore_swap.h — putting restored data into an app's data dir without
 * replacing the directory.
 *
 * A data dir is bound into containers: the app's own, and the sftp
 * container (under the appsdata root, or one by one for a custom dir). A
 * bind holds the directory itself, not its path. Swapping a restored tree
 * in by renaming directories (what restore did first) leaves every such
 * bind on the old, then deleted, directory: sftp shows nothing or stale
 * files, and what a user uploads there is lost. And the data dir is a
 * mount point of its own (a bind onto itself, for propagation), which
 * cannot be renamed at all.
 *
 * So a restore keeps the directory and swaps its *children*: every entry
 * of the data dir moves into an "aside" directory, then every entry of the
 * extracted tree moves into the data dir, and the data dir takes the
 * extracted root's mode, owner and times. Each move is a rename(2) within
 * one filesystem; the entries are the top level only, so it takes a few
 * milliseconds whatever the size of the data. The app's container is
 * stopped meanwhile; an sftp user sees the entries change one by one.
 *
 * Across mount points. Renames between the data dir (a mount point) and a
 * sibling in its parent cross mounts and fail with EXDEV, although it is
 * one filesystem. They are done in a detached, non-recursive clone of the
 * parent's mount (mountpoint.h: mount_open_clone), where the data dir is a
 * plain directory; the mounts themselves, and every container's bind, see
 * the result at once. Without CAP_SYS_ADMIN (no clone) the parent is used
 * as it is, which works as long as the data dir is not a mount point.
 *
 * Failure: every entry moved so far is moved back, in reverse; the data
 * dir is as it was. A crash in the middle leaves both trees in the two
 * hidden directories beside (or inside) the data dir; the next restore
 * starts over from the archive.
 */
#pragma once

#include <stddef.h>
#include <time.h>

/* The three directories of a swap, relative to `base_fd`. `fresh` and
 * `aside` may lie inside `dir` (when the data dir is a filesystem of its
 * own and nothing beside it shares its device): entries with their names
 * are then skipped. `aside` is created (mode 0700) and must not exist. */
struct restore_swap {
	int base_fd;
	const char *dir;       /* the data dir */
	const char *fresh;     /* the extracted tree */
	const char *aside;     /* where the old entries go */
	const char *skip[2];   /* names in `dir` not to move (fresh, aside inside it) */
	/* Out: the extracted root's atime and mtime, now the data dir's (to
	 * set again when temp dirs inside it are removed afterwards). */
	struct timespec times[2];
};

/* Swap the children as described above. 0, or a negative errno with a
 * message in err after everything was moved back. */
int restore_swap_children(struct restore_swap *sw, char *err, size_t errlen);
