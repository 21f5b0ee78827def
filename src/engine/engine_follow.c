/* engine_follow.c — following a container's log (engine.h, "Following a
 * log"): GET /containers/{id}/logs?follow=1 on a connection of its own,
 * driven through a curl multi handle so that a reader can wait for the
 * next bytes and for another descriptor (the client of the stream) at once.
 *
 * Why not the handle's own easy request: that one blocks until the reply is
 * complete, and a followed log is complete only when the container stops.
 * A thread pumping it into a pipe would work too, but stopping it needs a
 * flag that curl looks at only about once a second; curl_multi_poll() with
 * the watched descriptor as an extra fd wakes for either at once.
 */
#include "engine/engine-internal.h"

#include "engine/curl_lib.h"
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of log held for the reader before the transfer is paused. */
#define FOLLOW_BUFFER_MAX ((size_t)1 << 20)
#define FOLLOW_ERRBODY_MAX 4096
#define FOLLOW_CONNECT_TIMEOUT_MS 2000L

struct engine_log_follow {
	CURLM *multi;
	CURL *curl;
	bool attached;             /* curl is in multi */
	struct engine_log_demux demux;
	char *buf;                 /* demultiplexed log not yet read */
	size_t start, len, cap;
	bool paused;
	char *errbody;             /* the body of a non-2xx answer */
	size_t errlen;
	bool bad_stream;           /* a corrupt frame header came */
	bool oom;
	bool done;                 /* the transfer ended */
	CURLcode result;
	char container[256];
	char socket_path[128];
	char curl_err[CURL_ERROR_SIZE];
	char errmsg[1024];
};

static int follow_error(struct engine_log_follow *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int follow_error(struct engine_log_follow *f, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

static long status_of(struct engine_log_follow *f)
{
	long status = 0;
	sym_curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static size_t follow_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct engine_log_follow *f = userdata;
	size_t n = size * nmemb;
	long status = status_of(f);

	if (status < 200 || status >= 300) {
		/* An error body: keep its start for the message. */
		size_t room = FOLLOW_ERRBODY_MAX - f->errlen, take = n < room ? n : room;
		if (!f->errbody && !(f->errbody = malloc(FOLLOW_ERRBODY_MAX + 1))) {
			f->oom = true;
			return 0;
		}
		memcpy(f->errbody + f->errlen, ptr, take);
		f->errlen += take;
		f->errbody[f->errlen] = '\0';
		return n;
	}
	if (f->len >= FOLLOW_BUFFER_MAX) {
		/* The reader is behind: curl hands these bytes again after
		 * the unpause. */
		f->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (f->start > 0 && f->start + f->len + n > f->cap) {
		memmove(f->buf, f->buf + f->start, f->len);
		f->start = 0;
	}
	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap : 16384;
		while (cap < f->len + n)
			cap *= 2;
		char *b = realloc(f->buf, cap);
		if (!b) {
			f->oom = true;
			return 0;
		}
		f->buf = b;
		f->cap = cap;
	}
	size_t got;
	if (engine_log_demux_feed(&f->demux, ptr, n, f->buf + f->start + f->len, &got) < 0)
		f->bad_stream = true;
	f->len += got;
	return f->bad_stream ? 0 : n;
}

/* Run the transfer as far as it goes without waiting. */
static void pump(struct engine_log_follow *f)
{
	int running = 0, left;
	CURLMsg *m;

	if (f->done)
		return;
	sym_curl_multi_perform(f->multi, &running);
	while ((m = sym_curl_multi_info_read(f->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == f->curl) {
			f->done = true;
			f->result = m->data.result;
		}
}

/* What the ended transfer means: 0 the log ended (the container stopped),
 * or a negative errno with the message set. */
static int end_result(struct engine_log_follow *f)
{
	long status = status_of(f);

	if (f->bad_stream)
		return follow_error(f, -EBADMSG, "container engine sent a corrupt log stream for %s", f->container);
	if (f->oom || f->result == CURLE_OUT_OF_MEMORY)
		return follow_error(f, -ENOMEM, "out of memory following the log of %s", f->container);
	if (status != 0 && (status < 200 || status >= 300)) {
		char cause[128];
		engine_error_text(status, f->errbody, f->errlen, f->errmsg, sizeof(f->errmsg), cause, sizeof(cause));
		return engine_http_error(status, cause, f->errmsg);
	}
	if (f->result == CURLE_OK)
		return 0;
	if (f->result == CURLE_COULDNT_CONNECT)
		return follow_error(f, -ECONNREFUSED, "container engine not reachable at %s", f->socket_path);
	if (f->result == CURLE_OPERATION_TIMEDOUT)
		return follow_error(f, -ETIMEDOUT, "container engine at %s did not answer", f->socket_path);
	/* The engine (or a restart of it) cut the stream: it ended. */
	if (f->result == CURLE_PARTIAL_FILE || f->result == CURLE_RECV_ERROR || f->result == CURLE_GOT_NOTHING)
		return 0;
	return follow_error(f, -EIO, "following the log of %s: %s", f->container,
			    f->curl_err[0] ? f->curl_err : sym_curl_easy_strerror(f->result));
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int engine_logs_follow_read(struct engine_log_follow *f, char *buf, size_t max, int watch_fd, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;

	if (max == 0)
		return -EINVAL;
	for (;;) {
		if (f->len > 0) {
			size_t n = f->len < max ? f->len : max;
			memcpy(buf, f->buf + f->start, n);
			f->start += n;
			f->len -= n;
			if (f->len == 0)
				f->start = 0;
			if (f->paused && f->len < FOLLOW_BUFFER_MAX / 2) {
				f->paused = false;
				sym_curl_easy_pause(f->curl, CURLPAUSE_CONT);
			}
			return (int)n;
		}
		if (f->done)
			return end_result(f);
		pump(f);
		if (f->len > 0 || f->done)
			continue;
		int wait = 1000;
		if (deadline >= 0) {
			int64_t left = deadline - mono_ms();
			if (left <= 0)
				return -EAGAIN;
			if (left < wait)
				wait = (int)left;
		}
		struct curl_waitfd w = { .fd = watch_fd, .events = CURL_WAIT_POLLIN };
		int numfds = 0;
		CURLMcode mc = sym_curl_multi_poll(f->multi, watch_fd >= 0 ? &w : NULL, watch_fd >= 0 ? 1 : 0, wait, &numfds);
		if (mc != CURLM_OK)
			return follow_error(f, -EIO, "following the log of %s: %s", f->container, sym_curl_multi_strerror(mc));
		if (watch_fd >= 0 && w.revents)
			return -ECANCELED;
	}
}

const char *engine_logs_follow_errmsg(const struct engine_log_follow *f)
{
	return f ? f->errmsg : "";
}

void engine_logs_follow_close(struct engine_log_follow *f)
{
	if (!f)
		return;
	if (f->attached)
		sym_curl_multi_remove_handle(f->multi, f->curl);
	if (f->curl)
		sym_curl_easy_cleanup(f->curl);
	if (f->multi)
		sym_curl_multi_cleanup(f->multi);
	free(f->buf);
	free(f->errbody);
	free(f);
}

int engine_logs_follow_open(struct engine *e, const char *id, const struct engine_logs_opts *opts,
			    struct engine_log_follow **ret)
{
	struct engine_logs_opts o = opts ? *opts : (struct engine_logs_opts){0};
	struct engine_container c;
	char api[ENGINE_API_VERSION_MAX], url[900], tail[32];
	struct engine_log_follow *f = NULL;
	int r;

	if (!engine_container_ref_valid(id))
		return engine_set_error(e, -EINVAL, "bad container id or name \"%.64s\"", id ? id : "(null)");
	/* Whether the stream is multiplexed depends on the container's TTY
	 * (the API before 1.42 does not say it in the reply). */
	if ((r = engine_container_inspect(e, id, &c)) < 0)
		return r;
	bool tty = c.tty;
	engine_container_release(&c);
	if ((r = engine_api_version(e, api)) < 0)
		return r;
	if ((o.flags & (ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR)) == 0)
		o.flags |= ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR;
	if (o.tail > 0)
		snprintf(tail, sizeof(tail), "%d", o.tail);
	else if (o.tail < 0)
		snprintf(tail, sizeof(tail), "0");
	else
		snprintf(tail, sizeof(tail), "all");
	snprintf(url, sizeof(url),
		 "http://localhost/v%s/containers/%s/logs?follow=1&stdout=%d&stderr=%d&timestamps=%d&tail=%s", api, id,
		 (o.flags & ENGINE_LOGS_STDOUT) ? 1 : 0, (o.flags & ENGINE_LOGS_STDERR) ? 1 : 0,
		 (o.flags & ENGINE_LOGS_TIMESTAMPS) ? 1 : 0, tail);

	f = calloc(1, sizeof(*f));
	if (!f || !(f->multi = curl_lib_multi_init()) || !(f->curl = curl_lib_easy_init()))
		goto oom;
	snprintf(f->container, sizeof(f->container), "%s", id);
	snprintf(f->socket_path, sizeof(f->socket_path), "%s", engine_socket_path(e));
	f->demux.streams = o.flags;
	f->demux.raw = tty;
	sym_curl_easy_setopt(f->curl, CURLOPT_UNIX_SOCKET_PATH, engine_socket_path(e));
	sym_curl_easy_setopt(f->curl, CURLOPT_URL, url);
	sym_curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L);
	sym_curl_easy_setopt(f->curl, CURLOPT_ERRORBUFFER, f->curl_err);
	sym_curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT_MS, FOLLOW_CONNECT_TIMEOUT_MS);
	sym_curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, follow_write_cb);
	sym_curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, f);
	if (sym_curl_multi_add_handle(f->multi, f->curl) != CURLM_OK)
		goto oom;
	f->attached = true;

	/* No waiting for the answer here: Podman sends its status line only
	 * with the first bytes of the log, which may be never. A missing
	 * container was found by the inspect above; an error the engine
	 * answers later is an error of engine_logs_follow_read(). */
	pump(f);
	*ret = f;
	return 0;
oom:
	r = engine_set_error(e, -ENOMEM, "out of memory");
	engine_logs_follow_close(f);
	return r;
}
