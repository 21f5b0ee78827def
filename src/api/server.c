/* server.c — libmicrohttpd plumbing: sockets, limits, TLS, bodies, routing.
 *
 * Two libmicrohttpd daemons, each with its own threads, connection limit
 * and pool of store connections: one on the unix socket, one on TCP. So
 * whatever TCP clients do (hold every connection the TCP daemon allows,
 * keep its store connections busy), the unix socket still answers. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admission.h"
#include "api-internal.h"
#include "common/log.h"
#include "events.h"
#include "session.h"
#include "store_pool.h"
#include "web.h"

/* Store connections of each listener. */
#define UNIX_POOL_SIZE 8
#define TCP_POOL_SIZE 4
/* Connections at once on the unix socket (whoever may open it is an
 * operator; the limit only bounds threads). */
#define UNIX_MAX_CONNECTIONS 256
/* The biggest TLS certificate or key file read. */
#define TLS_FILE_MAX (1024 * 1024)

struct listener {
	struct api_server *srv;
	struct MHD_Daemon *mhd;
	struct store_pool *pool;
	bool needs_token;
};

struct api_server {
	struct api_opts o;
	struct listener unix_l, tcp_l;
	int unix_fd;
	char *tls_cert, *tls_key; /* PEM text, kept while the TCP daemon runs */
	struct api_sessions *sessions;
	struct api_events *events;
	/* The database could not write for lack of space at the last try: an
	 * episode is logged once when it starts and once when it ends. */
	atomic_bool disk_full;
};

struct conn_state {
	char *body;
	size_t len;
	bool too_large;
};

static const struct api_route *const route_tables[] = {
	api_routes_status,
	api_routes_hosts,
	api_routes_tasks,
	api_routes_services,
	api_routes_apps,
	api_routes_app_logs,
	api_routes_app_run,
	api_routes_update,
	api_routes_backups,
	api_routes_session,
	api_routes_events,
	api_routes_box,
};

const struct boxd_config *api_config(const struct api_req *req) { return req->srv->o.config; }
const char *api_host(const struct api_req *req) { return req->srv->o.host; }
const char *api_owner_id(const struct api_req *req) { return req->srv->o.owner_id; }
const struct api_opts *api_opts_of(const struct api_req *req) { return &req->srv->o; }
int64_t api_started_at_ms(const struct api_req *req) { return req->srv->o.started_at_ms; }

struct api_sessions *api_sessions_of(const struct api_req *req) { return req->srv->sessions; }
struct api_events *api_events_of(const struct api_req *req) { return req->srv->events; }

void api_wake(struct api_req *req)
{
	if (req->srv->o.wake)
		req->srv->o.wake(req->srv->o.userdata);
	/* Whoever watches the event feed sees the change now, not at the
	 * next look. */
	api_events_nudge(req->srv->events);
}

/* Streams borrow from the unix socket's pool: a connection for one short
 * query at a time. */
int api_store_get(struct api_server *srv, struct store **ret)
{
	char err[256];
	return store_pool_get(srv->unix_l.pool, ret, err, sizeof(err));
}

void api_store_put(struct api_server *srv, struct store *s) { store_pool_put(srv->unix_l.pool, s, false); }

/* ---- answers ------------------------------------------------------------ */

void api_reply_response(struct api_req *req, unsigned status, struct MHD_Response *resp)
{
	if (req->response)
		MHD_destroy_response(req->response);
	req->response = resp;
	req->status = status;
}

void api_reply_text(struct api_req *req, unsigned status, const char *content_type, const char *text, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", content_type);
	api_reply_response(req, status, r);
}

void api_reply_json(struct api_req *req, unsigned status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(body);
	if (!text) {
		api_reply_text(req, 500, "application/json",
			       "{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the answer\"}}", 66);
		return;
	}
	size_t len = strlen(text);
	text[len] = '\0';
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	api_reply_response(req, status, r);
}

void api_reply_error(struct api_req *req, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[1024], text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages quote what the client sent (a path, an id): bytes that are
	 * not UTF-8 (which JSON cannot carry) and control characters are
	 * shown escaped, so the answer can always be encoded. */
	log_escape(msg, text, sizeof(text));
	api_reply_json(req, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", text));
}

void api_reply_empty(struct api_req *req, unsigned status)
{
	api_reply_response(req, status, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
}

void api_reply_store_error(struct api_req *req, int err)
{
	const char *msg = req->store ? store_errmsg(req->store) : "no database connection";
	if (err == -ENOSPC) {
		/* Nothing was stored (a failed commit leaves nothing behind):
		 * the client may retry once there is room again. */
		if (!atomic_exchange(&req->srv->disk_full, true))
			log_error("the database cannot write (no space left): refusing new work until it can: %s", msg);
		api_reply_error(req, 503, "disk_full", "the database cannot write (no space left): %s", msg);
	} else if (err == -EEXIST) {
		api_reply_error(req, 409, "conflict", "%s", msg);
	} else if (err == -EBUSY || err == -ECONNRESET || err == -ENOTCONN || err == -ECONNREFUSED ||
		   err == -EAGAIN) {
		req->store_broken = err != -EBUSY && err != -EAGAIN;
		api_reply_error(req, 503, "store_unavailable", "the database is unavailable: %s", msg);
	} else {
		api_reply_error(req, 500, "store_error", "database error: %s", msg);
	}
}

const char *api_query(struct api_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *api_body_object(struct api_req *req)
{
	if (!req->body || req->body_len == 0) {
		api_reply_error(req, 400, "bad_request", "the request needs a JSON object body");
		return NULL;
	}
	json_error_t jerr;
	json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		api_reply_error(req, 400, "bad_json", "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
				jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		api_reply_error(req, 400, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	return v;
}

bool api_check_fields(struct api_req *req, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok) {
			api_reply_error(req, 400, "unknown_field", "unknown field \"%s\"", key);
			return false;
		}
	}
	return true;
}

bool api_body_empty(struct api_req *req)
{
	if (req->body_len == 0)
		return true;
	json_t *body = api_body_object(req);
	static const char *const none[] = { NULL };
	bool ok = body && api_check_fields(req, body, none);
	json_decref(body);
	return ok;
}

bool api_param_id(struct api_req *req, int idx, int64_t *ret)
{
	const char *p = idx < req->n_params ? req->params[idx] : NULL;
	char *end;
	errno = 0;
	long long v = p ? strtoll(p, &end, 10) : 0;
	if (!p || errno || *end || end == p || v <= 0) {
		api_reply_error(req, 404, "not_found", "no such id: %s", p ? p : "");
		return false;
	}
	*ret = v;
	return true;
}

/* ---- routing ------------------------------------------------------------- */

/* Split `s` (modified in place) on '/' into at most `max` segments. */
static int split_path(char *s, char **segs, int max)
{
	int n = 0;
	char *save;
	for (char *t = strtok_r(s, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return -1;
		segs[n++] = t;
	}
	return n;
}

/* Match the path (a writable copy in `buf`) against a pattern whose
 * ":name" segments capture; captured values point into `buf`. */
static bool match(const char *pattern, char *buf, struct api_req *req)
{
	char pat[256], *psegs[16], *segs[16];
	snprintf(pat, sizeof(pat), "%s", pattern);
	int np = split_path(pat, psegs, 16), ns = split_path(buf, segs, 16);
	if (np < 0 || np != ns)
		return false;
	int n = 0;
	for (int i = 0; i < np; i++) {
		if (psegs[i][0] == ':') {
			if (n == API_MAX_PARAMS)
				return false;
			req->params[n++] = segs[i];
		} else if (strcmp(psegs[i], segs[i]) != 0) {
			return false;
		}
	}
	req->n_params = n;
	return true;
}

static void dispatch(struct api_req *req)
{
	bool path_matched = false;
	for (size_t t = 0; t < sizeof(route_tables) / sizeof(route_tables[0]); t++) {
		for (const struct api_route *r = route_tables[t]; r->handler; r++) {
			char buf[1024];
			snprintf(buf, sizeof(buf), "%s", req->url);
			struct api_req probe = *req;
			if (!match(r->pattern, buf, &probe))
				continue;
			path_matched = true;
			if (strcmp(r->method, req->method) != 0)
				continue;
			/* Params point into buf: keep it alive through the call. */
			req->n_params = probe.n_params;
			for (int i = 0; i < probe.n_params; i++)
				req->params[i] = probe.params[i];
			if (!api_box_gate_enter(req, r->handler))
				return; /* restore mode: answered 503 */
			if (!api_idempotency_begin(req))
				r->handler(req);
			/* else a retried request: answered */
			api_box_gate_leave(req, r->handler);
			return;
		}
	}
	if (path_matched)
		api_reply_error(req, 405, "method_not_allowed", "%s is not allowed on %s", req->method, req->url);
	else
		api_reply_error(req, 404, "not_found", "no such route: %s", req->url);
}

/* ---- libmicrohttpd callbacks -------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *conn, struct api_req *req)
{
	if (!req->response)
		api_reply_error(req, 500, "internal", "the handler gave no answer");
	api_web_security_headers(req->response, req->url);
	enum MHD_Result r = MHD_queue_response(conn, req->status, req->response);
	MHD_destroy_response(req->response);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)version;
	struct listener *l = cls;
	struct conn_state *cs = *con_cls;
	if (!cs) {
		/* The head is complete and no byte of the body was read. */
		struct api_req first = { .srv = l->srv, .conn = conn, .method = method, .url = url,
					 .trusted = !l->needs_token };
		if (api_admission_refuse(&first, l->needs_token)) {
			log_debug("%s %s -> %u (refused before the body)", method, url, first.status);
			return queue(conn, &first);
		}
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		*con_cls = cs;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!cs->too_large && cs->len + *upload_data_size <= API_MAX_BODY) {
			char *grown = realloc(cs->body, cs->len + *upload_data_size + 1);
			if (grown) {
				cs->body = grown;
				memcpy(cs->body + cs->len, upload_data, *upload_data_size);
				cs->len += *upload_data_size;
				cs->body[cs->len] = '\0';
			} else {
				cs->too_large = true;
			}
		} else {
			cs->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	struct api_req req = { .srv = l->srv, .conn = conn, .method = method, .url = url, .body = cs->body,
			       .body_len = cs->len, .trusted = !l->needs_token };
	/* The Content-Length was checked at the first call: only a body
	 * that grew past it (it cannot, libmicrohttpd frames by it) or a
	 * failed realloc end here. */
	if (cs->too_large) {
		api_reply_error(&req, 413, "body_too_large", "the request body is larger than %d bytes", API_MAX_BODY);
		return queue(conn, &req);
	}
	if (api_web_is_page(method, url)) {
		/* The page's files need no store connection. */
		api_web_serve(&req);
		return queue(conn, &req);
	}
	char err[256];
	if (store_pool_get(l->pool, &req.store, err, sizeof(err)) < 0) {
		api_reply_error(&req, 503, "store_unavailable", "the database is unavailable: %s", err);
		return queue(conn, &req);
	}
	dispatch(&req);
	if (req.status / 100 == 2 && strcmp(method, "GET") != 0 && atomic_exchange(&l->srv->disk_full, false))
		log_info("the database writes again: accepting new work");
	store_pool_put(l->pool, req.store, req.store_broken);
	log_debug("%s %s -> %u", method, url, req.status);
	return queue(conn, &req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct conn_state *cs = *con_cls;
	if (cs) {
		free(cs->body);
		free(cs);
		*con_cls = NULL;
	}
}

/* ---- sockets ------------------------------------------------------------- */

static int bind_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A stale socket file from a daemon that died is replaced; a live one
	 * means another boxd serves this state dir. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			close(fd);
			return -EEXIST;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			snprintf(err, errlen, "another boxd is already listening on %s", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 128) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

static struct MHD_Daemon *start_unix(struct listener *l, int fd, const struct boxd_config *cfg)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)UNIX_MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cfg->api_idle_timeout_ms + 999) / 1000),
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEMORY, MHD_OPTION_END);
}

/* The TCP listener: at most [api] max_connections at once, at most
 * [api] max_connections_per_ip from one address (libmicrohttpd closes the
 * others as soon as it accepts them, and stops accepting while at the
 * limit), idle ones closed after [api] idle_timeout; TLS when a
 * certificate is configured. */
static struct MHD_Daemon *start_tcp(struct listener *l, const struct sockaddr_in *addr, const struct boxd_config *cfg)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, l->srv->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, l->srv->tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};
	if (l->srv->tls_cert)
		flags |= MHD_USE_TLS;
	else
		tls[0].option = MHD_OPTION_END;
	return MHD_start_daemon(flags, ntohs(addr->sin_port), NULL, NULL, on_request, l, MHD_OPTION_SOCK_ADDR, addr,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->api_max_connections,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->api_max_per_ip,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cfg->api_idle_timeout_ms + 999) / 1000),
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEMORY,
				MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

/* A PEM file into memory (NUL-terminated). The key must not be readable
 * by everyone. */
static int read_pem(const char *what, const char *path, bool secret, char **ret, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "[api] %s: cannot read %s: %s", what, path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > TLS_FILE_MAX) {
		close(fd);
		snprintf(err, errlen, "[api] %s: %s is not a PEM file of at most %d bytes", what, path, TLS_FILE_MAX);
		return -EINVAL;
	}
	if (secret && (st.st_mode & S_IROTH)) {
		close(fd);
		snprintf(err, errlen, "[api] %s: %s is readable by every user (mode %04o): chmod 600 it", what, path,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	char *buf = calloc(1, (size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		snprintf(err, errlen, "[api] %s: cannot read %s", what, path);
		return -EIO;
	}
	*ret = buf;
	return 0;
}

static int load_tls(struct api_server *srv, const struct boxd_config *cfg, char *err, size_t errlen)
{
	if (!cfg->tls_cert && !cfg->tls_key)
		return 0;
	if (!cfg->tls_cert || !cfg->tls_key) {
		snprintf(err, errlen, "[api] tls_cert and tls_key go together");
		return -EINVAL;
	}
	if (!cfg->listen) {
		snprintf(err, errlen, "[api] tls_cert is set but there is no TCP listener ([api] listen)");
		return -EINVAL;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "this libmicrohttpd was built without TLS");
		return -ENOTSUP;
	}
	int r = read_pem("tls_cert", cfg->tls_cert, false, &srv->tls_cert, err, errlen);
	if (r == 0)
		r = read_pem("tls_key", cfg->tls_key, true, &srv->tls_key, err, errlen);
	return r;
}

static void free_secret(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

int api_server_start(const struct api_opts *opts, struct api_server **ret, char *err, size_t errlen)
{
	struct api_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->o = *opts;
	srv->unix_fd = -1;
	srv->unix_l.srv = srv->tcp_l.srv = srv;
	srv->tcp_l.needs_token = true;
	int r = store_pool_new(opts->config, UNIX_POOL_SIZE, &srv->unix_l.pool);
	if (r == 0 && opts->config->listen)
		r = store_pool_new(opts->config, TCP_POOL_SIZE, &srv->tcp_l.pool);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((r = load_tls(srv, opts->config, err, errlen)) < 0)
		goto fail;
	if ((r = api_sessions_new(opts->config->api_session_lifetime_ms, &srv->sessions)) < 0 ||
	    (r = api_events_new(opts->config, &srv->events)) < 0) {
		snprintf(err, errlen, "cannot start the event feed: %s", strerror(-r));
		goto fail;
	}

	r = srv->unix_fd = bind_unix(opts->config->socket_path, err, errlen);
	if (r < 0)
		goto fail;
	srv->unix_l.mhd = start_unix(&srv->unix_l, srv->unix_fd, opts->config);
	if (!srv->unix_l.mhd) {
		snprintf(err, errlen, "cannot start the HTTP server on %s", opts->config->socket_path);
		r = -EIO;
		goto fail;
	}
	if (opts->config->listen) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		char host[64];
		int port = 0;
		const char *colon = strrchr(opts->config->listen, ':');
		if (!colon || (size_t)(colon - opts->config->listen) >= sizeof(host) ||
		    sscanf(colon + 1, "%d", &port) != 1 || port <= 0 || port > 65535) {
			snprintf(err, errlen, "[api] listen must be HOST:PORT, not '%s'", opts->config->listen);
			r = -EINVAL;
			goto fail;
		}
		memcpy(host, opts->config->listen, (size_t)(colon - opts->config->listen));
		host[colon - opts->config->listen] = '\0';
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
			snprintf(err, errlen, "[api] listen: '%s' is not an IPv4 address", host);
			r = -EINVAL;
			goto fail;
		}
		sa.sin_port = htons((uint16_t)port);
		srv->tcp_l.mhd = start_tcp(&srv->tcp_l, &sa, opts->config);
		if (!srv->tcp_l.mhd) {
			if (srv->tls_cert)
				snprintf(err, errlen,
					 "cannot listen on %s with TLS (is the address in use, or do [api] tls_cert and "
					 "tls_key not hold a matching PEM certificate and key?)",
					 opts->config->listen);
			else
				snprintf(err, errlen, "cannot listen on %s (is the address in use?)", opts->config->listen);
			r = -EADDRINUSE;
			goto fail;
		}
	}
	*ret = srv;
	return 0;
fail:
	api_server_stop(srv);
	return r;
}

void api_server_stop(struct api_server *srv)
{
	if (!srv)
		return;
	/* Event streams block in their connection's thread: end them first,
	 * or stopping a daemon would wait for their next heartbeat. */
	api_events_close(srv->events);
	if (srv->tcp_l.mhd)
		MHD_stop_daemon(srv->tcp_l.mhd);
	if (srv->unix_l.mhd)
		MHD_stop_daemon(srv->unix_l.mhd);
	if (srv->unix_fd >= 0) {
		close(srv->unix_fd);
		unlink(srv->o.config->socket_path);
	}
	store_pool_free(srv->unix_l.pool);
	store_pool_free(srv->tcp_l.pool);
	free_secret(srv->tls_cert);
	free_secret(srv->tls_key);
	api_events_free(srv->events);
	api_sessions_free(srv->sessions);
	free(srv);
}
