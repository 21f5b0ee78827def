/* store_server.h — the policy the two server backends share. Only src/store
 * includes it.
 *
 * MariaDB/MySQL (store_mysql.c) and PostgreSQL (store_postgres.c) differ
 * in their wire protocol and agree on everything else, which lives here
 * once (store.h states the rules as the callers see them):
 *
 *   - the statement cache: prepared statements kept per connection by
 *     their SQL text (SERVER_STMT_CACHE_SIZE of them; more run uncached);
 *   - the connection generation: every (re)connect bumps s->gen, and a
 *     statement prepared on an older generation is prepared again before
 *     it runs;
 *   - ensure-connection: before a statement, a connection the server has
 *     closed is reconnected, at most once per statement, never inside a
 *     transaction or a pinned session (-ECONNRESET there);
 *   - the latched transaction error: once the server has ended a
 *     transaction behind the caller's back (a lost connection; on
 *     PostgreSQL any error; on MySQL a deadlock or lock wait timeout,
 *     after which we roll back at once), every later statement fails with
 *     the same error until the caller rolls back, and the commit says that
 *     nothing was committed;
 *   - retry and "was it applied?": a statement whose connection was lost is
 *     run again on a new connection only when it cannot have been applied
 *     (it never reached the server) or only reads; otherwise -ECONNRESET
 *     says that it may or may not have been applied. A busy error outside
 *     a transaction is retried with a backoff until the busy timeout.
 *
 * A backend embeds struct server_store / struct server_stmt at the start of
 * its own structs and provides the hooks of struct server_ops; it keeps
 * binding parameters and reading columns.
 */
#pragma once

#include "store-internal.h"

#define SERVER_STMT_CACHE_SIZE 48
#define SERVER_SQL_IN_MSG 200 /* bytes of the SQL quoted in a message */

/* What became of a statement or command sent to the server. */
enum server_outcome {
	SERVER_OK,
	SERVER_FAILED,    /* the server refused it: err and the message are set */
	SERVER_REPREPARE, /* the server forgot the prepared statement, nothing ran (err set, in case
			   * preparing again does not help) */
	SERVER_NOT_SENT,  /* the connection is lost and the server never ran it */
	SERVER_LOST,      /* the connection was lost after sending: it may have been applied */
};

struct server_failure {
	enum server_outcome kind;
	int err;       /* SERVER_FAILED, SERVER_REPREPARE; commands: any failure (message set) */
	char msg[384]; /* SERVER_NOT_SENT, SERVER_LOST: what the library or the server said */
};

struct server_store;

struct server_stmt {
	struct store_stmt base;
	char *sql;      /* the caller's SQL; the cache key when cached */
	uint64_t gen;   /* the connection generation it was prepared on (0: never) */
	bool cached;    /* in the cache (else freed by finalize) */
	bool in_use;    /* between prepare and finalize */
	bool read_only; /* store_sql_is_read_only(sql): safe to run again after a loss */
};

struct server_ops {
	const char *name;       /* "mysql", "postgres": messages start with it */
	const char *begin_sql;  /* the statement that starts a transaction */
	/* Any error inside a transaction aborts it on the server
	 * (PostgreSQL); else only busy errors end it (MySQL). */
	bool error_aborts_tx;
	/* Connect again after a loss (disconnect() was called) and set up
	 * the session; 0, or a negative errno with why in err. */
	int (*connect)(struct server_store *s, char *err, size_t errlen);
	/* Forget a connection found lost. */
	void (*disconnect)(struct server_store *s);
	/* Close a live, idle connection for server_release_connection(),
	 * or keep it (false: it holds session state, a LISTEN); connect()
	 * makes a new one. */
	bool (*close_conn)(struct server_store *s);
	/* Whether the server has closed (or is closing) this idle
	 * connection. No round trip. */
	bool (*conn_dead)(struct server_store *s);
	/* A new statement for `sql` (c->sql, gen and the flags are filled in
	 * by the caller); `cached`: it goes into the cache. NULL: no memory. */
	struct server_stmt *(*stmt_new)(struct server_store *s, const char *sql, bool cached);
	void (*stmt_free)(struct server_stmt *c);
	/* Prepare c on the current connection: 0, or a negative errno with
	 * the message set and *ret_lost when it was because the connection
	 * was lost. */
	int (*prepare)(struct server_store *s, struct server_stmt *c, bool *ret_lost);
	/* Send c with its bound parameters and take its result. 0: it ran;
	 * > 0: it failed, classify() says how; < 0: a failure of our own (no
	 * memory), message set, not retried. */
	int (*send)(struct server_store *s, struct server_stmt *c);
	void (*classify)(struct server_store *s, struct server_stmt *c, struct server_failure *ret);
	/* Run a statement without parameters or rows (BEGIN, COMMIT,
	 * ROLLBACK). ret->kind SERVER_OK, or another kind with ret->err and
	 * the message set. */
	void (*command)(struct server_store *s, const char *sql, struct server_failure *ret);
};

struct server_store {
	struct store base;
	const struct server_ops *sops;
	uint64_t gen; /* bumped by every (re)connect; 1 after the first */
	/* The latched transaction error (above): 0, or what every statement
	 * fails with until the rollback. */
	int tx_err;
	char tx_msg[400];
	struct server_stmt *cache[SERVER_STMT_CACHE_SIZE];
	/* The connection was given up on purpose (store_release_connection()):
	 * the next statement connects again without counting it as trouble. */
	bool released;
};

/* After the backend's first connect. */
void server_store_init(struct server_store *s, const struct server_ops *sops, const struct store_options *opts);
/* Free the cached statements (not s itself, nor the connection). */
void server_store_close(struct server_store *s);

/* store_ops.prepare: a cached statement not in use, or a new one; ready to
 * bind. */
int server_prepare(struct store *base, const char *sql, struct store_stmt **ret);
/* The backend's finalize, after resetting its own state: back into the
 * cache, or freed. */
void server_finalize(struct server_stmt *c);
/* Run c (bound) with the rules above; 0 when it ran. */
int server_execute(struct server_store *s, struct server_stmt *c);

/* store_ops.release_connection (store.c checks the transaction and the
 * pinned session). */
void server_release_connection(struct store *base);

/* store_ops.begin, commit, rollback. */
int server_begin(struct store *base, bool write);
int server_commit(struct store *base);
void server_rollback(struct store *base);
