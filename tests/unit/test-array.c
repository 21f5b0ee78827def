/* test-array.c — ARRAY_GROW (common/array.h): room for what is asked,
 * doubling, no change when there is room, and an overflowing size refused
 * with the array untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/array.h"

static void test_grows_and_keeps(void **state)
{
	(void)state;
	int *v = NULL;
	size_t n = 0, cap = 0;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(ARRAY_GROW(v, n + 1, cap), 0);
		assert_true(cap >= n + 1);
		v[n++] = i;
	}
	assert_int_equal(cap, 1024); /* 8, doubled */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(v[i], i);
	int *before = v;
	assert_int_equal(ARRAY_GROW(v, 1024, cap), 0); /* room already: nothing moves */
	assert_ptr_equal(v, before);
	assert_int_equal(cap, 1024);
	assert_int_equal(ARRAY_GROW(v, 5000, cap), 0); /* several doublings at once */
	assert_int_equal(cap, 8192);
	free(v);
}

static void test_overflow_is_enomem_and_changes_nothing(void **state)
{
	(void)state;
	struct big { char b[64]; } *v = NULL;
	size_t cap = 0;
	assert_int_equal(ARRAY_GROW(v, 4, cap), 0);
	struct big *before = v;
	assert_int_equal(ARRAY_GROW(v, SIZE_MAX / 32, cap), -ENOMEM);
	assert_int_equal(ARRAY_GROW(v, SIZE_MAX, cap), -ENOMEM);
	assert_ptr_equal(v, before);
	assert_int_equal(cap, 8);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grows_and_keeps),
		cmocka_unit_test(test_overflow_is_enomem_and_changes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
