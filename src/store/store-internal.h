/* store-internal.h — what a backend implements. Only src/store includes it.
 *
 * A backend allocates a struct that begins with `struct store` (and one that
 * begins with `struct store_stmt` for statements), fills in `ops`, and
 * reports failures through store_set_error(), which records a message and
 * returns the negative errno it was given.
 */
#pragma once

#include "store.h"

struct store_ops {
	void (*close)(struct store *s);
	int (*prepare)(struct store *s, const char *sql, struct store_stmt **ret);
	int (*bind_int64)(struct store_stmt *st, int idx, int64_t v);
	int (*bind_text)(struct store_stmt *st, int idx, const char *v);
	int (*bind_null)(struct store_stmt *st, int idx);
	int (*step)(struct store_stmt *st);
	int64_t (*col_int64)(struct store_stmt *st, int col);
	const char *(*col_text)(struct store_stmt *st, int col);
	bool (*col_is_null)(struct store_stmt *st, int col);
	int64_t (*changes)(struct store_stmt *st);
	void (*finalize)(struct store_stmt *st);
	/* store_run_relaxed(): flush commits from now on (false) or not
	 * (true); NULL where a commit's durability is not the client's to
	 * choose. A backend that cannot go back to flushing must fail every
	 * later statement until it can (it reports nothing here). */
	void (*set_relaxed)(struct store *s, bool relaxed);
	int (*begin)(struct store *s, bool write);
	int (*commit)(struct store *s);
	void (*rollback)(struct store *s);
	/* The database's clock, for store_now_ms(): a server backend gives it
	 * as an SQL expression (now_ms_sql, milliseconds since the epoch as a
	 * BIGINT), SQLite as a function that reads this host's clock. */
	const char *now_ms_sql;
	int (*now_ms)(struct store *s, int64_t *ret);
	/* Change notices (store_listen(), store_wait_notice()); NULL on a
	 * backend without them. */
	int (*listen)(struct store *s, const char *channel, bool on);
	int (*wait_notice)(struct store *s, int timeout_ms);
	/* store_release_connection(); NULL where there is no server. */
	void (*release_connection)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	enum store_backend backend;
	int busy_timeout_ms;
	bool in_tx;
	/* Session state that a new connection would not have is in use (the
	 * MySQL migration holds GET_LOCK). While set, a server backend treats
	 * a lost connection like one lost inside a transaction: it reports
	 * -ECONNRESET instead of reconnecting behind the caller's back. */
	bool session_pinned;
	char errmsg[512];
	/* store_db_key(): hex SHA-256, "" when there is none (SQLite). */
	char db_key[65];
	/* store_trouble_age_ms(): when (now_mono_ms()) a call on this handle
	 * last met a lost connection or stalled; 0: never. */
	int64_t trouble_mono_ms;
};

struct store_stmt {
	struct store *store;
};


/* Backend constructors: connect, but do not migrate. */
int store_sqlite_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen);
int store_mysql_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen);
int store_postgres_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen);

/* True when `sql` only reads (its first keyword is SELECT, SHOW or VALUES,
 * after comments and parentheses), so that running it again after a
 * connection was lost mid-statement cannot apply anything twice. Functions
 * with side effects called from a SELECT (nextval, GET_LOCK) are not
 * detected: such statements run inside a transaction or a pinned session. */
bool store_sql_is_read_only(const char *sql);

/* Bring the schema to the newest version (schema.c). */
int store_migrate(struct store *s);
