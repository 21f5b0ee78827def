/* web.h — the dashboard: the page's files, and the headers every answer
 * carries for browsers (src/api only).
 *
 * The page (web/, compiled in: web_assets.h) is served at "/" on both
 * listeners without a token: it holds no data, and on TCP it asks for a
 * login (session.h) before it calls the API. Every file has an ETag and
 * "Cache-Control: no-cache" (a reload revalidates: 304 without a body), and
 * its gzip variant goes to clients that accept gzip.
 *
 * Every answer boxd gives, page or API, carries a Content-Security-Policy
 * without inline script or eval, X-Frame-Options DENY, Referrer-Policy
 * no-referrer and X-Content-Type-Options nosniff; API answers are
 * "Cache-Control: no-store" unless they say otherwise.
 */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

#include "api-internal.h"

/* A GET or HEAD of "/" or of one of the page's files. */
bool api_web_is_page(const char *method, const char *url);

/* Answer such a request (the file, or 304). */
void api_web_serve(struct api_req *req);

/* Add the browser security headers to an answer to `url`. */
void api_web_security_headers(struct MHD_Response *r, const char *url);
