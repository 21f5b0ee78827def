/* locks.c — the compare-and-swap loop over the store; see locks.h. */
#include "locks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../common/proc.h"
#include "../common/array.h"
#include "../common/timeutil.h"
#include "lock_doc_text.h"
#include "lock_wait_report.h"
#include "lock_wake.h"
#include "locks_batch.h"

#define LOCK_ROW_ID 1
/* A waiter refreshes its ticket every third of this: a write per waiter
 * every 10 s. A dead waiter of this host is reaped by pid long before it
 * expires; the expiry is the net for one that cannot be probed. */
#define DEFAULT_TICKET_TTL_MS 30000
#define REAP_INTERVAL_MS 1000
#define POLL_MIN_US 100
#define POLL_MAX_US 2000
/* The waiter that only holders stand in front of polls faster: it is the
 * one a release hands the lock to. */
#define POLL_NEXT_MAX_US 200

/* With wake-ups (SQLite's futex word, PostgreSQL's LISTEN) a waiter sleeps
 * until a change wakes it; this bounds the sleep, a net for writers that
 * cannot wake it (a process of another user that cannot open the futex
 * file). Every wake-up costs: 50 waiters woken every 100 ms took 4% of a
 * core on this 2-CPU VM (make bench, "CPU of 50 tasks waiting"). */
#define WAKE_POLL_MAX_US 10000000
/* A reap reads /proc for every owner in the document: with N waiters each
 * reaping once a second that is N² reads a second (50 waiters: 2,500 /proc
 * reads, a quarter of a core). A waiter woken by the futex word (lock_wake.h)
 * reaps once a second only when it is next in line (only holders in front
 * of it: it is the one a dead holder blocks, and its reap removes dead
 * waiters too) or when the document has owners of other hosts (their
 * leases expire only by the database's clock: a reap is how they go). The
 * others reap this many times less often (30 s, the ticket's life: a dead
 * head of the queue is gone by then anyway). The daemon releases a dead
 * worker's locks at once (supervisor); these reaps are the net for a host
 * whose daemon is gone. (Before the server stores had the word, their
 * waiters reaped every second, and on PostgreSQL that periodic attempt
 * sped t0100 up, 95 ops/s against 50, not understood; with the word, t0100
 * on each store: docs/ARCHITECTURE.md, "Lock wake-ups".) */
#define QUEUED_REAP_FACTOR 30
/* PostgreSQL waiters poll for this long before they LISTEN: a notice comes
 * later than a 2 ms poll sees the change (the server signals the idle
 * listener after the commit), and LISTEN + UNLISTEN are two round trips.
 * Measured with lockbench, 8 processes on one name: LISTEN from the start
 * 47-60 pairs/s, hand-off p50 12-16 ms; polling 77-100 pairs/s, 6-7 ms;
 * LISTEN after 100 ms 98-116 pairs/s. 500 ms keeps the lock torture's
 * hand-offs (longest wait ~1.4 s) on polling. Short hand-offs poll; long
 * waits (a task behind a backup) sleep. */
#define LISTEN_AFTER_MS 500
/* MariaDB has no notices: a waiter whose document has owners of other
 * hosts polls for their changes, as above for its first LISTEN_AFTER_MS,
 * then at most this far apart (50 reads a second; its own host's changes
 * still wake it at once). */
#define REMOTE_POLL_MAX_US 20000

static struct locks_stats stats;

/* Set by a mutation whose change cannot let any waiter through (a refused
 * request that only took or refreshed its ticket): its commit wakes
 * nobody. Reset before every attempt. */
static _Thread_local bool quiet_change;

/* After this handle met store trouble (store_trouble_age_ms(): a lost
 * connection, a node not ready, a stall), the owners of other hosts met it
 * too and could not renew their leases through it; a lease that ran out
 * meanwhile says nothing about its owner being gone. So for one default
 * lease after the trouble, no other host's owner is freed for an expired
 * lease: they renew once the store is back, and the dead among them are
 * freed after. Seen on a Galera cluster: a node rejoining paused every
 * commit, then the cluster was not ready for 3 s; the first daemon back
 * freed six live waiters of three hosts whose leases had run out 1-102 ms
 * before. Freeing later never breaks exclusion; it only delays the locks
 * of a host that really died at that time. Set by cas_x() for the
 * mutation it runs. */
#define LOCKS_TROUBLE_GRACE_MS 10000
static _Thread_local bool leases_trusted;

void locks_stats_get(struct locks_stats *ret) { *ret = stats; }

int lock_owner_self(struct lock_owner *ret, int64_t task_id)
{
	struct lock_owner o = { .task_id = task_id, .pid = (int32_t)getpid() };
	int r = host_owner_id_get(o.host, sizeof(o.host));
	if (r < 0)
		return r;
	r = proc_start_time(getpid(), &o.start_time);
	if (r < 0)
		return r;
	*ret = o;
	return 0;
}

/* A mutation of the document. Called once per CAS attempt on a freshly read
 * document, so it must not keep state between calls except through its
 * context's per-attempt fields. Returns >= 0 (passed back) or negative errno
 * (the transaction is abandoned). */
typedef int (*mutate_fn)(struct lock_doc *doc, int64_t now_ms, void *ctx);

/* Read the row, and with ret_now the database clock too: on the server
 * backends in the same statement, which saves a round trip per change
 * (SQLite's clock is this host's, read without a query). */
static int read_row_now(struct store *s, int64_t *ret_version, char **ret_text, int64_t *ret_now)
{
	const char *now_sql = ret_now ? store_now_ms_sql(s) : NULL;
	bool now_in_query = now_sql != NULL;
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT version, data%s%s FROM locks WHERE id = ?", now_in_query ? ", " : "",
		 now_in_query ? now_sql : "");
	struct store_stmt *st;
	int r = store_query(s, &st, sql, "i", (int64_t)LOCK_ROW_ID);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		const char *text = store_col_text(st, 1);
		*ret_version = store_col_int64(st, 0);
		if (now_in_query)
			*ret_now = store_col_int64(st, 2);
		*ret_text = strdup(text ? text : "");
		r = *ret_text ? 0 : -ENOMEM;
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	if (r == -ENOENT)
		return store_set_error(s, r, "lock document row locks.id=1 is missing");
	if (r >= 0 && ret_now && !now_in_query) {
		r = store_now_ms(s, ret_now);
		if (r < 0) {
			free(*ret_text);
			*ret_text = NULL;
		}
	}
	return r;
}

static int read_row(struct store *s, int64_t *ret_version, char **ret_text)
{
	return read_row_now(s, ret_version, ret_text, NULL);
}

/* ---- the stored document: one row, or split over two ---------------------
 *
 * A document of SPLIT_MIN_ENTRIES entries or more is stored split (format
 * 3, lock_doc_text.h): its base in a row of its own (locks.id 2 or 3,
 * version = the base's nonce) and, in the lock row, what changed since.
 * A change writes those few lines; the base is written again (into the
 * other slot, in the same transaction as the lock row) once the changes
 * pass SPLIT_MAX_CHANGES or SPLIT_MAX_ROW_BYTES, so a change costs about
 * the same whatever the size of the document (issue 18's K sweep; the
 * numbers are in docs/ARCHITECTURE.md). Below JOIN_BELOW_ENTRIES the
 * document goes back to one row. The lock row stays the one compare-and-
 * swap: its version moves with every change, and a base is never changed
 * once written (a new one gets a new nonce), so a reader that found the
 * lock row can always tell whether the base it reads is the one named. */
#define SPLIT_MIN_ENTRIES 64
#define JOIN_BELOW_ENTRIES 32
#define SPLIT_MAX_CHANGES 48
/* The lock row stays within one SQLite page (4 KiB). */
#define SPLIT_MAX_ROW_BYTES 3072
#define BASE_READ_TRIES 8

struct stored {
	bool split;
	int slot;
	int64_t nonce;
	const struct lock_doc *base; /* per-thread cache: valid until the next base is kept */
};

/* The base named (slot, nonce): from this thread's cache, else read.
 * -ESTALE when the slot holds another base or none (it was replaced after
 * the lock row was read: read again), -EBADMSG with errbuf if it does not
 * parse. */
static int read_base(struct store *s, int slot, int64_t nonce, const struct lock_doc **ret, char *errbuf,
		     size_t errlen)
{
	const struct lock_doc *b = lock_doc_base_cached(slot, nonce);
	if (b) {
		*ret = b;
		return 0;
	}
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT version, data FROM locks WHERE id = ?", "i", (int64_t)slot);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1 && store_col_int64(st, 0) == nonce) {
		const char *text = store_col_text(st, 1);
		struct lock_doc doc;
		char err[200];
		r = lock_doc_parse(text ? text : "", &doc, err, sizeof(err));
		if (r == -EBADMSG)
			snprintf(errbuf, errlen, "its base in row locks.id=%d: %s", slot, err);
		if (r >= 0) {
			b = lock_doc_base_keep(slot, nonce, &doc);
			lock_doc_release(&doc);
			r = b ? 0 : -ENOMEM;
		}
	} else if (r >= 0) {
		r = -ESTALE;
	}
	store_finalize(st);
	if (r >= 0)
		*ret = b;
	return r;
}

/* The document of the lock row's text; *ret_stored says how it is stored.
 * -ESTALE: its base was replaced meanwhile (read the row again). */
static int compose(struct store *s, const char *text, bool take, struct lock_doc *doc, struct stored *ret_stored,
		   char *errbuf, size_t errlen)
{
	*ret_stored = (struct stored){ 0 };
	if (strncmp(text, LOCK_DOC_SPLIT_MAGIC, strlen(LOCK_DOC_SPLIT_MAGIC)) != 0)
		return lock_doc_parse(text, doc, errbuf, errlen);
	struct stored st = { .split = true };
	int r = lock_doc_split_ref(text, &st.slot, &st.nonce);
	if (r < 0) {
		snprintf(errbuf, errlen, "bad format 3 header");
		return r;
	}
	r = read_base(s, st.slot, st.nonce, &st.base, errbuf, errlen);
	if (r < 0)
		return r;
	/* A change that reads back the text it wrote takes the document it
	 * kept (lock_doc_split_keep() in cas_x()). */
	if (!take || lock_doc_split_take(text, doc) < 0)
		r = lock_doc_split_parse(text, st.base, doc, errbuf, errlen);
	if (r >= 0)
		*ret_stored = st;
	return r;
}

/* Read the lock row (and the database clock, with ret_now) and its
 * document, the base too when it is split. */
static int read_doc(struct store *s, bool in_tx, bool take, int64_t *ret_version, char **ret_text, int64_t *ret_now,
		    struct lock_doc *doc, struct stored *ret_stored)
{
	for (int tries = 0;; tries++) {
		int r = read_row_now(s, ret_version, ret_text, ret_now);
		if (r < 0)
			return r;
		char err[256];
		r = compose(s, *ret_text, take, doc, ret_stored, err, sizeof(err));
		if (r == -ESTALE && tries + 1 < BASE_READ_TRIES && !in_tx) {
			free(*ret_text);
			*ret_text = NULL;
			continue;
		}
		if (r == -ESTALE)
			snprintf(err, sizeof(err), "its base row is missing or is not the one it names");
		if (r == -ESTALE || r == -EBADMSG)
			r = store_set_error(s, -EBADMSG,
					    "lock document in row locks.id=1 does not parse: %s "
					    "(nothing was changed; run `boxd locks repair` to fix it)",
					    err);
		if (r < 0) {
			free(*ret_text);
			*ret_text = NULL;
		}
		return r;
	}
}

/* What a change writes. */
struct write_plan {
	char *text;      /* the lock row */
	char *base_text; /* a new base, into base_slot with base_nonce; or NULL */
	int base_slot;
	int64_t base_nonce;
	int drop_slot;   /* a base row no longer named, deleted (0: none) */
};

static void write_plan_release(struct write_plan *w)
{
	free(w->text);
	free(w->base_text);
	*w = (struct write_plan){ 0 };
}

static int64_t new_nonce(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint64_t)now_mono_ms() * 1000003u ^ (uint64_t)getpid() << 32;
	v &= (uint64_t)INT64_MAX;
	return v ? (int64_t)v : 1;
}

/* A new base: the whole document, and a lock row that changes nothing. */
static int plan_new_base(const struct lock_doc *doc, const struct stored *st, struct write_plan *w)
{
	w->base_slot = st->split && st->slot == 2 ? 3 : 2;
	w->base_nonce = new_nonce();
	w->drop_slot = st->split ? st->slot : 0;
	int r = lock_doc_format(doc, &w->base_text);
	if (r < 0)
		return r;
	const struct lock_doc *kept = lock_doc_base_keep(w->base_slot, w->base_nonce, doc);
	return lock_doc_split_format(doc, kept ? kept : doc, w->base_slot, w->base_nonce, &w->text, NULL);
}

static int plan_write(const struct lock_doc *doc, const struct stored *st, const char *old_text, struct write_plan *w)
{
	*w = (struct write_plan){ 0 };
	size_t n = doc->n_holders + doc->n_waiters;
	int r;
	if (st->split && n >= JOIN_BELOW_ENTRIES) {
		size_t changes = 0;
		r = lock_doc_split_format(doc, st->base, st->slot, st->nonce, &w->text, &changes);
		if (r < 0 || strcmp(w->text, old_text) == 0 ||
		    (changes <= SPLIT_MAX_CHANGES && strlen(w->text) <= SPLIT_MAX_ROW_BYTES))
			return r;
	} else {
		r = lock_doc_format(doc, &w->text);
		if (r < 0 || strcmp(w->text, old_text) == 0 || n < SPLIT_MIN_ENTRIES) {
			w->drop_slot = r >= 0 && st->split ? st->slot : 0;
			return r;
		}
	}
	free(w->text);
	w->text = NULL;
	return plan_new_base(doc, st, w);
}

/* The compare-and-swap of the lock row, then the base rows it names or no
 * longer names (in the caller's transaction when there are any). 1 written,
 * 0 lost the race, negative errno. */
static int64_t write_plan_run(struct store *s, const struct write_plan *w, int64_t version)
{
	int64_t n = store_run(s, "UPDATE locks SET data = ?, version = version + 1 WHERE id = ? AND version = ?", "sii",
			      w->text, (int64_t)LOCK_ROW_ID, version);
	if (n == 1 && w->base_text) {
		/* DELETE and INSERT, not UPDATE: PostgreSQL's trigger NOTIFYs
		 * updates of the lock table, and this commit NOTIFYs once. */
		int64_t m = store_run(s, "DELETE FROM locks WHERE id = ?", "i", (int64_t)w->base_slot);
		if (m >= 0)
			m = store_run(s, "INSERT INTO locks (id, version, data) VALUES (?, ?, ?)", "iis",
				      (int64_t)w->base_slot, w->base_nonce, w->base_text);
		if (m < 0)
			n = m;
	}
	if (n == 1 && w->drop_slot) {
		int64_t m = store_run(s, "DELETE FROM locks WHERE id = ?", "i", (int64_t)w->drop_slot);
		if (m < 0)
			n = m;
	}
	return n;
}

static bool in_tx_backend(struct store *s) { return store_get_backend(s) == STORE_BACKEND_SQLITE; }

/* The CAS's UPDATE was sent and the connection was lost before the answer
 * (-ECONNRESET: a server node killed, a session killed): it may or may not
 * have been applied, and must count exactly once. Read the row again (a
 * read reconnects; on Galera to another node, whose read waits until it
 * has applied every change the cluster committed). Still at `version`: not
 * applied. At version + 1 with our text: applied. Anything else: the
 * document moved on since, and whether our change is in it cannot be told
 * from the version; the mutation then runs again on the new document,
 * which is safe because each one is idempotent for its owner (a lock it
 * already holds is granted again without a change, a released one stays
 * released, a renewal or reap repeats harmlessly); at worst a request that
 * had queued keeps a second ticket of its own until that expires or the
 * owner is reaped. Returns 1 applied, 0 to read and try again, or a
 * negative errno when the row cannot be read (the caller's retry then
 * runs the mutation again, the same way). */
static int64_t resolve_lost_update(struct store *s, int64_t version, const char *new_text)
{
	int64_t now_version = 0;
	char *text = NULL;
	int r = read_row(s, &now_version, &text);
	if (r < 0)
		return r;
	bool applied = now_version == version + 1 && strcmp(text, new_text) == 0;
	free(text);
	return applied ? 1 : 0;
}

void locks_row_cache_clear(struct locks_row_cache *c)
{
	free(c->text);
	*c = (struct locks_row_cache){ 0 };
}

/* The row as the cache has it, if it is recent enough: 1 (version, text,
 * the clock and the document set), 0 to read the row. */
static int read_doc_cached(struct store *s, struct locks_row_cache *c, int64_t *ret_version, char **ret_text,
			   int64_t *ret_now, struct lock_doc *doc, struct stored *ret_stored)
{
	int64_t mono = now_mono_ms();
	if (!c || !c->valid || mono - c->read_mono_ms >= LOCKS_ROW_CACHE_MAX_MS)
		return 0;
	char *text = strdup(c->text);
	if (!text)
		return 0;
	char err[256];
	/* A base that is no longer this thread's (-ESTALE) or a text that
	 * does not parse: the row is read, and that says what is wrong. */
	if (compose(s, text, true, doc, ret_stored, err, sizeof(err)) < 0) {
		lock_doc_release(doc);
		lock_doc_init(doc);
		free(text);
		c->valid = false;
		return 0;
	}
	*ret_version = c->version;
	*ret_text = text;
	if (ret_now)
		*ret_now = mono + c->clock_offset_ms;
	stats.row_cache_hits++;
	return 1;
}

/* After a change read the row (with the clock): what the cache starts from. */
static void row_cache_read(struct locks_row_cache *c, int64_t now)
{
	c->read_mono_ms = now_mono_ms();
	c->clock_offset_ms = now - c->read_mono_ms;
}

/* After a change committed: the row is now `text` (taken) at `version`. */
static void row_cache_wrote(struct locks_row_cache *c, int64_t version, char **text)
{
	free(c->text);
	c->text = *text;
	*text = NULL;
	c->version = version;
	c->valid = true;
}

/* One read-modify-write with retry. *ret_version gets the version after the
 * change (or the unchanged version when nothing changed); *ret_result what
 * `fn` returned. With `cache` (locks_row_cache in locks.h) the
 * change starts from the row its writer last wrote. */
static int cas_x(struct store *s, mutate_fn fn, void *ctx, int64_t *ret_version, int *ret_result, bool need_now,
		 struct locks_row_cache *cache)
{
	for (;;) {
		int64_t version = 0, now = 0;
		char *old_text = NULL;
		struct write_plan w = { 0 };
		struct lock_doc doc;
		struct stored st;
		lock_doc_init(&doc);
		int result = 0;
		struct locks_row_cache *c = cache;

		quiet_change = false;
		int r = read_doc_cached(s, c, &version, &old_text, need_now ? &now : NULL, &doc, &st);
		bool from_cache = r == 1;
		/* SQLite reads and writes in one write transaction, unless the
		 * change starts from the cache: then, as on the server stores,
		 * the compare-and-swap alone (autocommitted) is the change. */
		bool tx = in_tx_backend(s) && !from_cache;
		if (tx && (r = store_begin(s, true)) < 0)
			return r;
		if (r == 0) {
			r = read_doc(s, tx, true, &version, &old_text, need_now ? &now : NULL, &doc, &st);
			if (r >= 0 && c && need_now)
				row_cache_read(c, now);
		}
		leases_trusted = store_trouble_age_ms(s) >= LOCKS_TROUBLE_GRACE_MS;
		if (r >= 0)
			r = result = fn(&doc, now, ctx);
		if (r >= 0)
			r = plan_write(&doc, &st, old_text, &w);
		if (r >= 0 && strncmp(w.text, LOCK_DOC_SPLIT_MAGIC, strlen(LOCK_DOC_SPLIT_MAGIC)) == 0)
			lock_doc_split_keep(w.text, &doc); /* the next change of this thread takes it */
		lock_doc_release(&doc);

		bool changed = r >= 0 && strcmp(old_text, w.text) != 0;
		if (from_cache && r >= 0 && !changed) {
			/* No swap will say whether the cached row is still the
			 * row, and the result may rest on it (a release of a
			 * lock the cache does not know was taken): read it. */
			free(old_text);
			write_plan_release(&w);
			c->valid = false;
			continue;
		}
		/* Without a transaction (the server stores; SQLite from the
		 * cache) the lock row changes alone; a change of the base rows
		 * needs one. */
		bool wrote_base = changed && (w.base_text || w.drop_slot);
		bool own_tx = wrote_base && !tx;
		if (own_tx) {
			r = store_begin(s, true);
			tx = r >= 0;
		}
		int64_t n = 1;
		if (changed && r >= 0)
			n = write_plan_run(s, &w, version);
		if (n == -ECONNRESET && !tx)
			n = resolve_lost_update(s, version, w.text);
		if (c && r >= 0 && n == 1 && !wrote_base) /* a new base: the next change reads */
			row_cache_wrote(c, changed ? version + 1 : version, changed ? &w.text : &old_text);
		else if (c)
			c->valid = false;
		free(old_text);
		write_plan_release(&w);
		if (r >= 0 && n < 0)
			r = (int)n;
		if (r >= 0 && n == 0 && own_tx) {
			store_rollback(s);
			tx = false;
		}
		if (r < 0) {
			if (tx)
				store_rollback(s);
			return r;
		}
		if (tx) {
			r = store_commit(s);
			if (r < 0) {
				if (c) /* it holds what was not committed */
					c->valid = false;
				return r;
			}
		}
		if (n == 0) {
			stats.cas_conflicts++;
			continue; /* lost the race: re-read */
		}
		if (changed)
			stats.cas_commits++;
		else
			stats.cas_noops++;
		struct lock_wake *wake = changed && !quiet_change ? lock_wake_get(s) : NULL;
		if (wake)
			lock_wake_bump(wake);
		*ret_version = changed ? version + 1 : version;
		if (ret_result)
			*ret_result = result;
		return 0;
	}
}

static int cas(struct store *s, mutate_fn fn, void *ctx, int64_t *ret_version, int *ret_result)
{
	return cas_x(s, fn, ctx, ret_version, ret_result, true, NULL);
}

/* For mutations that ignore now_ms (unlock, cancel): on the server
 * backends the database clock is a round trip of its own. */
static int cas_nonow(struct store *s, mutate_fn fn, void *ctx, int64_t *ret_version, int *ret_result)
{
	return cas_x(s, fn, ctx, ret_version, ret_result, false, NULL);
}

static int read_version(struct store *s, int64_t *ret)
{
	return store_query_int64(s, ret, "SELECT version FROM locks WHERE id = ?", "i", (int64_t)LOCK_ROW_ID);
}

/* ---- reaping ------------------------------------------------------------- */

/* Owners of other hosts whose expired leases one CAS attempt reaped. */
struct expired_list {
	struct lock_owner *v;
	size_t n, cap;
	int64_t now_ms;
};

static void expired_add(struct expired_list *l, const struct lock_owner *o)
{
	for (size_t i = 0; i < l->n; i++)
		if (lock_owner_same(&l->v[i], o))
			return;
	if (ARRAY_GROW(l->v, l->n + 1, l->cap) < 0)
		return; /* only the report is lost, not the reap */
	l->v[l->n++] = *o;
}

/* After the change committed: tell the caller. */
static void expired_notify(struct expired_list *l, locks_expired_fn fn, void *userdata)
{
	for (size_t i = 0; fn && i < l->n; i++)
		fn(&l->v[i], l->now_ms, userdata);
	free(l->v);
	*l = (struct expired_list){ 0 };
}

struct reap_ctx {
	const char *my_host;
	int64_t now_ms;
	struct expired_list *expired; /* optional */
	bool other_hosts_only;
};

static bool owner_is_dead(const struct lock_owner *o, void *userdata)
{
	const struct reap_ctx *ctx = userdata;
	if (strcmp(o->host, ctx->my_host) == 0)
		return !ctx->other_hosts_only && proc_check(o->pid, o->start_time) != PROC_ALIVE;
	/* This host before a reboot: gone, lease or not (SQLite has none). */
	if (host_owner_earlier_boot(o->host, ctx->my_host))
		return true;
	/* Another host's process cannot be checked from here: only its lease,
	 * in the database's clock, says it is gone (unless the store was in
	 * trouble just now: leases_trusted). */
	bool expired = leases_trusted && lock_owner_lease_expired(o, ctx->now_ms);
	if (expired && ctx->expired)
		expired_add(ctx->expired, o);
	return expired;
}

static int reap_in(struct lock_doc *doc, const char *my_host, int64_t now_ms, struct expired_list *expired,
		   bool other_hosts_only)
{
	if (expired) {
		expired->n = 0; /* a new attempt on a fresh document */
		expired->now_ms = now_ms;
	}
	struct reap_ctx ctx = { my_host, now_ms, expired, other_hosts_only };
	return lock_doc_reap(doc, owner_is_dead, &ctx);
}

struct reap_op {
	const char *my_host;
	bool other_hosts_only;
	struct expired_list expired;
};

static int mutate_reap(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	struct reap_op *op = vctx;
	return reap_in(doc, op->my_host, now_ms, &op->expired, op->other_hosts_only);
}

static int reap(struct store *s, struct reap_op *op, locks_expired_fn on_expired, void *userdata, int *ret_reaped)
{
	int64_t version;
	int reaped = 0;
	int r = cas(s, mutate_reap, op, &version, &reaped);
	if (r < 0)
		op->expired.n = 0;
	expired_notify(&op->expired, on_expired, userdata);
	if (r >= 0 && ret_reaped)
		*ret_reaped = reaped;
	return r;
}

int locks_reap(struct store *s, const char *my_host, int *ret_reaped)
{
	struct reap_op op = { .my_host = my_host };
	return reap(s, &op, NULL, NULL, ret_reaped);
}

int locks_reap_expired(struct store *s, const char *my_host, locks_expired_fn on_expired, void *userdata,
		       int *ret_reaped)
{
	struct reap_op op = { .my_host = my_host, .other_hosts_only = true };
	return reap(s, &op, on_expired, userdata, ret_reaped);
}

/* ---- acquire ------------------------------------------------------------- */

struct acquire_op {
	const struct lock_owner *owner;
	const struct lock_req *reqs;
	size_t n;
	bool queue;             /* take/keep a ticket when refused */
	bool reap;              /* reap dead owners first */
	int64_t ticket_ttl_ms;
	int64_t lease_ms;
	int64_t ticket;         /* committed ticket (0 = none) */
	int64_t attempt_ticket; /* ticket as computed by the latest attempt */
	struct lock_blocker blocker;
	struct expired_list expired;
	bool reap_if_refused;   /* first attempt: when refused, reap and look again */
	bool reaped;            /* this attempt reaped */
	bool next_in_line;      /* refused, but no earlier ticket conflicts */
	bool other_hosts;       /* refused, and the document has owners of other hosts */
	unsigned flags;         /* LOCK_ACQ_* of this attempt */
};

/* Does an owner of another host hold or wait? Only this host's processes
 * bump the wake-up word (lock_wake.h): another host's change must be
 * polled for (MariaDB) or listened for (PostgreSQL). */
static bool has_other_hosts(const struct lock_doc *doc, const char *my_host)
{
	for (size_t i = 0; i < doc->n_holders; i++)
		if (strcmp(doc->holders[i].owner.host, my_host) != 0)
			return true;
	for (size_t i = 0; i < doc->n_waiters; i++)
		if (strcmp(doc->waiters[i].owner.host, my_host) != 0)
			return true;
	return false;
}

static int mutate_acquire(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	struct acquire_op *op = vctx;
	int pruned = lock_doc_prune_tickets(doc, now_ms);
	op->expired.n = 0;
	size_t holders = doc->n_holders, waiters = doc->n_waiters;
	if (op->reap)
		reap_in(doc, op->owner->host, now_ms, &op->expired, false);
	/* Holders and tickets carry the lease, in the database's clock. */
	struct lock_owner owner = lock_owner_leased(op->owner, now_ms, op->lease_ms);
	op->attempt_ticket = op->ticket;
	op->reaped = op->reap;
	int r = lock_doc_acquire_ex(doc, &owner, op->reqs, op->n, op->queue ? &op->attempt_ticket : NULL, now_ms,
				    op->ticket_ttl_ms, op->flags, &op->blocker);
	if (r == 0 && op->reap_if_refused && !op->reap) {
		/* Refused: reap dead owners and look again in the same change,
		 * so that a try gives up only after a reap and a request that
		 * only dead owners block is granted in one write
		 * (test_refused_request_reaps_in_the_same_change). */
		reap_in(doc, op->owner->host, now_ms, &op->expired, false);
		op->reaped = true;
		r = lock_doc_acquire_ex(doc, &owner, op->reqs, op->n, op->queue ? &op->attempt_ticket : NULL, now_ms,
					op->ticket_ttl_ms, op->flags, &op->blocker);
	}
	if (r == 0) {
		op->next_in_line = lock_doc_next_in_line(doc, op->owner, op->reqs, op->n, op->attempt_ticket);
		op->other_hosts = has_other_hosts(doc, op->owner->host);
	}
	/* Refused, nothing pruned or reaped: at most our ticket was taken or
	 * refreshed, which lets no waiter through. */
	bool kept_ticket = op->attempt_ticket == op->ticket || op->ticket == 0;
	quiet_change = r == 0 && pruned == 0 && doc->n_holders == holders && kept_ticket &&
		       doc->n_waiters >= waiters;
	return r;
}

struct cancel_op {
	int64_t ticket;
};

static int mutate_cancel(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	(void)now_ms;
	return lock_doc_cancel_ticket(doc, ((struct cancel_op *)vctx)->ticket);
}

static int give_up(struct store *s, struct acquire_op *op, int err)
{
	if (op->ticket) {
		struct cancel_op c = { op->ticket };
		int64_t v;
		cas_nonow(s, mutate_cancel, &c, &v, NULL); /* best effort: it also expires */
	}
	return err;
}

/* Would the request be granted now? Reads the document outside any
 * transaction and runs the pure acquire on a private copy. Returns 1 when a
 * real attempt is worth making (granted, or our ticket is gone), 0 when it
 * would still be refused (*ret_blocker says why), negative errno. *version
 * gets the version that was read. */
static int dry_run(struct store *s, struct acquire_op *op, int64_t *version, struct lock_blocker *ret_blocker)
{
	char *text = NULL;
	struct lock_doc doc;
	struct stored st;
	int64_t now;
	int r = read_doc(s, false, false, version, &text, &now, &doc, &st);
	free(text);
	if (r < 0)
		return r;
	if (r >= 0) {
		lock_doc_prune_tickets(&doc, now);
		int64_t ticket = op->ticket;
		r = lock_doc_acquire_ex(&doc, op->owner, op->reqs, op->n, &ticket, now, op->ticket_ttl_ms, op->flags,
					ret_blocker);
		/* Our ticket is gone (expired, reaped by another host, dropped
		 * by a repair): re-queue for real now, not at the next reap or
		 * refresh (test_waiter_requeues_when_its_ticket_vanished). */
		if (r == 0 && ticket != op->ticket)
			r = 1;
		if (r == 0) {
			op->next_in_line = lock_doc_next_in_line(&doc, op->owner, op->reqs, op->n, op->ticket);
			op->other_hosts = has_other_hosts(&doc, op->owner->host);
		}
	}
	lock_doc_release(&doc);
	return r;
}

/* A store failure while waiting. Returns 0 when the wait goes on (after
 * the policy's backoff, in steps that notice a cancel or the deadline),
 * or the error to give up with. */
static int ride_out(struct store *s, const struct locks_acquire_opts *opts, int err, int64_t deadline)
{
	if (!opts->retry || store_retry_failed(opts->retry, err) < 0)
		return err;
	if (opts->on_store_error)
		opts->on_store_error(err, opts->retry, store_errmsg(s), opts->userdata);
	int64_t until = now_mono_ms() + store_retry_delay_ms(opts->retry);
	for (;;) {
		if (opts->cancel && *opts->cancel)
			return -ECANCELED;
		int64_t now = now_mono_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (now >= until)
			return 0;
		int64_t step = until - now < 50 ? until - now : 50;
		sleep_us(step * 1000);
	}
}

static void store_back(struct store *s, const struct locks_acquire_opts *opts)
{
	if (!opts->retry || !opts->retry->since_mono_ms)
		return;
	if (opts->on_store_error)
		opts->on_store_error(0, opts->retry, store_errmsg(s), opts->userdata);
	store_retry_done(opts->retry);
}

static int acquire(struct store *s, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
		   const struct locks_acquire_opts *opts, int64_t *ret_version, struct lock_blocker *ret_blocker,
		   bool *listening)
{
	static const struct locks_acquire_opts defaults = { 0 };
	if (!opts)
		opts = &defaults;
	struct acquire_op op = {
		.owner = owner, .reqs = reqs, .n = n, .queue = opts->timeout_ms != 0,
		.ticket_ttl_ms = opts->ticket_ttl_ms > 0 ? opts->ticket_ttl_ms : DEFAULT_TICKET_TTL_MS,
		.lease_ms = opts->lease_ms, .ticket = opts->resume_ticket,
	};
	int64_t start = now_mono_ms();
	int64_t deadline = opts->timeout_ms < 0 ? INT64_MAX : start + opts->timeout_ms;
	int64_t last_reap = 0, last_write = start;
	/* The waiter keeps its ticket alive: its expiry, and with a lease its
	 * lease (another host reaps a ticket whose lease ran out). */
	int64_t refresh_ms = op.ticket_ttl_ms / 3;
	if (op.lease_ms > 0 && op.lease_ms / 10 < refresh_ms)
		refresh_ms = op.lease_ms / 10;
	int64_t reap_interval_ms = opts->reap_interval_ms > 0 ? opts->reap_interval_ms : REAP_INTERVAL_MS;
	bool reaped_once = false, reap_next = false;
	struct lock_wait_report report = { 0 };
	struct lock_wake *wake = lock_wake_get(s);
	int64_t wake_poll_us = opts->wake_poll_ms > 0 ? opts->wake_poll_ms * 1000 : WAKE_POLL_MAX_US;

	for (;;) {
		int64_t version;
		int granted = 0;
		/* The first attempt reaps only when it is refused, in the same
		 * change (a reap costs a /proc look-up per owner); after that
		 * the wait reaps once a second (reap_interval_ms). */
		op.reap = reap_next;
		if (op.reap) {
			last_reap = now_mono_ms();
			reaped_once = true;
			reap_next = false;
		}
		op.reap_if_refused = !reaped_once;
		op.flags = opts->defer_ms > 0 && now_mono_ms() - start < opts->defer_ms ? LOCK_ACQ_DEFER : 0;
		int r = cas(s, mutate_acquire, &op, &version, &granted);
		if (r >= 0 && op.reaped && !reaped_once) {
			last_reap = now_mono_ms();
			reaped_once = true;
		}
		if (r < 0)
			op.expired.n = 0;
		if (op.expired.n > 0 || op.expired.v)
			expired_notify(&op.expired, opts->on_expired, opts->expired_userdata);
		if (r < 0) {
			r = ride_out(s, opts, r, deadline);
			if (r < 0)
				return give_up(s, &op, r);
			continue;
		}
		store_back(s, opts);
		if (op.attempt_ticket != op.ticket)
			last_write = now_mono_ms();
		op.ticket = op.attempt_ticket;
		if (granted == 1) {
			*ret_version = version;
			return 0;
		}
		if (ret_blocker)
			*ret_blocker = op.blocker;
		/* Refused: this attempt or an earlier one has reaped (a refused
		 * first attempt always does, reap_if_refused). */
		if (opts->timeout_ms == 0)
			return -EAGAIN;
		lock_wait_report_seen(&report, &op.blocker, opts);
		/* Wait for the document to change, for the ticket to need a
		 * refresh, for the next reap, or for the deadline. */
		int64_t poll_us = POLL_MIN_US;
		uint32_t seen = 0;
		bool first = true;
		for (;;) {
			if (opts->cancel && *opts->cancel)
				return give_up(s, &op, -ECANCELED);
			int64_t now = now_mono_ms();
			if (now >= deadline)
				return give_up(s, &op, -ETIMEDOUT);
			bool remote = op.other_hosts && !in_tx_backend(s);
			int64_t reap_every = op.next_in_line || !wake || remote ? reap_interval_ms
										: reap_interval_ms * QUEUED_REAP_FACTOR;
			if (now - last_reap >= reap_every) {
				reap_next = true;
				break;
			}
			/* The next attempt refreshes the ticket (and its lease):
			 * with a ttl or lease below the reap interval the reap's
			 * attempts come too late (test_waiter_refreshes_its_ticket). */
			if (now - last_write >= refresh_ms) {
				last_write = now;
				break;
			}
			if (op.flags && now - start >= opts->defer_ms)
				break; /* deferred long enough: queue now */
			/* Only this host's changes bump the wake-up word: while
			 * the document has owners of other hosts, a server
			 * store's waiter also polls for their changes (MariaDB)
			 * or listens (PostgreSQL: the lock row's trigger NOTIFYs
			 * every change to every host). LISTEN once the wait has
			 * lasted LISTEN_AFTER_MS, and before the version is read
			 * below, so that a change after that read is always
			 * heard. */
			if ((!wake || remote) && !*listening && store_get_backend(s) == STORE_BACKEND_POSTGRES &&
			    now - start >= LISTEN_AFTER_MS && store_listen(s, STORE_LOCKS_CHANNEL, true) == 0) {
				*listening = true;
				first = true;
			}
			int64_t until = deadline - now;
			if (reap_every - (now - last_reap) < until)
				until = reap_every - (now - last_reap);
			if (refresh_ms - (now - last_write) < until)
				until = refresh_ms - (now - last_write);
			if (op.flags && opts->defer_ms - (now - start) < until)
				until = opts->defer_ms - (now - start);
			lock_wait_report_flush(&report, opts);
			int64_t report_due = lock_wait_report_due_in_ms(&report);
			if (report_due < until)
				until = report_due;
			if (*listening || (wake && !remote)) {
				/* Woken. The counter is taken (the LISTEN was made)
				 * before the version is read: a change after that
				 * read bumps it (sends a notice) after its commit, so
				 * the wait returns at once. The first round reads
				 * without waiting (a change may have come since the
				 * attempt's read). */
				if (!first) {
					int64_t us = until * 1000 < wake_poll_us ? until * 1000 : wake_poll_us;
					if (*listening)
						store_wait_notice(s, (int)((us + 999) / 1000));
					else
						lock_wake_wait(wake, seen, us);
				}
			} else {
				/* Polling, with backoff; a change of this host still
				 * wakes the sleep at once. */
				int64_t us = poll_us < until * 1000 ? poll_us : until * 1000;
				if (!wake)
					sleep_us(us);
				else if (!first)
					lock_wake_wait(wake, seen, us);
				int64_t cap = op.next_in_line ? POLL_NEXT_MAX_US : POLL_MAX_US;
				if (wake && now - start >= LISTEN_AFTER_MS)
					cap = REMOTE_POLL_MAX_US;
				poll_us = poll_us * 2 > cap ? cap : poll_us * 2;
			}
			first = false;
			if (wake)
				seen = lock_wake_seq(wake);
			int64_t v;
			stats.polls++;
			r = read_version(s, &v);
			if (r < 0) {
				r = ride_out(s, opts, r, deadline);
				if (r < 0)
					return give_up(s, &op, r);
				break; /* look again with a real attempt */
			}
			if (v == version)
				continue;
			/* The document moved. Look first, without the write lock:
			 * only a request that would now be granted (or a ticket that
			 * vanished) is worth a write transaction. Every other waiter
			 * woken by the same change only reads. */
			struct lock_blocker b;
			r = dry_run(s, &op, &version, &b);
			if (r < 0) {
				r = ride_out(s, opts, r, deadline);
				if (r < 0)
					return give_up(s, &op, r);
				break;
			}
			if (r == 1)
				break;
			if (ret_blocker)
				*ret_blocker = b;
			lock_wait_report_seen(&report, &b, opts);
			poll_us = POLL_MIN_US;
		}
	}
}

int locks_acquire(struct store *s, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
		  const struct locks_acquire_opts *opts, int64_t *ret_version, struct lock_blocker *ret_blocker)
{
	bool listening = false;
	int r = acquire(s, owner, reqs, n, opts, ret_version, ret_blocker, &listening);
	if (listening) {
		/* Unsubscribed once the wait is over: a holder's connection
		 * that stayed subscribed would pile up a notice per change.
		 * The wait's own error message is the one that counts. */
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", store_errmsg(s));
		store_listen(s, STORE_LOCKS_CHANNEL, false);
		if (r < 0)
			store_set_error(s, r, "%s", msg);
	}
	return r;
}

/* ---- group commit (broker.h) ---------------------------------------------- */

int locks_version(struct store *s, int64_t *ret) { return read_version(s, ret); }

struct batch_op {
	struct lock_batch_item *items;
	size_t n;
	const char *reap_host, *my_host;
	bool other_hosts;
};

static bool local_owner_is_dead(const struct lock_owner *o, void *userdata)
{
	return strcmp(o->host, userdata) == 0 && proc_check(o->pid, o->start_time) != PROC_ALIVE;
}

static int mutate_batch(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	struct batch_op *op = vctx;
	if (op->reap_host)
		lock_doc_reap(doc, local_owner_is_dead, (void *)op->reap_host);
	int r = lock_doc_apply_batch(doc, op->items, op->n, now_ms);
	op->other_hosts = op->my_host && has_other_hosts(doc, op->my_host);
	return r;
}

int locks_commit_batch(struct store *s, struct lock_batch_item *items, size_t n, const char *reap_host,
		       const char *my_host, struct locks_row_cache *cache, int64_t *ret_version,
		       bool *ret_other_hosts)
{
	struct batch_op op = { .items = items, .n = n, .reap_host = reap_host, .my_host = my_host };
	int r = cas_x(s, mutate_batch, &op, ret_version, NULL, true, cache);
	if (r >= 0 && ret_other_hosts)
		*ret_other_hosts = op.other_hosts;
	return r;
}

/* ---- unlock -------------------------------------------------------------- */

struct unlock_op {
	const struct lock_owner *owner;
	const char *const *names;
	size_t n;
	int64_t task_id;
};

static int mutate_unlock(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	(void)now_ms;
	struct unlock_op *op = vctx;
	return lock_doc_unlock(doc, op->owner, op->names, op->n);
}

int locks_unlock(struct store *s, const struct lock_owner *owner, const char *const *names, size_t n,
		 int *ret_unlocked)
{
	struct unlock_op op = { .owner = owner, .names = names, .n = n };
	int64_t v;
	int unlocked = 0;
	int r = cas_nonow(s, mutate_unlock, &op, &v, &unlocked);
	if (r >= 0 && ret_unlocked)
		*ret_unlocked = unlocked;
	return r;
}

static int mutate_unlock_task(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	(void)now_ms;
	return lock_doc_unlock_task(doc, ((struct unlock_op *)vctx)->task_id);
}

int locks_unlock_task(struct store *s, int64_t task_id, int *ret_unlocked)
{
	struct unlock_op op = { .task_id = task_id };
	int64_t v;
	int unlocked = 0;
	int r = cas_nonow(s, mutate_unlock_task, &op, &v, &unlocked);
	if (r >= 0 && ret_unlocked)
		*ret_unlocked = unlocked;
	return r;
}

struct renew_op {
	const char *host;
	int64_t lease_ms;
};

static int mutate_renew(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	struct renew_op *op = vctx;
	return lock_doc_renew_leases(doc, op->host, now_ms + op->lease_ms);
}

int locks_renew_leases(struct store *s, const char *host, int64_t lease_ms, int *ret_renewed)
{
	struct renew_op op = { host, lease_ms };
	int64_t v;
	int renewed = 0;
	int r = cas(s, mutate_renew, &op, &v, &renewed);
	if (r >= 0 && ret_renewed)
		*ret_renewed = renewed;
	return r;
}

struct renew_owner_op {
	const struct lock_owner *owner;
	int64_t lease_ms, holders_within_ms, tickets_within_ms;
	struct locks_renewal out; /* of the latest attempt */
};

static int mutate_renew_owner(struct lock_doc *doc, int64_t now_ms, void *vctx)
{
	struct renew_owner_op *op = vctx;
	op->out = (struct locks_renewal){ .now_ms = now_ms };
	op->out.renewed = lock_doc_renew_owner(doc, op->owner, now_ms + op->lease_ms, now_ms + op->holders_within_ms,
					       now_ms + op->tickets_within_ms);
	lock_doc_owner_summary(doc, op->owner, &op->out.holders, &op->out.tickets, &op->out.first_expiry_ms);
	return op->out.renewed;
}

int locks_renew_owner(struct store *s, const struct lock_owner *owner, int64_t lease_ms, int64_t holders_within_ms,
		      int64_t tickets_within_ms, struct locks_renewal *ret)
{
	struct renew_owner_op op = { .owner = owner, .lease_ms = lease_ms, .holders_within_ms = holders_within_ms,
				     .tickets_within_ms = tickets_within_ms };
	int64_t v;
	int r = cas(s, mutate_renew_owner, &op, &v, NULL);
	if (r >= 0 && ret)
		*ret = op.out;
	return r;
}

/* ---- read and repair ------------------------------------------------------ */

int locks_read(struct store *s, struct lock_doc *ret_doc, int64_t *ret_version, char **ret_text)
{
	int64_t version = 0;
	char *text = NULL;
	struct lock_doc doc;
	struct stored st;
	if (!ret_doc && !ret_text) { /* the version alone, whatever the document */
		int r = read_version(s, &version);
		if (r >= 0 && ret_version)
			*ret_version = version;
		return r < 0 ? r : 0;
	}
	int r = read_doc(s, false, false, &version, &text, NULL, &doc, &st);
	if (r == -EBADMSG && ret_text && !ret_doc) {
		/* What is stored, for the operator to see. */
		r = read_row(s, &version, &text);
		if (r < 0)
			return r;
		if (ret_version)
			*ret_version = version;
		*ret_text = text;
		return 0;
	}
	free(text);
	if (r < 0)
		return r;
	if (ret_text) {
		/* Readers get JSON whatever the stored format (lock_doc.h). */
		r = lock_doc_format_json(&doc, ret_text);
		if (r < 0) {
			lock_doc_release(&doc);
			return r;
		}
	}
	if (ret_version)
		*ret_version = version;
	if (ret_doc)
		*ret_doc = doc;
	else
		lock_doc_release(&doc);
	return 0;
}

/* lock_doc_salvage() of the lock row's text; when it is split, of its base
 * row (whichever base is there) and then of the lock row's own lines. The
 * lock row's "gone" marks are not applied: a holder released since the
 * base was written may come back (its owner's until it is reaped or
 * released again), which is a lock too many, never one granted twice. */
static int salvage(struct store *s, const char *text, int64_t min_next_ticket, struct lock_doc *doc, int *ret_kept,
		   int *ret_dropped)
{
	int slot;
	int64_t nonce;
	if (strncmp(text, LOCK_DOC_SPLIT_MAGIC, strlen(LOCK_DOC_SPLIT_MAGIC)) != 0 ||
	    lock_doc_split_ref(text, &slot, &nonce) < 0)
		return lock_doc_salvage(text, min_next_ticket, doc, ret_kept, ret_dropped);
	char *base_text = NULL;
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT data FROM locks WHERE id = ?", "i", (int64_t)slot);
	if (r < 0)
		return r;
	if (store_step(st) == 1 && store_col_text(st, 0))
		base_text = strdup(store_col_text(st, 0));
	store_finalize(st);
	int dropped = 0, more = 0;
	r = lock_doc_salvage(base_text ? base_text : "", min_next_ticket, doc, NULL, &dropped);
	free(base_text);
	if (r < 0)
		return r;
	r = lock_doc_text_salvage(text, doc, &more);
	if (r < 0) {
		lock_doc_release(doc);
		return r;
	}
	*ret_kept = (int)doc->n_holders;
	*ret_dropped = dropped + more;
	return 0;
}

int locks_repair(struct store *s, struct locks_repair_report *rep)
{
	*rep = (struct locks_repair_report){ 0 };
	bool tx = in_tx_backend(s);
	int r = tx ? store_begin(s, true) : 0;
	if (r < 0)
		return r;
	int64_t version;
	char *text = NULL, *new_text = NULL;
	bool repaired = false;
	r = read_row(s, &version, &text);
	if (r < 0)
		goto out;
	rep->old_version = rep->new_version = version;
	struct lock_doc doc;
	struct stored stored;
	r = compose(s, text, false, &doc, &stored, rep->problem, sizeof(rep->problem));
	if (r == 0) {
		lock_doc_release(&doc);
		rep->was_valid = true;
		goto out;
	}
	if (r == -ESTALE)
		snprintf(rep->problem, sizeof(rep->problem), "its base row is missing or is not the one it names");
	else if (r != -EBADMSG)
		goto out;
	/* Tickets are only issued by writes, and every write bumps the
	 * version, so no ticket ever issued is >= version + 1. */
	r = salvage(s, text, version + 1, &doc, &rep->holders_kept, &rep->entries_dropped);
	if (r < 0)
		goto out;
	r = lock_doc_format(&doc, &new_text);
	lock_doc_release(&doc);
	if (r < 0)
		goto out;
	int64_t n = store_run(s, "UPDATE locks SET data = ?, version = version + 1 WHERE id = ? AND version = ?",
			      "sii", new_text, (int64_t)LOCK_ROW_ID, version);
	if (n < 0)
		r = (int)n;
	else if (n == 0)
		r = store_set_error(s, -EAGAIN, "the lock document changed during repair; run it again");
	else
		rep->new_version = version + 1;
	repaired = r == 0 && n == 1;
	/* The repaired document is one row: no base is named any more (on
	 * the server stores outside the transaction: an orphan base row is
	 * harmless, the next split replaces it). */
	if (repaired)
		store_run(s, "DELETE FROM locks WHERE id > ?", "i", (int64_t)LOCK_ROW_ID);
out:
	free(new_text);
	if (tx) {
		if (r < 0)
			store_rollback(s);
		else
			r = store_commit(s);
	}
	if (r < 0)
		free(text);
	else
		rep->old_text = text;
	/* A repair drops tickets: their waiters must see it now and queue
	 * again, not at their next safety poll (10 s away on SQLite). */
	struct lock_wake *wake = r == 0 && repaired ? lock_wake_get(s) : NULL;
	if (wake)
		lock_wake_bump(wake);
	return r;
}

void locks_repair_report_release(struct locks_repair_report *rep)
{
	if (!rep)
		return;
	free(rep->old_text);
	rep->old_text = NULL;
}
