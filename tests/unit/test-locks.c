/* test-locks.c — the compare-and-swap loop of locks.h over a real SQLite
 * file: fencing tokens, try and waiting acquire, timeouts and cancel, a
 * waiter in another process, release, reaping of dead owners (SIGKILLed,
 * pid reuse, expired lease of another host), and corrupt-document handling
 * with locks_repair(). Every test gets its own database in a fresh mkdtemp
 * directory.
 *
 * Backends: SQLite by default; BOXD_TEST_STORE=mysql or postgres runs the
 * same tests on a fresh database (created and dropped per test) of the
 * server that BOXD_TEST_MYSQL_DSN / BOXD_TEST_PG_DSN name — skipped (exit
 * status 77) when that variable is not set.
 *
 * Fork discipline: SQLite keeps per-process state about open files (POSIX
 * lock bookkeeping, the WAL index mapping) that a forked child must not
 * inherit and use, so the parent closes its connection before fork() and
 * reopens it afterwards; the child opens its own. Children never call
 * cmocka and end with _exit(). Ordering between processes is by awaiting
 * observable state with a deadline, never by fixed sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backups/backups.h"
#include "common/config.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "locks/lock_wait_report.h"
#include "locks/lock_wake.h"
#include "locks/locks.h"
#include "locks/locks_batch.h"
#include "store/store.h"
#include "tasks/task.h"
#include "tasks/task_ctx_lock.h"
#include "tasks/task_type.h"

#include "fixture-store.h"

#define HOST_ID "locktest-host"
/* This process's owner id: HOST_ID and this boot (common/proc.h). */
static char my_owner[LOCK_HOST_MAX];
#define MAX_CHILDREN 4

struct fx {
	struct fixture_db db;
	char path[1024];   /* SQLite: the file; a server backend: the DSN */
	struct store *s;
	pid_t children[MAX_CHILDREN];
};

static enum store_backend test_backend = STORE_BACKEND_SQLITE;
static const char *admin_dsn; /* a server backend: no database selected */

/* What a child reports through its pipe. */
struct child_report {
	int r;
	int64_t version;
	int64_t polls; /* locks_stats.polls of the child's wait */
};

/* ---- fixture ------------------------------------------------------------ */

static int open_db(const char *path, struct store **ret)
{
	struct store_options o = {
		.backend = test_backend,
		.sqlite_path = path,
		.dsn = path,
		.relaxed_durability = true, /* as the daemon's lock connection */
	};
	char err[512] = "";
	int r = store_open(&o, ret, err, sizeof(err));
	if (r < 0)
		print_error("store_open(%s): %s\n", path, err);
	return r;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (fixture_db_create(&f->db, test_backend, admin_dsn, "locks") < 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s", fixture_db_target(&f->db));
	if (open_db(f->path, &f->s) < 0) {
		fixture_db_drop(&f->db);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (f->children[i] > 0) { /* a test failed half-way */
			kill(f->children[i], SIGKILL);
			waitpid(f->children[i], NULL, 0);
		}
	}
	store_close(f->s);
	fixture_db_drop(&f->db);
	free(f);
	return 0;
}

static void close_for_fork(struct fx *f)
{
	store_close(f->s);
	f->s = NULL;
}

static void reopen_after_fork(struct fx *f)
{
	assert_int_equal(open_db(f->path, &f->s), 0);
}

/* Forks; in the child runs fn(path, arg, report fd) and _exits with its
 * return value. The parent's connection must be closed. */
typedef int (*child_fn)(const char *path, void *arg, int report_fd);

static pid_t spawn_child(struct fx *f, child_fn fn, void *arg, int *ret_read_fd)
{
	assert_null(f->s);
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(fn(f->path, arg, fds[1]));
	}
	close(fds[1]);
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (f->children[i] == 0) {
			f->children[i] = pid;
			break;
		}
	}
	*ret_read_fd = fds[0];
	return pid;
}

static void forget_child(struct fx *f, pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (f->children[i] == pid)
			f->children[i] = 0;
}

static int read_with_deadline(int fd, void *buf, size_t len, int64_t ms)
{
	int64_t end = now_mono_ms() + ms;
	size_t got = 0;
	while (got < len) {
		int64_t left = end - now_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		got += (size_t)n;
	}
	return 0;
}

/* waitpid with a deadline; returns the exit status or a negative errno. */
static int wait_child(struct fx *f, pid_t pid, int64_t ms)
{
	int64_t end = now_mono_ms() + ms;
	for (;;) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			forget_child(f, pid);
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		if (r < 0)
			return -errno;
		if (now_mono_ms() >= end)
			return -ETIMEDOUT;
		sleep_us(1000);
	}
}

/* ---- helpers ------------------------------------------------------------ */

static struct lock_owner self_owner(int64_t task)
{
	struct lock_owner o;
	assert_int_equal(lock_owner_self(&o, task), 0);
	assert_string_equal(o.host, my_owner);
	assert_int_equal(o.pid, getpid());
	return o;
}

static int acquire_spec(struct store *s, const struct lock_owner *o, const char *spec,
			const struct locks_acquire_opts *opts, int64_t *ret_version, struct lock_blocker *b)
{
	struct lock_req r;
	assert_int_equal(lock_req_parse(spec, &r), 0);
	int64_t v = -1;
	int rc = locks_acquire(s, o, &r, 1, opts, &v, b);
	if (rc == 0 && ret_version)
		*ret_version = v;
	return rc;
}

static int64_t current_version(struct store *s)
{
	int64_t v = -1;
	assert_int_equal(locks_read(s, NULL, &v, NULL), 0);
	return v;
}

static char *current_text(struct store *s)
{
	char *t = NULL;
	assert_int_equal(locks_read(s, NULL, NULL, &t), 0);
	assert_non_null(t);
	return t;
}

/* The row as stored (format 2 once a change wrote it). */
static char *stored_text(struct store *s)
{
	struct store_stmt *st;
	assert_int_equal(store_query(s, &st, "SELECT data FROM locks WHERE id = 1", ""), 0);
	assert_int_equal(store_step(st), 1);
	char *t = strdup(store_col_text(st, 0));
	store_finalize(st);
	assert_non_null(t);
	return t;
}

static const struct lock_holder *holder_named(const struct lock_doc *d, const char *name)
{
	for (size_t i = 0; i < d->n_holders; i++)
		if (strcmp(d->holders[i].lock.name, name) == 0)
			return &d->holders[i];
	return NULL;
}

/* Replace the stored document (a test fixture: bumps the version and, on
 * SQLite, the wake-up word, like a real write would; PostgreSQL's trigger
 * notifies by itself). Without the wake-up a waiter sleeps up to its 10 s
 * safety poll, as long as the tests' deadlines. */
static void put_text(struct store *s, const char *text)
{
	assert_int_equal(store_run(s, "UPDATE locks SET data = ?, version = version + 1 WHERE id = 1", "s", text), 1);
	struct lock_wake *wake = lock_wake_get(s);
	if (wake)
		lock_wake_bump(wake);
}

static void put_doc(struct store *s, const struct lock_doc *d)
{
	char *text = NULL;
	assert_int_equal(lock_doc_format(d, &text), 0);
	put_text(s, text);
	free(text);
}

/* Wait until the stored queue has `n` tickets; returns the document. */
static void await_queue_len(struct store *s, size_t n, struct lock_doc *ret)
{
	int64_t end = now_mono_ms() + 10000;
	for (;;) {
		struct lock_doc d;
		assert_int_equal(locks_read(s, &d, NULL, NULL), 0);
		if (d.n_waiters == n) {
			*ret = d;
			return;
		}
		lock_doc_release(&d);
		if (now_mono_ms() >= end)
			fail_msg("queue did not reach %zu tickets within 10 s", n);
		sleep_us(1000);
	}
}

struct wait_log {
	int calls;
	struct lock_blocker last;
	volatile sig_atomic_t *cancel;   /* set on the first call, if given */
	struct store *release_store;     /* release `release_owner` on the first call */
	const struct lock_owner *release_owner;
	int release_rc;
};

static void on_wait_record(const struct lock_blocker *b, void *userdata)
{
	struct wait_log *log = userdata;
	log->calls++;
	log->last = *b;
	if (log->cancel)
		*log->cancel = 1;
	if (log->release_store && log->calls == 1)
		log->release_rc = locks_unlock(log->release_store, log->release_owner, NULL, 0, NULL);
}

/* ---- fencing and try ---------------------------------------------------- */

static void test_try_grant_fencing_token_increases(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(1);
	int64_t v0 = current_version(f->s), v1 = -1, v2 = -1, v3 = -1, v4 = -1, v5 = -1;
	assert_int_equal(v0, 0);

	assert_int_equal(acquire_spec(f->s, &a, "app:a", NULL, &v1, NULL), 0);
	assert_true(v1 > v0);
	assert_int_equal(current_version(f->s), v1);
	assert_int_equal(acquire_spec(f->s, &a, "app:b:shared", NULL, &v2, NULL), 0);
	assert_int_equal(v2, v1 + 1);

	const char *names[] = { "app:a" };
	int released = -1;
	assert_int_equal(locks_unlock(f->s, &a, names, 1, &released), 0);
	assert_int_equal(released, 1);
	int64_t after_release = current_version(f->s);
	assert_int_equal(after_release, v2 + 1);
	assert_int_equal(acquire_spec(f->s, &a, "app:a", NULL, &v3, NULL), 0);
	assert_true(v3 > after_release);

	/* A repeat writes nothing: the same token, the same version. */
	struct locks_stats st0, st1;
	locks_stats_get(&st0);
	assert_int_equal(acquire_spec(f->s, &a, "app:a", NULL, &v4, NULL), 0);
	assert_int_equal(v4, v3);
	assert_int_equal(current_version(f->s), v3);
	locks_stats_get(&st1);
	assert_int_equal(st1.cas_noops, st0.cas_noops + 1);
	assert_int_equal(st1.cas_commits, st0.cas_commits);

	/* Several locks: one CAS, one new token. */
	struct lock_req reqs[2];
	assert_int_equal(lock_req_parse("app:c", &reqs[0]), 0);
	assert_int_equal(lock_req_parse("app:d:shared", &reqs[1]), 0);
	assert_int_equal(locks_acquire(f->s, &a, reqs, 2, NULL, &v5, NULL), 0);
	assert_int_equal(v5, v3 + 1);

	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 4);
	const struct lock_holder *h = holder_named(&d, "app:d");
	assert_non_null(h);
	assert_int_equal(h->lock.mode, LOCK_SHARED);
	assert_true(lock_owner_same(&h->owner, &a));
	assert_true(h->owner.acquired_at_ms > 0);
	assert_int_equal(h->owner.lease_expires_ms, 0);
	lock_doc_release(&d);
}

static void test_try_conflict_returns_eagain_with_blocker(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(11), b = self_owner(12);
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, NULL), 0);
	char *before = current_text(f->s);
	int64_t v = current_version(f->s);

	struct lock_blocker bl;
	memset(&bl, 0, sizeof(bl));
	int64_t token = 12345;
	struct lock_req r;
	assert_int_equal(lock_req_parse("app:x:shared", &r), 0);
	assert_int_equal(locks_acquire(f->s, &b, &r, 1, NULL, &token, &bl), -EAGAIN);
	assert_int_equal(token, 12345); /* not written on failure */
	assert_string_equal(bl.lock, "app:x");
	assert_int_equal(bl.mode, LOCK_EXCLUSIVE);
	assert_false(bl.queued);
	assert_int_equal(bl.task_id, 11);
	assert_int_equal(bl.pid, getpid());
	assert_string_equal(bl.host, my_owner);

	/* A try takes no ticket and writes nothing. */
	char *after = current_text(f->s);
	assert_string_equal(after, before);
	assert_int_equal(current_version(f->s), v);
	free(before);
	free(after);

	/* Explicit zero timeout is a try too; other names are free. */
	struct locks_acquire_opts opts = { .timeout_ms = 0 };
	assert_int_equal(acquire_spec(f->s, &b, "app:x", &opts, NULL, NULL), -EAGAIN);
	assert_int_equal(acquire_spec(f->s, &b, "app:y", &opts, NULL, NULL), 0);
	/* Shared with shared is fine. */
	assert_int_equal(acquire_spec(f->s, &a, "app:s:shared", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &b, "app:s:shared", NULL, NULL, NULL), 0);
}

static void test_invalid_request(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(1);
	int64_t v = current_version(f->s), token = -1;
	struct lock_req reqs[2];
	assert_int_equal(lock_req_parse("app:x", &reqs[0]), 0);
	reqs[1] = reqs[0];
	assert_int_equal(locks_acquire(f->s, &a, reqs, 0, NULL, &token, NULL), -EINVAL);
	assert_int_equal(locks_acquire(f->s, &a, reqs, 2, NULL, &token, NULL), -EINVAL);
	struct locks_acquire_opts opts = { .timeout_ms = 1000 };
	assert_int_equal(locks_acquire(f->s, &a, reqs, 2, &opts, &token, NULL), -EINVAL);
	strcpy(reqs[1].name, "bad name");
	assert_int_equal(locks_acquire(f->s, &a, reqs, 2, &opts, &token, NULL), -EINVAL);
	assert_int_equal(token, -1);
	assert_int_equal(current_version(f->s), v);
}

/* A try reaps dead owners once before it gives up. */
static void test_try_reaps_dead_holder(void **state)
{
	struct fx *f = *state;
	struct lock_owner stale = self_owner(3), b = self_owner(4);
	stale.start_time += 1; /* our pid, but not our process: pid reuse */
	assert_int_equal(acquire_spec(f->s, &stale, "app:x", NULL, NULL, NULL), 0);
	struct lock_blocker bl;
	assert_int_equal(acquire_spec(f->s, &b, "app:x", NULL, NULL, &bl), 0);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_int_equal(d.holders[0].owner.task_id, 4);
	lock_doc_release(&d);
}

/* The first refusal reaps dead owners and looks again in the same change:
 * a request that a dead owner blocks is granted in one write, with no
 * refused attempt before it (the once-a-second reap would grant it too, a
 * transaction later for a try and a second later for a waiter). */
static void test_refused_request_reaps_in_the_same_change(void **state)
{
	struct fx *f = *state;
	struct lock_owner stale = self_owner(5), b = self_owner(6), c = self_owner(7);
	stale.start_time += 1; /* our pid, but not our process: pid reuse */
	assert_int_equal(acquire_spec(f->s, &stale, "app:x", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &stale, "app:y", NULL, NULL, NULL), 0);
	int64_t v = current_version(f->s);

	struct locks_stats s0, s1;
	locks_stats_get(&s0);
	assert_int_equal(acquire_spec(f->s, &b, "app:x", NULL, NULL, NULL), 0);
	locks_stats_get(&s1);
	assert_int_equal(s1.cas_commits - s0.cas_commits, 1);
	assert_int_equal(s1.cas_noops - s0.cas_noops, 0);
	assert_int_equal(current_version(f->s), v + 1);

	/* A waiter: no ticket written first, no poll. */
	struct locks_acquire_opts opts = { .timeout_ms = 10000, .reap_interval_ms = 600000 };
	locks_stats_get(&s0);
	assert_int_equal(acquire_spec(f->s, &c, "app:y", &opts, NULL, NULL), 0);
	locks_stats_get(&s1);
	assert_int_equal(s1.cas_commits - s0.cas_commits, 1);
	assert_int_equal(s1.cas_noops - s0.cas_noops, 0);
	assert_int_equal(s1.polls - s0.polls, 0);
	assert_int_equal(current_version(f->s), v + 2);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_waiters, 0);
	assert_int_equal(d.next_ticket, 1); /* never queued */
	assert_int_equal(holder_named(&d, "app:x")->owner.task_id, 6);
	assert_int_equal(holder_named(&d, "app:y")->owner.task_id, 7);
	lock_doc_release(&d);
}

/* ---- waiting ------------------------------------------------------------ */

static void test_wait_timeout_leaves_no_ticket(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(21), b = self_owner(22);
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, NULL), 0);
	struct lock_doc before;
	assert_int_equal(locks_read(f->s, &before, NULL, NULL), 0);

	struct wait_log log = { 0 };
	struct locks_acquire_opts opts = { .timeout_ms = 150, .on_wait = on_wait_record, .userdata = &log };
	struct lock_blocker bl;
	int64_t t0 = now_mono_ms();
	assert_int_equal(acquire_spec(f->s, &b, "app:x:shared", &opts, NULL, &bl), -ETIMEDOUT);
	int64_t elapsed = now_mono_ms() - t0;
	assert_true(elapsed >= 150);
	assert_true(elapsed < 5000);
	assert_int_equal(bl.task_id, 21);
	assert_false(bl.queued);

	/* on_wait: once, with the holder (what it waited for never changed). */
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.last.lock, "app:x");
	assert_int_equal(log.last.task_id, 21);
	assert_int_equal(log.last.pid, getpid());
	assert_int_equal(log.last.mode, LOCK_EXCLUSIVE);
	assert_false(log.last.queued);

	/* The ticket it took is gone again; the holder is untouched. */
	struct lock_doc after;
	assert_int_equal(locks_read(f->s, &after, NULL, NULL), 0);
	assert_int_equal(after.n_waiters, 0);
	assert_int_equal(after.next_ticket, before.next_ticket + 1);
	assert_int_equal(after.n_holders, 1);
	assert_int_equal(after.holders[0].owner.task_id, 21);
	lock_doc_release(&before);
	lock_doc_release(&after);
}

static void test_on_wait_sees_blocker_and_wakes_on_release(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(31), b = self_owner(32);
	assert_int_equal(acquire_spec(f->s, &a, "app:x:shared", NULL, NULL, NULL), 0);
	int64_t v_held = current_version(f->s);
	/* The callback releases the holder, as another process would: the
	 * waiter must notice the version change and be granted. */
	struct wait_log log = { .release_store = f->s, .release_owner = &a };
	struct locks_acquire_opts opts = { .timeout_ms = 10000, .on_wait = on_wait_record, .userdata = &log };
	int64_t token = -1, t0 = now_mono_ms();
	assert_int_equal(acquire_spec(f->s, &b, "app:x", &opts, &token, NULL), 0);
	assert_true(now_mono_ms() - t0 < 5000);
	assert_int_equal(log.release_rc, 0);
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.last.lock, "app:x");
	assert_int_equal(log.last.mode, LOCK_SHARED);
	assert_int_equal(log.last.task_id, 31);
	assert_string_equal(log.last.host, my_owner);
	assert_true(token > v_held);
	assert_int_equal(token, current_version(f->s));
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_waiters, 0);
	assert_int_equal(d.n_holders, 1);
	assert_int_equal(d.holders[0].owner.task_id, 32);
	assert_int_equal(d.holders[0].lock.mode, LOCK_EXCLUSIVE);
	lock_doc_release(&d);
}

/* locks_acquire() with defer_ms (issue 20): blocked by a full backup's
 * shared `platform`, an exclusive request first waits without a ticket
 * (the queue stays empty, on_wait sees `deferred`), after defer_ms it
 * queues like any waiter, and it is granted once the backup releases. */
struct defer_log {
	struct store *s;
	const struct lock_owner *backup;
	int calls;
	bool first_deferred, second_deferred;
	size_t queue_first, queue_second;
	int64_t t_first, t_second;
};

static void on_wait_defer(const struct lock_blocker *b, void *userdata)
{
	struct defer_log *log = userdata;
	struct lock_doc d;
	assert_int_equal(locks_read(log->s, &d, NULL, NULL), 0);
	if (++log->calls == 1) {
		log->first_deferred = b->deferred;
		log->queue_first = d.n_waiters;
		log->t_first = now_mono_ms();
	} else if (log->calls == 2) {
		log->second_deferred = b->deferred;
		log->queue_second = d.n_waiters;
		log->t_second = now_mono_ms();
		assert_int_equal(locks_unlock(log->s, log->backup, NULL, 0, NULL), 0);
	}
	lock_doc_release(&d);
}

static void test_defer_to_backup(void **state)
{
	struct fx *f = *state;
	struct lock_owner backup = self_owner(61), update = self_owner(62);
	assert_int_equal(acquire_spec(f->s, &backup, "type:fullbackup", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &backup, "platform:shared", NULL, NULL, NULL), 0);
	struct defer_log log = { .s = f->s, .backup = &backup };
	struct locks_acquire_opts opts = { .timeout_ms = 20000, .on_wait = on_wait_defer, .userdata = &log,
					   .defer_ms = 300 };
	int64_t t0 = now_mono_ms();
	assert_int_equal(acquire_spec(f->s, &update, "platform", &opts, NULL, NULL), 0);
	assert_int_equal(log.calls, 2);
	assert_true(log.first_deferred);
	assert_int_equal(log.queue_first, 0);   /* deferring: no ticket */
	assert_false(log.second_deferred);
	assert_int_equal(log.queue_second, 1);  /* then queued */
	assert_true(log.t_second - t0 >= 300);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_waiters, 0);
	assert_int_equal(holder_named(&d, "platform")->owner.task_id, 62);
	lock_doc_release(&d);
	locks_unlock(f->s, &update, NULL, 0, NULL);
}

static void test_cancel_flag(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(41), b = self_owner(42);
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, NULL), 0);

	/* Cancelled while waiting (without a deadline). */
	volatile sig_atomic_t cancel = 0;
	struct wait_log log = { .cancel = &cancel };
	struct locks_acquire_opts opts = {
		.timeout_ms = -1, .on_wait = on_wait_record, .userdata = &log, .cancel = &cancel,
	};
	int64_t t0 = now_mono_ms();
	assert_int_equal(acquire_spec(f->s, &b, "app:x", &opts, NULL, NULL), -ECANCELED);
	assert_true(now_mono_ms() - t0 < 5000);
	assert_int_equal(log.calls, 1);
	assert_int_equal(log.last.task_id, 41);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_waiters, 0);
	assert_int_equal(d.next_ticket, 2);
	lock_doc_release(&d);

	/* Already cancelled when it would start waiting. */
	struct locks_acquire_opts opts2 = { .timeout_ms = 10000, .cancel = &cancel };
	assert_int_equal(acquire_spec(f->s, &b, "app:x", &opts2, NULL, NULL), -ECANCELED);
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_waiters, 0);
	lock_doc_release(&d);
}

struct waiter_arg {
	int64_t task;
	const char *spec;
	int64_t timeout_ms;
	bool release_after; /* release at once after the grant */
	int64_t ticket_ttl_ms;    /* 0: the default */
	int64_t reap_interval_ms; /* 0: the default */
	int64_t wake_poll_ms;     /* 0: the default */
	int64_t lease_ms;         /* 0: none */
};

static int child_waiter(const char *path, void *varg, int report_fd)
{
	struct waiter_arg *arg = varg;
	struct store *s;
	struct child_report rep = { .r = -EIO };
	if (open_db(path, &s) < 0)
		return 10;
	struct lock_owner me;
	struct lock_req req;
	if (lock_owner_self(&me, arg->task) < 0 || lock_req_parse(arg->spec, &req) < 0)
		return 11;
	struct locks_acquire_opts opts = { .timeout_ms = arg->timeout_ms, .ticket_ttl_ms = arg->ticket_ttl_ms,
					   .reap_interval_ms = arg->reap_interval_ms,
					   .wake_poll_ms = arg->wake_poll_ms, .lease_ms = arg->lease_ms };
	struct locks_stats st0, st; /* the counters are the process's, inherited at fork */
	locks_stats_get(&st0);
	rep.r = locks_acquire(s, &me, &req, 1, &opts, &rep.version, NULL);
	locks_stats_get(&st);
	rep.polls = st.polls - st0.polls;
	if (rep.r == 0 && arg->release_after && locks_unlock(s, &me, NULL, 0, NULL) < 0)
		rep.r = -EPROTO;
	if (write(report_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		return 12;
	store_close(s);
	return 0;
}

static void test_waiter_in_child_is_granted_after_release(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(51);
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, NULL), 0);

	close_for_fork(f);
	struct waiter_arg arg = { .task = 52, .spec = "app:x", .timeout_ms = 30000 };
	int fd;
	pid_t child = spawn_child(f, child_waiter, &arg, &fd);
	reopen_after_fork(f);

	/* The child is waiting once its ticket is in the queue. */
	struct lock_doc d;
	await_queue_len(f->s, 1, &d);
	assert_int_equal(d.waiters[0].owner.task_id, 52);
	assert_int_equal(d.waiters[0].owner.pid, child);
	assert_int_equal(d.waiters[0].n_locks, 1);
	assert_string_equal(d.waiters[0].locks[0].name, "app:x");
	lock_doc_release(&d);

	/* The version is read before the release: the child may be granted
	 * before a read after it could run. The release is one write and the
	 * grant at least one more. */
	int64_t v_before = current_version(f->s);
	int64_t t0 = now_mono_ms();
	int released = 0;
	assert_int_equal(locks_unlock(f->s, &a, NULL, 0, &released), 0);
	assert_int_equal(released, 1);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	int64_t latency = now_mono_ms() - t0;
	close(fd);
	assert_int_equal(rep.r, 0);
	assert_true(rep.version >= v_before + 2);
	assert_int_equal(rep.version, current_version(f->s)); /* the grant was the last write */
	/* Promptly: the waiter polls the version with a 2 ms backoff cap. */
	if (latency > 2000)
		fail_msg("waiter took %lld ms to notice the release", (long long)latency);
	assert_int_equal(wait_child(f, child, 10000), 0);

	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_waiters, 0);
	assert_int_equal(d.n_holders, 1);
	assert_int_equal(d.holders[0].owner.task_id, 52);
	assert_int_equal(d.holders[0].owner.pid, child);
	lock_doc_release(&d);
}

/* Two waiting processes are granted in the order they queued. */
static void test_fifo_across_processes(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(61);
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, NULL), 0);

	struct waiter_arg arg1 = { .task = 62, .spec = "app:x", .timeout_ms = 30000, .release_after = true };
	struct waiter_arg arg2 = { .task = 63, .spec = "app:x", .timeout_ms = 30000, .release_after = true };
	int fd1, fd2;
	struct lock_doc d;
	close_for_fork(f);
	pid_t c1 = spawn_child(f, child_waiter, &arg1, &fd1);
	reopen_after_fork(f);
	await_queue_len(f->s, 1, &d);
	lock_doc_release(&d);
	close_for_fork(f);
	pid_t c2 = spawn_child(f, child_waiter, &arg2, &fd2);
	reopen_after_fork(f);
	await_queue_len(f->s, 2, &d);
	assert_int_equal(d.waiters[0].owner.pid, c1);
	assert_int_equal(d.waiters[1].owner.pid, c2);
	lock_doc_release(&d);

	assert_int_equal(locks_unlock(f->s, &a, NULL, 0, NULL), 0);
	struct child_report r1, r2;
	assert_int_equal(read_with_deadline(fd1, &r1, sizeof(r1), 10000), 0);
	assert_int_equal(read_with_deadline(fd2, &r2, sizeof(r2), 10000), 0);
	close(fd1);
	close(fd2);
	assert_int_equal(r1.r, 0);
	assert_int_equal(r2.r, 0);
	assert_true(r1.version < r2.version); /* the first queued went first */
	assert_int_equal(wait_child(f, c1, 10000), 0);
	assert_int_equal(wait_child(f, c2, 10000), 0);
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 0);
	assert_int_equal(d.n_waiters, 0);
	lock_doc_release(&d);
}

/* A waiter whose ticket vanished (`boxd locks repair` drops the queue;
 * another host reaps a ticket whose lease ran out) takes a new one as soon
 * as it sees the document move, in the look without the write lock (the
 * dry run), not only at its next reap or ticket refresh, which this test
 * puts minutes away. */
static void test_waiter_requeues_when_its_ticket_vanished(void **state)
{
	struct fx *f = *state;
	struct lock_owner h = self_owner(91);
	assert_int_equal(acquire_spec(f->s, &h, "app:x", NULL, NULL, NULL), 0);
	struct waiter_arg arg = { .task = 92, .spec = "app:x", .timeout_ms = 60000, .ticket_ttl_ms = 600000,
				  .reap_interval_ms = 600000 };
	int fd;
	close_for_fork(f);
	pid_t child = spawn_child(f, child_waiter, &arg, &fd);
	reopen_after_fork(f);
	struct lock_doc d;
	await_queue_len(f->s, 1, &d);
	int64_t t1 = d.waiters[0].ticket;
	assert_int_equal(lock_doc_cancel_ticket(&d, t1), 1);
	put_doc(f->s, &d); /* the queue is gone, the holder stays */
	lock_doc_release(&d);

	await_queue_len(f->s, 1, &d);
	assert_true(d.waiters[0].ticket > t1);
	assert_int_equal(d.waiters[0].owner.pid, child);
	lock_doc_release(&d);

	assert_int_equal(locks_unlock(f->s, &h, NULL, 0, NULL), 0);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	close(fd);
	assert_int_equal(rep.r, 0);
	assert_int_equal(wait_child(f, child, 10000), 0);
}

/* A waiter refreshes its ticket's expiry every third of the ticket's ttl,
 * keeping its place in the queue, also when the reap (which would refresh
 * it as a side effect) is far away: a ttl or lease shorter than the reap
 * interval would otherwise expire under a live waiter. */
static void test_waiter_refreshes_its_ticket(void **state)
{
	struct fx *f = *state;
	struct lock_owner h = self_owner(93);
	assert_int_equal(acquire_spec(f->s, &h, "app:x", NULL, NULL, NULL), 0);
	struct waiter_arg arg = { .task = 94, .spec = "app:x", .timeout_ms = 60000, .ticket_ttl_ms = 3000,
				  .reap_interval_ms = 600000 };
	int fd;
	close_for_fork(f);
	pid_t child = spawn_child(f, child_waiter, &arg, &fd);
	reopen_after_fork(f);
	struct lock_doc d;
	await_queue_len(f->s, 1, &d);
	int64_t ticket = d.waiters[0].ticket, expires = d.waiters[0].expires_ms;
	lock_doc_release(&d);

	/* Two refreshes, the same ticket. */
	for (int i = 0; i < 2; i++) {
		int64_t end = now_mono_ms() + 10000;
		for (;;) {
			assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
			assert_int_equal(d.n_waiters, 1);
			assert_int_equal(d.waiters[0].ticket, ticket);
			int64_t e = d.waiters[0].expires_ms;
			lock_doc_release(&d);
			if (e > expires) {
				expires = e;
				break;
			}
			if (now_mono_ms() >= end)
				fail_msg("the waiter did not refresh its ticket within 10 s");
			sleep_us(5000);
		}
	}

	assert_int_equal(locks_unlock(f->s, &h, NULL, 0, NULL), 0);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	close(fd);
	assert_int_equal(rep.r, 0);
	assert_int_equal(wait_child(f, child, 10000), 0);
}

/* A waiter keeps its ticket's lease as fresh as a holder's renewal thread
 * keeps a holding's (renewed once a tenth of it has passed), so that a
 * commit stall (a Galera node dying: the survivors commit nothing until
 * they agree it is gone) that a holder rides out does not let another
 * host reap a waiter whose host simply could not commit either. Renewed
 * only once two thirds were left, a ticket's lease was up to a third old
 * (plus a poll) before the stall began, and a 10 s lease did not survive
 * a 6 s stall (issue 16: one task of 90 failed "crashed" in t0901's run
 * under load). The age is the database's clock minus the lease's start,
 * sampled over more than a third of the lease; the clock is read before
 * the document, so the age is never overstated. */
static void test_waiter_lease_stays_fresh(void **state)
{
	struct fx *f = *state;
	const int64_t lease = 12000;
	struct lock_owner h = self_owner(95);
	assert_int_equal(acquire_spec(f->s, &h, "app:x", NULL, NULL, NULL), 0);
	struct waiter_arg arg = { .task = 96, .spec = "app:x", .timeout_ms = 60000, .lease_ms = lease,
				  .reap_interval_ms = 600000 };
	int fd;
	close_for_fork(f);
	pid_t child = spawn_child(f, child_waiter, &arg, &fd);
	reopen_after_fork(f);
	struct lock_doc d;
	await_queue_len(f->s, 1, &d);
	lock_doc_release(&d);

	int64_t oldest = 0, renewals = 0, last = 0;
	for (int64_t end = now_mono_ms() + lease / 3 + 2000; now_mono_ms() < end; sleep_us(20000)) {
		int64_t now;
		assert_int_equal(store_now_ms(f->s, &now), 0);
		assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
		assert_int_equal(d.n_waiters, 1);
		int64_t expires = d.waiters[0].owner.lease_expires_ms;
		lock_doc_release(&d);
		if (expires != last)
			renewals += last != 0;
		last = expires;
		int64_t age = now - (expires - lease);
		if (age > oldest)
			oldest = age;
	}
	/* Renewed once more than a tenth (1.2 s) has passed, by a poll every
	 * tenth: at most two tenths old, plus one poll's time. Before, the
	 * lease grew a third (4 s) old, or two thirds. */
	print_message("the waiter's ticket lease was at most %lld ms old (lease %lld ms), renewed %lld times\n",
		      (long long)oldest, (long long)lease, (long long)renewals);
	if (oldest >= lease / 3 - 400)
		fail_msg("the waiter's ticket lease grew %lld ms old (lease %lld ms)", (long long)oldest,
			 (long long)lease);
	assert_true(renewals >= 2);

	assert_int_equal(locks_unlock(f->s, &h, NULL, 0, NULL), 0);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	close(fd);
	assert_int_equal(rep.r, 0);
	assert_int_equal(wait_child(f, child, 10000), 0);
}

/* A waiter is woken by the release, not by polling the row: the futex word
 * of its database (lock_wake.c: beside SQLite's file, in /dev/shm keyed by
 * the DSN for MariaDB and PostgreSQL), which every committed change of this
 * host bumps. Its safety poll is set to 60 s, the reap and the ticket
 * refresh further away, so only a wake-up lets it through within the 10 s
 * deadline; and over the 5 s it waits it reads the version a few times,
 * where a polling waiter reads it about 2,000 times a second (MariaDB
 * polled all along before; PostgreSQL for its first 500 ms). */
static void test_waiter_is_woken_not_polling(void **state)
{
	struct fx *f = *state;
	struct lock_owner h = self_owner(97);
	assert_int_equal(acquire_spec(f->s, &h, "app:x", NULL, NULL, NULL), 0);
	struct waiter_arg arg = { .task = 98, .spec = "app:x", .timeout_ms = 120000, .ticket_ttl_ms = 600000,
				  .reap_interval_ms = 600000, .wake_poll_ms = 60000 };
	int fd;
	close_for_fork(f);
	pid_t child = spawn_child(f, child_waiter, &arg, &fd);
	reopen_after_fork(f);
	struct lock_doc d;
	await_queue_len(f->s, 1, &d);
	lock_doc_release(&d);

	/* Not a synchronization: the interval over which the waiter's reads
	 * are counted. */
	sleep_us(5000000);
	int64_t t0 = now_mono_ms();
	assert_int_equal(locks_unlock(f->s, &h, NULL, 0, NULL), 0);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	int64_t latency = now_mono_ms() - t0;
	close(fd);
	assert_int_equal(rep.r, 0);
	print_message("woken %lld ms after the release, %lld version reads in ~5 s of waiting\n",
		      (long long)latency, (long long)rep.polls);
	/* A woken waiter reads once per wake-up (this test's own writes: a
	 * handful); one that polls makes ~2,000 reads a second (seen: 1,927
	 * in 1 s; PostgreSQL's first 500 ms of polling: several hundred). */
	if (rep.polls > 100)
		fail_msg("the waiter polled: %lld version reads while it waited ~5 s", (long long)rep.polls);
	assert_int_equal(wait_child(f, child, 10000), 0);
}

/* Another host's changes do not bump this host's wake-up word: while the
 * document has owners of other hosts, a waiter on a server store polls
 * for them (MariaDB) or LISTENs (PostgreSQL). The other host's holder is
 * removed by a plain UPDATE, as a process of another machine would write
 * it: no wake-up. With its safety poll at 60 s, only that poll (or the
 * notice) lets the waiter through within the 10 s deadline. */
static void test_waiter_sees_other_hosts_changes(void **state)
{
	struct fx *f = *state;
	if (test_backend == STORE_BACKEND_SQLITE)
		skip(); /* every writer of an SQLite file is on this host */
	struct lock_owner far = { .task_id = 95, .pid = 1, .start_time = 1 };
	strcpy(far.host, "other-host");
	assert_int_equal(acquire_spec(f->s, &far, "app:x", NULL, NULL, NULL), 0);
	struct waiter_arg arg = { .task = 96, .spec = "app:x", .timeout_ms = 120000, .ticket_ttl_ms = 600000,
				  .reap_interval_ms = 600000, .wake_poll_ms = 60000 };
	int fd;
	close_for_fork(f);
	pid_t child = spawn_child(f, child_waiter, &arg, &fd);
	reopen_after_fork(f);
	struct lock_doc d;
	await_queue_len(f->s, 1, &d);
	/* Long enough for PostgreSQL's waiter to LISTEN (after 500 ms) and
	 * MariaDB's to reach its longest poll: not a synchronization. */
	sleep_us(1500000);
	int64_t t0 = now_mono_ms();
	assert_int_equal(lock_doc_unlock(&d, &far, NULL, 0), 1);
	char *text = NULL;
	assert_int_equal(lock_doc_format(&d, &text), 0);
	lock_doc_release(&d);
	assert_int_equal(store_run(f->s, "UPDATE locks SET data = ?, version = version + 1 WHERE id = 1", "s", text), 1);
	free(text);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	close(fd);
	assert_int_equal(rep.r, 0);
	print_message("granted %lld ms after the other host's release\n", (long long)(now_mono_ms() - t0));
	assert_int_equal(wait_child(f, child, 10000), 0);
}

/* ---- unlock ------------------------------------------------------------- */

static void test_unlock_named_and_all(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(71), b = self_owner(72);
	assert_int_equal(acquire_spec(f->s, &a, "app:a", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &a, "app:b", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &a, "app:c:shared", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &b, "app:c:shared", NULL, NULL, NULL), 0);
	const char *names[] = { "app:a", "app:c" };
	int n = -1;
	assert_int_equal(locks_unlock(f->s, &a, names, 2, &n), 0);
	assert_int_equal(n, 2);
	/* Releasing what is not held: 0 and no write. */
	int64_t v = current_version(f->s);
	assert_int_equal(locks_unlock(f->s, &a, names, 2, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(current_version(f->s), v);
	assert_int_equal(locks_unlock(f->s, &a, NULL, 0, NULL), 0);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_int_equal(d.holders[0].owner.task_id, 72);
	lock_doc_release(&d);
}

static void test_unlock_task(void **state)
{
	struct fx *f = *state;
	/* Task 9 as two processes, with a ticket; task 10 with a holding and
	 * a ticket. Planted as a document: tickets need blocked waiters. */
	struct lock_owner t9 = self_owner(9), t9b = self_owner(9), t10 = self_owner(10), t11 = self_owner(11);
	t9b.pid = 1; /* another process of task 9 */
	struct lock_doc d;
	lock_doc_init(&d);
	struct lock_req ra, rb, rc;
	assert_int_equal(lock_req_parse("app:a", &ra), 0);
	assert_int_equal(lock_req_parse("app:b:shared", &rb), 0);
	assert_int_equal(lock_req_parse("app:c", &rc), 0);
	int64_t now = 0, k9 = 0, k10 = 0;
	assert_int_equal(store_now_ms(f->s, &now), 0);
	assert_int_equal(lock_doc_acquire(&d, &t9, &ra, 1, NULL, now, 60000, NULL), 1);
	assert_int_equal(lock_doc_acquire(&d, &t9b, &rb, 1, NULL, now, 60000, NULL), 1);
	assert_int_equal(lock_doc_acquire(&d, &t10, &rb, 1, NULL, now, 60000, NULL), 1);
	assert_int_equal(lock_doc_acquire(&d, &t11, &rc, 1, NULL, now, 60000, NULL), 1);
	assert_int_equal(lock_doc_acquire(&d, &t9, &rc, 1, &k9, now, 60000, NULL), 0);
	assert_int_equal(lock_doc_acquire(&d, &t10, &rc, 1, &k10, now, 60000, NULL), 0);
	put_doc(f->s, &d);
	lock_doc_release(&d);

	int n = -1;
	assert_int_equal(locks_unlock_task(f->s, 9, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 2);
	for (size_t i = 0; i < d.n_holders; i++)
		assert_true(d.holders[i].owner.task_id != 9);
	assert_int_equal(d.n_waiters, 1);
	assert_int_equal(d.waiters[0].ticket, k10);
	assert_int_equal(d.waiters[0].owner.task_id, 10);
	lock_doc_release(&d);

	/* Again: nothing left of task 9, nothing written. */
	int64_t v = current_version(f->s);
	assert_int_equal(locks_unlock_task(f->s, 9, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(locks_unlock_task(f->s, 0, NULL), 0);
	assert_int_equal(current_version(f->s), v);
}

/* ---- reaping ------------------------------------------------------------ */

static int child_holder(const char *path, void *varg, int report_fd)
{
	struct waiter_arg *arg = varg;
	struct store *s;
	struct child_report rep = { .r = -EIO };
	if (open_db(path, &s) < 0)
		return 10;
	struct lock_owner me;
	struct lock_req req;
	if (lock_owner_self(&me, arg->task) < 0 || lock_req_parse(arg->spec, &req) < 0)
		return 11;
	rep.r = locks_acquire(s, &me, &req, 1, NULL, &rep.version, NULL);
	if (write(report_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		return 12;
	for (;;)
		pause(); /* hold until killed */
}

static void test_reap_sigkilled_child(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(81);
	close_for_fork(f);
	struct waiter_arg arg = { .task = 82, .spec = "app:x" };
	int fd;
	pid_t child = spawn_child(f, child_holder, &arg, &fd);
	reopen_after_fork(f);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	close(fd);
	assert_int_equal(rep.r, 0);

	/* Alive: neither a try (which reaps once) nor locks_reap frees it. */
	struct lock_blocker bl;
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, &bl), -EAGAIN);
	assert_int_equal(bl.task_id, 82);
	assert_int_equal(bl.pid, child);
	int reaped = -1;
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	assert_int_equal(reaped, 0);

	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(wait_child(f, child, 10000), 128 + SIGKILL);
	int64_t v = current_version(f->s);
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	assert_int_equal(reaped, 1);
	assert_int_equal(current_version(f->s), v + 1);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 0);
	lock_doc_release(&d);
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	assert_int_equal(reaped, 0);
	assert_int_equal(current_version(f->s), v + 1); /* nothing to do: no write */
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, NULL), 0);
}

static void test_reap_live_pid_wrong_start_time(void **state)
{
	struct fx *f = *state;
	struct lock_owner stale = self_owner(91), live = self_owner(92);
	stale.start_time += 7; /* our pid is alive, but it is not this process */
	assert_int_equal(acquire_spec(f->s, &stale, "app:x", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &live, "app:y", NULL, NULL, NULL), 0);
	assert_int_equal(proc_check(stale.pid, stale.start_time), PROC_REUSED);
	int reaped = -1;
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	assert_int_equal(reaped, 1);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_int_equal(d.holders[0].owner.task_id, 92);
	assert_string_equal(d.holders[0].lock.name, "app:y");
	lock_doc_release(&d);
}

/* The holder as an owner of this host's earlier boot: BOXD_FAKE_BOOT_ID is
 * the named fake for a reboot (a test cannot reboot). */
static int child_holder_earlier_boot(const char *path, void *varg, int report_fd)
{
	setenv("BOXD_FAKE_BOOT_ID", "0123456789ab-earlier-boot", 1);
	return child_holder(path, varg, report_fd);
}

static void test_reap_owner_of_earlier_boot(void **state)
{
	/* After a reboot, a pid + start time recorded before it may name a
	 * live process again (start times count from boot): the child is such
	 * a process, alive with exactly the recorded pid and start time. Its
	 * owner id says another boot of this host: dead, without a lease (as
	 * on SQLite) and although the process runs. */
	struct fx *f = *state;
	close_for_fork(f);
	struct waiter_arg arg = { .task = 83, .spec = "app:x" };
	int fd;
	pid_t child = spawn_child(f, child_holder_earlier_boot, &arg, &fd);
	reopen_after_fork(f);
	struct child_report rep;
	assert_int_equal(read_with_deadline(fd, &rep, sizeof(rep), 10000), 0);
	close(fd);
	assert_int_equal(rep.r, 0);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	char *slash = strrchr(d.holders[0].owner.host, '/');
	assert_non_null(slash);
	assert_string_equal(slash, "/0123456789ab");
	assert_true(host_owner_earlier_boot(d.holders[0].owner.host, my_owner));
	assert_int_equal(d.holders[0].owner.lease_expires_ms, 0);
	assert_int_equal(proc_check(d.holders[0].owner.pid, d.holders[0].owner.start_time), PROC_ALIVE);
	lock_doc_release(&d);

	int reaped = -1;
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	assert_int_equal(reaped, 1);
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 0);
	lock_doc_release(&d);
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(wait_child(f, child, 10000), 128 + SIGKILL);
}

static void test_reap_other_host_by_lease(void **state)
{
	struct fx *f = *state;
	/* Owners of another host: their pids mean nothing here. pid 1 exists
	 * on this host, which must not keep them alive or kill them. */
	struct lock_owner leased = { .task_id = 101, .pid = 1, .start_time = 1 },
			  nolease = { .task_id = 102, .pid = 999999, .start_time = 1 };
	strcpy(leased.host, "other-host");
	strcpy(nolease.host, "other-host");
	struct locks_acquire_opts lopts = { .lease_ms = 300 };
	assert_int_equal(acquire_spec(f->s, &leased, "app:l", &lopts, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &nolease, "app:n", NULL, NULL, NULL), 0);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	const struct lock_holder *h = holder_named(&d, "app:l");
	assert_non_null(h);
	assert_int_equal(h->owner.lease_expires_ms, h->owner.acquired_at_ms + 300);
	int64_t lease = h->owner.lease_expires_ms;
	assert_int_equal(holder_named(&d, "app:n")->owner.lease_expires_ms, 0);
	lock_doc_release(&d);

	int reaped = -1;
	int64_t now = 0;
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	/* The clock is read after the reap: if the lease is still running
	 * now, it was running when the reap looked. */
	assert_int_equal(store_now_ms(f->s, &now), 0);
	if (now < lease)
		assert_int_equal(reaped, 0);
	/* Await the lease's end in the database clock. */
	int64_t end = now_mono_ms() + 10000;
	int total = reaped;
	while (total == 0) {
		if (now_mono_ms() >= end)
			fail_msg("the expired lease was not reaped within 10 s");
		sleep_us(5000);
		assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
		total += reaped;
	}
	assert_int_equal(total, 1);
	assert_int_equal(store_now_ms(f->s, &now), 0);
	assert_true(now > lease);
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_string_equal(d.holders[0].lock.name, "app:n"); /* no lease: never reaped from here */
	lock_doc_release(&d);
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	assert_int_equal(reaped, 0);
}

static void test_renew_leases(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(111);
	struct locks_acquire_opts lopts = { .lease_ms = 1000 };
	assert_int_equal(acquire_spec(f->s, &a, "app:r", &lopts, NULL, NULL), 0);
	int n = -1;
	assert_int_equal(locks_renew_leases(f->s, my_owner, 60000, &n), 0);
	assert_int_equal(n, 1);
	int64_t now = 0;
	assert_int_equal(store_now_ms(f->s, &now), 0);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_true(d.holders[0].owner.lease_expires_ms > now + 50000);
	lock_doc_release(&d);
	assert_int_equal(locks_renew_leases(f->s, "other-host", 60000, &n), 0);
	assert_int_equal(n, 0);
}

/* An owner renews its own lease (the worker, worker_lease.h): its
 * holdings only, only when due; and it learns when its holdings are gone. */
static void test_renew_owner(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(111), b = self_owner(222);
	struct locks_acquire_opts lopts = { .lease_ms = 1000 };
	assert_int_equal(acquire_spec(f->s, &a, "app:r", &lopts, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &b, "app:s", &lopts, NULL, NULL), 0);
	int64_t v0 = current_version(f->s);
	struct locks_renewal st;
	/* Not due: a lease of 1 s has more than 100 ms left. No write. */
	assert_int_equal(locks_renew_owner(f->s, &a, 60000, 100, 0, &st), 0);
	assert_int_equal(st.renewed, 0);
	assert_int_equal(st.holders, 1);
	assert_true(st.first_expiry_ms > st.now_ms);
	assert_int_equal(current_version(f->s), v0);
	/* Due: a's holding only. */
	assert_int_equal(locks_renew_owner(f->s, &a, 60000, 59000, 0, &st), 0);
	assert_int_equal(st.renewed, 1);
	assert_true(st.first_expiry_ms >= st.now_ms + 59000);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	for (size_t i = 0; i < d.n_holders; i++)
		if (d.holders[i].owner.task_id == 222)
			assert_true(d.holders[i].owner.lease_expires_ms < st.now_ms + 2000);
	lock_doc_release(&d);
	/* Taken away (as another host reaps an expired lease): none left. */
	assert_int_equal(locks_unlock_task(f->s, 111, NULL), 0);
	assert_int_equal(locks_renew_owner(f->s, &a, 60000, 59000, 0, &st), 0);
	assert_int_equal(st.holders, 0);
	assert_int_equal(st.first_expiry_ms, 0);
}

/* task_ctx_fence_check(): the grant stands → 0; the holding is gone, or
 * its lease has less than a second left → -ESTALE with lease_lost. */
static void test_fence_check(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(333);
	struct locks_acquire_opts lopts = { .lease_ms = 60000 };
	int64_t token = 0;
	assert_int_equal(acquire_spec(f->s, &a, "app:f", &lopts, &token, NULL), 0);
	struct lock_req req;
	assert_int_equal(lock_req_parse("app:f", &req), 0);
	struct task t = { .id = 333 };
	struct task_fence fence = { .token = token, .locks = &req, .n_locks = 1, .lease_ms = 60000 };
	struct task_ctx ctx = { .store = f->s, .task = &t, .owner = &a, .fence = &fence };
	assert_int_equal(task_ctx_fence_check(&ctx, "a test step"), 0);
	assert_string_equal(ctx.error_code, "");
	/* A lease about to end: refused. */
	struct locks_renewal st;
	assert_int_equal(locks_renew_owner(f->s, &a, 300, 120000, 0, &st), 0); /* lease := now + 300 ms */
	assert_int_equal(task_ctx_fence_check(&ctx, "a test step"), -ESTALE);
	assert_string_equal(ctx.error_code, "lease_lost");
	assert_non_null(strstr(ctx.error_message, "a test step"));
	/* Renewed: fine again. Gone: refused. */
	assert_int_equal(locks_renew_owner(f->s, &a, 60000, 120000, 0, &st), 0);
	ctx.error_code[0] = '\0';
	assert_int_equal(task_ctx_fence_check(&ctx, "a test step"), 0);
	assert_int_equal(locks_unlock_task(f->s, 333, NULL), 0);
	assert_int_equal(task_ctx_fence_check(&ctx, "a test step"), -ESTALE);
	assert_string_equal(ctx.error_code, "lease_lost");
	/* No locks: nothing to check. */
	ctx.fence = NULL;
	assert_int_equal(task_ctx_fence_check(&ctx, "a test step"), 0);
}

/* task_ctx_lock() (tasks/task_ctx_lock.h), the one way a task waits for a
 * lock while it runs, here as the full backup takes an app's lock: a lock
 * its type does not declare is refused; a declared one that another task
 * holds is waited for visibly (the task `waiting`, with waitingFor and
 * "Waiting for app:x (held by task N, hold)", which a second process
 * watches for before it frees the lock), then taken as the task's owner,
 * the task `running` again; task_ctx_unlock() frees it; a stop ends the
 * wait with -ECANCELED and no error recorded. */
struct visible_arg {
	int64_t task, holder_task;
	const struct lock_owner *holder;
};

static int child_release_when_waiting(const char *path, void *varg, int report_fd)
{
	(void)report_fd;
	struct visible_arg *a = varg;
	struct store *s;
	if (open_db(path, &s) < 0)
		return 10;
	char want[128];
	snprintf(want, sizeof(want), "Waiting for app:x (held by task %lld, hold)", (long long)a->holder_task);
	int rc = 11; /* never seen waiting (freed all the same: the waiter must not hang) */
	for (int64_t end = now_mono_ms() + 10000; now_mono_ms() < end; sleep_us(2000)) {
		struct task t;
		if (task_get(s, a->task, &t) < 0)
			continue;
		bool waiting = t.state == TASK_WAITING && t.message && strcmp(t.message, want) == 0 && t.waiting_for &&
			       strstr(t.waiting_for, "\"lock\":\"app:x\"");
		task_release(&t);
		if (waiting) {
			rc = 0;
			break;
		}
	}
	if (locks_unlock(s, a->holder, NULL, 0, NULL) < 0)
		rc = 12;
	store_close(s);
	return rc;
}

static void test_task_ctx_lock_waits_visibly(void **state)
{
	struct fx *f = *state;
	task_types_register_builtin();
	backups_register_task_types(); /* fullbackup: app:%s exclusive, later */
	int64_t holder_task, id;
	assert_int_equal(task_create(f->s, "hold", NULL, "{}", 0, &holder_task), 0);
	assert_int_equal(task_create(f->s, "fullbackup", NULL, "{}", 0, &id), 0);
	assert_int_equal(task_set_running(f->s, id), 1);
	struct lock_owner holder = self_owner(holder_task), me = self_owner(id);
	assert_int_equal(acquire_spec(f->s, &holder, "app:x", NULL, NULL, NULL), 0);

	close_for_fork(f);
	struct visible_arg arg = { .task = id, .holder_task = holder_task, .holder = &holder };
	int fd;
	pid_t child = spawn_child(f, child_release_when_waiting, &arg, &fd);
	reopen_after_fork(f);
	close(fd);

	struct boxd_config cfg = { .lease_ms = 0 };
	volatile sig_atomic_t cancel = 0;
	struct task t = { .id = id, .type = "fullbackup" };
	struct task_ctx ctx = { .store = f->s, .lock_store = f->s, .config = &cfg, .task = &t, .owner = &me,
				.cancel = &cancel };

	/* Not what fullbackup declares: refused at once, nothing taken. */
	assert_int_equal(task_ctx_lock(&ctx, "app:x", LOCK_SHARED), -EPERM);
	assert_string_equal(ctx.error_code, "undeclared_lock");
	assert_int_equal(task_ctx_lock(&ctx, "platform", LOCK_EXCLUSIVE), -EPERM);
	ctx.error_code[0] = '\0';

	assert_int_equal(task_ctx_lock(&ctx, "app:x", LOCK_EXCLUSIVE), 0);
	assert_string_equal(ctx.error_code, "");
	assert_int_equal(wait_child(f, child, 15000), 0); /* it saw the task waiting, then freed app:x */
	struct task row;
	assert_int_equal(task_get(f->s, id, &row), 0);
	assert_int_equal(row.state, TASK_RUNNING);
	assert_null(row.waiting_for);
	task_release(&row);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_non_null(holder_named(&d, "app:x"));
	assert_true(lock_owner_same(&holder_named(&d, "app:x")->owner, &me));
	assert_int_equal(holder_named(&d, "app:x")->lock.mode, LOCK_EXCLUSIVE);
	lock_doc_release(&d);

	task_ctx_unlock(&ctx, "app:x");
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_null(holder_named(&d, "app:x"));
	lock_doc_release(&d);

	/* Stopped while it waits: -ECANCELED, no error of its own. */
	assert_int_equal(acquire_spec(f->s, &holder, "app:x", NULL, NULL, NULL), 0);
	cancel = 1;
	assert_int_equal(task_ctx_lock(&ctx, "app:x", LOCK_EXCLUSIVE), -ECANCELED);
	assert_string_equal(ctx.error_code, "");
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_waiters, 0);
	assert_true(lock_owner_same(&holder_named(&d, "app:x")->owner, &holder));
	lock_doc_release(&d);
}

struct expired_log {
	int calls;
	struct lock_owner owners[4];
	int64_t now_ms[4];
};

static void on_expired_record(const struct lock_owner *o, int64_t now_ms, void *userdata)
{
	struct expired_log *log = userdata;
	if (log->calls < 4) {
		log->owners[log->calls] = *o;
		log->now_ms[log->calls] = now_ms;
	}
	log->calls++;
}

static void test_reap_expired_reports_other_hosts_only(void **state)
{
	struct fx *f = *state;
	/* Another host's holder and waiter, with a short lease; and an owner
	 * of this host whose process is gone (pid reused). */
	struct lock_owner held = { .task_id = 121, .pid = 1, .start_time = 1 },
			  waiting = { .task_id = 122, .pid = 2, .start_time = 2 }, stale = self_owner(123);
	strcpy(held.host, "other-host");
	strcpy(waiting.host, "other-host");
	stale.start_time += 7;
	struct locks_acquire_opts lopts = { .lease_ms = 300 };
	assert_int_equal(acquire_spec(f->s, &held, "app:e", &lopts, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &stale, "app:z", NULL, NULL, NULL), 0);
	int64_t now;
	assert_int_equal(store_now_ms(f->s, &now), 0);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	struct lock_req req;
	assert_int_equal(lock_req_parse("app:e", &req), 0);
	int64_t ticket = 0;
	waiting.lease_expires_ms = holder_named(&d, "app:e")->owner.lease_expires_ms; /* both end at once */
	assert_int_equal(lock_doc_acquire(&d, &waiting, &req, 1, &ticket, now, 60000, NULL), 0);
	put_doc(f->s, &d);
	lock_doc_release(&d);

	struct expired_log log = { 0 };
	int reaped = 0, total = 0;
	int64_t end = now_mono_ms() + 10000;
	while (total == 0) {
		if (now_mono_ms() >= end)
			fail_msg("the expired leases were not reaped within 10 s");
		assert_int_equal(locks_reap_expired(f->s, my_owner, on_expired_record, &log, &reaped), 0);
		total += reaped;
		if (total == 0) {
			assert_int_equal(log.calls, 0);
			sleep_us(5000);
		}
	}
	assert_int_equal(total, 1); /* holders counted: the other host's one */
	assert_int_equal(log.calls, 2); /* once per owner: the holder and the waiter */
	int64_t tasks = log.owners[0].task_id + log.owners[1].task_id;
	assert_int_equal(tasks, 121 + 122);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(log.owners[i].host, "other-host");
		assert_true(log.now_ms[i] > log.owners[i].lease_expires_ms);
	}
	/* This host's dead owner is the supervisor's (or locks_reap's) to free. */
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_string_equal(d.holders[0].lock.name, "app:z");
	assert_int_equal(d.n_waiters, 0);
	lock_doc_release(&d);
	log.calls = 0;
	assert_int_equal(locks_reap_expired(f->s, my_owner, on_expired_record, &log, &reaped), 0);
	assert_int_equal(reaped, 0);
	assert_int_equal(log.calls, 0);
	assert_int_equal(locks_reap(f->s, my_owner, &reaped), 0);
	assert_int_equal(reaped, 1);
}

/* The server session behind `s` (MariaDB or PostgreSQL). */
static int64_t session_of(struct store *s)
{
	int64_t session = 0;
	assert_int_equal(store_query_int64(s, &session,
					   test_backend == STORE_BACKEND_MYSQL ? "SELECT CONNECTION_ID()" : "SELECT pg_backend_pid()",
					   NULL),
			 0);
	return session;
}

/* Kill server session `session` from `admin`, as a dying server would. */
static void kill_session(struct store *admin, int64_t session)
{
	bool my = test_backend == STORE_BACKEND_MYSQL;
	int64_t n = 0;
	char sql[128];
	snprintf(sql, sizeof(sql), my ? "KILL CONNECTION %lld" : "SELECT pg_terminate_backend(%lld)", (long long)session);
	if (my)
		assert_true(store_run(admin, sql, NULL) >= 0);
	else
		assert_int_equal(store_query_int64(admin, &n, sql, NULL), 0);
}

/* Kill the server session of `s` (from `admin`) and read on `s`: it
 * reconnects, the caller sees no error, and the handle has met trouble. */
static void lose_connection(struct store *s, struct store *admin)
{
	int64_t n = 0;
	kill_session(admin, session_of(s));
	assert_int_equal(store_query_int64(s, &n, "SELECT 1", NULL), 0);
}

/* A lease that ran out while the store was in trouble says nothing about
 * its owner: a handle that just lost its connection (or waited 2 s on one
 * call) frees no other host's lease for a default lease's time; a handle
 * without trouble frees it. (A Galera node rejoining paused the cluster,
 * then the first daemon back freed six live waiters of three hosts.) */
static void test_no_lease_reaped_right_after_trouble(void **state)
{
	struct fx *f = *state;
	if (test_backend == STORE_BACKEND_SQLITE)
		skip(); /* no other host, no lease to reap */
	struct store *admin = NULL, *calm = NULL;
	assert_int_equal(open_db(f->path, &admin), 0);
	assert_int_equal(open_db(f->path, &calm), 0);
	assert_true(store_trouble_age_ms(calm) == INT64_MAX);

	/* A call of 2 s or more is trouble too (a cluster pausing commits). */
	int64_t n = 0;
	assert_int_equal(store_query_int64(admin, &n, test_backend == STORE_BACKEND_MYSQL ? "SELECT SLEEP(2.1)" : "SELECT 1 FROM pg_sleep(2.1)", NULL), 0);
	assert_true(store_trouble_age_ms(admin) < 1000);

	lose_connection(f->s, admin);
	assert_true(store_trouble_age_ms(f->s) < 1000);

	struct lock_owner held = { .task_id = 131, .pid = 1, .start_time = 1 };
	strcpy(held.host, "other-host");
	struct locks_acquire_opts lopts = { .lease_ms = 200 };
	assert_int_equal(acquire_spec(calm, &held, "app:t", &lopts, NULL, NULL), 0);
	struct lock_doc d;
	assert_int_equal(locks_read(calm, &d, NULL, NULL), 0);
	int64_t expires = holder_named(&d, "app:t")->owner.lease_expires_ms, now = 0;
	lock_doc_release(&d);
	int64_t end = now_mono_ms() + 10000;
	do {
		assert_true(now_mono_ms() < end);
		sleep_us(5000);
		assert_int_equal(store_now_ms(calm, &now), 0);
	} while (now <= expires);

	int reaped = -1;
	assert_int_equal(locks_reap_expired(f->s, my_owner, NULL, NULL, &reaped), 0);
	assert_int_equal(reaped, 0); /* this handle lost its connection just now */
	assert_int_equal(locks_reap_expired(admin, my_owner, NULL, NULL, &reaped), 0);
	assert_int_equal(reaped, 0); /* this one waited 2 s on a call */
	assert_int_equal(locks_read(calm, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	lock_doc_release(&d);
	assert_int_equal(locks_reap_expired(calm, my_owner, NULL, NULL, &reaped), 0);
	assert_int_equal(reaped, 1);
	store_close(admin);
	store_close(calm);
}

static void test_waiter_reports_expired_holder(void **state)
{
	struct fx *f = *state;
	struct lock_owner gone = { .task_id = 131, .pid = 1, .start_time = 1 }, me = self_owner(132);
	strcpy(gone.host, "other-host");
	struct locks_acquire_opts lopts = { .lease_ms = 300 };
	assert_int_equal(acquire_spec(f->s, &gone, "app:w", &lopts, NULL, NULL), 0);
	struct expired_log log = { 0 };
	struct locks_acquire_opts wait = { .timeout_ms = 10000, .lease_ms = 60000, .on_expired = on_expired_record,
					   .expired_userdata = &log };
	int64_t t0 = now_mono_ms();
	assert_int_equal(acquire_spec(f->s, &me, "app:w", &wait, NULL, NULL), 0);
	assert_true(now_mono_ms() - t0 < 5000);
	assert_int_equal(log.calls, 1);
	assert_int_equal(log.owners[0].task_id, 131);
	assert_true(log.now_ms[0] > log.owners[0].lease_expires_ms);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_int_equal(d.holders[0].owner.task_id, 132);
	/* The grant carries the lease in the database's clock. */
	assert_int_equal(d.holders[0].owner.lease_expires_ms, d.holders[0].owner.acquired_at_ms + 60000);
	lock_doc_release(&d);
}

/* ---- corrupt documents and repair -------------------------------------- */

static void assert_badmsg(struct store *s, int r, const char *what)
{
	if (r != -EBADMSG)
		fail_msg("%s returned %d (%s), want -EBADMSG", what, r, strerror(-r));
	const char *msg = store_errmsg(s);
	if (!strstr(msg, "locks.id=1") || !strstr(msg, "does not parse"))
		fail_msg("%s: message \"%s\" does not name the row", what, msg);
}

static void test_corrupt_row_fails_and_is_left_alone(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42), b = self_owner(43);
	assert_int_equal(acquire_spec(f->s, &a, "app:keep", NULL, NULL, NULL), 0);
	assert_int_equal(store_run(f->s, "UPDATE locks SET data = '{broken' WHERE id = 1", ""), 1);
	int64_t v = current_version(f->s);

	struct locks_acquire_opts wopts = { .timeout_ms = 5000 };
	int64_t token = -1;
	int n = -1;
	int64_t t0 = now_mono_ms();
	assert_badmsg(f->s, acquire_spec(f->s, &b, "app:x", NULL, &token, NULL), "try acquire");
	assert_badmsg(f->s, acquire_spec(f->s, &b, "app:x", &wopts, &token, NULL), "waiting acquire");
	assert_true(now_mono_ms() - t0 < 2000); /* fails at once, does not wait */
	assert_int_equal(token, -1);
	assert_badmsg(f->s, locks_unlock(f->s, &a, NULL, 0, &n), "release");
	assert_badmsg(f->s, locks_unlock_task(f->s, 42, &n), "release_task");
	assert_badmsg(f->s, locks_reap(f->s, my_owner, &n), "reap");
	assert_badmsg(f->s, locks_renew_leases(f->s, my_owner, 1000, &n), "renew");
	assert_int_equal(n, -1);
	assert_true(strstr(store_errmsg(f->s), "invalid JSON") != NULL);

	struct lock_doc d, copy;
	memset(&d, 0x5a, sizeof(d));
	memcpy(&copy, &d, sizeof(d));
	int64_t rv = -1;
	char *text = NULL;
	assert_badmsg(f->s, locks_read(f->s, &d, &rv, &text), "read");
	assert_memory_equal(&d, &copy, sizeof(d));
	assert_int_equal(rv, -1);
	assert_null(text);

	/* Never reset silently: the row is exactly as it was. */
	assert_int_equal(locks_read(f->s, NULL, &rv, &text), 0);
	assert_string_equal(text, "{broken");
	assert_int_equal(rv, v);
	free(text);

	/* The operator repairs it; nothing in it could be kept. */
	struct locks_repair_report rep;
	assert_int_equal(locks_repair(f->s, &rep), 0);
	assert_false(rep.was_valid);
	assert_string_equal(rep.old_text, "{broken");
	assert_int_equal(rep.old_version, v);
	assert_int_equal(rep.new_version, v + 1);
	assert_int_equal(rep.holders_kept, 0);
	assert_int_equal(rep.entries_dropped, 0);
	assert_true(strstr(rep.problem, "invalid JSON") != NULL);
	locks_repair_report_release(&rep);
	assert_null(rep.old_text);
	locks_repair_report_release(NULL);

	assert_int_equal(locks_read(f->s, &d, &rv, NULL), 0);
	assert_int_equal(rv, v + 1);
	assert_int_equal(d.n_holders, 0);
	assert_int_equal(d.n_waiters, 0);
	assert_true(d.next_ticket >= v + 1);
	lock_doc_release(&d);
	assert_int_equal(acquire_spec(f->s, &b, "app:x", NULL, NULL, NULL), 0);
}

static void test_repair_keeps_valid_holders(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42), b = self_owner(43);
	char *text = NULL;
	/* Holders 0 and 3 are fine; 1 has a bad mode, 2 is not an object; the
	 * queue entry is valid but queues are dropped; nextTicket is far past
	 * the row's version (the document was edited by hand). */
	assert_true(asprintf(&text,
			     "{\"holders\":["
			     "{\"name\":\"app:keep\",\"mode\":\"exclusive\",\"task\":42,\"host\":\"%s\",\"pid\":%d,"
			     "\"start\":%llu,\"at\":5,\"lease\":0},"
			     "{\"name\":\"app:bad\",\"mode\":\"write\",\"task\":44,\"host\":\"%s\",\"pid\":%d,"
			     "\"start\":%llu},"
			     "5,"
			     "{\"name\":\"app:also\",\"mode\":\"shared\",\"task\":42,\"host\":\"%s\",\"pid\":%d,"
			     "\"start\":%llu,\"at\":6,\"lease\":0}],"
			     "\"queue\":[{\"ticket\":499,\"expires\":1,\"locks\":[{\"name\":\"app:keep\","
			     "\"mode\":\"shared\"}],\"task\":43,\"host\":\"%s\",\"pid\":%d,\"start\":%llu}],"
			     "\"nextTicket\":500}",
			     my_owner, a.pid, (unsigned long long)a.start_time, my_owner, a.pid,
			     (unsigned long long)a.start_time, my_owner, a.pid, (unsigned long long)a.start_time,
			     my_owner, b.pid, (unsigned long long)b.start_time) > 0);
	put_text(f->s, text);
	int64_t v = current_version(f->s);
	assert_badmsg(f->s, acquire_spec(f->s, &b, "app:x", NULL, NULL, NULL), "acquire");
	assert_true(strstr(store_errmsg(f->s), "holders[1]") != NULL);

	/* The repair wakes SQLite's waiters (it drops their tickets). */
	struct lock_wake *wake = lock_wake_get(f->s);
	uint32_t seq = wake ? lock_wake_seq(wake) : 0;
	struct locks_repair_report rep;
	assert_int_equal(locks_repair(f->s, &rep), 0);
	if (test_backend == STORE_BACKEND_SQLITE)
		assert_true(wake && lock_wake_seq(wake) != seq);
	assert_false(rep.was_valid);
	assert_string_equal(rep.old_text, text);
	assert_int_equal(rep.old_version, v);
	assert_int_equal(rep.new_version, v + 1);
	assert_int_equal(rep.holders_kept, 2);
	assert_int_equal(rep.entries_dropped, 3); /* two holders, one ticket */
	assert_true(strstr(rep.problem, "holders[1]") != NULL);
	locks_repair_report_release(&rep);
	free(text);

	struct lock_doc d;
	int64_t rv;
	assert_int_equal(locks_read(f->s, &d, &rv, NULL), 0);
	assert_int_equal(rv, v + 1);
	assert_int_equal(d.n_holders, 2);
	const struct lock_holder *keep = holder_named(&d, "app:keep");
	assert_non_null(keep);
	assert_int_equal(keep->lock.mode, LOCK_EXCLUSIVE);
	assert_true(lock_owner_same(&keep->owner, &a));
	assert_int_equal(keep->owner.acquired_at_ms, 5);
	assert_non_null(holder_named(&d, "app:also"));
	assert_int_equal(holder_named(&d, "app:also")->lock.mode, LOCK_SHARED);
	assert_int_equal(d.n_waiters, 0);
	/* Past every ticket ever issued, including those in the old text. */
	assert_true(d.next_ticket >= 500);
	int64_t next = d.next_ticket;
	lock_doc_release(&d);

	/* The kept holder still protects its lock. */
	struct lock_blocker bl;
	assert_int_equal(acquire_spec(f->s, &b, "app:keep:shared", NULL, NULL, &bl), -EAGAIN);
	assert_int_equal(bl.task_id, 42);
	struct locks_acquire_opts wopts = { .timeout_ms = 30 };
	assert_int_equal(acquire_spec(f->s, &b, "app:keep", &wopts, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.next_ticket, next + 1); /* the new ticket was >= the old ones */
	assert_int_equal(d.n_waiters, 0);
	lock_doc_release(&d);

	/* Repaired: a second repair finds nothing to do. */
	assert_int_equal(locks_repair(f->s, &rep), 0);
	assert_true(rep.was_valid);
	locks_repair_report_release(&rep);
}

/* A document that parses as JSON but breaks an invariant (two exclusive
 * holders of app:x, a ticket past nextTicket): every operation refuses it
 * with the reason, and repair keeps what can stand together. Of holders
 * that conflict it keeps the first in document order (the order of the
 * grants) and drops the later ones; a worker whose holding was dropped
 * finds it gone at its next lease renewal and stops (worker_lease.c). */
static void test_repair_resolves_broken_invariants(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42), b = self_owner(43), c = self_owner(44);
	char *text = NULL;
	assert_true(asprintf(&text,
			     "{\"holders\":["
			     "{\"name\":\"app:x\",\"mode\":\"exclusive\",\"task\":42,\"host\":\"%s\",\"pid\":%d,"
			     "\"start\":%llu,\"at\":5,\"lease\":0},"
			     "{\"name\":\"app:x\",\"mode\":\"exclusive\",\"task\":44,\"host\":\"%s\",\"pid\":%d,"
			     "\"start\":%llu,\"at\":9,\"lease\":0},"
			     "{\"name\":\"app:y\",\"mode\":\"shared\",\"task\":44,\"host\":\"%s\",\"pid\":%d,"
			     "\"start\":%llu,\"at\":9,\"lease\":0}],"
			     "\"queue\":[{\"ticket\":7,\"expires\":1,\"locks\":[{\"name\":\"app:y\","
			     "\"mode\":\"exclusive\"}],\"task\":43,\"host\":\"%s\",\"pid\":%d,\"start\":%llu}],"
			     "\"nextTicket\":5}",
			     my_owner, a.pid, (unsigned long long)a.start_time, my_owner, c.pid,
			     (unsigned long long)c.start_time, my_owner, c.pid, (unsigned long long)c.start_time,
			     my_owner, b.pid, (unsigned long long)b.start_time) > 0);
	put_text(f->s, text);
	int64_t v = current_version(f->s);
	assert_badmsg(f->s, acquire_spec(f->s, &b, "app:z", NULL, NULL, NULL), "acquire");
	assert_non_null(strstr(store_errmsg(f->s), "holders[1]: app:x held exclusive by task 44 while task 42 holds it "
						 "exclusive"));
	assert_int_equal(current_version(f->s), v); /* nothing written */

	struct locks_repair_report rep;
	assert_int_equal(locks_repair(f->s, &rep), 0);
	assert_false(rep.was_valid);
	assert_string_equal(rep.old_text, text);
	assert_int_equal(rep.new_version, v + 1);
	assert_int_equal(rep.holders_kept, 2);
	assert_int_equal(rep.entries_dropped, 2); /* task 44's app:x, the ticket */
	assert_non_null(strstr(rep.problem, "holders[1]: app:x held exclusive"));
	locks_repair_report_release(&rep);
	free(text);

	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 2);
	const struct lock_holder *x = holder_named(&d, "app:x");
	assert_non_null(x);
	assert_true(lock_owner_same(&x->owner, &a));
	assert_non_null(holder_named(&d, "app:y"));
	assert_true(lock_owner_same(&holder_named(&d, "app:y")->owner, &c));
	assert_int_equal(d.n_waiters, 0);
	assert_true(d.next_ticket > 7); /* past the ticket that was past nextTicket */
	lock_doc_release(&d);

	/* app:x protects its first holder; a second repair finds nothing. */
	assert_int_equal(acquire_spec(f->s, &b, "app:x:shared", NULL, NULL, NULL), -EAGAIN);
	assert_int_equal(locks_repair(f->s, &rep), 0);
	assert_true(rep.was_valid);
	locks_repair_report_release(&rep);
}

static void test_repair_leaves_valid_document_alone(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42);
	assert_int_equal(acquire_spec(f->s, &a, "app:x", NULL, NULL, NULL), 0);
	char *before = stored_text(f->s);
	assert_true(strncmp(before, "boxd-locks 2 ", 13) == 0);
	int64_t v = current_version(f->s);

	struct locks_repair_report rep;
	assert_int_equal(locks_repair(f->s, &rep), 0);
	assert_true(rep.was_valid);
	assert_non_null(rep.old_text);
	assert_string_equal(rep.old_text, before);
	assert_int_equal(rep.old_version, v);
	assert_int_equal(rep.new_version, v);
	assert_int_equal(rep.holders_kept, 0);
	assert_int_equal(rep.entries_dropped, 0);
	assert_string_equal(rep.problem, "");
	locks_repair_report_release(&rep);

	char *after = stored_text(f->s);
	assert_string_equal(after, before);
	assert_int_equal(current_version(f->s), v);
	free(before);
	free(after);
	/* Readers get the JSON form. */
	after = current_text(f->s);
	assert_true(strncmp(after, "{\"holders\":[{", 13) == 0);
	free(after);
}

/* ---- main --------------------------------------------------------------- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

/* ---- a CAS whose UPDATE is lost in flight ------------------------------- */

struct lost_cas {
	struct store *s;
	struct lock_owner owner;
	int r;
	int64_t version;
};

static void *lost_cas_acquire(void *arg)
{
	struct lost_cas *c = arg;
	c->r = acquire_spec(c->s, &c->owner, "app:lost", NULL, &c->version, NULL);
	return NULL;
}

/* The connection of a lock change is killed while its UPDATE waits for a
 * row lock (a Galera node killed mid-CAS, for real on one server): the
 * store says -ECONNRESET, "may or may not have been applied". locks.c reads
 * the row again and finds the version unmoved, so it tries again on a new
 * connection: the acquire succeeds, applied exactly once. */
static void test_cas_survives_losing_its_update(void **state)
{
	struct fx *f = *state;
	if (test_backend == STORE_BACKEND_SQLITE)
		skip();
	bool my = test_backend == STORE_BACKEND_MYSQL;
	struct store *blocker = NULL, *admin = NULL;
	assert_int_equal(open_db(f->path, &blocker), 0);
	assert_int_equal(open_db(f->path, &admin), 0);
	int64_t v0 = current_version(f->s), session = session_of(f->s);

	/* Hold the lock row, so that the CAS's UPDATE waits. */
	assert_int_equal(store_begin(blocker, true), 0);
	int64_t v = -1;
	assert_int_equal(store_query_int64(blocker, &v, "SELECT version FROM locks WHERE id = 1 FOR UPDATE", NULL), 0);

	struct lost_cas c = { .s = f->s, .owner = self_owner(7), .r = 1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, lost_cas_acquire, &c), 0);
	const char *waiting = my ? "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE 'UPDATE locks%'"
				 : "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ? AND wait_event_type = 'Lock'";
	int64_t n = 0, deadline = now_mono_ms() + 20000;
	while (n == 0 && now_mono_ms() < deadline) {
		assert_int_equal(store_query_int64(admin, &n, waiting, "i", session), 0);
		if (n == 0)
			sleep_us(5000);
	}
	assert_int_equal(n, 1);
	kill_session(admin, session);
	/* Let the retry through once the killed session is gone. */
	const char *gone = my ? "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?"
			      : "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ?";
	deadline = now_mono_ms() + 20000;
	do {
		assert_int_equal(store_query_int64(admin, &n, gone, "i", session), 0);
		if (n)
			sleep_us(5000);
	} while (n && now_mono_ms() < deadline);
	store_rollback(blocker);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (c.r != 0)
		fail_msg("acquire after its UPDATE was lost: %d (%s)", c.r, store_errmsg(f->s));
	assert_int_equal(c.version, v0 + 1);
	assert_int_equal(current_version(f->s), v0 + 1); /* applied once */
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_true(lock_owner_same(&d.holders[0].owner, &c.owner));
	lock_doc_release(&d);
	store_close(blocker);
	store_close(admin);
}
/* ---- a big document, split over two rows (issue 18) ------------------- */

static int64_t q_int64(struct store *s, const char *sql)
{
	int64_t v = -1;
	assert_int_equal(store_query_int64(s, &v, sql, ""), 0);
	return v;
}

static int64_t base_rows(struct store *s) { return q_int64(s, "SELECT COUNT(*) FROM locks WHERE id > 1"); }

/* Task `task` takes big:FROM..big:TO-1, one change each. */
static void hold_range(struct store *s, const struct lock_owner *o, int from, int to)
{
	for (int i = from; i < to; i++) {
		char spec[64];
		snprintf(spec, sizeof(spec), "big:%d", i);
		assert_int_equal(acquire_spec(s, o, spec, NULL, NULL, NULL), 0);
	}
}

/* The document as a reader that kept nothing sees it (the base row read
 * from the database): every big:0..n-1 held by task 42. */
static void assert_holds_range(struct store *s, int n, size_t holders)
{
	lock_doc_cache_drop();
	struct lock_doc d;
	assert_int_equal(locks_read(s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, holders);
	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "big:%d", i);
		const struct lock_holder *h = holder_named(&d, name);
		if (!h || h->owner.task_id != 42)
			fail_msg("%s is not held by task 42", name);
	}
	lock_doc_release(&d);
}

/* With 200 locks held, a change writes a few lines into the lock row, not
 * the 200 holders: they are in the base row (format 3). What the lock row
 * says and the base together are the document, for this process and for
 * one that reads the base row afresh. */
static void test_big_document_change_writes_only_the_change(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42), b = self_owner(43);
	hold_range(f->s, &a, 0, 200);
	assert_int_equal(base_rows(f->s), 1);
	assert_int_equal(acquire_spec(f->s, &b, "other", NULL, NULL, NULL), 0);
	char *t = stored_text(f->s);
	assert_true(strncmp(t, "boxd-locks 3 ", 13) == 0);
	assert_true(strlen(t) < 3072); /* one row of 201 holders is ~9 KB */
	assert_non_null(strstr(t, "\nH other x 43 "));
	free(t);
	int n = 0;
	const char *names[] = { "other" };
	assert_int_equal(locks_unlock(f->s, &b, names, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_holds_range(f->s, 200, 200);
	/* b's lock is gone, and b can take one of a's? No: they conflict. */
	assert_int_equal(acquire_spec(f->s, &b, "big:150", NULL, NULL, NULL), -EAGAIN);
	lock_doc_cache_drop();
	assert_int_equal(acquire_spec(f->s, &b, "big:150", NULL, NULL, NULL), -EAGAIN);
	/* `boxd locks list` shows them all. */
	char *json = current_text(f->s);
	assert_non_null(strstr(json, "\"name\":\"big:199\""));
	free(json);
}

/* The base is written again (into the other slot, the old one deleted)
 * once the lock row holds too many changes; and the document goes back to
 * one row when it gets small. */
static void test_big_document_base_is_rewritten_and_joined(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42);
	hold_range(f->s, &a, 0, 100); /* split at 64 entries, 36 changes since */
	assert_int_equal(base_rows(f->s), 1);
	int64_t slot = q_int64(f->s, "SELECT id FROM locks WHERE id > 1");
	hold_range(f->s, &a, 100, 120); /* 56 changes: past the limit */
	assert_int_equal(base_rows(f->s), 1);
	assert_int_not_equal(q_int64(f->s, "SELECT id FROM locks WHERE id > 1"), slot);
	assert_holds_range(f->s, 120, 120);
	int n = 0;
	assert_int_equal(locks_unlock(f->s, &a, NULL, 0, &n), 0);
	assert_int_equal(n, 120);
	assert_int_equal(base_rows(f->s), 0);
	char *t = stored_text(f->s);
	assert_true(strncmp(t, "boxd-locks 2 ", 13) == 0);
	free(t);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 0);
	lock_doc_release(&d);
}

/* Another writer (here: by hand) put a new base and a lock row naming it:
 * a reader that kept the old base reads the new one, by its nonce. */
static void test_big_document_new_base_is_read(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42);
	hold_range(f->s, &a, 0, 80);
	assert_holds_range(f->s, 80, 80); /* this thread now keeps the base */
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	d.n_holders = 70; /* big:70..79 released, by the other writer */
	char *base = NULL, row[128];
	assert_int_equal(lock_doc_format(&d, &base), 0);
	snprintf(row, sizeof(row), "boxd-locks 3 %lld 3 777 70 0\n", (long long)d.next_ticket);
	lock_doc_release(&d);
	assert_int_equal(store_run(f->s, "DELETE FROM locks WHERE id > 1", ""), 1);
	assert_int_equal(store_run(f->s, "INSERT INTO locks (id, version, data) VALUES (3, 777, ?)", "s", base), 1);
	free(base);
	put_text(f->s, row);
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 70);
	assert_null(holder_named(&d, "big:75"));
	lock_doc_release(&d);
	struct lock_owner b = self_owner(43);
	assert_int_equal(acquire_spec(f->s, &b, "big:75", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &b, "big:5", NULL, NULL, NULL), -EAGAIN);
}

/* A base row that is not the one the lock row names (another nonce) is a
 * corrupt document: changes refuse it, and repair keeps every holder of
 * the base and of the lock row, in one row again. */
static void test_big_document_bad_base_is_repaired(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42), b = self_owner(43);
	hold_range(f->s, &a, 0, 80);
	assert_int_equal(store_run(f->s, "UPDATE locks SET version = version + 1 WHERE id > 1", ""), 1);
	lock_doc_cache_drop();
	assert_badmsg(f->s, acquire_spec(f->s, &b, "app:x", NULL, NULL, NULL), "try acquire");
	assert_non_null(strstr(store_errmsg(f->s), "base row"));
	struct locks_repair_report rep;
	assert_int_equal(locks_repair(f->s, &rep), 0);
	assert_false(rep.was_valid);
	assert_int_equal(rep.holders_kept, 80);
	locks_repair_report_release(&rep);
	assert_int_equal(base_rows(f->s), 0);
	assert_holds_range(f->s, 80, 80);
	assert_int_equal(acquire_spec(f->s, &b, "app:x", NULL, NULL, NULL), 0);
}

/* The document a change keeps for its next change is the one of the text
 * it wrote: another writer's text on the same base (here: by hand, big:5
 * released) is read, not the kept document. */
static void test_big_document_kept_doc_follows_the_row(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(42), b = self_owner(43);
	hold_range(f->s, &a, 0, 80);
	char *t = stored_text(f->s);
	int slot = 0;
	int64_t nonce = 0;
	char row[256];
	assert_true(sscanf(t, "boxd-locks 3 %*d %d %lld", &slot, (long long *)&nonce) == 2);
	free(t);
	/* Every holder is in the base now (64 of them) or in the row's H
	 * lines; write a row that keeps the base's and drops big:5. */
	lock_doc_cache_drop();
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	size_t nbh = d.n_holders - 16; /* 80 holders: 64 in the base, 16 after */
	lock_doc_release(&d);
	snprintf(row, sizeof(row), "boxd-locks 3 1 %d %lld %zu 0\n-H 5\n", slot, (long long)nonce, nbh);
	hold_range(f->s, &a, 80, 81); /* this thread keeps the document of its own text */
	put_text(f->s, row);
	assert_int_equal(acquire_spec(f->s, &b, "big:5", NULL, NULL, NULL), 0);
	assert_int_equal(acquire_spec(f->s, &b, "big:6", NULL, NULL, NULL), -EAGAIN);
}

/* lock_wait_report: a waiter is told of its first blocker and of another
 * lock at once, of another holder of the same lock at most every
 * LOCK_WAIT_REPORT_MS (the latest), because each report writes the task's
 * row and a hand-off changes the holder for every waiter of the queue. */
struct seen_reports {
	int n;
	struct lock_blocker last;
};

static void count_report(const struct lock_blocker *b, void *userdata)
{
	struct seen_reports *s = userdata;
	s->n++;
	s->last = *b;
}

static struct lock_blocker blocker(const char *lock, int64_t task)
{
	struct lock_blocker b = { .task_id = task, .pid = (int32_t)(1000 + task), .mode = LOCK_EXCLUSIVE };
	snprintf(b.lock, sizeof(b.lock), "%s", lock);
	snprintf(b.host, sizeof(b.host), "h");
	return b;
}

/* ---- the broker's row cache (locks_row_cache) ---------------------------- */

/* One acquire of `name` through locks_commit_batch() with `cache`: its
 * result (1 granted). */
static int batch_take(struct store *s, struct locks_row_cache *cache, const struct lock_owner *o, const char *name,
		      int64_t lease_ms)
{
	struct lock_req req;
	assert_int_equal(lock_req_parse(name, &req), 0);
	struct lock_batch_item it = { .op = LOCK_BATCH_ACQUIRE, .owner = *o, .reqs = &req, .n = 1,
				      .ttl_ms = 30000, .lease_ms = lease_ms };
	int64_t v = 0;
	assert_int_equal(locks_commit_batch(s, &it, 1, NULL, my_owner, cache, &v, NULL), 0);
	if (cache && cache->valid)
		assert_int_equal(cache->version, v);
	return it.result;
}

static uint64_t cache_hits(void)
{
	struct locks_stats st;
	locks_stats_get(&st);
	return st.row_cache_hits;
}

/* The writer of the row starts each change from what it wrote: no read
 * before the swap (on SQLite, no write transaction around it either). */
static void test_row_cache_starts_from_what_it_wrote(void **state)
{
	struct fx *f = *state;
	struct lock_owner o = self_owner(7);
	struct locks_row_cache cache = { 0 };
	uint64_t hits = cache_hits();
	char name[32];
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "cache:%d", i);
		assert_int_equal(batch_take(f->s, &cache, &o, name, 0), 1);
	}
	assert_int_equal(cache_hits() - hits, 4);
	assert_true(cache.valid);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 5);
	lock_doc_release(&d);
	locks_row_cache_clear(&cache);
	assert_false(cache.valid);
	assert_null(cache.text);
}

/* A change by anyone else makes the cached swap miss: the change reads the
 * row and runs again on it, and the other writer's change is kept. */
static void test_row_cache_misses_another_writers_change(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(7), b = self_owner(8);
	struct locks_row_cache cache = { 0 };
	assert_int_equal(batch_take(f->s, &cache, &a, "cache:a", 0), 1);
	/* Another writer: the direct path, on a connection of its own. */
	struct store *other;
	assert_int_equal(open_db(f->path, &other), 0);
	assert_int_equal(acquire_spec(other, &b, "cache:b", NULL, NULL, NULL), 0);
	store_close(other);
	struct locks_stats before, after;
	locks_stats_get(&before);
	/* b holds cache:b now: a is refused it, which the cached document
	 * (without b) would have granted. */
	assert_int_equal(batch_take(f->s, &cache, &a, "cache:b", 0), 0);
	assert_int_equal(batch_take(f->s, &cache, &a, "cache:c", 0), 1);
	locks_stats_get(&after);
	assert_int_equal(after.cas_conflicts - before.cas_conflicts, 1);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 3);
	assert_int_equal(holder_named(&d, "cache:b")->owner.task_id, 8);
	assert_int_equal(holder_named(&d, "cache:c")->owner.task_id, 7);
	lock_doc_release(&d);
	locks_row_cache_clear(&cache);
}

/* A change that the cached row says changes nothing is not trusted: with
 * no swap to say the row is still the one cached, it reads the row. Here
 * the cache does not know that a was granted a lock by the direct path. */
static void test_row_cache_checks_a_change_of_nothing(void **state)
{
	struct fx *f = *state;
	struct lock_owner a = self_owner(7);
	struct locks_row_cache cache = { 0 };
	assert_int_equal(batch_take(f->s, &cache, &a, "cache:a", 0), 1);
	assert_int_equal(acquire_spec(f->s, &a, "cache:direct", NULL, NULL, NULL), 0);
	const char *names[] = { "cache:direct" };
	struct lock_batch_item it = { .op = LOCK_BATCH_UNLOCK, .owner = a, .names = names, .n_names = 1 };
	int64_t v = 0;
	assert_int_equal(locks_commit_batch(f->s, &it, 1, NULL, my_owner, &cache, &v, NULL), 0);
	assert_int_equal(it.result, 1);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(d.n_holders, 1);
	assert_null(holder_named(&d, "cache:direct"));
	lock_doc_release(&d);
	locks_row_cache_clear(&cache);
}

/* A change from the cache stamps leases in the database's clock (read
 * with the row, moved on by this host's), as a change that reads does. */
static void test_row_cache_keeps_the_database_clock(void **state)
{
	struct fx *f = *state;
	struct lock_owner o = self_owner(7);
	struct locks_row_cache cache = { 0 };
	assert_int_equal(batch_take(f->s, &cache, &o, "clock:0", 60000), 1);
	int64_t t0 = 0, t1 = 0;
	assert_int_equal(store_now_ms(f->s, &t0), 0);
	uint64_t hits = cache_hits();
	assert_int_equal(batch_take(f->s, &cache, &o, "clock:1", 60000), 1);
	assert_int_equal(store_now_ms(f->s, &t1), 0);
	assert_int_equal(cache_hits() - hits, 1);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	const struct lock_holder *h = holder_named(&d, "clock:1");
	assert_non_null(h);
	/* Both clocks are read in whole milliseconds: 2 ms of slack. */
	assert_in_range(h->owner.acquired_at_ms, t0 - 2, t1 + 2);
	assert_int_equal(h->owner.lease_expires_ms, h->owner.acquired_at_ms + 60000);
	lock_doc_release(&d);
	locks_row_cache_clear(&cache);
}

static void test_wait_report_throttles_holder_changes(void **state)
{
	(void)state;
	struct seen_reports s = { 0 };
	struct locks_acquire_opts o = { .on_wait = count_report, .userdata = &s };
	struct lock_wait_report wr = { 0 };
	struct lock_blocker a1 = blocker("app:a", 1), a2 = blocker("app:a", 2), a3 = blocker("app:a", 3),
			    b4 = blocker("platform:h", 4);

	assert_int_equal(lock_wait_report_due_in_ms(&wr), INT64_MAX);
	assert_true(lock_wait_report_seen(&wr, &a1, &o)); /* the first: at once */
	assert_int_equal(s.n, 1);
	assert_false(lock_wait_report_seen(&wr, &a1, &o)); /* the same: never again */
	/* Two hand-offs within the interval: nothing now, the latest later. */
	assert_false(lock_wait_report_seen(&wr, &a2, &o));
	assert_false(lock_wait_report_seen(&wr, &a3, &o));
	assert_int_equal(s.n, 1);
	int64_t due = lock_wait_report_due_in_ms(&wr);
	assert_true(due > 0 && due <= LOCK_WAIT_REPORT_MS);
	assert_false(lock_wait_report_flush(&wr, &o)); /* not due yet */
	wr.shown_mono_ms -= LOCK_WAIT_REPORT_MS;      /* the interval has passed */
	assert_int_equal(lock_wait_report_due_in_ms(&wr), 0);
	assert_true(lock_wait_report_flush(&wr, &o));
	assert_int_equal(s.n, 2);
	assert_int_equal(s.last.task_id, 3);
	assert_int_equal(lock_wait_report_due_in_ms(&wr), INT64_MAX);

	/* Another lock: at once, whatever the interval. */
	assert_true(lock_wait_report_seen(&wr, &b4, &o));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.last.lock, "platform:h");
	/* Out of the queue into it (deferred, then queued): at once. */
	struct lock_blocker d = b4;
	d.deferred = true;
	assert_true(lock_wait_report_seen(&wr, &d, &o));
	assert_true(lock_wait_report_seen(&wr, &b4, &o));
	assert_int_equal(s.n, 5);
	/* A change that goes back before it was told is not told. */
	struct lock_blocker b5 = blocker("platform:h", 5);
	assert_false(lock_wait_report_seen(&wr, &b5, &o));
	assert_false(lock_wait_report_seen(&wr, &b4, &o));
	assert_int_equal(lock_wait_report_due_in_ms(&wr), INT64_MAX);
	wr.shown_mono_ms -= LOCK_WAIT_REPORT_MS;
	assert_false(lock_wait_report_flush(&wr, &o));
	assert_int_equal(s.n, 5);
}

/* A report of the first blocker can wait until the request has waited a
 * while (the broker's WAITING, broker.c FIRST_WAITING_MS): a wait granted
 * sooner is told nothing. */
static void test_wait_report_first_after(void **state)
{
	(void)state;
	struct seen_reports s = { 0 };
	struct locks_acquire_opts o = { .on_wait = count_report, .userdata = &s };
	struct lock_wait_report wr = { .first_after_ms = 1000, .since_mono_ms = now_mono_ms() };
	struct lock_blocker a1 = blocker("app:a", 1), a2 = blocker("app:a", 2);
	assert_null(lock_wait_report_current(&wr));
	assert_false(lock_wait_report_seen(&wr, &a1, &o)); /* too soon */
	assert_int_equal(s.n, 0);
	assert_int_equal(lock_wait_report_current(&wr)->task_id, 1);
	int64_t due = lock_wait_report_due_in_ms(&wr);
	assert_true(due > 0 && due <= 1000);
	assert_false(lock_wait_report_seen(&wr, &a2, &o)); /* still too soon; the latest kept */
	assert_false(lock_wait_report_flush(&wr, &o));
	wr.since_mono_ms -= 1000; /* it has waited long enough */
	assert_int_equal(lock_wait_report_due_in_ms(&wr), 0);
	assert_true(lock_wait_report_flush(&wr, &o));
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last.task_id, 2);
	assert_int_equal(lock_wait_report_current(&wr)->task_id, 2);
	/* From then on, the usual rule: a new holder after the interval. */
	assert_false(lock_wait_report_seen(&wr, &a1, &o));
	assert_int_equal(s.n, 1);
}

/* A lock broker's watcher (lock_wake_watch()) is not woken by the bumps of
 * the broker's own thread, which knows its changes, and is woken by any
 * other's: before, each of the broker's commits woke its watcher, which
 * woke the broker to read the version it had just written. */
struct watch_arg {
	struct lock_wake *w;
	uint32_t seen, bit;
	pid_t tid;
	atomic_bool woke;
	int64_t slept_ms;
};

static void *watch_main(void *p)
{
	struct watch_arg *a = p;
	__atomic_store_n(&a->tid, gettid(), __ATOMIC_RELEASE);
	int64_t t0 = now_mono_ms();
	lock_wake_watch(a->w, a->seen, 20 * 1000 * 1000, a->bit);
	a->slept_ms = now_mono_ms() - t0;
	atomic_store(&a->woke, true);
	return NULL;
}

/* Whether thread tid of this process sleeps (state S in its stat). */
static bool thread_sleeps(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

static void *bump_main(void *p)
{
	lock_wake_bump(p); /* a thread that is not the broker's */
	return NULL;
}

static void test_broker_watcher_ignores_its_own_bumps(void **state)
{
	struct fx *f = *state;
	struct lock_wake *w = lock_wake_get(f->s);
	if (!w)
		skip(); /* no shared word here (a server store without /dev/shm) */
	struct watch_arg a = { .w = w, .seen = lock_wake_seq(w), .bit = lock_wake_watcher_bit() };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, watch_main, &a), 0);
	int64_t end = now_mono_ms() + 10000;
	while (now_mono_ms() < end && !(__atomic_load_n(&a.tid, __ATOMIC_ACQUIRE) && thread_sleeps(a.tid)))
		sleep_us(1000);
	assert_true(thread_sleeps(a.tid));
	/* This thread as the broker's: its bumps leave the watcher asleep. */
	lock_wake_this_thread_is_broker(a.bit);
	for (int i = 0; i < 3; i++)
		lock_wake_bump(w);
	sleep_us(300 * 1000); /* an absence, measured over a while */
	assert_false(atomic_load(&a.woke));
	lock_wake_this_thread_is_broker(0);
	/* Any other thread's bump wakes it. */
	pthread_t o;
	assert_int_equal(pthread_create(&o, NULL, bump_main, w), 0);
	pthread_join(o, NULL);
	pthread_join(t, NULL);
	assert_true(atomic_load(&a.woke));
	assert_true(a.slept_ms < 10000);
}

int main(void)
{
	/* One stable host id for this process and its children. */
	setenv("BOXD_HOST_ID", HOST_ID, 1);
	if (host_owner_id_get(my_owner, sizeof(my_owner)) < 0) {
		fprintf(stderr, "cannot read this host's owner id\n");
		return 1;
	}
	const char *backend = getenv("BOXD_TEST_STORE");
	if (backend && *backend && store_backend_from_string(backend, &test_backend) < 0) {
		fprintf(stderr, "BOXD_TEST_STORE=%s: use sqlite, mysql or postgres\n", backend);
		return 1;
	}
	if (test_backend != STORE_BACKEND_SQLITE) {
		const char *var = test_backend == STORE_BACKEND_MYSQL ? "BOXD_TEST_MYSQL_DSN" : "BOXD_TEST_PG_DSN";
		admin_dsn = fixture_env_dsn(test_backend);
		if (!admin_dsn) {
			printf("SKIP: %s is not set (the test env is not started; run make check)\n", var);
			return 77;
		}
	}
	printf("# backend: %s\n", store_backend_name(test_backend));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_report_throttles_holder_changes),
		cmocka_unit_test(test_wait_report_first_after),
		T(test_broker_watcher_ignores_its_own_bumps),
		T(test_try_grant_fencing_token_increases),
		T(test_try_conflict_returns_eagain_with_blocker),
		T(test_invalid_request),
		T(test_try_reaps_dead_holder),
		T(test_refused_request_reaps_in_the_same_change),
		T(test_wait_timeout_leaves_no_ticket),
		T(test_on_wait_sees_blocker_and_wakes_on_release),
		T(test_cancel_flag),
		T(test_defer_to_backup),
		T(test_waiter_in_child_is_granted_after_release),
		T(test_fifo_across_processes),
		T(test_waiter_requeues_when_its_ticket_vanished),
		T(test_waiter_refreshes_its_ticket),
		T(test_waiter_lease_stays_fresh),
		T(test_waiter_is_woken_not_polling),
		T(test_waiter_sees_other_hosts_changes),
		T(test_unlock_named_and_all),
		T(test_unlock_task),
		T(test_reap_sigkilled_child),
		T(test_reap_live_pid_wrong_start_time),
		T(test_reap_owner_of_earlier_boot),
		T(test_reap_other_host_by_lease),
		T(test_renew_leases),
		T(test_renew_owner),
		T(test_fence_check),
		T(test_task_ctx_lock_waits_visibly),
		T(test_reap_expired_reports_other_hosts_only),
		T(test_no_lease_reaped_right_after_trouble),
		T(test_waiter_reports_expired_holder),
		T(test_corrupt_row_fails_and_is_left_alone),
		T(test_repair_keeps_valid_holders),
		T(test_repair_resolves_broken_invariants),
		T(test_repair_leaves_valid_document_alone),
		T(test_cas_survives_losing_its_update),
		T(test_big_document_change_writes_only_the_change),
		T(test_big_document_base_is_rewritten_and_joined),
		T(test_big_document_new_base_is_read),
		T(test_big_document_bad_base_is_repaired),
		T(test_big_document_kept_doc_follows_the_row),
		T(test_row_cache_starts_from_what_it_wrote),
		T(test_row_cache_misses_another_writers_change),
		T(test_row_cache_checks_a_change_of_nothing),
		T(test_row_cache_keeps_the_database_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
