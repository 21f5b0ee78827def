/* test-calendar.c — the [backups] schedule grammar (common/calendar.h):
 * what parses and what does not (with the reason), and the next and
 * previous matching times across hours, days, weeks, month and year ends,
 * and a leap day. All times UTC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/calendar.h"

/* "YYYY-MM-DD HH:MM:SS" UTC → epoch seconds. */
static time_t at(const char *s)
{
	struct tm tm = { 0 };
	assert_non_null(strptime(s, "%Y-%m-%d %H:%M:%S", &tm));
	return timegm(&tm);
}

static void expect_next(const char *sched, const char *from, const char *want)
{
	struct calendar c;
	char err[256];
	assert_int_equal(calendar_parse(sched, &c, err, sizeof(err)), 0);
	time_t got = calendar_next(&c, at(from));
	char buf[32];
	struct tm tm;
	gmtime_r(&got, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	if (strcmp(buf, want) != 0)
		fail_msg("next(\"%s\", %s) = %s, want %s", sched, from, buf, want);
}

static void expect_prev(const char *sched, const char *from, const char *want)
{
	struct calendar c;
	char err[256];
	assert_int_equal(calendar_parse(sched, &c, err, sizeof(err)), 0);
	time_t got = calendar_prev(&c, at(from));
	char buf[32];
	struct tm tm;
	gmtime_r(&got, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	if (strcmp(buf, want) != 0)
		fail_msg("prev(\"%s\", %s) = %s, want %s", sched, from, buf, want);
}

static void test_parse_ok(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"daily", "daily 03:00", "daily 3:00:30", "hourly", "minutely", "weekly", "weekly Sun 02:00",
		"weekly Mon..Fri", "*-*-* 03:00", "03:00", "Mon,Thu *-*-* 04:30", "Sat..Mon 1:2:3", "*:0/15",
		"*:*:0/5", "0,12:30", "DAILY 03:00 UTC", "  daily   03:00  ", "*/2:00", "fri 23:59:59",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct calendar c;
		char err[256] = "";
		if (calendar_parse(ok[i], &c, err, sizeof(err)) != 0)
			fail_msg("\"%s\" refused: %s", ok[i], err);
	}
}

static void test_parse_bad(void **state)
{
	(void)state;
	static const struct {
		const char *text, *says;
	} bad[] = {
		{ "", "empty" },
		{ "daily 24:00", "time" },
		{ "daily 03:60", "time" },
		{ "daily 03:00:60", "time" },
		{ "03", "time" },
		{ "03:00:00:00", "time" },
		{ "daily 03:00 extra", "unexpected" },
		{ "hourly 5", "nothing after" },
		{ "Moon 03:00", "day" },
		{ "2026-12-05 03:00", "date" },
		{ "*-*-*", "time" },
		{ "0 3 * * *", "time" },
		{ "*:0/0", "time" },
		{ "1,:00", "time" },
		{ "03::00", "time" },
		{ "03:00:", "time" },
		{ "weekly Mon..Xyz", "day" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct calendar c;
		char err[256] = "";
		if (calendar_parse(bad[i].text, &c, err, sizeof(err)) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i].text);
		if (!strstr(err, bad[i].says))
			fail_msg("\"%s\": message \"%s\" does not say \"%s\"", bad[i].text, err, bad[i].says);
	}
}

static void test_next(void **state)
{
	(void)state;
	expect_next("daily 03:00", "2026-12-05 02:59:59", "2026-12-05 03:00:00");
	expect_next("daily 03:00", "2026-12-05 03:00:00", "2026-12-06 03:00:00"); /* strictly after */
	expect_next("daily 03:00", "2026-12-31 12:00:00", "2027-01-01 03:00:00");
	expect_next("daily", "2028-02-28 00:00:01", "2028-02-29 00:00:00"); /* leap day */
	expect_next("hourly", "2026-12-05 18:30:00", "2026-12-05 19:00:00");
	expect_next("hourly", "2026-12-05 23:00:00", "2026-12-06 00:00:00");
	expect_next("minutely", "2026-12-05 18:30:59", "2026-12-05 18:31:00");
	expect_next("*:0/15", "2026-12-05 18:31:00", "2026-12-05 18:45:00");
	expect_next("*:*:0/5", "2026-12-05 18:31:02", "2026-12-05 18:31:05");
	expect_next("weekly", "2026-12-05 10:00:00", "2026-12-07 00:00:00");             /* Sat → Mon */
	expect_next("weekly Sun 02:00", "2026-12-06 02:00:00", "2026-12-13 02:00:00");   /* a week on */
	expect_next("Mon,Thu *-*-* 04:30", "2026-12-04 05:00:00", "2026-12-07 04:30:00"); /* Fri → Mon */
	expect_next("Sat..Mon 01:00", "2026-12-08 00:00:00", "2026-12-12 01:00:00");     /* Tue → Sat */
	expect_next("0,12:30", "2026-12-05 00:31:00", "2026-12-05 12:30:00");
	expect_next("*/2:00", "2026-12-05 13:00:00", "2026-12-05 14:00:00");
	expect_next("fri 23:59:59", "2026-12-31 00:00:00", "2027-01-01 23:59:59");
}

static void test_prev(void **state)
{
	(void)state;
	expect_prev("daily 03:00", "2026-12-05 03:00:00", "2026-12-05 03:00:00"); /* at or before */
	expect_prev("daily 03:00", "2026-12-05 02:59:59", "2026-12-04 03:00:00");
	expect_prev("daily 03:00", "2027-01-01 01:00:00", "2026-12-31 03:00:00");
	expect_prev("hourly", "2026-12-05 00:10:00", "2026-12-05 00:00:00");
	expect_prev("weekly", "2026-12-06 00:00:00", "2026-11-30 00:00:00");
	expect_prev("Mon,Thu 04:30", "2026-12-07 04:29:59", "2026-12-03 04:30:00");
	expect_prev("*:*:0/5", "2026-12-05 18:31:04", "2026-12-05 18:31:00");
}

/* next and prev agree everywhere: prev(next(t)) == next(t), and no match
 * lies strictly between t and next(t). */
static void test_next_prev_agree(void **state)
{
	(void)state;
	static const char *const scheds[] = { "daily 03:00", "Mon,Thu 04:30", "*:0/15", "weekly Sun 02:00:30",
					      "*/5:07:11" };
	for (size_t i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++) {
		struct calendar c;
		char err[256];
		assert_int_equal(calendar_parse(scheds[i], &c, err, sizeof(err)), 0);
		for (time_t t = at("2026-12-01 00:00:00"); t < at("2026-12-15 00:00:00"); t += 3607) {
			time_t n = calendar_next(&c, t);
			assert_true(n > t);
			assert_true(n - t <= 7 * 86400);
			assert_int_equal(calendar_prev(&c, n), n);
			assert_true(calendar_prev(&c, n - 1) <= t);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_prev),
		cmocka_unit_test(test_next_prev_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
