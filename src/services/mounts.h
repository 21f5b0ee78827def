/* mounts.h — making the appsdata and volumes roots shared mount points.
 *
 * The sftp container binds the roots with `rslave` propagation so that a
 * filesystem mounted on the host under a root after the container started
 * (a CIFS share, a USB disk) shows up inside it, and its unmount too. A
 * slave only receives events from a shared (master) peer group, and `/` is
 * often private (it is on the test machines), so boxd makes each root a
 * mount point of its own that is shared:
 *
 *	mount --bind R R          (only if R is not a mount point yet; MS_REC,
 *	                           so mounts already below R stay visible)
 *	mount --make-rshared R    (only if R is not shared yet)
 *
 * Both steps are idempotent: the state is read from /proc/self/mountinfo
 * first, so a restarted daemon changes nothing. Needs CAP_SYS_ADMIN; without
 * it the calls fail with -EPERM and boxd works on, only without propagation.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

struct mountinfo_entry {
	bool found;         /* the path is a mount point */
	bool shared;        /* its optional fields carry "shared:N" */
	bool slave;         /* ... "master:N" */
	int mount_id;
};

/* Parse a /proc/self/mountinfo text and describe the topmost mount whose
 * mount point is `path` (octal escapes such as "\040" are decoded). Pure;
 * returns 0 (entry->found false when there is none) or -EBADMSG for a line
 * that does not parse. */
int mountinfo_lookup(const char *text, const char *path, struct mountinfo_entry *ret);

/* Every line of a mountinfo text, decoded. */
struct mountinfo_mount {
	int id, parent;          /* mount ids */
	unsigned major, minor;   /* the device of the filesystem */
	char *root;              /* the directory of that filesystem mounted here */
	char *mount_point;
	int shared;              /* N of "shared:N" (its peer group), or 0 */
	int master;              /* N of "master:N" (it is a slave of group N), or 0 */
};

/* Parse a whole mountinfo text. Pure; 0, -EBADMSG or -ENOMEM. Free the
 * array with mountinfo_free(). */
int mountinfo_parse(const char *text, struct mountinfo_mount **ret, size_t *ret_n);
void mountinfo_free(struct mountinfo_mount *m, size_t n);

/* Read a mountinfo file (/proc/self/mountinfo, /proc/PID/mountinfo) whole. */
int mountinfo_read(const char *file, char **ret, char *err, size_t errlen);

/* Make `path` (an existing directory) a shared mount point, as above.
 * `path` is resolved with realpath() first. Returns 0 when it already was
 * one, 1 when something was changed, or a negative errno with a message in
 * err. */
int mount_make_shared(const char *path, char *err, size_t errlen);

/* What the daemon does at start (and the platformstart task will): create
 * the appsdata and volumes roots (mkdir -p, mode 0755) and make both shared
 * mount points. Stops at the first failure. Returns 0 or a negative errno
 * with a message in err. */
int services_prepare_roots(const struct boxd_config *cfg, char *err, size_t errlen);

/* The undo of mount_make_shared() once nothing needs it (mount_release.c):
 * unmount `path` when it is a bind mount of the directory onto itself
 * (the kind mount_make_shared() makes; never a filesystem or a bind from
 * elsewhere that the operator mounted there), nothing is mounted below it,
 * and no other mount namespace holds a peer or slave of it (a container
 * that binds it with rslave propagation, as the sftp service does, shows
 * up as one). Returns 1 when it unmounted, 0 when it left the mount in
 * place (why says why; "" when there was nothing to undo), or a negative
 * errno with the message in why. Needs CAP_SYS_ADMIN to unmount. */
int mount_release_shared(const char *path, char *why, size_t whylen);

/* mount_release_shared() of the appsdata and volumes roots: what `boxd
 * serve` does when it stops (not when it re-executes for an update), so
 * that a state dir it leaves behind can be deleted. One line per root is
 * appended to report (what was done, or why not). Returns how many roots
 * it unmounted, or the first error. */
int services_release_roots(const struct boxd_config *cfg, char *report, size_t len);
