/* calendar.c — see calendar.h. */
#include "calendar.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY_S 86400

static const char *const day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static int bad(char *err, size_t errlen, const char *what, const char *text)
{
	snprintf(err, errlen, "%s in \"%s\" (e.g. \"daily 03:00\", \"hourly\", \"Mon,Thu *-*-* 04:30\"; UTC)", what,
		 text);
	return -EINVAL;
}

/* A number 0..max from s[0..len): all digits. */
static int number(const char *s, size_t len, int max)
{
	if (len == 0 || len > 2)
		return -1;
	int v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* One time field: "*", "*\/S", "A/S", "A,B,C" (items may be "A/S"). */
static int parse_field(const char *s, int max, uint64_t *ret)
{
	uint64_t bits = 0;
	if (!*s)
		return -1;
	while (*s) {
		size_t len = strcspn(s, ",");
		const char *slash = memchr(s, '/', len);
		size_t head = slash ? (size_t)(slash - s) : len;
		int from;
		if (head == 1 && s[0] == '*')
			from = slash ? 0 : -2; /* -2: every value */
		else if ((from = number(s, head, max)) < 0)
			return -1;
		if (from == -2) {
			for (int v = 0; v <= max; v++)
				bits |= 1ULL << v;
		} else if (slash) {
			int step = number(slash + 1, len - head - 1, max);
			if (step <= 0)
				return -1;
			for (int v = from; v <= max; v += step)
				bits |= 1ULL << v;
		} else {
			bits |= 1ULL << from;
		}
		s += len;
		if (*s == ',' && !*++s)
			return -1; /* a trailing comma */
	}
	*ret = bits;
	return 0;
}

static int day_index(const char *s, size_t len)
{
	for (int d = 0; d < 7; d++)
		if (len == 3 && strncasecmp(s, day_names[d], 3) == 0)
			return d;
	return -1;
}

/* "Mon", "Mon,Thu", "Mon..Fri", "Sat..Mon" (wraps), or a comma list of those. */
static int parse_days(const char *s, uint8_t *ret)
{
	uint8_t bits = 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		const char *dots = strstr(s, "..");
		if (dots && (size_t)(dots - s) < len) {
			int a = day_index(s, (size_t)(dots - s)), b = day_index(dots + 2, len - (size_t)(dots - s) - 2);
			if (a < 0 || b < 0)
				return -1;
			for (int d = a;; d = (d + 1) % 7) {
				bits |= (uint8_t)(1u << d);
				if (d == b)
					break;
			}
		} else {
			int d = day_index(s, len);
			if (d < 0)
				return -1;
			bits |= (uint8_t)(1u << d);
		}
		s += len;
		if (*s == ',' && !*++s)
			return -1;
	}
	*ret = bits;
	return 0;
}

/* "H:M" or "H:M:S". */
static int parse_time(const char *s, struct calendar *c)
{
	char buf[64];
	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	char *parts[4] = { 0 };
	int n = 0;
	for (char *p = buf, *save = NULL, *tok; n < 4 && (tok = strtok_r(p, ":", &save)); p = NULL)
		parts[n++] = tok;
	if (n < 2 || n > 3 || s[strlen(s) - 1] == ':' || s[0] == ':' || strstr(s, "::"))
		return -1;
	uint64_t h, m, sec = 1;
	if (parse_field(parts[0], 23, &h) < 0 || parse_field(parts[1], 59, &m) < 0 ||
	    (n == 3 && parse_field(parts[2], 59, &sec) < 0))
		return -1;
	c->hours = (uint32_t)h;
	c->minutes = m;
	c->seconds = sec;
	return 0;
}

int calendar_parse(const char *text, struct calendar *ret, char *err, size_t errlen)
{
	char buf[256];
	if (!text || strlen(text) >= sizeof(buf))
		return bad(err, errlen, "a schedule of 1-255 characters is expected", text ? text : "");
	snprintf(buf, sizeof(buf), "%s", text);
	char *tok[8];
	int n = 0;
	for (char *p = buf, *save = NULL, *t; (t = strtok_r(p, " \t", &save)); p = NULL) {
		if (n == 8)
			return bad(err, errlen, "too many words", text);
		tok[n++] = t;
	}
	if (n > 0 && strcasecmp(tok[n - 1], "UTC") == 0)
		n--; /* the only zone there is; allowed for clarity */
	if (n == 0)
		return bad(err, errlen, "an empty schedule", text);
	struct calendar c = { .hours = 0xffffff, .minutes = (1ULL << 60) - 1, .seconds = 1, .days = 0x7f };
	int i = 0;
	if (strcasecmp(tok[0], "minutely") == 0 || strcasecmp(tok[0], "hourly") == 0) {
		if (n != 1)
			return bad(err, errlen, "\"minutely\" and \"hourly\" take nothing after them", text);
		if (strcasecmp(tok[0], "hourly") == 0)
			c.minutes = 1;
		*ret = c;
		return 0;
	}
	if (strcasecmp(tok[0], "daily") == 0 || strcasecmp(tok[0], "weekly") == 0) {
		bool weekly = strcasecmp(tok[0], "weekly") == 0;
		c.hours = c.minutes = 1;
		i = 1;
		if (weekly) {
			c.days = 1u << 1; /* Monday */
			if (i < n && isalpha((unsigned char)tok[i][0]) && parse_days(tok[i++], &c.days) < 0)
				return bad(err, errlen, "a day must be Mon, Tue, Wed, Thu, Fri, Sat or Sun", text);
		}
		if (i < n && parse_time(tok[i++], &c) < 0)
			return bad(err, errlen, "a time must be HH:MM or HH:MM:SS (hour 0-23, minute and second 0-59)",
				   text);
		if (i != n)
			return bad(err, errlen, "unexpected words after the time", text);
		*ret = c;
		return 0;
	}
	if (isalpha((unsigned char)tok[i][0]) && parse_days(tok[i++], &c.days) < 0)
		return bad(err, errlen, "a day must be Mon, Tue, Wed, Thu, Fri, Sat or Sun", text);
	if (i < n && strcmp(tok[i], "*-*-*") == 0)
		i++;
	else if (i < n && strchr(tok[i], '-'))
		return bad(err, errlen, "the date must be *-*-* (every day)", text);
	if (i >= n)
		return bad(err, errlen, "a time (HH:MM) is missing", text);
	if (parse_time(tok[i++], &c) < 0)
		return bad(err, errlen, "a time must be HH:MM or HH:MM:SS (each * , a number, a list or A/STEP)", text);
	if (i != n)
		return bad(err, errlen, "unexpected words after the time", text);
	*ret = c;
	return 0;
}

static bool day_matches(const struct calendar *c, time_t day_start)
{
	int wday = (int)(((day_start / DAY_S) + 4) % 7); /* 1970-01-01 was a Thursday */
	return c->days & (1u << wday);
}

time_t calendar_next(const struct calendar *c, time_t t)
{
	time_t day0 = t - (t % DAY_S);
	for (int k = 0; k <= 8; k++) {
		time_t ds = day0 + (time_t)k * DAY_S;
		if (!day_matches(c, ds))
			continue;
		for (int h = 0; h < 24; h++) {
			if (!(c->hours & (1u << h)) || ds + h * 3600 + 3599 <= t)
				continue;
			for (int m = 0; m < 60; m++) {
				time_t hm = ds + h * 3600 + m * 60;
				if (!(c->minutes & (1ULL << m)) || hm + 59 <= t)
					continue;
				for (int s = 0; s < 60; s++)
					if ((c->seconds & (1ULL << s)) && hm + s > t)
						return hm + s;
			}
		}
	}
	return t + 8 * DAY_S; /* not reached for a parsed calendar */
}

time_t calendar_prev(const struct calendar *c, time_t t)
{
	time_t day0 = t - (t % DAY_S);
	for (int k = 0; k <= 8; k++) {
		time_t ds = day0 - (time_t)k * DAY_S;
		if (!day_matches(c, ds))
			continue;
		for (int h = 23; h >= 0; h--) {
			if (!(c->hours & (1u << h)) || ds + h * 3600 > t)
				continue;
			for (int m = 59; m >= 0; m--) {
				time_t hm = ds + h * 3600 + m * 60;
				if (!(c->minutes & (1ULL << m)) || hm > t)
					continue;
				for (int s = 59; s >= 0; s--)
					if ((c->seconds & (1ULL << s)) && hm + s <= t)
						return hm + s;
			}
		}
	}
	return t - 8 * DAY_S;
}
