/* app_bind.h — an app container is only ever started on the data dir boxd
 * made (common/bind_source.h), whoever starts it: the app tasks, the
 * restore, platformstart.
 *
 * Before an engine call that binds the data dir (create, start, restart):
 * app_bind_check() — the path, walked without following symlinks, is a
 * directory with the identity recorded in the app's row (a row without one,
 * from before, gets this one recorded). After it: app_bind_check_started()
 * — what the running container has at /app/data is that directory; if not,
 * the container is stopped at once. Either failure fails the task with
 * `bind_source_changed` (`missing_source` for a data dir that is gone: the
 * engine would create an empty one).
 *
 * All return 0 or a negative errno after task_ctx_fail().
 */
#pragma once

#include <stdbool.h>

#include "common/fs.h"

#define APP_DATA_TARGET "/app/data"

struct app;
struct engine;
struct task_ctx;

/* Check `dir` (the data dir of `a`, from app_data_dir_checked()) as the
 * bind source it is about to become. *ret_id gets its identity. */
int app_bind_check(struct task_ctx *ctx, const struct app *a, const char *dir, struct fs_id *ret_id);

/* After the engine started `container` of app `app_id`: it has `id` (the
 * data dir `dir`) at /app/data. A container that is not running has
 * nothing bound: fine. A worker that may not look into the container
 * checks `dir` on the host again instead. */
int app_bind_check_started(struct task_ctx *ctx, struct engine *e, const char *app_id, const char *dir,
			   const char *container, const struct fs_id *id);

/* app_bind_check(), then engine_container_start() (or _restart() with
 * `restart`, stop timeout `timeout_s`), then app_bind_check_started(),
 * then, for an app with domains, the proxy's routes are loaded again
 * (app_routes_sync_warn: the address may be new). Engine failures fail
 * the task with `engine_error`. */
int app_container_start_checked(struct task_ctx *ctx, struct engine *e, const struct app *a, const char *dir,
				const char *container, bool restart, int timeout_s);
