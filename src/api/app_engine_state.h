/* app_engine_state.h — the engine's view of an app's container, for
 * GET /api/v1/apps/:id.
 *
 * The app record comes from the store; what the container does comes from
 * the engine, asked at the time of the request (inspect of `app-<id>`,
 * within 3 s). The result is the "container" object of the answer:
 *
 *	{"state":"running","running":true,"id":"...","startedAt":"...",
 *	 "finishedAt":null,"exitCode":0,"restartCount":0,
 *	 "health":"healthy","healthFailingStreak":0}
 *
 * state is the engine's (running, exited, created, paused, restarting,
 * dead); "missing" when the engine has no such container; "unknown" with
 * "error" (the reason) when the engine cannot be asked — the app record is
 * still answered. health is the image's healthcheck status (starting,
 * healthy, unhealthy), null when the image has none. Times are RFC 3339
 * UTC, null for never.
 *
 * Ports and URLs are the proxy's (app_publish_fill_json(), next to this
 * in get_app()); this object is only what the engine says.
 */
#pragma once

#include <jansson.h>

#include "apps/app.h"
#include "common/config.h"

/* A new reference; never NULL unless out of memory. */
json_t *app_engine_state_json(const struct boxd_config *cfg, const struct app *a);
