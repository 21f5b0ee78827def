/* app_tasks.h — the app task types: install, uninstall, restart, configure,
 * update. Each holds `app:<id>` exclusive and `platform` shared, plus
 * `service:sftp` shared when it creates, moves or deletes a data dir (so an
 * sftp rebuild, which holds it exclusive, can never race it).
 *
 * configure args: "env" (replaces the whole env), or "envSet" (object) and
 * "envUnset" (array of names), merged into the env the app has when the
 * task runs; "dataDir" (a move; null: back to the default).
 *
 * The API decides whether a task may be queued at all (app_task_check); the
 * worker re-checks against the app's real state when it starts, since the
 * tasks queued before it may have failed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

void apps_register_task_types(void);

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

/* May a task of `type` for app `id` be queued now? Judged against the state
 * the app will be in once the tasks already queued for it have run.
 * Returns 0 if yes; -ENOENT (no such app), -EEXIST (install of an existing
 * app) or -EBUSY (wrong state) with a message for the operator in err;
 * other negative errno from the store. */
int app_task_check(struct store *s, const char *type, const char *id, char *err, size_t errlen);
