/* test-proc.c — process identity: start time, liveness, pid reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/timeutil.h"

static void test_self_start_time_is_stable(void **state)
{
	(void)state;
	uint64_t a = 0, b = 0;
	assert_int_equal(proc_start_time(getpid(), &a), 0);
	assert_int_equal(proc_start_time(getpid(), &b), 0);
	assert_true(a > 0);
	assert_true(a == b);
	assert_int_equal(proc_check(getpid(), a), PROC_ALIVE);
}

static void test_gone_and_reused(void **state)
{
	(void)state;
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	uint64_t st;
	assert_int_equal(proc_start_time(child, &st), 0);
	assert_int_equal(proc_check(child, st), PROC_ALIVE);
	/* Same pid, another start time: that is pid reuse, a dead owner. */
	assert_int_equal(proc_check(child, st + 1), PROC_REUSED);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(proc_check(child, st), PROC_GONE);
	assert_int_equal(proc_start_time(child, &st), -ESRCH);
	assert_int_equal(proc_start_time(0, &st), -EINVAL);
}

static void test_host_id(void **state)
{
	(void)state;
	char buf[64];
	unsetenv("BOXD_HOST_ID");
	assert_int_equal(host_id_get(buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 36); /* a UUID */
	setenv("BOXD_HOST_ID", "host-b", 1);
	assert_int_equal(host_id_get(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "host-b");
	unsetenv("BOXD_HOST_ID");
}

static void test_durations(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(parse_duration_ms("30", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(parse_duration_ms("1.5", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(parse_duration_ms("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(parse_duration_ms("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(parse_duration_ms("", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("-1", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("5 parsecs", &ms), -EINVAL);
	char buf[32];
	format_rfc3339_ms(1764289700123, buf, sizeof(buf));
	assert_string_equal(buf, "2025-11-28T00:28:20.123Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_start_time_is_stable),
		cmocka_unit_test(test_gone_and_reused),
		cmocka_unit_test(test_host_id),
		cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
