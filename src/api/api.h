/* api.h — the REST API server (DESIGN.md "REST API (v1)").
 *
 * libmicrohttpd serves each connection in its own thread. Handlers borrow a
 * store connection from a small pool for the length of one request (the
 * loop thread has its own; no connection is ever shared by two threads at
 * once). A handler that creates or stops a task calls api_wake(), which
 * wakes the daemon's libuv loop (uv_async_send is thread-safe): the
 * scheduler then decides, in the loop thread, what starts.
 *
 * Listening: a unix socket (default <state>/boxd.sock, mode 0660; access is
 * granted by the file's permissions) and optionally TCP (`[api] listen`,
 * HTTPS with `[api] tls_cert`/`tls_key`), where every request needs
 * `Authorization: Bearer <token>` (tokens.h). Each listener is its own
 * libmicrohttpd daemon with its own threads, connection limits, idle
 * timeout and store pool, so TCP clients cannot starve the unix socket.
 * A request is admitted or refused before its body is read
 * (admission.h). See docs/ARCHITECTURE.md, "Security".
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/config.h"

struct api_server;

struct api_opts {
	const struct boxd_config *config;
	const char *host;             /* this host's id (common/proc.h) */
	const char *owner_id;         /* its owner id: host id + boot, as task claims and lock
				       * owners carry it */
	int64_t started_at_ms;        /* for uptime */
	void (*wake)(void *userdata); /* thread-safe: wake the loop */
	/* POST /api/v1/box/restore (routes_box.c), from an API thread, once
	 * the box was found empty and restore mode is on: run `boxd restore`
	 * with these arguments (a JSON array of strings, borrowed) and the
	 * token in its environment (backups/box_restore_status.h). NULL: the
	 * server cannot (501). */
	int (*box_restore)(void *userdata, json_t *args, const char *token, char *err, size_t errlen);
	void *userdata;
};

/* Bind the sockets and start serving. On failure a message is in err. */
int api_server_start(const struct api_opts *opts, struct api_server **ret, char *err, size_t errlen);

/* Stop accepting, finish in-flight requests, close the pool. Accepts NULL. */
void api_server_stop(struct api_server *srv);

/* The box restore that POST /api/v1/box/restore started has ended without
 * changing the box (it failed): leave restore mode, mutating requests are
 * served again. (After a success the daemon re-executes instead.) */
void api_box_restore_end(void);
