/* engine.c — the engine client's transport half: one curl easy handle per
 * `struct engine`, HTTP over a unix socket, errors mapped to errno plus a
 * message, and the API calls built on that.
 *
 * The easy handle is reused for every request so that curl keeps the
 * connection alive; each request starts with curl_easy_reset(), which clears
 * options but keeps live connections, so no option leaks from one request
 * into the next. A kept-alive connection the engine has closed meanwhile is
 * retried by curl itself on a fresh connection.
 */
#include "engine/engine-internal.h"

#include "engine/curl_lib.h"
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

/* Paths are written without the version: request() puts the negotiated
 * "/vX.Y" in front (engine.h, "API version"). */
#define API ""

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_LONG_TIMEOUT_MS 300000
#define DEFAULT_MAX_REPLY ((size_t)64 << 20)
#define PING_TIMEOUT_MS 5000
#define DEFAULT_RETRY_MS 10000
#define RETRY_FIRST_US 50000
#define RETRY_MAX_US 1000000

struct engine {
	CURL *curl;
	char *socket_path;
	long connect_timeout_ms;
	long timeout_ms;
	long long_timeout_ms;
	size_t max_reply;
	int retry_ms;                     /* < 0: none */
	int podman;                       /* -1 unknown, else engine_is_podman() */
	struct curl_slist *json_headers;  /* Content-Type: application/json, no Expect */
	char curl_err[CURL_ERROR_SIZE];
	char errmsg[1024];
	/* The negotiated API version; "" until the first versioned request. */
	char api[ENGINE_API_VERSION_MAX];
	/* The request being sent goes without a version prefix: /_ping and
	 * the negotiating GET /version. */
	bool unversioned;
	/* The API-Version header of the last /_ping ("" none). */
	char ping_api[ENGINE_API_VERSION_MAX];
	/* The last /_ping had a Libpod-Api-Version header: Podman. */
	bool ping_libpod;
};

/* One reply, accumulated by the write callback. */
struct reply {
	char *data;                /* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	size_t max;
	bool too_big;
	bool oom;
	long status;
};

static int set_error(struct engine *e, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_error(struct engine *e, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->errmsg, sizeof(e->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int engine_set_error(struct engine *e, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->errmsg, sizeof(e->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

static void reply_release(struct reply *rep)
{
	free(rep->data);
	*rep = (struct reply){0};
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct reply *rep = userdata;
	size_t n = size * nmemb; /* curl guarantees size == 1 */

	if (n > rep->max - rep->len) {
		rep->too_big = true;
		return 0;
	}
	if (rep->len + n + 1 > rep->cap) {
		size_t cap = rep->cap ? rep->cap : 4096;
		while (cap < rep->len + n + 1)
			cap *= 2;
		char *d = realloc(rep->data, cap);
		if (!d) {
			rep->oom = true;
			return 0;
		}
		rep->data = d;
		rep->cap = cap;
	}
	memcpy(rep->data + rep->len, ptr, n);
	rep->len += n;
	rep->data[rep->len] = '\0';
	return n;
}

/* Map a failed transfer to an errno and a message. */
static int transport_error(struct engine *e, CURLcode code, const struct reply *rep, const char *method,
			   const char *path, long timeout_ms)
{
	long os_errno = 0;
	const char *why = e->curl_err[0] ? e->curl_err : sym_curl_easy_strerror(code);

	switch (code) {
	case CURLE_WRITE_ERROR:
		if (rep->too_big)
			return set_error(e, -EMSGSIZE, "reply of the container engine to %s %s exceeds %zu bytes",
					 method, path, rep->max);
		if (rep->oom)
			return set_error(e, -ENOMEM, "out of memory reading the container engine's reply");
		break;
	case CURLE_OUT_OF_MEMORY:
		return set_error(e, -ENOMEM, "out of memory talking to the container engine");
	case CURLE_OPERATION_TIMEDOUT:
		return set_error(e, -ETIMEDOUT, "container engine at %s did not answer %s %s within %ld ms",
				 e->socket_path, method, path, timeout_ms);
	case CURLE_COULDNT_CONNECT:
		sym_curl_easy_getinfo(e->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno <= 0)
			os_errno = ECONNREFUSED;
		return set_error(e, -(int)os_errno, "container engine not reachable at %s: %s", e->socket_path,
				 strerror((int)os_errno));
	default:
		break;
	}
	return set_error(e, -EIO, "container engine at %s: %s %s: %s", e->socket_path, method, path, why);
}

/* Send one request. `body` is JSON text or NULL. Returns 0 when an HTTP
 * reply arrived, whatever its status (in rep->status), else a negative errno
 * with the message set. On 0 the caller releases rep. */
static int negotiate(struct engine *e);

/* Headers of an unversioned request: keeps API-Version (what /_ping
 * reports on Docker and Podman), and notes Podman's "Libpod-Api-Version"
 * (Docker sends none). */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct engine *e = userdata;
	size_t n = size * nitems;
	static const char libpod[] = "libpod-api-version:";
	if (n >= sizeof(libpod) - 1 && strncasecmp(buf, libpod, sizeof(libpod) - 1) == 0)
		e->ping_libpod = true;
	static const char name[] = "api-version:";
	if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
		const char *v = buf + sizeof(name) - 1;
		size_t len = n - (sizeof(name) - 1);
		while (len && (*v == ' ' || *v == '\t'))
			v++, len--;
		while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
			len--;
		if (len < sizeof(e->ping_api)) {
			memcpy(e->ping_api, v, len);
			e->ping_api[len] = '\0';
		}
	}
	return n;
}

static int request(struct engine *e, const char *method, const char *path, const char *body, long timeout_ms,
		   struct reply *rep)
{
	char *url;
	CURLcode code;

	*rep = (struct reply){ .max = e->max_reply };
	if (!e->unversioned && !e->api[0]) {
		int r = negotiate(e);
		if (r < 0)
			return r;
	}
	/* The host name is never looked up: the socket is the address. */
	if (asprintf(&url, "http://localhost%s%s%s", e->unversioned ? "" : "/v", e->unversioned ? "" : e->api,
		     path) < 0)
		return set_error(e, -ENOMEM, "out of memory");

	sym_curl_easy_reset(e->curl);
	e->curl_err[0] = '\0';
	sym_curl_easy_setopt(e->curl, CURLOPT_UNIX_SOCKET_PATH, e->socket_path);
	sym_curl_easy_setopt(e->curl, CURLOPT_URL, url);
	sym_curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	sym_curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->curl_err);
	sym_curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
	sym_curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	sym_curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, write_cb);
	sym_curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, rep);
	sym_curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->json_headers);
	if (e->unversioned) {
		sym_curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, header_cb);
		sym_curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, e);
	}
	if (strcmp(method, "POST") == 0) {
		sym_curl_easy_setopt(e->curl, CURLOPT_POST, 1L);
		sym_curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body ? body : "");
		sym_curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, body ? (long)strlen(body) : 0L);
	} else if (strcmp(method, "DELETE") == 0) {
		sym_curl_easy_setopt(e->curl, CURLOPT_CUSTOMREQUEST, "DELETE");
	}

	code = sym_curl_easy_perform(e->curl);
	free(url);
	if (code != CURLE_OK) {
		int r = transport_error(e, code, rep, method, path, timeout_ms);
		reply_release(rep);
		return r;
	}
	sym_curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &rep->status);
	return 0;
}

/* The reply's status as a result: 0 for 2xx, 1 for 304 (nothing to do),
 * else a negative errno with the engine's message. */
static int status_result(struct engine *e, const struct reply *rep)
{
	char cause[128];

	if (rep->status >= 200 && rep->status < 300)
		return 0;
	if (rep->status == 304)
		return 1;
	engine_error_text(rep->status, rep->data, rep->len, e->errmsg, sizeof(e->errmsg), cause, sizeof(cause));
	return engine_http_error(rep->status, cause, e->errmsg);
}

/* A request whose answer is only a status: 0, 1 (304) or negative errno. */
static int call(struct engine *e, const char *method, const char *path, const char *body, long timeout_ms)
{
	struct reply rep;
	int r = request(e, method, path, body, timeout_ms, &rep);

	if (r < 0)
		return r;
	r = status_result(e, &rep);
	reply_release(&rep);
	return r;
}

/* A request that answers with JSON: parses a 2xx reply into *ret. */
static int call_json(struct engine *e, const char *method, const char *path, const char *body, long timeout_ms,
		     json_t **ret)
{
	struct reply rep;
	json_error_t jerr;
	json_t *root;
	int r = request(e, method, path, body, timeout_ms, &rep);

	if (r < 0)
		return r;
	r = status_result(e, &rep);
	if (r < 0)
		goto out;
	root = json_loadb(rep.data ? rep.data : "", rep.len, 0, &jerr);
	if (!root) {
		r = set_error(e, -EBADMSG, "container engine sent bad JSON for %s %s: %s", method, path, jerr.text);
		goto out;
	}
	*ret = root;
	r = 0;
out:
	reply_release(&rep);
	return r;
}

static int parse_failed(struct engine *e, int r, const char *what)
{
	if (r == -ENOMEM)
		return set_error(e, r, "out of memory");
	return set_error(e, r, "container engine sent an unexpected reply for %s", what);
}

static void begin(struct engine *e)
{
	e->errmsg[0] = '\0';
}

/* GET `path` and parse its JSON answer into ret with `parse`; an answer
 * that does not parse is parse_failed() for `what`. */
static int get_parsed(struct engine *e, const char *path, const char *what, int (*parse)(json_t *root, void *ret),
		      void *ret)
{
	json_t *root;
	int r = call_json(e, "GET", path, NULL, e->timeout_ms, &root);
	if (r < 0)
		return r;
	r = parse(root, ret);
	json_decref(root);
	return r < 0 ? parse_failed(e, r, what) : 0;
}

static int parse_version(json_t *root, void *ret) { return engine_parse_version(root, ret); }
static int parse_image_list(json_t *root, void *ret) { return engine_parse_image_list(root, ret); }
static int parse_image(json_t *root, void *ret) { return engine_parse_image(root, false, ret); }
static int parse_container(json_t *root, void *ret) { return engine_parse_container_inspect(root, ret); }

static int check_container(struct engine *e, const char *id)
{
	if (!engine_container_ref_valid(id))
		return set_error(e, -EINVAL, "bad container id or name \"%.64s\"", id ? id : "(null)");
	return 0;
}

/* ---- handles ---------------------------------------------------------------- */

static int open_path(const struct engine_options *opts, const char *path, struct engine **ret, char *errbuf,
		     size_t errlen)
{
	struct engine *e;

	if (!path[0] || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		if (errbuf)
			snprintf(errbuf, errlen, "bad container engine socket path \"%.200s\"", path);
		return -EINVAL;
	}
	if (curl_lib_load() < 0) {
		if (errbuf)
			snprintf(errbuf, errlen, "libcurl: %s", curl_lib_error());
		return -ENOMEM;
	}

	e = calloc(1, sizeof(*e));
	if (!e)
		goto oom;
	e->curl = curl_lib_easy_init();
	e->socket_path = strdup(path);
	e->json_headers = curl_lib_slist_append(NULL, "Content-Type: application/json");
	if (e->json_headers) {
		/* curl sends "Expect: 100-continue" for larger bodies and then
		 * waits up to a second for an answer some servers never send. */
		struct curl_slist *l = curl_lib_slist_append(e->json_headers, "Expect:");
		if (l)
			e->json_headers = l;
		else {
			sym_curl_slist_free_all(e->json_headers);
			e->json_headers = NULL;
		}
	}
	if (!e->curl || !e->socket_path || !e->json_headers)
		goto oom;
	e->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	e->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	e->long_timeout_ms = opts->long_timeout_ms > 0 ? opts->long_timeout_ms : DEFAULT_LONG_TIMEOUT_MS;
	e->max_reply = opts->max_reply_bytes > 0 ? opts->max_reply_bytes : DEFAULT_MAX_REPLY;
	e->retry_ms = opts->retry_ms > 0 ? opts->retry_ms : opts->retry_ms < 0 ? -1 : DEFAULT_RETRY_MS;
	e->podman = -1;
	*ret = e;
	return 0;
oom:
	engine_close(e);
	if (errbuf)
		snprintf(errbuf, errlen, "out of memory");
	return -ENOMEM;
}

/* Where an engine is looked for when no socket is configured. */
static const char *const default_sockets[] = { ENGINE_DOCKER_SOCKET, ENGINE_PODMAN_SOCKET, NULL };

static bool is_socket(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int engine_library_preload(const char *socket_path)
{
	bool any = socket_path != NULL;
	for (size_t i = 0; !any && default_sockets[i]; i++)
		any = is_socket(default_sockets[i]);
	return any ? curl_lib_load() : 0;
}

int engine_open_opts(const struct engine_options *opts, struct engine **ret, char *errbuf, size_t errlen)
{
	const char *const *cand;
	char tried[512] = "";
	size_t tlen = 0;
	int first_err = 0;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (opts->socket_path)
		return open_path(opts, opts->socket_path, ret, errbuf, errlen);

	cand = opts->autodetect_paths ? opts->autodetect_paths : default_sockets;
	for (size_t i = 0; cand[i]; i++) {
		struct engine *e;
		int r;

		if (tlen < sizeof(tried))
			tlen += snprintf(tried + tlen, sizeof(tried) - tlen, "%s%s", i ? ", " : "", cand[i]);
		if (!is_socket(cand[i]))
			continue;
		r = open_path(opts, cand[i], &e, errbuf, errlen);
		if (r < 0) {
			if (r == -ENOMEM)
				return r;
			continue; /* a path too long for a socket cannot be one */
		}
		r = engine_ping(e);
		if (r == 0) {
			*ret = e;
			return 0;
		}
		if (!first_err) {
			first_err = r;
			if (errbuf)
				snprintf(errbuf, errlen, "%s", engine_errmsg(e));
		}
		engine_close(e);
	}
	if (first_err)
		return first_err;
	if (errbuf)
		snprintf(errbuf, errlen, "no container engine found (tried %s)", tried);
	return -ENOENT;
}

int engine_open(const char *socket_path, struct engine **ret)
{
	struct engine_options opts = { .socket_path = socket_path };
	return engine_open_opts(&opts, ret, NULL, 0);
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	if (e->curl)
		sym_curl_easy_cleanup(e->curl);
	sym_curl_slist_free_all(e->json_headers);
	free(e->socket_path);
	free(e);
}

const char *engine_socket_path(const struct engine *e)
{
	return e->socket_path;
}

const char *engine_errmsg(const struct engine *e)
{
	return e->errmsg;
}

/* ---- the engine --------------------------------------------------------------- */

int engine_ping(struct engine *e)
{
	struct reply rep;
	long t = e->timeout_ms < PING_TIMEOUT_MS ? e->timeout_ms : PING_TIMEOUT_MS;
	int r;

	begin(e);
	e->unversioned = true;
	e->ping_api[0] = '\0';
	e->ping_libpod = false;
	r = request(e, "GET", "/_ping", NULL, t, &rep);
	e->unversioned = false;
	if (r == 0)
		e->podman = e->ping_libpod;
	if (r < 0)
		return r;
	r = status_result(e, &rep);
	if (r == 0 && (rep.len < 2 || strncmp(rep.data, "OK", 2) != 0))
		r = set_error(e, -EBADMSG, "%s does not answer like a container engine (GET /_ping)",
			      e->socket_path);
	else if (r == 1)
		r = set_error(e, -EBADMSG, "%s: unexpected HTTP 304 to GET /_ping", e->socket_path);
	reply_release(&rep);
	return r;
}

int engine_version(struct engine *e, struct engine_version *ret)
{
	begin(e);
	return get_parsed(e, API "/version", "GET /version", parse_version, ret);
}

int engine_is_podman(struct engine *e)
{
	/* From the headers of a ping (GET /version is slow on Podman: it
	 * gathers host information, seconds under load). */
	if (e->podman < 0) {
		int r = engine_ping(e);
		if (r < 0)
			return r;
	}
	return e->podman;
}

/* ---- images ------------------------------------------------------------------ */

int engine_image_list(struct engine *e, struct engine_image_list *ret)
{
	begin(e);
	return get_parsed(e, API "/images/json", "GET /images/json", parse_image_list, ret);
}

int engine_image_inspect(struct engine *e, const char *name, struct engine_image *ret)
{
	char path[700];

	begin(e);
	if (!engine_image_ref_valid(name))
		return set_error(e, -EINVAL, "bad image name \"%.64s\"", name ? name : "(null)");
	snprintf(path, sizeof(path), API "/images/%s/json", name);
	return get_parsed(e, path, "GET /images/{name}/json", parse_image, ret);
}

int engine_image_exists(struct engine *e, const char *name)
{
	struct engine_image img;
	int r = engine_image_inspect(e, name, &img);

	if (r == -ENOENT) {
		begin(e);
		return 0;
	}
	if (r < 0)
		return r;
	engine_image_release(&img);
	return 1;
}

/* ---- containers --------------------------------------------------------------- */

int engine_container_create(struct engine *e, const struct engine_container_spec *spec, char ret_id[ENGINE_ID_MAX])
{
	char path[700], id[ENGINE_ID_MAX];
	json_t *body = NULL, *root = NULL;
	char *text = NULL;
	int r;

	begin(e);
	bool recursive = false;
	for (size_t i = 0; spec->mounts && i < spec->n_mounts; i++)
		recursive = recursive || (spec->mounts[i].type == ENGINE_MOUNT_BIND && spec->mounts[i].recursive);
	int podman = recursive ? engine_is_podman(e) : 0;
	if (podman < 0)
		return podman;
	enum engine_flavor flavor = podman ? ENGINE_FLAVOR_PODMAN : ENGINE_FLAVOR_DOCKER;
	if (!podman) {
		char api[ENGINE_API_VERSION_MAX];
		unsigned major = 0, minor = 0;
		if ((r = engine_api_version(e, api)) < 0)
			return r;
		if (sscanf(api, "%u.%u", &major, &minor) == 2 && (major > 1 || (major == 1 && minor >= 44)))
			flavor = ENGINE_FLAVOR_DOCKER_1_44;
	}
	begin(e);
	r = engine_spec_to_json_for(spec, flavor, &body, e->errmsg, sizeof(e->errmsg));
	if (r < 0) {
		if (r == -ENOMEM)
			set_error(e, r, "out of memory");
		return r;
	}
	text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		r = set_error(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (spec->name)
		snprintf(path, sizeof(path), API "/containers/create?name=%s", spec->name);
	else
		snprintf(path, sizeof(path), API "/containers/create");
	r = call_json(e, "POST", path, text, e->long_timeout_ms, &root);
	if (r < 0)
		goto out;
	r = engine_parse_create_reply(root, id);
	if (r < 0) {
		r = parse_failed(e, r, "POST /containers/create");
		goto out;
	}
	memcpy(ret_id, id, sizeof(id));
out:
	json_decref(root);
	free(text);
	json_decref(body);
	return r;
}

/* ---- riding out transient states (engine.h) ------------------------------------ */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct retry {
	int64_t deadline_ms;
	long delay_us;
};

static void retry_init(struct engine *e, struct retry *rt)
{
	*rt = (struct retry){ .deadline_ms = e->retry_ms < 0 ? 0 : mono_ms() + e->retry_ms, .delay_us = RETRY_FIRST_US };
}

/* Sleep before the next try; false when the time is up. */
static bool retry_wait(struct retry *rt)
{
	int64_t left = rt->deadline_ms - mono_ms();
	if (left <= 0)
		return false;
	long us = rt->delay_us < left * 1000 ? rt->delay_us : (long)(left * 1000);
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	rt->delay_us = rt->delay_us * 2 < RETRY_MAX_US ? rt->delay_us * 2 : RETRY_MAX_US;
	return true;
}

/* What the engine says about the container now, for deciding after a
 * transient error: 1 running, 0 not running, negative errno (-ENOENT gone).
 * *ret_started_ms gets its last start. Keeps e->errmsg. */
static int peek_state(struct engine *e, const char *id, char *state, size_t statelen, int64_t *ret_started_ms)
{
	char saved[sizeof(e->errmsg)];
	memcpy(saved, e->errmsg, sizeof(saved));
	struct engine_container c;
	int r = engine_container_inspect(e, id, &c);
	memcpy(e->errmsg, saved, sizeof(saved));
	if (r < 0) {
		snprintf(state, statelen, "%s", r == -ENOENT ? "removed" : "unknown: inspect failed");
		return r;
	}
	if (c.running || !c.exit_code)
		snprintf(state, statelen, "%s", c.status[0] ? c.status : c.running ? "running" : "stopped");
	else
		snprintf(state, statelen, "%s, exit code %d", c.status[0] ? c.status : "stopped", c.exit_code);
	if (ret_started_ms)
		*ret_started_ms = c.started_ms;
	r = c.running ? 1 : 0;
	engine_container_release(&c);
	return r;
}

/* The final error of an operation that gave up: its message and the state. */
static int give_up(struct engine *e, int r, const char *state)
{
	size_t n = strlen(e->errmsg);
	if (state[0] && n + 32 < sizeof(e->errmsg))
		snprintf(e->errmsg + n, sizeof(e->errmsg) - n, " (container state: %s)", state);
	return r;
}

static int start_once(struct engine *e, const char *id)
{
	char path[700];

	begin(e);
	snprintf(path, sizeof(path), API "/containers/%s/start", id);
	return call(e, "POST", path, NULL, e->long_timeout_ms);
}

/* Run `op` (a start or a stop) and ride out transient refusals (engine.h):
 * after one, look at the container; when it already is in the state the
 * operation was for (running: want_running 1, stopped: 0), that is
 * success (1). Gives up when it is gone or the retry time is over. */
static int until_state(struct engine *e, const char *id, int want_running,
		       int (*op)(struct engine *e, const char *id, int timeout_s), int timeout_s)
{
	struct retry rt;
	char state[96] = "";

	retry_init(e, &rt);
	for (;;) {
		int r = op(e, id, timeout_s);
		if (r >= 0 || !engine_error_transient(r, e->errmsg))
			return r;
		int st = peek_state(e, id, state, sizeof(state), NULL);
		if (st == want_running) {
			begin(e);
			return 1;
		}
		if (st == -ENOENT || !retry_wait(&rt))
			return give_up(e, r, state);
	}
}

static int start_op(struct engine *e, const char *id, int timeout_s)
{
	(void)timeout_s;
	return start_once(e, id);
}

int engine_container_start(struct engine *e, const char *id)
{
	begin(e);
	if (check_container(e, id) < 0)
		return -EINVAL;
	return until_state(e, id, 1, start_op, -1);
}

/* stop and restart: the request may take the stop timeout on top of the
 * engine's own work. */
static int stop_like(struct engine *e, const char *id, const char *verb, int timeout_s)
{
	char path[700];
	long t = e->long_timeout_ms;

	if (check_container(e, id) < 0)
		return -EINVAL;
	if (timeout_s >= 0) {
		snprintf(path, sizeof(path), API "/containers/%s/%s?t=%d", id, verb, timeout_s);
		t += (long)timeout_s * 1000;
	} else {
		snprintf(path, sizeof(path), API "/containers/%s/%s", id, verb);
	}
	return call(e, "POST", path, NULL, t);
}

static int stop_op(struct engine *e, const char *id, int timeout_s)
{
	begin(e);
	return stop_like(e, id, "stop", timeout_s);
}

int engine_container_stop(struct engine *e, const char *id, int timeout_s)
{
	begin(e);
	return until_state(e, id, 0, stop_op, timeout_s);
}

int engine_container_restart(struct engine *e, const char *id, int timeout_s)
{
	struct retry rt;
	char state[96] = "";
	/* Engines report start times in (at best) milliseconds, taken on
	 * their clock; one second of slack still tells a start by this call
	 * from one long before it. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t called_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - 1000;

	begin(e);
	retry_init(e, &rt);
	for (;;) {
		int r = stop_like(e, id, "restart", timeout_s);
		if (r >= 0)
			return 0;
		if (!engine_error_transient(r, e->errmsg))
			return r;
		int64_t started = 0;
		int st = peek_state(e, id, state, sizeof(state), &started);
		if (st == 1 && started >= called_ms) {
			begin(e); /* someone (its restart policy, a racing start) started it meanwhile */
			return 0;
		}
		if (st == 0) {
			/* Stopped while we restarted it: what is left is a start. */
			r = start_once(e, id);
			if (r >= 0) {
				begin(e);
				return 0;
			}
			if (!engine_error_transient(r, e->errmsg))
				return r;
		}
		if (st == -ENOENT || !retry_wait(&rt))
			return give_up(e, r, state);
		begin(e);
	}
}

int engine_container_rename(struct engine *e, const char *id, const char *new_name)
{
	char path[1400];

	begin(e);
	if (check_container(e, id) < 0)
		return -EINVAL;
	if (!engine_container_ref_valid(new_name))
		return set_error(e, -EINVAL, "bad container name \"%.64s\"", new_name ? new_name : "(null)");
	snprintf(path, sizeof(path), API "/containers/%s/rename?name=%s", id, new_name);
	int r = call(e, "POST", path, NULL, e->long_timeout_ms);
	return r > 0 ? 0 : r;
}

int engine_container_remove(struct engine *e, const char *id, unsigned flags)
{
	char path[700], state[96] = "";
	struct retry rt;
	int r;

	begin(e);
	if (check_container(e, id) < 0)
		return -EINVAL;
	retry_init(e, &rt);
	for (;;) {
		if (flags & ENGINE_REMOVE_FORCE) {
			/* Docker kills a running container at once on a forced
			 * remove; Podman's compatible API first waits for the
			 * container's stop timeout. Stopping with t=0 first gives
			 * Docker's behaviour on both. Its failures other than "no
			 * such container" do not matter: the forced DELETE below
			 * has the last word. */
			r = stop_like(e, id, "stop", 0);
			if (r == -ENOENT)
				return r;
			begin(e);
		}
		snprintf(path, sizeof(path), API "/containers/%s?force=%d&v=%d", id,
			 (flags & ENGINE_REMOVE_FORCE) ? 1 : 0, (flags & ENGINE_REMOVE_VOLUMES) ? 1 : 0);
		r = call(e, "DELETE", path, NULL, e->long_timeout_ms);
		if (r >= 0)
			return 0;
		/* -EBUSY without FORCE is the documented "it runs". */
		if (!(flags & ENGINE_REMOVE_FORCE) || !engine_error_transient(r, e->errmsg))
			return r;
		if (peek_state(e, id, state, sizeof(state), NULL) == -ENOENT) {
			begin(e);
			return 0;
		}
		if (!retry_wait(&rt))
			return give_up(e, r, state);
		begin(e);
	}
}

int engine_container_inspect(struct engine *e, const char *id, struct engine_container *ret)
{
	char path[700];

	begin(e);
	if (check_container(e, id) < 0)
		return -EINVAL;
	snprintf(path, sizeof(path), API "/containers/%s/json", id);
	return get_parsed(e, path, "GET /containers/{id}/json", parse_container, ret);
}

int engine_container_list(struct engine *e, const char *const *labels, bool all, struct engine_container_list *ret)
{
	json_t *filters = NULL, *arr, *root = NULL;
	char *text = NULL, *esc = NULL, *path = NULL;
	int r = -ENOMEM;

	begin(e);
	if (labels && labels[0]) {
		filters = json_object();
		if (!filters)
			goto oom;
		arr = json_array();
		/* Takes arr's reference, and fails for arr == NULL. */
		if (json_object_set_new(filters, "label", arr) < 0)
			goto oom;
		for (size_t i = 0; labels[i]; i++) {
			json_t *s = json_string(labels[i]);
			if (!s) {
				r = set_error(e, -EINVAL, "label filter %zu is not valid UTF-8", i);
				goto out;
			}
			if (json_array_append_new(arr, s) < 0)
				goto oom;
		}
		text = json_dumps(filters, JSON_COMPACT);
		if (!text)
			goto oom;
		esc = sym_curl_easy_escape(e->curl, text, 0);
		if (!esc)
			goto oom;
	}
	if (asprintf(&path, API "/containers/json?all=%d%s%s", all ? 1 : 0, esc ? "&filters=" : "",
		     esc ? esc : "") < 0) {
		path = NULL;
		goto oom;
	}
	r = call_json(e, "GET", path, NULL, e->timeout_ms, &root);
	if (r < 0)
		goto out;
	r = engine_parse_container_list(root, ret);
	if (r < 0)
		r = parse_failed(e, r, "GET /containers/json");
	goto out;
oom:
	r = set_error(e, -ENOMEM, "out of memory");
out:
	json_decref(root);
	free(path);
	sym_curl_free(esc);
	free(text);
	json_decref(filters);
	return r;
}

int engine_container_logs(struct engine *e, const char *id, const struct engine_logs_opts *opts, char **ret_text,
			  size_t *ret_len)
{
	struct engine_logs_opts o = opts ? *opts : (struct engine_logs_opts){0};
	struct engine_container c;
	struct reply rep = {0};
	char path[800], tail[32];
	bool tty;
	int r;

	/* The API (before 1.42) does not say whether the stream is
	 * multiplexed; that depends on the container's TTY. */
	r = engine_container_inspect(e, id, &c);
	if (r < 0)
		return r;
	tty = c.tty;
	engine_container_release(&c);

	if ((o.flags & (ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR)) == 0)
		o.flags |= ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR;
	if (o.tail > 0)
		snprintf(tail, sizeof(tail), "%d", o.tail);
	else
		snprintf(tail, sizeof(tail), "all");
	snprintf(path, sizeof(path), API "/containers/%s/logs?stdout=%d&stderr=%d&timestamps=%d&tail=%s", id,
		 (o.flags & ENGINE_LOGS_STDOUT) ? 1 : 0, (o.flags & ENGINE_LOGS_STDERR) ? 1 : 0,
		 (o.flags & ENGINE_LOGS_TIMESTAMPS) ? 1 : 0, tail);

	r = request(e, "GET", path, NULL, e->timeout_ms, &rep);
	if (r < 0)
		return r;
	r = status_result(e, &rep);
	if (r < 0)
		goto out;
	if (tty) {
		char *text = malloc(rep.len + 1);
		if (!text) {
			r = set_error(e, -ENOMEM, "out of memory");
			goto out;
		}
		if (rep.len)
			memcpy(text, rep.data, rep.len);
		text[rep.len] = '\0';
		*ret_text = text;
		*ret_len = rep.len;
		r = 0;
	} else {
		r = engine_demux_logs(rep.data, rep.len, o.flags, ret_text, ret_len);
		if (r == -EBADMSG)
			r = set_error(e, r, "container engine sent a corrupt log stream for %s", id);
		else if (r < 0)
			r = set_error(e, r, "out of memory");
	}
out:
	reply_release(&rep);
	return r;
}

int engine_image_remove(struct engine *e, const char *name, bool force)
{
	char path[700];

	begin(e);
	if (!engine_image_ref_valid(name))
		return set_error(e, -EINVAL, "bad image name \"%.64s\"", name ? name : "(null)");
	snprintf(path, sizeof(path), API "/images/%s?force=%d", name, force ? 1 : 0);
	int r = call(e, "DELETE", path, NULL, e->long_timeout_ms);
	return r > 0 ? 0 : r;
}

/* ---- API version negotiation --------------------------------------------------- */

/* The version both sides speak, from what the engine offers: the
 * API-Version header of GET /_ping, as Docker's own clients negotiate
 * (cheap: Podman's GET /version runs conmon and runc to report their
 * versions, seconds on a busy host, and every worker opens a handle), else
 * ApiVersion and MinAPIVersion of GET /version (both unversioned). */
static int negotiate(struct engine *e)
{
	struct engine_version v;
	json_t *root;
	char err[sizeof(e->errmsg)];
	int r;

	if (!e->ping_api[0]) {
		r = engine_ping(e);
		if (r < 0)
			return r;
	}
	if (e->ping_api[0]) {
		r = engine_api_negotiate(e->ping_api, NULL, e->api, err, sizeof(err));
		if (r < 0) {
			e->api[0] = '\0';
			return set_error(e, r, "%s", err);
		}
		return 0;
	}
	e->unversioned = true;
	r = call_json(e, "GET", "/version", NULL, e->timeout_ms, &root);
	e->unversioned = false;
	if (r < 0)
		return r;
	r = engine_parse_version(root, &v);
	json_decref(root);
	if (r < 0)
		return parse_failed(e, r, "GET /version");
	r = engine_api_negotiate(v.api_version, v.min_api_version, e->api, err, sizeof(err));
	engine_version_release(&v);
	if (r < 0) {
		e->api[0] = '\0';
		return set_error(e, r, "%s", err);
	}
	return 0;
}

int engine_api_version(struct engine *e, char ret[ENGINE_API_VERSION_MAX])
{
	begin(e);
	if (!e->api[0]) {
		int r = negotiate(e);
		if (r < 0)
			return r;
	}
	memcpy(ret, e->api, ENGINE_API_VERSION_MAX);
	return 0;
}

/* ---- pulling images -------------------------------------------------------------- */

#define PULL_REPORT_INTERVAL_MS 250

struct pull_ctx {
	struct engine_pull_stream stream;
	int err;                  /* a stream parse failure; ends the transfer */
	CURL *curl;
	long status;              /* of the reply, once its headers are in */
	struct reply *error_body; /* a non-2xx reply, collected whole */
	engine_pull_cb cb;
	void *userdata;
	struct timespec last_report;
	bool reported;
};

static void pull_report(struct pull_ctx *p, bool force)
{
	struct timespec now;
	if (!p->cb)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - p->last_report.tv_sec) * 1000 + (now.tv_nsec - p->last_report.tv_nsec) / 1000000;
	if (!force && p->reported && ms < PULL_REPORT_INTERVAL_MS)
		return;
	struct engine_pull_progress pr;
	engine_pull_stream_progress(&p->stream, &pr);
	p->cb(&pr, p->userdata);
	p->last_report = now;
	p->reported = true;
}

static size_t pull_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct pull_ctx *p = userdata;
	size_t n = size * nmemb;
	if (!p->status)
		sym_curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &p->status);
	if (p->status < 200 || p->status >= 300)
		return write_cb(ptr, size, nmemb, p->error_body);
	int r = engine_pull_stream_feed(&p->stream, ptr, n);
	if (r < 0) {
		p->err = r;
		return 0;
	}
	pull_report(p, false);
	return n;
}

/* What a registry's refusal means, from the words engines pass on. */
static int pull_error_errno(const char *msg)
{
	if (strstr(msg, "unauthorized") || strstr(msg, "authentication required") || strstr(msg, "denied"))
		return -EACCES;
	if (strstr(msg, "manifest unknown") || strstr(msg, "not found") || strstr(msg, "no such host"))
		return -ENOENT;
	return -EIO;
}

int engine_image_pull(struct engine *e, const char *ref, const struct engine_registry_auth *auth,
		      engine_pull_cb cb, void *userdata)
{
	char repo[600], tag[200], *authval = NULL, *authhdr = NULL, *q_repo = NULL, *q_tag = NULL, *url = NULL;
	struct curl_slist *headers = NULL;
	struct reply rep = { .max = e->max_reply };
	struct pull_ctx p = { .cb = cb, .userdata = userdata, .curl = e->curl, .error_body = &rep };
	CURLcode code;
	int r;

	begin(e);
	if (engine_image_ref_split(ref, repo, sizeof(repo), tag, sizeof(tag)) < 0)
		return set_error(e, -EINVAL, "bad image name \"%.64s\"", ref ? ref : "(null)");
	if (!e->api[0] && (r = negotiate(e)) < 0)
		return r;
	if (auth) {
		r = engine_registry_auth_encode(auth, &authval);
		if (r < 0)
			return set_error(e, r, r == -ENOMEM ? "out of memory" : "bad registry credentials (not UTF-8)");
		if (asprintf(&authhdr, "X-Registry-Auth: %s", authval) < 0) {
			authhdr = NULL;
			r = set_error(e, -ENOMEM, "out of memory");
			goto out;
		}
	}
	headers = curl_lib_slist_append(NULL, "Expect:");
	if (headers && authhdr) {
		struct curl_slist *h = curl_lib_slist_append(headers, authhdr);
		if (!h)
			sym_curl_slist_free_all(headers);
		headers = h;
	}
	q_repo = sym_curl_easy_escape(e->curl, repo, 0);
	q_tag = sym_curl_easy_escape(e->curl, tag, 0);
	if (!headers || !q_repo || !q_tag ||
	    asprintf(&url, "http://localhost/v%s/images/create?fromImage=%s&tag=%s", e->api, q_repo, q_tag) < 0) {
		url = NULL;
		r = set_error(e, -ENOMEM, "out of memory");
		goto out;
	}

	sym_curl_easy_reset(e->curl);
	e->curl_err[0] = '\0';
	sym_curl_easy_setopt(e->curl, CURLOPT_UNIX_SOCKET_PATH, e->socket_path);
	sym_curl_easy_setopt(e->curl, CURLOPT_URL, url);
	sym_curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	sym_curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->curl_err);
	sym_curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
	/* No overall limit (a large image takes what it takes); silence for
	 * long_timeout_ms is a stuck pull. */
	sym_curl_easy_setopt(e->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	sym_curl_easy_setopt(e->curl, CURLOPT_LOW_SPEED_TIME, (e->long_timeout_ms + 999) / 1000);
	sym_curl_easy_setopt(e->curl, CURLOPT_POST, 1L);
	sym_curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, "");
	sym_curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, 0L);
	sym_curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, headers);
	/* A 2xx reply streams progress lines; anything else is an error
	 * body, collected whole. */
	sym_curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, pull_write_cb);
	sym_curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &p);
	code = sym_curl_easy_perform(e->curl);
	/* The handle keeps no pointer to the headers past the transfer, but
	 * clear them anyway before they are freed. */
	sym_curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, NULL);
	long status = 0;
	sym_curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 0 && (status < 200 || status >= 300)) {
		/* Docker and Podman send {"message": ...}: the reason. */
		char cause[128];
		engine_error_text(status, rep.data, rep.len, e->errmsg, sizeof(e->errmsg), cause, sizeof(cause));
		r = engine_http_error(status, cause, e->errmsg);
		if (r == -EIO)
			r = pull_error_errno(e->errmsg);
		goto out;
	}
	if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && p.err)) {
		if (code == CURLE_OPERATION_TIMEDOUT)
			r = set_error(e, -ETIMEDOUT, "pulling %s: the container engine sent nothing for %ld ms", ref,
				      e->long_timeout_ms);
		else
			r = transport_error(e, code, &rep, "POST", "/images/create", e->long_timeout_ms);
		goto out;
	}
	if (p.err == 0)
		p.err = engine_pull_stream_finish(&p.stream);
	if (p.err < 0) {
		r = set_error(e, p.err == -ENOMEM ? -ENOMEM : -EBADMSG,
			      "pulling %s: the container engine sent an unreadable progress stream", ref);
		goto out;
	}
	if (p.stream.failed) {
		r = set_error(e, pull_error_errno(p.stream.error), "%s", p.stream.error);
		goto out;
	}
	pull_report(&p, true);
	r = 0;
out:
	sym_curl_slist_free_all(headers);
	if (authhdr) {
		explicit_bzero(authhdr, strlen(authhdr));
		free(authhdr);
	}
	if (authval) {
		explicit_bzero(authval, strlen(authval));
		free(authval);
	}
	sym_curl_free(q_repo);
	sym_curl_free(q_tag);
	free(url);
	reply_release(&rep);
	engine_pull_stream_release(&p.stream);
	return r;
}
