/* service_status.c — see service.h. A service's status as JSON: its
 * container as the engine reports it, the spec it should run, and a health
 * probe. */
#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/timeutil.h"
#include "service-internal.h"

/* A container that started this recently and does not answer yet is
 * "starting", not "unhealthy". */
#define STARTING_GRACE_MS 10000

/* ---- status ------------------------------------------------------------------- */

static json_t *time_or_null(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	char buf[40];
	format_rfc3339_ms(ms, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *engine_mounts_json(const struct engine_container *c)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < c->n_mounts; i++) {
		const struct engine_mount_info *m = &c->mounts[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", m->type, "source", m->source,
						   "target", m->destination, "propagation", m->propagation, "readOnly",
						   m->read_only));
	}
	return a;
}

json_t *service_status(struct engine *e, const char *engine_error, const struct service_def *def,
		       const struct boxd_config *cfg, struct store *store)
{
	char cname[SERVICE_CONTAINER_NAME_MAX], msg[512] = "", hash[SERVICE_HASH_MAX] = "";
	service_container_name(cfg, def->name, cname, sizeof(cname));
	json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:s, s:[], s:n, s:n}",
			      "name", def->name, "summary", def->summary, "containerName", cname, "exists", 0, "running",
			      0, "state", "unknown", "containerId", "image", "startedAt", "specHash", "currentSpecHash",
			      "upToDate", "health", "unknown", "mounts", "spec", "error");
	if (!o)
		return NULL;
	struct service_spec spec = { 0 };
	char spec_error[600] = "";
	if (def->build_spec(cfg, store, &spec, msg, sizeof(msg)) == 0 && service_spec_hash(&spec, hash) == 0) {
		json_object_set_new(o, "currentSpecHash", json_string(hash));
		json_object_set_new(o, "spec", service_spec_to_json(&spec));
	} else {
		hash[0] = '\0';
		snprintf(spec_error, sizeof(spec_error), "cannot build the %s spec: %s", def->name, msg);
	}
	service_spec_release(&spec);

	if (!e) {
		json_object_set_new(o, "error", json_string(engine_error ? engine_error : "no container engine"));
		return o;
	}
	struct engine_container c = { 0 };
	int r = engine_container_inspect(e, cname, &c);
	if (r == -ENOENT) {
		json_object_set_new(o, "state", json_string("missing"));
		json_object_set_new(o, "health", json_string("missing"));
		if (*spec_error)
			json_object_set_new(o, "error", json_string(spec_error));
		return o;
	}
	if (r < 0) {
		json_object_set_new(o, "error", json_string(engine_errmsg(e)));
		return o;
	}
	const char *label = engine_container_label(&c, SERVICE_LABEL_HASH);
	json_object_set_new(o, "exists", json_true());
	json_object_set_new(o, "running", json_boolean(c.running));
	json_object_set_new(o, "state", json_string(c.status));
	json_object_set_new(o, "containerId", json_string(c.id));
	json_object_set_new(o, "image", json_string(c.image));
	json_object_set_new(o, "startedAt", c.running ? time_or_null(c.started_ms) : json_null());
	json_object_set_new(o, "specHash", label ? json_string(label) : json_null());
	if (*hash)
		json_object_set_new(o, "upToDate", json_boolean(label && strcmp(label, hash) == 0));
	json_object_set_new(o, "mounts", engine_mounts_json(&c));
	const char *health = "stopped";
	if (c.running) {
		char why[256] = "";
		if (!def->probe || def->probe(cfg, SERVICE_PROBE_TIMEOUT_MS, why, sizeof(why)) == 1)
			health = "healthy";
		else if (c.started_ms > 0 && now_wall_ms() - c.started_ms < STARTING_GRACE_MS)
			health = "starting";
		else
			health = "unhealthy";
		if (strcmp(health, "healthy") != 0 && *why && !*spec_error)
			snprintf(spec_error, sizeof(spec_error), "%s", why);
	}
	json_object_set_new(o, "health", json_string(health));
	if (*spec_error)
		json_object_set_new(o, "error", json_string(spec_error));
	engine_container_release(&c);
	return o;
}
