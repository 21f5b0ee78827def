/* app_tasks.h — the app task types: install, uninstall, restart, configure,
 * update, start, stop. Each holds `app:<id>` exclusive and `platform` shared, plus
 * `service:sftp` shared when it creates, moves or deletes a data dir (so an
 * sftp rebuild, which holds it exclusive, can never race it).
 *
 * configure args: "env" (replaces the whole env), or "envSet" (object) and
 * "envUnset" (array of names), merged into the env the app has when the
 * task runs; "dataDir" (a move; null: back to the default). "ports",
 * "domains" and "httpPort" are stored by the API when it accepts the task
 * (app_publish.h): the task applies them (a new container for ports, a
 * route change for domains and httpPort, without a new container).
 *
 * stop sets the app's stopped flag (app.h) and stops its container; start
 * clears it and starts the container (a new one if it was removed). While
 * the flag is set, configure and update make the new container without
 * starting it, and restart is refused.
 *
 * Whether a task may be queued at all is app_admit.h's; the worker checks
 * again against the app's real state when it starts.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

void apps_register_task_types(void);

/* Who keeps the proxy's routes (services/proxy.h), set once at program
 * start by boxd_register_task_types(): the app layer cannot call the
 * services layer (it sits beside it). Called when an app task changed what
 * the proxy routes to — a container (re)created, restarted or removed
 * (its address changes), domains or httpPort changed — and only while
 * [proxy] enabled. 0, or a negative errno with a message in err;
 * -ENOTCONN (the proxy is not running: its start loads every route) is
 * only a warning in the task's log. */
struct boxd_config;
typedef int (*app_routes_sync_fn)(const struct boxd_config *cfg, struct store *store, char *err, size_t errlen);
void app_tasks_set_routes_sync(app_routes_sync_fn fn);

/* Load the proxy's routes after a container of app `a` (with domains) was
 * started or recreated outside the app's own tasks' main path (a restart,
 * a restore, platformstart): its address may have changed. A failure is a
 * warning in the task's log, never the task's failure (the app runs; the
 * proxy's next start or the app's next task loads the routes again). */
struct task_ctx;
struct app;
void app_routes_sync_warn(struct task_ctx *ctx, const struct app *a);
/* Bring the proxy's routes to what the store says, for a task other than
 * the app tasks (a restore that installed an app again); 0 when there is
 * no proxy. On failure the task's error is set (proxy_error). */
struct task_ctx;
int app_tasks_sync_routes(struct task_ctx *ctx);

struct app;
struct engine;
struct task_ctx;

/* Create and start the container app-<id> of `a` from its row (image, env,
 * data dir bound at /app/data), replacing a container of that name: the
 * container an install makes. For tasks other than the app's own (the
 * platformstart task recreates a container that was removed); the caller
 * holds what protects the app (platformstart: `platform` exclusive) and has
 * checked that the data dir exists (the engine would create a missing bind
 * source). Records container_id and run_state. On failure the task's error
 * is set (task_ctx_fail) and a negative errno returned. */
int app_container_recreate(struct task_ctx *ctx, struct engine *engine, const struct app *a);

/* The final backup an uninstall makes before it removes anything (unless
 * its args say "noBackup": true): the backups module sets it when it
 * registers its task types (apps does not depend on backups). It archives
 * `data_dir` as an app backup of `a` inside the running task and returns 0
 * with the backup's id, or a negative errno after task_ctx_fail(). Not
 * set: uninstalls make none. */
typedef int (*app_final_backup_fn)(struct task_ctx *ctx, const struct app *a, const char *data_dir,
				   int64_t *ret_backup_id);
void app_set_final_backup(app_final_backup_fn fn);
