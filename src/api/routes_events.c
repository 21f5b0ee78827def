/* routes_events.c — GET /api/v1/events: the live event feed (events.h) as
 * server-sent events.
 *
 *	GET /api/v1/events[?heartbeat=SECONDS][&lastEventId=ID]
 *	Last-Event-ID: ID          (what EventSource sends when it reconnects)
 *
 * The stream starts with `retry:` and a `hello` event whose id is where
 * the client stands; then task, lock, app, volumes, service and backups
 * events (each a JSON object in one data line, with an id), a `resync`
 * event when the client must fetch everything again, and a `heartbeat`
 * event after SECONDS (1-60, default 15) without any other. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "events.h"

#define HEARTBEAT_DEFAULT_S 15
#define HEARTBEAT_MAX_S 60

static ssize_t events_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	size_t n = api_events_read(cls, buf, max);
	return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void events_free(void *cls)
{
	api_events_unsubscribe(cls);
}

static void get_events(struct api_req *req)
{
	const char *hb = api_query(req, "heartbeat");
	long secs = HEARTBEAT_DEFAULT_S;
	if (hb) {
		char *end;
		secs = strtol(hb, &end, 10);
		if (!*hb || *end || secs < 1 || secs > HEARTBEAT_MAX_S) {
			api_reply_error(req, 400, "bad_request", "heartbeat is a number of seconds from 1 to %d",
					HEARTBEAT_MAX_S);
			return;
		}
	}
	const char *last = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Last-Event-ID");
	if (!last)
		last = api_query(req, "lastEventId");
	struct api_events_sub *sub;
	if (api_events_subscribe(api_events_of(req), last, secs * 1000, &sub) < 0) {
		api_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, events_read, sub,
								      events_free);
	if (!resp) {
		api_events_unsubscribe(sub);
		api_reply_error(req, 500, "internal", "cannot start the stream");
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	/* A proxy must not hold events back. */
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	api_reply_response(req, 200, resp);
}

const struct api_route api_routes_events[] = {
	{ "GET", "/api/v1/events", get_events },
	{ NULL, NULL, NULL },
};
