/* test-random.c — common/random.h: the buffer is filled, to its last byte,
 * and two draws differ. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "common/random.h"

static void test_fills_the_buffer(void **state)
{
	(void)state;
	/* Longer than one getrandom() is sure to return in one go (256). */
	unsigned char a[4096], b[4096];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(random_bytes(a, sizeof(a)), 0);
	assert_int_equal(random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	/* The tail was written: 64 zero bytes at the end are a 2^-512 chance. */
	static const unsigned char zero[64];
	assert_memory_not_equal(a + sizeof(a) - 64, zero, 64);
	assert_int_equal(random_bytes(a, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fills_the_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
