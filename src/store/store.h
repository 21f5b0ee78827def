/* store.h — the backend-neutral database API.
 *
 * boxd keeps all of its state in one database: SQLite (the embedded default),
 * MariaDB/MySQL or PostgreSQL. This API is the only way the rest of boxd
 * talks to it, so that every module works on every backend unchanged.
 *
 * Connections: a `struct store` is one connection and is used by one thread
 * at a time. The daemon's loop thread, each API thread and each worker open
 * their own.
 *
 * SQL: portable SQL with `?` placeholders (the PostgreSQL backend rewrites
 * them to $1, $2, ... outside string literals, quoted identifiers and
 * comments). Every statement is prepared; a user string is only ever bound,
 * never spliced into SQL. Backend-specific DDL lives in the migrations
 * (schema.c), not in callers. Portable means, among others:
 *   - `INSERT ... RETURNING id` works everywhere (MariaDB >= 10.5; not
 *     MySQL);
 *   - PostgreSQL infers a parameter's type from its context; where the
 *     context does not say (`SELECT ? IS NULL`), write CAST(? AS BIGINT);
 *   - on MySQL, text compares byte for byte (utf8mb4_bin tables), a
 *     backslash in a literal is just a backslash and "x" is an identifier,
 *     as on the other two (the session's sql_mode sees to it);
 *   - no `?` operators (PostgreSQL's jsonb `?`, `?|`, `?&`).
 *
 * Errors: functions return 0 (or a documented non-negative value) on success
 * and a negative errno on failure; store_errmsg() then says what happened in
 * words for the user. The same causes give the same errno on every backend:
 * -EEXIST a constraint (duplicate key, NOT NULL, foreign key), -EBUSY a
 * busy or locked database, a lock wait timeout or a deadlock (retried until
 * the connection's busy timeout has passed, then reported), -ECONNRESET a
 * lost connection (see below), -ENOTCONN a lost connection that could not
 * be re-established, -EACCES permissions, -EINVAL on the server backends bad
 * SQL (SQLite reports it as -EIO).
 *
 * Lost connections (MariaDB/MySQL, PostgreSQL): a statement outside a
 * transaction reconnects transparently, at most once, when the connection
 * was found closed before the statement was sent (a killed or timed-out
 * session), or when the statement only reads (SELECT). A write lost in
 * flight may or may not have been applied: it fails with -ECONNRESET and
 * the message says so; the next statement reconnects. Inside a transaction
 * nothing reconnects: the transaction is gone, the statement and every
 * later one until store_rollback() fail with -ECONNRESET, and
 * store_commit() says that nothing was committed (or, when the connection
 * broke during COMMIT itself, that the outcome is unknown). Statements
 * cached or held by the caller are prepared again on the new connection.
 *
 * Calling sequence for a query:
 *
 *	struct store_stmt *st;
 *	r = store_query(s, &st, "SELECT id, state FROM tasks WHERE id = ?", "i", id);
 *	if (r < 0) return r;
 *	while ((r = store_step(st)) == 1) {
 *		int64_t id = store_col_int64(st, 0);
 *		const char *state = store_col_text(st, 1);   // valid until next step
 *	}
 *	store_finalize(st);                               // always, also on error
 *
 * and for a statement without rows: n = store_run(s, "UPDATE ...", "is", 3, "x");
 * which returns the number of rows changed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store_backend {
	STORE_BACKEND_SQLITE,
	STORE_BACKEND_MYSQL,
	STORE_BACKEND_POSTGRES,
};

struct store_options {
	enum store_backend backend;
	/* SQLite: path of the database file (created with its directory's
	 * permissions if missing). */
	const char *sqlite_path;
	/* MariaDB/MySQL: mysql://[user[:pass]@][host[:port]][/dbname][?socket=/path]
	 * (or mariadb://; parts percent-encoded as in a URI; all optional,
	 * e.g. "mysql://boxd:secret@localhost/boxd?socket=/run/mysqld/mysqld.sock").
	 * PostgreSQL: a libpq connection string or URI, passed to PQconnectdb
	 * as is (e.g. "postgresql:///boxd?host=/run/postgresql"). A malformed
	 * DSN fails store_open() with -EINVAL. */
	const char *dsn;
	/* How long a busy or locked database is retried before -EBUSY.
	 * 0 means the default (10 s). */
	int busy_timeout_ms;
	/* SQLite only: commit with synchronous=NORMAL instead of FULL. Used for
	 * the connection that changes only the lock document — see DESIGN.md
	 * "Durability": a power loss that drops its last commits also kills
	 * every holder. */
	bool relaxed_durability;
	/* Skip schema migrations at open (tools that only read). */
	bool no_migrate;
	/* MariaDB/MySQL: how long one read or write on the connection may
	 * wait before the connection is taken for lost (a frozen server or
	 * Galera node, a cut network that sends no reset): the statement
	 * fails "may have been applied" and the next one reconnects, to the
	 * next server of the list first. 0 means the default: the busy
	 * timeout + 20 s (30 s), so that a row lock wait, which the busy
	 * timeout bounds, is never cut. (PostgreSQL asks a silent server on
	 * a fresh connection instead, store_postgres.c.) */
	int reply_timeout_ms;
};

struct store;
struct store_stmt;

/* Parse "sqlite", "mysql" (or "mariadb"), "postgres" (or "postgresql").
 * Returns 0 or -EINVAL. */
int store_backend_from_string(const char *s, enum store_backend *ret);
const char *store_backend_name(enum store_backend b);

/* Open a connection and bring the schema up to date (unless no_migrate).
 * On failure returns negative errno, writes a message into errbuf, and
 * *ret is untouched. */
int store_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen);

/* Close the connection; accepts NULL. Any open transaction is rolled back. */
void store_close(struct store *s);

enum store_backend store_get_backend(const struct store *s);

/* SQLite: the database file's path (as SQLite resolved it); NULL on the
 * server backends and for an in-memory database. */
const char *store_sqlite_file(const struct store *s);

/* Server backends: a name for the database this connection reaches, the
 * same in every process that opened it with the same DSN (hex SHA-256 of
 * the DSN's hosts, port, socket and database name; never of the user or
 * the password, since it names a file). lock_wake.h keys the same-host
 * wake-up word by it. NULL on SQLite (use store_sqlite_file()).
 * store_db_key_of() computes it from the options without connecting (a
 * test that drops its database removes the word's file with it): 0, or
 * -EOPNOTSUPP (SQLite), -EINVAL (a malformed DSN). */
const char *store_db_key(const struct store *s);
int store_db_key_of(const struct store_options *opts, char ret[65]);

/* The message of the last failure on this connection ("" if none). */
const char *store_errmsg(const struct store *s);

/* Record a message for store_errmsg() and return `err` (a negative errno).
 * Modules built on the store (locks, tasks) use it so that one message
 * travels with the error. */
int store_set_error(struct store *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepare `sql` (statements are cached per connection, so preparing the same
 * SQL again is cheap). */
int store_prepare(struct store *s, const char *sql, struct store_stmt **ret);

/* Bind parameter `idx` (1-based). Text is copied. A NULL text binds SQL NULL. */
int store_bind_int64(struct store_stmt *st, int idx, int64_t v);
int store_bind_text(struct store_stmt *st, int idx, const char *v);
int store_bind_null(struct store_stmt *st, int idx);

/* Run or advance the statement: 1 = a row is available, 0 = done,
 * negative errno on failure. */
int store_step(struct store_stmt *st);

/* Columns of the current row, 0-based. Text is valid until the next
 * store_step() or store_finalize(); NULL for SQL NULL. */
int64_t store_col_int64(struct store_stmt *st, int col);
const char *store_col_text(struct store_stmt *st, int col);
bool store_col_is_null(struct store_stmt *st, int col);
/* A malloc'ed copy of the column's text, which outlives the row; NULL for
 * SQL NULL, and also when out of memory (check store_col_is_null() where
 * the two must be told apart). */
char *store_col_strdup(struct store_stmt *st, int col);

/* Rows changed by the last completed INSERT/UPDATE/DELETE step. An UPDATE
 * counts every row it matched, also one it left unchanged (MySQL: the
 * connection uses CLIENT_FOUND_ROWS), so 0 means "no row matched". */
int64_t store_changes(struct store_stmt *st);

/* Release the statement (back into the connection's cache). Accepts NULL. */
void store_finalize(struct store_stmt *st);

/* Prepare `sql` and bind arguments by a format string, one letter per `?`:
 *   'i' int64_t, 's' const char * (NULL binds NULL), 'n' NULL (no argument).
 * On success *ret is ready for store_step(). */
int store_query(struct store *s, struct store_stmt **ret, const char *sql, const char *fmt, ...);

/* Like store_query() but runs the statement to completion and returns the
 * number of rows changed (>= 0), or negative errno. */
int64_t store_run(struct store *s, const char *sql, const char *fmt, ...);

/* Like store_run(), for a change that need not survive a power loss on its
 * own: on SQLite its commit is not flushed to disk (synchronous=NORMAL for
 * this one statement; durable connections stay FULL for everything else).
 * In WAL mode every connection appends to the same log in order, and a
 * durable commit flushes all of it: such a change is lost only together
 * with every change committed after it, until the next durable commit on
 * any connection. So it suits a change that matters only once a durable
 * one follows it (a task's claim and its worker's pid: `running` is
 * committed durably before the task does anything). Inside a transaction,
 * and on the server backends (durability is the server's), it is
 * store_run(). */
int64_t store_run_relaxed(struct store *s, const char *sql, const char *fmt, ...);

/* Run `sql` and return the first column of the first row as int64 in *ret.
 * -ENOENT when there is no row. The statement is stepped to its end and
 * every step is checked: for `INSERT ... RETURNING id` a failure of the
 * final step (where an autocommit statement commits: a full disk, an I/O
 * error) is returned as such, *ret is left alone and nothing was
 * inserted. */
int store_query_int64(struct store *s, int64_t *ret, const char *sql, const char *fmt, ...);

/* Transactions. store_begin(s, true) starts a transaction that will write:
 * on SQLite it is BEGIN IMMEDIATE, which takes the write lock up front (a
 * deferred transaction that upgrades later fails with SQLITE_BUSY at once
 * instead of waiting). A busy database is retried up to the busy timeout.
 * store_rollback() accepts a connection with no open transaction. */
/*
 * store_commit() ends the transaction whether it succeeds or not: on failure
 * everything since store_begin() has been rolled back (calling
 * store_rollback() afterwards is a harmless no-op).
 *
 * A statement that fails inside a transaction: on SQLite and MySQL the
 * transaction stays usable, on PostgreSQL it is aborted (later statements
 * fail with -ECANCELED). The portable reaction to any failure inside a
 * transaction is store_rollback(). Busy errors (-EBUSY: a lock wait timed
 * out, a deadlock) and -ECONNRESET always end the transaction on the server
 * backends. */
int store_begin(struct store *s, bool write);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* The database's clock, milliseconds since the epoch. Lease expiry across
 * hosts is always computed in this clock, never in a host's local clock. On
 * SQLite, which is local by nature, it is this host's wall clock; on the
 * server backends it is the server's (one round trip). */
int store_now_ms(struct store *s, int64_t *ret_ms);

/* Change notices, PostgreSQL only (LISTEN/NOTIFY); -EOPNOTSUPP on the
 * other backends. `channel` is a fixed identifier of the code ([a-z_]).
 * store_listen(on) subscribes this connection to `channel`; store_listen(off)
 * ends the subscription and drops the notices not yet taken (a connection
 * that stays subscribed while nobody waits piles them up in memory).
 * store_wait_notice() returns 1 at once when a notice came since its last
 * call (one that arrived during any other statement counts too), else waits
 * up to timeout_ms for one: 1, or 0 when none came. A connection lost and
 * made again has lost its LISTEN: the wait subscribes again and returns 1,
 * since a change may have been missed meanwhile. Which notices exist: the
 * lock row's trigger (migration 10) sends STORE_LOCKS_CHANNEL on every
 * change of the lock document. */
#define STORE_LOCKS_CHANNEL "boxd_locks"
int store_listen(struct store *s, const char *channel, bool on);
int store_wait_notice(struct store *s, int timeout_ms);

/* Give up the handle's server connection while the caller waits on
 * something else for a long time (a worker queued behind the lock broker):
 * the next statement connects again, like after a loss but without
 * counting as trouble (store_trouble_age_ms()). Hundreds of waiting workers
 * on several hosts would otherwise hold as many server sessions (one
 * PostgreSQL backend process each) and all reconnect at once after a
 * failover. Does nothing inside a transaction or a pinned session, on a
 * subscribed (store_listen()) connection, and on SQLite, which has no
 * server. */
void store_release_connection(struct store *s);

/* How long ago (this process's monotonic clock, ms) a call on this handle
 * last met trouble: a lost connection (-ECONNRESET, -ENOTCONN: the server
 * gone, a cluster node not ready, a failover) or a call that stalled for
 * 2 s or more (a cluster pausing its commits). INT64_MAX when it never
 * did. Other processes, on this host or others, most likely met the same
 * trouble and could not renew their lock leases through it: locks.c
 * reaps no other host's lease soon after trouble. */
int64_t store_trouble_age_ms(const struct store *s);

/* The same clock as an SQL expression (a BIGINT of milliseconds since the
 * epoch), for a caller that reads it in the statement that reads its data
 * and so saves store_now_ms()'s round trip (the lock CAS loop does, once
 * per change). NULL on SQLite: there store_now_ms() costs no query. */
const char *store_now_ms_sql(const struct store *s);

/* Current schema version (after migrations). */
int store_schema_version(struct store *s, int64_t *ret);
