/* store_server.c — the policy of the server backends; see store_server.h. */
#include "store_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"

#define SV(b) ((struct server_store *)(b))

void server_store_init(struct server_store *s, const struct server_ops *sops, const struct store_options *opts)
{
	s->sops = sops;
	s->base.busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
	s->gen = 1;
}

void server_store_close(struct server_store *s)
{
	for (int i = 0; i < SERVER_STMT_CACHE_SIZE; i++) {
		if (s->cache[i])
			s->sops->stmt_free(s->cache[i]);
		s->cache[i] = NULL;
	}
}

/* ---- connection ------------------------------------------------------------ */

static bool must_not_reconnect(struct server_store *s) { return s->base.in_tx || s->base.session_pinned; }

static int lost_again(struct server_store *s)
{
	return store_set_error(&s->base, -ECONNRESET, "%s: the connection to the server was lost again",
			       s->sops->name);
}

/* The connection is gone while the caller depends on its session: the
 * transaction is gone with it (latched), or the pinned session is. */
static int lost_in_session(struct server_store *s, const char *how)
{
	s->sops->disconnect(s);
	if (s->base.in_tx) {
		if (!s->tx_err) {
			s->tx_err = -ECONNRESET;
			snprintf(s->tx_msg, sizeof(s->tx_msg),
				 "%s: the connection to the server was lost inside a transaction, which the server "
				 "rolled back; roll back and start again",
				 s->sops->name);
		}
		return store_set_error(&s->base, -ECONNRESET,
				       "%s: the connection to the server was lost %s, inside a transaction: nothing of "
				       "it was committed",
				       s->sops->name, how);
	}
	return store_set_error(&s->base, -ECONNRESET,
			       "%s: the connection to the server was lost %s while session state (a named lock) was "
			       "held; not reconnecting",
			       s->sops->name, how);
}

static int reconnect(struct server_store *s)
{
	char err[sizeof(s->base.errmsg)];
	/* A connection lost is trouble (store_trouble_age_ms()), also when
	 * the statement then runs on the new one and the caller sees none;
	 * one given up on purpose is not. */
	if (!s->released)
		s->base.trouble_mono_ms = now_mono_ms();
	s->sops->disconnect(s);
	int r = s->sops->connect(s, err, sizeof(err));
	if (r < 0)
		return store_set_error(&s->base, -ENOTCONN, "%s (%s)", err,
				       s->released ? "connecting again after waiting without a connection failed"
						   : "the connection was lost; reconnecting failed");
	s->released = false;
	s->gen++;
	return 0;
}

void server_release_connection(struct store *base)
{
	struct server_store *s = SV(base);
	if (s->released || s->sops->conn_dead(s))
		return; /* nothing to give up: the next statement connects */
	if (s->sops->close_conn(s))
		s->released = true;
}

/* A live connection before sending; *reconnected is set when this
 * reconnected (once per statement). */
static int ensure_conn(struct server_store *s, bool *reconnected)
{
	if (s->base.in_tx && s->tx_err)
		return store_set_error(&s->base, s->tx_err, "%s", s->tx_msg);
	if (s->released)
		return reconnect(s); /* not a loss: it does not use up *reconnected */
	if (!s->sops->conn_dead(s))
		return 0;
	if (must_not_reconnect(s))
		return lost_in_session(s, "while idle");
	if (*reconnected)
		return lost_again(s);
	*reconnected = true;
	return reconnect(s);
}

/* A statement failed inside a transaction with `r`: latch what the server
 * did to the transaction. */
static int tx_error(struct server_store *s, int r)
{
	if (!s->base.in_tx || s->tx_err)
		return r;
	if (s->sops->error_aborts_tx) {
		s->tx_err = r == -ECONNRESET ? r : -ECANCELED;
		snprintf(s->tx_msg, sizeof(s->tx_msg),
			 "%s: statement not run: the transaction was aborted by an earlier error (%.240s); roll it back",
			 s->sops->name, s->base.errmsg);
	} else if (r == -EBUSY) {
		/* InnoDB rolled back the statement (lock wait timeout) or the
		 * whole transaction (deadlock): end it now, so that the caller's
		 * next statements cannot run in autocommit mode. */
		char msg[sizeof(s->base.errmsg)];
		snprintf(msg, sizeof(msg), "%s", s->base.errmsg);
		struct server_failure f;
		if (!s->sops->conn_dead(s))
			s->sops->command(s, "ROLLBACK", &f);
		snprintf(s->base.errmsg, sizeof(s->base.errmsg), "%s", msg);
		s->tx_err = r;
		snprintf(s->tx_msg, sizeof(s->tx_msg),
			 "%s: the transaction was rolled back after a lock wait timeout or deadlock; roll back and retry",
			 s->sops->name);
	}
	return r;
}

/* ---- statements ------------------------------------------------------------ */

/* Prepare c on the current connection, again after a reconnect. Preparing
 * changes no data: a loss found here is reconnected (outside a
 * transaction). */
static int stmt_ready(struct server_store *s, struct server_stmt *c, bool *reconnected)
{
	for (;;) {
		int r = ensure_conn(s, reconnected);
		if (r < 0)
			return r;
		if (c->gen == s->gen)
			return 0;
		bool lost = false;
		r = s->sops->prepare(s, c, &lost);
		if (r == 0) {
			c->gen = s->gen;
			return 0;
		}
		if (!lost)
			return tx_error(s, r);
		s->sops->disconnect(s);
		if (must_not_reconnect(s))
			return lost_in_session(s, "while preparing a statement");
		if (*reconnected)
			return lost_again(s);
		/* ensure_conn() reconnects */
	}
}

int server_prepare(struct store *base, const char *sql, struct store_stmt **ret)
{
	struct server_store *s = SV(base);
	struct server_stmt *c = NULL;
	int free_slot = -1;
	for (int i = 0; i < SERVER_STMT_CACHE_SIZE; i++) {
		struct server_stmt *e = s->cache[i];
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
		c = s->sops->stmt_new(s, sql, free_slot >= 0);
		if (!c)
			return store_set_error(base, -ENOMEM, "%s: out of memory", s->sops->name);
		c->base.store = base;
		c->read_only = store_sql_is_read_only(sql);
	}
	bool reconnected = false;
	int r = stmt_ready(s, c, &reconnected);
	if (r < 0) {
		if (fresh)
			s->sops->stmt_free(c);
		return r;
	}
	if (fresh && free_slot >= 0) {
		c->cached = true;
		s->cache[free_slot] = c;
	}
	c->in_use = true;
	*ret = &c->base;
	return 0;
}

void server_finalize(struct server_stmt *c)
{
	struct server_store *s = SV(c->base.store);
	if (!c->cached) {
		s->sops->stmt_free(c);
		return;
	}
	c->in_use = false;
}

int server_execute(struct server_store *s, struct server_stmt *c)
{
	bool reconnected = false;
	int64_t start = now_mono_ms();
	for (int attempt = 0;; attempt++) {
		int r = stmt_ready(s, c, &reconnected);
		if (r < 0)
			return r;
		r = s->sops->send(s, c);
		if (r <= 0)
			return r;
		struct server_failure f = { .kind = SERVER_FAILED, .err = -EIO };
		s->sops->classify(s, c, &f);
		switch (f.kind) {
		case SERVER_OK:
			return 0;
		case SERVER_NOT_SENT:
		case SERVER_LOST:
			s->sops->disconnect(s);
			if (must_not_reconnect(s))
				return lost_in_session(s, "while running a statement");
			if (!reconnected && (f.kind == SERVER_NOT_SENT || c->read_only))
				continue; /* stmt_ready() reconnects */
			return store_set_error(&s->base, -ECONNRESET,
					       "%s: the connection to the server was lost while running a statement, "
					       "which may or may not have been applied: %s in: %.*s",
					       s->sops->name, f.msg, SERVER_SQL_IN_MSG, c->sql);
		case SERVER_REPREPARE:
			if (attempt < 2) {
				c->gen = 0; /* nothing ran: prepare it again */
				continue;
			}
			/* fall through */
		case SERVER_FAILED:
			r = f.err;
			if (s->base.in_tx)
				return tx_error(s, r);
			if (r == -EBUSY && now_mono_ms() - start < s->base.busy_timeout_ms) {
				sleep_us(1000LL << (attempt < 5 ? attempt : 5));
				continue;
			}
			return r;
		}
	}
}

/* ---- transactions ------------------------------------------------------------ */

int server_begin(struct store *base, bool write)
{
	struct server_store *s = SV(base);
	(void)write; /* row locks are taken as statements run */
	s->tx_err = 0;
	bool reconnected = false;
	for (;;) {
		int r = ensure_conn(s, &reconnected);
		if (r < 0)
			return r;
		struct server_failure f;
		s->sops->command(s, s->sops->begin_sql, &f);
		if (f.kind == SERVER_OK)
			return 0;
		if (f.kind == SERVER_NOT_SENT || f.kind == SERVER_LOST) {
			s->sops->disconnect(s);
			if (!reconnected)
				continue; /* nothing to lose yet: reconnect and start again */
		}
		return f.err;
	}
}

int server_commit(struct store *base)
{
	struct server_store *s = SV(base);
	struct server_failure f;
	int r;
	if (s->tx_err) {
		r = s->tx_err;
		char msg[sizeof(s->tx_msg)];
		snprintf(msg, sizeof(msg), "%s", s->tx_msg);
		if (!s->sops->conn_dead(s))
			s->sops->command(s, "ROLLBACK", &f);
		store_set_error(base, r, "%s (nothing was committed)", msg);
	} else if (s->sops->conn_dead(s)) {
		s->sops->disconnect(s);
		r = store_set_error(base, -ECONNRESET,
				    "%s: the connection to the server was lost inside a transaction, which the server "
				    "rolled back: nothing was committed",
				    s->sops->name);
	} else {
		s->sops->command(s, "COMMIT", &f);
		switch (f.kind) {
		case SERVER_OK:
			r = 0;
			break;
		case SERVER_NOT_SENT:
			s->sops->disconnect(s);
			r = store_set_error(base, -ECONNRESET,
					    "%s: the connection to the server was lost before COMMIT was sent: nothing "
					    "was committed",
					    s->sops->name);
			break;
		case SERVER_LOST:
			s->sops->disconnect(s);
			r = store_set_error(base, -ECONNRESET,
					    "%s: the connection to the server was lost during COMMIT: the transaction "
					    "may or may not have been committed",
					    s->sops->name);
			break;
		default: {
			r = f.err;
			char msg[sizeof(base->errmsg)];
			snprintf(msg, sizeof(msg), "%s", base->errmsg);
			s->sops->command(s, "ROLLBACK", &f);
			store_set_error(base, r, "%s (the transaction was rolled back)", msg);
			break;
		}
		}
	}
	s->tx_err = 0;
	return r;
}

void server_rollback(struct store *base)
{
	struct server_store *s = SV(base);
	if (!s->sops->conn_dead(s)) {
		struct server_failure f;
		s->sops->command(s, "ROLLBACK", &f);
		if (f.kind == SERVER_NOT_SENT || f.kind == SERVER_LOST)
			s->sops->disconnect(s); /* the server rolls back a lost session by itself */
	}
	s->tx_err = 0;
}
