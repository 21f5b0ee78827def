/* update.h — the `platformupdate` and `platformstart` task types.
 *
 * platformupdate (args {"package": "/abs/path.tar.gz", "sha256": "<64 hex>",
 *               "skipBackup": false}; locks type:update exclusive). The type
 *               is not called `update`: that name is the app task that
 *               recreates an app's container from a new image (app_tasks.h).
 *               Its lock keeps DESIGN.md's name, type:update.
 *   1. verify the package's SHA-256 (error code `bad_checksum`: nothing
 *      changed, no backup made);
 *   2. check the package (`bad_package`) and refuse the version `current`
 *      already points at (`same_version`);
 *   3. unless skipBackup, a full backup (backups_run_full(): per-app locks,
 *      platform untouched, so app tasks of other apps go on);
 *   4. take `platform` exclusive (waiting visibly, like a worker's own
 *      locks: "Waiting for platform (held by task 17, install)"), and only
 *      now, the apply: unpack into <install_root>/releases/<version>, run
 *      its boxd once (`version`), switch `current`, have the daemon re-exec
 *      into it (reexec.h) and wait until it serves again. Any failure here
 *      restores the previous `current` and fails the task with `apply_failed`.
 *   The task ends `succeeded` after the re-exec: its worker survives the
 *   daemon's exec (it is re-adopted like after a restart) and records the
 *   result itself once the new daemon has answered, and removes the
 *   releases older than the one it replaced (update_releases_prune()).
 *   Result: {"version", "previousVersion", "release", "previousRelease",
 *   "backupId", "daemonPid", "releasesRemoved"}.
 *
 * platformstart (no args; locks type:platformstart, platform and
 * service:sftp, all exclusive): created by the daemon at every start. Makes
 * the appsdata and volumes roots shared mounts, brings the sftp service to its
 * spec (rebuild only when its hash differs), and starts the containers of
 * installed apps that are not running, recreating those that were removed
 * (never over a missing data dir); an app the operator stopped (app.h)
 * stays stopped, its container stopped should it run. App tasks created meanwhile wait for
 * `platform`, visibly. Without a container engine it fails with
 * `engine_unavailable`; nothing else in boxd depends on it.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Register platformupdate and platformstart. Called from
 * boxd_register_task_types(). */
void update_register_task_types(void);

/* Check platformupdate task args; -EINVAL with a message for the user. */
int update_args_validate(json_t *args, char *err, size_t errlen);

/* Admission of a platformupdate (tasks/task_enqueue.h): one at a time.
 * -EEXIST naming the active one (ret->id) and its state while one is
 * queued, waiting or running. */
struct task_enqueue;
struct task_enqueued;
int update_admit(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret);
