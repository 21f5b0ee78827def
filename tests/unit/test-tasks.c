/* test-tasks.c — how a task comes to exist and how the active ones are
 * found (tasks/task_enqueue.h, task_find_active() in tasks/task.h), on a
 * real SQLite file: filters of task_find_active(), the timeout from the
 * config, admission hooks that refuse (and whose writes are rolled back),
 * join, the `created` hook, the claim, and two processes that ask for a
 * full backup at once (the admission and the insert are one transaction:
 * exactly one of them gets it).
 *
 * Backends: SQLite by default; BOXD_TEST_STORE=mysql or postgres runs the
 * same tests on a fresh database of the server that BOXD_TEST_MYSQL_DSN /
 * BOXD_TEST_PG_DSN name (created and dropped per test) — skipped (exit
 * status 77) when that variable is not set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backups/backup_admit.h"
#include "common/config.h"
#include "common/timeutil.h"
#include "locks/lock_doc.h"
#include "store/store.h"
#include "tasks/host_liveness.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"
#include "fixture-store.h"

struct fx {
	char dir[256];
	char path[1024]; /* SQLite: the file; a server backend: the DSN */
	char dbname[64];
	struct store *s;
	struct boxd_config cfg;
};

static enum store_backend test_backend = STORE_BACKEND_SQLITE;
static const char *admin_dsn;
static int db_counter;

/* ---- fixture ------------------------------------------------------------ */

static int open_db(const char *path, struct store **ret)
{
	struct store_options o = { .backend = test_backend, .sqlite_path = path, .dsn = path };
	char err[512] = "";
	int r = store_open(&o, ret, err, sizeof(err));
	if (r < 0)
		print_error("store_open(%s): %s\n", path, err);
	return r;
}


static int server_db(struct fx *f, bool create)
{
	struct store_options o = { .backend = test_backend, .dsn = admin_dsn, .no_migrate = true };
	struct store *admin;
	char err[512], sql[256];
	if (store_open(&o, &admin, err, sizeof(err)) < 0) {
		print_error("cannot connect to %s: %s\n", admin_dsn, err);
		return -1;
	}
	if (create) {
		snprintf(f->dbname, sizeof(f->dbname), "boxd_test_tasks_%d_%d", (int)getpid(), ++db_counter);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s%s", f->dbname,
			 test_backend == STORE_BACKEND_MYSQL ? " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" : "");
		fixture_dsn_for(admin_dsn, f->dbname, f->path, sizeof(f->path));
	} else {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s%s", f->dbname,
			 test_backend == STORE_BACKEND_POSTGRES ? " WITH (FORCE)" : "");
	}
	int r = store_run(admin, sql, NULL) < 0 ? -1 : 0;
	if (r < 0)
		print_error("%s: %s\n", sql, store_errmsg(admin));
	store_close(admin);
	return r;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/boxd-test-tasks-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/boxd.db", f->dir);
	if ((test_backend != STORE_BACKEND_SQLITE && server_db(f, true) < 0) || open_db(f->path, &f->s) < 0) {
		if (f->dbname[0])
			server_db(f, false);
		rmdir(f->dir);
		free(f);
		return -1;
	}
	f->cfg.default_timeout_ms = 6 * 3600 * 1000LL;
	snprintf(f->cfg.timeouts[0].type, sizeof(f->cfg.timeouts[0].type), "fullbackup");
	f->cfg.timeouts[0].ms = 1234000;
	f->cfg.n_timeouts = 1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	if (f->dbname[0])
		server_db(f, false);
	char p[1100];
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static int64_t create(struct fx *f, const char *type, const char *app)
{
	struct task_enqueue e = { .type = type, .app_id = app };
	struct task_enqueued out;
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &out), 0);
	assert_false(out.joined);
	assert_true(out.id > 0);
	return out.id;
}

static int64_t count(struct fx *f, const char *sql)
{
	int64_t n = -1;
	assert_int_equal(store_query_int64(f->s, &n, sql, NULL), 0);
	return n;
}

/* ---- task_find_active ---------------------------------------------------- */

static int64_t find(struct fx *f, const struct task_match *m)
{
	struct task t;
	int r = task_find_active(f->s, m, &t);
	if (r == -ENOENT)
		return 0;
	assert_int_equal(r, 0);
	int64_t id = t.id;
	task_release(&t);
	return id;
}

static bool accept_even(const struct task *t, void *userdata)
{
	(void)userdata;
	return t->id % 2 == 0;
}

static void test_find_active_filters(void **state)
{
	struct fx *f = *state;
	int64_t a1 = create(f, "restart", "wiki");
	int64_t b1 = create(f, "fullbackup", NULL);
	int64_t a2 = create(f, "configure", "wiki");
	int64_t c1 = create(f, "backup", "blog");
	int64_t done = create(f, "fullbackup", NULL);
	assert_int_equal(task_finish(f->s, done, TASK_SUCCEEDED, NULL, NULL, NULL), 1);

	assert_int_equal(find(f, &(struct task_match){ 0 }), a1);
	assert_int_equal(find(f, &(struct task_match){ .newest_first = true }), c1);
	assert_int_equal(find(f, &(struct task_match){ .type = "fullbackup" }), b1); /* not the ended one */
	assert_int_equal(find(f, &(struct task_match){ .app_id = "wiki", .newest_first = true }), a2);
	assert_int_equal(find(f, &(struct task_match){ .app_id = "nope" }), 0);
	assert_int_equal(find(f, &(struct task_match){ .type = "restart", .app_id = "blog" }), 0);
	assert_int_equal(find(f, &(struct task_match){ .accept = accept_even }), a1 % 2 == 0 ? a1 : b1);

	int64_t n = -1;
	assert_int_equal(task_count_active(f->s, &(struct task_match){ 0 }, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(task_count_active(f->s, &(struct task_match){ .app_tasks = true }, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(task_count_active(f->s, &(struct task_match){ .type = "fullbackup" }, &n), 0);
	assert_int_equal(n, 1);

	/* States: running, and a stop asked for, are not "not started". */
	assert_int_equal(task_claim(f->s, a1, "h1"), 1);
	assert_int_equal(task_set_running(f->s, a1), 1);
	assert_int_equal(task_request_stop(f->s, b1, "stopped"), 1);
	assert_int_equal(find(f, &(struct task_match){ .not_started = true }), a2);
	assert_int_equal(find(f, &(struct task_match){ .only_state = true, .state = TASK_RUNNING }), a1);
	assert_int_equal(task_count_active(f->s, &(struct task_match){ .only_state = true, .state = TASK_QUEUED }, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(find(f, &(struct task_match){ .host = "h1" }), a1);
	assert_int_equal(find(f, &(struct task_match){ .host = "h2" }), 0);
}

/* ---- a reaped lease ---------------------------------------------------------- */

/* Host `id`'s heartbeat, `age_ms` old by the database's clock. */
static void beat(struct fx *f, const char *id, int64_t age_ms)
{
	int64_t now;
	assert_int_equal(store_now_ms(f->s, &now), 0);
	assert_true(store_run(f->s, "DELETE FROM hosts WHERE id = ?", "s", id) >= 0);
	assert_int_equal(store_run(f->s,
				   "INSERT INTO hosts (id, owner_id, version, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
				   "sssii", id, id, "test", now - 60000, now - age_ms),
			 1);
}

/* Issue 16: another host reaped the lease of a task's worker. The task is
 * failed only when the worker's host is gone too; while the host beats,
 * the task is its own host's to end (a waiter whose renewal was only late
 * queues again instead of losing its task). */
static void test_reaped_task_fails_only_when_its_host_is_gone(void **state)
{
	struct fx *f = *state;
	int64_t t1 = create(f, "restart", "wiki"), t2 = create(f, "restart", "blog");
	assert_int_equal(task_claim(f->s, t1, "host-x/boot00000001"), 1);
	assert_int_equal(task_set_running(f->s, t1), 1);
	assert_int_equal(task_claim(f->s, t2, "host-y/boot00000001"), 1);

	beat(f, "host-x", 1000);
	assert_int_equal(task_fail_host_gone(f->s, t1, "host-x/boot00000001", 50), 0);
	struct task t;
	assert_int_equal(task_get(f->s, t1, &t), 0);
	assert_int_equal(t.state, TASK_RUNNING);
	task_release(&t);

	beat(f, "host-x", HOST_LEASE_MS + 1000);
	assert_int_equal(task_fail_host_gone(f->s, t1, "host-x/boot00000001", 50), 1);
	assert_int_equal(task_get(f->s, t1, &t), 0);
	assert_int_equal(t.state, TASK_FAILED);
	assert_string_equal(t.error_code, TASK_ERR_CRASHED);
	task_release(&t);

	/* A host that never beat is gone; a claim of another host is not
	 * this owner's to fail. */
	assert_int_equal(task_fail_host_gone(f->s, t2, "host-x/boot00000001", 50), 0);
	assert_int_equal(task_fail_host_gone(f->s, t2, "host-y/boot00000001", 50), 1);
}

/* host_liveness(): no row is unknown (its age untouched), a heartbeat
 * younger than HOST_LEASE_MS alive, one that old or older gone; and the
 * reaper's clause inside its UPDATE judges a host the same way. */
static void test_host_liveness_is_the_reapers_rule(void **state)
{
	struct fx *f = *state;
	enum host_state hs = HOST_ALIVE;
	int64_t age = -42;
	assert_int_equal(host_liveness(f->s, "host-u", &hs, &age), 0);
	assert_int_equal(hs, HOST_UNKNOWN);
	assert_int_equal(age, -42);

	beat(f, "host-u", 1000);
	assert_int_equal(host_liveness(f->s, "host-u", &hs, &age), 0);
	assert_int_equal(hs, HOST_ALIVE);
	assert_true(age >= 1000 && age < HOST_LEASE_MS);
	assert_int_equal(host_liveness(f->s, "host-u", &hs, NULL), 0);
	assert_int_equal(hs, HOST_ALIVE);
	int64_t t = create(f, "restart", "wiki");
	assert_int_equal(task_claim(f->s, t, "host-u/boot00000001"), 1);
	assert_int_equal(task_fail_host_gone(f->s, t, "host-u/boot00000001", 50), 0);

	beat(f, "host-u", HOST_LEASE_MS);
	assert_int_equal(host_liveness(f->s, "host-u", &hs, &age), 0);
	assert_int_equal(hs, HOST_GONE);
	assert_true(age >= HOST_LEASE_MS);
	assert_int_equal(task_fail_host_gone(f->s, t, "host-u/boot00000001", 50), 1);
}

static enum task_state state_of(struct fx *f, int64_t id)
{
	struct task t;
	assert_int_equal(task_get(f->s, id, &t), 0);
	enum task_state st = t.state;
	task_release(&t);
	return st;
}

/* The sweep ends only the tasks no reap will end: claimed by another host
 * that is gone for TASK_SWEEP_GONE_MS, holding no lock and waiting for
 * none. A task in the document is the reaper's, a live host's is its own,
 * and this host's are its supervisor's. */
static void test_sweep_ends_lockless_tasks_of_gone_hosts(void **state)
{
	struct fx *f = *state;
	int64_t lockless = create(f, "restart", "a"), holding = create(f, "restart", "b");
	int64_t alive = create(f, "restart", "c"), mine = create(f, "restart", "d"), recent = create(f, "restart", "e");
	assert_int_equal(task_claim(f->s, lockless, "host-z/boot00000001"), 1);
	assert_int_equal(task_claim(f->s, holding, "host-z/boot00000001"), 1);
	assert_int_equal(task_claim(f->s, alive, "host-w/boot00000001"), 1);
	assert_int_equal(task_claim(f->s, mine, "host-self/boot00000001"), 1);
	assert_int_equal(task_claim(f->s, recent, "host-v/boot00000001"), 1);
	int64_t all[] = { lockless, holding, alive, mine, recent };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(task_set_running(f->s, all[i]), 1);
	beat(f, "host-z", TASK_SWEEP_GONE_MS + 1000);
	beat(f, "host-w", 1000);
	beat(f, "host-v", HOST_LEASE_MS + 1000); /* gone, but not for long */

	struct lock_doc doc;
	lock_doc_init(&doc);
	struct lock_owner o = { .task_id = holding, .pid = 4242, .start_time = 1 };
	snprintf(o.host, sizeof(o.host), "host-z/boot00000001");
	struct lock_req req = { .name = "app:b", .mode = LOCK_EXCLUSIVE };
	assert_int_equal(lock_doc_acquire(&doc, &o, &req, 1, NULL, 1000, 60000, NULL), 1);

	int n = -1;
	assert_int_equal(task_sweep_gone_hosts(f->s, &doc, "host-self/boot00000002", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(state_of(f, lockless), TASK_FAILED);
	assert_int_equal(state_of(f, holding), TASK_RUNNING);
	assert_int_equal(state_of(f, alive), TASK_RUNNING);
	assert_int_equal(state_of(f, mine), TASK_RUNNING);
	assert_int_equal(state_of(f, recent), TASK_RUNNING);
	lock_doc_release(&doc);
}

/* ---- task_enqueue ---------------------------------------------------------- */

static void test_enqueue_timeout_args_and_claim(void **state)
{
	struct fx *f = *state;
	struct task_enqueue e = { .type = "fullbackup" };
	struct task_enqueued out;
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &out), 0);
	struct task t;
	assert_int_equal(task_get(f->s, out.id, &t), 0);
	assert_int_equal(t.state, TASK_QUEUED);
	assert_int_equal(t.timeout_ms, 1234000); /* [timeouts] fullbackup */
	assert_string_equal(t.args, "{}");
	assert_null(t.host);
	task_release(&t);

	e = (struct task_enqueue){ .type = "hold", .args_json = "{\"seconds\":1}", .claim_host = "hostA" };
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &out), 0);
	assert_int_equal(task_get(f->s, out.id, &t), 0);
	assert_int_equal(t.timeout_ms, 6 * 3600 * 1000LL); /* [timeouts] default */
	assert_string_equal(t.args, "{\"seconds\":1}");
	assert_non_null(t.host);
	assert_string_equal(t.host, "hostA");
	assert_true(t.claim != 0);
	task_release(&t);
}

/* Writes a task of its own, then refuses: neither row may stay. */
static int admit_write_then_refuse(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	int64_t id;
	int r = task_create(s, "scratch", NULL, "{}", 0, &id);
	if (r < 0)
		return r;
	ret->id = id;
	ret->code = "wrong_thing";
	snprintf(ret->message, sizeof(ret->message), "no %s today", e->type);
	return -EPERM;
}

static void test_enqueue_refusal_rolls_back(void **state)
{
	struct fx *f = *state;
	struct task_enqueue e = { .type = "install", .app_id = "wiki", .admit = admit_write_then_refuse };
	struct task_enqueued out;
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &out), -EPERM);
	assert_string_equal(out.message, "no install today");
	assert_string_equal(out.code, "wrong_thing");
	assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks"), 0);
}

/* A store error in the hook is no refusal: no message, nothing stored. */
static int admit_store_error(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	(void)e;
	ret->code = "x";
	int64_t n = store_run(s, "SELECT no_such_column FROM tasks", NULL);
	return n < 0 ? (int)n : -EIO;
}

static void test_enqueue_store_error_is_no_refusal(void **state)
{
	struct fx *f = *state;
	struct task_enqueue e = { .type = "fullbackup", .admit = admit_store_error };
	struct task_enqueued out;
	int r = task_enqueue(f->s, &f->cfg, &e, &out);
	assert_true(r < 0);
	assert_string_equal(out.message, "");
	assert_null(out.code);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks"), 0);
}

static void test_enqueue_full_backup_one_at_a_time(void **state)
{
	struct fx *f = *state;
	struct task_enqueue e = { .type = "fullbackup", .admit = backups_admit_full };
	struct task_enqueued first, second;
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &first), 0);
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &second), -EEXIST);
	assert_int_equal(second.id, first.id); /* the one in the way */
	char want[128];
	snprintf(want, sizeof(want), "a full backup is already running: task %lld", (long long)first.id);
	assert_string_equal(second.message, want);
	assert_int_equal(task_finish(f->s, first.id, TASK_FAILED, "x", "y", NULL), 1);
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &second), 0);
	assert_true(second.id > first.id);
}

static int admit_join_any(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	return task_admit_join(s, &(struct task_match){ .type = e->type, .not_started = true }, ret);
}

static int created_calls;
static int created_fail(struct store *s, const struct task_enqueue *e, int64_t id)
{
	(void)s;
	(void)e;
	(void)id;
	created_calls++;
	return created_calls == 1 ? -EIO : 0;
}

static void test_enqueue_join_and_created(void **state)
{
	struct fx *f = *state;
	struct task_enqueue e = { .type = "service.rebuild", .admit = admit_join_any, .created = created_fail };
	struct task_enqueued out;
	created_calls = 0;
	/* The created hook fails: the row goes with it. */
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &out), -EIO);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks"), 0);
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &out), 0);
	assert_false(out.joined);
	int64_t id = out.id;
	assert_int_equal(task_enqueue(f->s, &f->cfg, &e, &out), 0);
	assert_true(out.joined);
	assert_int_equal(out.id, id);
	assert_int_equal(created_calls, 2); /* not for a join */
	assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks"), 1);
}

/* ---- two processes at once ---------------------------------------------- */

/* The test's admission: the real one (backups_admit_full), then it tells
 * the other process that it has checked and waits until the other one
 * has checked too, or 1.5 s. If the check and the insert were not one
 * transaction, both would pass their checks before either inserts. */
struct rendezvous {
	int tell, hear;
};

static int admit_full_and_meet(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	const struct rendezvous *rv = e->userdata;
	int r = backups_admit_full(s, e, ret);
	if (write(rv->tell, "x", 1) != 1)
		return -EIO;
	struct pollfd p = { .fd = rv->hear, .events = POLLIN };
	poll(&p, 1, 1500);
	return r;
}

static void test_enqueue_concurrent_admission(void **state)
{
	struct fx *f = *state;
	int pipes[2][2], results[2];
	assert_int_equal(pipe(pipes[0]), 0);
	assert_int_equal(pipe(pipes[1]), 0);
	assert_int_equal(pipe(results), 0);
	store_close(f->s); /* no SQLite connection across fork() */
	f->s = NULL;
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct store *s;
			int r = open_db(f->path, &s);
			if (r == 0) {
				struct rendezvous rv = { .tell = pipes[i][1], .hear = pipes[1 - i][0] };
				struct task_enqueue e = { .type = "fullbackup", .admit = admit_full_and_meet,
							  .userdata = &rv };
				struct task_enqueued out;
				r = task_enqueue(s, &f->cfg, &e, &out);
				store_close(s);
			}
			_exit(write(results[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
		}
	}
	int got[2];
	for (int i = 0; i < 2; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(read(results[0], &got[i], sizeof(got[i])), sizeof(got[i]));
	}
	for (int i = 0; i < 2; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
		close(results[i]);
	}
	assert_int_equal(open_db(f->path, &f->s), 0);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks WHERE type = 'fullbackup'"), 1);
	assert_true((got[0] == 0 && got[1] == -EEXIST) || (got[0] == -EEXIST && got[1] == 0));
}

/* ---- main --------------------------------------------------------------- */

/* An Idempotency-Key already taken: the INSERT ... RETURNING hits the
 * unique index inside the enqueue's transaction (-EEXIST, the API's 409),
 * and the connection is then usable at once. On MariaDB the failed
 * result stayed on the wire and the next statement waited for an answer
 * until its reply timeout (t0801 hung the POST after a 409). */
static void test_taken_key_leaves_the_connection_usable(void **state)
{
	struct fx *f = *state;
	struct task_idempotency idem = { .key = "k-taken", .fingerprint = "fp", .not_before_ms = 0 };
	int64_t id1 = 0, id2 = 0, n = 0;
	assert_int_equal(task_create_idempotent(f->s, "hold", NULL, "{}", 0, &idem, &id1), 0);
	assert_int_equal(store_begin(f->s, true), 0);
	assert_int_equal(task_create_idempotent(f->s, "hold", NULL, "{}", 0, &idem, &id2), -EEXIST);
	store_rollback(f->s);
	int64_t t0 = now_mono_ms();
	assert_int_equal(store_begin(f->s, true), 0);
	assert_int_equal(task_create(f->s, "hold", NULL, "{}", 0, &id2), 0);
	assert_int_equal(store_commit(f->s), 0);
	assert_int_equal(store_query_int64(f->s, &n, "SELECT COUNT(*) FROM tasks WHERE id IN (?, ?)", "ii", id1, id2), 0);
	assert_int_equal(n, 2);
	int64_t took = now_mono_ms() - t0;
	print_message("the statements after the refused key took %lld ms\n", (long long)took);
	assert_true(took < 5000);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const char *backend = getenv("BOXD_TEST_STORE");
	if (backend && *backend && store_backend_from_string(backend, &test_backend) < 0) {
		fprintf(stderr, "BOXD_TEST_STORE=%s: use sqlite, mysql or postgres\n", backend);
		return 1;
	}
	if (test_backend != STORE_BACKEND_SQLITE) {
		const char *var = test_backend == STORE_BACKEND_MYSQL ? "BOXD_TEST_MYSQL_DSN" : "BOXD_TEST_PG_DSN";
		admin_dsn = getenv(var);
		if (!admin_dsn || !*admin_dsn) {
			printf("SKIP: %s is not set (the test env is not started; run make check)\n", var);
			return 77;
		}
	}
	printf("# backend: %s\n", store_backend_name(test_backend));
	const struct CMUnitTest tests[] = {
		T(test_taken_key_leaves_the_connection_usable),
		T(test_find_active_filters),
		T(test_reaped_task_fails_only_when_its_host_is_gone),
		T(test_host_liveness_is_the_reapers_rule),
		T(test_sweep_ends_lockless_tasks_of_gone_hosts),
		T(test_enqueue_timeout_args_and_claim),
		T(test_enqueue_refusal_rolls_back),
		T(test_enqueue_store_error_is_no_refusal),
		T(test_enqueue_full_backup_one_at_a_time),
		T(test_enqueue_join_and_created),
		T(test_enqueue_concurrent_admission),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
