/* http.h — a small HTTP client for boxctl, on libcurl.
 *
 * It speaks to boxd either over its unix socket (the default; the URL's host
 * part is then only a formality) or over TCP to http://HOST:PORT, with an
 * optional bearer token. It knows nothing about boxd's JSON: it sends a
 * request and hands back the status and the body (or streams the body to a
 * callback). It never prints.
 *
 * Calling sequence:
 *
 *	struct http_client *c;
 *	http_client_new(&(struct http_target){ .socket_path = "/x/boxd.sock" }, &c);
 *	struct http_response resp;
 *	char err[256];
 *	if (http_request(c, &(struct http_request){ .method = "GET", .path = "/api/v1/status" },
 *			 &resp, err, sizeof(err)) < 0)
 *		... transport failure: err says why ...
 *	... resp.status, resp.body (NUL-terminated), resp.len ...
 *	http_response_release(&resp);
 *	http_client_free(c);
 *
 * curl_global_init() must have been called once by the program before
 * http_client_new(), and curl_global_cleanup() after the last client is freed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct http_client;

/* Where boxd is. Exactly one of socket_path and base_url is set. The strings
 * are copied. */
struct http_target {
	const char *socket_path; /* unix socket */
	const char *base_url;    /* "http://HOST:PORT", no trailing path */
	const char *token;       /* sent as "Authorization: Bearer <token>"; may be NULL */
	const char *ca_file;     /* PEM certificates to trust for https:// (NULL: the system's) */
};

/* Receives the body of a 2xx answer as it arrives, in pieces of any size.
 * Return 0 to go on, or a negative errno to abort the transfer (then
 * http_request() returns that value). */
typedef int (*http_chunk_fn)(const char *data, size_t len, void *userdata);

struct http_request {
	const char *method;   /* "GET", "POST", ... */
	const char *path;     /* "/api/v1/tasks?state=running": already escaped */
	const char *body;     /* JSON text, sent with Content-Type: application/json; may be NULL */
	long timeout_ms;      /* whole transfer; 0 = no limit (streams) */
	http_chunk_fn on_chunk; /* NULL: collect the body in the response */
	void *userdata;
};

struct http_response {
	long status;          /* HTTP status code */
	char *body;           /* malloc'ed, NUL-terminated; "" if empty. With on_chunk,
			       * only the body of a non-2xx answer lands here. */
	size_t len;
};

/* Returns 0, -EINVAL (neither or both of socket_path and base_url), or
 * -ENOMEM. */
int http_client_new(const struct http_target *target, struct http_client **ret);

/* Accepts NULL. */
void http_client_free(struct http_client *c);

/* Send one request and wait for the whole answer. Returns 0 when an answer of
 * any status arrived (*ret is then filled and owned by the caller), or a
 * negative errno when the request failed in transport:
 *   -ECONNREFUSED  nobody listens there (or the socket file is missing);
 *                  err carries the system's reason
 *   -ETIMEDOUT     no connection or no complete answer in time
 *   -ECONNRESET    the connection broke during the answer
 *   -ECANCELED     on_chunk asked to stop (when it returned -ECANCELED)
 *   -EIO           anything else libcurl reports
 * On failure *ret is untouched and err holds a one-line reason. */
int http_request(struct http_client *c, const struct http_request *req, struct http_response *ret, char *err,
		 size_t errlen);

/* Frees the body; accepts a zeroed struct. */
void http_response_release(struct http_response *r);

/* Escape a query parameter value; the result is malloc'ed (NULL on ENOMEM). */
char *http_escape(const char *s);
