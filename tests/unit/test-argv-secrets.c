/* test-argv-secrets.c — secrets leave argv and its memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/argv_secrets.h"

static const struct argv_secret secrets[] = { { "--dsn", "T_DSN" }, { "--token", "T_TOKEN" }, { NULL, NULL } };

/* Lay `words` out back to back in `block`, as the kernel does. */
static int build(char *block, size_t size, char **argv, const char *const *words)
{
	size_t o = 0;
	int n = 0;
	memset(block, 0, size);
	for (; words[n]; n++) {
		argv[n] = block + o;
		strcpy(block + o, words[n]);
		o += strlen(words[n]) + 1;
	}
	argv[n] = NULL;
	return n;
}

static bool block_has(const char *block, size_t size, const char *s)
{
	return memmem(block, size, s, strlen(s)) != NULL;
}

static void test_contiguous(void **state)
{
	(void)state;
	char block[256], *argv[16];
	const char *const words[] = { "boxd", "serve", "--dsn", "mysql://u:SECRET@h/db", "--listen", "x:1",
				      "--token=TOK", "--", "--dsn", "after", NULL };
	int argc = build(block, sizeof(block), argv, words);
	unsetenv("T_DSN");
	assert_int_equal(argv_hide_secrets(&argc, argv, secrets), 2);
	assert_string_equal(getenv("T_DSN"), "mysql://u:SECRET@h/db");
	assert_string_equal(getenv("T_TOKEN"), "TOK");
	assert_int_equal(argc, 7);
	const char *const want[] = { "boxd", "serve", "--listen", "x:1", "--", "--dsn", "after" };
	for (int i = 0; i < argc; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[argc]);
	/* The memory the kernel shows as /proc/self/cmdline. */
	assert_false(block_has(block, sizeof(block), "SECRET"));
	assert_false(block_has(block, sizeof(block), "TOK\0"));
	assert_true(block_has(block, sizeof(block), "after"));
}

static void test_scattered_and_missing_value(void **state)
{
	(void)state;
	char a[] = "boxd", b[] = "--dsn", c[] = "pw-SECRET", d[] = "--token";
	char *argv[] = { a, b, c, d, NULL }; /* not back to back; the last flag has no value */
	int argc = 4;
	assert_int_equal(argv_hide_secrets(&argc, argv, secrets), 1);
	assert_string_equal(getenv("T_DSN"), "pw-SECRET");
	assert_int_equal(argc, 2);
	assert_string_equal(argv[0], "boxd");
	assert_string_equal(argv[1], "--token");
	assert_null(strstr(c, "SECRET"));
}

static void test_nothing_to_hide(void **state)
{
	(void)state;
	char block[64], *argv[4];
	const char *const words[] = { "boxctl", "status", NULL };
	int argc = build(block, sizeof(block), argv, words);
	assert_int_equal(argv_hide_secrets(&argc, argv, secrets), 0);
	assert_int_equal(argc, 2);
	assert_string_equal(argv[1], "status");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contiguous),
		cmocka_unit_test(test_scattered_and_missing_value),
		cmocka_unit_test(test_nothing_to_hide),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
