/* sse.h — an incremental parser for text/event-stream (Server-Sent Events),
 * as boxd's /tasks/:id/logstream sends it:
 *
 *	data: a log line
 *	data: another one
 *	                                  <- blank line: end of an event
 *	: keepalive                       <- comment, ignored
 *
 *	event: end
 *	data: {"state":"succeeded"}
 *
 * Feed it bytes in pieces of any size; it calls on_data once per "data:"
 * line, as soon as the line is complete (so log lines show as they come), with
 * the name of the event it belongs to ("" for plain messages; an "event:"
 * line comes before the event's data lines). Lines may end in "\n" or "\r\n".
 * Other fields (id:, retry:) are ignored.
 *
 *	struct sse_parser p;
 *	sse_init(&p, on_data, userdata);
 *	sse_feed(&p, chunk, n);       // repeatedly
 *	sse_release(&p);
 */
#pragma once

#include <stddef.h>

/* Return 0 to go on, or a negative errno: sse_feed() stops and returns it. */
typedef int (*sse_data_fn)(const char *event, const char *data, void *userdata);

struct sse_parser {
	sse_data_fn on_data;
	void *userdata;
	char *line; /* the incomplete line so far */
	size_t len, cap;
	char event[64];
};

void sse_init(struct sse_parser *p, sse_data_fn on_data, void *userdata);

/* Returns 0, -ENOMEM, or what on_data returned. */
int sse_feed(struct sse_parser *p, const char *data, size_t n);

void sse_release(struct sse_parser *p);
