/* store_mysql.c — the MariaDB/MySQL backend (libmariadb, binary protocol).
 *
 * Every statement is a server-side prepared statement (mysql_stmt_*), cached
 * per connection by its SQL text like the SQLite backend does. Results are
 * buffered client-side at the first step (mysql_stmt_store_result), so a
 * caller may run other statements while it iterates over rows, as it can on
 * SQLite. Result columns are all bound as strings: integers are parsed from
 * the text, and a value longer than its buffer grows the buffer and is
 * fetched again with mysql_stmt_fetch_column().
 *
 * Session: utf8mb4; CLIENT_FOUND_ROWS, so that an UPDATE that matches a row
 * without changing it counts 1 as on SQLite and PostgreSQL (the lock CAS
 * reads 0 as "lost the race"); an sql_mode that makes string literals and
 * quoting standard (NO_BACKSLASH_ESCAPES, ANSI_QUOTES, PIPES_AS_CONCAT) and
 * bad data an error (STRICT_ALL_TABLES); time_zone +00:00; and row lock
 * waits bounded by the busy timeout (innodb_lock_wait_timeout, in whole
 * seconds, rounded up).
 *
 * Busy: a lock wait timeout or a deadlock is -EBUSY. Outside a transaction
 * the statement is retried until the busy timeout has passed (InnoDB rolled
 * back only that statement). Inside one we roll the transaction back at once
 * and fail every later statement until the caller rolls back: after a
 * deadlock InnoDB has already rolled back the whole transaction, and letting
 * the caller go on would run its remaining statements in autocommit mode.
 *
 * Connection loss. MySQL's protocol is strictly request/response, so bytes
 * (or EOF) on the socket of an idle connection mean the server is gone or
 * going (KILL, wait_timeout, shutdown: it sends an error packet and closes).
 * Before each statement we poll the socket (no round trip). The rules:
 *   - never reconnect inside a transaction or a pinned session: the
 *     transaction is gone with the connection, so the statement fails with
 *     -ECONNRESET, and so does everything up to the rollback;
 *   - otherwise reconnect at most once per statement, when the connection
 *     was found dead before sending, when sending failed
 *     (CR_SERVER_GONE_ERROR: libmariadb sets it only when the write failed),
 *     or when the statement only reads;
 *   - a write lost after it was sent may or may not have been applied:
 *     -ECONNRESET says so, and the next statement reconnects.
 * After a reconnect the session is set up again, and every cached statement
 * is prepared again on the new connection the next time it is used (each
 * statement remembers the connection generation it was prepared on).
 *
 * Several servers (a Galera cluster): the DSN may list them (mysql_dsn.h).
 * A connection goes to the first that answers and is ready; a reconnect
 * after a loss starts at the node after the one just lost, so the hosts of
 * a killed node move on to another. A Galera node is ready when it is
 * Synced with a primary component (wsrep_ready, wsrep_local_state 4); a
 * node that is still joining or has lost its quorum answers every query
 * with "WSREP has not yet prepared node for application use" (error 1047):
 * such a failure counts as a lost connection whose statement never ran (it
 * was refused, not applied), so it is sent again on another node outside a
 * transaction, and ends the transaction inside one. On Galera the session
 * also waits for causality before reads (wsrep_sync_wait = 1): a read sees
 * every transaction the cluster committed before it, on whichever node,
 * as on a single server. A certification conflict (another node committed
 * a change of the same row first) fails the statement or the COMMIT with
 * ER_LOCK_DEADLOCK: -EBUSY, retried like a deadlock; the lock CAS then finds
 * the version moved and reads again (locks.c).
 *
 * The cache, the generations, the reconnect rules, the latched transaction
 * error and the retries are store_server.c's, shared with PostgreSQL; this
 * file gives them MySQL's answers through struct server_ops (how to
 * connect, prepare, send, and what a failure was).
 */
#include "store_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <errmsg.h>
#include <mysqld_error.h>

#include "../common/timeutil.h"
#include "mysql_dsn.h"
#include "mysql_lib.h"

#define COL_INITIAL_CAP 64
#define CONNECT_TIMEOUT_S 10
#define REPLY_MARGIN_S 20 /* the default reply timeout: the row lock wait + this */
#define ER_CLIENT_INTERACTION_TIMEOUT_MYSQL8 4031

enum param_kind { P_NULL = 0, P_INT, P_TEXT };

struct my_param {
	enum param_kind kind;
	int64_t i;
	char *text;
	unsigned long len;
};

struct my_col {
	char *buf;          /* holds cap bytes; the value plus a NUL */
	unsigned long cap;
	unsigned long len;
	my_bool is_null;
	my_bool error;
};

enum stmt_state { ST_IDLE, ST_ROWS, ST_DONE };

struct my_stmt {
	struct server_stmt sv;
	MYSQL_STMT *st;     /* NULL when not prepared */
	enum stmt_state state;
	int nparams;
	struct my_param *params;
	MYSQL_BIND *pbind;
	unsigned ncols;
	struct my_col *cols;
	MYSQL_BIND *rbind;
	int64_t changes;
	/* Executed, but its result failed (INSERT ... RETURNING that hit a
	 * unique index): the rest of that result is still on the wire. */
	bool result_failed;
};

struct my_store {
	struct server_store sv;
	MYSQL *db;          /* NULL after the connection was found lost */
	struct mysql_dsn_list dsns;
	size_t node;        /* the entry of dsns connected to (or last lost) */
	int lock_wait_s;
	unsigned reply_timeout_s; /* MYSQL_OPT_READ_TIMEOUT and _WRITE_TIMEOUT */
};

#define MY(s) ((struct my_store *)(s))
#define MYST(st) ((struct my_stmt *)(st))

/* ---- errors ---------------------------------------------------------------- */

static int map_errno(unsigned e)
{
	switch (e) {
	case ER_DUP_ENTRY:
	case ER_DUP_KEY:
	case ER_DUP_UNIQUE:
	case ER_DUP_ENTRY_WITH_KEY_NAME:
	case ER_BAD_NULL_ERROR:
	case ER_NO_DEFAULT_FOR_FIELD:
	case ER_ROW_IS_REFERENCED:
	case ER_NO_REFERENCED_ROW:
	case ER_ROW_IS_REFERENCED_2:
	case ER_NO_REFERENCED_ROW_2:
	case ER_CONSTRAINT_FAILED:
	case ER_TABLE_EXISTS_ERROR:
	case ER_DUP_KEYNAME:
		return -EEXIST; /* a constraint, as SQLITE_CONSTRAINT */
	case ER_LOCK_WAIT_TIMEOUT:
	case ER_LOCK_DEADLOCK:
		return -EBUSY;
	case ER_ACCESS_DENIED_ERROR:
	case ER_DBACCESS_DENIED_ERROR:
	case ER_TABLEACCESS_DENIED_ERROR:
	case ER_COLUMNACCESS_DENIED_ERROR:
	case ER_SPECIFIC_ACCESS_DENIED_ERROR:
	case ER_OPTION_PREVENTS_STATEMENT:
		return -EACCES;
	case ER_BAD_DB_ERROR:
		return -ENOENT;
	case ER_NO_SUCH_TABLE:
	case ER_BAD_FIELD_ERROR:
	case ER_PARSE_ERROR:
	case ER_NO_DB_ERROR:
	case ER_WRONG_VALUE_COUNT_ON_ROW:
	case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
	case ER_WRONG_ARGUMENTS:
		return -EINVAL;
	case ER_DATA_TOO_LONG:
		return -E2BIG;
	case ER_WARN_DATA_OUT_OF_RANGE:
		return -ERANGE;
	case ER_RECORD_FILE_FULL:
	case ER_DISK_FULL:
		return -ENOSPC;
	case ER_OUTOFMEMORY:
	case CR_OUT_OF_MEMORY:
		return -ENOMEM;
	case ER_STATEMENT_TIMEOUT:
	case ER_QUERY_INTERRUPTED:
		return -ECANCELED;
	case ER_CON_COUNT_ERROR:
	case ER_TOO_MANY_USER_CONNECTIONS:
		return -EAGAIN;
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_IPSOCK_ERROR:
	case CR_UNKNOWN_HOST:
		return -ECONNREFUSED;
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_SERVER_HANDSHAKE_ERR:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
	case ER_CLIENT_INTERACTION_TIMEOUT_MYSQL8:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

static bool is_conn_lost(unsigned e) { return map_errno(e) == -ECONNRESET; }

/* A Galera node that cannot take queries (joining, or cut off from the
 * primary component) refuses every statement with ER_UNKNOWN_COM_ERROR and
 * a message that says so: nothing ran. Another node may serve it. */
static bool is_wsrep_not_ready(unsigned e, const char *msg)
{
	return e == ER_UNKNOWN_COM_ERROR && msg && strstr(msg, "WSREP");
}

/* What became of a statement that failed with e after it was sent. */
static enum server_outcome failure_kind(unsigned e, const char *msg)
{
	if (is_wsrep_not_ready(e, msg))
		return SERVER_NOT_SENT;
	if (!is_conn_lost(e))
		return SERVER_FAILED;
	/* libmariadb reports CR_SERVER_GONE_ERROR only when the command could
	 * not be written: the server never saw it. */
	return e == CR_SERVER_GONE_ERROR ? SERVER_NOT_SENT : SERVER_LOST;
}

static int fail_code(struct my_store *s, unsigned e, const char *msg, const char *what, const char *sql)
{
	return store_set_error(&s->sv.base, map_errno(e), "mysql: %s: %s (error %u)%s%.*s", what, msg, e,
			       sql ? " in: " : "", SERVER_SQL_IN_MSG, sql ? sql : "");
}

static int fail_stmt(struct my_store *s, MYSQL_STMT *st, const char *what, const char *sql)
{
	return fail_code(s, sym_mysql_stmt_errno(st), sym_mysql_stmt_error(st), what, sql);
}

/* ---- connection ------------------------------------------------------------ */

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_status;

static void library_init(void) { library_status = sym_mysql_server_init(0, NULL, NULL); }

/* Whether a fresh connection may serve: not a Galera node (wsrep off, or
 * a server without it), or a Synced one, whose session then waits for
 * causality before reads. 0, or -EAGAIN with why in err. */
static int check_node(MYSQL *db, char *err, size_t errlen)
{
	static const char q[] =
		"SELECT @@wsrep_on, "
		"(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY'), "
		"(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE')";
	if (sym_mysql_real_query(db, q, strlen(q)) != 0) {
		unsigned e = sym_mysql_errno(db);
		if (e == ER_UNKNOWN_SYSTEM_VARIABLE)
			return 0; /* no wsrep at all (MySQL, a MariaDB built without it) */
		snprintf(err, errlen, "mysql: cannot read the node's state: %s (error %u)", sym_mysql_error(db), e);
		return is_wsrep_not_ready(e, sym_mysql_error(db)) ? -EAGAIN : map_errno(e);
	}
	MYSQL_RES *res = sym_mysql_store_result(db);
	MYSQL_ROW row = res ? sym_mysql_fetch_row(res) : NULL;
	bool wsrep = row && row[0] && strcmp(row[0], "1") == 0;
	bool ready = wsrep && row[1] && strcmp(row[1], "ON") == 0 && row[2] && strcmp(row[2], "4") == 0;
	if (wsrep && !ready)
		snprintf(err, errlen, "mysql: the Galera node is not ready (wsrep_ready %s, wsrep_local_state %s; 4 is Synced)",
			 row[1] ? row[1] : "?", row[2] ? row[2] : "?");
	if (res)
		sym_mysql_free_result(res);
	if (!wsrep)
		return 0;
	if (!ready)
		return -EAGAIN;
	static const char sync[] = "SET SESSION wsrep_sync_wait = 1";
	if (sym_mysql_real_query(db, sync, strlen(sync)) != 0) {
		unsigned e = sym_mysql_errno(db);
		snprintf(err, errlen, "mysql: session setup failed: %s (error %u)", sym_mysql_error(db), e);
		return is_wsrep_not_ready(e, sym_mysql_error(db)) ? -EAGAIN : map_errno(e);
	}
	return 0;
}

/* Open a connection to one server and set up the session; on failure
 * writes err. */
static int connect_one(struct my_store *s, const struct mysql_dsn *d, MYSQL **ret, char *err, size_t errlen)
{
	pthread_once(&library_once, library_init);
	if (library_status != 0) {
		snprintf(err, errlen, "mysql: cannot initialize the client library");
		return -EIO;
	}
	MYSQL *db = sym_mysql_init(NULL);
	if (!db) {
		snprintf(err, errlen, "mysql: out of memory");
		return -ENOMEM;
	}
	unsigned timeout = CONNECT_TIMEOUT_S;
	my_bool no = 0;
	sym_mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	sym_mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	sym_mysql_options(db, MYSQL_OPT_RECONNECT, &no); /* we reconnect ourselves, see above */
	/* A server that stops answering (frozen, or cut off without a reset)
	 * would otherwise hold the caller until TCP gives up, hours later:
	 * a worker's lease renewal among them (store_options). */
	sym_mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &s->reply_timeout_s);
	sym_mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &s->reply_timeout_s);
	if (!sym_mysql_real_connect(db, d->host, d->user, d->pass, d->db, d->port, d->socket, CLIENT_FOUND_ROWS)) {
		unsigned e = sym_mysql_errno(db);
		snprintf(err, errlen, "mysql: cannot connect: %s (error %u)", sym_mysql_error(db), e);
		sym_mysql_close(db);
		int r = map_errno(e);
		return r == -EIO || r == -ECONNRESET ? -ECONNREFUSED : r;
	}
	char setup[512];
	snprintf(setup, sizeof(setup),
		 "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,"
		 "NO_BACKSLASH_ESCAPES,ANSI_QUOTES,PIPES_AS_CONCAT', time_zone = '+00:00', "
		 "innodb_lock_wait_timeout = %d, lock_wait_timeout = %d",
		 s->lock_wait_s, s->lock_wait_s);
	int r = 0;
	if (sym_mysql_real_query(db, setup, strlen(setup)) != 0) {
		unsigned e = sym_mysql_errno(db);
		snprintf(err, errlen, "mysql: session setup failed: %s (error %u)", sym_mysql_error(db), e);
		r = is_wsrep_not_ready(e, sym_mysql_error(db)) ? -EAGAIN : map_errno(e);
	}
	if (r == 0)
		r = check_node(db, err, errlen);
	if (r < 0) {
		sym_mysql_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

/* Connect to the first server of the list that answers and is ready,
 * trying them in order from entry `first`. With several, err names every
 * one's failure; the error is the first entry's unless that one only was
 * not ready (-EAGAIN, transient) while another refused. */
static int connect_db(struct my_store *s, size_t first, MYSQL **ret, char *err, size_t errlen)
{
	size_t n = s->dsns.n;
	int r = -ECONNREFUSED;
	if (errlen)
		err[0] = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = (first + i) % n;
		char one[384];
		int rk = connect_one(s, &s->dsns.v[k], ret, one, sizeof(one));
		if (rk == 0) {
			s->node = k;
			return 0;
		}
		if (n == 1) {
			snprintf(err, errlen, "%s", one);
			return rk == -EAGAIN ? -ECONNREFUSED : rk;
		}
		if (i == 0 || r == -EAGAIN)
			r = rk;
		size_t used = strlen(err);
		if (used < errlen)
			snprintf(err + used, errlen - used, "%snode %zu of %zu: %s", i ? "; " : "", k + 1, n, one);
	}
	/* A node not yet ready or a refused connection is worth trying again
	 * (store_retry); a bad password is not. */
	return r == -EAGAIN ? -ECONNREFUSED : r;
}

/* Forget a lost connection. The statements prepared on it were invalidated by
 * mysql_close() (they stay allocated until mysql_stmt_close()). */
static void my_disconnect(struct server_store *base)
{
	struct my_store *s = MY(base);
	if (s->db) {
		sym_mysql_close(s->db);
		s->db = NULL;
	}
}

static bool my_close_conn(struct server_store *base)
{
	my_disconnect(base);
	return true;
}

/* After a loss: the next node first, the one just lost last. */
static int my_connect(struct server_store *base, char *err, size_t errlen)
{
	struct my_store *s = MY(base);
	/* (A connection given up on purpose: the same node first.) */
	return connect_db(s, s->sv.released ? s->node : s->node + 1, &s->db, err, errlen);
}

/* True when the server has closed (or is closing) this idle connection. */
static bool my_conn_dead(struct server_store *base)
{
	struct my_store *s = MY(base);
	if (!s->db)
		return true;
	int fd = (int)sym_mysql_get_socket(s->db);
	if (fd < 0)
		return true;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
		return true;
	if (sym_mysql_get_ssl_cipher(s->db)) {
		/* TLS may have records of its own in flight: only EOF counts. */
		char c;
		return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
	}
	/* Bytes nobody asked for: the server's last words before it closes. */
	return true;
}

/* ---- statements ------------------------------------------------------------ */

static void clear_params(struct my_stmt *c)
{
	for (int i = 0; i < c->nparams; i++) {
		free(c->params[i].text);
		c->params[i] = (struct my_param){ 0 };
	}
}

static void free_cols(struct my_stmt *c)
{
	for (unsigned i = 0; i < c->ncols; i++)
		free(c->cols[i].buf);
	free(c->cols);
	free(c->rbind);
	c->cols = NULL;
	c->rbind = NULL;
	c->ncols = 0;
}

static void my_stmt_free(struct server_stmt *sc)
{
	struct my_stmt *c = (struct my_stmt *)sc;
	if (!c)
		return;
	if (c->st)
		sym_mysql_stmt_close(c->st);
	clear_params(c);
	free(c->params);
	free(c->pbind);
	free_cols(c);
	free(c->sv.sql);
	free(c);
}

static struct server_stmt *my_stmt_new(struct server_store *s, const char *sql, bool cached)
{
	(void)s;
	(void)cached;
	struct my_stmt *c = calloc(1, sizeof(*c));
	if (!c || !(c->sv.sql = strdup(sql))) {
		free(c);
		return NULL;
	}
	return &c->sv;
}

/* Prepare c->sv.sql on the current connection (again, after a reconnect). */
static int my_stmt_prepare(struct server_store *base, struct server_stmt *sc, bool *ret_lost)
{
	struct my_store *s = MY(base);
	struct my_stmt *c = (struct my_stmt *)sc;
	if (c->st) {
		sym_mysql_stmt_close(c->st); /* invalidated with the old connection */
		c->st = NULL;
	}
	MYSQL_STMT *st = sym_mysql_stmt_init(s->db);
	if (!st)
		return store_set_error(&base->base, -ENOMEM, "mysql: out of memory");
	if (sym_mysql_stmt_prepare(st, c->sv.sql, strlen(c->sv.sql)) != 0) {
		unsigned e = sym_mysql_stmt_errno(st);
		*ret_lost = is_conn_lost(e);
		int r = fail_stmt(s, st, "prepare", c->sv.sql);
		sym_mysql_stmt_close(st);
		return r;
	}
	int n = (int)sym_mysql_stmt_param_count(st);
	if (c->params && n != c->nparams) {
		sym_mysql_stmt_close(st);
		return store_set_error(&base->base, -EIO, "mysql: statement changed its parameters on re-prepare");
	}
	if (!c->params && n > 0) {
		c->params = calloc((size_t)n, sizeof(*c->params));
		c->pbind = calloc((size_t)n, sizeof(*c->pbind));
		if (!c->params || !c->pbind) {
			sym_mysql_stmt_close(st);
			return store_set_error(&base->base, -ENOMEM, "mysql: out of memory");
		}
	}
	c->nparams = n;
	c->st = st;
	return 0;
}

static int my_prepare(struct store *base, const char *sql, struct store_stmt **ret)
{
	int r = server_prepare(base, sql, ret);
	if (r < 0)
		return r;
	struct my_stmt *c = MYST(*ret);
	c->state = ST_IDLE;
	c->changes = 0;
	return 0;
}

static struct my_param *param_at(struct store_stmt *st, int idx)
{
	struct my_stmt *c = MYST(st);
	if (idx < 1 || idx > c->nparams) {
		store_set_error(st->store, -EINVAL, "mysql: bind index %d out of range (statement has %d parameters)",
				idx, c->nparams);
		return NULL;
	}
	struct my_param *p = &c->params[idx - 1];
	free(p->text);
	*p = (struct my_param){ 0 };
	return p;
}

static int my_bind_int64(struct store_stmt *st, int idx, int64_t v)
{
	struct my_param *p = param_at(st, idx);
	if (!p)
		return -EINVAL;
	p->kind = P_INT;
	p->i = v;
	return 0;
}

static int my_bind_text(struct store_stmt *st, int idx, const char *v)
{
	struct my_param *p = param_at(st, idx);
	if (!p)
		return -EINVAL;
	if (!v)
		return 0;
	p->text = strdup(v);
	if (!p->text)
		return store_set_error(st->store, -ENOMEM, "mysql: out of memory");
	p->kind = P_TEXT;
	p->len = (unsigned long)strlen(v);
	return 0;
}

static int my_bind_null(struct store_stmt *st, int idx) { return param_at(st, idx) ? 0 : -EINVAL; }

static int bind_params(struct my_store *s, struct my_stmt *c)
{
	if (c->nparams == 0)
		return 0;
	for (int i = 0; i < c->nparams; i++) {
		struct my_param *p = &c->params[i];
		MYSQL_BIND *b = &c->pbind[i];
		*b = (MYSQL_BIND){ 0 };
		switch (p->kind) {
		case P_NULL:
			b->buffer_type = MYSQL_TYPE_NULL;
			break;
		case P_INT:
			b->buffer_type = MYSQL_TYPE_LONGLONG;
			b->buffer = &p->i;
			break;
		case P_TEXT:
			b->buffer_type = MYSQL_TYPE_STRING;
			b->buffer = p->text;
			b->buffer_length = p->len;
			b->length = &p->len;
			break;
		}
	}
	if (sym_mysql_stmt_bind_param(c->st, c->pbind) != 0)
		return fail_stmt(s, c->st, "bind", c->sv.sql);
	return 0;
}

static int bind_results(struct my_store *s, struct my_stmt *c)
{
	unsigned n = sym_mysql_stmt_field_count(c->st);
	if (n != c->ncols) {
		free_cols(c);
		c->cols = calloc(n, sizeof(*c->cols));
		c->rbind = calloc(n, sizeof(*c->rbind));
		if (!c->cols || !c->rbind) {
			free_cols(c);
			return store_set_error(&s->sv.base, -ENOMEM, "mysql: out of memory");
		}
		c->ncols = n;
		for (unsigned i = 0; i < n; i++) {
			c->cols[i].cap = COL_INITIAL_CAP;
			c->cols[i].buf = malloc(COL_INITIAL_CAP);
			if (!c->cols[i].buf) {
				free_cols(c);
				return store_set_error(&s->sv.base, -ENOMEM, "mysql: out of memory");
			}
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct my_col *col = &c->cols[i];
		c->rbind[i] = (MYSQL_BIND){
			.buffer_type = MYSQL_TYPE_STRING,
			.buffer = col->buf,
			.buffer_length = col->cap - 1, /* room for our NUL */
			.length = &col->len,
			.is_null = &col->is_null,
			.error = &col->error,
		};
	}
	if (n > 0 && sym_mysql_stmt_bind_result(c->st, c->rbind) != 0)
		return fail_stmt(s, c->st, "bind result", c->sv.sql);
	return 0;
}

/* Send: execute with the bound parameters; the result (if any) is buffered
 * and bound. */
static int my_send(struct server_store *base, struct server_stmt *sc)
{
	struct my_store *s = MY(base);
	struct my_stmt *c = (struct my_stmt *)sc;
	int r = bind_params(s, c);
	if (r < 0)
		return r;
	bool ok = sym_mysql_stmt_execute(c->st) == 0;
	bool has_rows = ok && sym_mysql_stmt_field_count(c->st) > 0;
	if (ok && has_rows) {
		ok = sym_mysql_stmt_store_result(c->st) == 0;
		c->result_failed = !ok;
	}
	if (ok)
		return has_rows ? bind_results(s, c) : 0;
	return 1;
}

static void my_classify(struct server_store *base, struct server_stmt *sc, struct server_failure *ret)
{
	struct my_store *s = MY(base);
	struct my_stmt *c = (struct my_stmt *)sc;
	unsigned e = sym_mysql_stmt_errno(c->st);
	enum server_outcome kind = failure_kind(e, sym_mysql_stmt_error(c->st));
	if (kind == SERVER_NOT_SENT || kind == SERVER_LOST) {
		ret->kind = kind;
		snprintf(ret->msg, sizeof(ret->msg), "%s (error %u)", sym_mysql_stmt_error(c->st), e);
		return;
	}
	ret->kind = e == ER_NEED_REPREPARE ? SERVER_REPREPARE : SERVER_FAILED;
	ret->err = fail_stmt(s, c->st, "step", c->sv.sql);
	if (c->result_failed) {
		/* Read the rest of the failed result off the connection, or the
		 * next command on it waits for an answer that is not coming
		 * (t0801: the POST after a 409 hung until its reply timeout). */
		sym_mysql_stmt_free_result(c->st);
		sym_mysql_stmt_reset(c->st);
		c->result_failed = false;
	}
}

static int fetch_row(struct my_store *s, struct my_stmt *c)
{
	int rc = sym_mysql_stmt_fetch(c->st);
	if (rc == MYSQL_NO_DATA) {
		c->state = ST_DONE;
		return 0;
	}
	if (rc == 1) {
		c->state = ST_DONE;
		return fail_stmt(s, c->st, "fetch", c->sv.sql);
	}
	if (rc == MYSQL_DATA_TRUNCATED) {
		bool rebind = false;
		for (unsigned i = 0; i < c->ncols; i++) {
			struct my_col *col = &c->cols[i];
			if (col->is_null || col->len < col->cap)
				continue;
			unsigned long cap = col->len + 1;
			if (cap < col->cap * 2)
				cap = col->cap * 2;
			char *buf = malloc(cap);
			if (!buf)
				return store_set_error(&s->sv.base, -ENOMEM, "mysql: out of memory");
			free(col->buf);
			col->buf = buf;
			col->cap = cap;
			c->rbind[i].buffer = buf;
			c->rbind[i].buffer_length = cap - 1;
			rebind = true;
			if (sym_mysql_stmt_fetch_column(c->st, &c->rbind[i], i, 0) != 0)
				return fail_stmt(s, c->st, "fetch column", c->sv.sql);
		}
		/* Keep the bigger buffers for the rows still to come. */
		if (rebind && sym_mysql_stmt_bind_result(c->st, c->rbind) != 0)
			return fail_stmt(s, c->st, "bind result", c->sv.sql);
	}
	for (unsigned i = 0; i < c->ncols; i++) {
		struct my_col *col = &c->cols[i];
		if (!col->is_null)
			col->buf[col->len < col->cap ? col->len : col->cap - 1] = 0;
	}
	return 1;
}

static int my_step(struct store_stmt *st)
{
	struct my_stmt *c = MYST(st);
	struct my_store *s = MY(st->store);
	switch (c->state) {
	case ST_ROWS:
		return fetch_row(s, c);
	case ST_DONE:
		return 0;
	case ST_IDLE:
		break;
	}
	int r = server_execute(&s->sv, &c->sv);
	if (r < 0)
		return r;
	if (sym_mysql_stmt_field_count(c->st) == 0) {
		my_ulonglong n = sym_mysql_stmt_affected_rows(c->st);
		c->changes = n == (my_ulonglong)-1 ? 0 : (int64_t)n;
		c->state = ST_DONE;
		return 0;
	}
	/* With a result (INSERT ... RETURNING): the rows it produced. */
	c->changes = (int64_t)sym_mysql_stmt_num_rows(c->st);
	c->state = ST_ROWS;
	return fetch_row(s, c);
}

static bool col_ok(struct my_stmt *c, int col)
{
	return c->state == ST_ROWS && col >= 0 && (unsigned)col < c->ncols && !c->cols[col].is_null;
}

static int64_t my_col_int64(struct store_stmt *st, int col)
{
	struct my_stmt *c = MYST(st);
	if (!col_ok(c, col))
		return 0;
	long long v = strtoll(c->cols[col].buf, NULL, 10);
	return (int64_t)v;
}

static const char *my_col_text(struct store_stmt *st, int col)
{
	struct my_stmt *c = MYST(st);
	return col_ok(c, col) ? c->cols[col].buf : NULL;
}

static bool my_col_is_null(struct store_stmt *st, int col) { return !col_ok(MYST(st), col); }

static int64_t my_changes(struct store_stmt *st) { return MYST(st)->changes; }

static void my_finalize(struct store_stmt *st)
{
	struct my_stmt *c = MYST(st);
	struct my_store *s = MY(st->store);
	if (c->sv.cached) {
		/* Client-side only (no round trip): the result was fully buffered. */
		if (c->st && c->sv.gen == s->sv.gen && s->db)
			sym_mysql_stmt_free_result(c->st);
		clear_params(c);
		c->state = ST_IDLE;
	}
	server_finalize(&c->sv);
}

/* ---- transactions ------------------------------------------------------------ */

/* A statement without parameters or rows, over the text protocol. */
static void my_command(struct server_store *base, const char *sql, struct server_failure *ret)
{
	struct my_store *s = MY(base);
	*ret = (struct server_failure){ .kind = SERVER_OK };
	if (sym_mysql_real_query(s->db, sql, strlen(sql)) == 0)
		return;
	unsigned e = sym_mysql_errno(s->db);
	ret->kind = failure_kind(e, sym_mysql_error(s->db));
	ret->err = fail_code(s, e, sym_mysql_error(s->db), sql, NULL);
	if (ret->kind == SERVER_NOT_SENT && !is_conn_lost(e))
		ret->err = store_set_error(&s->sv.base, -ECONNRESET, "mysql: %s: %s (error %u)", sql,
					   sym_mysql_error(s->db), e);
}

static void my_close(struct store *base)
{
	struct my_store *s = MY(base);
	server_store_close(&s->sv);
	my_disconnect(&s->sv);
	mysql_dsn_list_release(&s->dsns);
	free(s);
}

static const struct server_ops mysql_server_ops = {
	.name = "mysql",
	.begin_sql = "START TRANSACTION",
	.error_aborts_tx = false,
	.connect = my_connect,
	.disconnect = my_disconnect,
	.close_conn = my_close_conn,
	.conn_dead = my_conn_dead,
	.stmt_new = my_stmt_new,
	.stmt_free = my_stmt_free,
	.prepare = my_stmt_prepare,
	.send = my_send,
	.classify = my_classify,
	.command = my_command,
};

static const struct store_ops mysql_ops = {
	.close = my_close,
	.prepare = my_prepare,
	.bind_int64 = my_bind_int64,
	.bind_text = my_bind_text,
	.bind_null = my_bind_null,
	.step = my_step,
	.col_int64 = my_col_int64,
	.col_text = my_col_text,
	.col_is_null = my_col_is_null,
	.changes = my_changes,
	.finalize = my_finalize,
	.begin = server_begin,
	.commit = server_commit,
	.rollback = server_rollback,
	.now_ms_sql = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
	.release_connection = server_release_connection,
};

int store_mysql_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen)
{
	struct my_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	s->sv.base.ops = &mysql_ops;
	server_store_init(&s->sv, &mysql_server_ops, opts);
	s->lock_wait_s = (s->sv.base.busy_timeout_ms + 999) / 1000;
	s->reply_timeout_s = opts->reply_timeout_ms > 0 ? (unsigned)((opts->reply_timeout_ms + 999) / 1000)
							: (unsigned)s->lock_wait_s + REPLY_MARGIN_S;
	int r = mysql_dsn_list_parse(opts->dsn, &s->dsns, errbuf, errlen);
	if (r >= 0)
		r = connect_db(s, 0, &s->db, errbuf, errlen);
	if (r < 0) {
		mysql_dsn_list_release(&s->dsns);
		free(s);
		return r;
	}
	*ret = &s->sv.base;
	return 0;
}
