/* test-sched.c — the scheduler's queue rules (sched.h) on a real SQLite
 * store, with the real supervisor and a FAKE spawner (fake-spawn.h: forked
 * stand-in workers instead of an exec of boxd):
 *   - app tasks queue per app, FIFO: the second task of an app starts only
 *     after the first ended, and another app's task is not held behind it;
 *   - at most [tasks] app_concurrency app tasks run at once; other types
 *     do not count and start at once;
 *   - a task stopped while queued is cancelled without starting;
 *   - a task to run on another host (tasks.run_on) is left to it;
 *   - an app placed on another host (apps.host) has its tasks claimed
 *     there only; here they stay queued, with waitingFor naming that host
 *     while it is gone (no heartbeat row), cleared once it beats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "common/timeutil.h"
#include "fixture-supervisor.h"
#include "sched/hosts.h"
#include "sched/sched.h"
#include "tasks/supervisor.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"

static const struct task_type app_type = { .name = "test.app", .app_task = true };
static const struct task_type plain_type = { .name = "test.plain" };

struct fx {
	struct fixture_sv w;
	struct sched *sc;
};

/* As the daemon does (serve.c): a worker's end asks for a pass. */
static void on_exit_cb(int64_t task_id, const char *app_id, void *userdata)
{
	(void)task_id;
	(void)app_id;
	struct fx *f = userdata;
	sched_kick(f->sc);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || fixture_sv_open(&f->w, "sched", on_exit_cb, f) < 0)
		return -1;
	f->w.cfg.app_task_concurrency = 2;
	struct sched_opts sco = { .loop = &f->w.loop, .store = f->w.s, .supervisor = f->w.sv, .config = &f->w.cfg,
				  .host = FIXTURE_SV_HOST };
	if (sched_new(&sco, &f->sc) < 0)
		return -1;
	task_type_register(&app_type);
	task_type_register(&plain_type);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	sched_close(f->sc); /* its handles close in the fixture's last loop run */
	fixture_sv_close(&f->w);
	sched_free(f->sc);
	free(f);
	return 0;
}

static int64_t queue(struct fx *f, const char *type, const char *app)
{
	int64_t id = 0;
	assert_int_equal(task_create(f->w.s, type, app, "{}", 0, &id), 0);
	return id;
}

static bool started(struct fixture_sv *w, int64_t id) { return fixture_sv_worker(w, id) > 0; }

/* End task id's worker (exit 0) and run the loop until its end is recorded. */
static void end_worker(struct fx *f, int64_t id)
{
	pid_t pid = fixture_sv_worker(&f->w, id);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGUSR1), 0);
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id));
}

static void test_per_app_fifo(void **state)
{
	struct fx *f = *state;
	int64_t a1 = queue(f, "test.app", "a");
	int64_t a2 = queue(f, "test.app", "a");
	int64_t b1 = queue(f, "test.app", "b");
	assert_int_equal(sched_pass(f->sc), 2);
	assert_true(started(&f->w, a1));
	assert_false(started(&f->w, a2)); /* behind a1 */
	assert_true(started(&f->w, b1));  /* not held behind app a's queue */
	assert_int_equal(fixture_sv_state(&f->w, a2), TASK_QUEUED);
	/* Passes while a1 runs do not start a2. */
	assert_int_equal(sched_pass(f->sc), 0);
	assert_false(started(&f->w, a2));
	/* b1 ending does not free app a either. */
	end_worker(f, b1);
	assert_int_equal(sched_pass(f->sc), 0);
	assert_false(started(&f->w, a2));
	/* a1's end kicks a pass (on_exit), which starts a2. */
	end_worker(f, a1);
	assert_true(fixture_sv_run_until(&f->w, started, a2));
}

static void test_fifo_order_within_an_app(void **state)
{
	struct fx *f = *state;
	int64_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = queue(f, "test.app", "a");
	assert_int_equal(sched_pass(f->sc), 1);
	for (int i = 0; i < 4; i++) {
		assert_true(fixture_sv_run_until(&f->w, started, ids[i]));
		for (int j = i + 1; j < 4; j++)
			assert_false(started(&f->w, ids[j]));
		end_worker(f, ids[i]);
	}
}

static void test_concurrency_cap(void **state)
{
	struct fx *f = *state;
	/* app_concurrency 2: three apps ready, two start. */
	int64_t a = queue(f, "test.app", "a");
	int64_t b = queue(f, "test.app", "b");
	int64_t c = queue(f, "test.app", "c");
	int64_t other = queue(f, "test.plain", NULL);
	assert_int_equal(sched_pass(f->sc), 3);
	assert_true(started(&f->w, a));
	assert_true(started(&f->w, b));
	assert_false(started(&f->w, c));
	/* Other types do not count against the cap. */
	assert_true(started(&f->w, other));
	assert_int_equal(supervisor_count_app_tasks(f->w.sv, NULL), 2);
	assert_int_equal(sched_pass(f->sc), 0);
	assert_false(started(&f->w, c));
	/* A non-app task ending frees no app slot. */
	end_worker(f, other);
	assert_int_equal(sched_pass(f->sc), 0);
	assert_false(started(&f->w, c));
	end_worker(f, a);
	assert_true(fixture_sv_run_until(&f->w, started, c));
	assert_int_equal(supervisor_count_app_tasks(f->w.sv, NULL), 2);
}

static void test_stopped_while_queued_never_starts(void **state)
{
	struct fx *f = *state;
	int64_t a1 = queue(f, "test.app", "a");
	int64_t a2 = queue(f, "test.app", "a");
	assert_int_equal(task_request_stop(f->w.s, a1, "stopped"), 1);
	assert_int_equal(sched_pass(f->sc), 1);
	assert_false(started(&f->w, a1));
	assert_int_equal(fixture_sv_state(&f->w, a1), TASK_CANCELLED);
	/* The cancelled one does not hold its app's queue. */
	assert_true(started(&f->w, a2));
	assert_int_equal(fake_count_runs(), 1);
}

/* tasks.run_on (a move's steps, backups/app_move.h): only the host it
 * names claims the task; the host id is the owner id's first part. */
static int64_t queue_on(struct fx *f, const char *run_on)
{
	struct task_enqueue e = { .type = "test.plain", .run_on = run_on };
	struct task_enqueued out;
	assert_int_equal(task_enqueue(f->w.s, &f->w.cfg, &e, &out), 0);
	return out.id;
}

static void test_run_on_another_host_is_left(void **state)
{
	struct fx *f = *state;
	int64_t other = queue_on(f, "host-b");
	int64_t mine = queue_on(f, "host-a");
	int64_t any = queue_on(f, NULL);
	assert_int_equal(sched_pass(f->sc), 2);
	assert_true(started(&f->w, mine));
	assert_true(started(&f->w, any));
	assert_false(started(&f->w, other));
	assert_int_equal(fixture_sv_state(&f->w, other), TASK_QUEUED);
	assert_int_equal(sched_pass(f->sc), 0);
	assert_false(started(&f->w, other));
}

static void test_placed_app_runs_only_on_its_host(void **state)
{
	struct fx *f = *state;
	assert_int_equal(app_insert(f->w.s, "here", "img", "{}", NULL, "host-a"), 0);
	assert_int_equal(app_insert(f->w.s, "there", "img", "{}", NULL, "host-b"), 0);
	assert_int_equal(app_insert(f->w.s, "old", "img", "{}", NULL, NULL), 0);
	int64_t there = queue(f, "test.app", "there");
	int64_t here = queue(f, "test.app", "here");
	int64_t old = queue(f, "test.app", "old");
	assert_int_equal(sched_pass(f->sc), 2);
	assert_true(started(&f->w, here));
	assert_true(started(&f->w, old)); /* not placed: any host, as before */
	assert_false(started(&f->w, there));
	struct task t;
	assert_int_equal(task_get(f->w.s, there, &t), 0);
	assert_int_equal(t.state, TASK_QUEUED);
	assert_null(t.host);
	assert_non_null(t.waiting_for); /* host-b never beat: gone */
	assert_string_equal(t.waiting_for, "{\"host\":\"host-b\",\"reason\":\"host_gone\"}");
	json_t *j = task_to_json(&t);
	assert_string_equal(json_string_value(json_object_get(j, "host")), "host-b"); /* where it will run */
	json_decref(j);
	task_release(&t);
	/* host-b beats: the wait is cleared; the task is still not ours. */
	struct host_beat b = { .id = "host-b", .owner_id = "host-b/000000000000", .version = "test" };
	assert_int_equal(hosts_heartbeat(f->w.s, &b), 0);
	assert_int_equal(sched_pass(f->sc), 0);
	assert_int_equal(task_get(f->w.s, there, &t), 0);
	assert_int_equal(t.state, TASK_QUEUED);
	assert_null(t.waiting_for);
	task_release(&t);
	assert_false(started(&f->w, there));
}

/* A box from before placement (apps.host NULL) that has been one host:
 * its apps are placed on it at its start; once another host has beaten,
 * nothing is guessed. */
static void test_unplaced_apps_adopted_by_the_only_host(void **state)
{
	struct fx *f = *state;
	assert_int_equal(app_insert(f->w.s, "old1", "img", "{}", NULL, NULL), 0);
	assert_int_equal(app_insert(f->w.s, "placed", "img", "{}", NULL, "host-c"), 0);
	struct host_beat a = { .id = "host-a", .owner_id = "host-a/000000000000", .version = "test" };
	assert_int_equal(hosts_heartbeat(f->w.s, &a), 0);
	int64_t n = -1;
	assert_int_equal(hosts_adopt_unplaced_apps(f->w.s, "host-a", &n), 0);
	assert_int_equal(n, 1);
	struct app app;
	assert_int_equal(app_get(f->w.s, "old1", &app), 0);
	assert_string_equal(app.host, "host-a");
	app_release(&app);
	assert_int_equal(app_get(f->w.s, "placed", &app), 0);
	assert_string_equal(app.host, "host-c"); /* placed apps stay */
	app_release(&app);

	assert_int_equal(app_insert(f->w.s, "old2", "img", "{}", NULL, NULL), 0);
	struct host_beat b = { .id = "host-b", .owner_id = "host-b/000000000000", .version = "test" };
	assert_int_equal(hosts_heartbeat(f->w.s, &b), 0);
	assert_int_equal(hosts_adopt_unplaced_apps(f->w.s, "host-a", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(app_get(f->w.s, "old2", &app), 0);
	assert_null(app.host);
	app_release(&app);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_per_app_fifo, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fifo_order_within_an_app, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrency_cap, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stopped_while_queued_never_starts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_run_on_another_host_is_left, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_placed_app_runs_only_on_its_host, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unplaced_apps_adopted_by_the_only_host, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
