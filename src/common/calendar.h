/* calendar.h — the schedule of [backups] schedule: a small, clear subset of
 * systemd's calendar events (systemd.time(7)), always in UTC.
 *
 * Grammar (case-insensitive words, fields separated by blanks):
 *
 *   schedule := "minutely" | "hourly" | "daily" [time] | "weekly" [days] [time]
 *             | [days] ["*-*-*"] time
 *   time     := hour ":" minute [":" second]         (second defaults to 0)
 *   hour, minute, second := "*" | list | "*" "/" step | N "/" step
 *   list     := N ("," N)*                           (hour 0-23, minute and second 0-59)
 *   days     := day ("," day)* | day ".." day       (Mon Tue Wed Thu Fri Sat Sun)
 *
 * Examples: "daily 03:00" (every day at 03:00:00 UTC), "hourly" (minute 0
 * of every hour), "*-*-* 03:00", "Mon,Thu 04:30", "*:0/15" (every quarter
 * of an hour), "weekly Sun 02:00". A step "A/S" means A, A+S, A+2S, ... up
 * to the field's maximum. The date is always every day ("*-*-*" may be
 * written for systemd's look); "daily" alone is 00:00:00, "weekly" alone
 * Monday 00:00:00, "hourly" *:00:00, "minutely" *:*:00.
 *
 * Why UTC: no daylight-saving gaps or repeats (a local 02:30 that happens
 * twice, or never, in a night), and the box's time zone may differ from
 * the operator's anyway. The functions are pure (no clock, no I/O).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct calendar {
	uint32_t hours;   /* bit h: hour h matches */
	uint64_t minutes; /* bit m */
	uint64_t seconds; /* bit s */
	uint8_t days;     /* bit d: weekday d matches, 0 = Sunday (struct tm's tm_wday) */
};

/* Parse `text`. 0, or -EINVAL with a message saying what is wrong. */
int calendar_parse(const char *text, struct calendar *ret, char *err, size_t errlen);

/* The first matching time strictly after `t` (seconds since the epoch);
 * always exists within 8 days for a parsed calendar. */
time_t calendar_next(const struct calendar *c, time_t t);

/* The last matching time at or before `t`. */
time_t calendar_prev(const struct calendar *c, time_t t);
