/* status_engine.c — the engine part of /api/v1/status: can boxd reach a
 * container engine, and which one. Short timeouts: a stuck engine must not
 * hang the status page.
 *
 * apiVersion is the version boxd negotiated and speaks (engine.h, "API
 * version"); engineApiVersion and engineMinApiVersion are the range the
 * engine offers. An engine outside boxd's range is reachable, with the
 * reason in error. */
#include <errno.h>
#include <stdio.h>

#include "engine/engine.h"
#include "services/service.h"
#include "status_hooks.h"

#define STATUS_ENGINE_TIMEOUT_MS 2000

json_t *api_status_engine(const struct boxd_config *cfg)
{
	struct engine *e;
	char err[600];
	const char *configured = cfg->engine_socket;
	int r = service_engine_open(cfg, STATUS_ENGINE_TIMEOUT_MS, &e, err, sizeof(err));
	if (r < 0)
		return json_pack("{s:b, s:s?, s:n, s:n, s:n, s:s}", "reachable", 0, "socket", configured, "version",
				 "apiVersion", "product", "error", err);
	json_t *o = json_pack("{s:b, s:s, s:n, s:n, s:n, s:n, s:n, s:n}", "reachable", 1, "socket",
			      engine_socket_path(e), "version", "apiVersion", "engineApiVersion", "engineMinApiVersion",
			      "product", "error");
	struct engine_version v = { 0 };
	char api[ENGINE_API_VERSION_MAX];
	/* The negotiated version first: it comes from the cheap /_ping,
	 * while Podman's /version may take seconds on a busy host. */
	r = o ? engine_api_version(e, api) : -ENOMEM;
	if (r == 0)
		json_object_set_new(o, "apiVersion", json_string(api));
	if (r == 0 && engine_version(e, &v) == 0) {
		json_object_set_new(o, "version", json_string(v.version));
		json_object_set_new(o, "engineApiVersion", json_string(v.api_version));
		json_object_set_new(o, "engineMinApiVersion", json_string(v.min_api_version));
		json_object_set_new(o, "product", json_string(v.product));
		engine_version_release(&v);
	} else if (o) {
		json_object_set_new(o, "error", json_string(engine_errmsg(e)));
	}
	engine_close(e);
	return o;
}
