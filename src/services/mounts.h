/* mounts.h — the mount points the sftp service relies on.
 *
 * The sftp container binds the appsdata and volumes roots, and every
 * directory it shows one by one (an app's data dir or a volume outside the
 * roots), recursively with `rslave` propagation. For that to carry mounts
 * made later (a CIFS share that comes up after the container), each of them
 * must be a shared mount point of its own before the container binds it
 * (common/mountpoint.h says how and why). The roots are made so at daemon
 * start and by platformstart; the others right before a container that
 * binds them is created or started (services_prepare_spec_sources), and the
 * app tasks and volume calls keep them so as directories come and go.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/mountpoint.h"

struct service_spec;
struct store;
struct volume;

/* How long a volume's mount(8) may take (a CIFS or NFS server that does
 * not answer). */
#define SERVICES_MOUNT_TIMEOUT_MS 30000

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

/* What the daemon does at start (and the platformstart task): create the
 * appsdata and volumes roots (mkdir -p, mode 0755) and make both shared
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

/* mount_release_shared() of the appsdata and volumes roots, and first of
 * the self-binds below them (data dirs, volume dirs: sftp.h): what `boxd
 * serve` does when it stops (not when it re-executes for an update), so
 * that a state dir it leaves behind can be deleted. One line per root is
 * appended to report (what was done, or why not). Returns how many roots
 * it unmounted, or the first error. */
int services_release_roots(const struct boxd_config *cfg, char *report, size_t len);

/* Make every source of `spec` whose mount asks for it (service_mount.
 * share) a shared mount point of its own, read-only where the mount is
 * (a mountpoint volume: writable once a filesystem is mounted there).
 * Sources that are missing are skipped (the caller's source check names
 * them). Returns 0, or the first failure as a negative errno with a message
 * in err (the caller decides whether it is fatal: without CAP_SYS_ADMIN
 * nothing propagates, but the container still shows the directory). */
int services_prepare_spec_sources(const struct service_spec *spec, char *err, size_t errlen);

/* Make every app's data dir and every volume's directory that exists a
 * shared mount point of its own (a volume of type mountpoint read-only
 * while nothing is mounted on it): what the install task and the volume
 * calls do one by one, for all of them — at platformstart, since binds do
 * not survive a reboot, and for dirs made by an older boxd. Goes on after a
 * failure; returns how many failed (0: none) with the first failure's
 * message in err, or a negative errno when the rows cannot be read. */
int services_prepare_data_dirs(const struct boxd_config *cfg, struct store *store, char *err, size_t errlen);

/* Bring a volume's directory into shape: "dir" → a shared mount point of its
 * own; "mountpoint" → the same, read-only until the host mounts a
 * filesystem there (nothing when the directory does not exist: boxd never
 * creates it); "bind" and the filesystem types → boxd mounts mount_source
 * there (mount_bind_dir, mount_filesystem), creating the directory first.
 * Idempotent (platformstart calls it for every volume at each start).
 * Returns 0, 1 when it mounted something, or a negative errno with a
 * message in err. */
int services_mount_volume(const struct boxd_config *cfg, const struct volume *v, char *err, size_t errlen);

/* Undo it when the volume is deleted: unmount what boxd mounted there (bind
 * and filesystem types) and its bind of the directory onto itself. The
 * data stays. */
int services_unmount_volume(const struct volume *v, char *err, size_t errlen);
