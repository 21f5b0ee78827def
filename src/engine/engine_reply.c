/* engine_reply.c — the engine client's reply parsers: version, images,
 * containers, the create reply, the engine's times; and the fuzz entry that
 * feeds them all.
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

/* A JSON array of objects (anything else in it is skipped) parsed one by
 * one with `parse` into a calloc'ed array of `size`-byte elements. On a
 * failure the elements parsed so far are `release`d and freed; -EBADMSG
 * when root is no array. */
static int parse_objects(json_t *root, size_t size, int (*parse)(json_t *obj, void *ret), void (*release)(void *),
			 void **ret_v, size_t *ret_n)
{
	if (!json_is_array(root))
		return -EBADMSG;
	char *v = NULL;
	size_t n = 0, i;
	json_t *it;
	if (json_array_size(root) > 0 && !(v = calloc(json_array_size(root), size)))
		return -ENOMEM;
	json_array_foreach(root, i, it) {
		if (!json_is_object(it))
			continue;
		int r = parse(it, v + n * size);
		if (r < 0) {
			while (n > 0)
				release(v + --n * size);
			free(v);
			return r;
		}
		n++;
	}
	*ret_v = v;
	*ret_n = n;
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

static int parse_image_item(json_t *obj, void *ret) { return engine_parse_image(obj, true, ret); }
static void release_image_item(void *img) { engine_image_release(img); }

int engine_parse_image_list(json_t *root, struct engine_image_list *ret)
{
	void *v;
	size_t n;
	int r = parse_objects(root, sizeof(*ret->v), parse_image_item, release_image_item, &v, &n);
	if (r == 0)
		*ret = (struct engine_image_list){ .v = v, .n = n };
	return r;
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
	json_t *health = json_object_get(state, "Health");
	c.health = jstr(health, "Status");
	c.health_failing_streak = jint(health, "FailingStreak");
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
	c.health = empty;
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

static int parse_container_item(json_t *obj, void *ret) { return parse_container_summary(obj, ret); }
static void release_container_item(void *c) { engine_container_release(c); }

int engine_parse_container_list(json_t *root, struct engine_container_list *ret)
{
	void *v;
	size_t n;
	int r = parse_objects(root, sizeof(*ret->v), parse_container_item, release_container_item, &v, &n);
	if (r == 0)
		*ret = (struct engine_container_list){ .v = v, .n = n };
	return r;
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
