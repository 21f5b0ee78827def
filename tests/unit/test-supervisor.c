/* test-supervisor.c — the supervisor with a FAKE spawner (fake-spawn.h):
 * a real SQLite store, a real libuv loop, real processes and signals; only
 * the exec of `boxd task run|standby` is replaced by a forked stand-in
 * (the e2e tests run the real worker). Covered: spawn of a claimed task
 * (argv, pid + start time recorded), the end recorded from the worker's
 * exit, stop and timeout (SIGTERM, then SIGKILL after the grace period),
 * and the standby worker: ensured after a spawn, taken by the next task
 * (becoming its worker, or cloning one per task and staying), replaced by
 * an exec when it died, and never doubled by one when it did not answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/timeutil.h"
#include "fixture-supervisor.h"
#include "tasks/supervisor.h"
#include "tasks/task.h"
#include "tasks/task_outcome.h"
#include "tasks/task_type.h"
#include "tasks/worker.h"

struct fx {
	struct fixture_sv w;
	int exits;          /* on_exit calls */
	int64_t last_exit;  /* its task id */
};

static void on_exit_cb(int64_t task_id, const char *app_id, void *userdata)
{
	(void)app_id;
	struct fx *f = userdata;
	f->exits++;
	f->last_exit = task_id;
}

/* Nothing in it runs here: the stand-in is the worker. */
static const struct task_type plain_type = { .name = "test.plain" };

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || fixture_sv_open(&f->w, "supervisor", on_exit_cb, f) < 0)
		return -1;
	task_type_register(&plain_type);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	fixture_sv_close(&f->w);
	free(f);
	return 0;
}

/* supervisor_apply_stops() as the daemon calls it: from a callback of a
 * running loop, whose clock (uv_now, which timers count from) is fresh. */
static void apply_stops(struct fx *f)
{
	uv_update_time(&f->w.loop);
	supervisor_apply_stops(f->w.sv);
}

/* A claimed task, spawned. Returns its id; *ret_pid its worker. */
static int64_t spawn_task(struct fx *f, int64_t timeout_ms, pid_t *ret_pid)
{
	int64_t id = 0;
	assert_int_equal(task_create(f->w.s, "test.plain", NULL, "{}", timeout_ms, &id), 0);
	assert_int_equal(task_claim(f->w.s, id, FIXTURE_SV_HOST), 1);
	struct task t;
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	assert_int_equal(supervisor_spawn(f->w.sv, &t), 0);
	task_release(&t);
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	*ret_pid = t.pid;
	task_release(&t);
	return id;
}

/* pid was our child and has been reaped (by the supervisor): no zombie
 * left. (Not proc_check(): the pid may belong to another process now.) */
static void assert_reaped(pid_t pid)
{
	errno = 0;
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* The final state, error code and message of task id. */
static void assert_end(struct fx *f, int64_t id, enum task_state state, const char *code, const char *msg_part)
{
	struct task t;
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	assert_string_equal(task_state_name(t.state), task_state_name(state));
	if (code)
		assert_string_equal(t.error_code ? t.error_code : "(none)", code);
	if (msg_part) {
		assert_non_null(t.error_message);
		if (!strstr(t.error_message, msg_part))
			fail_msg("task %lld: message \"%s\" lacks \"%s\"", (long long)id, t.error_message, msg_part);
	}
	task_release(&t);
}

/* Log entry i is "HEAD --state-dir <dir> MIDDLE task TAIL", where TAIL is
 * "run <id> <claim>" for task id, or "standby" for id 0. */
static void assert_argv(struct fx *f, int i, const char *head, const char *middle, int64_t id)
{
	char tail[64] = "standby";
	if (id) {
		struct task t;
		assert_int_equal(task_get(f->w.s, id, &t), 0);
		snprintf(tail, sizeof(tail), "run %lld %lld", (long long)id, (long long)t.claim);
		task_release(&t);
	}
	char want[8192];
	snprintf(want, sizeof(want), "%s --state-dir %s%s task %s", head, f->w.db.dir, middle, tail);
	assert_true(i < fake_n);
	assert_string_equal(fake_log[i].argv, want);
}

static void test_spawn_records_the_worker(void **state)
{
	struct fx *f = *state;
	pid_t pid;
	int64_t id = spawn_task(f, 0, &pid);
	/* The first task starts by exec (no standby yet), with the argv of a
	 * worker of this daemon. */
	assert_int_equal(fake_count_runs(), 1);
	assert_argv(f, 0, "boxd", "", id);
	struct task t;
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	assert_int_equal(t.pid, fake_log[0].pid);
	/* pid + start time: what a later daemon re-adopts it by. */
	uint64_t start = 0;
	assert_int_equal(proc_start_time(pid, &start), 0);
	assert_true(t.pid_start == start);
	task_release(&t);
	assert_int_equal(supervisor_count(f->w.sv), 1);
	assert_true(supervisor_watches(f->w.sv, id));
	/* ... and the next task's worker is made ready. */
	assert_int_equal(fake_n, 2);
	assert_true(fake_log[1].standby);
	assert_argv(f, 1, "boxd", "", 0);
}

static void test_config_path_is_passed_on(void **state)
{
	struct fx *f = *state;
	f->w.cfg.config_path = "/etc/boxd/test.conf";
	pid_t pid;
	int64_t id = spawn_task(f, 0, &pid);
	assert_argv(f, 0, "boxd", " --config /etc/boxd/test.conf", id);
	assert_argv(f, 1, "boxd", " --config /etc/boxd/test.conf", 0);
	f->w.cfg.config_path = NULL;
}

static void test_task_user_runs_through_sudo_without_standby(void **state)
{
	struct fx *f = *state;
	f->w.cfg.task_user = "boxd-worker";
	pid_t pid;
	int64_t id = spawn_task(f, 0, &pid);
	assert_argv(f, 0, "sudo -n -u boxd-worker -- /nonexistent/boxd", "", id);
	assert_int_equal(fake_n, 1); /* sudo would close the standby's socket */
	f->w.cfg.task_user = NULL;
}

static void test_exit_outcomes(void **state)
{
	struct fx *f = *state;
	struct {
		int sig;
		enum task_state state;
		const char *code, *msg;
	} cases[] = {
		{ SIGUSR1, TASK_FAILED, TASK_ERR_CRASHED, "the worker exited without recording a result" },
		{ SIGKILL, TASK_FAILED, TASK_ERR_CRASHED, "killed by signal 9" },
		{ SIGUSR2, TASK_SUCCEEDED, NULL, NULL }, /* WORKER_EXIT_UNRECORDED_SUCCEEDED */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid_t pid;
		int64_t id = spawn_task(f, 0, &pid);
		int exits = f->exits;
		assert_true(supervisor_watches(f->w.sv, id));
		assert_int_equal(kill(pid, cases[i].sig), 0);
		assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id));
		assert_end(f, id, cases[i].state, cases[i].code, cases[i].msg);
		assert_false(supervisor_watches(f->w.sv, id));
		assert_int_equal(f->exits, exits + 1);
		assert_int_equal(f->last_exit, id);
		assert_reaped(pid);
	}
	assert_int_equal(supervisor_count(f->w.sv), 0);
}

/* A worker that left its outcome in its log (task_outcome.h) and then died
 * (killed while it retried recording it) ends with that outcome, not as a
 * crash. */
static void test_outcome_from_the_log(void **state)
{
	struct fx *f = *state;
	pid_t pid;
	int64_t id = spawn_task(f, 0, &pid);
	struct task_outcome o = { .state = TASK_FAILED };
	snprintf(o.error_code, sizeof(o.error_code), "engine_error");
	snprintf(o.error_message, sizeof(o.error_message), "the engine said no");
	assert_int_equal(task_outcome_write(f->w.cfg.state_dir, id, &o), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id));
	assert_end(f, id, TASK_FAILED, "engine_error", "the engine said no");
	assert_reaped(pid);
}

static void test_stop_request_terminates(void **state)
{
	struct fx *f = *state;
	pid_t pid;
	int64_t id = spawn_task(f, 0, &pid);
	assert_int_equal(task_request_stop(f->w.s, id, "stopped"), 1);
	apply_stops(f);
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id));
	assert_end(f, id, TASK_CANCELLED, TASK_ERR_STOPPED, "stopped by request");
}

static void test_stop_kills_after_the_grace_period(void **state)
{
	struct fx *f = *state;
	f->w.cfg.stop_grace_ms = 300;
	fake->ignore_term = 1;
	pid_t pid;
	int64_t id = spawn_task(f, 0, &pid);
	assert_int_equal(task_request_stop(f->w.s, id, "stopped"), 1);
	int64_t t0 = now_mono_ms();
	apply_stops(f);
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id));
	/* SIGTERM was ignored: only the SIGKILL after the grace ended it. */
	assert_true(now_mono_ms() - t0 >= 300);
	assert_end(f, id, TASK_CANCELLED, TASK_ERR_STOPPED, NULL);
	assert_reaped(pid);
}

static void test_timeout_stops_the_worker(void **state)
{
	struct fx *f = *state;
	pid_t pid;
	int64_t id = spawn_task(f, 200, &pid);
	/* The timeout counts from startedAt, which the worker sets once it
	 * holds its locks; the stand-in does not, so do it here. */
	assert_int_equal(task_set_running(f->w.s, id), 1);
	int64_t t0 = now_mono_ms();
	apply_stops(f); /* arms the timeout */
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id));
	assert_true(now_mono_ms() - t0 >= 150);
	assert_end(f, id, TASK_FAILED, TASK_ERR_TIMEOUT, "longer than its timeout");
}

static void test_standby_is_taken_by_the_next_task(void **state)
{
	struct fx *f = *state;
	pid_t pid1, pid2;
	spawn_task(f, 0, &pid1);
	pid_t standby = fake_last_standby();
	assert_true(standby > 0);
	int64_t id2 = spawn_task(f, 0, &pid2);
	/* Task 2 went to the standby worker: no exec, its pid is the task's. */
	assert_int_equal(fake_count_runs(), 1);
	assert_int_equal(pid2, standby);
	struct task t;
	assert_int_equal(task_get(f->w.s, id2, &t), 0);
	/* The standby got the task's id and claim over its socket. */
	int64_t until = now_mono_ms() + 10000;
	while (fake->n_taken < 1 && now_mono_ms() < until)
		usleep(5000);
	assert_int_equal(fake->n_taken, 1);
	assert_int_equal(fake->taken[0].pid, standby);
	assert_int_equal(fake->taken[0].task_id, id2);
	assert_int_equal(fake->taken[0].claim, t.claim);
	task_release(&t);
	/* A new standby is made ready for the task after. */
	assert_true(fake_last_standby() != standby);
	/* And it is watched like any worker: its end is recorded. */
	kill(pid2, SIGUSR2);
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id2));
	assert_end(f, id2, TASK_SUCCEEDED, NULL, NULL);
}

static void test_dead_standby_falls_back_to_exec(void **state)
{
	struct fx *f = *state;
	pid_t pid1, pid2;
	spawn_task(f, 0, &pid1);
	pid_t standby = fake_last_standby();
	assert_int_equal(kill(standby, SIGKILL), 0);
	/* Dead (its socket closed), not reaped: the supervisor does that. */
	siginfo_t info = { 0 };
	assert_int_equal(waitid(P_PID, (id_t)standby, &info, WEXITED | WNOWAIT), 0);
	int64_t id2 = spawn_task(f, 0, &pid2);
	assert_int_equal(fake_count_runs(), 2);
	assert_true(pid2 != standby);
	/* The dead standby was reaped (no zombie); task 2 runs. */
	assert_reaped(standby);
	assert_int_equal(waitpid(pid2, NULL, WNOHANG), 0);
	assert_true(supervisor_watches(f->w.sv, id2));
}

/* The standby clones each task's worker as our child and stays: no exec
 * and no new standby per task, and the workers are watched, ended and
 * reaped like those started by exec. */
static void test_standby_clones_a_worker_per_task(void **state)
{
	struct fx *f = *state;
	fake->standby_clones = 1;
	pid_t pid1, pid2, pid3;
	spawn_task(f, 0, &pid1);
	pid_t standby = fake_last_standby();
	assert_true(standby > 0);
	int spawned = fake_n;
	int64_t id2 = spawn_task(f, 0, &pid2);
	int64_t id3 = spawn_task(f, 0, &pid3);
	assert_int_equal(fake_n, spawned); /* no exec, no new standby */
	assert_int_equal(fake_last_standby(), standby);
	assert_true(pid2 != standby && pid3 != standby && pid2 != pid3);
	assert_int_equal(fake->n_taken, 2);
	assert_int_equal(fake->taken[0].task_id, id2);
	assert_int_equal(fake->taken[0].pid, pid2);
	assert_int_equal(fake->taken[1].task_id, id3);
	assert_int_equal(fake->taken[1].pid, pid3);
	/* pid + start time recorded, as for a worker started by exec. */
	struct task t;
	uint64_t start = 0;
	assert_int_equal(task_get(f->w.s, id2, &t), 0);
	assert_int_equal(proc_start_time(pid2, &start), 0);
	assert_true(t.pid_start == start);
	task_release(&t);
	assert_true(supervisor_watches(f->w.sv, id2));
	assert_true(supervisor_watches(f->w.sv, id3));
	/* Our children: their exit status is read (73: succeeded, unrecorded)
	 * and they are reaped. */
	kill(pid2, SIGUSR2);
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id2));
	assert_end(f, id2, TASK_SUCCEEDED, NULL, NULL);
	assert_reaped(pid2);
	kill(pid3, SIGKILL);
	assert_true(fixture_sv_run_until(&f->w, fixture_sv_is_final, id3));
	assert_end(f, id3, TASK_FAILED, TASK_ERR_CRASHED, "killed by signal 9");
	assert_reaped(pid3);
	/* The standby still waits for the next task. */
	assert_int_equal(waitpid(standby, NULL, WNOHANG), 0);
}

/* A standby that takes the task but does not answer may have started a
 * worker: no second one is started; it is stopped and reaped, and the
 * task is left to the reconcile. */
static void test_mute_standby_starts_no_second_worker(void **state)
{
	struct fx *f = *state;
	pid_t pid1;
	spawn_task(f, 0, &pid1);
	pid_t standby = fake_last_standby();
	fake->standby_mute = 1;
	int runs = fake_count_runs();
	int64_t id = 0;
	assert_int_equal(task_create(f->w.s, "test.plain", NULL, "{}", 0, &id), 0);
	assert_int_equal(task_claim(f->w.s, id, FIXTURE_SV_HOST), 1);
	struct task t;
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	assert_int_equal(supervisor_spawn(f->w.sv, &t), -EINPROGRESS);
	task_release(&t);
	assert_int_equal(fake_count_runs(), runs); /* no exec */
	assert_false(supervisor_watches(f->w.sv, id));
	assert_reaped(standby);
	/* Still queued and claimed, for the reconcile to look at. */
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	assert_int_equal(t.state, TASK_QUEUED);
	assert_true(t.pid <= 0);
	task_release(&t);
	fake->standby_mute = 0;
}

static void test_spawn_failure_fails_the_task(void **state)
{
	struct fx *f = *state;
	int64_t id = 0;
	f->w.cfg.task_user = "nobody"; /* no standby: the spawn itself fails */
	assert_int_equal(task_create(f->w.s, "test.plain", NULL, "{}", 0, &id), 0);
	assert_int_equal(task_claim(f->w.s, id, FIXTURE_SV_HOST), 1);
	struct task t;
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	fake_fail_next = -ENOEXEC;
	assert_int_equal(supervisor_spawn(f->w.sv, &t), -ENOEXEC);
	task_release(&t);
	assert_end(f, id, TASK_FAILED, "spawn_failed", "cannot start the worker");
	assert_int_equal(supervisor_count(f->w.sv), 0);
	f->w.cfg.task_user = NULL;
}

/* A task this host's earlier boot claimed and ran: after the reboot its
 * pid + start time may name a live process again (start times count from
 * boot). The reconcile never adopts it: the task ended, crashed. A live
 * child of this test plays that process. */
static void test_reconcile_ends_a_task_of_an_earlier_boot(void **state)
{
	struct fx *f = *state;
	int64_t id = 0;
	assert_int_equal(task_create(f->w.s, "test.plain", NULL, "{}", 0, &id), 0);
	assert_int_equal(task_claim(f->w.s, id, "host-a/000000000000"), 1);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		alarm(30); /* gone by itself should the test fail before its kill */
		pause();
		_exit(0);
	}
	uint64_t start = 0;
	assert_int_equal(proc_start_time(child, &start), 0);
	struct task t;
	assert_int_equal(task_get(f->w.s, id, &t), 0);
	assert_int_equal(task_register_worker(f->w.s, id, t.claim, "host-a/000000000000", child, start), 1);
	task_release(&t);
	assert_int_equal(task_set_running(f->w.s, id), 1);

	struct supervisor_reconcile_report rep = { 0 };
	assert_int_equal(supervisor_reconcile(f->w.sv, &rep), 0);
	assert_int_equal(rep.adopted, 0);
	assert_int_equal(rep.ended, 1);
	assert_false(supervisor_watches(f->w.sv, id));
	assert_true(fixture_sv_is_final(&f->w, id));
	assert_end(f, id, TASK_FAILED, NULL, NULL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spawn_records_the_worker, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_config_path_is_passed_on, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_task_user_runs_through_sudo_without_standby, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_exit_outcomes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_outcome_from_the_log, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stop_request_terminates, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stop_kills_after_the_grace_period, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_timeout_stops_the_worker, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_standby_is_taken_by_the_next_task, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dead_standby_falls_back_to_exec, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_standby_clones_a_worker_per_task, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mute_standby_starts_no_second_worker, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_spawn_failure_fails_the_task, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_ends_a_task_of_an_earlier_boot, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
