/* store_sqlite.c — the SQLite backend (the embedded default).
 *
 * WAL mode: readers never block the writer and vice versa, so the API
 * threads can read while a worker writes. Writers are serialized by SQLite's
 * own write lock; a write transaction is begun with BEGIN IMMEDIATE so that it
 * queues for that lock at the start instead of failing later on upgrade.
 *
 * Busy handling: SQLite's default busy handler sleeps in steps of up to
 * 100 ms, which would dominate lock hand-off latency between processes. Ours
 * sleeps 50 µs doubling to at most 1 ms, and gives up when the connection's
 * busy timeout has passed since the first retry.
 */
#include "store-internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"

#define STMT_CACHE_SIZE 48

struct sqlite_stmt {
	struct store_stmt base;
	sqlite3_stmt *st;
	char *sql;       /* cache key; NULL when not cached */
	bool in_use;
	int64_t changes;
};

/* Transaction control statements, prepared once per connection:
 * sqlite3_exec() would parse them again on every call (a tenth of the
 * CPU of a lock document change). */
enum { TX_BEGIN, TX_BEGIN_IMMEDIATE, TX_COMMIT, TX_ROLLBACK, TX_COUNT };
static const char *const tx_sql[TX_COUNT] = { "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK" };

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	bool relaxed;     /* opened with relaxed_durability: NORMAL throughout */
	bool relaxed_run;     /* a durable connection at NORMAL for store_run_relaxed() */
	bool durable_pending; /* ... and FULL could not be set again after it yet */
	int64_t busy_since_us;
	struct sqlite_stmt *cache[STMT_CACHE_SIZE];
	sqlite3_stmt *tx[TX_COUNT];
};

#define SQ(s) ((struct sqlite_store *)(s))
#define SQST(st) ((struct sqlite_stmt *)(st))

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_IOERR:
		return -EIO;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

static int fail(struct sqlite_store *s, int rc, const char *what)
{
	return store_set_error(&s->base, map_rc(rc), "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
}

static int busy_handler(void *ctx, int count)
{
	struct sqlite_store *s = ctx;
	int64_t now = now_mono_us();
	if (count == 0)
		s->busy_since_us = now;
	if (now - s->busy_since_us >= (int64_t)s->base.busy_timeout_ms * 1000)
		return 0;
	int64_t delay = 50LL << (count < 5 ? count : 5);
	sleep_us(delay > 1000 ? 1000 : delay);
	return 1;
}

static void sq_close(struct store *base)
{
	struct sqlite_store *s = SQ(base);
	for (int i = 0; i < STMT_CACHE_SIZE; i++) {
		if (s->cache[i]) {
			sqlite3_finalize(s->cache[i]->st);
			free(s->cache[i]->sql);
			free(s->cache[i]);
		}
	}
	for (int i = 0; i < TX_COUNT; i++)
		sqlite3_finalize(s->tx[i]);
	sqlite3_close_v2(s->db);
	free(s);
}

static int durable_again(struct sqlite_store *s);

static int sq_prepare(struct store *base, const char *sql, struct store_stmt **ret)
{
	struct sqlite_store *s = SQ(base);
	int r = durable_again(s);
	if (r < 0)
		return r;
	int free_slot = -1;
	for (int i = 0; i < STMT_CACHE_SIZE; i++) {
		struct sqlite_stmt *c = s->cache[i];
		if (!c) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (!c->in_use && strcmp(c->sql, sql) == 0) {
			c->in_use = true;
			c->changes = 0;
			*ret = &c->base;
			return 0;
		}
	}

	struct sqlite_stmt *c = calloc(1, sizeof(*c));
	if (!c)
		return store_set_error(base, -ENOMEM, "out of memory");
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->st, NULL);
	if (rc != SQLITE_OK) {
		free(c);
		return fail(s, rc, "prepare");
	}
	c->base.store = base;
	c->in_use = true;
	if (free_slot >= 0) {
		c->sql = strdup(sql);
		if (c->sql)
			s->cache[free_slot] = c;
	}
	*ret = &c->base;
	return 0;
}

static int sq_bind_int64(struct store_stmt *st, int idx, int64_t v)
{
	int rc = sqlite3_bind_int64(SQST(st)->st, idx, v);
	return rc == SQLITE_OK ? 0 : fail(SQ(st->store), rc, "bind");
}

static int sq_bind_text(struct store_stmt *st, int idx, const char *v)
{
	int rc = v ? sqlite3_bind_text(SQST(st)->st, idx, v, -1, SQLITE_TRANSIENT)
		   : sqlite3_bind_null(SQST(st)->st, idx);
	return rc == SQLITE_OK ? 0 : fail(SQ(st->store), rc, "bind");
}

static int sq_bind_null(struct store_stmt *st, int idx)
{
	int rc = sqlite3_bind_null(SQST(st)->st, idx);
	return rc == SQLITE_OK ? 0 : fail(SQ(st->store), rc, "bind");
}

static int sq_step(struct store_stmt *st)
{
	struct sqlite_stmt *c = SQST(st);
	struct sqlite_store *s = SQ(st->store);
	int rc = sqlite3_step(c->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		c->changes = sqlite3_changes64(s->db);
		return 0;
	}
	int r = fail(s, rc, "step");
	sqlite3_reset(c->st);
	return r;
}

static int64_t sq_col_int64(struct store_stmt *st, int col) { return sqlite3_column_int64(SQST(st)->st, col); }

static const char *sq_col_text(struct store_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(SQST(st)->st, col);
}

static bool sq_col_is_null(struct store_stmt *st, int col)
{
	return sqlite3_column_type(SQST(st)->st, col) == SQLITE_NULL;
}

static int64_t sq_changes(struct store_stmt *st) { return SQST(st)->changes; }

static void sq_finalize(struct store_stmt *st)
{
	struct sqlite_stmt *c = SQST(st);
	if (c->sql) {
		sqlite3_reset(c->st);
		sqlite3_clear_bindings(c->st);
		c->in_use = false;
		return;
	}
	sqlite3_finalize(c->st);
	free(c);
}

static int exec_simple(struct sqlite_store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : fail(s, rc, sql);
}

/* Run one of the transaction statements; the same result and message as
 * exec_simple(tx_sql[which]). */
static int exec_tx(struct sqlite_store *s, int which)
{
	if (!s->tx[which]) {
		int rc = sqlite3_prepare_v3(s->db, tx_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &s->tx[which], NULL);
		if (rc != SQLITE_OK)
			return fail(s, rc, tx_sql[which]);
	}
	int rc = sqlite3_step(s->tx[which]);
	int r = rc == SQLITE_DONE ? 0 : fail(s, rc, tx_sql[which]);
	sqlite3_reset(s->tx[which]);
	return r;
}

/* Back to FULL after store_run_relaxed(). SQLite applies a PRAGMA
 * synchronous when it compiles it (a prepared one run again does
 * nothing), so it is compiled each time: the only failure is running out
 * of memory. Until that worked, no other statement runs (sq_prepare() and
 * sq_begin() call this first and fail with it): nothing that is to be
 * durable is ever committed at NORMAL. */
static int durable_again(struct sqlite_store *s)
{
	if (!s->durable_pending)
		return 0;
	int r = exec_simple(s, "PRAGMA synchronous=FULL");
	if (r == 0)
		s->durable_pending = false;
	return r;
}

static void sq_set_relaxed(struct store *base, bool relaxed)
{
	struct sqlite_store *s = SQ(base);
	if (s->relaxed)
		return; /* NORMAL throughout */
	if (relaxed) {
		/* On failure it stays durable: no harm. */
		s->relaxed_run = exec_simple(s, "PRAGMA synchronous=NORMAL") == 0;
	} else if (s->relaxed_run) {
		s->relaxed_run = false;
		s->durable_pending = true;
		durable_again(s);
	}
}

static int sq_begin(struct store *base, bool write)
{
	int r = durable_again(SQ(base));
	return r < 0 ? r : exec_tx(SQ(base), write ? TX_BEGIN_IMMEDIATE : TX_BEGIN);
}

static int sq_commit(struct store *base)
{
	struct sqlite_store *s = SQ(base);
	int r = exec_tx(s, TX_COMMIT);
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		exec_tx(s, TX_ROLLBACK);
	return r;
}

static void sq_rollback(struct store *base)
{
	struct sqlite_store *s = SQ(base);
	if (!sqlite3_get_autocommit(s->db))
		exec_tx(s, TX_ROLLBACK);
}

static int sq_now_ms(struct store *base, int64_t *ret)
{
	(void)base;
	*ret = now_wall_ms();
	return 0;
}

static const struct store_ops sqlite_ops = {
	.close = sq_close,
	.prepare = sq_prepare,
	.bind_int64 = sq_bind_int64,
	.bind_text = sq_bind_text,
	.bind_null = sq_bind_null,
	.step = sq_step,
	.col_int64 = sq_col_int64,
	.col_text = sq_col_text,
	.col_is_null = sq_col_is_null,
	.changes = sq_changes,
	.finalize = sq_finalize,
	.set_relaxed = sq_set_relaxed,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.now_ms = sq_now_ms,
};

/* A connection's first sync of the WAL also fsyncs its directory, once:
 * SQLite marks every WAL it opens for that, as the file may have just been
 * created. That first sync is normally in the connection's first durable
 * commit, inside the database's write lock, so each worker's first commit
 * (`running`) held every other writer for two fsyncs instead of one, on a
 * fresh connection per task (issue 18: one of the 4.2 fsyncs a zero-second
 * task made under the lock). Sync now, while no lock is held: the
 * directory sync is the same one, and flushing what other connections
 * wrote to the WAL unsynced is what their next durable commit would do
 * anyway. Best effort: otherwise the commit does it, as before. */
static void sync_wal_now(struct sqlite_store *s)
{
	sqlite3_file *wal = NULL;
	/* PRAGMA journal_mode opened the WAL, unless the database is new
	 * and has none yet: then its first commit syncs, as before (once in
	 * the life of the database). */
	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) == SQLITE_OK && wal &&
	    wal->pMethods)
		wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
}

int store_sqlite_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen)
{
	if (!opts->sqlite_path || !*opts->sqlite_path) {
		snprintf(errbuf, errlen, "sqlite: no database path given");
		return -EINVAL;
	}
	struct sqlite_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	s->base.ops = &sqlite_ops;
	s->base.busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;

	/* One connection per thread: no SQLite-level mutex needed. */
	int rc = sqlite3_open_v2(opts->sqlite_path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(errbuf, errlen, "sqlite: cannot open %s: %s", opts->sqlite_path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		int r = map_rc(rc);
		sqlite3_close_v2(s->db);
		free(s);
		return r;
	}
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_handler(s->db, busy_handler, s);

	const char *pragmas[] = {
		"PRAGMA journal_mode=WAL",
		opts->relaxed_durability ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL",
		"PRAGMA foreign_keys=ON",
	};
	for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		/* Switching a new database to WAL needs an exclusive lock, and
		 * SQLite does not call the busy handler for it: several processes
		 * opening a fresh file at once get SQLITE_BUSY straight away.
		 * Retry within the busy timeout like any other busy database. */
		int64_t deadline = now_mono_us() + (int64_t)s->base.busy_timeout_ms * 1000;
		int r;
		while ((r = exec_simple(s, pragmas[i])) == -EBUSY && now_mono_us() < deadline)
			sleep_us(1000);
		if (r < 0) {
			snprintf(errbuf, errlen, "%s", s->base.errmsg);
			sq_close(&s->base);
			return r;
		}
	}
	s->relaxed = opts->relaxed_durability;
	if (!s->relaxed)
		sync_wal_now(s);
	*ret = &s->base;
	return 0;
}

const char *store_sqlite_file(const struct store *s)
{
	if (!s || s->backend != STORE_BACKEND_SQLITE)
		return NULL;
	const char *f = sqlite3_db_filename(SQ(s)->db, "main");
	return f && *f ? f : NULL;
}
