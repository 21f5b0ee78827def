/* session.c — see session.h. */
#include "session.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/random.h"
#include "common/sha256.h"
#include "common/timeutil.h"
#include "tokens.h"
#include "web.h"

/* Sessions at once; the oldest goes when a new one needs its place. */
#define SESSIONS_MAX 256
/* The body of POST /api/v1/session, read without a token. */
#define SESSION_BODY_MAX 4096
#define HEX_LEN 64

struct session {
	bool used;
	unsigned char id_hash[32]; /* SHA-256 of the cookie's value */
	char csrf[HEX_LEN + 1];
	char token_hash[HEX_LEN + 1];
	int64_t created_ms, expires_ms; /* wall clock */
};

struct api_sessions {
	pthread_mutex_t mu;
	int64_t lifetime_ms;
	struct session v[SESSIONS_MAX];
};

int api_sessions_new(int64_t lifetime_ms, struct api_sessions **ret)
{
	struct api_sessions *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->lifetime_ms = lifetime_ms;
	*ret = s;
	return 0;
}

void api_sessions_free(struct api_sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

static int random_hex(char out[HEX_LEN + 1])
{
	unsigned char b[HEX_LEN / 2];
	int r = random_bytes(b, sizeof(b));
	if (r < 0)
		return r;
	hex_encode(b, sizeof(b), out);
	return 0;
}

/* The value of the session cookie in a Cookie header ("a=b; boxd_session=x"). */
static bool cookie_value(const char *header, char *out, size_t outlen)
{
	const size_t nlen = strlen(SESSION_COOKIE);
	for (const char *p = header; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		size_t n = strcspn(p, ";");
		if (n > nlen && strncmp(p, SESSION_COOKIE, nlen) == 0 && p[nlen] == '=') {
			size_t vlen = n - nlen - 1;
			if (vlen >= outlen)
				return false;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p += n;
	}
	return false;
}

/* Find the live session of the request's cookie and copy it to *ret. Its
 * token must still be in the tokens file. */
static bool session_of(struct api_req *req, struct session *ret)
{
	const char *header = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
	char value[HEX_LEN + 1];
	unsigned char h[32];
	if (!header || !cookie_value(header, value, sizeof(value)) || strlen(value) != HEX_LEN ||
	    sha256_digest(value, HEX_LEN, h) < 0)
		return false;
	struct api_sessions *s = api_sessions_of(req);
	int64_t now = now_wall_ms();
	bool found = false;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < SESSIONS_MAX; i++) {
		/* Every slot is compared, in constant time. */
		bool match = s->v[i].used && CRYPTO_memcmp(s->v[i].id_hash, h, 32) == 0;
		if (match && s->v[i].expires_ms > now && !found) {
			*ret = s->v[i];
			found = true;
		} else if (match) {
			s->v[i].used = false; /* expired */
		}
	}
	pthread_mutex_unlock(&s->mu);
	return found && tokens_check_hash(api_config(req)->tokens_file, ret->token_hash);
}

static bool is_safe_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* A browser sends Origin with every request that changes something; it
 * must be the origin the page was loaded from, i.e. name the Host asked. */
static bool origin_ok(struct api_req *req)
{
	const char *origin = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Origin");
	if (!origin)
		return true; /* not a browser (curl, boxctl) */
	const char *host = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *rest = strncmp(origin, "http://", 7) == 0 ? origin + 7
			   : strncmp(origin, "https://", 8) == 0 ? origin + 8
								   : NULL;
	return rest && host && strcasecmp(rest, host) == 0;
}

static bool csrf_ok(struct api_req *req, const struct session *se)
{
	const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, SESSION_CSRF_HEADER);
	return h && strlen(h) == HEX_LEN && CRYPTO_memcmp(h, se->csrf, HEX_LEN) == 0;
}

static bool is_session_route(const char *url)
{
	return strcmp(url, "/api/v1/session") == 0;
}

bool api_auth_admit(struct api_req *req, bool trusted)
{
	bool unsafe = !is_safe_method(req->method);
	if (unsafe && !origin_ok(req)) {
		api_reply_error(req, 403, "bad_origin", "a request from another site's page is refused");
		return false;
	}
	if (trusted || api_web_is_page(req->method, req->url))
		return true;
	/* Whether one is logged in is no secret: the page asks it first. */
	if (strcmp(req->method, "GET") == 0 && is_session_route(req->url))
		return true;
	if (strcmp(req->method, "POST") == 0 && is_session_route(req->url)) {
		const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > SESSION_BODY_MAX) {
			api_reply_error(req, 413, "body_too_large", "a login body has at most %d bytes", SESSION_BODY_MAX);
			return false;
		}
		return true;
	}
	const char *auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth) {
		if (strncmp(auth, "Bearer ", 7) == 0 && tokens_check(api_config(req)->tokens_file, auth + 7))
			return true;
	} else {
		struct session se;
		if (session_of(req, &se)) {
			if (!unsafe || csrf_ok(req, &se))
				return true;
			api_reply_error(req, 403, "csrf_required",
					"a request that changes something needs the session's " SESSION_CSRF_HEADER
					" header");
			return false;
		}
	}
	api_reply_error(req, 401, "unauthorized", "a valid bearer token or a login is required");
	MHD_add_response_header(req->response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	return false;
}

/* ---- the routes ------------------------------------------------------------ */

static bool secure_transport(struct api_req *req)
{
	const char *fwd = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
	return (!req->trusted && api_config(req)->tls_cert) || (fwd && strcasecmp(fwd, "https") == 0);
}

static void set_cookie(struct api_req *req, const char *value, int64_t max_age_s)
{
	char c[256];
	snprintf(c, sizeof(c), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", SESSION_COOKIE, value,
		 (long long)max_age_s, secure_transport(req) ? "; Secure" : "");
	MHD_add_response_header(req->response, MHD_HTTP_HEADER_SET_COOKIE, c);
}

static json_t *session_json(const struct session *se)
{
	char at[40];
	format_rfc3339_ms(se->expires_ms, at, sizeof(at));
	return json_pack("{s:s, s:s, s:s}", "auth", "session", "csrfToken", se->csrf, "expiresAt", at);
}

/* POST /api/v1/session {"token": "..."} → 201, the cookie, the CSRF token. */
static void login(struct api_req *req)
{
	static const char *const fields[] = { "token", NULL };
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields))
		goto out;
	json_t *tok = json_object_get(body, "token");
	if (!json_is_string(tok)) {
		api_reply_error(req, 400, "bad_request", "\"token\" must be a string");
		goto out;
	}
	if (!tokens_check(api_config(req)->tokens_file, json_string_value(tok))) {
		api_reply_error(req, 401, "unauthorized", "this token is not valid");
		goto out;
	}
	struct session se = { .used = true };
	char id[HEX_LEN + 1];
	if (random_hex(id) < 0 || random_hex(se.csrf) < 0 || sha256_digest(id, HEX_LEN, se.id_hash) < 0 ||
	    tokens_hash(json_string_value(tok), se.token_hash) < 0) {
		api_reply_error(req, 500, "internal", "cannot make a session");
		goto out;
	}
	struct api_sessions *s = api_sessions_of(req);
	se.created_ms = now_wall_ms();
	se.expires_ms = se.created_ms + s->lifetime_ms;
	pthread_mutex_lock(&s->mu);
	size_t slot = 0;
	for (size_t i = 0; i < SESSIONS_MAX; i++) {
		if (!s->v[i].used || s->v[i].expires_ms <= se.created_ms) {
			slot = i;
			break;
		}
		if (s->v[i].created_ms < s->v[slot].created_ms)
			slot = i;
	}
	s->v[slot] = se;
	pthread_mutex_unlock(&s->mu);
	api_reply_json(req, 201, session_json(&se));
	set_cookie(req, id, s->lifetime_ms / 1000);
	explicit_bzero(id, sizeof(id));
out:
	json_decref(body);
}

/* GET /api/v1/session: how this request is let in ("socket", "token",
 * "session" with the CSRF token, or "none": log in first). */
static void whoami(struct api_req *req)
{
	struct session se;
	const char *auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (req->trusted)
		api_reply_json(req, 200, json_pack("{s:s}", "auth", "socket"));
	else if (auth && strncmp(auth, "Bearer ", 7) == 0 && tokens_check(api_config(req)->tokens_file, auth + 7))
		api_reply_json(req, 200, json_pack("{s:s}", "auth", "token"));
	else if (session_of(req, &se))
		api_reply_json(req, 200, session_json(&se));
	else
		api_reply_json(req, 200, json_pack("{s:s}", "auth", "none"));
}

/* DELETE /api/v1/session: log out (the session is gone, the cookie too). */
static void logout(struct api_req *req)
{
	struct session se;
	if (session_of(req, &se)) {
		struct api_sessions *s = api_sessions_of(req);
		pthread_mutex_lock(&s->mu);
		for (size_t i = 0; i < SESSIONS_MAX; i++)
			if (s->v[i].used && CRYPTO_memcmp(s->v[i].id_hash, se.id_hash, 32) == 0)
				s->v[i].used = false;
		pthread_mutex_unlock(&s->mu);
	}
	api_reply_empty(req, 204);
	set_cookie(req, "", 0);
}

const struct api_route api_routes_session[] = {
	{ "POST", "/api/v1/session", login },
	{ "GET", "/api/v1/session", whoami },
	{ "DELETE", "/api/v1/session", logout },
	{ NULL, NULL, NULL },
};
