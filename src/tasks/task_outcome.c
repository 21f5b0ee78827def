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

#include "common/tempfile.h"

#define LOG_TAIL_BYTES 4096

static void path_of(const char *state_dir, int64_t id, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s/logs/tasks/%lld%s", state_dir, (long long)id, suffix);
}

void task_outcome_release(struct task_outcome *o)
{
	if (!o)
		return;
	free(o->result);
	o->result = NULL;
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
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	char path[4200];
	path_of(state_dir, id, ".outcome", path, sizeof(path));
	int r = tempfile_write(path, text, strlen(text), 0640);
	free(text);
	return r;
}

int task_outcome_read(const char *state_dir, int64_t id, struct task_outcome *ret)
{
	char path[4200];
	path_of(state_dir, id, ".outcome", path, sizeof(path));
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	if (!doc)
		return access(path, F_OK) < 0 && errno == ENOENT ? -ENOENT : -EBADMSG;
	struct task_outcome o = { 0 };
	const char *state = json_string_value(json_object_get(doc, "state"));
	const char *code = json_string_value(json_object_get(doc, "errorCode"));
	const char *msg = json_string_value(json_object_get(doc, "errorMessage"));
	json_t *res = json_object_get(doc, "result");
	int r = 0;
	if (!state || task_state_from_string(state, &o.state) < 0 || !task_state_is_final(o.state))
		r = -EBADMSG;
	if (r == 0) {
		snprintf(o.error_code, sizeof(o.error_code), "%s", code ? code : "");
		snprintf(o.error_message, sizeof(o.error_message), "%s", msg ? msg : "");
		if (res && !json_is_null(res))
			o.result = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
		*ret = o;
	}
	json_decref(doc);
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
