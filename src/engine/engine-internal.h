/* engine-internal.h — the pure half of the engine client, shared by
 * engine.c (transport), engine_reply.c (parsing replies), engine_request.c
 * (building the create request), engine_wire.c (URL path references, errors,
 * log frames), engine_pull.c, and the unit tests and fuzzer.
 *
 * Nothing here does I/O: every function turns bytes or a jansson tree into
 * structs or back, so each can be tested and fuzzed without an engine.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* Which engine a request body is for: they differ in how a recursive bind
 * mount is asked for (engine.h, struct engine_mount). */
enum engine_flavor {
	ENGINE_FLAVOR_DOCKER,
	ENGINE_FLAVOR_PODMAN,
	/* Docker spoken at API 1.44 or later: a read-only bind is then
	 * recursively read-only unless BindOptions.ReadOnlyNonRecursive says
	 * otherwise, which it does for a recursive read-only bind (engine.h,
	 * struct engine_mount: read-only is the top mount's). */
	ENGINE_FLAVOR_DOCKER_1_44,
};

/* Build the body of POST /containers/create for an engine of `flavor`.
 * Returns 0 and a new reference in *ret, or -EINVAL with a message in
 * errbuf, or -ENOMEM. */
int engine_spec_to_json_for(const struct engine_container_spec *spec, enum engine_flavor flavor, json_t **ret,
			    char *errbuf, size_t errlen);
/* The same for Docker. */
int engine_spec_to_json(const struct engine_container_spec *spec, json_t **ret, char *errbuf, size_t errlen);

/* Is a transient refusal (engine.h "Transient states") what this error
 * of a container operation is? `r` is the call's errno, `msg` its message. */
bool engine_error_transient(int r, const char *msg);

/* Validators for what goes into a URL path. Container references (ids and
 * names) are [a-zA-Z0-9][a-zA-Z0-9_.-]*; image references also allow '/',
 * ':' and '@' but no "." or ".." path segment. Both are at most 512 bytes.
 * Because only these characters pass, nothing in a path needs escaping and
 * curl's dot-segment removal cannot turn a name into another endpoint. */
bool engine_container_ref_valid(const char *s);
bool engine_image_ref_valid(const char *s);

/* Reply parsers. Each takes a parsed reply (borrowed; the result takes its
 * own reference where it keeps strings) and fills *ret on success. They
 * return -EBADMSG when the reply's top-level shape is wrong (an object
 * where an array belongs) and -ENOMEM; a missing field is not an error. */
int engine_parse_version(json_t *root, struct engine_version *ret);
int engine_parse_image(json_t *obj, bool from_list, struct engine_image *ret);
int engine_parse_image_list(json_t *root, struct engine_image_list *ret);
int engine_parse_container_inspect(json_t *root, struct engine_container *ret);
int engine_parse_container_list(json_t *root, struct engine_container_list *ret);

/* The "Id" of a create reply: 1..64 lowercase hex digits, else -EBADMSG. */
int engine_parse_create_reply(json_t *root, char ret_id[ENGINE_ID_MAX]);

/* RFC 3339 with optional fraction and a "Z" or ±hh:mm offset → wall ms.
 * Times before 1970 (Go's zero time "0001-01-01T00:00:00Z" means "never")
 * give 0. -EINVAL for anything else. */
int engine_parse_time_ms(const char *s, int64_t *ret_ms);

/* Map an HTTP error status and the engine's error body (`cause` is
 * Podman's extra field; either may be NULL) to a negative errno. */
int engine_http_error(long status, const char *cause, const char *message);

/* Extract a user-readable message from an error body: its JSON "message"
 * (Docker and Podman), else the body's first line with control characters
 * replaced, else "HTTP <status>". Also returns Podman's "cause" in
 * ret_cause (may be ""). */
void engine_error_text(long status, const char *body, size_t len, char *buf, size_t buflen, char *cause,
		       size_t causelen);

/* Demultiplex a Docker log stream: frames of an 8-byte header (stream type
 * 0 stdin, 1 stdout, 2 stderr, 3 engine error; three zero bytes; big-endian
 * 32-bit payload length) followed by the payload. Keeps the payloads of the
 * streams in `streams` (ENGINE_LOGS_STDOUT/STDERR; type 3 goes with
 * stderr) in order. A final frame cut short keeps what arrived. -EBADMSG
 * for a malformed header. *ret is malloc'ed and NUL-terminated. */
int engine_demux_logs(const void *buf, size_t len, unsigned streams, char **ret, size_t *ret_len);

/* libFuzzer-compatible entry: feeds `data` to every reply parser above.
 * Always returns 0. A harness is one line:
 *	int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return engine_fuzz_one(d, n); } */
int engine_fuzz_one(const uint8_t *data, size_t size);

/* ---- pulling images and choosing the API version (engine_pull.c) ------- */

/* Split an image reference into what POST /images/create wants: fromImage
 * (the repository) and tag ("latest" when there is none; the digest,
 * "sha256:...", for repo@digest). -EINVAL for a bad reference or a buffer
 * too small. */
int engine_image_ref_split(const char *ref, char *repo, size_t repolen, char *tag, size_t taglen);

/* The X-Registry-Auth value for `auth` (base64url of its JSON),
 * malloc'ed; the caller wipes and frees it. -EINVAL (no user or password,
 * not UTF-8), -ENOMEM. */
int engine_registry_auth_encode(const struct engine_registry_auth *auth, char **ret);

/* The JSON-lines stream of POST /images/create, fed in chunks as they
 * arrive. Each line is {"status","id","progressDetail":{current,total}}
 * or {"error","errorDetail":{"message"}}; Docker and Podman both report a
 * failed pull that way after a 200. */
struct engine_pull_layer {
	char id[72];
	int64_t current, total;
	bool done;
};

struct engine_pull_stream {
	struct engine_pull_layer *layers;
	size_t n_layers, cap_layers;
	char *line;               /* a line cut by a chunk boundary */
	size_t line_len;
	size_t lines;             /* JSON lines read */
	bool failed;              /* an error line came */
	char error[1024];         /* its message, control characters blanked */
};

/* 0, -EBADMSG (a line that is not a JSON object), -EMSGSIZE (a line over
 * 64 KiB), -ENOMEM. An error line is not an error of the call: it sets
 * failed and error. */
int engine_pull_stream_feed(struct engine_pull_stream *s, const char *buf, size_t len);
/* The stream ended: read a last line without its newline. */
int engine_pull_stream_finish(struct engine_pull_stream *s);
void engine_pull_stream_progress(const struct engine_pull_stream *s, struct engine_pull_progress *ret);
void engine_pull_stream_release(struct engine_pull_stream *s);

/* Pick the API version to speak from the engine's /version ApiVersion and
 * MinAPIVersion (may be "" or NULL: no minimum). 0 with ret set; else
 * -EPROTONOSUPPORT or -EBADMSG with a message naming the versions. */
int engine_api_negotiate(const char *server_max, const char *server_min, char ret[ENGINE_API_VERSION_MAX],
			 char *err, size_t errlen);

/* ---- following a log (engine_follow.c) ---------------------------------- */

/* Set the handle's message (engine_errmsg) from a file other than
 * engine.c; returns err. */
int engine_set_error(struct engine *e, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The log stream of GET /containers/{id}/logs?follow=1 demultiplexed as it
 * arrives: the frames of engine_demux_logs(), but fed in pieces of any
 * size (a frame header may be cut anywhere). `raw` (a container with a
 * TTY) passes every byte through. Zero it, then set streams and raw. */
struct engine_log_demux {
	unsigned streams;          /* ENGINE_LOGS_STDOUT/STDERR; 0: both */
	bool raw;
	unsigned char hdr[8];      /* a frame header cut by a chunk boundary */
	size_t hdr_len;
	size_t left;               /* payload bytes of the current frame still to come */
	bool keep;                 /* the current frame's stream is wanted */
};

/* Feed n bytes; writes the kept payload bytes to out (which must hold n
 * bytes: the payload is never longer than its input) and their count to
 * *out_len. 0, or -EBADMSG for a malformed frame header (nothing after it
 * is trusted: the caller ends the stream). */
int engine_log_demux_feed(struct engine_log_demux *d, const char *in, size_t n, char *out, size_t *out_len);
