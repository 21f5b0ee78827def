/* test-store.c — the store API, run against every backend available:
 * SQLite always (a temp file), MariaDB/MySQL when BOXD_TEST_MYSQL_DSN is set
 * and PostgreSQL when BOXD_TEST_PG_DSN is set. Those DSNs name a server
 * without a specific database; each test creates a fresh database
 * boxd_test_<pid>_<n> through an admin connection and drops it afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "locks/locks.h"
#include "store/store.h"
#include "store/store_retry.h"

#include "fixture-store.h"
#include "pg-drop-relay.h"
#include "wal-sync-vfs.h"

struct backend {
	const char *name;
	enum store_backend kind;
	const char *env;
	const char *admin_dsn;
	struct store *admin; /* a server backend is available when set */
	struct fixture_db db; /* the current test's database */
};

static struct backend backends[] = {
	{ .name = "sqlite", .kind = STORE_BACKEND_SQLITE },
	{ .name = "mysql", .kind = STORE_BACKEND_MYSQL, .env = "BOXD_TEST_MYSQL_DSN" },
	{ .name = "postgres", .kind = STORE_BACKEND_POSTGRES, .env = "BOXD_TEST_PG_DSN" },
};
static struct backend *cur;

#define B(state) ((struct backend *)*(state))
#define SKIP_UNLESS_AVAILABLE(b)                                                                 \
	do {                                                                                         \
		if ((b)->kind != STORE_BACKEND_SQLITE && !(b)->admin)                                \
			skip();                                                                      \
	} while (0)

/* ---- helpers ------------------------------------------------------------- */

static int open_opts(struct backend *b, struct store **ret, int busy_ms, bool no_migrate, char *err, size_t errlen)
{
	struct store_options o = {
		.backend = b->kind,
		.sqlite_path = b->db.path,
		.dsn = b->db.dsn,
		.busy_timeout_ms = busy_ms,
		.no_migrate = no_migrate,
	};
	return store_open(&o, ret, err, errlen);
}

static struct store *open_db(struct backend *b, int busy_ms)
{
	struct store *s = NULL;
	char err[512];
	int r = open_opts(b, &s, busy_ms, false, err, sizeof(err));
	if (r < 0)
		fail_msg("open %s: %s (%d)", b->name, err, r);
	return s;
}

static int64_t q_int(struct store *s, const char *sql)
{
	int64_t v = -1;
	int r = store_query_int64(s, &v, sql, NULL);
	if (r < 0)
		fail_msg("%s: %s (%d)", sql, store_errmsg(s), r);
	return v;
}

static void run_ok(struct store *s, const char *sql)
{
	int64_t n = store_run(s, sql, NULL);
	if (n < 0)
		fail_msg("%s: %s (%d)", sql, store_errmsg(s), (int)n);
}

static int group_setup(void **state)
{
	struct backend *b = cur;
	*state = b;
	if (b->kind == STORE_BACKEND_SQLITE)
		return 0;
	b->admin_dsn = fixture_env_dsn(b->kind);
	if (!b->admin_dsn) {
		printf("# %s: %s is not set; skipping its tests\n", b->name, b->env);
		return 0;
	}
	char err[512];
	struct store *admin = NULL;
	struct store_options o = { .backend = b->kind, .dsn = b->admin_dsn, .no_migrate = true };
	int r = store_open(&o, &admin, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s: cannot open admin connection: %s\n", b->name, err);
		return -1;
	}
	b->admin = admin;
	return 0;
}

static int group_teardown(void **state)
{
	struct backend *b = B(state);
	store_close(b->admin);
	b->admin = NULL;
	return 0;
}

static int test_setup(void **state)
{
	struct backend *b = B(state);
	if (b->kind != STORE_BACKEND_SQLITE && !b->admin)
		return 0; /* skipped */
	return fixture_db_create(&b->db, b->kind, b->admin_dsn, "store");
}

static int test_teardown(void **state)
{
	fixture_db_drop(&B(state)->db);
	return 0;
}

static const char *long_text_type(const struct backend *b)
{
	return b->kind == STORE_BACKEND_MYSQL ? "LONGTEXT" : "TEXT";
}

static void create_t(struct backend *b, struct store *s)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "CREATE TABLE t (id BIGINT PRIMARY KEY, name %s, n BIGINT)", long_text_type(b));
	run_ok(s, sql);
}

/* Fork children that each run fn(b, i) and exit with its result; they start
 * together when the parent closes the barrier. Returns the number of
 * children that failed. */
static int run_children(struct backend *b, int n, int (*fn)(struct backend *b, int i))
{
	int barrier[2];
	pid_t pids[16];
	assert_true(n <= 16);
	assert_int_equal(pipe(barrier), 0);
	fflush(NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(barrier[1]);
			char c;
			(void)!read(barrier[0], &c, 1);
			_exit(fn(b, i) < 0 ? 1 : 0);
		}
	}
	close(barrier[0]);
	close(barrier[1]);
	int failed = 0;
	for (int i = 0; i < n; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	return failed;
}

/* ---- migrations ------------------------------------------------------------ */

/* Migrations keep being added: the first open's version is the newest. */
#define OLDEST_LATEST_SCHEMA 2

static void t_migrate_once(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	int64_t latest = 0, v = 0;
	assert_int_equal(store_schema_version(s, &latest), 0);
	assert_true(latest >= OLDEST_LATEST_SCHEMA);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM schema_version"), 1);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM locks"), 1);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 0);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM tasks"), 0);
	run_ok(s, "UPDATE locks SET version = 5 WHERE id = 1");
	store_close(s);

	/* Reopening applies nothing again (the lock row is not reset). */
	s = open_db(b, 0);
	assert_int_equal(store_schema_version(s, &v), 0);
	assert_int_equal(v, latest);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM schema_version"), 1);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM locks"), 1);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 5);
	store_close(s);

	/* no_migrate opens without touching the schema. */
	char err[512];
	assert_int_equal(open_opts(b, &s, 0, true, err, sizeof(err)), 0);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 5);
	store_close(s);
}

static int child_open(struct backend *b, int i)
{
	(void)i;
	struct store *s = NULL;
	char err[512];
	int r = open_opts(b, &s, 20000, false, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "child open: %s\n", err);
	store_close(s);
	return r;
}

static void t_migrate_concurrent(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	assert_int_equal(run_children(b, 6, child_open), 0);
	struct store *s = open_db(b, 0);
	int64_t v = 0;
	assert_int_equal(store_schema_version(s, &v), 0);
	assert_true(v >= OLDEST_LATEST_SCHEMA);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM schema_version"), 1);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM locks"), 1);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 0);
	store_close(s);
}

/* ---- text, placeholders, NULL ---------------------------------------------- */

static const char tricky[] = "it's \"quoted\" ? ?? $1 :x back\\slash -- not a comment /* nor this */ \xc3\xbc\xe2\x82\xac";

static void expect_text(struct store *s, const char *sql, int64_t id, const char *want)
{
	struct store_stmt *st;
	int r = store_query(s, &st, sql, "i", id);
	if (r < 0)
		fail_msg("%s: %s", sql, store_errmsg(s));
	r = store_step(st);
	if (r != 1)
		fail_msg("%s: step %d: %s", sql, r, store_errmsg(s));
	const char *got = store_col_text(st, 0);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(store_step(st), 0);
	store_finalize(st);
}

static void t_text(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	create_t(b, s);

	assert_int_equal(store_run(s, "INSERT INTO t (id, name, n) VALUES (?, ?, ?)", "isi", (int64_t)1, tricky,
				   (int64_t)-42), 1);
	expect_text(s, "SELECT name FROM t WHERE id = ?", 1, tricky);

	/* Placeholders inside literals, identifiers and comments are text. */
	int64_t n = store_run(s,
			      "INSERT INTO t (id, name, n) /* a ? here */ VALUES (?, 'lit ''?'' -- ? /* ? */', ?) -- and ?\n",
			      "ii", (int64_t)2, (int64_t)7);
	if (n != 1)
		fail_msg("insert with literal: %d %s", (int)n, store_errmsg(s));
	expect_text(s, "SELECT name FROM t WHERE id = ?", 2, "lit '?' -- ? /* ? */");
	assert_int_equal(q_int(s, "SELECT n FROM t WHERE id = 2"), 7);
	assert_int_equal(q_int(s, "SELECT n FROM t WHERE id = 1"), -42);

	struct store_stmt *st;
	assert_int_equal(store_query(s, &st, "SELECT 'a?b' AS \"c?d\", name, ? FROM t WHERE name = ? AND id <> ?", "ssi",
				     "p?", tricky, (int64_t)2), 0);
	assert_int_equal(store_step(st), 1);
	assert_string_equal(store_col_text(st, 0), "a?b");
	assert_string_equal(store_col_text(st, 1), tricky);
	assert_string_equal(store_col_text(st, 2), "p?");
	assert_int_equal(store_step(st), 0);
	store_finalize(st);

	/* A backslash in a literal is just a backslash on every backend. */
	int64_t eq = -1;
	assert_int_equal(store_query_int64(s, &eq, "SELECT COUNT(*) FROM t WHERE 'a\\b' = ? AND id = 1", "s", "a\\b"), 0);
	assert_int_equal(eq, 1);

	assert_int_equal(store_run(s, "UPDATE t SET name = ? WHERE name = ?", "ss", "new ? name", tricky), 1);
	expect_text(s, "SELECT name FROM t WHERE id = ?", 1, "new ? name");

	if (b->kind == STORE_BACKEND_POSTGRES) {
		assert_int_equal(store_query(s, &st, "SELECT E'x\\'?', $$?$$, $tag$ ' ? $tag$, ? FROM t WHERE id = 1", "s",
					     "v"), 0);
		assert_int_equal(store_step(st), 1);
		assert_string_equal(store_col_text(st, 0), "x'?");
		assert_string_equal(store_col_text(st, 1), "?");
		assert_string_equal(store_col_text(st, 2), " ' ? ");
		assert_string_equal(store_col_text(st, 3), "v");
		store_finalize(st);
	}

	/* Long values, and a later row longer than an earlier one. */
	size_t big = 300000;
	char *longtext = malloc(big + 1);
	assert_non_null(longtext);
	for (size_t i = 0; i < big; i++)
		longtext[i] = (char)('a' + i % 26);
	longtext[big] = 0;
	assert_int_equal(store_run(s, "INSERT INTO t (id, name, n) VALUES (10, ?, 1)", "s", "short"), 1);
	longtext[100] = 0;
	assert_int_equal(store_run(s, "INSERT INTO t (id, name, n) VALUES (11, ?, 2)", "s", longtext), 1);
	longtext[100] = 'w';
	assert_int_equal(store_run(s, "INSERT INTO t (id, name, n) VALUES (12, ?, 3)", "s", longtext), 1);
	assert_int_equal(store_query(s, &st, "SELECT name, n FROM t WHERE id >= 10 ORDER BY id", NULL), 0);
	assert_int_equal(store_step(st), 1);
	assert_string_equal(store_col_text(st, 0), "short");
	assert_int_equal(store_step(st), 1);
	assert_int_equal(strlen(store_col_text(st, 0)), 100);
	assert_int_equal(store_col_int64(st, 1), 2);
	assert_int_equal(store_step(st), 1);
	assert_int_equal(strlen(store_col_text(st, 0)), big);
	assert_string_equal(store_col_text(st, 0), longtext);
	assert_int_equal(store_col_int64(st, 1), 3);
	assert_int_equal(store_step(st), 0);
	store_finalize(st);
	free(longtext);

	/* Another statement may run while a result is being read. */
	assert_int_equal(store_query(s, &st, "SELECT id FROM t WHERE id >= 10 ORDER BY id", NULL), 0);
	int rows = 0;
	while (store_step(st) == 1) {
		assert_int_equal(store_run(s, "UPDATE t SET n = n + 100 WHERE id = ?", "i", store_col_int64(st, 0)), 1);
		rows++;
	}
	store_finalize(st);
	assert_int_equal(rows, 3);
	assert_int_equal(q_int(s, "SELECT SUM(n) FROM t WHERE id >= 10"), 306);
	store_close(s);
}

static void t_nulls(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	create_t(b, s);
	assert_int_equal(store_run(s, "INSERT INTO t (id, name, n) VALUES (?, ?, ?)", "isn", (int64_t)3, NULL), 1);
	struct store_stmt *st;
	assert_int_equal(store_prepare(s, "INSERT INTO t (id, name, n) VALUES (?, ?, ?)", &st), 0);
	assert_int_equal(store_bind_int64(st, 1, 4), 0);
	assert_int_equal(store_bind_text(st, 2, "x"), 0);
	assert_int_equal(store_bind_null(st, 2), 0); /* rebinding to NULL */
	assert_int_equal(store_bind_null(st, 3), 0);
	assert_int_equal(store_step(st), 0);
	assert_int_equal(store_changes(st), 1);
	store_finalize(st);

	assert_int_equal(store_query(s, &st, "SELECT name, n, id FROM t ORDER BY id", NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(store_step(st), 1);
		assert_true(store_col_is_null(st, 0));
		assert_true(store_col_is_null(st, 1));
		assert_false(store_col_is_null(st, 2));
		assert_null(store_col_text(st, 0));
		assert_int_equal(store_col_int64(st, 1), 0);
		assert_int_equal(store_col_int64(st, 2), 3 + i);
	}
	assert_int_equal(store_step(st), 0);
	store_finalize(st);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t WHERE name IS NULL AND n IS NULL"), 2);
	store_close(s);
}

/* ---- RETURNING, errors ------------------------------------------------------ */

static const char insert_task[] =
	"INSERT INTO tasks (type, args, state, message, created_at) VALUES (?, ?, 'queued', '', ?) RETURNING id";

static void t_returning(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	int64_t id1 = 0, id2 = 0;
	int r = store_query_int64(s, &id1, insert_task, "ssi", "hold", "{\"a\":\"?\"}", now_wall_ms());
	if (r < 0)
		fail_msg("RETURNING: %s", store_errmsg(s));
	assert_true(id1 > 0);
	struct store_stmt *st;
	assert_int_equal(store_query(s, &st, insert_task, "ssi", "hold", "{}", now_wall_ms()), 0);
	assert_int_equal(store_step(st), 1);
	id2 = store_col_int64(st, 0);
	assert_int_equal(store_step(st), 0);
	assert_int_equal(store_changes(st), 1);
	store_finalize(st);
	assert_int_equal(id2, id1 + 1);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM tasks"), 2);
	store_close(s);
}

/* An autocommit INSERT ... RETURNING commits on its final step, where
 * SQLite writes the WAL: when that write fails (here the kernel refuses to
 * grow the file past RLIMIT_FSIZE, as it refuses on a full disk),
 * store_query_int64() must fail and hand out no id, and no row exists. */
static void t_returning_commit_fails(void **state)
{
	struct backend *b = B(state);
	if (b->kind != STORE_BACKEND_SQLITE)
		skip(); /* the server backends commit before they answer */
	struct store *s = open_db(b, 0);
	int64_t id = 0;
	assert_int_equal(store_query_int64(s, &id, insert_task, "ssi", "hold", "{}", now_wall_ms()), 0);
	char wal[PATH_MAX + 32];
	snprintf(wal, sizeof(wal), "%s-wal", b->db.path);
	struct stat st;
	assert_int_equal(stat(wal, &st), 0);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	/* Big enough for new pages, small enough to stay in the page cache
	 * until the commit. */
	char *big = malloc(20000);
	assert_non_null(big);
	memset(big, 'x', 19999);
	big[19999] = 0;
	int64_t id2 = -1;
	int r = store_query_int64(s, &id2, insert_task, "ssi", "hold", big, now_wall_ms());
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	free(big);
	assert_true(r < 0);
	assert_int_equal(id2, -1);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM tasks"), 1);
	/* Nothing is left half-done: the next insert works and gets a new id. */
	int64_t id3 = 0;
	assert_int_equal(store_query_int64(s, &id3, insert_task, "ssi", "hold", "{}", now_wall_ms()), 0);
	assert_true(id3 > id);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM tasks"), 2);
	store_close(s);
}

static void t_errors(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	create_t(b, s);
	struct store_stmt *st = NULL;
	int r = store_prepare(s, "SELEKT nonsense", &st);
	if (r == 0) /* PostgreSQL's unnamed statements report at step */
		r = store_step(st), store_finalize(st);
	assert_true(r < 0);
	assert_true(strlen(store_errmsg(s)) > 0);
	int64_t v;
	assert_true(store_query_int64(s, &v, "SELECT x FROM no_such_table", NULL) < 0);
	assert_int_equal(store_run(s, "INSERT INTO t (id) VALUES (1)", NULL), 1);
	assert_int_equal(store_run(s, "INSERT INTO t (id) VALUES (1)", NULL), -EEXIST);
	assert_int_equal(store_query(s, &st, "SELECT id FROM t WHERE id = ?", NULL), 0);
	assert_true(store_bind_int64(st, 2, 1) < 0);
	store_finalize(st);
	assert_int_equal(store_query_int64(s, &v, "SELECT id FROM t WHERE id = 2", NULL), -ENOENT);
	/* The connection is still fine. */
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 1);
	store_close(s);
}

static void t_bad_dsn(void **state)
{
	struct backend *b = B(state);
	if (b->kind == STORE_BACKEND_SQLITE)
		skip();
	static const char *const my_bad[] = { "http://x/", "mysql://h/db?bogus=1", "mysql://h:99999/db",
					      "mysql://u%zz@h/db", "" };
	static const char *const pg_bad[] = { "nonsense_keyword=1", "postgresql://[", "" };
	const char *const *bad = b->kind == STORE_BACKEND_MYSQL ? my_bad : pg_bad;
	for (; **bad; bad++) {
		struct store_options o = { .backend = b->kind, .dsn = *bad, .no_migrate = true };
		struct store *s = NULL;
		char err[512] = "";
		int r = store_open(&o, &s, err, sizeof(err));
		if (r != -EINVAL)
			fail_msg("DSN \"%s\": got %d (%s), want -EINVAL", *bad, r, err);
		assert_null(s);
		assert_true(strlen(err) > 0);
	}
	/* Percent-encoded parts are decoded (the socket path here). */
	const char *sock = b->admin ? strstr(b->admin_dsn, "socket=/") : NULL;
	if (b->kind == STORE_BACKEND_MYSQL && sock) {
		char dsn[1200];
		snprintf(dsn, sizeof(dsn), "%.*ssocket=%%2F%s", (int)(sock - b->admin_dsn), b->admin_dsn, sock + 8);
		struct store_options o = { .backend = b->kind, .dsn = dsn, .no_migrate = true };
		struct store *s = NULL;
		char err[512] = "";
		if (store_open(&o, &s, err, sizeof(err)) < 0)
			fail_msg("DSN \"%s\": %s", dsn, err);
		assert_int_equal(q_int(s, "SELECT 1"), 1);
		store_close(s);
	}
}

/* ---- transactions and the CAS ------------------------------------------------ */

/* store_run_relaxed(): store_run() as far as the caller sees (rows
 * changed, errors, transactions); on SQLite a durable connection is FULL
 * again after it, a relaxed one stays NORMAL. */
static void t_run_relaxed(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0), *other = open_db(b, 0);
	create_t(b, s);
	bool sqlite = b->kind == STORE_BACKEND_SQLITE;
	if (sqlite)
		assert_int_equal(q_int(s, "PRAGMA synchronous"), 2);
	assert_int_equal(store_run_relaxed(s, "INSERT INTO t (id, name) VALUES (?, ?)", "is", (int64_t)1, "a"), 1);
	assert_int_equal(q_int(other, "SELECT COUNT(*) FROM t"), 1);
	assert_int_equal(store_run_relaxed(s, "UPDATE t SET name = 'b' WHERE id = 2", NULL), 0);
	assert_int_equal(store_run_relaxed(s, "INSERT INTO t (id, name) VALUES (1, 'dup')", NULL), -EEXIST);
	if (sqlite)
		assert_int_equal(q_int(s, "PRAGMA synchronous"), 2);
	/* In a transaction: part of it. */
	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_run_relaxed(s, "INSERT INTO t (id, name) VALUES (2, 'b')", NULL), 1);
	store_rollback(s);
	assert_int_equal(q_int(other, "SELECT COUNT(*) FROM t"), 1);
	if (sqlite) {
		assert_int_equal(q_int(s, "PRAGMA synchronous"), 2);
		/* A connection opened relaxed stays so. */
		struct store *r = NULL;
		char err[512];
		struct store_options o = { .backend = b->kind, .sqlite_path = b->db.path, .relaxed_durability = true };
		assert_int_equal(store_open(&o, &r, err, sizeof(err)), 0);
		assert_int_equal(store_run_relaxed(r, "INSERT INTO t (id, name) VALUES (3, 'c')", NULL), 1);
		assert_int_equal(q_int(r, "PRAGMA synchronous"), 1);
		store_close(r);
	}
	store_close(other);
	store_close(s);
}

/* A durable SQLite connection syncs its WAL when it opens, before it takes
 * any lock. SQLite fsyncs the WAL's directory at a connection's first sync;
 * in its first durable commit that sync fell inside the write lock, and
 * every other writer waited for a second fsync (a worker's `running`, on
 * every task: issue 18). */
static void t_first_wal_sync_outside_write_lock(void **state)
{
	struct backend *b = B(state);
	if (b->kind != STORE_BACKEND_SQLITE)
		skip();
	struct store *s = open_db(b, 0);
	create_t(b, s);
	store_close(s); /* the last connection: SQLite removes the WAL */
	wal_sync_vfs_install();
	s = open_db(b, 0);
	assert_int_equal(wal_sync_vfs_counts().first_syncs_unlocked, 1);
	run_ok(s, "INSERT INTO t (id, name) VALUES (1, 'a')");
	struct wal_sync_counts c = wal_sync_vfs_counts();
	assert_true(c.write_locks >= 1); /* the VFS saw the commit's lock */
	assert_int_equal(c.first_syncs_locked, 0);
	assert_int_equal(c.first_syncs_unlocked, 1);
	store_close(s);
}

static void t_transactions(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0), *other = open_db(b, 0);
	create_t(b, s);

	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_begin(s, true), -EINPROGRESS);
	assert_int_equal(store_run(s, "INSERT INTO t (id, name) VALUES (1, 'a')", NULL), 1);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 1);
	assert_int_equal(q_int(other, "SELECT COUNT(*) FROM t"), 0);
	store_rollback(s);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 0);
	store_rollback(s); /* no transaction: a no-op */
	assert_int_equal(store_commit(s), -EINVAL);

	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_run(s, "INSERT INTO t (id, name) VALUES (1, 'a')", NULL), 1);
	assert_int_equal(store_run(s, "INSERT INTO t (id, name) VALUES (2, 'b')", NULL), 1);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(q_int(other, "SELECT COUNT(*) FROM t"), 2);

	/* A failed statement, then rollback: nothing stays, the connection
	 * works. */
	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_run(s, "INSERT INTO t (id, name) VALUES (3, 'c')", NULL), 1);
	assert_int_equal(store_run(s, "INSERT INTO t (id, name) VALUES (1, 'dup')", NULL), -EEXIST);
	store_rollback(s);
	assert_int_equal(q_int(other, "SELECT COUNT(*) FROM t"), 2);

	/* A failed commit leaves no transaction behind. */
	if (b->kind == STORE_BACKEND_POSTGRES) {
		assert_int_equal(store_begin(s, true), 0);
		assert_true(store_run(s, "INSERT INTO t (id, name) VALUES (1, 'dup')", NULL) < 0);
		assert_int_equal(store_run(s, "INSERT INTO t (id, name) VALUES (4, 'd')", NULL), -ECANCELED);
		assert_true(store_commit(s) < 0);
		assert_int_equal(store_begin(s, true), 0);
		store_rollback(s);
		assert_int_equal(q_int(other, "SELECT COUNT(*) FROM t"), 2);
	}
	store_close(other);
	store_close(s);
}

static const char cas_sql[] = "UPDATE locks SET data = ?, version = version + 1 WHERE id = ? AND version = ?";

static void t_cas(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0), *other = open_db(b, 0);
	int64_t v = q_int(s, "SELECT version FROM locks WHERE id = 1");
	assert_int_equal(store_run(s, cas_sql, "sii", "{\"x\":1}", (int64_t)1, v), 1);
	assert_int_equal(store_run(s, cas_sql, "sii", "{\"x\":2}", (int64_t)1, v), 0); /* stale */
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), v + 1);

	/* Another connection wins between our read and our write. */
	int64_t mine = q_int(s, "SELECT version FROM locks WHERE id = 1");
	assert_int_equal(store_run(other, cas_sql, "sii", "{\"y\":1}", (int64_t)1, mine), 1);
	assert_int_equal(store_run(s, cas_sql, "sii", "{\"y\":2}", (int64_t)1, mine), 0);

	/* A matched row that does not change still counts (CLIENT_FOUND_ROWS). */
	assert_int_equal(store_run(s, "UPDATE locks SET data = data WHERE id = 1", NULL), 1);
	struct store_stmt *st;
	assert_int_equal(store_query(s, &st, "SELECT data FROM locks WHERE id = 1", NULL), 0);
	assert_int_equal(store_step(st), 1);
	assert_string_equal(store_col_text(st, 0), "{\"y\":1}");
	store_finalize(st);
	store_close(other);
	store_close(s);
}

static void t_now(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	int64_t db = 0;
	assert_int_equal(store_now_ms(s, &db), 0);
	int64_t wall = now_wall_ms();
	if (llabs(db - wall) > 2000)
		fail_msg("database clock %lld vs wall clock %lld", (long long)db, (long long)wall);
	int64_t db2 = 0;
	sleep_us(20000);
	assert_int_equal(store_now_ms(s, &db2), 0);
	assert_true(db2 >= db + 10);
	store_close(s);
}

/* ---- busy ---------------------------------------------------------------------- */

/* A child holds the write lock (SQLite: BEGIN IMMEDIATE; servers: the row
 * lock of locks.id=1) for hold_ms, then commits. */
static pid_t start_holder(struct backend *b, int hold_ms)
{
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		struct store *s = NULL;
		char err[512];
		if (open_opts(b, &s, 0, true, err, sizeof(err)) < 0 || store_begin(s, true) < 0 ||
		    store_run(s, "UPDATE locks SET version = version + 1 WHERE id = 1", NULL) != 1)
			_exit(1);
		(void)!write(ready[1], "x", 1);
		sleep_us((int64_t)hold_ms * 1000);
		int r = store_commit(s);
		store_close(s);
		_exit(r < 0 ? 1 : 0);
	}
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static void wait_child(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static int write_locks_row(struct store *s)
{
	int r = store_begin(s, true);
	if (r < 0)
		return r;
	int64_t n = store_run(s, "UPDATE locks SET version = version + 1 WHERE id = 1", NULL);
	if (n < 0) {
		store_rollback(s);
		return (int)n;
	}
	return store_commit(s);
}

static void t_busy(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 3000);

	/* Held for 200 ms: we wait and then succeed. */
	pid_t pid = start_holder(b, 200);
	int64_t t0 = now_mono_ms();
	int r = write_locks_row(s);
	int64_t waited = now_mono_ms() - t0;
	if (r < 0)
		fail_msg("write while held briefly: %d %s", r, store_errmsg(s));
	assert_true(waited >= 100);
	assert_true(waited < 3000);
	wait_child(pid);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 2);
	store_close(s);

	/* Held longer than the busy timeout: -EBUSY after about that long. */
	s = open_db(b, 1000);
	pid = start_holder(b, 3000);
	t0 = now_mono_ms();
	r = write_locks_row(s);
	waited = now_mono_ms() - t0;
	if (r != -EBUSY)
		fail_msg("write while held long: got %d (%s), want -EBUSY", r, store_errmsg(s));
	if (waited < 800 || waited > 2800)
		fail_msg("gave up after %lld ms with a busy timeout of 1000 ms", (long long)waited);
	assert_true(strlen(store_errmsg(s)) > 0);
	wait_child(pid);
	/* And the connection works afterwards. */
	assert_int_equal(write_locks_row(s), 0);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 4);

	/* The same outside a transaction (autocommit). */
	static const char bump[] = "UPDATE locks SET version = version + 1 WHERE id = 1";
	pid = start_holder(b, 200);
	int64_t n = store_run(s, bump, NULL);
	if (n != 1)
		fail_msg("autocommit write while held briefly: %d %s", (int)n, store_errmsg(s));
	wait_child(pid);
	pid = start_holder(b, 2500);
	t0 = now_mono_ms();
	n = store_run(s, bump, NULL);
	waited = now_mono_ms() - t0;
	if (n != -EBUSY || waited < 800 || waited > 2400)
		fail_msg("autocommit write while held long: %d after %lld ms (%s)", (int)n, (long long)waited,
			 store_errmsg(s));
	wait_child(pid);
	assert_int_equal(store_run(s, bump, NULL), 1);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 8);
	store_close(s);
}

/* ---- reconnect ---------------------------------------------------------------- */

static int64_t session_id(struct backend *b, struct store *s)
{
	return q_int(s, b->kind == STORE_BACKEND_MYSQL ? "SELECT CONNECTION_ID()" : "SELECT pg_backend_pid()");
}

/* Whether the server has ended session `id` (it ends a closed one
 * asynchronously: awaited with a deadline). */
static bool session_gone(struct backend *b, int64_t id)
{
	const char *sql = b->kind == STORE_BACKEND_MYSQL
				  ? "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?"
				  : "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ?";
	for (int i = 0; i < 500; i++) {
		int64_t n = -1;
		assert_int_equal(store_query_int64(b->admin, &n, sql, "i", id), 0);
		if (n == 0)
			return true;
		sleep_us(10000);
	}
	return false;
}

static void kill_session(struct backend *b, int64_t id)
{
	char sql[128];
	if (b->kind == STORE_BACKEND_MYSQL) {
		snprintf(sql, sizeof(sql), "KILL CONNECTION %lld", (long long)id);
		run_ok(b->admin, sql);
		/* KILL returns before the session is gone. */
		if (!session_gone(b, id))
			fail_msg("connection %lld still there after KILL", (long long)id);
	} else {
		int64_t ok = 0;
		assert_int_equal(store_query_int64(b->admin, &ok, "SELECT CAST(pg_terminate_backend(?, 5000) AS INT)",
						   "i", id), 0);
		assert_int_equal(ok, 1);
	}
}

static void t_reconnect(void **state)
{
	struct backend *b = B(state);
	if (b->kind == STORE_BACKEND_SQLITE)
		skip();
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	create_t(b, s);
	static const char ins[] = "INSERT INTO t (id, name) VALUES (?, ?)";
	assert_int_equal(store_run(s, ins, "is", (int64_t)1, "before"), 1);

	/* Outside a transaction: the next statement, even a write, runs on a
	 * new connection; cached statements are prepared again. */
	int64_t id = session_id(b, s);
	kill_session(b, id);
	int64_t n = store_run(s, ins, "is", (int64_t)2, "after kill");
	if (n != 1)
		fail_msg("insert after kill: %d %s", (int)n, store_errmsg(s));
	int64_t id2 = session_id(b, s);
	assert_true(id2 != id);
	assert_int_equal(store_run(s, ins, "is", (int64_t)3, "again"), 1);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 3);

	/* A read after a kill. */
	kill_session(b, id2);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 3);

	/* Inside a transaction: the transaction is gone, and every statement
	 * says so until the rollback; nothing of it is applied. */
	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_run(s, ins, "is", (int64_t)10, "in tx"), 1);
	kill_session(b, session_id(b, s));
	assert_int_equal(store_run(s, ins, "is", (int64_t)11, "in tx"), -ECONNRESET);
	assert_non_null(strstr(store_errmsg(s), "transaction"));
	int64_t v;
	assert_int_equal(store_query_int64(s, &v, "SELECT COUNT(*) FROM t", NULL), -ECONNRESET);
	assert_int_equal(store_commit(s), -ECONNRESET);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 3);

	/* Killed right before COMMIT. */
	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_run(s, ins, "is", (int64_t)12, "in tx"), 1);
	kill_session(b, session_id(b, s));
	assert_int_equal(store_commit(s), -ECONNRESET);
	store_rollback(s);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 3);

	/* Killed between statements, then rolled back: fine. */
	assert_int_equal(store_begin(s, true), 0);
	kill_session(b, session_id(b, s));
	store_rollback(s);
	assert_int_equal(store_run(s, ins, "is", (int64_t)13, "after rollback"), 1);

	/* begin itself reconnects (nothing to lose yet). */
	kill_session(b, session_id(b, s));
	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_run(s, ins, "is", (int64_t)14, "tx after kill"), 1);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 5);
	int64_t dbnow;
	kill_session(b, session_id(b, s));
	assert_int_equal(store_now_ms(s, &dbnow), 0);
	store_close(s);
}

/* store_release_connection(): the server session ends; the next statement
 * (a cached one too) runs on a new one without counting as trouble; it
 * keeps the connection inside a transaction. On SQLite it does nothing. */
static void t_release_connection(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	create_t(b, s);
	static const char ins[] = "INSERT INTO t (id, name) VALUES (?, ?)";
	assert_int_equal(store_run(s, ins, "is", (int64_t)1, "before"), 1);
	if (b->kind == STORE_BACKEND_SQLITE) {
		store_release_connection(s);
		assert_int_equal(store_run(s, ins, "is", (int64_t)2, "after"), 1);
		assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 2);
		store_close(s);
		return;
	}
	int64_t id = session_id(b, s);
	store_release_connection(s);
	store_release_connection(s); /* twice: still one new connection later */
	assert_true(session_gone(b, id));
	assert_int_equal(store_run(s, ins, "is", (int64_t)2, "after release"), 1);
	int64_t id2 = session_id(b, s);
	assert_true(id2 != id);
	assert_int_equal(store_trouble_age_ms(s), INT64_MAX);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 2);

	/* Inside a transaction it keeps the session (and the transaction). */
	assert_int_equal(store_begin(s, true), 0);
	assert_int_equal(store_run(s, ins, "is", (int64_t)3, "in tx"), 1);
	store_release_connection(s);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(session_id(b, s), id2);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 3);

	/* A loss after a release is a loss again: reconnected, and trouble. */
	store_release_connection(s);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 3);
	assert_int_equal(store_trouble_age_ms(s), INT64_MAX);
	kill_session(b, session_id(b, s));
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t"), 3);
	assert_true(store_trouble_age_ms(s) < 60000);
	store_close(s);
}

/* More statements than the per-connection cache holds, all open at once,
 * then again after the session was killed (uncached statements too). */
static void t_many_statements(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	create_t(b, s);
	enum { N = 70 };
	for (int round = 0; round < 2; round++) {
		struct store_stmt *st[N];
		for (int i = 0; i < N; i++) {
			char sql[96];
			snprintf(sql, sizeof(sql), "SELECT CAST(? AS BIGINT) + %d + COUNT(*) FROM t", i);
			if (b->kind == STORE_BACKEND_MYSQL)
				snprintf(sql, sizeof(sql), "SELECT CAST(? AS SIGNED) + %d + COUNT(*) FROM t", i);
			int r = store_query(s, &st[i], sql, "i", (int64_t)1000);
			if (r < 0)
				fail_msg("statement %d: %s", i, store_errmsg(s));
		}
		for (int i = 0; i < N; i++) {
			int r = store_step(st[i]);
			if (r != 1)
				fail_msg("round %d statement %d: %d %s", round, i, r, store_errmsg(s));
			assert_int_equal(store_col_int64(st[i], 0), 1000 + i);
			assert_int_equal(store_step(st[i]), 0);
			store_finalize(st[i]);
		}
		if (b->kind != STORE_BACKEND_SQLITE && round == 0)
			kill_session(b, session_id(b, s));
	}

	/* A statement prepared and bound before the session was killed runs
	 * on the new connection. */
	if (b->kind != STORE_BACKEND_SQLITE) {
		struct store_stmt *st;
		assert_int_equal(store_query(s, &st, "INSERT INTO t (id, name) VALUES (?, ?)", "is", (int64_t)5,
					     "bound before"), 0);
		kill_session(b, session_id(b, s));
		int r = store_step(st);
		if (r != 0)
			fail_msg("step after kill: %d %s", r, store_errmsg(s));
		assert_int_equal(store_changes(st), 1);
		store_finalize(st);
		assert_int_equal(q_int(s, "SELECT COUNT(*) FROM t WHERE name = 'bound before'"), 1);
	}
	store_close(s);
}

/* ---- locks on top of the store -------------------------------------------------- */

static struct lock_req req(const char *name, enum lock_mode mode)
{
	struct lock_req r = { .mode = mode };
	snprintf(r.name, sizeof(r.name), "%s", name);
	return r;
}

static void t_locks_basic(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	struct lock_owner o1, o2;
	assert_int_equal(lock_owner_self(&o1, 1), 0);
	assert_int_equal(lock_owner_self(&o2, 2), 0);
	struct lock_req x = req("app:x", LOCK_EXCLUSIVE);
	int64_t v1 = 0, v2 = 0;
	struct lock_blocker bl;
	int r = locks_acquire(s, &o1, &x, 1, NULL, &v1, NULL);
	if (r < 0)
		fail_msg("acquire: %d %s", r, store_errmsg(s));
	assert_true(v1 > 0);
	assert_int_equal(locks_acquire(s, &o2, &x, 1, NULL, &v2, &bl), -EAGAIN);
	assert_int_equal(bl.task_id, 1);
	int released = 0;
	assert_int_equal(locks_unlock(s, &o1, NULL, 0, &released), 0);
	assert_int_equal(released, 1);
	assert_int_equal(locks_acquire(s, &o2, &x, 1, NULL, &v2, NULL), 0);
	assert_true(v2 > v1);
	struct lock_doc doc;
	int64_t version;
	assert_int_equal(locks_read(s, &doc, &version, NULL), 0);
	assert_int_equal(doc.n_holders, 1);
	assert_int_equal(doc.holders[0].owner.task_id, 2);
	assert_int_equal(version, v2);
	lock_doc_release(&doc);
	assert_int_equal(locks_unlock_task(s, 2, &released), 0);
	assert_int_equal(released, 1);
	store_close(s);
}

/* Children take an exclusive lock and do a non-atomic increment under it. */
#define LOCK_ROUNDS 8
static int child_lock_counter(struct backend *b, int i)
{
	struct store *s = NULL;
	char err[512];
	if (open_opts(b, &s, 20000, true, err, sizeof(err)) < 0)
		return -1;
	struct lock_owner o;
	int r = lock_owner_self(&o, 100 + i);
	struct lock_req x = req("app:counter", LOCK_EXCLUSIVE);
	struct locks_acquire_opts opts = { .timeout_ms = 60000 };
	for (int k = 0; k < LOCK_ROUNDS && r >= 0; k++) {
		int64_t v;
		r = locks_acquire(s, &o, &x, 1, &opts, &v, NULL);
		int64_t n = 0;
		if (r >= 0)
			r = store_query_int64(s, &n, "SELECT n FROM t WHERE id = 1", NULL);
		if (r >= 0 && store_run(s, "UPDATE t SET n = ? WHERE id = 1", "i", n + 1) != 1)
			r = -EIO;
		if (r >= 0)
			r = locks_unlock(s, &o, NULL, 0, NULL);
	}
	if (r < 0)
		fprintf(stderr, "child %d: %d %s\n", i, r, store_errmsg(s));
	store_close(s);
	return r;
}

static void t_locks_processes(void **state)
{
	struct backend *b = B(state);
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	create_t(b, s);
	run_ok(s, "INSERT INTO t (id, n) VALUES (1, 0)");
	assert_int_equal(run_children(b, 4, child_lock_counter), 0);
	assert_int_equal(q_int(s, "SELECT n FROM t WHERE id = 1"), 4 * LOCK_ROUNDS);
	struct lock_doc doc;
	assert_int_equal(locks_read(s, &doc, NULL, NULL), 0);
	assert_int_equal(doc.n_holders, 0);
	lock_doc_release(&doc);
	store_close(s);
}

/* ---- the retry policy (store_retry.h) ---------------------------------------------- */

static void t_retry_policy(void **state)
{
	(void)state;
	assert_true(store_error_is_transient(-EBUSY));
	assert_true(store_error_is_transient(-ECONNRESET));
	assert_true(store_error_is_transient(-ENOTCONN));
	assert_true(store_error_is_transient(-ECONNREFUSED));
	assert_true(store_error_is_transient(-ENOSPC));
	assert_false(store_error_is_transient(-EEXIST));
	assert_false(store_error_is_transient(-EINVAL));
	assert_false(store_error_is_transient(-EBADMSG));

	struct store_retry rt;
	store_retry_init(&rt, 200);
	assert_int_equal(store_retry_failed(&rt, -EEXIST), -EEXIST); /* not transient: give up */
	assert_int_equal(rt.since_mono_ms, 0);
	assert_int_equal(store_retry_failed(&rt, -ECONNREFUSED), 0);
	assert_true(store_retry_first(&rt));
	int64_t prev = store_retry_delay_ms(&rt);
	assert_int_equal(prev, STORE_RETRY_FIRST_MS);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(store_retry_failed(&rt, -ENOTCONN), 0);
		assert_false(store_retry_first(&rt));
		int64_t d = store_retry_delay_ms(&rt);
		assert_true(d >= prev && d <= STORE_RETRY_CAP_MS);
		prev = d;
	}
	assert_int_equal(prev, STORE_RETRY_CAP_MS);
	sleep_us(220 * 1000);
	/* The grace has passed: give up, with the error. */
	assert_int_equal(store_retry_failed(&rt, -ENOTCONN), -ENOTCONN);
	/* Waiting: a busy store never uses up the grace of a lock wait. */
	rt.busy_is_waiting = true;
	assert_int_equal(store_retry_failed(&rt, -EBUSY), 0);
	assert_int_equal(store_retry_failed(&rt, -ECONNRESET), -ECONNRESET);
	assert_true(store_retry_done(&rt) >= 220);
	assert_int_equal(rt.since_mono_ms, 0);
	/* A new outage starts afresh. */
	assert_int_equal(store_retry_failed(&rt, -ECONNRESET), 0);
	assert_true(store_retry_first(&rt));
	char since[32];
	store_retry_since(&rt, since, sizeof(since));
	assert_int_equal(strlen(since), strlen("12:03:04 UTC"));
	/* grace 0: never give up. */
	store_retry_init(&rt, 0);
	assert_int_equal(store_retry_failed(&rt, -ENOSPC), 0);
}

/* ---- a late reply from a live server (PostgreSQL) --------------------------------- */

/* The store gives up on a server that neither replies nor answers a new
 * connection (a frozen primary: t0911-pg-frozen-primary, with servers of
 * its own), but not on a late reply from a server that answers: a
 * statement may rightly wait. Here the session's own backend is SIGSTOPped
 * for 5.5 s, past the 4 s after which the store asks the server: the
 * statement completes, on the same session. Needs to signal the server's
 * process (root, same machine); skipped otherwise. */
static void t_late_reply(void **state)
{
	struct backend *b = B(state);
	if (b->kind != STORE_BACKEND_POSTGRES)
		skip();
	SKIP_UNLESS_AVAILABLE(b);
	struct store *s = open_db(b, 0);
	int64_t backend = session_id(b, s);
	int64_t t0 = now_mono_ms();
	if (kill((pid_t)backend, SIGSTOP) < 0) {
		store_close(s);
		skip();
	}
	pid_t child = fork();
	if (child == 0) {
		sleep_us(5500 * 1000); /* how long the backend stays frozen */
		kill((pid_t)backend, SIGCONT);
		_exit(0);
	}
	if (child < 0)
		kill((pid_t)backend, SIGCONT);
	assert_true(child > 0);
	int64_t v = -1;
	int r = store_query_int64(s, &v, "SELECT 42", NULL);
	int64_t took = now_mono_ms() - t0;
	waitpid(child, NULL, 0);
	if (r < 0)
		fail_msg("a late reply from a live server: %s (%d) after %lld ms", store_errmsg(s), r, (long long)took);
	assert_int_equal(v, 42);
	assert_true(took >= 5000);
	assert_int_equal(session_id(b, s), backend);
	store_close(s);
}

/* ---- a server lost during the session's setup (PostgreSQL) ------------------------- */

/* The server accepts the connection and answers the startup, then is gone
 * before it answers the session's setup (its first query, the client
 * encoding; or its second, the timeouts). That is a lost connection
 * (-ECONNRESET), which every caller retries, never an error of the
 * server's (-EIO): a worker starting at that moment took it for the end
 * and failed its task (t0844 on PostgreSQL, kill -9 of the server). */
static void t_lost_during_setup(void **state)
{
	struct backend *b = B(state);
	if (b->kind != STORE_BACKEND_POSTGRES)
		skip();
	SKIP_UNLESS_AVAILABLE(b);
	const char *host = getenv("BOXD_TEST_PG_HOST"), *port = getenv("BOXD_TEST_PG_PORT");
	if (!host || !port)
		fail_msg("BOXD_TEST_PG_HOST and BOXD_TEST_PG_PORT are not set (scripts/test-env.sh sets them)");
	char server[PATH_MAX];
	snprintf(server, sizeof(server), "%s/.s.PGSQL.%s", host, port);
	for (int drop_at = 1; drop_at <= 2; drop_at++) {
		struct pg_drop_relay relay;
		assert_int_equal(pg_drop_relay_start(&relay, server, drop_at), 0);
		char dsn[PATH_MAX + 64];
		snprintf(dsn, sizeof(dsn), "host=%s port=%d user=postgres dbname=postgres", relay.dir, relay.port);
		struct store_options o = { .backend = b->kind, .dsn = dsn, .no_migrate = true };
		struct store *s = NULL;
		char err[512] = "";
		int r = store_open(&o, &s, err, sizeof(err));
		pg_drop_relay_stop(&relay);
		if (r >= 0)
			store_close(s);
		if (r != -ECONNRESET)
			fail_msg("the server gone at query %d of the setup: %d (%s); want -ECONNRESET", drop_at, r, err);
		assert_true(store_error_is_transient(r));
	}
}

/* ---- a list of servers (MariaDB: the nodes of a Galera cluster) ------------------- */

static void t_dsn_list(void **state)
{
	struct backend *b = B(state);
	if (b->kind != STORE_BACKEND_MYSQL)
		skip();
	SKIP_UNLESS_AVAILABLE(b);
	static const char dead[] = "mysql://root@localhost/boxd?socket=/nonexistent/boxd-test-node.sock";
	char list[2300];
	snprintf(list, sizeof(list), "%s, %s", dead, b->db.dsn);
	struct store_options o = { .backend = b->kind, .dsn = list };
	struct store *s = NULL;
	char err[512] = "";
	/* The first node refuses: the store connects to the second. */
	int r = store_open(&o, &s, err, sizeof(err));
	if (r < 0)
		fail_msg("open %s: %s (%d)", list, err, r);
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 0);
	/* Its connection lost: the next statement reconnects, passing the
	 * dead node again. */
	kill_session(b, session_id(b, s));
	run_ok(s, "UPDATE locks SET version = 3 WHERE id = 1");
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 3);
	store_close(s);

	/* No node answers: refused (transient), and the message names each. */
	snprintf(list, sizeof(list), "%s,%s", dead, dead);
	err[0] = 0;
	assert_int_equal(store_open(&o, &s, err, sizeof(err)), -ECONNREFUSED);
	assert_non_null(strstr(err, "node 1 of 2: mysql: cannot connect"));
	assert_non_null(strstr(err, "node 2 of 2: mysql: cannot connect"));
}

/* ---- a frozen server (MariaDB) ------------------------------------------------------ */

/* The test's database as a TCP server that can be frozen: socat forwards
 * 127.0.0.1:port to the server's unix socket, in a process group of its
 * own. SIGSTOP of that group is a server that stops answering without
 * closing anything (what a frozen node or a cut network is to a client).
 * Returns socat's pid, or 0 when it cannot run here (no socat, no socket
 * in the DSN). */
static pid_t frozen_proxy_start(const char *dsn, int *ret_port)
{
	const char *sock = strstr(dsn, "socket=");
	if (!sock || access("/usr/bin/socat", X_OK) < 0)
		return 0;
	sock += strlen("socket=");
	char unix_addr[600], listen_addr[64];
	snprintf(unix_addr, sizeof(unix_addr), "UNIX-CONNECT:%.*s", (int)strcspn(sock, "&"), sock);
	int port = 20000 + (int)(getpid() % 20000);
	snprintf(listen_addr, sizeof(listen_addr), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port);
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		execl("/usr/bin/socat", "socat", listen_addr, unix_addr, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return 0;
	setpgid(pid, pid);
	/* Until it listens: a connect that is accepted. */
	for (int i = 0; i < 100; i++) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "exec 3<>/dev/tcp/127.0.0.1/%d", port);
		pid_t probe = fork();
		if (probe == 0) {
			freopen("/dev/null", "w", stderr); /* "connection refused" until it listens */
			execl("/bin/bash", "bash", "-c", cmd, (char *)NULL);
			_exit(127);
		}
		int status = 1;
		waitpid(probe, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			*ret_port = port;
			return pid;
		}
		sleep_us(50 * 1000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

static void frozen_proxy_stop(pid_t pid)
{
	kill(-pid, SIGCONT);
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A node that stops answering mid-session (issue 16): the statement gives
 * up after the reply timeout instead of waiting for ever, and the next one
 * reconnects to the next node of the list and goes on. Without a reply
 * timeout the statement never returns (SIGALRM ends the test then). */
static void t_frozen_server(void **state)
{
	struct backend *b = B(state);
	if (b->kind != STORE_BACKEND_MYSQL)
		skip();
	SKIP_UNLESS_AVAILABLE(b);
	int port = 0;
	pid_t proxy = frozen_proxy_start(b->db.dsn, &port);
	if (!proxy)
		skip();
	const char *path = strstr(b->db.dsn, "localhost/");
	assert_non_null(path);
	char list[2400];
	snprintf(list, sizeof(list), "mysql://root@127.0.0.1:%d/%.*s, %s", port,
		 (int)strcspn(path + strlen("localhost/"), "?"), path + strlen("localhost/"), b->db.dsn);
	struct store_options o = { .backend = b->kind, .dsn = list, .reply_timeout_ms = 2000 };
	struct store *s = NULL;
	char err[512] = "";
	int r = store_open(&o, &s, err, sizeof(err));
	if (r < 0) {
		frozen_proxy_stop(proxy);
		fail_msg("open %s: %s (%d)", list, err, r);
	}
	assert_int_equal(q_int(s, "SELECT version FROM locks WHERE id = 1"), 0);

	kill(-proxy, SIGSTOP);
	alarm(60); /* a hang is a failure, not a stuck suite */
	int64_t t0 = now_mono_ms(), v = -1;
	r = store_query_int64(s, &v, "SELECT version + 7 FROM locks WHERE id = 1", NULL);
	int64_t first = now_mono_ms() - t0;
	if (r < 0) /* lost (may have been applied): the next one reconnects */
		r = store_query_int64(s, &v, "SELECT version + 7 FROM locks WHERE id = 1", NULL);
	int64_t took = now_mono_ms() - t0;
	alarm(0);
	frozen_proxy_stop(proxy);
	printf("# frozen node: the first statement returned after %lld ms, the store answered after %lld ms\n",
	       (long long)first, (long long)took);
	if (r < 0)
		fail_msg("after the node froze: %s (%d)", store_errmsg(s), r);
	assert_int_equal(v, 7);
	assert_true(took < 20000);
	store_close(s);
}

/* ---- main ------------------------------------------------------------------------ */

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(t_migrate_once), T(t_migrate_concurrent), T(t_text), T(t_nulls), T(t_returning), T(t_returning_commit_fails),
		T(t_errors), T(t_bad_dsn), T(t_transactions), T(t_run_relaxed), T(t_first_wal_sync_outside_write_lock), T(t_cas), T(t_now), T(t_busy),
		T(t_reconnect), T(t_release_connection), T(t_late_reply), T(t_lost_during_setup), T(t_dsn_list), T(t_frozen_server), T(t_many_statements), T(t_locks_basic), T(t_locks_processes),
	};
	const struct CMUnitTest policy[] = { cmocka_unit_test(t_retry_policy) };
	int failed = cmocka_run_group_tests_name("retry policy", policy, NULL, NULL);
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		cur = &backends[i];
		failed += cmocka_run_group_tests_name(cur->name, tests, group_setup, group_teardown);
	}
	return failed ? 1 : 0;
}
