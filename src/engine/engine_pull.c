/* engine_pull.c — the pure half of pulling images and of choosing the API
 * version: image references, the X-Registry-Auth header, the progress
 * stream of POST /images/create, and version negotiation. No I/O; the
 * transport is in engine.c.
 */
#include "common/array.h"
#include "engine/engine-internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stream line longer than this is not progress; the pull fails. */
#define PULL_MAX_LINE (64 * 1024)

/* ---- references ----------------------------------------------------------- */

int engine_image_ref_split(const char *ref, char *repo, size_t repolen, char *tag, size_t taglen)
{
	if (!engine_image_ref_valid(ref))
		return -EINVAL;
	const char *at = strchr(ref, '@');
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(ref, ':');
	size_t n;
	const char *t;
	if (at) {
		/* repo@sha256:...: the digest goes as the tag (what Docker's
		 * own client sends, and Podman joins it back with '@'). */
		n = (size_t)(at - ref);
		t = at + 1;
	} else if (colon && (!slash || colon > slash)) {
		n = (size_t)(colon - ref);
		t = colon + 1;
	} else {
		/* No tag: "latest". Without one Docker pulls every tag. */
		n = strlen(ref);
		t = "latest";
	}
	if (n == 0 || !*t || n >= repolen || strlen(t) >= taglen)
		return -EINVAL;
	memcpy(repo, ref, n);
	repo[n] = '\0';
	snprintf(tag, taglen, "%s", t);
	return 0;
}

int engine_image_registry(const char *ref, char *buf, size_t buflen)
{
	if (!engine_image_ref_valid(ref))
		return -EINVAL;
	const char *slash = strchr(ref, '/');
	size_t n = slash ? (size_t)(slash - ref) : 0;
	/* The first component is a registry when it looks like a host:
	 * "localhost", or it has a '.' or a ':' (docker/reference rules). */
	bool host = slash && (memchr(ref, '.', n) || memchr(ref, ':', n) || (n == 9 && !memcmp(ref, "localhost", 9)));
	if (!host) {
		snprintf(buf, buflen, "docker.io");
		return 0;
	}
	if (n >= buflen)
		return -EINVAL;
	memcpy(buf, ref, n);
	buf[n] = '\0';
	return 0;
}

/* ---- X-Registry-Auth ------------------------------------------------------ */

int engine_registry_auth_encode(const struct engine_registry_auth *auth, char **ret)
{
	if (!auth || !auth->username || !auth->password)
		return -EINVAL;
	json_t *j = json_pack("{s:s, s:s, s:s}", "username", auth->username, "password", auth->password,
			      "serveraddress", auth->server ? auth->server : "");
	if (!j)
		return -EINVAL; /* not UTF-8 */
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	size_t len = strlen(text);
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out) {
		explicit_bzero(text, len);
		free(text);
		return -ENOMEM;
	}
	int n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)len);
	explicit_bzero(text, len);
	free(text);
	/* Docker decodes it as base64url (Go's base64.URLEncoding). */
	for (int i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	*ret = out;
	return 0;
}

/* ---- the progress stream -------------------------------------------------- */

void engine_pull_stream_release(struct engine_pull_stream *s)
{
	if (!s)
		return;
	free(s->layers);
	free(s->line);
	*s = (struct engine_pull_stream){0};
}

static struct engine_pull_layer *layer_get(struct engine_pull_stream *s, const char *id)
{
	for (size_t i = 0; i < s->n_layers; i++)
		if (strcmp(s->layers[i].id, id) == 0)
			return &s->layers[i];
	if (ARRAY_GROW(s->layers, s->n_layers + 1, s->cap_layers) < 0)
		return NULL;
	struct engine_pull_layer *l = &s->layers[s->n_layers++];
	*l = (struct engine_pull_layer){0};
	snprintf(l->id, sizeof(l->id), "%s", id);
	return l;
}

/* One JSON line of the stream. */
static int pull_line(struct engine_pull_stream *s, const char *line, size_t len)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (!len)
		return 0;
	json_t *j = json_loadb(line, len, 0, NULL);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	s->lines++;
	json_t *err = json_object_get(j, "error");
	if (err) {
		const char *msg = json_string_value(json_object_get(json_object_get(j, "errorDetail"), "message"));
		if (!msg || !*msg)
			msg = json_string_value(err);
		snprintf(s->error, sizeof(s->error), "%s", msg && *msg ? msg : "pull failed (no reason given)");
		/* What the registry said, as a user sees it: no control
		 * characters in a task message. */
		for (char *p = s->error; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
		s->failed = true;
		json_decref(j);
		return 0;
	}
	const char *status = json_string_value(json_object_get(j, "status"));
	const char *id = json_string_value(json_object_get(j, "id"));
	json_t *pd = json_object_get(j, "progressDetail");
	if (!status || !id || !*id || strlen(id) >= sizeof(s->layers[0].id)) {
		json_decref(j);
		return 0; /* "Pulling from ...", "Digest: ...", "Status: ..." */
	}
	/* A layer is whatever has an id and a download status; the image's
	 * own id comes in lines without one. */
	bool downloading = strcmp(status, "Downloading") == 0;
	bool done = strcmp(status, "Download complete") == 0 || strcmp(status, "Pull complete") == 0 ||
		    strcmp(status, "Already exists") == 0 || strcmp(status, "Verifying Checksum") == 0;
	bool layer = downloading || done || strcmp(status, "Pulling fs layer") == 0 || strcmp(status, "Waiting") == 0;
	if (!layer) {
		json_decref(j);
		return 0; /* "Extracting" counts the same bytes again */
	}
	struct engine_pull_layer *l = layer_get(s, id);
	if (!l) {
		json_decref(j);
		return -ENOMEM;
	}
	json_int_t cur = json_integer_value(json_object_get(pd, "current"));
	json_int_t tot = json_integer_value(json_object_get(pd, "total"));
	if (downloading) {
		if (tot > 0)
			l->total = tot;
		if (cur >= 0 && cur >= l->current)
			l->current = cur;
	}
	if (done) {
		l->done = true;
		if (l->total > 0)
			l->current = l->total;
	}
	json_decref(j);
	return 0;
}

int engine_pull_stream_feed(struct engine_pull_stream *s, const char *buf, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		const char *line = buf + start;
		size_t n = i - start;
		int r;
		if (s->line_len) {
			/* The rest of a line that began in an earlier chunk. */
			if (s->line_len + n > PULL_MAX_LINE)
				return -EMSGSIZE;
			char *l = realloc(s->line, s->line_len + n + 1);
			if (!l)
				return -ENOMEM;
			memcpy(l + s->line_len, line, n);
			s->line = l;
			r = pull_line(s, l, s->line_len + n);
			s->line_len = 0;
		} else {
			r = pull_line(s, line, n);
		}
		if (r < 0)
			return r;
		start = i + 1;
	}
	if (start < len) {
		size_t n = len - start;
		if (s->line_len + n > PULL_MAX_LINE)
			return -EMSGSIZE;
		char *l = realloc(s->line, s->line_len + n + 1);
		if (!l)
			return -ENOMEM;
		memcpy(l + s->line_len, buf + start, n);
		s->line = l;
		s->line_len += n;
	}
	return 0;
}

int engine_pull_stream_finish(struct engine_pull_stream *s)
{
	int r = 0;
	if (s->line_len) {
		r = pull_line(s, s->line, s->line_len);
		s->line_len = 0;
	}
	return r;
}

void engine_pull_stream_progress(const struct engine_pull_stream *s, struct engine_pull_progress *ret)
{
	*ret = (struct engine_pull_progress){ .layers = s->n_layers };
	for (size_t i = 0; i < s->n_layers; i++) {
		ret->current_bytes += s->layers[i].current;
		ret->total_bytes += s->layers[i].total;
		if (s->layers[i].done)
			ret->layers_done++;
	}
}

/* ---- API version negotiation ---------------------------------------------- */

/* "1.41" → 1041; -1 for anything else. */
static int version_num(const char *s)
{
	if (!s)
		return -1;
	char *end;
	long major = strtol(s, &end, 10);
	if (end == s || *end != '.' || major < 1 || major > 99)
		return -1;
	const char *m = end + 1;
	long minor = strtol(m, &end, 10);
	if (end == m || *end || minor < 0 || minor > 999)
		return -1;
	return (int)(major * 1000 + minor);
}

int engine_api_negotiate(const char *server_max, const char *server_min, char ret[ENGINE_API_VERSION_MAX],
			 char *err, size_t errlen)
{
	int lo = version_num(ENGINE_API_VERSION_MIN), hi = version_num(ENGINE_API_VERSION_HIGHEST);
	int smax = version_num(server_max);
	int smin = server_min && *server_min ? version_num(server_min) : 0;
	if (smax < 0 || smin < 0) {
		snprintf(err, errlen, "container engine reports an unreadable API version (ApiVersion \"%.16s\", MinAPIVersion \"%.16s\")",
			 server_max ? server_max : "", server_min ? server_min : "");
		return -EBADMSG;
	}
	if (smax < lo) {
		snprintf(err, errlen, "container engine speaks Docker API %s at most; boxd needs %s or later",
			 server_max, ENGINE_API_VERSION_MIN);
		return -EPROTONOSUPPORT;
	}
	int use = smax < hi ? smax : hi;
	if (smin > use) {
		snprintf(err, errlen, "container engine speaks Docker API %s at the oldest; boxd speaks %s to %s",
			 server_min, ENGINE_API_VERSION_MIN, ENGINE_API_VERSION_HIGHEST);
		return -EPROTONOSUPPORT;
	}
	snprintf(ret, ENGINE_API_VERSION_MAX, "%d.%d", use / 1000, use % 1000);
	return 0;
}
