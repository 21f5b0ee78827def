/* test-tokens.c — the tokens file: create, list, revoke, check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/tokens.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test-tokens.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/api-tokens", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void test_names(void **state)
{
	(void)state;
	char name[TOKEN_NAME_MAX + 2];
	memset(name, 'a', sizeof(name));
	name[TOKEN_NAME_MAX] = '\0';
	assert_true(token_name_valid(name));
	name[TOKEN_NAME_MAX] = 'a';
	name[TOKEN_NAME_MAX + 1] = '\0';
	assert_false(token_name_valid(name));
	assert_true(token_name_valid("ci-1.prod_x"));
	assert_false(token_name_valid(""));
	assert_false(token_name_valid("-x"));
	assert_false(token_name_valid(".x"));
	assert_false(token_name_valid("a b"));
	assert_false(token_name_valid("a/b"));
	assert_false(token_name_valid("a\nb"));
}

static void test_create_check_revoke(void **state)
{
	(void)state;
	char err[256], t1[TOKEN_LEN + 1], t2[TOKEN_LEN + 1];
	assert_int_equal(tokens_create(path, "one", t1, err, sizeof(err)), 0);
	assert_int_equal(strlen(t1), TOKEN_LEN);
	assert_int_equal(tokens_create(path, "two", t2, err, sizeof(err)), 0);
	assert_int_equal(tokens_create(path, "one", t2, err, sizeof(err)), -EEXIST);
	assert_int_equal(tokens_create(path, "a b", t2, err, sizeof(err)), -EINVAL);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(tokens_check(path, t1));
	assert_false(tokens_check(path, "boxd_000"));
	assert_false(tokens_check(path, ""));
	struct token_list l;
	assert_int_equal(tokens_list(path, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "one");
	assert_string_equal(l.v[1].name, "two");
	assert_true(strlen(l.v[0].created) > 0);
	token_list_release(&l);
	assert_int_equal(tokens_revoke(path, "one", err, sizeof(err)), 0);
	assert_false(tokens_check(path, t1));
	assert_int_equal(tokens_revoke(path, "one", err, sizeof(err)), -ENOENT);
	assert_int_equal(tokens_revoke(path, "two", err, sizeof(err)), 0);
	assert_int_equal(tokens_list(path, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 0);
	token_list_release(&l);
}

static void test_odd_lines_never_match(void **state)
{
	(void)state;
	/* Blank, short and old-format lines; the hash of "" never matches a
	 * blank line. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "\n\nabc\n%s old\n", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	fclose(f);
	assert_false(tokens_check(path, "x"));
	/* An old line without a time still works (sha256("") above). */
	assert_true(tokens_check(path, ""));
	struct token_list l;
	char err[256];
	assert_int_equal(tokens_list(path, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, "old");
	assert_string_equal(l.v[0].created, "");
	token_list_release(&l);
	unlink(path);
}

static void test_parallel_creates_all_land(void **state)
{
	(void)state;
	enum { N = 8 };
	for (int i = 0; i < N; i++) {
		if (fork() == 0) {
			char err[256], t[TOKEN_LEN + 1], name[16];
			snprintf(name, sizeof(name), "p%d", i);
			_exit(tokens_create(path, name, t, err, sizeof(err)) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;
		wait(&status);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	struct token_list l;
	char err[256];
	assert_int_equal(tokens_list(path, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, N);
	token_list_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_create_check_revoke),
		cmocka_unit_test(test_odd_lines_never_match),
		cmocka_unit_test(test_parallel_creates_all_land),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
