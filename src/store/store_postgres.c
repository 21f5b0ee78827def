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
 *
 * A server that stops answering (frozen, cut off) is given up on: every
 * wait for a reply is a poll(), and a reply missing for 4 s makes us ask
 * the server for a new connection (PQping, 5 s); no answer there, and the
 * connection counts as lost after sending (see wait_result()). Connecting
 * has a per-host deadline too (connect_defaults()).
 *
 * The cache, the generations, the reconnect rules, the latched transaction
 * error and the retries are store_server.c's, shared with MySQL; this file
 * gives them PostgreSQL's answers through struct server_ops.
 */
#include "store_server.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "pq_lib.h"

#define BOOLOID 16

struct pg_stmt {
	struct server_stmt sv;
	char *pgsql;        /* with $n placeholders */
	char name[24];      /* server-side name; "" for an unnamed statement */
	bool executed;
	int nparams;
	char **values;      /* text of each parameter; NULL = SQL NULL */
	PGresult *res;
	int row, nrows;
	int64_t changes;
	/* A failed send, for classify(). */
	PGresult *failed;
	bool failed_sent, failed_ok;
};

struct pg_store {
	struct server_store sv;
	PGconn *conn;
	unsigned next_name;
	bool fatal_notice;  /* the server said goodbye while we were idle */
	/* A reply did not come and the server did not answer a new
	 * connection either (wait_result()): the connection is given up. */
	bool stuck;
	char stuck_msg[160];
	/* Change notices (store_listen()): the channel subscribed ("" none),
	 * the connection generation it was subscribed on, and whether a
	 * notice came that store_wait_notice() has not reported yet. */
	char listen_channel[32];
	uint64_t listen_gen;
	bool notified;
	/* How to connect anew once the connection was closed on purpose
	 * (store_release_connection(): conn is NULL then). */
	const char *keys[5], *values[5];
	char *dsn;
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
	const char *m = res ? sym_PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? sym_PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!m && s->stuck)
		m = s->stuck_msg;
	if (!m)
		m = s->conn ? sym_PQerrorMessage(s->conn) : "no connection";
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
	int r = res ? map_sqlstate(sym_PQresultErrorField(res, PG_DIAG_SQLSTATE)) : -EIO;
	return store_set_error(&s->sv.base, r, "postgres: %s: %s%s%.*s", what, msg, sql ? " in: " : "",
			       SERVER_SQL_IN_MSG, sql ? sql : "");
}

/* ---- connection ------------------------------------------------------------ */

static void notice_receiver(void *arg, const PGresult *res)
{
	struct pg_store *s = arg;
	const char *sev = sym_PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		s->fatal_notice = true;
}

/* ---- waiting for a reply ------------------------------------------------------ */

/* A reply that has not come within REPLY_PROBE_MS is not given up on by
 * itself: a statement may rightly wait (for a row lock, up to lock_timeout
 * = the busy timeout; a migrator for the advisory lock, 60 s). But a
 * server that is frozen (SIGSTOP, a hung machine) or cut off never
 * answers, and while the kernel at the other end acknowledges our bytes
 * TCP keepalives and tcp_user_timeout see nothing wrong: libpq would wait
 * for ever, and so would the daemon's thread or the worker. So each time
 * REPLY_PROBE_MS pass without a reply, we ask the same server for a new
 * connection (PQping, PROBE_CONNECT_TIMEOUT_S): a server that answers is
 * alive and we wait on; one that does not is given up on. The connection
 * then counts as lost after sending (the statement may or may not have
 * been applied), and the next statement reconnects through the DSN's
 * host list, to whichever host is the primary now. A frozen server costs
 * a statement REPLY_PROBE_MS + PROBE_CONNECT_TIMEOUT_S (9 s). */
#define REPLY_PROBE_MS 4000
#define PROBE_CONNECT_TIMEOUT_S "5"

static bool server_answers(struct pg_store *s)
{
	const char *host = sym_PQhost(s->conn), *addr = sym_PQhostaddr(s->conn), *port = sym_PQport(s->conn);
	const char *keys[5], *values[5];
	size_t n = 0;
	if (host && *host) {
		keys[n] = "host";
		values[n++] = host;
	}
	if (addr && *addr) {
		keys[n] = "hostaddr";
		values[n++] = addr;
	}
	if (port && *port) {
		keys[n] = "port";
		values[n++] = port;
	}
	keys[n] = "connect_timeout";
	values[n++] = PROBE_CONNECT_TIMEOUT_S;
	keys[n] = values[n] = NULL;
	/* PQPING_REJECT: it answers (starting or stopping); NO_ATTEMPT: our
	 * parameters, not the server. */
	return sym_PQpingParams(keys, values, 0) != PQPING_NO_RESPONSE;
}

/* The result of what was just sent (the first error, else the last
 * result), waiting as above; NULL with s->stuck set when the server does
 * not answer (the results still due are abandoned with the connection). */
static PGresult *wait_result(struct pg_store *s)
{
	int64_t started = now_mono_ms(), probe_at = started + REPLY_PROBE_MS;
	PGresult *keep = NULL, *res;
	for (;;) {
		while (sym_PQisBusy(s->conn)) {
			int64_t now = now_mono_ms();
			if (now >= probe_at) {
				if (!server_answers(s)) {
					sym_PQclear(keep);
					s->stuck = true;
					snprintf(s->stuck_msg, sizeof(s->stuck_msg),
						 "no reply from the server for %lld ms, and it does not answer a new "
						 "connection: given up",
						 (long long)(now_mono_ms() - started));
					return NULL;
				}
				probe_at = now_mono_ms() + REPLY_PROBE_MS;
				continue;
			}
			struct pollfd p = { .fd = sym_PQsocket(s->conn), .events = POLLIN };
			if (p.fd < 0)
				break;
			int n = poll(&p, 1, (int)(probe_at - now));
			if (n < 0 && errno != EINTR)
				break;
			/* Lost: PQgetResult() below returns the error. */
			if (n > 0 && !sym_PQconsumeInput(s->conn))
				break;
		}
		if (!(res = sym_PQgetResult(s->conn)))
			return keep;
		ExecStatusType st = sym_PQresultStatus(keep);
		if (keep && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			sym_PQclear(res);
			continue;
		}
		sym_PQclear(keep);
		keep = res;
	}
}

/* PQexec() with the wait above. */
static PGresult *exec_waiting(struct pg_store *s, const char *sql)
{
	return sym_PQsendQuery(s->conn, sql) ? wait_result(s) : NULL;
}

/* Why the session's setup failed. A server that went away meanwhile
 * (killed or restarting between accepting the connection and answering)
 * leaves libpq's own error, which has no SQLSTATE: that is a lost
 * connection, which the caller retries, not an error of the server's.
 * Taken for one (-EIO), it failed a worker that started at the moment of
 * a server's kill -9 (t0844 on PostgreSQL: "could not load or register
 * its task"). */
static int setup_error(struct pg_store *s, const PGresult *res)
{
	if (sym_PQstatus(s->conn) != CONNECTION_OK)
		return -ECONNRESET;
	return res ? map_sqlstate(sym_PQresultErrorField(res, PG_DIAG_SQLSTATE)) : -EIO;
}

static int setup_session(struct pg_store *s, char *err, size_t errlen)
{
	sym_PQsetNoticeReceiver(s->conn, notice_receiver, s);
	s->fatal_notice = false;
	if (sym_PQsetClientEncoding(s->conn, "UTF8") != 0) {
		snprintf(err, errlen, "postgres: cannot set client encoding UTF8: %s", sym_PQerrorMessage(s->conn));
		return setup_error(s, NULL);
	}
	char sql[160];
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d; SET standard_conforming_strings = on",
		 s->sv.base.busy_timeout_ms);
	PGresult *res = exec_waiting(s, sql);
	int r = 0;
	if (sym_PQresultStatus(res) != PGRES_COMMAND_OK) {
		char msg[384];
		result_message(s, res, msg, sizeof(msg));
		snprintf(err, errlen, "postgres: session setup failed: %s", msg);
		r = setup_error(s, res);
	}
	sym_PQclear(res);
	return r;
}

static int connect_error(PGconn *conn, char *err, size_t errlen)
{
	const char *m = conn ? sym_PQerrorMessage(conn) : "out of memory";
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

static int pg_connect(struct server_store *base, char *err, size_t errlen)
{
	struct pg_store *s = PG(base);
	if (s->conn)
		sym_PQreset(s->conn);
	else
		s->conn = sym_PQconnectdbParams(s->keys, s->values, 1);
	s->stuck = false;
	if (sym_PQstatus(s->conn) != CONNECTION_OK)
		return connect_error(s->conn, err, errlen);
	return setup_session(s, err, errlen);
}

/* libpq keeps a lost connection's PGconn: connect() resets it. */
static void pg_disconnect(struct server_store *base) { (void)base; }

static bool pg_close_conn(struct server_store *base)
{
	struct pg_store *s = PG(base);
	if (s->listen_channel[0])
		return false;
	sym_PQfinish(s->conn);
	s->conn = NULL;
	return true;
}

/* Take the notices libpq has read (during any statement, or just now):
 * they only matter as "something changed" (store_wait_notice()). */
static bool take_notices(struct pg_store *s)
{
	PGnotify *n;
	bool any = false;
	while ((n = sym_PQnotifies(s->conn))) {
		any = true;
		sym_PQfreemem(n);
	}
	if (any && s->listen_channel[0])
		s->notified = true;
	return any;
}

/* True when the server has closed (or is closing) this idle connection. */
static bool pg_conn_dead(struct server_store *base)
{
	struct pg_store *s = PG(base);
	if (sym_PQstatus(s->conn) != CONNECTION_OK || s->fatal_notice || s->stuck)
		return true;
	struct pollfd p = { .fd = sym_PQsocket(s->conn), .events = POLLIN };
	if (p.fd < 0)
		return true;
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (!sym_PQconsumeInput(s->conn))
		return true;
	take_notices(s);
	return sym_PQstatus(s->conn) != CONNECTION_OK || s->fatal_notice;
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
	sym_PQclear(c->res);
	c->res = NULL;
	c->executed = false;
	c->row = -1;
	c->nrows = 0;
}

static void pg_stmt_free(struct server_stmt *sc)
{
	struct pg_stmt *c = (struct pg_stmt *)sc;
	if (!c)
		return;
	clear_result(c);
	sym_PQclear(c->failed);
	clear_values(c);
	free(c->values);
	free(c->sv.sql);
	free(c->pgsql);
	free(c);
}

static struct server_stmt *pg_stmt_new(struct server_store *base, const char *sql, bool cached)
{
	struct pg_store *s = PG(base);
	struct pg_stmt *c = calloc(1, sizeof(*c));
	if (!c || !(c->sv.sql = strdup(sql)) || rewrite_placeholders(sql, &c->pgsql, &c->nparams) < 0 ||
	    (c->nparams > 0 && !(c->values = calloc((size_t)c->nparams, sizeof(*c->values))))) {
		pg_stmt_free(c ? &c->sv : NULL);
		return NULL;
	}
	c->row = -1;
	/* Uncached statements run unnamed: nothing to free on the server. */
	if (cached)
		snprintf(c->name, sizeof(c->name), "boxd_%u", ++s->next_name);
	return &c->sv;
}

/* Prepare a named statement on the current connection (again, after a
 * reconnect); an unnamed one is sent whole each time. */
static int pg_stmt_prepare(struct server_store *base, struct server_stmt *sc, bool *ret_lost)
{
	struct pg_store *s = PG(base);
	struct pg_stmt *c = (struct pg_stmt *)sc;
	if (!c->name[0])
		return 0;
	PGresult *res = sym_PQsendPrepare(s->conn, c->name, c->pgsql, c->nparams, NULL) ? wait_result(s) : NULL;
	if (sym_PQresultStatus(res) == PGRES_COMMAND_OK) {
		sym_PQclear(res);
		return 0;
	}
	*ret_lost = sym_PQstatus(s->conn) != CONNECTION_OK || s->stuck;
	int r = fail_result(s, res, "prepare", c->sv.sql);
	sym_PQclear(res);
	return r;
}

static int pg_prepare(struct store *base, const char *sql, struct store_stmt **ret)
{
	int r = server_prepare(base, sql, ret);
	if (r < 0)
		return r;
	PGST(*ret)->changes = 0;
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
	int ok = c->name[0] ? sym_PQsendQueryPrepared(s->conn, c->name, c->nparams, values, NULL, NULL, 0)
			    : sym_PQsendQueryParams(s->conn, c->pgsql, c->nparams, NULL, values, NULL, NULL, 0);
	*ret_sent = ok != 0;
	return ok ? wait_result(s) : NULL;
}

/* Send: a result taken if the statement ran, and also when the connection
 * closed after a read-only statement ran (its rows are all here); else
 * kept for classify(). */
static int pg_send(struct server_store *base, struct server_stmt *sc)
{
	struct pg_store *s = PG(base);
	struct pg_stmt *c = (struct pg_stmt *)sc;
	bool sent;
	PGresult *res = run_once(s, c, &sent);
	ExecStatusType status = sym_PQresultStatus(res);
	bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
	if (ok && (sym_PQstatus(s->conn) == CONNECTION_OK || c->sv.read_only)) {
		c->res = res;
		c->executed = true;
		c->row = -1;
		c->nrows = status == PGRES_TUPLES_OK ? sym_PQntuples(res) : 0;
		const char *n = sym_PQcmdTuples(res);
		c->changes = n && *n ? strtoll(n, NULL, 10) : 0;
		return 0;
	}
	sym_PQclear(c->failed);
	c->failed = res;
	c->failed_sent = sent;
	c->failed_ok = ok;
	return 1;
}

static void pg_classify(struct server_store *base, struct server_stmt *sc, struct server_failure *ret)
{
	struct pg_store *s = PG(base);
	struct pg_stmt *c = (struct pg_stmt *)sc;
	PGresult *res = c->failed;
	c->failed = NULL;
	const char *state = c->failed_ok ? NULL : sym_PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (sym_PQstatus(s->conn) != CONNECTION_OK || s->stuck) {
		/* Lost before ReadyForQuery (or given up on: stuck). In the extended protocol a
		 * statement outside a transaction commits at Sync, after its
		 * CommandComplete: even a success result does not prove the
		 * commit. But a session ended by pg_terminate_backend() (57P01)
		 * before CommandComplete never got to commit: it did not apply. */
		bool not_applied = !c->failed_sent || (state && strcmp(state, "57P01") == 0);
		ret->kind = not_applied ? SERVER_NOT_SENT : SERVER_LOST;
		if (c->failed_ok)
			snprintf(ret->msg, sizeof(ret->msg), "the connection closed before the server confirmed the commit");
		else
			result_message(s, res, ret->msg, sizeof(ret->msg));
	} else {
		/* 26000: our prepared statement vanished (DISCARD ALL by a
		 * pooler): nothing ran. Inside a transaction that error has
		 * aborted it all the same. */
		bool vanished = state && strcmp(state, "26000") == 0 && !s->sv.base.in_tx && c->name[0];
		ret->kind = vanished ? SERVER_REPREPARE : SERVER_FAILED;
		ret->err = fail_result(s, res, "step", c->sv.sql);
	}
	sym_PQclear(res);
}

static int pg_step(struct store_stmt *st)
{
	struct pg_stmt *c = PGST(st);
	if (!c->executed) {
		int r = server_execute(&PG(st->store)->sv, &c->sv);
		if (r < 0)
			return r;
	}
	if (c->row < c->nrows)
		c->row++;
	return c->row < c->nrows ? 1 : 0;
}

static bool col_ok(struct pg_stmt *c, int col)
{
	return c->res && c->row >= 0 && c->row < c->nrows && col >= 0 && col < sym_PQnfields(c->res) &&
	       !sym_PQgetisnull(c->res, c->row, col);
}

static int64_t pg_col_int64(struct store_stmt *st, int col)
{
	struct pg_stmt *c = PGST(st);
	if (!col_ok(c, col))
		return 0;
	const char *v = sym_PQgetvalue(c->res, c->row, col);
	if (sym_PQftype(c->res, col) == BOOLOID)
		return v[0] == 't';
	return (int64_t)strtoll(v, NULL, 10);
}

static const char *pg_col_text(struct store_stmt *st, int col)
{
	struct pg_stmt *c = PGST(st);
	return col_ok(c, col) ? sym_PQgetvalue(c->res, c->row, col) : NULL;
}

static bool pg_col_is_null(struct store_stmt *st, int col) { return !col_ok(PGST(st), col); }

static int64_t pg_changes(struct store_stmt *st) { return PGST(st)->changes; }

static void pg_finalize(struct store_stmt *st)
{
	struct pg_stmt *c = PGST(st);
	if (c->sv.cached) {
		clear_result(c);
		clear_values(c);
	}
	server_finalize(&c->sv);
}

/* ---- transactions ------------------------------------------------------------ */

static void pg_command(struct server_store *base, const char *sql, struct server_failure *ret)
{
	struct pg_store *s = PG(base);
	PGresult *res = exec_waiting(s, sql);
	*ret = (struct server_failure){ .kind = SERVER_OK };
	if (sym_PQresultStatus(res) != PGRES_COMMAND_OK) {
		ret->kind = sym_PQstatus(s->conn) != CONNECTION_OK || s->stuck ? SERVER_LOST : SERVER_FAILED;
		ret->err = fail_result(s, res, sql, NULL);
	} else if (strcmp(sql, "COMMIT") == 0 && strcmp(sym_PQcmdStatus(res), "ROLLBACK") == 0) {
		ret->kind = SERVER_FAILED;
		ret->err = store_set_error(&s->sv.base, -ECANCELED,
					   "postgres: COMMIT: the server rolled the transaction back");
	}
	sym_PQclear(res);
}

static void pg_close(struct store *base)
{
	struct pg_store *s = PG(base);
	server_store_close(&s->sv);
	sym_PQfinish(s->conn);
	free(s->dsn);
	free(s);
}

/* ---- change notices ---------------------------------------------------------- */

static int pg_listen(struct store *base, const char *channel, bool on)
{
	struct pg_store *s = PG(base);
	if (on && strlen(channel) >= sizeof(s->listen_channel))
		return -EINVAL;
	char sql[64];
	snprintf(sql, sizeof(sql), "%s %s", on ? "LISTEN" : "UNLISTEN", channel);
	int64_t r = store_run(base, sql, NULL);
	take_notices(s);
	s->notified = false;
	if (!on) {
		s->listen_channel[0] = 0;
		return r < 0 ? (int)r : 0;
	}
	if (r < 0)
		return (int)r;
	snprintf(s->listen_channel, sizeof(s->listen_channel), "%s", channel);
	s->listen_gen = s->sv.gen;
	return 0;
}

static int pg_wait_notice(struct store *base, int timeout_ms)
{
	struct pg_store *s = PG(base);
	if (!s->listen_channel[0])
		return -EINVAL;
	if (s->listen_gen != s->sv.gen) {
		/* Reconnected since the LISTEN: subscribe again, and say a
		 * change may have come unseen. */
		char channel[sizeof(s->listen_channel)];
		snprintf(channel, sizeof(channel), "%s", s->listen_channel);
		int r = pg_listen(base, channel, true);
		return r < 0 ? r : 1;
	}
	int64_t deadline = now_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		if (sym_PQstatus(s->conn) != CONNECTION_OK || s->stuck || !sym_PQconsumeInput(s->conn))
			return 1; /* lost: the caller's next statement finds out */
		take_notices(s);
		if (s->notified) {
			s->notified = false;
			return 1;
		}
		int64_t left = deadline - now_mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = sym_PQsocket(s->conn), .events = POLLIN };
		if (p.fd < 0)
			return 1;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
	}
}

static const struct server_ops postgres_server_ops = {
	.name = "postgres",
	.begin_sql = "BEGIN",
	.error_aborts_tx = true,
	.connect = pg_connect,
	.disconnect = pg_disconnect,
	.close_conn = pg_close_conn,
	.conn_dead = pg_conn_dead,
	.stmt_new = pg_stmt_new,
	.stmt_free = pg_stmt_free,
	.prepare = pg_stmt_prepare,
	.send = pg_send,
	.classify = pg_classify,
	.command = pg_command,
};

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
	.begin = server_begin,
	.commit = server_commit,
	.rollback = server_rollback,
	.now_ms_sql = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
	.listen = pg_listen,
	.wait_notice = pg_wait_notice,
	.release_connection = server_release_connection,
};

/* What boxd asks of a connection unless the DSN says otherwise, for a
 * primary/standby pair listed as several hosts ("host=a,b port=p,q" or
 * postgresql://a:p,b:q/db):
 *   - target_session_attrs=read-write: the lock store writes on every
 *     change. Without it libpq takes the first host that answers, which
 *     may be a standby: every write would fail (read-only transaction),
 *     and after a failover a reconnect could land on the old primary
 *     restarted as a standby. With it a standby is skipped, at connect
 *     and at every reconnect (PQreset goes through the list again).
 *   - connect_timeout=CONNECT_TIMEOUT_S, per host, with several hosts:
 *     a host that is down without refusing (a machine gone, a frozen
 *     server) would hold each reconnect for the kernel's SYN timeout, or
 *     for ever once the kernel accepted the connection, before libpq
 *     tries the next; a worker that holds locks must be through within
 *     its lease (8.5 s of 10 s). With one host, SINGLE_CONNECT_TIMEOUT_S:
 *     there is no other to try, but a frozen server must not hold the
 *     daemon's thread for ever (the caller retries).
 * Fills keys/values (at most 2) and returns how many. */
#define CONNECT_TIMEOUT_S "3"
#define SINGLE_CONNECT_TIMEOUT_S "10"

static size_t connect_defaults(const PQconninfoOption *parsed, const char **keys, const char **values)
{
	bool has_attrs = false, has_timeout = false, several_hosts = false;
	for (const PQconninfoOption *o = parsed; o->keyword; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "target_session_attrs") == 0)
			has_attrs = true;
		else if (strcmp(o->keyword, "connect_timeout") == 0)
			has_timeout = true;
		else if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) && strchr(o->val, ','))
			several_hosts = true;
	}
	size_t n = 0;
	if (!has_attrs && !getenv("PGTARGETSESSIONATTRS")) {
		keys[n] = "target_session_attrs";
		values[n++] = "read-write";
	}
	if (!has_timeout && !getenv("PGCONNECT_TIMEOUT")) {
		keys[n] = "connect_timeout";
		values[n++] = several_hosts ? CONNECT_TIMEOUT_S : SINGLE_CONNECT_TIMEOUT_S;
	}
	return n;
}

int store_postgres_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen)
{
	if (!opts->dsn || !*opts->dsn) {
		snprintf(errbuf, errlen, "postgres: no DSN given (a libpq connection string or postgresql:// URI)");
		return -EINVAL;
	}
	char *perr = NULL;
	PQconninfoOption *parsed = sym_PQconninfoParse(opts->dsn, &perr);
	if (!parsed) {
		snprintf(errbuf, errlen, "postgres: malformed DSN: %s", perr ? perr : "out of memory");
		size_t n = strlen(errbuf);
		while (n > 0 && errbuf[n - 1] == '\n')
			errbuf[--n] = 0;
		int r = perr ? -EINVAL : -ENOMEM;
		sym_PQfreemem(perr);
		return r;
	}
	struct pg_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->dsn = strdup(opts->dsn))) {
		sym_PQconninfoFree(parsed);
		free(s);
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	size_t n = connect_defaults(parsed, s->keys, s->values);
	sym_PQconninfoFree(parsed);
	s->keys[n] = "dbname"; /* the DSN last: what it says wins */
	s->values[n] = s->dsn;
	s->keys[n + 1] = s->values[n + 1] = NULL;
	s->sv.base.ops = &postgres_ops;
	server_store_init(&s->sv, &postgres_server_ops, opts);
	s->conn = sym_PQconnectdbParams(s->keys, s->values, 1);
	int r;
	if (!s->conn || sym_PQstatus(s->conn) != CONNECTION_OK)
		r = connect_error(s->conn, errbuf, errlen);
	else
		r = setup_session(s, errbuf, errlen);
	if (r < 0) {
		sym_PQfinish(s->conn);
		free(s->dsn);
		free(s);
		return r;
	}
	*ret = &s->sv.base;
	return 0;
}
