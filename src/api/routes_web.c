/* routes_web.c — see web.h. */
#include "web.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "web_assets.h"

/* No inline script or style, no eval; the page talks only to boxd. */
#define CSP                                                                                                  \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "          \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct web_asset *find_asset(const char *url)
{
	if (strcmp(url, "/") == 0)
		url = "/index.html";
	for (size_t i = 0; i < web_assets_n; i++)
		if (strcmp(web_assets[i].path, url) == 0)
			return &web_assets[i];
	return NULL;
}

bool api_web_is_page(const char *method, const char *url)
{
	return (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) && find_asset(url);
}

/* Does Accept-Encoding allow gzip? "gzip" or "*" listed without q=0. */
static bool accepts_gzip(const char *ae)
{
	if (!ae)
		return false;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", ae);
	char *save;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t n = strcspn(tok, "; \t");
		bool name = (n == 4 && strncasecmp(tok, "gzip", 4) == 0) || (n == 1 && tok[0] == '*');
		if (!name)
			continue;
		const char *q = strstr(tok + n, "q=");
		if (q && strtod(q + 2, NULL) <= 0)
			return false;
		return true;
	}
	return false;
}

/* Does If-None-Match name `etag` (quoted) or "*"? */
static bool etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return false;
	if (strcmp(inm, "*") == 0)
		return true;
	size_t n = strlen(etag);
	for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag)) {
		/* A whole list element: delimited by start, comma, space or W/. */
		bool start = p == inm || p[-1] == ',' || p[-1] == ' ' || p[-1] == '/';
		bool end = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
		if (start && end)
			return true;
	}
	return false;
}

void api_web_serve(struct api_req *req)
{
	const struct web_asset *a = find_asset(req->url);
	if (!a) {
		api_reply_error(req, 404, "not_found", "no such route: %s", req->url);
		return;
	}
	const char *ae = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	bool gz = a->gz_len < a->len && accepts_gzip(ae);
	/* Each encoding is its own representation, with its own tag. */
	char etag[64];
	snprintf(etag, sizeof(etag), "\"%s%s\"", a->etag, gz ? "-gz" : "");
	const char *inm = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	struct MHD_Response *r;
	unsigned status = 200;
	if (etag_matches(inm, etag)) {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		status = 304;
	} else {
		r = MHD_create_response_from_buffer(gz ? a->gz_len : a->len, (void *)(gz ? a->gz : a->data),
						    MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
		if (gz)
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	/* Revalidate at every load: the names of the files do not change
	 * with their content, and a 304 costs one small round trip. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	api_reply_response(req, status, r);
}

void api_web_security_headers(struct MHD_Response *r, const char *url)
{
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	if (url && strncmp(url, "/api/", 5) == 0 && !MHD_get_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL))
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}
