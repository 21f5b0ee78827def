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
 *   - for the roles that require it, under an allowed parent.
 * Functions return 0 or -EINVAL with a message for the user in err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Basic checks: absolute, normalized, not a system dir, no symlink in any
 * existing component. `state_dir` (may be NULL) is refused too, as are paths
 * inside it unless `allow_in_state` (the default roots live there). */
int path_check(const char *path, const char *state_dir, bool allow_in_state, char *err, size_t errlen);

/* Whether `path` is `parent` or below it (both normalized). */
bool path_is_under(const char *path, const char *parent);

/* A volume's host path: path_check, and either under `volumes_root` or under
 * one of /mnt, /media, /srv, /opt. */
int path_check_volume(const char *path, const char *volumes_root, const char *state_dir, char *err, size_t errlen);

/* An app's data dir: path_check; the default lives under `appsdata_root`. */
int path_check_app_data(const char *path, const char *state_dir, char *err, size_t errlen);
