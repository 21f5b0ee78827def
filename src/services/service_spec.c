/* service_spec.c — see service.h. The spec of a service container, its
 * canonical JSON and hash (what tells a rebuild is due), and the registry
 * of services. Pure: no engine, no I/O. */
#include "service.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"
#include "proxy.h"
#include "sftp.h"

/* ---- the spec ----------------------------------------------------------- */

int service_spec_init(struct service_spec *s, const char *name, const char *image)
{
	*s = (struct service_spec){ .restart = ENGINE_RESTART_UNLESS_STOPPED };
	s->name = strdup(name);
	s->image = strdup(image);
	if (!s->name || !s->image) {
		service_spec_release(s);
		return -ENOMEM;
	}
	return 0;
}

static void kv_free(struct service_kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

void service_spec_release(struct service_spec *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].source);
		free(s->mounts[i].target);
		free(s->mounts[i].origin);
		free(s->mounts[i].identity);
	}
	free(s->mounts);
	kv_free(s->env, s->n_env);
	kv_free(s->labels, s->n_labels);
	for (size_t i = 0; i < s->n_ports; i++)
		free(s->ports[i].host_ip);
	free(s->ports);
	free(s->name);
	free(s->image);
	free(s->network_mode);
	*s = (struct service_spec){ 0 };
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

int service_spec_add_bind(struct service_spec *s, const struct service_mount *src)
{
	bool oom = false;
	struct service_mount m = *src;
	m.source = dup_or_null(src->source, &oom);
	m.target = dup_or_null(src->target, &oom);
	m.origin = dup_or_null(src->origin, &oom);
	m.identity = dup_or_null(src->identity, &oom);
	struct service_mount *grown = oom ? NULL : realloc(s->mounts, (s->n_mounts + 1) * sizeof(*grown));
	if (!grown) {
		free(m.source);
		free(m.target);
		free(m.origin);
		free(m.identity);
		return -ENOMEM;
	}
	s->mounts = grown;
	s->mounts[s->n_mounts++] = m;
	return 0;
}

int service_spec_add_mount(struct service_spec *s, const char *source, const char *target,
			   enum engine_propagation propagation, bool read_only, const char *origin)
{
	struct service_mount m = { .source = (char *)source, .target = (char *)target, .read_only = read_only,
				   .propagation = propagation, .origin = (char *)origin };
	return service_spec_add_bind(s, &m);
}

/* Set key=value in a kv list, replacing an existing key. */
static int kv_set(struct service_kv **v, size_t *n, const char *key, const char *value)
{
	char *k = strdup(key), *val = strdup(value ? value : "");
	if (!k || !val)
		goto oom;
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*v)[i].key, key) == 0) {
			free(k);
			free((*v)[i].value);
			(*v)[i].value = val;
			return 0;
		}
	}
	struct service_kv *grown = realloc(*v, (*n + 1) * sizeof(*grown));
	if (!grown)
		goto oom;
	*v = grown;
	(*v)[(*n)++] = (struct service_kv){ k, val };
	return 0;
oom:
	free(k);
	free(val);
	return -ENOMEM;
}

int service_spec_add_env(struct service_spec *s, const char *key, const char *value)
{
	return kv_set(&s->env, &s->n_env, key, value);
}

int service_spec_add_label(struct service_spec *s, const char *key, const char *value)
{
	return kv_set(&s->labels, &s->n_labels, key, value);
}

int service_spec_add_port(struct service_spec *s, uint16_t container_port, const char *protocol,
			  const char *host_ip, uint16_t host_port)
{
	bool oom = false;
	struct service_port p = { .container_port = container_port, .host_port = host_port,
				  .host_ip = dup_or_null(host_ip, &oom) };
	snprintf(p.protocol, sizeof(p.protocol), "%s", protocol && *protocol ? protocol : "tcp");
	struct service_port *grown = oom ? NULL : realloc(s->ports, (s->n_ports + 1) * sizeof(*grown));
	if (!grown) {
		free(p.host_ip);
		return -ENOMEM;
	}
	s->ports = grown;
	s->ports[s->n_ports++] = p;
	return 0;
}

static int cmp_mount_target(const void *a, const void *b)
{
	const struct service_mount *const *x = a, *const *y = b;
	return strcmp((*x)->target, (*y)->target);
}

static int cmp_port(const void *a, const void *b)
{
	const struct service_port *const *x = a, *const *y = b;
	if ((*x)->container_port != (*y)->container_port)
		return (*x)->container_port < (*y)->container_port ? -1 : 1;
	int c = strcmp((*x)->protocol, (*y)->protocol);
	if (c)
		return c;
	return (*x)->host_port < (*y)->host_port ? -1 : (*x)->host_port > (*y)->host_port;
}

static json_t *kv_object(const struct service_kv *v, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < n; i++)
		json_object_set_new(o, v[i].key, json_string(v[i].value));
	return o;
}

static const char *share_name(enum service_share sh)
{
	return sh == SERVICE_SHARE_RW ? "shared" : sh == SERVICE_SHARE_RO ? "shared-read-only" : "as-is";
}

static json_t *mount_json(const struct service_mount *m, bool with_origin)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s}", "source", m->source, "target", m->target,
			      "propagation", engine_propagation_to_string(m->propagation), "readOnly", m->read_only,
			      "recursive", m->recursive, "hostMount", share_name(m->share));
	if (o && m->identity)
		json_object_set_new(o, "identity", json_string(m->identity));
	if (o && with_origin)
		json_object_set_new(o, "origin", m->origin ? json_string(m->origin) : json_null());
	return o;
}

static json_t *port_json(const struct service_port *p)
{
	json_t *o = json_pack("{s:i, s:s, s:i}", "containerPort", p->container_port, "protocol", p->protocol,
			      "hostPort", p->host_port);
	if (o)
		json_object_set_new(o, "hostIp", p->host_ip ? json_string(p->host_ip) : json_null());
	return o;
}

/* The spec as JSON with mounts sorted by target and ports sorted; `canonical`
 * adds what only the hash needs (env, labels, name) and leaves out origins. */
static json_t *spec_json(const struct service_spec *s, bool canonical)
{
	json_t *o = NULL, *mounts = NULL, *ports = NULL;
	const struct service_mount **ms = calloc(s->n_mounts + 1, sizeof(*ms));
	const struct service_port **ps = calloc(s->n_ports + 1, sizeof(*ps));
	if (!ms || !ps)
		goto out;
	for (size_t i = 0; i < s->n_mounts; i++)
		ms[i] = &s->mounts[i];
	for (size_t i = 0; i < s->n_ports; i++)
		ps[i] = &s->ports[i];
	qsort(ms, s->n_mounts, sizeof(*ms), cmp_mount_target);
	qsort(ps, s->n_ports, sizeof(*ps), cmp_port);
	mounts = json_array();
	ports = json_array();
	if (!mounts || !ports)
		goto out;
	for (size_t i = 0; i < s->n_mounts; i++)
		if (json_array_append_new(mounts, mount_json(ms[i], !canonical)) < 0)
			goto out;
	for (size_t i = 0; i < s->n_ports; i++)
		if (json_array_append_new(ports, port_json(ps[i])) < 0)
			goto out;
	o = json_pack("{s:s, s:O, s:O, s:I, s:s}", "image", s->image, "mounts", mounts, "ports", ports, "memoryBytes",
		      (json_int_t)s->memory_bytes, "restart", engine_restart_policy_to_string(s->restart));
	if (!o)
		goto out;
	json_object_set_new(o, "networkMode", s->network_mode ? json_string(s->network_mode) : json_null());
	if (canonical) {
		/* Bump "format" when the meaning of a field changes, so that
		 * every container is rebuilt once. */
		/* 2: recursive binds, read-only roots, shared sources and
		 * source identities (issue 19). */
		json_object_set_new(o, "format", json_integer(2));
		json_object_set_new(o, "name", json_string(s->name));
		json_object_set_new(o, "env", kv_object(s->env, s->n_env));
		json_object_set_new(o, "labels", kv_object(s->labels, s->n_labels));
	}
out:
	json_decref(mounts);
	json_decref(ports);
	free(ms);
	free(ps);
	return o;
}

char *service_spec_canonical(const struct service_spec *s)
{
	json_t *o = spec_json(s, true);
	if (!o)
		return NULL;
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

int service_spec_hash(const struct service_spec *s, char ret[SERVICE_HASH_MAX])
{
	char *text = service_spec_canonical(s);
	if (!text)
		return -ENOMEM;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	int ok = EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
	free(text);
	if (!ok || len != 32)
		return -EIO;
	for (unsigned i = 0; i < len; i++)
		snprintf(ret + 2 * i, 3, "%02x", md[i]);
	return 0;
}

json_t *service_spec_to_json(const struct service_spec *s)
{
	return spec_json(s, false);
}

/* ---- the registry ------------------------------------------------------- */

static const struct service_def *const services[] = { &sftp_service, &proxy_service };

const struct service_def *service_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(services) / sizeof(services[0]); i++)
		if (strcmp(services[i]->name, name) == 0)
			return services[i];
	return NULL;
}

const struct service_def *const *service_list(size_t *ret_n)
{
	*ret_n = sizeof(services) / sizeof(services[0]);
	return services;
}

void service_container_name(const struct boxd_config *cfg, const char *name, char *buf, size_t len)
{
	char host[HOST_ID_MAX + 1];
	if (cfg && cfg->engine_shared && host_id_get(host, sizeof(host)) == 0)
		snprintf(buf, len, "boxd-%s-%s", name, host);
	else
		snprintf(buf, len, "boxd-%s", name);
}
