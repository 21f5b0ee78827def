/* mountpoint.h — mount points boxd makes so that mounts propagate.
 *
 * The sftp container binds directories of the host recursively with
 * `rslave` propagation, so that a filesystem mounted on the host below such
 * a directory after the container started (a CIFS share that comes up late,
 * a USB disk) shows up inside, and its unmount too. A slave receives events
 * only from a shared (master) peer group, and `/` is often private (it is on
 * the test machines), so boxd makes each directory it hands out a mount
 * point of its own that is shared: a bind of the directory onto itself.
 *
 * Its own peer group. A bind of a directory that lies inside a shared mount
 * joins that mount's peer group: every later mount below the directory is
 * then made twice (once in the bind, once hidden in the parent), and the
 * copies multiply with each level. So the self-bind is made as a detached
 * clone (open_tree(OPEN_TREE_CLONE)), made private and then shared — a new
 * peer group — and only then attached (move_mount). A container that binds
 * it (or sees it appear under a root it binds) becomes a slave of that
 * group: mounts on or below the directory reach it, nothing is doubled.
 * On kernels without the new mount API (before 5.12) the classic
 * mount(MS_BIND) is used instead, with the doubling.
 *
 * Every function is idempotent: the state is read from /proc/self/mountinfo
 * first, so a restarted daemon changes nothing. All of this needs
 * CAP_SYS_ADMIN; without it calls fail with -EPERM and boxd works on, only
 * without propagation. Functions return 0 (or a count) or a negative errno
 * with a message in err; nothing here logs.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct mountinfo_entry {
	bool found;                   /* the path is a mount point */
	bool shared;                  /* its optional fields carry "shared:N" */
	bool slave;                   /* ... "master:N" */
	int mount_id;
	int parent_id;
	unsigned dev_major, dev_minor;
	char root[PATH_MAX];          /* field 4: the mount's root in its filesystem */
	char mount_point[PATH_MAX];   /* field 5, decoded */
};

/* One line of a mountinfo text (proc(5)), split: the numbers decoded, the
 * two paths still escaped, pointing into the text (not NUL-terminated). */
struct mountinfo_line {
	int mount_id;
	int parent_id;
	unsigned dev_major, dev_minor;
	const char *root;             /* field 4 */
	size_t root_len;
	const char *mount_point;      /* field 5 */
	size_t mount_point_len;
	int shared;                   /* N of "shared:N" (its peer group; the kernel counts from 1), or 0 */
	int master;                   /* N of "master:N" (a slave of group N), or 0 */
};

/* Split the line [line, end) (without its newline). Pure; 1 parsed, 0 an
 * empty line, -EBADMSG a line that does not parse (fewer than six fields,
 * no "-" separator, a bad device number). *ret is written only on 1. */
int mountinfo_line_parse(const char *line, const char *end, struct mountinfo_line *ret);

/* Decode mountinfo's octal escapes ("\040" for a space) of the field
 * [s, s+n) into out (`outlen` bytes, NUL-terminated; n+1 always suffice);
 * false when it does not fit. */
bool mountinfo_unescape(const char *s, size_t n, char *out, size_t outlen);

/* Read a mountinfo file (/proc/self/mountinfo, /proc/PID/mountinfo) whole
 * into *ret (NUL-terminated; free() it). 0 or a negative errno with a
 * message in err. */
int mountinfo_read(const char *file, char **ret, char *err, size_t errlen);

/* Parse a /proc/self/mountinfo text and describe the topmost mount whose
 * mount point is `path` (octal escapes such as "\040" are decoded). Pure;
 * returns 0 (entry->found false when there is none) or -EBADMSG for a line
 * that does not parse. */
int mountinfo_lookup(const char *text, const char *path, struct mountinfo_entry *ret);

/* The same for the mount with id `mount_id`. */
int mountinfo_by_id(const char *text, int mount_id, struct mountinfo_entry *ret);

/* Is `top` (the topmost mount at `path`) a bind of `path` onto itself —
 * the same filesystem as `parent` (the mount it sits on) and rooted at the
 * very directory `path` names there? Pure. Such a mount hides nothing: it
 * is what mount_make_shared() makes, and what mount_release() undoes. A
 * filesystem mounted at `path` (another device, or another directory of
 * the same one) is not. */
bool mountinfo_is_self_bind(const struct mountinfo_entry *top, const struct mountinfo_entry *parent,
			    const char *path);

enum {
	/* `path` is opened without following any symlink (openat2
	 * RESOLVE_NO_SYMLINKS): for directories whose path a user chose.
	 * Without it the path is resolved with realpath() first (the roots
	 * the config names; a symlink there is the operator's choice). */
	MOUNT_NOFOLLOW = 1 << 0,
	/* A new self-bind is read-only (its own top mount only): the place of
	 * a filesystem that is mounted there later. Ignored when `path` is a
	 * mount point already. */
	MOUNT_READ_ONLY = 1 << 1,
};

/* Make `path` (an existing directory) a shared mount point in a peer group
 * of its own (see above): if it is not a mount point, a recursive self-bind
 * (mounts already below it stay visible, as shared copies); if it is one
 * that is not shared, MS_SHARED|MS_REC on it. Returns 0 when it already
 * was one, 1 when something was changed. */
int mount_make_shared(const char *path, unsigned flags, char *err, size_t errlen);

/* Undo mount_make_shared() on `path`: detach (MNT_DETACH) every self-bind
 * stacked at `path`, topmost first, and stop at the first mount that is not
 * one (a filesystem somebody mounted there stays). Used before a data dir
 * is moved or deleted: a mount point cannot be renamed or removed. A
 * container that bound the directory keeps its own copy of the bind.
 * Returns the number of mounts detached (0: none). */
int mount_release(const char *path, char *err, size_t errlen);

/* 1 when `path` is a mount point, 0 when not, negative errno. */
int mount_is_point(const char *path, char *err, size_t errlen);

/* The first mount point strictly below `path` (into `ret`, PATH_MAX bytes):
 * 1 when there is one, 0 when not, negative errno. */
int mount_find_below(const char *path, char *ret, char *err, size_t errlen);

/* Open a detached, non-recursive clone of the mount that shows `path`
 * (open_tree(OPEN_TREE_CLONE)), rooted at `path`: in it the mount points
 * below `path` are plain directories of the same filesystem, so entries can
 * be renamed across them (renameat() relative to the returned descriptor)
 * while the mounts themselves — and every container's bind of them — stay
 * in place and see the result. The clone goes away with the descriptor.
 * `path` is opened without following symlinks. */
int mount_open_clone(const char *path, int *ret_fd, char *err, size_t errlen);
/* The same for a directory already open as `fd` (O_PATH or not). */
int mount_clone_fd(int fd, int *ret_fd, char *err, size_t errlen);

/* Bind the existing directory `source` at `target` (an existing directory),
 * recursively, for a volume boxd mounts: `source` is first made a shared
 * mount point of its own (mount_make_shared), and the bind is a peer of it,
 * so a mount made later below either shows in both and reaches whatever
 * binds `target`. Both are opened without following symlinks. Idempotent:
 * a `target` that is a mount point already is left as it is (0); else 1. */
int mount_bind_dir(const char *source, const char *target, char *err, size_t errlen);

/* Mount the filesystem `source` of `fstype` at `target` (an existing
 * directory) by running mount(8) — it knows the helpers CIFS and NFS need
 * — as `mount -t FSTYPE -o nosuid,nodev[,OPTIONS] SOURCE TARGET`, from an
 * argv (no shell), waiting at most `timeout_ms` (then it is killed), and
 * make the mount shared. Idempotent like mount_bind_dir(). The tool's
 * message is in err when it fails. */
int mount_filesystem(const char *fstype, const char *source, const char *options, const char *target,
		     int timeout_ms, char *err, size_t errlen);

/* Undo mount_bind_dir() / mount_filesystem(): detach (MNT_DETACH) the
 * topmost mount at `target` whatever it is, then any self-binds below it.
 * 0 when nothing was mounted there. */
int mount_detach(const char *target, char *err, size_t errlen);
