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
