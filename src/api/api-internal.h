/* api-internal.h — what route handlers see. Only src/api includes it.
 *
 * A handler gets a struct api_req with the path parameters already split
 * out, the request body (complete, at most API_MAX_BODY bytes), and a store
 * connection borrowed for this request. It answers with exactly one of the
 * api_reply_*() calls and returns.
 */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "store/store.h"

#define API_MAX_BODY (1024 * 1024)
#define API_MAX_PARAMS 4

struct api_server;

struct api_req {
	struct api_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	const char *params[API_MAX_PARAMS]; /* ":name" segments of the route, in order */
	int n_params;
	const char *body;
	size_t body_len;
	struct store *store;                /* borrowed for this request */
	bool store_broken;                  /* set when the store failed oddly */
	bool trusted;                       /* came in on the unix socket */
	/* Idempotency-Key of a POST that no task holds yet (idempotency.c):
	 * api_enqueue() stores it with the task. "" when none. */
	char idem_key[256];
	char idem_fp[65];
	/* The answer. */
	unsigned status;
	struct MHD_Response *response;
};

typedef void (*api_handler_fn)(struct api_req *req);

struct api_route {
	const char *method;
	const char *pattern; /* e.g. "/api/v1/tasks/:id/stop" */
	api_handler_fn handler;
};

/* Route tables of each group of routes (routes_*.c), NULL-handler terminated. */
extern const struct api_route api_routes_tasks[];
extern const struct api_route api_routes_status[];
extern const struct api_route api_routes_hosts[];
extern const struct api_route api_routes_services[];
extern const struct api_route api_routes_apps[];
extern const struct api_route api_routes_app_logs[];
extern const struct api_route api_routes_app_run[];
extern const struct api_route api_routes_update[];
extern const struct api_route api_routes_backups[];
extern const struct api_route api_routes_session[];
extern const struct api_route api_routes_events[];
extern const struct api_route api_routes_box[];

/* Restore mode (routes_box.c): before a handler runs, a mutating request
 * passes the gate or is answered 503 `restoring` (false); leave it after
 * the handler when it passed. */
bool api_box_gate_enter(struct api_req *req, api_handler_fn h);
void api_box_gate_leave(struct api_req *req, api_handler_fn h);

/* Server facts for handlers. */
const struct boxd_config *api_config(const struct api_req *req);
const char *api_host(const struct api_req *req);
const char *api_owner_id(const struct api_req *req);
const struct api_opts *api_opts_of(const struct api_req *req);
int64_t api_started_at_ms(const struct api_req *req);
void api_wake(struct api_req *req);
/* The dashboard's logins (session.h) and the live event feed (events.h). */
struct api_sessions *api_sessions_of(const struct api_req *req);
struct api_events *api_events_of(const struct api_req *req);

/* Answers. reply_json takes ownership of `body`. */
void api_reply_json(struct api_req *req, unsigned status, json_t *body);
void api_reply_error(struct api_req *req, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void api_reply_text(struct api_req *req, unsigned status, const char *content_type, const char *text, size_t len);
void api_reply_empty(struct api_req *req, unsigned status);
/* A store failure, with its message: 503 disk_full when the database
 * cannot write for lack of space, 503 store_unavailable when it is busy or
 * unreachable, else 500 store_error. */
void api_reply_store_error(struct api_req *req, int err);
/* Hand over a prepared response (streams). */
void api_reply_response(struct api_req *req, unsigned status, struct MHD_Response *resp);

/* A query-string argument, or NULL. */
const char *api_query(struct api_req *req, const char *name);

/* Parse the body as a JSON object. On failure answers 400 and returns
 * NULL. */
json_t *api_body_object(struct api_req *req);

/* Check that an object has only `allowed` keys (NULL-terminated); else
 * answers 400 naming the unknown key and returns false. */
bool api_check_fields(struct api_req *req, json_t *obj, const char *const *allowed);

/* For a request that takes no arguments: true when it has no body or the
 * body {}; else answers 400 and returns false. */
bool api_body_empty(struct api_req *req);

struct app;
/* The app that params[0] names, into *ret (app_release() it); else answers
 * 404 not_found (no such app) or the store error and returns false. */
bool api_app_get(struct api_req *req, struct app *ret);

/* Parse a positive int64 path parameter; else answers 404 and returns false. */
bool api_param_id(struct api_req *req, int idx, int64_t *ret);

/* Before a POST handler runs: a request whose Idempotency-Key already
 * created a task is answered here (202 with that task, or 422 when the key
 * came with a different request) and true is returned; otherwise the key is
 * kept in req for api_enqueue(). See idempotency.c. */
bool api_idempotency_begin(struct api_req *req);

/* The request's Idempotency-Key for the task it creates
 * (task_create_idempotent()): filled into *buf and returned, or NULL when
 * the request has none. */
struct task_idempotency;
const struct task_idempotency *api_idempotency(struct api_req *req, struct task_idempotency *buf);

/* Queueing a task (enqueue.c). api_enqueue() runs task_enqueue() (tasks/
 * task_enqueue.h) with the request's Idempotency-Key and the config's
 * timeout, then answers with api_reply_enqueued(). api_reply_enqueued()
 * is the HTTP side of task_enqueue()'s result: on success it wakes the
 * scheduler (unless the request joined a task) and answers 202 with
 * `body` (owned; NULL: {}) plus "taskId"; a refusal is 404 not_found
 * (-ENOENT), 409 conflict (-EEXIST, -EBUSY), 400 bad_request (-EINVAL) or
 * 422 (-EPERM), with the admission's code if it gave one and "taskId"
 * naming the task in the way;
 * anything else is a store error (api_reply_store_error()). */
struct task_enqueue;
struct task_enqueued;
int api_enqueue(struct api_req *req, struct task_enqueue *e, json_t *body);
void api_reply_enqueued(struct api_req *req, int r, const struct task_enqueued *res, json_t *body);

/* Borrow another store connection (streams that outlive the handler). */
int api_store_get(struct api_server *srv, struct store **ret);
void api_store_put(struct api_server *srv, struct store *s);
