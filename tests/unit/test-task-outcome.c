/* test-task-outcome.c — tasks/task_outcome.h on real files in a fresh
 * mkdtemp state dir: the outcome a worker appends to its task log reads
 * back whole (the last one wins, the log's other lines stay), a message
 * that quotes a record is not one, a line cut short is no outcome, and an
 * <id>.outcome file an older worker left is still read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "tasks/task_outcome.h"

static char dir[256], logs[300];

static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/boxd-test-outcome-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(logs, sizeof(logs), "%s/logs", dir);
	if (mkdir(logs, 0700) < 0)
		return -1;
	snprintf(logs, sizeof(logs), "%s/logs/tasks", dir);
	return mkdir(logs, 0700);
}

static int teardown(void **state)
{
	(void)state;
	char err[256];
	return fs_remove_tree(NULL, dir, err, sizeof(err));
}

static void append(int64_t id, const char *text)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%lld.log", logs, (long long)id);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *slurp(int64_t id)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%lld.log", logs, (long long)id);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void test_round_trip_in_the_log(void **state)
{
	(void)state;
	struct task_outcome o = { 0 };
	assert_int_equal(task_outcome_read(dir, 7, &o), -ENOENT); /* no log */
	append(7, "2026-12-06T10:00:00.000Z INFO  [42] task 7 (hold) starting in pid 42\n");
	assert_int_equal(task_outcome_read(dir, 7, &o), -ENOENT); /* a log without one */

	struct task_outcome w = { .state = TASK_FAILED, .result = strdup("{\"n\":1,\"s\":\"a\\nb é\"}") };
	snprintf(w.error_code, sizeof(w.error_code), "engine_error");
	snprintf(w.error_message, sizeof(w.error_message), "it said \"no\"\non two lines");
	assert_int_equal(task_outcome_write(dir, 7, &w), 0);
	append(7, "2026-12-06T10:00:01.000Z INFO  [42] task 7: released its locks\n");
	assert_int_equal(task_outcome_read(dir, 7, &o), 0);
	assert_int_equal(o.state, TASK_FAILED);
	assert_string_equal(o.error_code, "engine_error");
	assert_string_equal(o.error_message, "it said \"no\"\non two lines");
	assert_string_equal(o.result, "{\"n\":1,\"s\":\"a\\nb é\"}");
	task_outcome_release(&o);
	task_outcome_release(&w);

	/* The log keeps its lines, and the record is one line of its own. */
	char *text = slurp(7);
	assert_non_null(strstr(text, "starting in pid 42\n"));
	assert_non_null(strstr(text, "] task 7 outcome {"));
	assert_non_null(strstr(text, "}\n2026-12-06T10:00:01.000Z INFO  [42] task 7: released"));

	/* The last record wins (the lease thread's, then the main thread's). */
	struct task_outcome w2 = { .state = TASK_SUCCEEDED };
	assert_int_equal(task_outcome_write(dir, 7, &w2), 0);
	assert_int_equal(task_outcome_read(dir, 7, &o), 0);
	assert_int_equal(o.state, TASK_SUCCEEDED);
	assert_string_equal(o.error_code, "");
	assert_null(o.result);
	task_outcome_release(&o);
	/* Another task's id is not this task's. */
	assert_int_equal(task_outcome_read(dir, 70, &o), -ENOENT);
}

/* A logged message that quotes a record (log_msg() writes it after the
 * prefix), and a record cut short by a full disk, are no outcome. */
static void test_forged_and_torn_lines(void **state)
{
	(void)state;
	struct task_outcome o = { 0 };
	append(8, "2026-12-06T10:00:00.000Z INFO  [42] hook said: x] task 8 outcome {\"state\":\"succeeded\"}\n");
	assert_int_equal(task_outcome_read(dir, 8, &o), -ENOENT);
	append(8, "2026-12-06T10:00:00.000Z INFO  [42] task 8 outcome {\"state\":\"succ");
	assert_int_equal(task_outcome_read(dir, 8, &o), -EBADMSG);
	append(8, "\n2026-12-06T10:00:00.000Z INFO  [42] task 8 outcome {\"state\":\"running\"}\n");
	assert_int_equal(task_outcome_read(dir, 8, &o), -EBADMSG); /* not a final state */
}

/* A record far into a long log is found from the tail; what precedes it
 * (a cut first line of the tail) does not confuse the search. */
static void test_long_log(void **state)
{
	(void)state;
	char line[200];
	for (int i = 0; i < 20000; i++) {
		snprintf(line, sizeof(line), "2026-12-06T10:00:00.000Z INFO  [42] progress line %d of a chatty task\n", i);
		append(9, line);
	}
	struct task_outcome w = { .state = TASK_CANCELLED };
	assert_int_equal(task_outcome_write(dir, 9, &w), 0);
	struct task_outcome o = { 0 };
	assert_int_equal(task_outcome_read(dir, 9, &o), 0);
	assert_int_equal(o.state, TASK_CANCELLED);
}

/* An <id>.outcome file of an older worker is read first, and removed. */
static void test_legacy_file(void **state)
{
	(void)state;
	char path[400];
	snprintf(path, sizeof(path), "%s/10.outcome", logs);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"state\":\"failed\",\"errorCode\":\"old\",\"errorMessage\":\"from the file\"}", f);
	fclose(f);
	struct task_outcome w = { .state = TASK_SUCCEEDED };
	assert_int_equal(task_outcome_write(dir, 10, &w), 0);
	struct task_outcome o = { 0 };
	assert_int_equal(task_outcome_read(dir, 10, &o), 0);
	assert_string_equal(o.error_code, "old");
	task_outcome_release(&o);
	task_outcome_remove(dir, 10);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(task_outcome_read(dir, 10, &o), 0);
	assert_int_equal(o.state, TASK_SUCCEEDED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_in_the_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_and_torn_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
