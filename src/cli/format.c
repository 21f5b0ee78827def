/* format.c — see format.h. */
#include "format.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int format_parse_time(const char *s, int64_t *ret_ms)
{
	if (!s)
		return -EINVAL;
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	int64_t ms = 0;
	if (*p == '.') {
		int64_t scale = 100;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return -EINVAL;
	*ret_ms = (int64_t)timegm(&tm) * 1000 + ms;
	return 0;
}

void format_duration(int64_t ms, char *buf, size_t len)
{
	if (ms < 0)
		ms = 0;
	long long s = ms / 1000;
	if (ms < 1000)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (ms < 10000)
		snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
	else if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

void format_age(json_t *when, int64_t now_ms, char *buf, size_t len)
{
	int64_t t;
	if (format_parse_time(json_string_value(when), &t) < 0) {
		snprintf(buf, len, "-");
		return;
	}
	/* Whole seconds are enough for an age. */
	int64_t age = now_ms - t;
	if (age < 60000)
		snprintf(buf, len, "%llds", (long long)(age < 0 ? 0 : age / 1000));
	else
		format_duration(age, buf, len);
}

void format_waiting(json_t *wf, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!json_is_object(wf))
		return;
	const char *host = json_string_value(json_object_get(wf, "host"));
	if (host) { /* a placed app's task whose host is gone (sched.c) */
		snprintf(buf, len, "waiting for host %s (gone: no heartbeat)", host);
		return;
	}
	const char *lock = json_string_value(json_object_get(wf, "lock"));
	json_t *held_by = json_object_get(wf, "heldBy"), *pid = json_object_get(wf, "pid");
	char who[64];
	if (json_is_integer(held_by) && json_integer_value(held_by) > 0)
		snprintf(who, sizeof(who), "task %lld", (long long)json_integer_value(held_by));
	else if (json_is_integer(pid) && json_integer_value(pid) > 0)
		snprintf(who, sizeof(who), "pid %lld", (long long)json_integer_value(pid));
	else
		snprintf(who, sizeof(who), "another owner");
	snprintf(buf, len, "waiting for %s (%s %s)", lock ? lock : "a lock",
		 json_is_true(json_object_get(wf, "queued")) ? "queued behind" : "held by", who);
}

void format_task_error(json_t *error, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!json_is_object(error))
		return;
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *msg = json_string_value(json_object_get(error, "message"));
	if (code && msg && *msg)
		snprintf(buf, len, "%s: %s", code, msg);
	else
		snprintf(buf, len, "%s", code ? code : msg ? msg : "unknown error");
}

void format_task_activity(json_t *task, char *buf, size_t len)
{
	json_t *wf = json_object_get(task, "waitingFor");
	if (json_is_object(wf)) {
		format_waiting(wf, buf, len);
		return;
	}
	const char *msg = json_string_value(json_object_get(task, "message"));
	snprintf(buf, len, "%s", msg ? msg : "");
}

void format_lock_list(json_t *locks, char *buf, size_t len)
{
	size_t o = 0;
	size_t i;
	json_t *l;
	buf[0] = '\0';
	json_array_foreach(locks, i, l) {
		const char *name = json_string_value(json_object_get(l, "name"));
		const char *mode = json_string_value(json_object_get(l, "mode"));
		int n = snprintf(buf + o, len - o, "%s%s (%s)", i ? ", " : "", name ? name : "?", mode ? mode : "?");
		if (n < 0 || (size_t)n >= len - o)
			break;
		o += (size_t)n;
	}
}
