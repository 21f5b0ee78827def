/* engine_json.c — the engine client's pure half: the create request built
 * with jansson, reply parsers, the log stream demultiplexer, error mapping.
 *
 * Everything an engine sends is input from outside. The parsers never trust
 * a field's presence or type: jstr() and friends read a missing or mistyped
 * field as "" / 0 / false, so a reply from an older or odder engine degrades
 * to empty fields instead of a crash. Result structs keep a reference to the
 * JSON they came from (priv_), and their strings point into it; that is why
 * a result costs one allocation per array, not one per string.
 */
#include "engine/engine-internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char empty[] = "";

/* ---- reading fields --------------------------------------------------------- */

static const char *jstr(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : empty;
}

static int64_t jnum(json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v)) {
		double d = json_real_value(v);
		/* Outside this range the conversion would be undefined. */
		if (isfinite(d) && d > -9.2e18 && d < 9.2e18)
			return (int64_t)d;
	}
	return 0;
}

static int jint(json_t *obj, const char *key)
{
	int64_t v = jnum(json_object_get(obj, key));
	if (v < INT_MIN || v > INT_MAX)
		return 0;
	return (int)v;
}

static bool jbool(json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key));
}

/* A time that is either Unix seconds (list replies) or RFC 3339 (inspect). */
static int64_t jtime_ms(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	int64_t ms;

	if (json_is_string(v))
		return engine_parse_time_ms(json_string_value(v), &ms) == 0 ? ms : 0;
	int64_t s = jnum(v);
	if (s <= 0 || s > INT64_MAX / 1000)
		return 0;
	return s * 1000;
}

/* Labels: a JSON object of strings → an array of key/value pointers into it.
 * Values that are not strings are skipped. */
static int parse_labels(json_t *obj, struct engine_kv **ret, size_t *ret_n)
{
	const char *key;
	json_t *val;
	size_t n = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!json_is_object(obj) || json_object_size(obj) == 0)
		return 0;
	struct engine_kv *v = calloc(json_object_size(obj), sizeof(*v));
	if (!v)
		return -ENOMEM;
	json_object_foreach(obj, key, val) {
		if (!json_is_string(val))
			continue;
		v[n].key = key;
		v[n].value = json_string_value(val);
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int parse_mounts(json_t *arr, struct engine_mount_info **ret, size_t *ret_n)
{
	size_t i, n = 0;
	json_t *m;

	*ret = NULL;
	*ret_n = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return 0;
	struct engine_mount_info *v = calloc(json_array_size(arr), sizeof(*v));
	if (!v)
		return -ENOMEM;
	json_array_foreach(arr, i, m) {
		if (!json_is_object(m))
			continue;
		v[n].type = jstr(m, "Type");
		v[n].source = jstr(m, "Source");
		v[n].destination = jstr(m, "Destination");
		v[n].propagation = jstr(m, "Propagation");
		/* RW missing reads as read-write: that is the engines' default. */
		json_t *rw = json_object_get(m, "RW");
		v[n].read_only = json_is_false(rw);
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static const char *strip_slash(const char *name)
{
	return name[0] == '/' ? name + 1 : name;
}

/* ---- version ---------------------------------------------------------------- */

int engine_parse_version(json_t *root, struct engine_version *ret)
{
	if (!json_is_object(root))
		return -EBADMSG;
	json_t *comp0 = json_array_get(json_object_get(root, "Components"), 0);
	*ret = (struct engine_version){
		.api_version = jstr(root, "ApiVersion"),
		.min_api_version = jstr(root, "MinAPIVersion"),
		.version = jstr(root, "Version"),
		.os = jstr(root, "Os"),
		.arch = jstr(root, "Arch"),
		.kernel_version = jstr(root, "KernelVersion"),
		.product = jstr(comp0, "Name"),
		.priv_ = json_incref(root),
	};
	return 0;
}

void engine_version_release(struct engine_version *v)
{
	if (!v)
		return;
	json_decref(v->priv_);
	*v = (struct engine_version){0};
}

/* ---- images ----------------------------------------------------------------- */

int engine_parse_image(json_t *obj, bool from_list, struct engine_image *ret)
{
	struct engine_image img = {0};
	json_t *tags, *t;
	size_t i, n = 0;

	(void)from_list; /* the only difference, Created's type, jtime_ms handles */
	if (!json_is_object(obj))
		return -EBADMSG;
	tags = json_object_get(obj, "RepoTags");
	img.repo_tags = calloc(json_array_size(tags) + 1, sizeof(*img.repo_tags));
	if (!img.repo_tags)
		return -ENOMEM;
	json_array_foreach(tags, i, t) {
		const char *s = json_string_value(t);
		if (!s || strcmp(s, "<none>:<none>") == 0 || s[0] == '\0')
			continue;
		img.repo_tags[n++] = s;
	}
	img.n_repo_tags = n;
	img.id = jstr(obj, "Id");
	img.size = jnum(json_object_get(obj, "Size"));
	img.created_ms = jtime_ms(obj, "Created");
	img.priv_ = json_incref(obj);
	*ret = img;
	return 0;
}

void engine_image_release(struct engine_image *img)
{
	if (!img)
		return;
	free(img->repo_tags);
	json_decref(img->priv_);
	*img = (struct engine_image){0};
}

int engine_parse_image_list(json_t *root, struct engine_image_list *ret)
{
	struct engine_image_list l = {0};
	size_t i;
	json_t *it;
	int r;

	if (!json_is_array(root))
		return -EBADMSG;
	if (json_array_size(root) > 0) {
		l.v = calloc(json_array_size(root), sizeof(*l.v));
		if (!l.v)
			return -ENOMEM;
	}
	json_array_foreach(root, i, it) {
		if (!json_is_object(it))
			continue;
		r = engine_parse_image(it, true, &l.v[l.n]);
		if (r < 0) {
			engine_image_list_release(&l);
			return r;
		}
		l.n++;
	}
	*ret = l;
	return 0;
}

void engine_image_list_release(struct engine_image_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		engine_image_release(&l->v[i]);
	free(l->v);
	*l = (struct engine_image_list){0};
}

/* ---- containers ------------------------------------------------------------- */

int engine_parse_container_inspect(json_t *root, struct engine_container *ret)
{
	struct engine_container c = {0};
	int r;

	if (!json_is_object(root))
		return -EBADMSG;
	json_t *state = json_object_get(root, "State");
	json_t *config = json_object_get(root, "Config");

	c.id = jstr(root, "Id");
	c.name = strip_slash(jstr(root, "Name"));
	c.image = jstr(config, "Image");
	c.image_id = jstr(root, "Image");
	c.status = jstr(state, "Status");
	c.running = jbool(state, "Running");
	c.exit_code = jint(state, "ExitCode");
	c.pid = jint(state, "Pid");
	if (c.pid < 0)
		c.pid = 0;
	c.created_ms = jtime_ms(root, "Created");
	c.started_ms = jtime_ms(state, "StartedAt");
	c.finished_ms = jtime_ms(state, "FinishedAt");
	c.restart_count = jint(root, "RestartCount");
	c.tty = jbool(config, "Tty");
	r = parse_labels(json_object_get(config, "Labels"), &c.labels, &c.n_labels);
	if (r < 0)
		goto fail;
	r = parse_mounts(json_object_get(root, "Mounts"), &c.mounts, &c.n_mounts);
	if (r < 0)
		goto fail;
	c.priv_ = json_incref(root);
	*ret = c;
	return 0;
fail:
	engine_container_release(&c);
	return r;
}

/* One entry of GET /containers/json. Its "State" is a string, not the
 * object inspect has, and "Created" is Unix seconds. */
static int parse_container_summary(json_t *obj, struct engine_container *ret)
{
	struct engine_container c = {0};
	int r;

	c.id = jstr(obj, "Id");
	const char *name = json_string_value(json_array_get(json_object_get(obj, "Names"), 0));
	c.name = strip_slash(name ? name : empty);
	c.image = jstr(obj, "Image");
	c.image_id = jstr(obj, "ImageID");
	c.status = jstr(obj, "State");
	c.running = strcmp(c.status, "running") == 0;
	c.created_ms = jtime_ms(obj, "Created");
	r = parse_labels(json_object_get(obj, "Labels"), &c.labels, &c.n_labels);
	if (r < 0)
		goto fail;
	r = parse_mounts(json_object_get(obj, "Mounts"), &c.mounts, &c.n_mounts);
	if (r < 0)
		goto fail;
	c.priv_ = json_incref(obj);
	*ret = c;
	return 0;
fail:
	engine_container_release(&c);
	return r;
}

int engine_parse_container_list(json_t *root, struct engine_container_list *ret)
{
	struct engine_container_list l = {0};
	size_t i;
	json_t *it;
	int r;

	if (!json_is_array(root))
		return -EBADMSG;
	if (json_array_size(root) > 0) {
		l.v = calloc(json_array_size(root), sizeof(*l.v));
		if (!l.v)
			return -ENOMEM;
	}
	json_array_foreach(root, i, it) {
		if (!json_is_object(it))
			continue;
		r = parse_container_summary(it, &l.v[l.n]);
		if (r < 0) {
			engine_container_list_release(&l);
			return r;
		}
		l.n++;
	}
	*ret = l;
	return 0;
}

void engine_container_release(struct engine_container *c)
{
	if (!c)
		return;
	free(c->labels);
	free(c->mounts);
	json_decref(c->priv_);
	*c = (struct engine_container){0};
}

void engine_container_list_release(struct engine_container_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		engine_container_release(&l->v[i]);
	free(l->v);
	*l = (struct engine_container_list){0};
}

const char *engine_container_label(const struct engine_container *c, const char *key)
{
	for (size_t i = 0; i < c->n_labels; i++)
		if (strcmp(c->labels[i].key, key) == 0)
			return c->labels[i].value;
	return NULL;
}

int engine_parse_create_reply(json_t *root, char ret_id[ENGINE_ID_MAX])
{
	const char *id = json_string_value(json_object_get(root, "Id"));
	size_t n;

	if (!id)
		return -EBADMSG;
	n = strlen(id);
	if (n == 0 || n > ENGINE_ID_MAX - 1 || strspn(id, "0123456789abcdef") != n)
		return -EBADMSG;
	memcpy(ret_id, id, n + 1);
	return 0;
}

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

#define REF_MAX 512

bool engine_container_ref_valid(const char *s)
{
	static const char more[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > REF_MAX || s[0] == '.' || s[0] == '_' || s[0] == '-')
		return false;
	return strspn(s, more) == n;
}

bool engine_image_ref_valid(const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:@";
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > REF_MAX || strspn(s, ok) != n || s[0] == '/')
		return false;
	/* No "." or ".." segment, and no empty one ("a//b"). */
	for (const char *seg = s;;) {
		size_t len = strcspn(seg, "/");
		if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (seg[len] == '\0')
			return true;
		seg += len + 1;
	}
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
		/* Docker binds Mounts recursively unless told not to. */
		bool non_recursive = mt->type == ENGINE_MOUNT_BIND && !mt->recursive && flavor == ENGINE_FLAVOR_DOCKER;
		if (prop[0] || non_recursive) {
			json_t *opts = json_object();
			if (!opts) {
				r = -ENOMEM;
				goto fail;
			}
			if ((r = set_new(m, "BindOptions", opts)) < 0 ||
			    (prop[0] && (r = set_string(b, opts, "Propagation", "propagation", prop)) < 0) ||
			    (non_recursive && (r = set_new(opts, "NonRecursive", json_true())) < 0))
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

/* ---- times ------------------------------------------------------------------ */

static bool digits(const char *s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

int engine_parse_time_ms(const char *s, int64_t *ret_ms)
{
	int Y, M, D, h, m, sec, ms = 0, off_h = 0, off_m = 0, sign = 0;
	const char *p;

	/* YYYY-MM-DDThh:mm:ss: fixed positions; strlen first so that no read
	 * goes past the NUL. */
	if (strnlen(s, 20) < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
	    !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		int nd = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, nd++)
			if (nd < 3)
				ms = ms * 10 + (*p - '0');
		if (nd == 0)
			return -EINVAL;
		for (; nd < 3; nd++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (!digits(p + 1, 2, &off_h) || p[3] != ':' || !digits(p + 4, 2, &off_m) || off_h > 23 || off_m > 59)
			return -EINVAL;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;

	if (Y < 1970) { /* Go's zero time: "never" */
		*ret_ms = 0;
		return 0;
	}
	struct tm tm = {
		.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec,
	};
	int64_t t = (int64_t)timegm(&tm);
	t -= (int64_t)sign * (off_h * 3600 + off_m * 60);
	int64_t v = t * 1000 + ms;
	*ret_ms = v > 0 ? v : 0;
	return 0;
}

/* ---- errors ----------------------------------------------------------------- */

bool engine_error_transient(int r, const char *msg)
{
	static const char *const texts[] = {
		"container state improper",         /* Podman, any conflicting state */
		"timed out waiting for file",       /* Podman: conmon's exit file */
		"refusing to clean up",             /* Podman: cleanup raced a start */
		"is already in progress",           /* Docker: "removal ... is already in progress" */
		"is restarting",                    /* Docker: "Container ... is restarting, wait until ..." */
		NULL,
	};
	if (r == -EBUSY)
		return true;
	if (r != -EIO || !msg)
		return false;
	for (size_t i = 0; texts[i]; i++)
		if (strstr(msg, texts[i]))
			return true;
	return false;
}

int engine_http_error(long status, const char *cause, const char *message)
{
	cause = cause ? cause : "";
	message = message ? message : "";

	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		/* Docker: "Conflict. The container name "/x" is already in use". */
		return strstr(message, "already in use") ? -EEXIST : -EBUSY;
	}
	/* Podman's compatible API answers several conflicts with 500 and says
	 * what it was in "cause" (libpod's define.Err* texts). */
	if (strcmp(cause, "that name is already in use") == 0)
		return -EEXIST;
	if (strcmp(cause, "container already exists") == 0)
		return -EEXIST;
	if (strcmp(cause, "container state improper") == 0)
		return -EBUSY;
	if (strcmp(cause, "no such container") == 0 || strcmp(cause, "no such image") == 0 ||
	    strcmp(cause, "image not known") == 0)
		return -ENOENT;
	if (status >= 400 && status < 500)
		return -EINVAL;
	return -EIO;
}

static void copy_sanitized(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n = 0;

	if (dstlen == 0)
		return;
	for (size_t i = 0; i < srclen && n + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '\n' || c == '\r')
			break;
		dst[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[n] = '\0';
}

void engine_error_text(long status, const char *body, size_t len, char *buf, size_t buflen, char *cause,
		       size_t causelen)
{
	json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(root, "message"));
	const char *c = json_string_value(json_object_get(root, "cause"));

	if (cause && causelen)
		copy_sanitized(cause, causelen, c ? c : "", c ? strlen(c) : 0);
	if (msg && msg[0])
		copy_sanitized(buf, buflen, msg, strlen(msg));
	else if (!root && len > 0)
		copy_sanitized(buf, buflen, body, len);
	else if (buflen)
		buf[0] = '\0';
	if (buflen && !buf[0])
		snprintf(buf, buflen, "HTTP %ld from the container engine", status);
	json_decref(root);
}

/* ---- logs ------------------------------------------------------------------- */

int engine_demux_logs(const void *buf, size_t len, unsigned streams, char **ret, size_t *ret_len)
{
	const unsigned char *p = buf, *end = p + len;
	char *out = malloc(len + 1);
	size_t n = 0;

	if (!out)
		return -ENOMEM;
	if ((streams & (ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR)) == 0)
		streams |= ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR;
	while ((size_t)(end - p) >= 8) {
		unsigned type = p[0];
		size_t size = (size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7];

		if (type > 3 || p[1] || p[2] || p[3]) {
			free(out);
			return -EBADMSG;
		}
		p += 8;
		if (size > (size_t)(end - p))
			size = (size_t)(end - p);
		bool keep = (type == 1 && (streams & ENGINE_LOGS_STDOUT)) ||
			    (type >= 2 && (streams & ENGINE_LOGS_STDERR));
		if (keep) {
			memcpy(out + n, p, size);
			n += size;
		}
		p += size;
	}
	out[n] = '\0';
	*ret = out;
	*ret_len = n;
	return 0;
}

/* ---- fuzzing ---------------------------------------------------------------- */

int engine_fuzz_one(const uint8_t *data, size_t size)
{
	char *text, *out, buf[256], cause[64], id[ENGINE_ID_MAX];
	size_t outlen;
	int64_t ms;
	json_t *root;

	if (engine_demux_logs(data, size, 0, &out, &outlen) == 0)
		free(out);
	engine_error_text(500, (const char *)data, size, buf, sizeof(buf), cause, sizeof(cause));

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)engine_parse_time_ms(text, &ms);
	free(text);

	root = json_loadb((const char *)data, size, 0, NULL);
	if (!root)
		return 0;
	struct engine_version v;
	if (engine_parse_version(root, &v) == 0)
		engine_version_release(&v);
	struct engine_image img;
	if (engine_parse_image(root, false, &img) == 0) {
		for (size_t i = 0; i < img.n_repo_tags; i++)
			(void)strlen(img.repo_tags[i]);
		engine_image_release(&img);
	}
	struct engine_image_list il;
	if (engine_parse_image_list(root, &il) == 0)
		engine_image_list_release(&il);
	struct engine_container c;
	if (engine_parse_container_inspect(root, &c) == 0) {
		(void)engine_container_label(&c, "x");
		for (size_t i = 0; i < c.n_mounts; i++)
			(void)strlen(c.mounts[i].propagation);
		engine_container_release(&c);
	}
	struct engine_container_list cl;
	if (engine_parse_container_list(root, &cl) == 0)
		engine_container_list_release(&cl);
	(void)engine_parse_create_reply(root, id);
	json_decref(root);
	return 0;
}
