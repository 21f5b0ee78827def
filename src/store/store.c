/* store.c — the backend-neutral half of the store: dispatch, argument
 * binding by format string, errors. */
#include "store-internal.h"

#include "../common/timeutil.h"
#include "mysql_lib.h"
#include "pq_lib.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int store_backend_from_string(const char *s, enum store_backend *ret)
{
	if (strcmp(s, "sqlite") == 0)
		*ret = STORE_BACKEND_SQLITE;
	else if (strcmp(s, "mysql") == 0 || strcmp(s, "mariadb") == 0)
		*ret = STORE_BACKEND_MYSQL;
	else if (strcmp(s, "postgres") == 0 || strcmp(s, "postgresql") == 0)
		*ret = STORE_BACKEND_POSTGRES;
	else
		return -EINVAL;
	return 0;
}

const char *store_backend_name(enum store_backend b)
{
	switch (b) {
	case STORE_BACKEND_SQLITE: return "sqlite";
	case STORE_BACKEND_MYSQL: return "mysql";
	case STORE_BACKEND_POSTGRES: return "postgres";
	}
	return "unknown";
}

int store_set_error(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int store_open(const struct store_options *opts, struct store **ret, char *errbuf, size_t errlen)
{
	struct store *s = NULL;
	int r;

	switch (opts->backend) {
	case STORE_BACKEND_SQLITE:
		r = store_sqlite_open(opts, &s, errbuf, errlen);
		break;
	case STORE_BACKEND_MYSQL:
		/* The client library is loaded here, by the first store of a
		 * process on this backend (store/mysql_lib.h). */
		if (mysql_lib_load() < 0) {
			snprintf(errbuf, errlen, "cannot load the MariaDB client library: %s", mysql_lib_error());
			return -ELIBACC;
		}
		r = store_mysql_open(opts, &s, errbuf, errlen);
		break;
	case STORE_BACKEND_POSTGRES:
		if (pq_lib_load() < 0) {
			snprintf(errbuf, errlen, "cannot load libpq: %s", pq_lib_error());
			return -ELIBACC;
		}
		r = store_postgres_open(opts, &s, errbuf, errlen);
		break;
	default:
		snprintf(errbuf, errlen, "unknown store backend %d", (int)opts->backend);
		return -EINVAL;
	}
	if (r < 0)
		return r;
	s->backend = opts->backend;
	if (store_db_key_of(opts, s->db_key) < 0)
		s->db_key[0] = '\0';
	s->busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
	if (!opts->no_migrate) {
		r = store_migrate(s);
		if (r < 0) {
			snprintf(errbuf, errlen, "schema migration failed: %s", s->errmsg);
			store_close(s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->in_tx)
		s->ops->rollback(s);
	s->ops->close(s);
}

enum store_backend store_get_backend(const struct store *s) { return s->backend; }
const char *store_errmsg(const struct store *s) { return s->errmsg; }

/* A call that met a lost connection (the server gone, a node not ready,
 * a failover) or that took this long is trouble: see store_trouble_age_ms().
 * Two renewal periods of the default lease: a renewal held up this long
 * starts to eat into its lease. */
#define STORE_STALL_MS 2000

static int watch(struct store *s, int64_t t0, int r)
{
	int64_t t1 = now_mono_ms();
	if (r == -ECONNRESET || r == -ENOTCONN || t1 - t0 >= STORE_STALL_MS)
		s->trouble_mono_ms = t1 > 0 ? t1 : 1;
	return r;
}

int64_t store_trouble_age_ms(const struct store *s)
{
	return s->trouble_mono_ms ? now_mono_ms() - s->trouble_mono_ms : INT64_MAX;
}

int store_prepare(struct store *s, const char *sql, struct store_stmt **ret)
{
	int64_t t0 = now_mono_ms();
	return watch(s, t0, s->ops->prepare(s, sql, ret));
}

int store_bind_int64(struct store_stmt *st, int idx, int64_t v) { return st->store->ops->bind_int64(st, idx, v); }
int store_bind_text(struct store_stmt *st, int idx, const char *v) { return st->store->ops->bind_text(st, idx, v); }
int store_bind_null(struct store_stmt *st, int idx) { return st->store->ops->bind_null(st, idx); }
int store_step(struct store_stmt *st)
{
	int64_t t0 = now_mono_ms();
	return watch(st->store, t0, st->store->ops->step(st));
}
int64_t store_col_int64(struct store_stmt *st, int col) { return st->store->ops->col_int64(st, col); }
const char *store_col_text(struct store_stmt *st, int col) { return st->store->ops->col_text(st, col); }
bool store_col_is_null(struct store_stmt *st, int col) { return st->store->ops->col_is_null(st, col); }
int64_t store_changes(struct store_stmt *st) { return st->store->ops->changes(st); }

void store_finalize(struct store_stmt *st)
{
	if (st)
		st->store->ops->finalize(st);
}

char *store_col_strdup(struct store_stmt *st, int col)
{
	const char *v = store_col_text(st, col);
	return v ? strdup(v) : NULL;
}

static int bind_va(struct store_stmt *st, const char *fmt, va_list ap)
{
	int idx = 1, r = 0;
	for (const char *f = fmt ? fmt : ""; *f && r >= 0; f++, idx++) {
		switch (*f) {
		case 'i':
			r = store_bind_int64(st, idx, va_arg(ap, int64_t));
			break;
		case 's':
			r = store_bind_text(st, idx, va_arg(ap, const char *));
			break;
		case 'n':
			r = store_bind_null(st, idx);
			break;
		default:
			r = store_set_error(st->store, -EINVAL, "bad bind format letter '%c'", *f);
		}
	}
	return r;
}

static int query_va(struct store *s, struct store_stmt **ret, const char *sql, const char *fmt, va_list ap)
{
	struct store_stmt *st;
	int r = store_prepare(s, sql, &st);
	if (r < 0)
		return r;
	r = bind_va(st, fmt, ap);
	if (r < 0) {
		store_finalize(st);
		return r;
	}
	*ret = st;
	return 0;
}

int store_query(struct store *s, struct store_stmt **ret, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = query_va(s, ret, sql, fmt, ap);
	va_end(ap);
	return r;
}

int64_t store_run(struct store *s, const char *sql, const char *fmt, ...)
{
	struct store_stmt *st;
	va_list ap;
	va_start(ap, fmt);
	int r = query_va(s, &st, sql, fmt, ap);
	va_end(ap);
	if (r < 0)
		return r;
	while ((r = store_step(st)) == 1)
		;
	int64_t n = r < 0 ? r : store_changes(st);
	store_finalize(st);
	return n;
}

int64_t store_run_relaxed(struct store *s, const char *sql, const char *fmt, ...)
{
	bool relax = !s->in_tx && s->ops->set_relaxed;
	if (relax)
		s->ops->set_relaxed(s, true);
	struct store_stmt *st;
	va_list ap;
	va_start(ap, fmt);
	int r = query_va(s, &st, sql, fmt, ap);
	va_end(ap);
	int64_t n = r;
	if (r >= 0) {
		while ((r = store_step(st)) == 1)
			;
		n = r < 0 ? r : store_changes(st);
		store_finalize(st);
	}
	if (relax)
		s->ops->set_relaxed(s, false);
	return n;
}

int store_query_int64(struct store *s, int64_t *ret, const char *sql, const char *fmt, ...)
{
	struct store_stmt *st;
	va_list ap;
	va_start(ap, fmt);
	int r = query_va(s, &st, sql, fmt, ap);
	va_end(ap);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		int64_t v = store_col_int64(st, 0);
		/* Step to the end, and check that step too: an INSERT ...
		 * RETURNING in autocommit mode commits on its final step (SQLite
		 * writes the WAL there), which fails on a full disk. Its row
		 * then does not exist, and its id must not be handed out. */
		while ((r = store_step(st)) == 1)
			;
		if (r == 0)
			*ret = v;
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	return r;
}

int store_begin(struct store *s, bool write)
{
	if (s->in_tx)
		return store_set_error(s, -EINPROGRESS, "a transaction is already open on this connection");
	int64_t t0 = now_mono_ms();
	int r = watch(s, t0, s->ops->begin(s, write));
	if (r >= 0)
		s->in_tx = true;
	return r;
}

int store_commit(struct store *s)
{
	if (!s->in_tx)
		return store_set_error(s, -EINVAL, "commit without a transaction");
	/* Every backend ends the transaction whatever happens: on failure it
	 * has rolled back (or the server did, with the lost connection), so
	 * there is nothing left for store_rollback() to do. */
	int64_t t0 = now_mono_ms();
	int r = watch(s, t0, s->ops->commit(s));
	s->in_tx = false;
	return r;
}

void store_rollback(struct store *s)
{
	if (!s->in_tx)
		return;
	s->ops->rollback(s);
	s->in_tx = false;
}

int store_now_ms(struct store *s, int64_t *ret_ms)
{
	if (!s->ops->now_ms_sql)
		return s->ops->now_ms(s, ret_ms);
	char sql[192];
	snprintf(sql, sizeof(sql), "SELECT %s", s->ops->now_ms_sql);
	return store_query_int64(s, ret_ms, sql, NULL);
}

int store_listen(struct store *s, const char *channel, bool on)
{
	if (!s->ops->listen)
		return -EOPNOTSUPP;
	if (!*channel || strspn(channel, "abcdefghijklmnopqrstuvwxyz_") != strlen(channel))
		return -EINVAL;
	return s->ops->listen(s, channel, on);
}

int store_wait_notice(struct store *s, int timeout_ms)
{
	return s->ops->wait_notice ? s->ops->wait_notice(s, timeout_ms) : -EOPNOTSUPP;
}

void store_release_connection(struct store *s)
{
	if (s && s->ops->release_connection && !s->in_tx && !s->session_pinned)
		s->ops->release_connection(s);
}

const char *store_now_ms_sql(const struct store *s) { return s->ops->now_ms_sql; }

static const char *skip_noise(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '(')
			p++;
		if (p[0] == '-' && p[1] == '-') {
			p = strchr(p, '\n');
			if (!p)
				return "";
		} else if (p[0] == '/' && p[1] == '*') {
			p = strstr(p + 2, "*/");
			if (!p)
				return "";
			p += 2;
		} else {
			return p;
		}
	}
}

bool store_sql_is_read_only(const char *sql)
{
	static const char *const readers[] = { "SELECT", "SHOW", "VALUES" };
	const char *p = skip_noise(sql);
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		size_t n = strlen(readers[i]);
		if (strncasecmp(p, readers[i], n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_')
			return true;
	}
	return false;
}

int store_schema_version(struct store *s, int64_t *ret)
{
	return store_query_int64(s, ret, "SELECT version FROM schema_version", NULL);
}
