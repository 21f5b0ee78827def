/* task_outcome.c — see task_outcome.h. */
#include "task_outcome.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define LOG_TAIL_BYTES 4096
/* How far back from the end of a task log the outcome record is looked
 * for: after it the worker logs only the release and the end (and, in an
 * outage, a line a minute while it retries). */
#define OUTCOME_TAIL_BYTES (256 * 1024)

static void path_of(const char *state_dir, int64_t id, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s/logs/tasks/%lld%s", state_dir, (long long)id, suffix);
}

int task_log_open(const char *state_dir, int64_t id)
{
	char path[4200];
	path_of(state_dir, id, ".log", path, sizeof(path));
	/* Task logs may show app env and engine output: owner only. */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* The first task of a state dir, or logs/ removed by hand. */
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s/logs", state_dir);
		mkdir(dir, 0700);
		snprintf(dir, sizeof(dir), "%s/logs/tasks", state_dir);
		mkdir(dir, 0700);
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	return fd < 0 ? -errno : fd;
}

void task_outcome_release(struct task_outcome *o)
{
	if (!o)
		return;
	free(o->result);
	o->result = NULL;
}

/* The record's text after the log line's prefix: "task N outcome {json}". */
static int record_head(int64_t id, char *buf, size_t len)
{
	return snprintf(buf, len, "task %lld outcome ", (long long)id);
}

int task_outcome_write(const char *state_dir, int64_t id, const struct task_outcome *o)
{
	json_t *doc = json_pack("{s:s, s:s?, s:s?}", "state", task_state_name(o->state), "errorCode",
				o->error_code[0] ? o->error_code : NULL, "errorMessage",
				o->error_code[0] ? o->error_message : NULL);
	if (!doc)
		return -ENOMEM;
	if (o->result) {
		json_t *res = json_loads(o->result, JSON_DECODE_ANY, NULL);
		json_object_set_new(doc, "result", res ? res : json_string(o->result));
	}
	/* Compact JSON is one line: jansson escapes every control character
	 * inside strings. */
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	char pre[96], head[64];
	int pn = log_line_prefix(pre, sizeof(pre), LOG_LVL_INFO);
	int hn = record_head(id, head, sizeof(head));
	size_t tn = strlen(text), n = (size_t)pn + (size_t)hn + tn + 1;
	char *line = pn < 0 ? NULL : malloc(n);
	if (!line) {
		free(text);
		return -ENOMEM;
	}
	memcpy(line, pre, (size_t)pn);
	memcpy(line + pn, head, (size_t)hn);
	memcpy(line + pn + hn, text, tn);
	line[n - 1] = '\n';
	free(text);
	/* O_APPEND: one write lands whole after whatever the worker's stderr
	 * (the same file) wrote before it. */
	int fd = task_log_open(state_dir, id);
	int r = 0;
	if (fd < 0) {
		r = fd;
	} else {
		ssize_t w = write(fd, line, n);
		if (w != (ssize_t)n)
			r = w < 0 ? -errno : -ENOSPC; /* a torn line does not parse: no outcome */
		close(fd);
	}
	free(line);
	return r;
}

static int outcome_from_json(json_t *doc, struct task_outcome *ret)
{
	struct task_outcome o = { 0 };
	const char *state = json_string_value(json_object_get(doc, "state"));
	const char *code = json_string_value(json_object_get(doc, "errorCode"));
	const char *msg = json_string_value(json_object_get(doc, "errorMessage"));
	json_t *res = json_object_get(doc, "result");
	if (!state || task_state_from_string(state, &o.state) < 0 || !task_state_is_final(o.state))
		return -EBADMSG;
	snprintf(o.error_code, sizeof(o.error_code), "%s", code ? code : "");
	snprintf(o.error_message, sizeof(o.error_message), "%s", msg ? msg : "");
	if (res && !json_is_null(res))
		o.result = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	*ret = o;
	return 0;
}

/* <id>.outcome, the file a worker of boxd before session 29 left instead
 * (such a worker may be re-adopted after an update). */
static int read_legacy_file(const char *state_dir, int64_t id, struct task_outcome *ret)
{
	char path[4200];
	path_of(state_dir, id, ".outcome", path, sizeof(path));
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	if (!doc)
		return access(path, F_OK) < 0 && errno == ENOENT ? -ENOENT : -EBADMSG;
	int r = outcome_from_json(doc, ret);
	json_decref(doc);
	return r;
}

/* Whether the line at `p` (within buf) is a record of task `id`: the first
 * "] " of the line (the end of the prefix's "[pid]") is followed by the
 * record's head, so that a logged message that quotes a record (log_msg()
 * puts its text after the prefix) is not one. Returns the JSON's start. */
static const char *record_at(const char *line, const char *head)
{
	const char *eol = strchr(line, '\n');
	const char *close = strstr(line, "] ");
	if (!close || (eol && close > eol))
		return NULL;
	size_t hn = strlen(head);
	return strncmp(close + 2, head, hn) == 0 ? close + 2 + hn : NULL;
}

int task_outcome_read(const char *state_dir, int64_t id, struct task_outcome *ret)
{
	int r = read_legacy_file(state_dir, id, ret);
	if (r != -ENOENT)
		return r;
	char path[4200], head[64];
	path_of(state_dir, id, ".log", path, sizeof(path));
	record_head(id, head, sizeof(head));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOENT;
	struct stat st;
	char *buf = malloc(OUTCOME_TAIL_BYTES + 1);
	ssize_t n = -1;
	if (buf && fstat(fd, &st) == 0) {
		off_t off = st.st_size > OUTCOME_TAIL_BYTES ? st.st_size - OUTCOME_TAIL_BYTES : 0;
		n = pread(fd, buf, OUTCOME_TAIL_BYTES, off);
	}
	close(fd);
	if (n <= 0) {
		free(buf);
		return -ENOENT;
	}
	buf[n] = '\0';
	/* The last record wins (the lease thread may have left one before the
	 * main thread's). Lines start after a '\n'; the tail's first line may
	 * be cut, and is skipped unless the tail is the whole file. */
	const char *json = NULL;
	for (const char *line = buf; line && *line;) {
		const char *j = (line != buf || n == st.st_size) ? record_at(line, head) : NULL;
		if (j)
			json = j;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	r = -ENOENT;
	if (json) {
		char *eol = strchr(json, '\n');
		json_error_t jerr;
		json_t *doc = eol ? json_loadb(json, (size_t)(eol - json), 0, &jerr) : NULL;
		r = doc ? outcome_from_json(doc, ret) : -EBADMSG;
		json_decref(doc);
	}
	free(buf);
	return r;
}

void task_outcome_remove(const char *state_dir, int64_t id)
{
	char path[4200];
	path_of(state_dir, id, ".outcome", path, sizeof(path));
	unlink(path);
}

bool task_log_says_succeeded(const char *state_dir, int64_t id)
{
	char path[4200], buf[LOG_TAIL_BYTES + 1], want[64];
	path_of(state_dir, id, ".log", path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) == 0) {
		off_t off = st.st_size > LOG_TAIL_BYTES ? st.st_size - LOG_TAIL_BYTES : 0;
		n = pread(fd, buf, LOG_TAIL_BYTES, off);
	}
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* The line the worker writes right before it records success. */
	snprintf(want, sizeof(want), "] task %lld succeeded\n", (long long)id);
	return strstr(buf, want) != NULL;
}

int64_t task_log_mtime_ms(const char *state_dir, int64_t id)
{
	char path[4200];
	path_of(state_dir, id, ".log", path, sizeof(path));
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}
