/* test-app-admit.c — apps/app_admit.c and the stopped flag (apps/app.h) on
 * a real SQLite store: start and stop are admitted like the other app
 * tasks, and a restart is refused while the app is — or, by a stop queued
 * before it, will be — stopped by the operator, with nothing queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "apps/app_admit.h"
#include "common/config.h"
#include "tasks/store_open.h"
#include "tasks/task_enqueue.h"

static int enqueue(struct store *s, const struct boxd_config *cfg, const char *type, const char *id,
		   struct task_enqueued *out)
{
	struct task_enqueue e;
	apps_enqueue_init(&e, type, id, NULL, NULL);
	return task_enqueue(s, cfg, &e, out);
}

static int64_t n_tasks(struct store *s)
{
	int64_t n = -1;
	assert_int_equal(store_query_int64(s, &n, "SELECT COUNT(*) FROM tasks", NULL), 0);
	return n;
}

static void test_stopped(void **state)
{
	(void)state;
	char dir[] = "/tmp/boxd-test-admit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct boxd_config cfg;
	char err[512] = "";
	assert_int_equal(config_load(&cfg, NULL, dir, err, sizeof(err)), 0);
	struct store *s = NULL;
	if (store_open_config(&cfg, 0, &s, err, sizeof(err)) < 0)
		fail_msg("store: %s", err);
	static const char *const pending[] = { "pending_install", NULL };
	for (const char *id = "a"; id; id = strcmp(id, "a") == 0 ? "b" : NULL) {
		assert_int_equal(app_insert(s, id, "img", "{}", NULL, NULL), 0);
		assert_int_equal(app_transition(s, id, pending, "installed"), 1);
	}
	struct task_enqueued out;

	/* The flag: stored, read back, shown. */
	struct app a;
	assert_int_equal(app_get(s, "b", &a), 0);
	assert_false(a.stopped);
	app_release(&a);
	assert_int_equal(app_set_stopped(s, "b", true), 0);
	assert_int_equal(app_get(s, "b", &a), 0);
	assert_true(a.stopped);
	json_t *j = app_to_json(&cfg, &a);
	assert_true(json_is_true(json_object_get(j, "stopped")));
	json_decref(j);
	app_release(&a);
	assert_int_equal(app_set_stopped(s, "nosuch", true), -ENOENT);

	/* b is stopped (the row): restart refused, nothing queued. */
	int64_t n = n_tasks(s);
	assert_int_equal(enqueue(s, &cfg, "restart", "b", &out), -EBUSY);
	assert_non_null(strstr(out.message, "is stopped"));
	assert_int_equal(n_tasks(s), n);
	/* Stop and start of an unknown app: not found. */
	assert_int_equal(enqueue(s, &cfg, "start", "nosuch", &out), -ENOENT);
	assert_int_equal(enqueue(s, &cfg, "stop", "nosuch", &out), -ENOENT);

	/* a runs: a stop queued makes a restart after it refused... */
	assert_int_equal(enqueue(s, &cfg, "restart", "a", &out), 0);
	assert_int_equal(enqueue(s, &cfg, "stop", "a", &out), 0);
	n = n_tasks(s);
	assert_int_equal(enqueue(s, &cfg, "restart", "a", &out), -EBUSY);
	assert_non_null(strstr(out.message, "app a is stopped"));
	assert_int_equal(n_tasks(s), n);
	/* ...and a start queued after the stop admits it again. */
	assert_int_equal(enqueue(s, &cfg, "start", "a", &out), 0);
	assert_int_equal(enqueue(s, &cfg, "restart", "a", &out), 0);
	/* The start queued for b: its restart is admitted too. */
	assert_int_equal(enqueue(s, &cfg, "start", "b", &out), 0);
	assert_int_equal(enqueue(s, &cfg, "restart", "b", &out), 0);

	/* An uninstall queued: start and stop refused, naming the state. */
	assert_int_equal(enqueue(s, &cfg, "uninstall", "a", &out), 0);
	assert_int_equal(enqueue(s, &cfg, "stop", "a", &out), -EBUSY);
	assert_non_null(strstr(out.message, "pending_uninstall"));
	assert_int_equal(enqueue(s, &cfg, "start", "a", &out), -EBUSY);

	store_close(s);
	config_release(&cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stopped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
