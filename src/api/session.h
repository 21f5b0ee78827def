/* session.h — who may call the API: the unix socket, a bearer token, or a
 * dashboard login (src/api only).
 *
 * The dashboard (web.h) runs in a browser, where a bearer token would have
 * to be kept in script-readable storage. Instead the page sends the token
 * once to POST /api/v1/session and gets a session cookie: HttpOnly (no
 * script reads it), SameSite=Strict (no other site's page sends it), Path=/,
 * Max-Age = [api] session_lifetime, and Secure when the listener has TLS
 * (or a proxy in front says X-Forwarded-Proto: https). The answer carries a
 * CSRF token, which the page keeps in memory and sends as X-CSRF-Token
 * with every request that changes something; GET /api/v1/session gives it
 * again after a reload. DELETE /api/v1/session logs out.
 *
 * Sessions live in the daemon's memory (a restart or an update's re-exec
 * logs everyone out) and remember the SHA-256 of the token they were made
 * with: a revoked token ends its sessions at the next request. The session
 * id is 32 random bytes; only its SHA-256 is kept.
 *
 * Admission (api_auth_admit(), called by admission.c before any byte of
 * the body is read), on both listeners:
 *   - a request that changes something (not GET/HEAD) and carries an Origin
 *     header must come from the page's own origin (Origin = the Host it
 *     asked), else 403 bad_origin: no other site can drive the API through
 *     a browser, also not through an ssh tunnel to the unix socket;
 * then on TCP only (the unix socket is trusted as before):
 *   - the page's own files, GET /api/v1/session (are we logged in?) and
 *     POST /api/v1/session (body at most 4 KiB) need nothing;
 *   - a request with an Authorization header needs a valid bearer token;
 *   - else a valid session cookie, and for a request that changes
 *     something the session's X-CSRF-Token (403 csrf_required);
 *   - else 401.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "api-internal.h"

#define SESSION_COOKIE "boxd_session"
#define SESSION_CSRF_HEADER "X-CSRF-Token"

struct api_sessions;

int api_sessions_new(int64_t lifetime_ms, struct api_sessions **ret);
void api_sessions_free(struct api_sessions *s);

/* See above. True: go on; false: answered (401, 403 or 413). */
bool api_auth_admit(struct api_req *req, bool trusted);

extern const struct api_route api_routes_session[];
