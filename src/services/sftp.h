/* sftp.h — the sftp service: one OpenSSH internal-sftp container that shows
 * every app's data and every volume to an operator with a key.
 *
 * Mounts (clients are chrooted to /mnt, so they see /appsdata, /volumes and
 * /custom), all recursive binds (rbind: filesystems already mounted below a
 * source are shown) with `rslave` propagation (mounted later: shown too):
 *	<appsdata_root>  → /mnt/appsdata        read-only top
 *	<volumes_root>   → /mnt/volumes         read-only top
 *	an app's data dir outside both roots    → /mnt/custom/apps/<appId>
 *	a volume's host path outside both roots → /mnt/custom/volumes/<volumeId>
 * The roots are bound once, as parents: an app installed (or a volume added)
 * under them changes nothing in the spec, so it needs no rebuild.
 *
 * The roots are read-only in the container, their entries are not: every
 * app data dir and volume directory below a root is a mount point of its
 * own on the host (a bind onto itself, made by the task that creates it and
 * by platformstart; common/mountpoint.h), which reaches the container
 * through propagation and keeps its read-write flag there. So an sftp user
 * can change everything inside an app's data dir but cannot rename, delete
 * or replace the dir itself (a mount point), nor create anything beside it
 * in the root — in particular not a symlink where boxd expects an app's
 * data dir (issue 10, finding 1). A dir in the moment between its creation
 * and its bind (or after its bind was released for an uninstall) shows
 * read-only. Every directory bound one by one (the /mnt/custom ones) is made
 * a shared mount point of its own before the container binds it, so that
 * mounts on or below it after the container started reach it too.
 *
 * Env: SFTP_PORT (the container uses the host network), SFTP_AUTHORIZED_KEYS
 * (the configured file's keys: blank lines and comments dropped, so that
 * editing a comment does not force a rebuild). See
 * scripts/images/build-sftp-image.sh for the image.
 */
#pragma once

#include <stddef.h>

#include "service.h"

/* One app data dir or volume host path. */
struct sftp_dir {
	const char *id;
	const char *path;
	/* Which directory it is beyond its path (service_mount.identity):
	 * the row's creation time. NULL: none. */
	const char *identity;
	/* A volume of type `mountpoint`: the host mounts a filesystem there at
	 * its leisure, so until then boxd's bind of the directory onto itself
	 * is read-only (nobody writes into the empty mount point). */
	bool mountpoint;
};

/* Build the sftp spec from explicit inputs; pure (no I/O). `apps` are the
 * apps' effective data dirs, `volumes` the volumes' host paths; those under
 * either root are covered by the root's mount. `authorized_keys` is the
 * keys text (may be NULL: nobody can log in). Returns 0, -ENOMEM, or
 * -EINVAL (an id that cannot be a path component) with a message. */
int sftp_spec_build(const struct boxd_config *cfg, const struct sftp_dir *apps, size_t n_apps,
		    const struct sftp_dir *volumes, size_t n_volumes, const char *authorized_keys,
		    struct service_spec *ret, char *err, size_t errlen);

/* Read the apps and volumes rows and the authorized keys file (a missing
 * file means no keys) and build the spec: the sftp service's build_spec. */
int sftp_spec_load(const struct boxd_config *cfg, struct store *store, struct service_spec *ret, char *err,
		   size_t errlen);

/* Keep the key lines of an authorized_keys text: drop blank lines and
 * comments, trim trailing whitespace, join with '\n'. malloc'ed or NULL. */
char *sftp_keys_normalize(const char *text);

/* The sftp service's health probe: connect to 127.0.0.1:<port> and read
 * an SSH banner. 1 it answered; 0 refused (nothing listens yet); -1 it
 * accepted the connection but sent no banner in time (service.h). */
int sftp_probe(const struct boxd_config *cfg, int timeout_ms, char *why, size_t whylen);

extern const struct service_def sftp_service;
