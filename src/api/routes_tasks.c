/* routes_tasks.c — /api/v1/tasks: list, get, create (generic types), stop,
 * logs, and the live log stream. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api-internal.h"
#include "common/config.h"
#include "common/timeutil.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"

#define LOG_MAX_BYTES (16 * 1024 * 1024)

static bool parse_positive(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

static void list_tasks(struct api_req *req)
{
	struct task_filter f = { .state = -1, .page = 1, .per_page = 50 };
	const char *state = api_query(req, "state"), *page = api_query(req, "page"),
		   *per_page = api_query(req, "per_page");
	f.type = api_query(req, "type");
	f.app_id = api_query(req, "appId");
	if (state && *state) {
		enum task_state st;
		if (strcmp(state, "active") == 0) {
			f.active_only = true;
		} else if (task_state_from_string(state, &st) < 0) {
			api_reply_error(req, 400, "bad_request",
					"state must be one of queued, waiting, running, succeeded, failed, cancelled, active");
			return;
		} else {
			f.state = (int)st;
		}
	}
	if (page && !parse_positive(page, 1, 1000000000, &f.page)) {
		api_reply_error(req, 400, "bad_request", "page must be a positive integer");
		return;
	}
	if (per_page && !parse_positive(per_page, 1, 1000, &f.per_page)) {
		api_reply_error(req, 400, "bad_request", "per_page must be an integer from 1 to 1000");
		return;
	}
	struct task *tasks;
	size_t n;
	int64_t total;
	int r = task_list(req->store, &f, &tasks, &n, &total);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, task_to_json(&tasks[i]));
	task_list_free(tasks, n);
	api_reply_json(req, 200,
		       json_pack("{s:o, s:I, s:I, s:I}", "tasks", arr, "total", (json_int_t)total, "page",
				 (json_int_t)f.page, "perPage", (json_int_t)f.per_page));
}

static bool load_task(struct api_req *req, struct task *t)
{
	int64_t id;
	if (!api_param_id(req, 0, &id))
		return false;
	int r = task_get(req->store, id, t);
	if (r == -ENOENT) {
		api_reply_error(req, 404, "not_found", "no task %lld", (long long)id);
		return false;
	}
	if (r < 0) {
		api_reply_store_error(req, r);
		return false;
	}
	return true;
}

static void get_task(struct api_req *req)
{
	struct task t;
	if (!load_task(req, &t))
		return;
	api_reply_json(req, 200, task_to_json(&t));
	task_release(&t);
}

static void create_task(struct api_req *req)
{
	static const char *const fields[] = { "type", "args", "appId", NULL };
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields))
		goto out;
	json_t *type = json_object_get(body, "type"), *args = json_object_get(body, "args"),
	       *app = json_object_get(body, "appId");
	if (!json_is_string(type)) {
		api_reply_error(req, 400, "bad_request", "\"type\" must be a string");
		goto out;
	}
	if (args && !json_is_object(args)) {
		api_reply_error(req, 400, "bad_request", "\"args\" must be an object");
		goto out;
	}
	if (app && !json_is_null(app) && !json_is_string(app)) {
		api_reply_error(req, 400, "bad_request", "\"appId\" must be a string");
		goto out;
	}
	const struct task_type *tt = task_type_find(json_string_value(type));
	if (!tt) {
		api_reply_error(req, 422, "unknown_task_type", "unknown task type \"%s\"", json_string_value(type));
		goto out;
	}
	if (!tt->generic) {
		api_reply_error(req, 422, "not_generic", "tasks of type \"%s\" are created through their own route",
				tt->name);
		goto out;
	}
	json_t *empty = json_object();
	if (!args)
		args = empty;
	char err[512] = "";
	if (tt->validate && tt->validate(args, err, sizeof(err)) < 0) {
		json_decref(empty);
		api_reply_error(req, 422, "bad_args", "%s", err);
		goto out;
	}
	char *args_text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(empty);
	struct task_enqueue e = { .type = tt->name, .app_id = json_is_string(app) ? json_string_value(app) : NULL,
				  .args_json = args_text };
	api_enqueue(req, &e, NULL);
	free(args_text);
out:
	json_decref(body);
}

static void stop_task(struct api_req *req)
{
	struct task t;
	if (!load_task(req, &t))
		return;
	if (task_state_is_final(t.state)) {
		api_reply_error(req, 409, "not_active", "task %lld is already %s", (long long)t.id,
				task_state_name(t.state));
		task_release(&t);
		return;
	}
	int r = task_request_stop(req->store, t.id, "stopped");
	task_release(&t);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	/* r == 0: a stop (or timeout) is already under way: same answer. */
	api_wake(req);
	api_reply_empty(req, 204);
}

static void log_path(const struct api_req *req, int64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/logs/tasks/%lld.log", api_config(req)->state_dir, (long long)id);
}

static void get_logs(struct api_req *req)
{
	struct task t;
	if (!load_task(req, &t))
		return;
	char path[4200];
	log_path(req, t.id, path, sizeof(path));
	task_release(&t);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		api_reply_text(req, 200, "text/plain; charset=utf-8", "", 0);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		api_reply_error(req, 500, "internal", "cannot read the task log");
		return;
	}
	/* The tail, if the log is huge. */
	off_t off = st.st_size > LOG_MAX_BYTES ? st.st_size - LOG_MAX_BYTES : 0;
	struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64((uint64_t)(st.st_size - off), fd,
									    (uint64_t)off);
	if (!resp) {
		close(fd);
		api_reply_error(req, 500, "internal", "cannot send the task log");
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	api_reply_response(req, 200, resp);
}

/* ---- the live stream ------------------------------------------------------ */

struct stream {
	struct api_server *srv;
	int64_t task_id;
	char path[4200];
	int fd;
	off_t offset;
	bool end_sent;
	int64_t last_send_ms;
};

static bool task_is_final(struct stream *st, char *state, size_t len)
{
	struct store *s;
	if (api_store_get(st->srv, &s) < 0)
		return false;
	struct task t;
	bool final = false;
	if (task_get(s, st->task_id, &t) == 0) {
		final = task_state_is_final(t.state);
		snprintf(state, len, "%s", task_state_name(t.state));
		task_release(&t);
	} else {
		final = true; /* deleted: nothing more will come */
		snprintf(state, len, "unknown");
	}
	api_store_put(st->srv, s);
	return final;
}

/* Format complete lines of `raw` as one SSE event into out. Returns bytes
 * written; *consumed gets the raw bytes used (only whole lines, unless
 * `flush`, when a trailing partial line goes too). */
static size_t format_event(const char *raw, size_t n, bool flush, char *out, size_t max, size_t *consumed)
{
	size_t o = 0, i = 0;
	*consumed = 0;
	while (i < n) {
		const char *nl = memchr(raw + i, '\n', n - i);
		size_t line_len = nl ? (size_t)(nl - (raw + i)) : n - i;
		if (!nl && !flush)
			break;
		if (o + 6 + line_len + 1 + 1 > max)
			break;
		memcpy(out + o, "data: ", 6);
		o += 6;
		memcpy(out + o, raw + i, line_len);
		o += line_len;
		out[o++] = '\n';
		i += line_len + (nl ? 1 : 0);
		*consumed = i;
	}
	if (o > 0)
		out[o++] = '\n';
	return o;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *st = cls;
	if (st->end_sent)
		return MHD_CONTENT_READER_END_OF_STREAM;
	for (;;) {
		if (st->fd < 0)
			st->fd = open(st->path, O_RDONLY | O_CLOEXEC);
		/* Decide "final" before reading, so that everything written
		 * before the task ended is sent before the end event. */
		char state[32];
		bool final = task_is_final(st, state, sizeof(state));
		if (st->fd >= 0) {
			char raw[4096];
			size_t want = max / 2 < sizeof(raw) ? max / 2 : sizeof(raw);
			ssize_t n = pread(st->fd, raw, want, st->offset);
			if (n > 0) {
				size_t used;
				size_t o = format_event(raw, (size_t)n, final || (size_t)n == want, buf, max, &used);
				if (o > 0) {
					st->offset += (off_t)used;
					st->last_send_ms = now_mono_ms();
					return (ssize_t)o;
				}
			}
		}
		if (final) {
			int len = snprintf(buf, max, "event: end\ndata: {\"state\":\"%s\"}\n\n", state);
			st->end_sent = true;
			return len;
		}
		if (now_mono_ms() - st->last_send_ms > 15000) {
			/* A comment keeps proxies from timing out and finds
			 * clients that went away. */
			st->last_send_ms = now_mono_ms();
			memcpy(buf, ": keepalive\n\n", 13);
			return 13;
		}
		sleep_us(100 * 1000);
	}
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	if (st->fd >= 0)
		close(st->fd);
	free(st);
}

static void stream_logs(struct api_req *req)
{
	struct task t;
	if (!load_task(req, &t))
		return;
	struct stream *st = calloc(1, sizeof(*st));
	if (!st) {
		task_release(&t);
		api_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	st->srv = req->srv;
	st->task_id = t.id;
	st->fd = -1;
	st->last_send_ms = now_mono_ms();
	log_path(req, t.id, st->path, sizeof(st->path));
	task_release(&t);
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, st, stream_free);
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	api_reply_response(req, 200, resp);
}

const struct api_route api_routes_tasks[] = {
	{ "GET", "/api/v1/tasks", list_tasks },
	{ "POST", "/api/v1/tasks", create_task },
	{ "GET", "/api/v1/tasks/:id", get_task },
	{ "POST", "/api/v1/tasks/:id/stop", stop_task },
	{ "GET", "/api/v1/tasks/:id/logs", get_logs },
	{ "GET", "/api/v1/tasks/:id/logstream", stream_logs },
	{ NULL, NULL, NULL },
};
