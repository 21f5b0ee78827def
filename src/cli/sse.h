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
 *
 * Below the parser, the two ways boxctl follows a stream of boxd (the one
 * place that knows how a stream ends or fails): cli_sse_get() for any
 * stream (`boxctl events`), cli_follow_log() for the log streams.
 */
#pragma once

#include <jansson.h>
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

/* ---- following a stream of boxd (boxctl) ---------------------------------------- */

struct cli;

/* GET `path` as an event stream: every "data:" line goes to on_data as it
 * comes, and stdout is flushed after each piece. Returns CLI_EXIT_OK when
 * boxd answered 2xx and closed the stream (whether that was the end the
 * caller waited for, its on_data knows). Otherwise the exit code, said on
 * stderr: boxd's error answer (api_report), the transport failure
 * (api_report_transport) or, when `cut` is set and the stream had begun,
 * "boxctl: <cut>: <reason>" and CLI_EXIT_CONNECT (a daemon that stops may
 * cut its stream rather than end it); CLI_EXIT_API without a word when
 * stdout went away (on_data or the flush gave -EPIPE). */
int cli_sse_get(struct cli *cli, const char *path, sse_data_fn on_data, void *userdata, const char *cut);

/* Follow a log stream (/tasks/:id/logstream, /apps/:id/logs?follow=1): its
 * plain lines to stdout as they come; the "end" event's JSON into *ret_end
 * (NULL when the stream stopped without one; {} for an "end" that is not
 * JSON; json_decref() it). Returns as cli_sse_get() does (without `cut`);
 * *ret_end is written only on CLI_EXIT_OK. */
int cli_follow_log(struct cli *cli, const char *path, json_t **ret_end);
