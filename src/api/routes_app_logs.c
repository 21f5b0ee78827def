/* routes_app_logs.c — GET /api/v1/apps/:id/logs: an app container's log
 * from the engine, all of it so far or followed as it is written.
 *
 *	GET /api/v1/apps/:id/logs[?tail=N]            text/plain, what the engine keeps
 *	GET /api/v1/apps/:id/logs?follow=1[&tail=N]   text/event-stream until the container stops
 *
 * The stream (server-sent events, as /tasks/:id/logstream):
 *
 *	data: a line the container wrote          one event per piece the engine sent;
 *	data: the next one                        one data line per log line
 *	                                          (\n, \r\n and a lone \r end a line)
 *	: keepalive                               after 15 s without a line
 *
 *	event: end                                the container stopped (or the engine
 *	data: {"state":"exited","exitCode":0}     failed: "error":{code,message})
 *
 * A stream ends when the container stops (the engine ends its own
 * stream, then boxd asks for the container's state for the end event),
 * when the client goes away or boxd stops (the reader watches the
 * client's socket next to the engine's: an end of either is seen at once,
 * not at the next keepalive), or when the engine fails. Following holds
 * one connection thread and one engine connection, no store connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "apps/app.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "services/service.h"

#define APP_LOGS_ENGINE_TIMEOUT_MS 10000
#define KEEPALIVE_MS 15000
/* Raw log bytes held between the engine and the client. */
#define RAW_MAX 65536
/* An event never leaves less than this free for its own framing. */
#define EVENT_SLACK 16

/* The query: tail (1..1000000, 0 when absent) and follow. Answers 400 and
 * returns false on bad input. */
static bool parse_query(struct api_req *req, struct engine_logs_opts *opts, bool *follow)
{
	const char *tail = api_query(req, "tail"), *f = api_query(req, "follow");
	*opts = (struct engine_logs_opts){ 0 };
	if (tail) {
		char *end;
		long n = strtol(tail, &end, 10);
		if (!*tail || *end || n < 1 || n > 1000000) {
			api_reply_error(req, 400, "bad_request", "tail must be a number of lines from 1 to 1000000");
			return false;
		}
		opts->tail = (int)n;
	}
	*follow = false;
	if (f) {
		if (strcmp(f, "1") == 0 || strcmp(f, "true") == 0) {
			*follow = true;
		} else if (strcmp(f, "0") != 0 && strcmp(f, "false") != 0) {
			api_reply_error(req, 400, "bad_request", "follow is 1 or 0");
			return false;
		}
	}
	return true;
}

/* ---- the stream ------------------------------------------------------------- */

struct log_stream {
	struct engine *e;             /* for the end: the container's state */
	struct engine_log_follow *f;
	int client_fd;
	char container[APP_ID_MAX + 8];
	char raw[RAW_MAX];            /* log bytes not sent yet */
	size_t raw_len;
	bool ended;                   /* the engine's stream ended (or failed) */
	int end_err;                  /* its error, 0 when the container stopped */
	char end_msg[600];
	bool end_sent;
	int64_t last_send_ms;
};

/* Format the complete lines at the start of st->raw (all of it when
 * `flush`) as one event into out. A line longer than fits goes as several
 * data lines. Returns the bytes written (0: no complete line). */
static size_t format_lines(struct log_stream *st, bool flush, char *out, size_t max)
{
	size_t o = 0, i = 0;
	while (i < st->raw_len && o + 6 + 1 + EVENT_SLACK < max) {
		const char *p = st->raw + i;
		size_t left = st->raw_len - i, len = 0, brk = 0;
		while (len < left && p[len] != '\n' && p[len] != '\r')
			len++;
		if (len < left) {
			if (p[len] == '\n')
				brk = 1;
			else if (len + 1 < left)
				brk = p[len + 1] == '\n' ? 2 : 1;
			else if (flush)
				brk = 1;       /* a last lone \r */
		}
		size_t room = max - o - 6 - 1 - EVENT_SLACK;
		if (!brk && !flush && len < room)
			break;                  /* wait for the rest of the line */
		if (len > room) {
			len = room;             /* a long line: cut it */
			brk = 0;
		} else if (!brk && len < left) {
			break;                  /* "\r" at the end: is "\n" next? */
		}
		memcpy(out + o, "data: ", 6);
		o += 6;
		memcpy(out + o, p, len);
		o += len;
		out[o++] = '\n';
		i += len + brk;
	}
	if (i > 0) {
		memmove(st->raw, st->raw + i, st->raw_len - i);
		st->raw_len -= i;
	}
	if (o > 0)
		out[o++] = '\n';
	return o;
}

/* The end event: the container's state, or the engine's error. */
static size_t format_end(struct log_stream *st, char *out, size_t max)
{
	json_t *data;
	if (st->end_err < 0) {
		data = json_pack("{s:s, s:{s:s, s:s}}", "state", "unknown", "error", "code", "engine_error", "message",
				 st->end_msg);
	} else {
		struct engine_container c;
		if (engine_container_inspect(st->e, st->container, &c) == 0) {
			data = json_pack("{s:s, s:i}", "state", c.status, "exitCode", c.exit_code);
			engine_container_release(&c);
		} else {
			data = json_pack("{s:s}", "state", "removed");
		}
	}
	char *text = data ? json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(data);
	int n = snprintf(out, max, "event: end\ndata: %s\n\n", text ? text : "{\"state\":\"unknown\"}");
	free(text);
	return n > 0 && (size_t)n < max ? (size_t)n : 0;
}

static ssize_t log_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct log_stream *st = cls;
	if (st->end_sent || max < 256)
		return MHD_CONTENT_READER_END_OF_STREAM;
	for (;;) {
		size_t o = format_lines(st, st->ended, buf, max);
		if (o > 0) {
			st->last_send_ms = now_mono_ms();
			return (ssize_t)o;
		}
		if (st->ended) {
			st->end_sent = true;
			o = format_end(st, buf, max);
			return o > 0 ? (ssize_t)o : MHD_CONTENT_READER_END_OF_STREAM;
		}
		int64_t wait = st->last_send_ms + KEEPALIVE_MS - now_mono_ms();
		int n = wait <= 0 ? -EAGAIN
				  : engine_logs_follow_read(st->f, st->raw + st->raw_len, sizeof(st->raw) - st->raw_len,
							    st->client_fd, (int)wait);
		if (n > 0) {
			st->raw_len += (size_t)n;
		} else if (n == -EAGAIN) {
			/* A comment keeps proxies from timing out. */
			st->last_send_ms = now_mono_ms();
			memcpy(buf, ": keepalive\n\n", 13);
			return 13;
		} else if (n == -ECANCELED) {
			/* The client's socket is readable or hung up: it went
			 * away (or boxd stops, which shuts the socket down). A
			 * client of an event stream sends nothing more. */
			return MHD_CONTENT_READER_END_OF_STREAM;
		} else {
			st->ended = true;
			st->end_err = n;
			if (n < 0)
				snprintf(st->end_msg, sizeof(st->end_msg), "logs of %s: %s", st->container,
					 engine_logs_follow_errmsg(st->f));
		}
	}
}

static void log_stream_free(void *cls)
{
	struct log_stream *st = cls;
	engine_logs_follow_close(st->f);
	engine_close(st->e);
	free(st);
}

/* ---- the route ---------------------------------------------------------------- */

static void app_logs(struct api_req *req)
{
	struct engine_logs_opts opts;
	bool follow;
	if (!parse_query(req, &opts, &follow))
		return;
	struct app a;
	if (!api_app_get(req, &a))
		return;
	char name[APP_ID_MAX + 8], err[600];
	snprintf(name, sizeof(name), "app-%s", a.id);
	app_release(&a);
	struct engine *e;
	int r = service_engine_open(api_config(req), APP_LOGS_ENGINE_TIMEOUT_MS, &e, err, sizeof(err));
	if (r < 0) {
		api_reply_error(req, 503, "engine_unavailable", "%s", err);
		return;
	}
	if (!follow) {
		char *text = NULL;
		size_t len = 0;
		r = engine_container_logs(e, name, &opts, &text, &len);
		if (r == -ENOENT)
			api_reply_error(req, 404, "not_found", "app %s has no container", req->params[0]);
		else if (r < 0)
			api_reply_error(req, 502, "engine_error", "logs of %s: %s", name, engine_errmsg(e));
		else
			api_reply_text(req, 200, "text/plain; charset=utf-8", text, len);
		free(text);
		engine_close(e);
		return;
	}

	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct log_stream *st = calloc(1, sizeof(*st));
	if (!st || !ci) {
		free(st);
		engine_close(e);
		api_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	st->e = e;
	st->client_fd = ci->connect_fd;
	snprintf(st->container, sizeof(st->container), "%s", name);
	st->last_send_ms = now_mono_ms();
	r = engine_logs_follow_open(e, name, &opts, &st->f);
	if (r < 0) {
		if (r == -ENOENT)
			api_reply_error(req, 404, "not_found", "app %s has no container", req->params[0]);
		else
			api_reply_error(req, 502, "engine_error", "logs of %s: %s", name, engine_errmsg(e));
		log_stream_free(st);
		return;
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, log_stream_read, st,
								      log_stream_free);
	if (!resp) {
		log_stream_free(st);
		api_reply_error(req, 500, "internal", "cannot start the stream");
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	api_reply_response(req, 200, resp);
}

const struct api_route api_routes_app_logs[] = {
	{ "GET", "/api/v1/apps/:id/logs", app_logs },
	{ NULL, NULL, NULL },
};
