/* task_type.c — task type registry and handler helpers. */
#include "task_type.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/timeutil.h"

#define MAX_TYPES 32

static const struct task_type *types[MAX_TYPES];
static size_t n_types;

void task_type_register(const struct task_type *type)
{
	if (task_type_find(type->name))
		return;
	if (n_types < MAX_TYPES)
		types[n_types++] = type;
}

const struct task_type *task_type_find(const char *name)
{
	for (size_t i = 0; i < n_types; i++)
		if (strcmp(types[i]->name, name) == 0)
			return types[i];
	return NULL;
}

const struct task_type *task_type_at(size_t i) { return i < n_types ? types[i] : NULL; }

/* The template entry's %s, or NULL when the task has none to give. */
static const char *template_value(const struct task_lock_template *l, const struct task *t, json_t *args)
{
	if (l->arg)
		return json_string_value(json_object_get(args, l->arg));
	return t->app_id;
}

int task_host_lock_name(const char *base, char *buf, size_t len)
{
	char host[HOST_ID_MAX + 1];
	int r = host_id_get(host, sizeof(host));
	if (r < 0)
		return r;
	int n = snprintf(buf, len, "%s:%s", base, host);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The name a template entry's pattern makes: %h this host's id, %s
 * `value` (NULL: the pattern must have no %s). 0, or -EINVAL when a value
 * is missing, the name too long, or (when `check`) not a valid name. */
static int expand_pattern(const char *pattern, const char *value, bool check, char *buf, size_t len)
{
	char host[HOST_ID_MAX + 1] = "";
	size_t n = 0;
	for (const char *p = pattern; *p; p++) {
		const char *piece = NULL;
		size_t piece_len = 1;
		if (p[0] == '%' && (p[1] == 's' || p[1] == 'h')) {
			if (p[1] == 'h' && !host[0] && host_id_get(host, sizeof(host)) < 0)
				return -EINVAL;
			piece = p[1] == 'h' ? host : value;
			if (!piece)
				return -EINVAL;
			piece_len = strlen(piece);
			p++;
		} else {
			piece = p;
		}
		if (n + piece_len >= len)
			return -EINVAL;
		memcpy(buf + n, piece, piece_len);
		n += piece_len;
	}
	buf[n] = '\0';
	return !check || lock_name_valid(buf) ? 0 : -EINVAL;
}

int task_type_locks(const struct task_type *type, const struct task *t, json_t *args, struct lock_req **ret,
		    size_t *ret_n)
{
	struct lock_req *dyn = NULL;
	size_t n_dyn = 0, n = 0;
	*ret = NULL;
	*ret_n = 0;
	if (type->dynamic_locks) {
		int r = type->dynamic_locks(t, args, &dyn, &n_dyn);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < TASK_LOCKS_MAX && type->locks[i].name; i++)
		n += !type->locks[i].later;
	if (n + n_dyn == 0)
		return 0;
	struct lock_req *reqs = calloc(n + n_dyn, sizeof(*reqs));
	if (!reqs) {
		free(dyn);
		return -ENOMEM;
	}
	n = 0;
	for (size_t i = 0; i < TASK_LOCKS_MAX && type->locks[i].name; i++) {
		const struct task_lock_template *l = &type->locks[i];
		if (l->later)
			continue;
		const char *value = strstr(l->name, "%s") ? template_value(l, t, args) : NULL;
		if (expand_pattern(l->name, value, true, reqs[n].name, sizeof(reqs[n].name)) < 0) {
			free(reqs);
			free(dyn);
			return -EINVAL;
		}
		reqs[n++].mode = l->mode;
	}
	if (n_dyn)
		memcpy(reqs + n, dyn, n_dyn * sizeof(*dyn));
	free(dyn);
	*ret = reqs;
	*ret_n = n + n_dyn;
	return 0;
}

bool task_type_declares_later(const struct task_type *type, const struct lock_req *req)
{
	size_t len = strlen(req->name);
	for (size_t i = 0; i < TASK_LOCKS_MAX && type->locks[i].name; i++) {
		const struct task_lock_template *l = &type->locks[i];
		if (!l->later || l->mode != req->mode)
			continue;
		/* This host's names only: %h is filled in, %s matches any
		 * non-empty value. */
		char pattern[LOCK_NAME_MAX];
		const char *hole = strstr(l->name, "%s");
		if (expand_pattern(l->name, hole ? "%s" : NULL, false, pattern, sizeof(pattern)) < 0)
			continue;
		hole = strstr(pattern, "%s");
		if (!hole) {
			if (strcmp(pattern, req->name) == 0)
				return true;
			continue;
		}
		size_t head = (size_t)(hole - pattern), tail = strlen(hole + 2);
		if (len > head + tail && strncmp(req->name, pattern, head) == 0 &&
		    strcmp(req->name + len - tail, hole + 2) == 0)
			return true;
	}
	return false;
}

void task_ctx_progress(struct task_ctx *ctx, int percent, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Progress is advisory: a failed write must not fail the task. But an
	 * outage is worth a line in the task log, once, and its end too. */
	int r = task_set_progress(ctx->store, ctx->task->id, percent, msg);
	struct store_retry *rt = &ctx->progress_retry;
	if (r < 0 && store_retry_failed(rt, r) == 0 && store_retry_first(rt)) {
		char since[32];
		store_retry_since(rt, since, sizeof(since));
		log_warn("task %lld: store unavailable since %s (progress not recorded: %s); going on",
			 (long long)ctx->task->id, since, store_errmsg(ctx->store));
	} else if (r >= 0 && rt->since_mono_ms) {
		log_info("task %lld: store available again: progress is recorded again after %lld ms",
			 (long long)ctx->task->id, (long long)store_retry_done(rt));
	}
}

int task_ctx_fail(struct task_ctx *ctx, int err, const char *code, const char *fmt, ...)
{
	snprintf(ctx->error_code, sizeof(ctx->error_code), "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error_message, sizeof(ctx->error_message), fmt, ap);
	va_end(ap);
	return err < 0 ? err : -EIO;
}

int task_ctx_sleep(struct task_ctx *ctx, int64_t ms)
{
	int64_t until = now_mono_ms() + ms;
	for (;;) {
		if (ctx->cancel && *ctx->cancel)
			return -ECANCELED;
		int64_t left = until - now_mono_ms();
		if (left <= 0)
			return 0;
		sleep_us((left > 50 ? 50 : left) * 1000);
	}
}

int task_parse_lock_list(json_t *locks, struct lock_req **ret, size_t *ret_n, char *err, size_t errlen)
{
	if (!json_is_array(locks) || json_array_size(locks) == 0 || json_array_size(locks) > 64) {
		snprintf(err, errlen, "\"locks\" must be an array of 1 to 64 {\"name\",\"mode\"} objects");
		return -EINVAL;
	}
	size_t n = json_array_size(locks);
	struct lock_req *reqs = calloc(n, sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *l = json_array_get(locks, i);
		json_t *name = json_object_get(l, "name"), *mode = json_object_get(l, "mode");
		if (!json_is_object(l) || !json_is_string(name) || !lock_name_valid(json_string_value(name))) {
			snprintf(err, errlen, "locks[%zu]: \"name\" must be 1-127 characters of letters, digits and :._-@/", i);
			free(reqs);
			return -EINVAL;
		}
		snprintf(reqs[i].name, sizeof(reqs[i].name), "%s", json_string_value(name));
		reqs[i].mode = LOCK_EXCLUSIVE;
		if (mode && (!json_is_string(mode) || lock_mode_from_string(json_string_value(mode), &reqs[i].mode) < 0)) {
			snprintf(err, errlen, "locks[%zu]: \"mode\" must be \"shared\" or \"exclusive\"", i);
			free(reqs);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(reqs[j].name, reqs[i].name) == 0) {
				snprintf(err, errlen, "locks[%zu]: \"%s\" is named twice", i, reqs[i].name);
				free(reqs);
				return -EINVAL;
			}
		}
	}
	*ret = reqs;
	*ret_n = n;
	return 0;
}
