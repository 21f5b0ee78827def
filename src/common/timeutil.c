#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }
int64_t now_mono_ms(void) { return clock_us(CLOCK_MONOTONIC) / 1000; }
int64_t now_wall_ms(void) { return clock_us(CLOCK_REALTIME) / 1000; }

void sleep_us(int64_t us)
{
	if (us <= 0)
		return;
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void format_rfc3339_ms(int64_t wall_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	char stamp[24];
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", stamp, (int)(wall_ms % 1000));
}

int parse_duration_ms(const char *s, int64_t *ret_ms)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	double mult;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000;
	else
		return -EINVAL;
	double ms = v * mult;
	if (ms > 9.2e15)
		return -EINVAL;
	*ret_ms = (int64_t)ms;
	return 0;
}
