/* sftp.h — the sftp service: one OpenSSH internal-sftp container that shows
 * every app's data and every volume to an operator with a key.
 *
 * Mounts (clients are chrooted to /mnt, so they see /appsdata, /volumes and
 * /custom):
 *	<appsdata_root>  → /mnt/appsdata        rslave
 *	<volumes_root>   → /mnt/volumes         rslave
 *	an app's data dir outside both roots    → /mnt/custom/apps/<appId>        rslave
 *	a volume's host path outside both roots → /mnt/custom/volumes/<volumeId>  rslave
 * The roots are bound once, as parents: an app installed (or a volume added)
 * under them changes nothing in the spec, so it needs no rebuild; and since
 * the daemon makes the roots shared mounts (mounts.h), a filesystem mounted on
 * the host under them later (a CIFS share that comes up after the container)
 * shows up inside too, and so does its unmount.
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
 * an SSH banner. */
int sftp_probe(const struct boxd_config *cfg, int timeout_ms, char *why, size_t whylen);

extern const struct service_def sftp_service;
