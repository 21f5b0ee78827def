/* app_engine_state.c — what the engine says about an app's container, for
 * GET /api/v1/apps/:id (app_engine_state.h). */
#include "app_engine_state.h"

#include <errno.h>
#include <stdio.h>

#include "common/timeutil.h"
#include "engine/engine.h"
#include "services/service.h"

/* API threads give the engine 3 s, as the services routes do. */
#define APP_STATE_ENGINE_TIMEOUT_MS 3000

static json_t *time_or_null(int64_t ms)
{
	char buf[40];
	if (ms <= 0)
		return json_null();
	format_rfc3339_ms(ms, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *unknown(const char *why)
{
	return json_pack("{s:s, s:b, s:s}", "state", "unknown", "running", 0, "error", why);
}

json_t *app_engine_state_json(const struct boxd_config *cfg, const struct app *a)
{
	char name[APP_ID_MAX + 8], err[600];
	struct engine *e;
	struct engine_container c;
	json_t *o;

	snprintf(name, sizeof(name), "app-%s", a->id);
	int r = service_engine_open(cfg, APP_STATE_ENGINE_TIMEOUT_MS, &e, err, sizeof(err));
	if (r < 0)
		return unknown(err);
	r = engine_container_inspect(e, name, &c);
	if (r == -ENOENT) {
		o = json_pack("{s:s, s:b}", "state", "missing", "running", 0);
	} else if (r < 0) {
		snprintf(err, sizeof(err), "%s", engine_errmsg(e));
		o = unknown(err);
	} else {
		o = json_pack("{s:s, s:b, s:s, s:o, s:o, s:i, s:i, s:o}", "state", c.status, "running", c.running,
			      "id", c.id, "startedAt", time_or_null(c.started_ms), "finishedAt",
			      time_or_null(c.finished_ms), "exitCode", c.exit_code, "restartCount", c.restart_count,
			      "health", c.health[0] ? json_string(c.health) : json_null());
		if (o && c.health[0])
			json_object_set_new(o, "healthFailingStreak", json_integer(c.health_failing_streak));
		engine_container_release(&c);
	}
	engine_close(e);
	return o;
}
