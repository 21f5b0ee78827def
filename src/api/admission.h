/* admission.h — what a request must pass before any byte of its body is
 * read (src/api only).
 *
 * libmicrohttpd calls the access handler a first time once the request
 * head is complete, before it reads the body (and before it sends "100
 * Continue"). Whatever can refuse a request without its body does so at
 * that call, so that a refused body is never read and never held in
 * memory: the bearer token on the TCP listener, the size of the path, the
 * query and the headers, a body announced larger than API_MAX_BODY, and a
 * body without a Content-Length (chunked: its size is unknown until it has
 * been read). Every refusal is the JSON error format; libmicrohttpd then
 * closes the connection, the body unread.
 */
#pragma once

#include <stdbool.h>

#include "api-internal.h"

/* Longest path (decoded, without the query) and whole request target
 * (path plus query arguments), and the most header bytes (names and
 * values) a request may have. Well below libmicrohttpd's own limit
 * (API_CONN_MEMORY), so that boxd, not libmicrohttpd, answers them. */
#define API_MAX_PATH 1024
#define API_MAX_TARGET 8192
#define API_MAX_HEADERS (16 * 1024)
/* libmicrohttpd's buffer per connection (MHD_OPTION_CONNECTION_MEMORY_
 * LIMIT): a head larger than this is refused by libmicrohttpd itself. */
#define API_CONN_MEMORY (128 * 1024)

/* At the first call for a request: answer it (in req) and return true if
 * it must be refused; false to go on and read its body. */
bool api_admission_refuse(struct api_req *req, bool needs_token);
