/* engine_request.c — the engine client's request builder: the body of
 * POST /containers/create built with jansson from a struct
 * engine_container_spec, and the names of the enums it carries.
 *
 * Pure: no I/O. Every user-given string is checked here (a bad one is
 * -EINVAL with a message), so the transport never sends a body it did not
 * validate.
 */
#include "engine/engine-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and enums -------------------------------------------------------- */

static const char *const propagation_names[] = {
	[ENGINE_PROPAGATION_DEFAULT] = "",
	[ENGINE_PROPAGATION_PRIVATE] = "private",
	[ENGINE_PROPAGATION_RPRIVATE] = "rprivate",
	[ENGINE_PROPAGATION_SHARED] = "shared",
	[ENGINE_PROPAGATION_RSHARED] = "rshared",
	[ENGINE_PROPAGATION_SLAVE] = "slave",
	[ENGINE_PROPAGATION_RSLAVE] = "rslave",
};

static const char *const restart_names[] = {
	[ENGINE_RESTART_NO] = "no",
	[ENGINE_RESTART_ALWAYS] = "always",
	[ENGINE_RESTART_UNLESS_STOPPED] = "unless-stopped",
	[ENGINE_RESTART_ON_FAILURE] = "on-failure",
};

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

const char *engine_propagation_to_string(enum engine_propagation p)
{
	return (unsigned)p < ELEMENTSOF(propagation_names) ? propagation_names[p] : NULL;
}

int engine_propagation_from_string(const char *s, enum engine_propagation *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(propagation_names); i++)
		if (strcmp(s, propagation_names[i]) == 0) {
			*ret = (enum engine_propagation)i;
			return 0;
		}
	return -EINVAL;
}

const char *engine_restart_policy_to_string(enum engine_restart_policy p)
{
	return (unsigned)p < ELEMENTSOF(restart_names) ? restart_names[p] : NULL;
}

int engine_restart_policy_from_string(const char *s, enum engine_restart_policy *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(restart_names); i++)
		if (strcmp(s, restart_names[i]) == 0) {
			*ret = (enum engine_restart_policy)i;
			return 0;
		}
	return -EINVAL;
}

/* ---- the create request ----------------------------------------------------- */

struct build {
	char *errbuf;
	size_t errlen;
};

static int build_fail(struct build *b, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int build_fail(struct build *b, int err, const char *fmt, ...)
{
	va_list ap;

	if (b->errbuf && b->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(b->errbuf, b->errlen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* json_string() fails both on bad UTF-8 and on ENOMEM; tell them apart so
 * that a user sees "not valid UTF-8" and not a made-up memory error. */
static int new_string(struct build *b, const char *what, const char *s, json_t **ret)
{
	json_t *v = json_string(s);

	if (v) {
		*ret = v;
		return 0;
	}
	v = json_string_nocheck(s);
	if (!v)
		return -ENOMEM;
	json_decref(v);
	return build_fail(b, -EINVAL, "%s is not valid UTF-8", what);
}

static int set_string(struct build *b, json_t *obj, const char *key, const char *what, const char *s)
{
	json_t *v = NULL;
	int r = new_string(b, what, s, &v);

	if (r < 0)
		return r;
	return json_object_set_new_nocheck(obj, key, v) < 0 ? -ENOMEM : 0;
}

static int set_new(json_t *obj, const char *key, json_t *v)
{
	/* json_object_set_new() takes the reference even when it fails. */
	return json_object_set_new_nocheck(obj, key, v) < 0 ? -ENOMEM : 0;
}

static int strv_to_json(struct build *b, const char *what, const char *const *v, json_t **ret)
{
	json_t *arr = json_array();
	int r;

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; v[i]; i++) {
		json_t *s = NULL;
		r = new_string(b, what, v[i], &s);
		if (r < 0)
			goto fail;
		if (json_array_append_new(arr, s) < 0) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret = arr;
	return 0;
fail:
	json_decref(arr);
	return r;
}

static bool is_abs_path(const char *s)
{
	return s && s[0] == '/';
}

/* A Binds entry "SRC:DST:ro|rw[,PROPAGATION],rbind" for Podman, which
 * binds recursively only when asked this way (engine.h). */
static int bind_entry(struct build *b, const struct engine_mount *mt, const char *prop, json_t *binds)
{
	if (strpbrk(mt->source, ":,") || strpbrk(mt->target, ":,"))
		return build_fail(b, -EINVAL, "mount %s: a recursive bind on Podman cannot name a path with ':' or ','",
				  mt->target);
	char *entry;
	if (asprintf(&entry, "%s:%s:%s%s%s,rbind", mt->source, mt->target, mt->read_only ? "ro" : "rw",
		     prop[0] ? "," : "", prop) < 0)
		return -ENOMEM;
	json_t *s = NULL;
	int r = new_string(b, "bind", entry, &s);
	free(entry);
	if (r < 0)
		return r;
	return json_array_append_new(binds, s) < 0 ? -ENOMEM : 0;
}

static int mounts_to_json(struct build *b, const struct engine_container_spec *spec, enum engine_flavor flavor,
			  json_t **ret, json_t **ret_binds)
{
	json_t *arr = json_array(), *binds = json_array(), *m = NULL;
	int r = -ENOMEM;

	if (!arr || !binds) {
		json_decref(arr);
		json_decref(binds);
		return -ENOMEM;
	}
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct engine_mount *mt = &spec->mounts[i];
		const char *type, *prop;

		if (!is_abs_path(mt->target)) {
			r = build_fail(b, -EINVAL, "mount %zu: target must be an absolute path", i);
			goto fail;
		}
		switch (mt->type) {
		case ENGINE_MOUNT_BIND:
			type = "bind";
			if (!is_abs_path(mt->source)) {
				r = build_fail(b, -EINVAL, "mount %s: bind source must be an absolute path",
					       mt->target);
				goto fail;
			}
			break;
		case ENGINE_MOUNT_VOLUME:
			type = "volume";
			if (!mt->source || !mt->source[0]) {
				r = build_fail(b, -EINVAL, "mount %s: a volume mount needs a volume name",
					       mt->target);
				goto fail;
			}
			break;
		case ENGINE_MOUNT_TMPFS:
			type = "tmpfs";
			if (mt->source && mt->source[0]) {
				r = build_fail(b, -EINVAL, "mount %s: a tmpfs mount has no source", mt->target);
				goto fail;
			}
			break;
		default:
			r = build_fail(b, -EINVAL, "mount %s: unknown type %d", mt->target, (int)mt->type);
			goto fail;
		}
		prop = engine_propagation_to_string(mt->propagation);
		if (!prop) {
			r = build_fail(b, -EINVAL, "mount %s: unknown propagation %d", mt->target,
				       (int)mt->propagation);
			goto fail;
		}
		if ((prop[0] || mt->recursive) && mt->type != ENGINE_MOUNT_BIND) {
			r = build_fail(b, -EINVAL, "mount %s: propagation and recursion apply to bind mounts only",
				       mt->target);
			goto fail;
		}
		if (mt->type == ENGINE_MOUNT_BIND && mt->recursive && flavor == ENGINE_FLAVOR_PODMAN) {
			if ((r = bind_entry(b, mt, prop, binds)) < 0)
				goto fail;
			continue;
		}

		m = json_object();
		if (!m)
			goto fail;
		if ((r = set_string(b, m, "Type", "mount type", type)) < 0 ||
		    (r = set_string(b, m, "Target", "mount target", mt->target)) < 0)
			goto fail;
		if (mt->type != ENGINE_MOUNT_TMPFS &&
		    (r = set_string(b, m, "Source", "mount source", mt->source)) < 0)
			goto fail;
		if ((r = set_new(m, "ReadOnly", json_boolean(mt->read_only))) < 0)
			goto fail;
		/* Docker binds Mounts recursively unless told not to; from API
		 * 1.44 on, read-only recursively unless told not to. */
		bool docker = flavor == ENGINE_FLAVOR_DOCKER || flavor == ENGINE_FLAVOR_DOCKER_1_44;
		bool non_recursive = mt->type == ENGINE_MOUNT_BIND && !mt->recursive && docker;
		bool ro_top_only = mt->type == ENGINE_MOUNT_BIND && mt->recursive && mt->read_only &&
				   flavor == ENGINE_FLAVOR_DOCKER_1_44;
		if (prop[0] || non_recursive || ro_top_only) {
			json_t *opts = json_object();
			if (!opts) {
				r = -ENOMEM;
				goto fail;
			}
			if ((r = set_new(m, "BindOptions", opts)) < 0 ||
			    (prop[0] && (r = set_string(b, opts, "Propagation", "propagation", prop)) < 0) ||
			    (non_recursive && (r = set_new(opts, "NonRecursive", json_true())) < 0) ||
			    (ro_top_only && (r = set_new(opts, "ReadOnlyNonRecursive", json_true())) < 0))
				goto fail;
		}
		r = json_array_append_new(arr, m) < 0 ? -ENOMEM : 0;
		m = NULL;
		if (r < 0)
			goto fail;
	}
	*ret = arr;
	*ret_binds = binds;
	return 0;
fail:
	json_decref(m);
	json_decref(arr);
	json_decref(binds);
	return r;
}

/* PortBindings {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, ...]} and the
 * matching ExposedPorts {"80/tcp": {}} (Docker publishes only exposed
 * ports on some versions). */
static int ports_to_json(struct build *b, const struct engine_container_spec *spec, json_t *host_config,
			 json_t *config)
{
	json_t *bindings = json_object(), *exposed = json_object();
	int r = -ENOMEM;

	if (!bindings || !exposed)
		goto fail;
	for (size_t i = 0; i < spec->n_ports; i++) {
		const struct engine_port_binding *p = &spec->ports[i];
		const char *proto = p->protocol ? p->protocol : "tcp";
		char key[32], hport[8];
		json_t *list, *bind;

		if (p->container_port == 0) {
			r = build_fail(b, -EINVAL, "port binding %zu: container port 0", i);
			goto fail;
		}
		if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 && strcmp(proto, "sctp") != 0) {
			r = build_fail(b, -EINVAL, "port %u: protocol must be tcp, udp or sctp",
				       (unsigned)p->container_port);
			goto fail;
		}
		snprintf(key, sizeof(key), "%u/%s", (unsigned)p->container_port, proto);
		if (p->host_port)
			snprintf(hport, sizeof(hport), "%u", (unsigned)p->host_port);
		else
			hport[0] = '\0';

		list = json_object_get(bindings, key);
		if (!list) {
			/* set_new() fails when json_array() returned NULL. */
			if ((r = set_new(bindings, key, json_array())) < 0 ||
			    (r = set_new(exposed, key, json_object())) < 0)
				goto fail;
			list = json_object_get(bindings, key);
		}
		bind = json_object();
		if (!bind || json_array_append_new(list, bind) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		if ((r = set_string(b, bind, "HostIp", "host ip", p->host_ip ? p->host_ip : "")) < 0 ||
		    (r = set_string(b, bind, "HostPort", "host port", hport)) < 0)
			goto fail;
	}
	if ((r = set_new(host_config, "PortBindings", bindings)) < 0) {
		bindings = NULL;
		goto fail;
	}
	bindings = NULL;
	r = set_new(config, "ExposedPorts", exposed);
	exposed = NULL;
	return r;
fail:
	json_decref(bindings);
	json_decref(exposed);
	return r;
}

int engine_spec_to_json(const struct engine_container_spec *spec, json_t **ret, char *errbuf, size_t errlen)
{
	return engine_spec_to_json_for(spec, ENGINE_FLAVOR_DOCKER, ret, errbuf, errlen);
}

int engine_spec_to_json_for(const struct engine_container_spec *spec, enum engine_flavor flavor, json_t **ret,
			    char *errbuf, size_t errlen)
{
	struct build b = { errbuf, errlen };
	json_t *config = NULL, *hc = NULL, *v = NULL, *restart;
	int r = -ENOMEM;

	if (!spec->image || !spec->image[0])
		return build_fail(&b, -EINVAL, "no image given");
	if (spec->name && !engine_container_ref_valid(spec->name))
		return build_fail(&b, -EINVAL, "bad container name \"%.64s\": use letters, digits, '_', '.', '-'",
				  spec->name);
	if (spec->memory_bytes < 0)
		return build_fail(&b, -EINVAL, "negative memory limit");
	if (spec->restart_max_retries < 0 ||
	    (spec->restart_max_retries > 0 && spec->restart != ENGINE_RESTART_ON_FAILURE))
		return build_fail(&b, -EINVAL, "restart_max_retries applies to on-failure only and is >= 0");
	if (!engine_restart_policy_to_string(spec->restart))
		return build_fail(&b, -EINVAL, "unknown restart policy %d", (int)spec->restart);
	if (spec->network_mode && !spec->network_mode[0])
		return build_fail(&b, -EINVAL, "empty network mode");
	if ((spec->n_labels && !spec->labels) || (spec->n_mounts && !spec->mounts) || (spec->n_ports && !spec->ports))
		return build_fail(&b, -EINVAL, "array count without an array");
	for (size_t i = 0; spec->env && spec->env[i]; i++) {
		const char *eq = strchr(spec->env[i], '=');
		if (!eq || eq == spec->env[i])
			return build_fail(&b, -EINVAL, "environment entry \"%.64s\" is not KEY=VALUE", spec->env[i]);
	}
	for (size_t i = 0; i < spec->n_labels; i++)
		if (!spec->labels[i].key || !spec->labels[i].key[0] || !spec->labels[i].value)
			return build_fail(&b, -EINVAL, "label %zu: empty key or NULL value", i);

	config = json_object();
	hc = json_object();
	if (!config || !hc)
		goto fail;

	if ((r = set_string(&b, config, "Image", "image", spec->image)) < 0)
		goto fail;
	if (spec->cmd) {
		if ((r = strv_to_json(&b, "cmd", spec->cmd, &v)) < 0 || (r = set_new(config, "Cmd", v)) < 0)
			goto fail;
	}
	if (spec->entrypoint) {
		if ((r = strv_to_json(&b, "entrypoint", spec->entrypoint, &v)) < 0 ||
		    (r = set_new(config, "Entrypoint", v)) < 0)
			goto fail;
	}
	if (spec->env) {
		if ((r = strv_to_json(&b, "environment", spec->env, &v)) < 0 || (r = set_new(config, "Env", v)) < 0)
			goto fail;
	}
	if (spec->user && (r = set_string(&b, config, "User", "user", spec->user)) < 0)
		goto fail;
	if (spec->working_dir) {
		if (!is_abs_path(spec->working_dir)) {
			r = build_fail(&b, -EINVAL, "working directory must be an absolute path");
			goto fail;
		}
		if ((r = set_string(&b, config, "WorkingDir", "working directory", spec->working_dir)) < 0)
			goto fail;
	}
	if (spec->tty && (r = set_new(config, "Tty", json_true())) < 0)
		goto fail;
	if (spec->stop_timeout_s >= 0 &&
	    (r = set_new(config, "StopTimeout", json_integer(spec->stop_timeout_s ? spec->stop_timeout_s : 10))) < 0)
		goto fail;

	if (spec->n_labels) {
		json_t *labels = json_object();
		if ((r = set_new(config, "Labels", labels)) < 0)
			goto fail;
		for (size_t i = 0; i < spec->n_labels; i++) {
			const struct engine_kv *kv = &spec->labels[i];
			json_t *s = NULL;
			/* Object keys must be UTF-8 too; check like a value. */
			if ((r = new_string(&b, "label key", kv->key, &s)) < 0)
				goto fail;
			json_decref(s);
			if ((r = new_string(&b, "label value", kv->value, &s)) < 0 ||
			    (r = set_new(labels, kv->key, s)) < 0)
				goto fail;
		}
	}

	if (spec->n_mounts) {
		json_t *binds = NULL;
		if ((r = mounts_to_json(&b, spec, flavor, &v, &binds)) < 0)
			goto fail;
		if (json_array_size(v) == 0)
			json_decref(v);
		else if ((r = set_new(hc, "Mounts", v)) < 0) {
			json_decref(binds);
			goto fail;
		}
		if (json_array_size(binds) == 0)
			json_decref(binds);
		else if ((r = set_new(hc, "Binds", binds)) < 0)
			goto fail;
	}
	if (spec->n_ports && (r = ports_to_json(&b, spec, hc, config)) < 0)
		goto fail;

	restart = json_object();
	if ((r = set_new(hc, "RestartPolicy", restart)) < 0 ||
	    (r = set_string(&b, restart, "Name", "restart policy", engine_restart_policy_to_string(spec->restart))) < 0)
		goto fail;
	if (spec->restart == ENGINE_RESTART_ON_FAILURE &&
	    (r = set_new(restart, "MaximumRetryCount", json_integer(spec->restart_max_retries))) < 0)
		goto fail;
	if (spec->network_mode && (r = set_string(&b, hc, "NetworkMode", "network mode", spec->network_mode)) < 0)
		goto fail;
	if (spec->memory_bytes && (r = set_new(hc, "Memory", json_integer(spec->memory_bytes))) < 0)
		goto fail;

	r = set_new(config, "HostConfig", hc);
	hc = NULL;
	if (r < 0)
		goto fail;
	*ret = config;
	return 0;
fail:
	json_decref(hc);
	json_decref(config);
	return r;
}
