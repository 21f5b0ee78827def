/* admission.c — see admission.h. */
#include "admission.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "session.h"

struct sizes {
	size_t bytes;
};

static enum MHD_Result add_size(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct sizes *s = cls;
	/* "key=value&" or "Key: value\r\n" */
	s->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static size_t sum(struct MHD_Connection *conn, enum MHD_ValueKind kind)
{
	struct sizes s = { 0 };
	MHD_get_connection_values(conn, kind, add_size, &s);
	return s.bytes;
}

bool api_admission_refuse(struct api_req *req, bool needs_token)
{
	struct MHD_Connection *conn = req->conn;
	/* Who asks first (the token, or a login on TCP; the page's origin):
	 * a client without a token learns nothing else. */
	if (!api_auth_admit(req, !needs_token))
		return true;
	size_t path = strlen(req->url);
	if (path > API_MAX_PATH || path + sum(conn, MHD_GET_ARGUMENT_KIND) > API_MAX_TARGET) {
		api_reply_error(req, 414, "uri_too_long", "the path may have %d bytes and the whole URL %d",
				API_MAX_PATH, API_MAX_TARGET);
		return true;
	}
	if (sum(conn, MHD_HEADER_KIND) > API_MAX_HEADERS) {
		api_reply_error(req, 431, "headers_too_large", "the request headers may have %d bytes in all",
				API_MAX_HEADERS);
		return true;
	}
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		api_reply_error(req, 411, "length_required",
				"send the body with a Content-Length (at most %d bytes), not chunked", API_MAX_BODY);
		return true;
	}
	/* libmicrohttpd has checked that it is a number. */
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY) {
		api_reply_error(req, 413, "body_too_large", "the request body is larger than %d bytes", API_MAX_BODY);
		return true;
	}
	return false;
}
