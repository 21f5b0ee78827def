/* format.h — turn API values into short text for people: times, durations,
 * what a task waits for, a task's error. Pure: no I/O (the current time is
 * passed in). Every function writes a NUL-terminated string into buf, cut to
 * fit.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Parse RFC 3339 UTC as the API writes it ("2026-11-28T00:28:20.123Z"; the
 * fraction is optional). Returns 0 or -EINVAL. */
int format_parse_time(const char *s, int64_t *ret_ms);

/* A duration in the shortest useful form: "850ms", "4.2s", "42s", "5m03s",
 * "2h05m", "3d04h". Negative values print as 0. */
void format_duration(int64_t ms, char *buf, size_t len);

/* How long ago the RFC 3339 time `when` (a JSON string, or null) was, as
 * format_duration(); "-" if there is none. */
void format_age(json_t *when, int64_t now_ms, char *buf, size_t len);

/* A task's waitingFor object ({lock, mode, queued, pid, heldBy}) as
 * "waiting for app:x (held by task 17)", "... (queued behind task 17)" or
 * "... (held by pid 1234)". Empty if waiting_for is not an object. */
void format_waiting(json_t *waiting_for, char *buf, size_t len);

/* A task's error object as "crashed: the worker was killed by signal 9";
 * empty if it is not an object. */
void format_task_error(json_t *error, char *buf, size_t len);

/* What a task is doing now, for a status line: the waiting text when it
 * waits for a lock, else its message. */
void format_task_activity(json_t *task, char *buf, size_t len);

/* A lock list [{name, mode}, ...] as "app:x (exclusive), platform (shared)". */
void format_lock_list(json_t *locks, char *buf, size_t len);
