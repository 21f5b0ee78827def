/* box_restore_status.c — see box_restore_status.h. */
#include "box_restore_status.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box_restore.h"
#include "common/fs.h"
#include "tarball.h"

#define DIR_NAME "box-restore"
#define LOG_LINES 200
#define LOG_MAX (1024 * 1024)

bool box_restore_status_path(const struct boxd_config *cfg, const char *name, char *buf, size_t len)
{
	int n = name ? snprintf(buf, len, "%s/%s/%s", cfg->state_dir, DIR_NAME, name)
		     : snprintf(buf, len, "%s/%s", cfg->state_dir, DIR_NAME);
	return n >= 0 && (size_t)n < len;
}

int box_restore_status_load(const struct boxd_config *cfg, json_t **ret)
{
	char path[4096];
	*ret = NULL;
	if (!box_restore_status_path(cfg, "status.json", path, sizeof(path)))
		return -ENAMETOOLONG;
	json_t *j = json_load_file(path, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -ENOENT;
	}
	*ret = j;
	return 0;
}

static int save_json(const struct boxd_config *cfg, const char *name, json_t *j, char *err, size_t errlen)
{
	char dir[4096], path[4096];
	if (!box_restore_status_path(cfg, NULL, dir, sizeof(dir)) ||
	    !box_restore_status_path(cfg, name, path, sizeof(path))) {
		snprintf(err, errlen, "the state dir's name is too long");
		return -ENAMETOOLONG;
	}
	int r = fs_mkdir_p(dir, 0700, err, errlen);
	if (r < 0)
		return r;
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = tarball_write_file(path, text, strlen(text), err, errlen);
	free(text);
	return r;
}

int box_restore_status_save(const struct boxd_config *cfg, json_t *status, char *err, size_t errlen)
{
	return save_json(cfg, "status.json", status, err, errlen);
}

/* The log's lines, the last LOG_LINES of them; NULL when there is none. */
static json_t *read_log(const struct boxd_config *cfg)
{
	char path[4096];
	if (!box_restore_status_path(cfg, "log", path, sizeof(path)))
		return NULL;
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	/* Only the end of a large log. */
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		fseek(f, size > LOG_MAX ? size - LOG_MAX : 0, SEEK_SET);
	}
	json_t *lines = json_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		else
			break; /* a line still being written: next time */
		json_array_append_new(lines, json_stringn_nocheck(line, (size_t)n));
		if (json_array_size(lines) > LOG_LINES)
			json_array_remove(lines, 0);
	}
	free(line);
	fclose(f);
	return lines;
}

static bool starts(const char *s, const char *prefix) { return s && strncmp(s, prefix, strlen(prefix)) == 0; }

int box_restore_status_view(const struct boxd_config *cfg, json_t **ret)
{
	json_t *st;
	int r = box_restore_status_load(cfg, &st);
	if (r < 0)
		return r;
	json_object_del(st, "token");
	json_t *lines = read_log(cfg);
	json_t *changed = json_array();
	int archives = 0, fetched = 0, restored = 0;
	bool store_done = false;
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) {
		const char *s = json_string_value(l);
		if (starts(s, "changed: "))
			json_array_append_new(changed, json_string(s + strlen("changed: ")));
		else if (starts(s, "Fetching and verifying "))
			fetched++;
		else if (starts(s, "Restoring app "))
			restored++;
		else if (starts(s, "Restoring the store"))
			store_done = true;
		const char *of = starts(s, "Full backup ") ? strstr(s, "): ") : NULL;
		if (of)
			archives = atoi(of + 3);
	}
	/* Fetching and verifying every archive: the first half; then the
	 * store, then each app's data. */
	int percent = 0;
	if (archives > 0) {
		percent = 50 * (fetched > 0 ? fetched - 1 : 0) / archives;
		if (store_done)
			percent = 55;
		if (archives > 1 && restored > 0)
			percent = 55 + 40 * (restored - 1) / (archives - 1);
	}
	const char *state = json_string_value(json_object_get(st, "state"));
	if (state && strcmp(state, "succeeded") == 0)
		percent = 100;
	json_object_set_new(st, "percent", json_integer(percent));
	size_t n = json_array_size(lines);
	json_object_set_new(st, "step", n ? json_copy(json_array_get(lines, n - 1)) : json_string(""));
	json_object_set_new(st, "changed", changed);
	json_object_set_new(st, "lines", lines ? lines : json_array());
	*ret = st;
	return 0;
}

bool box_restore_token_ok(const struct boxd_config *cfg, const char *token)
{
	json_t *st;
	if (!token || strlen(token) < 32 || box_restore_status_load(cfg, &st) < 0)
		return false;
	const char *want = json_string_value(json_object_get(st, "token"));
	const char *state = json_string_value(json_object_get(st, "state"));
	bool ok = want && state && strcmp(state, "running") == 0 && strlen(want) == strlen(token) &&
		  CRYPTO_memcmp(want, token, strlen(token)) == 0;
	json_decref(st);
	return ok;
}

int box_restore_result_save(const struct boxd_config *cfg, int r, const char *message,
			    const struct box_restore_result *res)
{
	json_t *j;
	if (r < 0)
		j = json_pack("{s:b, s:s, s:s}", "ok", 0, "code", box_restore_error_code(r), "message",
			      message ? message : "");
	else
		j = json_pack("{s:b, s:{s:I, s:i, s:i, s:b, s:I, s:I, s:I, s:I, s:I}}", "ok", 1, "result", "backupId",
			      (json_int_t)res->backup_id, "apps", res->apps, "volumes", res->volumes, "resumed",
			      res->resumed, "fetchBytes", (json_int_t)res->fetch_bytes, "fetchMs",
			      (json_int_t)res->fetch_ms, "archiveBytes", (json_int_t)res->archive_bytes, "dataBytes",
			      (json_int_t)res->data_bytes, "totalMs", (json_int_t)res->total_ms);
	if (!j)
		return -ENOMEM;
	char err[512];
	int w = save_json(cfg, "result.json", j, err, sizeof(err));
	json_decref(j);
	return w;
}

const char *box_restore_error_code(int r)
{
	switch (r) {
	case -EKEYREJECTED: return "wrong_key";
	case -ENOKEY: return "no_key";
	case -EBADMSG: return "backup_corrupt";
	case -ENOENT: return "backup_missing";
	case -ENOTEMPTY: return "box_not_empty";
	case -EEXIST: return "restore_unfinished";
	case -EBUSY: return "daemon_running";
	case -EINVAL: return "bad_request";
	case -ECANCELED: return "stopped";
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ETIMEDOUT:
	case -ECONNRESET: return "target_unreachable";
	default: return "restore_failed";
	}
}
