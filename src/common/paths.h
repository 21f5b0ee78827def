/* paths.h — validating paths that come from users or the config.
 *
 * boxd creates, moves and deletes directories for apps and volumes, and binds
 * them into containers. Every such path is checked here first:
 *   - absolute and normalized: no empty, "." or ".." component, no "//", no
 *     trailing "/";
 *   - never "/" nor a system directory (or a path below one): /etc, /proc,
 *     /sys, /dev, /boot, /usr, /bin, /sbin, /lib, /lib64, /run, /var/lib/boxd's
 *     own state dir, ...;
 *   - no symlink escape: no existing component of the path is a symlink, so
 *     what the path names is what it says (checked with lstat, component by
 *     component; a missing tail is fine);
 *   - for the roles that require it, under an allowed parent;
 *   - never one of boxd's own directories (the state dir, the install
 *     root, the backup dir, the appsdata and volumes roots), a parent of
 *     one, or a path inside one — except a volume below the volumes root,
 *     which lives in the state dir by default. So an app can never be given
 *     the database, the task logs, boxd's binaries or the backups, and an
 *     uninstall can never delete them.
 * The same checks run again on every path read from the store before boxd
 * acts on it: the store is not trusted for path safety (docs/ARCHITECTURE.md
 * "Security").
 * Functions return 0 or -EINVAL with a message for the user in err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Basic checks: absolute, normalized, not a system dir, no symlink in any
 * existing component. `state_dir` (may be NULL) is refused too, as are paths
 * inside it unless `allow_in_state` (the default roots live there). */
int path_check(const char *path, const char *state_dir, bool allow_in_state, char *err, size_t errlen);

/* Whether `path` is `parent` or below it (both normalized). */
bool path_is_under(const char *path, const char *parent);

/* A volume's host path: path_check, boxd's own dirs refused (above), and
 * either strictly under the volumes root or under one of /mnt, /media,
 * /srv, /opt. */
int path_check_volume(const struct boxd_config *cfg, const char *path, char *err, size_t errlen);

/* A custom data dir (the default one, <appsdata_root>/<id>, is made from
 * a valid app id): path_check, and nowhere in boxd's own dirs (above), the
 * appsdata root and the volumes root included, nor a parent of one. */
int path_check_app_data(const struct boxd_config *cfg, const char *path, char *err, size_t errlen);

/* A backup archive or manifest named by a `backups` row: a file name (no
 * '/', not starting with '.') directly inside the backup dir. */
int path_check_backup_file(const struct boxd_config *cfg, const char *path, char *err, size_t errlen);

/* The directories the config names, as the trusted roots of the fs_*()
 * walks (fs.h): appsdata root, volumes root, backup dir, state dir,
 * install root. NULL-terminated; the strings belong to cfg. */
#define PATHS_TRUSTED_MAX 5
void paths_trusted_roots(const struct boxd_config *cfg, const char *ret[PATHS_TRUSTED_MAX + 1]);
