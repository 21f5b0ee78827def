/* store_postgres.c — the PostgreSQL backend (libpq).
 *
 * Statements: the portable `?` placeholders are rewritten to $1..$n, except
 * inside string literals ('...', E'...' with backslash escapes, $tag$...$tag$),
 * quoted identifiers and comments. The result is prepared on the server
 * (PQprepare) under a per-connection name and cached by the caller's SQL
 * text, like the SQLite backend's cache; once the cache is full, further
 * statements run unnamed (PQexecParams: one round trip, nothing to free on
 * the server). Parameters are sent as text and their types are inferred by
 * the server from the context (see store.h). Results come back whole, in
 * text format, so a caller may run other statements while iterating.
 *
 * Session: UTF8, standard_conforming_strings on (the rewriter relies on
 * it), and lock_timeout = the busy timeout, so a row lock wait ends with
 * -EBUSY when the busy timeout has passed. Notices are dropped (library code
 * does not print); a FATAL notice (the server terminating an idle session)
 * marks the connection as lost.
 *
 * Errors inside a transaction: PostgreSQL aborts the whole transaction on
 * any error, so we remember the first one and fail every later statement
 * with -ECANCELED until the caller rolls back; store_commit() then rolls
 * back and reports it. Outside a transaction a deadlock or serialization
 * failure is retried until the busy timeout has passed.
 *
 * Connection loss: before each statement, when the socket is readable while
 * the connection is idle, PQconsumeInput() tells whether the server has
 * closed it (CONNECTION_BAD, or a FATAL notice such as
 * pg_terminate_backend()'s). The rules are the MySQL backend's:
 *   - never reconnect inside a transaction or a pinned session (-ECONNRESET
 *     for the statement and everything up to the rollback);
 *   - otherwise reconnect (PQreset) at most once per statement, when the
 *     loss was found before sending, when preparing, when the statement
 *     only reads, or when the server's reply was 57P01 (terminated by an
 *     administrator) before the statement completed (see execute());
 *   - a write lost after it was sent may or may not have been applied:
 *     -ECONNRESET says so, and the next statement reconnects.
 * After a reconnect the session is set up again and each cached statement
 * is prepared again the next time it is used.
 */
#include "store-internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "../common/timeutil.h"

#define STMT_CACHE_SIZE 48
#define SQL_IN_MSG 200
#define BOOLOID 16

struct pg_stmt {
	struct store_stmt base;
	char *sql;          /* the caller's SQL; cache key when cached */
	char *pgsql;        /* with $n placeholders */
	char name[24];      /* server-side name; "" for an unnamed statement */
	uint64_t gen;       /* connection generation it was prepared on */
	bool cached, in_use, read_only, executed;
	int nparams;
	char **values;      /* text of each parameter; NULL = SQL NULL */
	PGresult *res;
	int row, nrows;
	int64_t changes;
};

struct pg_store {
	struct store base;
	PGconn *conn;
	uint64_t gen;       /* bumped by every (re)connect */
	unsigned next_name;
	bool fatal_notice;  /* the server said goodbye while we were idle */
	/* The transaction is aborted on the server (an error) or gone (lost
	 * connection): later statements fail with tx_err until rollback. */
	int tx_err;
	char tx_msg[400];
	struct pg_stmt *cache[STMT_CACHE_SIZE];
};

#define PG(s) ((struct pg_store *)(s))
#define PGST(st) ((struct pg_stmt *)(st))

/* ---- placeholders ------------------------------------------------------------ */

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       (unsigned char)c >= 0x80 || c == '$';
}

/* Length of a dollar-quote tag starting at p ("$$" or "$tag$"), 0 if none. */
static size_t dollar_tag(const char *p)
{
	if (p[0] != '$')
		return 0;
	size_t i = 1;
	if (p[1] >= '0' && p[1] <= '9')
		return 0; /* $1: a positional parameter */
	while (p[i] && p[i] != '$') {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      (unsigned char)c >= 0x80))
			return 0;
		i++;
	}
	return p[i] == '$' ? i + 1 : 0;
}

/* Rewrite `?` to $1..$n outside literals, identifiers and comments. */
static int rewrite_placeholders(const char *sql, char **ret, int *ret_n)
{
	size_t len = strlen(sql), marks = 0;
	for (const char *p = sql; *p; p++)
		marks += *p == '?';
	char *out = malloc(len + marks * 11 + 1), *o = out;
	if (!out)
		return -ENOMEM;
	int n = 0;
	const char *p = sql;
	while (*p) {
		if (*p == '\'') {
			bool escapes = p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
				       (p - 1 == sql || !ident_char(p[-2]));
			*o++ = *p++;
			while (*p) {
				if (escapes && *p == '\\' && p[1]) {
					*o++ = *p++;
					*o++ = *p++;
				} else if (*p == '\'' && p[1] == '\'') {
					*o++ = *p++;
					*o++ = *p++;
				} else if (*p == '\'') {
					*o++ = *p++;
					break;
				} else {
					*o++ = *p++;
				}
			}
		} else if (*p == '"') {
			*o++ = *p++;
			while (*p) {
				if (*p == '"' && p[1] == '"') {
					*o++ = *p++;
					*o++ = *p++;
				} else if (*p == '"') {
					*o++ = *p++;
					break;
				} else {
					*o++ = *p++;
				}
			}
		} else if (*p == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				*o++ = *p++;
		} else if (*p == '/' && p[1] == '*') {
			int depth = 0;
			while (*p) {
				if (*p == '/' && p[1] == '*') {
					depth++;
					*o++ = *p++;
					*o++ = *p++;
				} else if (*p == '*' && p[1] == '/') {
					*o++ = *p++;
					*o++ = *p++;
					if (--depth == 0)
						break;
				} else {
					*o++ = *p++;
				}
			}
		} else if (*p == '$' && (p == sql || !ident_char(p[-1])) && dollar_tag(p) > 0) {
			size_t tl = dollar_tag(p);
			const char *end = p + tl;
			const char *close = NULL;
			for (const char *q = end; *q; q++) {
				if (*q == '$' && strncmp(q, p, tl) == 0) {
					close = q;
					break;
				}
			}
			size_t span = close ? (size_t)(close - p) + tl : strlen(p);
			memcpy(o, p, span);
			o += span;
			p += span;
		} else if (*p == '?') {
			o += sprintf(o, "$%d", ++n);
			p++;
		} else {
			*o++ = *p++;
		}
	}
	*o = 0;
	*ret = out;
	*ret_n = n;
	return 0;
}

/* ---- errors ---------------------------------------------------------------- */

static int map_sqlstate(const char *st)
{
	if (!st || strlen(st) != 5)
		return -EIO;
	if (strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0 || strcmp(st, "55P03") == 0 ||
	    strcmp(st, "55006") == 0)
		return -EBUSY;
	if (strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0 ||
	    strncmp(st, "08", 2) == 0)
		return -ECONNRESET;
	if (strcmp(st, "57014") == 0 || strcmp(st, "25P02") == 0)
		return -ECANCELED;
	if (strcmp(st, "3D000") == 0)
		return -ENOENT;
	if (strcmp(st, "42P07") == 0 || strcmp(st, "42710") == 0 || strcmp(st, "42P06") == 0 ||
	    strcmp(st, "42P04") == 0 || strncmp(st, "23", 2) == 0)
		return -EEXIST; /* a constraint, as SQLITE_CONSTRAINT */
	if (strcmp(st, "42501") == 0 || strncmp(st, "28", 2) == 0 || strcmp(st, "25006") == 0)
		return -EACCES;
	if (strcmp(st, "22001") == 0)
		return -E2BIG;
	if (strcmp(st, "22003") == 0)
		return -ERANGE;
	if (strncmp(st, "42", 2) == 0 || strncmp(st, "22", 2) == 0 || strcmp(st, "26000") == 0)
		return -EINVAL;
	if (strcmp(st, "53100") == 0)
		return -ENOSPC;
	if (strcmp(st, "53200") == 0)
		return -ENOMEM;
	if (strncmp(st, "53", 2) == 0)
		return -EAGAIN;
	if (strcmp(st, "XX001") == 0 || strcmp(st, "XX002") == 0)
		return -EBADMSG;
	return -EIO;
}

/* A one-line message from a result or the connection. */
static void result_message(struct pg_store *s, const PGresult *res, char *buf, size_t len)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!m)
		m = s->conn ? PQerrorMessage(s->conn) : "no connection";
	snprintf(buf, len, "%s%s%s%s", m, state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = ' ';
}

static int fail_result(struct pg_store *s, const PGresult *res, const char *what, const char *sql)
{
	char msg[384];
	result_message(s, res, msg, sizeof(msg));
	int r = res ? map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE)) : -EIO;
	return store_set_error(&s->base, r, "postgres: %s: %s%s%.*s", what, msg, sql ? " in: " : "", SQL_IN_MSG,
			       sql ? sql : "");
}

/* ---- connection ------------------------------------------------------------ */

static void notice_receiver(void *arg, const PGresult *res)
{
	struct pg_store *s = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		s->fatal_notice = true;
}

static int setup_session(struct pg_store *s, char *err, size_t errlen)
{
	PQsetNoticeReceiver(s->conn, notice_receiver, s);
	s->fatal_notice = false;
	if (PQsetClientEncoding(s->conn, "UTF8") != 0) {
		snprintf(err, errlen, "postgres: cannot set client encoding UTF8: %s", PQerrorMessage(s->conn));
		return -EIO;
	}
	char sql[160];
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d; SET standard_conforming_strings = on",
		 s->base.busy_timeout_ms);
	PGresult *res = PQexec(s->conn, sql);
	int r = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char msg[384];
		result_message(s, res, msg, sizeof(msg));
		snprintf(err, errlen, "postgres: session setup failed: %s", msg);
		r = res ? map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE)) : -EIO;
	}
	PQclear(res);
	return r;
}

static int connect_error(PGconn *conn, char *err, size_t errlen)
{
	const char *m = conn ? PQerrorMessage(conn) : "out of memory";
	snprintf(err, errlen, "postgres: cannot connect: %s", m);
	size_t n = strlen(err);
	while (n > 0 && err[n - 1] == '\n')
		err[--n] = 0;
	/* libpq's messages span lines ("...failed: ...\n\tIs the server
	 * running..."): make it one. */
	char *w = err;
	for (const char *r = err; *r; r++) {
		if (*r == '\n' || *r == '\t') {
			if (w > err && w[-1] != ' ')
				*w++ = ' ';
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
	if (!conn)
		return -ENOMEM;
	if (strstr(m, "does not exist"))
		return -ENOENT;
	if (strstr(m, "authentication failed") || strstr(m, "pg_hba.conf") || strstr(m, "permission denied"))
		return -EACCES;
	return -ECONNREFUSED;
}

static int reconnect(struct pg_store *s)
{
	char err[sizeof(s->base.errmsg)];
	PQreset(s->conn);
	int r;
	if (PQstatus(s->conn) != CONNECTION_OK)
		r = connect_error(s->conn, err, sizeof(err));
	else
		r = setup_session(s, err, sizeof(err));
	if (r < 0)
		return store_set_error(&s->base, -ENOTCONN, "%s (the connection was lost; reconnecting failed)", err);
	s->gen++;
	return 0;
}

/* True when the server has closed (or is closing) this idle connection. */
static bool conn_dead(struct pg_store *s)
{
	if (PQstatus(s->conn) != CONNECTION_OK || s->fatal_notice)
		return true;
	struct pollfd p = { .fd = PQsocket(s->conn), .events = POLLIN };
	if (p.fd < 0)
		return true;
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (!PQconsumeInput(s->conn))
		return true;
	PGnotify *n;
	while ((n = PQnotifies(s->conn)))
		PQfreemem(n);
	return PQstatus(s->conn) != CONNECTION_OK || s->fatal_notice;
}

static bool must_not_reconnect(struct pg_store *s) { return s->base.in_tx || s->base.session_pinned; }

static void tx_fail(struct pg_store *s, int err, const char *msg)
{
	if (!s->base.in_tx || s->tx_err)
		return;
	s->tx_err = err == -ECONNRESET ? err : -ECANCELED;
	snprintf(s->tx_msg, sizeof(s->tx_msg),
		 "postgres: statement not run: the transaction was aborted by an earlier error (%.240s); roll it back",
		 msg);
}

static int lost_in_session(struct pg_store *s, const char *how)
{
	if (s->base.in_tx) {
		tx_fail(s, -ECONNRESET, "the connection to the server was lost");
		return store_set_error(&s->base, -ECONNRESET, "postgres: the connection to the server was lost %s, "
				       "inside a transaction: nothing of it was committed", how);
	}
	return store_set_error(&s->base, -ECONNRESET,
			       "postgres: the connection to the server was lost %s while session state was held; "
			       "not reconnecting", how);
}

static int ensure_conn(struct pg_store *s, bool *reconnected)
{
	if (s->base.in_tx && s->tx_err)
		return store_set_error(&s->base, s->tx_err, "%s", s->tx_msg);
	if (!conn_dead(s))
		return 0;
	if (must_not_reconnect(s))
		return lost_in_session(s, "while idle");
	if (*reconnected)
		return store_set_error(&s->base, -ECONNRESET, "postgres: the connection to the server was lost again");
	*reconnected = true;
	return reconnect(s);
}

/* ---- statements ------------------------------------------------------------ */

static void clear_values(struct pg_stmt *c)
{
	for (int i = 0; i < c->nparams; i++) {
		free(c->values[i]);
		c->values[i] = NULL;
	}
}

static void clear_result(struct pg_stmt *c)
{
	PQclear(c->res);
	c->res = NULL;
	c->executed = false;
	c->row = -1;
	c->nrows = 0;
}

static void stmt_free(struct pg_stmt *c)
{
	if (!c)
		return;
	clear_result(c);
	clear_values(c);
	free(c->values);
	free(c->sql);
	free(c->pgsql);
	free(c);
}

/* Prepare a named statement on the current connection (again, after a
 * reconnect). Preparing changes no data: a loss found here is reconnected
 * outside a transaction. */
static int stmt_ready(struct pg_store *s, struct pg_stmt *c, bool *reconnected)
{
	for (;;) {
		int r = ensure_conn(s, reconnected);
		if (r < 0)
			return r;
		if (!c->name[0] || c->gen == s->gen)
			return 0;
		PGresult *res = PQprepare(s->conn, c->name, c->pgsql, c->nparams, NULL);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			c->gen = s->gen;
			return 0;
		}
		if (PQstatus(s->conn) != CONNECTION_OK) {
			PQclear(res);
			if (must_not_reconnect(s))
				return lost_in_session(s, "while preparing a statement");
			if (*reconnected)
				return store_set_error(&s->base, -ECONNRESET,
						       "postgres: the connection to the server was lost again");
			continue; /* ensure_conn() reconnects */
		}
		r = fail_result(s, res, "prepare", c->sql);
		PQclear(res);
		tx_fail(s, r, s->base.errmsg);
		return r;
	}
}

static int pg_prepare(struct store *base, const char *sql, struct store_stmt **ret)
{
	struct pg_store *s = PG(base);
	struct pg_stmt *c = NULL;
	int free_slot = -1;
	for (int i = 0; i < STMT_CACHE_SIZE; i++) {
		struct pg_stmt *e = s->cache[i];
		if (!e) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (!e->in_use && strcmp(e->sql, sql) == 0) {
			c = e;
			break;
		}
	}
	bool fresh = !c;
	if (fresh) {
		c = calloc(1, sizeof(*c));
		if (!c || !(c->sql = strdup(sql)) || rewrite_placeholders(sql, &c->pgsql, &c->nparams) < 0 ||
		    (c->nparams > 0 && !(c->values = calloc((size_t)c->nparams, sizeof(*c->values))))) {
			stmt_free(c);
			return store_set_error(base, -ENOMEM, "postgres: out of memory");
		}
		c->base.store = base;
		c->read_only = store_sql_is_read_only(sql);
		c->row = -1;
		if (free_slot >= 0)
			snprintf(c->name, sizeof(c->name), "boxd_%u", ++s->next_name);
	}
	bool reconnected = false;
	int r = stmt_ready(s, c, &reconnected);
	if (r < 0) {
		if (fresh)
			stmt_free(c);
		return r;
	}
	if (fresh && free_slot >= 0) {
		c->cached = true;
		s->cache[free_slot] = c;
	}
	c->in_use = true;
	c->changes = 0;
	*ret = &c->base;
	return 0;
}

static char **value_at(struct store_stmt *st, int idx)
{
	struct pg_stmt *c = PGST(st);
	if (idx < 1 || idx > c->nparams) {
		store_set_error(st->store, -EINVAL, "postgres: bind index %d out of range (statement has %d parameters)",
				idx, c->nparams);
		return NULL;
	}
	free(c->values[idx - 1]);
	c->values[idx - 1] = NULL;
	return &c->values[idx - 1];
}

static int pg_bind_int64(struct store_stmt *st, int idx, int64_t v)
{
	char **slot = value_at(st, idx);
	if (!slot)
		return -EINVAL;
	char buf[24];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	*slot = strdup(buf);
	return *slot ? 0 : store_set_error(st->store, -ENOMEM, "postgres: out of memory");
}

static int pg_bind_text(struct store_stmt *st, int idx, const char *v)
{
	char **slot = value_at(st, idx);
	if (!slot)
		return -EINVAL;
	if (!v)
		return 0;
	*slot = strdup(v);
	return *slot ? 0 : store_set_error(st->store, -ENOMEM, "postgres: out of memory");
}

static int pg_bind_null(struct store_stmt *st, int idx) { return value_at(st, idx) ? 0 : -EINVAL; }

/* Send the statement and collect its result. *ret_sent says whether the
 * statement left this process. */
static PGresult *run_once(struct pg_store *s, struct pg_stmt *c, bool *ret_sent)
{
	const char *const *values = (const char *const *)c->values;
	int ok = c->name[0] ? PQsendQueryPrepared(s->conn, c->name, c->nparams, values, NULL, NULL, 0)
			    : PQsendQueryParams(s->conn, c->pgsql, c->nparams, NULL, values, NULL, NULL, 0);
	*ret_sent = ok != 0;
	if (!ok)
		return NULL;
	PGresult *first = NULL, *res;
	while ((res = PQgetResult(s->conn))) {
		if (!first)
			first = res;
		else
			PQclear(res);
	}
	return first;
}

static int execute(struct pg_store *s, struct pg_stmt *c)
{
	bool reconnected = false;
	int64_t start = now_mono_ms();
	for (int attempt = 0;; attempt++) {
		int r = stmt_ready(s, c, &reconnected);
		if (r < 0)
			return r;
		bool sent;
		PGresult *res = run_once(s, c, &sent);
		ExecStatusType status = PQresultStatus(res);
		bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
		if (PQstatus(s->conn) != CONNECTION_OK && !(ok && c->read_only)) {
			/* Lost before ReadyForQuery. In the extended protocol a
			 * statement outside a transaction commits at Sync, after
			 * its CommandComplete: even a success result does not
			 * prove the commit. But a session ended by
			 * pg_terminate_backend() (57P01) before CommandComplete
			 * never got to commit: it did not apply. */
			const char *state = ok ? NULL : PQresultErrorField(res, PG_DIAG_SQLSTATE);
			bool not_applied = !sent || (state && strcmp(state, "57P01") == 0);
			char msg[384];
			if (ok)
				snprintf(msg, sizeof(msg), "the connection closed before the server confirmed the commit");
			else
				result_message(s, res, msg, sizeof(msg));
			PQclear(res);
			if (must_not_reconnect(s))
				return lost_in_session(s, "while running a statement");
			if (!reconnected && (not_applied || c->read_only))
				continue; /* stmt_ready() reconnects */
			return store_set_error(&s->base, -ECONNRESET,
					       "postgres: the connection to the server was lost while running a "
					       "statement, which may or may not have been applied: %s in: %.*s",
					       msg, SQL_IN_MSG, c->sql);
		}
		if (ok) {
			c->res = res;
			c->executed = true;
			c->row = -1;
			c->nrows = status == PGRES_TUPLES_OK ? PQntuples(res) : 0;
			const char *n = PQcmdTuples(res);
			c->changes = n && *n ? strtoll(n, NULL, 10) : 0;
			return 0;
		}
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "26000") == 0 && !s->base.in_tx && c->name[0] && attempt < 2) {
			/* Our prepared statement vanished (DISCARD ALL by a
			 * pooler): nothing ran, prepare it again. */
			PQclear(res);
			c->gen = 0;
			continue;
		}
		r = fail_result(s, res, "step", c->sql);
		PQclear(res);
		if (s->base.in_tx) {
			tx_fail(s, r, s->base.errmsg);
			return r;
		}
		if (r == -EBUSY && now_mono_ms() - start < s->base.busy_timeout_ms) {
			sleep_us(1000LL << (attempt < 5 ? attempt : 5));
			continue;
		}
		return r;
	}
}

static int pg_step(struct store_stmt *st)
{
	struct pg_stmt *c = PGST(st);
	if (!c->executed) {
		int r = execute(PG(st->store), c);
		if (r < 0)
			return r;
	}
	if (c->row < c->nrows)
		c->row++;
	return c->row < c->nrows ? 1 : 0;
}

static bool col_ok(struct pg_stmt *c, int col)
{
	return c->res && c->row >= 0 && c->row < c->nrows && col >= 0 && col < PQnfields(c->res) &&
	       !PQgetisnull(c->res, c->row, col);
}

static int64_t pg_col_int64(struct store_stmt *st, int col)
{
	struct pg_stmt *c = PGST(st);
	if (!col_ok(c, col))
		return 0;
	const char *v = PQgetvalue(c->res, c->row, col);
	if (PQftype(c->res, col) == BOOLOID)
		return v[0] == 't';
	return (int64_t)strtoll(v, NULL, 10);
}

static const char *pg_col_text(struct store_stmt *st, int col)
{
	struct pg_stmt *c = PGST(st);
	return col_ok(c, col) ? PQgetvalue(c->res, c->row, col) : NULL;
}

static bool pg_col_is_null(struct store_stmt *st, int col) { return !col_ok(PGST(st), col); }

static int64_t pg_changes(struct store_stmt *st) { return PGST(st)->changes; }

static void pg_finalize(struct store_stmt *st)
{
	struct pg_stmt *c = PGST(st);
	if (!c->cached) {
		stmt_free(c);
		return;
	}
	clear_result(c);
	clear_values(c);
	c->in_use = false;
}

/* ---- transactions ------------------------------------------------------------ */

static int simple_command(struct pg_store *s, const char *sql, bool *ret_lost)
{
	PGresult *res = PQexec(s->conn, sql);
	int r = 0;
	*ret_lost = false;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*ret_lost = PQstatus(s->conn) != CONNECTION_OK;
		r = fail_result(s, res, sql, NULL);
	} else if (strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		r = store_set_error(&s->base, -ECANCELED, "postgres: COMMIT: the server rolled the transaction back");
	}
	PQclear(res);
	return r;
}

static int pg_begin(struct store *base, bool write)
{
	struct pg_store *s = PG(base);
	(void)write; /* row locks are taken as statements run */
	s->tx_err = 0;
	bool reconnected = false;
	for (;;) {
		int r = ensure_conn(s, &reconnected);
		if (r < 0)
			return r;
		bool lost;
		r = simple_command(s, "BEGIN", &lost);
		if (r < 0 && lost && !reconnected)
			continue; /* nothing to lose yet: reconnect and retry */
		return r;
	}
}

static int pg_commit(struct store *base)
{
	struct pg_store *s = PG(base);
	bool lost;
	int r;
	if (s->tx_err) {
		r = s->tx_err;
		char msg[sizeof(s->tx_msg)];
		snprintf(msg, sizeof(msg), "%s", s->tx_msg);
		if (PQstatus(s->conn) == CONNECTION_OK)
			simple_command(s, "ROLLBACK", &lost);
		store_set_error(base, r, "%s (nothing was committed)", msg);
	} else if (conn_dead(s)) {
		r = store_set_error(base, -ECONNRESET, "postgres: the connection to the server was lost inside a "
				    "transaction, which the server rolled back: nothing was committed");
	} else {
		r = simple_command(s, "COMMIT", &lost);
		if (r < 0 && lost)
			r = store_set_error(base, -ECONNRESET, "postgres: the connection to the server was lost "
					    "during COMMIT: the transaction may or may not have been committed");
	}
	s->tx_err = 0;
	return r;
}

static void pg_rollback(struct store *base)
{
	struct pg_store *s = PG(base);
	bool lost;
	if (!conn_dead(s))
		simple_command(s, "ROLLBACK", &lost);
	s->tx_err = 0;
}

static void pg_close(struct store *base)
{
	struct pg_store *s = PG(base);
	for (int i = 0; i < STMT_CACHE_SIZE; i++)
		stmt_free(s->cache[i]);
	PQfinish(s->conn);
	free(s);
}

static const struct store_ops postgres_ops = {
	.close = pg_close,
	.prepare = pg_prepare,
	.bind_int64 = pg_bind_int64,
	.bind_text = pg_bind_text,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.col_int64 = pg_col_int64,
	.col_text = pg_col_text,
	.col_is_null = pg_col_is_null,
	.changes = pg_changes,
	.finalize = pg_finalize,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.now_ms_sql = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
};

int store_postgres_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen)
{
	if (!opts->dsn || !*opts->dsn) {
		snprintf(errbuf, errlen, "postgres: no DSN given (a libpq connection string or postgresql:// URI)");
		return -EINVAL;
	}
	char *perr = NULL;
	PQconninfoOption *parsed = PQconninfoParse(opts->dsn, &perr);
	if (!parsed) {
		snprintf(errbuf, errlen, "postgres: malformed DSN: %s", perr ? perr : "out of memory");
		size_t n = strlen(errbuf);
		while (n > 0 && errbuf[n - 1] == '\n')
			errbuf[--n] = 0;
		int r = perr ? -EINVAL : -ENOMEM;
		PQfreemem(perr);
		return r;
	}
	PQconninfoFree(parsed);
	struct pg_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	s->base.ops = &postgres_ops;
	s->base.busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
	s->conn = PQconnectdb(opts->dsn);
	int r;
	if (!s->conn || PQstatus(s->conn) != CONNECTION_OK)
		r = connect_error(s->conn, errbuf, errlen);
	else
		r = setup_session(s, errbuf, errlen);
	if (r < 0) {
		PQfinish(s->conn);
		free(s);
		return r;
	}
	s->gen = 1;
	*ret = &s->base;
	return 0;
}
