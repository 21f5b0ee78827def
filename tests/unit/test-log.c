/* test-log.c — a logged user string can never fake or break a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Run log_msg with stderr redirected to a temp file; return what it wrote. */
static char *capture(const char *fmt, const char *arg)
{
	fflush(stderr);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	int saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	log_msg(LOG_LVL_ERROR, fmt, arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	off_t n = lseek(fileno(tmp), 0, SEEK_END);
	assert_true(n >= 0);
	char *out = calloc(1, (size_t)n + 1);
	assert_int_equal(pread(fileno(tmp), out, (size_t)n, 0), n);
	fclose(tmp);
	return out;
}

static int count(const char *s, char c)
{
	int n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

static void test_newline_in_a_user_string_stays_on_its_line(void **state)
{
	(void)state;
	char *out = capture("GET %s -> 404", "/api/v1/x\n2026-01-01T00:00:00.000Z INFO  [1] forged\r");
	assert_int_equal(count(out, '\n'), 1);
	assert_null(strchr(out, '\r'));
	assert_non_null(strstr(out, "/api/v1/x\\n2026-01-01T00:00:00.000Z INFO  [1] forged\\r -> 404\n"));
	free(out);
}

static void test_terminal_escapes_and_bad_utf8_are_escaped(void **state)
{
	(void)state;
	char *out = capture("app %s", "a\x1b[2Jb\x7f\xff\xc3(ok \xc3\xa9");
	/* ESC, DEL and bytes that are not UTF-8 become \xHH; valid UTF-8
	 * (é) stays as it is. */
	assert_non_null(strstr(out, "app a\\x1b[2Jb\\x7f\\xff\\xc3(ok \xc3\xa9\n"));
	free(out);
}

static void test_escape_never_cuts_an_escape_or_a_character(void **state)
{
	(void)state;
	char buf[8], big[64];
	/* "ab\\n" is 4 bytes; "\\x01" would need 4 more and does not fit. */
	assert_string_equal(log_escape("ab\n\x01", buf, sizeof(buf)), "ab\\n");
	assert_string_equal(log_escape("abcdef\xc3\xa9", buf, sizeof(buf)), "abcdef");
	assert_string_equal(log_escape("\xc2\x9b" "1m", buf, sizeof(buf)), "\\xc2");
	/* Overlong and surrogate forms are not UTF-8. */
	assert_string_equal(log_escape("\xc0\xaf", big, sizeof(big)), "\\xc0\\xaf");

	assert_string_equal(log_escape("\xed\xa0\x80", big, sizeof(big)), "\\xed\\xa0\\x80");
	assert_string_equal(log_escape("\xf0\x9f\x98\x80 ok", big, sizeof(big)), "\xf0\x9f\x98\x80 ok");
	assert_string_equal(log_escape("", big, sizeof(big)), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newline_in_a_user_string_stays_on_its_line),
		cmocka_unit_test(test_terminal_escapes_and_bad_utf8_are_escaped),
		cmocka_unit_test(test_escape_never_cuts_an_escape_or_a_character),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
