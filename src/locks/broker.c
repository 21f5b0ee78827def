/* broker.c — the per-host lock broker's thread; see broker.h. */
#include "broker.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/array.h"
#include "../common/proc.h"
#include "../common/timeutil.h"
#include "../store/store_retry.h"
#include "broker_proto.h"
#include "lock_wait_report.h"
#include "lock_wake.h"
#include "locks.h"
#include "locks_batch.h"

#define BATCH_MAX_DEFAULT 128
/* As a direct waiter (locks.c): reap dead owners once a second. */
#define REAP_INTERVAL_MS 1000
/* Server stores without a wake-up word: how often the version is read
 * while there are waiters. */
#define VERSION_POLL_MS 2
/* The wake-up word (lock_wake.h) wakes the broker for this host's changes;
 * this is the safety poll (lock_broker_opts.safety_poll_ms). */
#define WAKE_POLL_MS 1000
/* Other hosts' changes do not bump the word. While the document has owners
 * of other hosts (the last round saw them), a MariaDB broker polls the
 * version every VERSION_POLL_MS for REMOTE_FAST_MS after its last round,
 * then every REMOTE_POLL_MS, as a direct waiter does (locks.c); a
 * PostgreSQL broker LISTENs on a connection of its own (listen_store)
 * and polls like MariaDB only until that LISTEN is made. */
#define REMOTE_FAST_MS 500
#define REMOTE_POLL_MS 20
/* Waiters' tickets (and their leases) are refreshed by a round at least
 * this often: a third of the shortest ttl or lease among them. */
#define DEFAULT_TICKET_TTL_MS 30000
/* A waiting client hears of a new holder (or earlier waiter) of the lock
 * it waits for at most this often; of another lock or the step into the
 * queue at once (lock_wait_report.h). Its own report to
 * its task row is throttled further (LOCK_WAIT_REPORT_MS). Before this,
 * each hand-off of a lock sent every waiter of it a message and woke it:
 * 7 wake-ups per hand-off with 8 processes on one name. */
#define WAITING_UPDATE_MS 1000
/* ... and of its first blocker only once it has waited this long: most
 * waits behind a short holder end sooner, and the message would only wake
 * the client. A client that gives up before then gets the blocker with
 * the CANCELLED reply; one whose broker dies finds its ticket again by
 * asking (lock_doc.c, find_same_request()). */
#define FIRST_WAITING_MS 20
/* A round the store did not take for a transient reason (a lost
 * connection, a failover, a busy server) is tried again after the store's
 * own backoff (store_retry.h), with the waiters kept, for up to
 * RIDE_OUT_MS of failures in a row; then the waiters go on by themselves
 * (BROKER_FALLBACK). Handing them back at the first failure sent a host's
 * hundreds of waiters to the database at once, each on a connection of
 * its own, right when a new primary was coming up (t0910 with 3 x 200:
 * the hosts' heartbeats stalled for over 20 s). */
#define RIDE_OUT_MS 30000
/* A request that can only queue behind a lock a client of this broker
 * holds (held_conflicts()) waits up to this long for a round that has
 * something else to do (a release, a grant), instead of a round of its
 * own: its ticket would be that round's only change, a commit that lets
 * nobody through (an fsync on MariaDB and PostgreSQL) and that the next
 * release then waits behind. With 8 processes on one name, 1.4 rounds
 * per hand-off before. Below FIRST_WAITING_MS: a client told what it
 * waits for finds its ticket in the document. */
#define TICKET_DEFER_MS 10
/* After a round that granted a lock, the broker looks for the next
 * message without sleeping for this long before it sleeps in poll(): the
 * new holder's release of a short holding comes within it, and on this
 * VM a thread woken from idle costs tens of microseconds (a halted CPU,
 * an interrupt to wake it), once per hand-off on its critical path.
 * lockbench --broker, 8 processes on one name, SQLite: 6.2-7.3k pairs/s
 * without, 9.4-10.1k with 50 us (100 and 200 us: no better; a
 * sched_yield() in the loop: worse). Only while requests are queued
 * (a grant with nobody waiting starts no chain), and at most this much
 * CPU per granting round and per message read meanwhile. */
#define GRANT_SPIN_US 50
/* Before a round that releases a lock commits, the local waiter next in
 * line for it is told to expect its answer (PREPARE): it wakes while the
 * commit runs and polls instead of sleeping again, so the grant finds it
 * awake, and its wake-up (about 25 us across this VM's vCPUs) is off the
 * hand-off's critical path. Only while the rounds' commits (a moving
 * average) are shorter than this: a waiter polls for about as long as a
 * commit takes. lockbench --broker, 8 on one name, SQLite, interleaved:
 * 9.5-11.7k pairs/s without, 12.4-14.7k with (MariaDB's and PostgreSQL's
 * commits, 500 us, are above it). A waiter sent a PREPARE before it would
 * otherwise have been woken (after the previous grant): worse, 8-11k; on
 * 2 vCPUs it took the CPU of the holder, whose release comes first. */
#define PREPARE_MAX_US 150
/* The holdings the broker remembers per client; more are not remembered
 * (a request behind them is not deferred). */
#define HELD_MAX 16

struct conn {
	int fd;
	pid_t pid;
	uint64_t start_time;
	bool gone;              /* EOF or error: close after the next round */
	/* The outstanding acquire. */
	bool acq;
	struct broker_msg req;
	int64_t ticket;
	int64_t since_ms;       /* monotonic: when it arrived */
	bool tried;
	/* What the client was told it waits for (WAITING messages): a new
	 * holder of the same lock at most every WAITING_UPDATE_MS. */
	struct lock_wait_report wr;
	/* A pending release or cancel. */
	uint32_t op;            /* 0, BROKER_UNLOCK or BROKER_CANCEL */
	struct broker_msg op_msg;
	const char *names[BROKER_MAX_LOCKS];
	/* What the broker granted the client and it has not released through
	 * the broker: only to tell a request that cannot be granted yet
	 * (TICKET_DEFER_MS). It can be out of date (a release the client did
	 * directly after a fallback): a request is then deferred once for
	 * nothing, never granted wrongly. */
	struct lock_req held[HELD_MAX];
	uint32_t n_held;
	bool prepared;          /* sent a PREPARE this round (a guess that missed is cleared) */
	uint32_t proto;         /* the version the client speaks (its last message's) */
	/* The answer to its release, committed and not sent yet (ack_later()). */
	bool ack_pending;
	uint32_t ack_type;
	int32_t ack_err;
};

struct lock_broker {
	struct lock_broker_opts o;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char host[LOCK_HOST_MAX];
	int listen_fd, stop_fd, wake_fd;
	pthread_t thread, wake_thread;
	bool wake_thread_started;
	atomic_bool stopping;
	struct lock_wake *wake;
	struct conn **conns;
	size_t n_conns, cap_conns;
	int64_t last_version, last_reap_ms, last_round_ms;
	/* After a round that granted: poll without sleeping until then
	 * (GRANT_SPIN_US; each message read meanwhile starts it again). */
	int64_t spin_until_us;
	int64_t commit_avg_us;  /* the rounds' commits, a moving average (PREPARE_MAX_US) */
	bool version_known;
	bool remote;            /* the last round's document had other hosts' owners */
	/* Riding out a store outage: the failed rounds in a row (grace
	 * RIDE_OUT_MS), and when to try the next (0: no outage). */
	struct store_retry outage;
	int64_t retry_at_ms;
	/* The lock row as the last round wrote it: the next round's one
	 * round trip on the server stores (locks_row_cache in locks.h). */
	struct locks_row_cache row;
	/* PostgreSQL: the LISTEN thread, on opts.listen_store. want_listen
	 * (under listen_lock) says whether to be subscribed; `listening` that
	 * the subscription is made. */
	pthread_t listen_thread;
	bool listen_thread_started;
	pthread_mutex_t listen_lock;
	pthread_cond_t listen_cond;
	bool want_listen;
	atomic_bool listening;
	pthread_mutex_t stats_lock;
	struct lock_broker_stats stats;
};

int lock_broker_socket_path(const char *state_dir, char *buf, size_t len)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n = snprintf(buf, len, "%s/lock-broker.sock", state_dir);
	if (n < 0 || (size_t)n >= len || (size_t)n >= max)
		return -ENAMETOOLONG;
	return 0;
}

static void stat_add(struct lock_broker *b, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&b->stats_lock);
	*field += n;
	pthread_mutex_unlock(&b->stats_lock);
}

void lock_broker_stats_get(struct lock_broker *b, struct lock_broker_stats *ret)
{
	pthread_mutex_lock(&b->stats_lock);
	*ret = b->stats;
	pthread_mutex_unlock(&b->stats_lock);
}

/* Send m's header and blocker (all a message to a client has), in the
 * version the client speaks. */
static void send_to_client(struct conn *c, struct broker_msg *m)
{
	m->version = c->proto ? c->proto : BROKER_PROTO_VERSION;
	size_t len = offsetof(struct broker_msg, reqs);
	if (send(c->fd, m, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
		c->gone = true; /* a client that does not read its replies is dropped */
}

static void reply(struct conn *c, uint32_t type, int err, int64_t fence, int64_t ticket,
		  const struct lock_blocker *blocker)
{
	struct broker_msg m = { .type = type, .err = err, .fence = fence, .ticket = ticket };
	if (blocker)
		m.blocker = *blocker;
	send_to_client(c, &m);
}

static void send_waiting(const struct lock_blocker *blocker, void *userdata)
{
	struct conn *c = userdata;
	reply(c, BROKER_WAITING, 0, 0, c->ticket, blocker);
}

/* How lock_wait_report tells c what it waits for: a WAITING message. */
#define waiting_reply(c) ((struct locks_acquire_opts){ .on_wait = send_waiting, .userdata = (c) })

/* Send the WAITING updates that are due; the milliseconds until the next
 * one is (INT64_MAX: none pending). */
static int64_t flush_waiting(struct lock_broker *b)
{
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < b->n_conns; i++) {
		struct conn *c = b->conns[i];
		if (!c->acq || c->gone || !c->wr.pending)
			continue;
		lock_wait_report_flush(&c->wr, &waiting_reply(c));
		int64_t due = lock_wait_report_due_in_ms(&c->wr);
		if (due < next)
			next = due;
	}
	return next;
}

/* ---- accepting and reading ------------------------------------------------ */

static void accept_all(struct lock_broker *b)
{
	for (;;) {
		int fd = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		uint64_t start = 0;
		bool ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 &&
			  (cred.uid == geteuid() || cred.uid == 0 || cred.uid == b->o.extra_uid) &&
			  proc_start_time(cred.pid, &start) == 0;
		struct conn *c = ok ? calloc(1, sizeof(*c)) : NULL;
		if (!c || ARRAY_GROW(b->conns, b->n_conns + 1, b->cap_conns) < 0) {
			if (!ok)
				stat_add(b, &b->stats.refused_peers, 1);
			free(c);
			close(fd);
			continue;
		}
		*c = (struct conn){ .fd = fd, .pid = cred.pid, .start_time = start };
		b->conns[b->n_conns++] = c;
	}
}

/* The request's owner must be the peer: its pid, start time, this host. */
static bool owner_is_peer(const struct lock_broker *b, const struct conn *c, const struct lock_owner *o)
{
	return o->pid == c->pid && o->start_time == c->start_time && strncmp(o->host, b->host, sizeof(o->host)) == 0;
}

static void on_message(struct lock_broker *b, struct conn *c, struct broker_msg *m, ssize_t len)
{
	if (len != (ssize_t)sizeof(*m) || m->version < BROKER_PROTO_MIN || m->version > BROKER_PROTO_VERSION ||
	    m->n > BROKER_MAX_LOCKS) {
		reply(c, BROKER_ERROR, -EPROTO, 0, 0, NULL);
		c->gone = true;
		return;
	}
	c->proto = m->version;
	m->owner.host[sizeof(m->owner.host) - 1] = '\0';
	for (uint32_t i = 0; i < m->n; i++)
		m->reqs[i].name[sizeof(m->reqs[i].name) - 1] = '\0';
	if (m->type == BROKER_CANCEL) {
		if (c->acq)
			c->op = BROKER_CANCEL;
		else
			reply(c, BROKER_CANCELLED, 0, 0, 0, NULL); /* its final reply went out already */
		return;
	}
	if (m->type != BROKER_ACQUIRE && m->type != BROKER_UNLOCK) {
		reply(c, BROKER_ERROR, -EPROTO, 0, 0, NULL);
		return;
	}
	if (!owner_is_peer(b, c, &m->owner)) {
		stat_add(b, &b->stats.refused_peers, 1);
		reply(c, BROKER_ERROR, -EPERM, 0, 0, NULL);
		return;
	}
	if (c->acq || c->op) {
		reply(c, BROKER_ERROR, -EBUSY, 0, 0, NULL); /* one request at a time */
		return;
	}
	if (m->type == BROKER_ACQUIRE) {
		if (m->n == 0) {
			reply(c, BROKER_ERROR, -EINVAL, 0, 0, NULL);
			return;
		}
		c->acq = true;
		c->req = *m;
		c->ticket = 0;
		c->since_ms = now_mono_ms();
		c->tried = false;
		c->prepared = false;
		c->wr = (struct lock_wait_report){ .interval_ms = WAITING_UPDATE_MS, .first_after_ms = FIRST_WAITING_MS,
						   .since_mono_ms = c->since_ms };
		return;
	}
	c->op = BROKER_UNLOCK;
	c->op_msg = *m;
	for (uint32_t i = 0; i < m->n; i++)
		c->names[i] = c->op_msg.reqs[i].name;
}

static void read_conn(struct lock_broker *b, struct conn *c)
{
	for (;;) {
		struct broker_msg m;
		ssize_t len = recv(c->fd, &m, sizeof(m), MSG_DONTWAIT);
		if (len < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (len <= 0) {
			c->gone = true;
			return;
		}
		on_message(b, c, &m, len);
	}
}

/* ---- what clients hold (TICKET_DEFER_MS) ----------------------------------- */

static void held_add(struct conn *c, const struct lock_req *reqs, uint32_t n)
{
	for (uint32_t i = 0; i < n && c->n_held < HELD_MAX; i++)
		c->held[c->n_held++] = reqs[i];
}

/* The client released `names` (n 0: all it holds). */
static void held_remove(struct conn *c, const char *const *names, uint32_t n)
{
	if (n == 0) {
		c->n_held = 0;
		return;
	}
	uint32_t kept = 0;
	for (uint32_t i = 0; i < c->n_held; i++) {
		bool released = false;
		for (uint32_t k = 0; k < n && !released; k++)
			released = strcmp(c->held[i].name, names[k]) == 0;
		if (!released)
			c->held[kept++] = c->held[i];
	}
	c->n_held = kept;
}

/* Does another client hold a lock that c's request conflicts with? Then
 * the request (all or none) can only queue. */
static bool held_conflicts(const struct lock_broker *b, const struct conn *c)
{
	for (uint32_t r = 0; r < c->req.n; r++) {
		const struct lock_req *want = &c->req.reqs[r];
		for (size_t i = 0; i < b->n_conns; i++) {
			const struct conn *o = b->conns[i];
			if (o == c || o->gone)
				continue;
			for (uint32_t h = 0; h < o->n_held; h++)
				if (strcmp(o->held[h].name, want->name) == 0 &&
				    !lock_modes_compatible(o->held[h].mode, want->mode))
					return true;
		}
	}
	return false;
}

/* c's new request may wait for another round (TICKET_DEFER_MS): until
 * when, or 0 if it may not. A try is answered at once, a deferring
 * request (defer_ms) keeps its own rule. */
static int64_t ticket_defer_until(const struct lock_broker *b, const struct conn *c)
{
	if (c->tried || c->gone || c->req.timeout_ms == 0 || c->req.defer_ms > 0)
		return 0;
	int64_t until = c->since_ms + (b->o.ticket_defer_ms > 0 ? b->o.ticket_defer_ms : TICKET_DEFER_MS);
	return now_mono_ms() < until && held_conflicts(b, c) ? until : 0;
}

/* ---- rounds -------------------------------------------------------------- */

static int64_t reap_interval(const struct lock_broker *b)
{
	return b->o.reap_interval_ms > 0 ? b->o.reap_interval_ms : REAP_INTERVAL_MS;
}

/* Is a round due? *ret_defer_until: the earliest end of a deferred
 * request's wait (INT64_MAX: none). */
static bool has_work(const struct lock_broker *b, bool *ret_waiters, int64_t *ret_refresh_ms,
		     int64_t *ret_defer_until)
{
	bool work = false, waiters = false;
	int64_t refresh = DEFAULT_TICKET_TTL_MS / 3;
	int64_t defer_until = INT64_MAX;
	for (size_t i = 0; i < b->n_conns; i++) {
		const struct conn *c = b->conns[i];
		int64_t until = c->acq && !c->op && !work ? ticket_defer_until(b, c) : 0;
		if (until && until < defer_until)
			defer_until = until;
		else if (c->op || (c->acq && (!c->tried || c->gone)))
			work = true;
		if (c->acq && c->tried && !c->gone) {
			waiters = true;
			int64_t ttl = c->req.ttl_ms > 0 ? c->req.ttl_ms : DEFAULT_TICKET_TTL_MS;
			if (ttl / 3 < refresh)
				refresh = ttl / 3;
			if (c->req.lease_ms > 0 && c->req.lease_ms / 10 < refresh)
				refresh = c->req.lease_ms / 10;
			/* A deferring request queues once it has deferred long enough. */
			if (c->req.defer_ms > 0 && c->ticket == 0 && now_mono_ms() - c->since_ms >= c->req.defer_ms)
				work = true;
		}
	}
	*ret_waiters = waiters;
	*ret_refresh_ms = refresh;
	*ret_defer_until = defer_until;
	return work;
}

static int by_arrival(const void *x, const void *y)
{
	const struct conn *a = *(struct conn *const *)x, *c = *(struct conn *const *)y;
	if (a->since_ms != c->since_ms)
		return a->since_ms < c->since_ms ? -1 : 1;
	return a < c ? -1 : a > c;
}

/* A round's outcome, for answer(): the commit's result, whether the
 * broker rides out its failure, the version it made, the grants so far. */
struct round_outcome {
	int r;
	bool ride_out;
	int64_t version;
	uint64_t grants;
};

/* A release's answer waits until the broker next starts a commit or is
 * about to sleep (send_acks()). Right after a round the process it wakes
 * would compete for the CPU with the new holder, whose release is the
 * next link of the hand-off chain; during the next commit, or once the
 * broker idles, nothing waits for that CPU. lockbench --broker, 8 on one
 * name, SQLite, interleaved: 8.2-13.7k pairs/s answering at once,
 * 10.9-15.6k later. The answer is late by at most the broker's spin
 * (GRANT_SPIN_US, restarted by each message) or one round. */
static void ack_later(struct conn *c, uint32_t type, int32_t err)
{
	c->ack_pending = true;
	c->ack_type = type;
	c->ack_err = err;
}

static void send_acks(struct lock_broker *b)
{
	for (size_t i = 0; i < b->n_conns; i++) {
		struct conn *c = b->conns[i];
		if (c->ack_pending) {
			c->ack_pending = false;
			reply(c, c->ack_type, c->ack_err, 0, 0, NULL);
		}
	}
}

/* Tell c what became of its item in the round. */
static void answer(struct lock_broker *b, struct conn *c, const struct lock_batch_item *it, struct round_outcome *o)
{
	if (it->op == LOCK_BATCH_UNLOCK) {
		/* Failed: the worker releases them itself (idempotent). */
		held_remove(c, c->names, c->op_msg.n);
		ack_later(c, o->r < 0 ? BROKER_ERROR : BROKER_UNLOCKED, o->r < 0 ? o->r : it->result);
		if (o->r < 0)
			stat_add(b, &b->stats.fallbacks, 1);
		c->op = 0;
		return;
	}
	if (it->op == LOCK_BATCH_CANCEL) {
		/* Failed: its ticket expires, or is reaped with its owner. */
		if (c->op == BROKER_CANCEL)
			reply(c, BROKER_CANCELLED, o->r, 0, 0, lock_wait_report_current(&c->wr));
		c->op = 0;
		c->acq = false;
		return;
	}
	if (o->r < 0 && o->ride_out) {
		/* Kept for the next try. Its ticket, if this round's
		 * commit was lost after all, is found again by the retry
		 * (lock_doc.c, find_same_request()). */
		c->tried = true;
		return;
	}
	if (o->r < 0) {
		/* The store did not take this round: the waiter goes on by
		 * itself, from the ticket it has (which it re-reads). */
		reply(c, BROKER_FALLBACK, o->r, 0, c->ticket, NULL);
		stat_add(b, &b->stats.fallbacks, 1);
		c->acq = false;
		return;
	}
	c->tried = true;
	if (it->result == 1) {
		held_add(c, c->req.reqs, c->req.n);
		reply(c, BROKER_GRANTED, 0, o->version, 0, NULL);
		o->grants++;
		c->acq = false;
	} else if (it->result < 0) {
		reply(c, BROKER_ERROR, it->result, 0, 0, NULL);
		c->acq = false;
	} else if (!it->queue) {
		reply(c, BROKER_REFUSED, 0, 0, 0, &it->blocker);
		c->acq = false;
	} else {
		c->ticket = it->attempt_ticket;
		c->prepared = false; /* a guess that missed: the next release may be its */
		lock_wait_report_seen(&c->wr, &it->blocker, &waiting_reply(c));
	}
}

/* Does c's outstanding request ask for the lock `name`? */
static bool wants(const struct conn *c, const char *name)
{
	for (uint32_t i = 0; i < c->req.n; i++)
		if (strcmp(c->req.reqs[i].name, name) == 0)
			return true;
	return false;
}

/* The round about to commit releases these: tell each one's local waiter
 * next in line (the oldest ticket asking for it) to expect its answer.
 * A guess: the document decides, and a wrong one costs the waiter a
 * short poll. */
static void prepare_next_in_line(struct lock_broker *b, const struct lock_batch_item *items, size_t n)
{
	int64_t max = b->o.prepare_max_us ? b->o.prepare_max_us : PREPARE_MAX_US;
	if (b->commit_avg_us <= 0 || b->commit_avg_us > max)
		return;
	for (size_t k = 0; k < n; k++) {
		if (items[k].op != LOCK_BATCH_UNLOCK)
			continue;
		for (size_t j = 0; j < items[k].n_names; j++) {
			struct conn *next = NULL;
			for (size_t i = 0; i < b->n_conns; i++) {
				struct conn *c = b->conns[i];
				if (c->acq && c->tried && c->ticket && !c->gone && !c->op &&
				    c->proto >= 2 && wants(c, items[k].names[j]) &&
				    (!next || c->ticket < next->ticket))
					next = c;
			}
			if (next && !next->prepared) {
				next->prepared = true;
				struct broker_msg m = { .type = BROKER_PREPARE, .timeout_ms = b->commit_avg_us };
				send_to_client(next, &m);
				stat_add(b, &b->stats.prepares, 1);
			}
		}
	}
}

static void round_run(struct lock_broker *b)
{
	size_t max = b->o.batch_max ? b->o.batch_max : BATCH_MAX_DEFAULT;
	/* Room for what is pending, not for a full round: an item is 440
	 * bytes, and zeroing 128 of them (56 KiB) every round cost about
	 * 4 us of user CPU per hand-off (lockbench, 8 on one name). */
	size_t pending = 0;
	for (size_t i = 0; i < b->n_conns; i++)
		pending += b->conns[i]->op || b->conns[i]->acq;
	if (pending < max)
		max = pending ? pending : 1;
	struct lock_batch_item *items = calloc(max, sizeof(*items));
	struct conn **who = calloc(max, sizeof(*who));
	if (!items || !who) {
		free(items);
		free(who);
		return;
	}
	int64_t now = now_mono_ms();
	size_t n = 0;
	bool try_in_batch = false;
	/* Releases and cancels first (they never wait), then the acquires:
	 * lock_doc_apply_batch() orders them anyway; a full round keeps the
	 * rest for the next one. */
	for (size_t i = 0; i < b->n_conns && n < max; i++) {
		struct conn *c = b->conns[i];
		if (c->op == BROKER_UNLOCK) { /* even if its client went: it asked */
			items[n] = (struct lock_batch_item){ .op = LOCK_BATCH_UNLOCK, .owner = c->op_msg.owner,
							     .names = c->names, .n_names = c->op_msg.n };
			who[n++] = c;
		} else if (c->acq && (c->op == BROKER_CANCEL || c->gone)) {
			items[n] = (struct lock_batch_item){ .op = LOCK_BATCH_CANCEL, .owner = c->req.owner,
							     .ticket = c->ticket };
			who[n++] = c;
		}
	}
	/* The acquires oldest first: a full round leaves the newest for the
	 * next one, and newcomers of one round queue in arrival order. */
	size_t n_acq = 0;
	struct conn **acq = calloc(b->n_conns ? b->n_conns : 1, sizeof(*acq));
	for (size_t i = 0; acq && i < b->n_conns; i++)
		if (b->conns[i]->acq && !b->conns[i]->op && !b->conns[i]->gone)
			acq[n_acq++] = b->conns[i];
	if (acq)
		qsort(acq, n_acq, sizeof(*acq), by_arrival);
	for (size_t i = 0; i < n_acq && n < max; i++) {
		struct conn *c = acq[i];
		const struct broker_msg *m = &c->req;
		items[n] = (struct lock_batch_item){
			.op = LOCK_BATCH_ACQUIRE, .owner = m->owner, .reqs = m->reqs, .n = m->n,
			.queue = m->timeout_ms != 0, .ticket = c->ticket,
			.ttl_ms = m->ttl_ms > 0 ? m->ttl_ms : DEFAULT_TICKET_TTL_MS, .lease_ms = m->lease_ms,
			.flags = m->defer_ms > 0 && now - c->since_ms < m->defer_ms ? LOCK_ACQ_DEFER : 0,
		};
		if (m->timeout_ms == 0)
			try_in_batch = true;
		who[n++] = c;
	}
	free(acq);
	/* A try gives up only after a reap (as locks_acquire()'s does);
	 * waiters reap once a second. */
	bool reap = try_in_batch || now - b->last_reap_ms >= reap_interval(b);
	int64_t version = 0;
	bool remote = b->remote;
	prepare_next_in_line(b, items, n);
	send_acks(b); /* during the commit: ack_later() */
	int64_t t0 = now_mono_us();
	int r = n ? locks_commit_batch(b->o.store, items, n, reap ? b->host : NULL, b->host, &b->row, &version,
					   &remote) : 0;
	stat_add(b, &b->stats.rounds, 1);
	if (n) {
		int64_t took = now_mono_us() - t0;
		b->commit_avg_us = b->commit_avg_us ? (7 * b->commit_avg_us + took) / 8 : took;
	}
	b->last_round_ms = now_mono_ms();
	if (r == 0 && reap)
		b->last_reap_ms = now;
	if (r == 0) {
		b->last_version = version;
		b->version_known = true;
		b->remote = remote;
	}
	/* Not transient, or RIDE_OUT_MS of failures: hand the requests back
	 * (below); a success or another kind of error ends the outage. */
	bool ride_out = r < 0 && store_retry_failed(&b->outage, r) == 0;
	b->retry_at_ms = ride_out ? now_mono_ms() + store_retry_delay_ms(&b->outage) : 0;
	if (ride_out)
		stat_add(b, &b->stats.retried_rounds, 1);
	else if (r == 0 || !store_error_is_transient(r))
		store_retry_done(&b->outage);
	struct round_outcome out = { .r = r, .ride_out = ride_out, .version = version };
	/* The acquires' answers first, then the releases': a grant wakes the
	 * next holder, who is the hand-off's critical path; the process that
	 * released can wait a moment to hear that it did. */
	for (size_t k = 0; k < n; k++)
		if (items[k].op == LOCK_BATCH_ACQUIRE)
			answer(b, who[k], &items[k], &out);
	for (size_t k = 0; k < n; k++)
		if (items[k].op != LOCK_BATCH_ACQUIRE)
			answer(b, who[k], &items[k], &out);
	stat_add(b, &b->stats.requests, n);
	stat_add(b, &b->stats.grants, out.grants);
	b->spin_until_us = out.grants > 0 ? now_mono_us() + GRANT_SPIN_US : 0;
	free(items);
	free(who);
}

static void drop_gone(struct lock_broker *b)
{
	size_t kept = 0;
	for (size_t i = 0; i < b->n_conns; i++) {
		struct conn *c = b->conns[i];
		/* A gone client's ticket is cancelled by a round first. */
		if (c->gone && !c->acq && !c->op) {
			close(c->fd);
			free(c);
		} else {
			b->conns[kept++] = c;
		}
	}
	b->n_conns = kept;
}

/* ---- the threads ------------------------------------------------------------ */

/* How long the broker may sleep, with waiters, before it reads the version
 * (it wakes earlier for requests, this host's changes and notices). */
static int64_t poll_cap_ms(struct lock_broker *b, int64_t now)
{
	int64_t safety = b->o.safety_poll_ms > 0 ? b->o.safety_poll_ms : WAKE_POLL_MS;
	if (!b->wake)
		return VERSION_POLL_MS;
	if (!b->remote || store_get_backend(b->o.store) == STORE_BACKEND_SQLITE)
		return safety; /* every writer of an SQLite file is on this host */
	if (atomic_load(&b->listening))
		return safety;
	return now - b->last_round_ms < REMOTE_FAST_MS ? VERSION_POLL_MS : REMOTE_POLL_MS;
}

/* PostgreSQL: subscribe while the broker has waiters and the document has
 * other hosts' owners (an idle subscribed connection piles up notices),
 * and turn every notice into a wake-up of the broker. Once subscribed it
 * wakes the broker once, so that a change made before the LISTEN is seen
 * by a read of the version. */
static void set_want_listen(struct lock_broker *b, bool want)
{
	if (!b->listen_thread_started)
		return;
	pthread_mutex_lock(&b->listen_lock);
	if (b->want_listen != want) {
		b->want_listen = want;
		pthread_cond_signal(&b->listen_cond);
	}
	pthread_mutex_unlock(&b->listen_lock);
}

static void *listen_main(void *arg)
{
	struct lock_broker *b = arg;
	struct store *ls = b->o.listen_store;
	bool on = false;
	pthread_mutex_lock(&b->listen_lock);
	while (!atomic_load(&b->stopping)) {
		bool want = b->want_listen;
		if (!want && !on) {
			pthread_cond_wait(&b->listen_cond, &b->listen_lock);
			continue;
		}
		pthread_mutex_unlock(&b->listen_lock);
		if (!want) {
			store_listen(ls, STORE_LOCKS_CHANNEL, false);
			on = false;
			atomic_store(&b->listening, false);
		} else if (!on) {
			if (store_listen(ls, STORE_LOCKS_CHANNEL, true) == 0) {
				on = true;
				atomic_store(&b->listening, true);
				eventfd_write(b->wake_fd, 1);
			} else {
				sleep_us(100000); /* the broker polls meanwhile */
			}
		} else {
			int r = store_wait_notice(ls, 200);
			if (r != 0)
				eventfd_write(b->wake_fd, 1);
			if (r < 0) { /* the connection: poll until it is back */
				on = false;
				atomic_store(&b->listening, false);
				sleep_us(100000);
			}
		}
		pthread_mutex_lock(&b->listen_lock);
	}
	pthread_mutex_unlock(&b->listen_lock);
	if (on)
		store_listen(ls, STORE_LOCKS_CHANNEL, false);
	return NULL;
}

/* SQLite: turn the wake-up word (a futex) into a readable eventfd. Every
 * change after `seen` was taken makes the word differ from it, so none is
 * missed. */
static void *wake_main(void *arg)
{
	struct lock_broker *b = arg;
	uint32_t seen = lock_wake_seq(b->wake);
	while (!atomic_load(&b->stopping)) {
		lock_wake_watch(b->wake, seen, 200 * 1000, lock_wake_watcher_bit());
		uint32_t now = lock_wake_seq(b->wake);
		if (now != seen) {
			seen = now;
			eventfd_write(b->wake_fd, 1);
		}
	}
	return NULL;
}

static void *broker_main(void *arg)
{
	struct lock_broker *b = arg;
	struct pollfd *pfd = NULL;
	size_t cap = 0;
	bool check_version = true;
	/* This thread's commits do not wake our own watcher (wake_main). */
	lock_wake_this_thread_is_broker(lock_wake_watcher_bit());
	for (;;) {
		bool waiters;
		int64_t refresh_ms, defer_until;
		bool work = has_work(b, &waiters, &refresh_ms, &defer_until);
		int64_t now = now_mono_ms();
		if (!work && waiters) {
			if (now - b->last_reap_ms >= reap_interval(b) || now - b->last_round_ms >= refresh_ms)
				work = true;
			else if (check_version || !b->wake) {
				int64_t v;
				check_version = false;
				if (locks_version(b->o.store, &v) == 0 && (!b->version_known || v != b->last_version))
					work = true;
				if (work && b->row.valid && v != b->row.version)
					b->row.valid = false; /* another writer: its swap would miss */
			}
		}
		if (b->retry_at_ms) /* riding out an outage: the next try is due then, not before */
			work = now >= b->retry_at_ms;
		if (work) {
			round_run(b);
			drop_gone(b);
			continue; /* read what came meanwhile, without sleeping */
		}
		drop_gone(b);
		set_want_listen(b, waiters && b->remote);
		int64_t waiting_due = flush_waiting(b);
		int timeout = -1;
		if (waiters) {
			int64_t until = reap_interval(b) - (now - b->last_reap_ms);
			if (refresh_ms - (now - b->last_round_ms) < until)
				until = refresh_ms - (now - b->last_round_ms);
			int64_t poll_cap = poll_cap_ms(b, now);
			if (until > poll_cap)
				until = poll_cap;
			timeout = until < 0 ? 0 : (int)until;
		}
		if (waiting_due != INT64_MAX && (timeout < 0 || waiting_due < timeout))
			timeout = (int)waiting_due;
		if (defer_until != INT64_MAX && (timeout < 0 || defer_until - now < timeout))
			timeout = defer_until > now ? (int)(defer_until - now) : 0;
		if (b->retry_at_ms)
			timeout = b->retry_at_ms > now ? (int)(b->retry_at_ms - now) : 0;
		if (ARRAY_GROW(pfd, b->n_conns + 3, cap) < 0) {
			sleep_us(10000);
			continue;
		}
		pfd[0] = (struct pollfd){ .fd = b->stop_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = b->listen_fd, .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = b->wake_fd, .events = POLLIN };
		for (size_t i = 0; i < b->n_conns; i++)
			pfd[3 + i] = (struct pollfd){ .fd = b->conns[i]->fd, .events = POLLIN };
		size_t npfd = 3 + b->n_conns;
		int pr = 0;
		if (!waiters) /* a grant with nobody queued starts no hand-off chain */
			b->spin_until_us = 0;
		while (b->spin_until_us && pr == 0 && now_mono_us() < b->spin_until_us)
			pr = poll(pfd, npfd, 0);
		if (pr > 0 && b->spin_until_us) /* the next message may follow this one */
			b->spin_until_us = now_mono_us() + GRANT_SPIN_US;
		else
			b->spin_until_us = 0;
		if (pr == 0) {
			send_acks(b); /* before sleeping: ack_later() */
			pr = poll(pfd, npfd, timeout);
		}
		if (pr < 0 && errno != EINTR)
			sleep_us(1000);
		if (pr <= 0) {
			check_version = true; /* a timeout: the poll of the version */
			continue;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents)
			accept_all(b);
		if (pfd[2].revents) {
			eventfd_t v;
			eventfd_read(b->wake_fd, &v);
			check_version = true;
		}
		for (size_t i = 0; i + 3 < npfd; i++)
			if (pfd[3 + i].revents)
				read_conn(b, b->conns[i]);
		/* A connection accepted just now may already carry its first
		 * request, sent before a message read above (a waiter's acquire
		 * before the holder's release): read it in this same pass, so
		 * that one round takes both, in one change, rather than the
		 * release alone first. Under load, when the broker's thread
		 * woke to find both, the release went first (test-broker,
		 * test_request_behind_a_local_holder_waits_for_its_release:
		 * 3 to 6 failures in 20 runs beside two busy loops). */
		for (size_t i = npfd - 3; i < b->n_conns; i++)
			read_conn(b, b->conns[i]);
	}
	send_acks(b);
	free(pfd);
	return NULL;
}

/* After `stopping` is set: wake the LISTEN thread (it looks at `stopping`
 * at least every 200 ms) and join it. */
static void stop_listen_thread(struct lock_broker *b)
{
	if (!b->listen_thread_started)
		return;
	pthread_mutex_lock(&b->listen_lock);
	pthread_cond_signal(&b->listen_cond);
	pthread_mutex_unlock(&b->listen_lock);
	pthread_join(b->listen_thread, NULL);
	b->listen_thread_started = false;
}

int lock_broker_start(const struct lock_broker_opts *opts, struct lock_broker **ret, char *err, size_t errlen)
{
	struct lock_broker *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->o = *opts;
	b->listen_fd = b->stop_fd = b->wake_fd = -1;
	pthread_mutex_init(&b->stats_lock, NULL);
	store_retry_init(&b->outage, RIDE_OUT_MS);
	pthread_mutex_init(&b->listen_lock, NULL);
	pthread_cond_init(&b->listen_cond, NULL);
	snprintf(b->host, sizeof(b->host), "%s", opts->host);
	int r = 0;
	if (snprintf(b->path, sizeof(b->path), "%s", opts->socket_path) >= (int)sizeof(b->path)) {
		snprintf(err, errlen, "lock broker socket path too long: %s", opts->socket_path);
		r = -ENAMETOOLONG;
		goto fail;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, b->path, sizeof(sa.sun_path));
	b->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->listen_fd < 0 || b->stop_fd < 0 || b->wake_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "lock broker: %s", strerror(-r));
		goto fail;
	}
	/* A socket left by a daemon that was killed: nobody listens on it
	 * (this host's daemon is us), replace it. */
	unlink(b->path);
	if (bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(b->listen_fd, 128) < 0) {
		r = -errno;
		snprintf(err, errlen, "lock broker: cannot listen on %s: %s", b->path, strerror(-r));
		goto fail;
	}
	/* The state dir keeps strangers out; workers of the [tasks] user must
	 * get in (SO_PEERCRED decides who is served). */
	chmod(b->path, 0666);
	b->wake = lock_wake_get(opts->store);
	b->last_reap_ms = b->last_round_ms = now_mono_ms();
	if (b->wake) {
		if (pthread_create(&b->wake_thread, NULL, wake_main, b) != 0) {
			b->wake = NULL; /* the version is polled instead */
		} else {
			b->wake_thread_started = true;
		}
	}
	/* Without the word there is nothing to LISTEN beside: it polls. */
	if (b->wake && opts->listen_store && store_get_backend(opts->listen_store) == STORE_BACKEND_POSTGRES &&
	    pthread_create(&b->listen_thread, NULL, listen_main, b) == 0)
		b->listen_thread_started = true;
	r = -pthread_create(&b->thread, NULL, broker_main, b);
	if (r < 0) {
		snprintf(err, errlen, "lock broker: cannot start its thread: %s", strerror(-r));
		unlink(b->path);
		goto fail;
	}
	*ret = b;
	return 0;
fail:
	atomic_store(&b->stopping, true);
	if (b->wake_thread_started)
		pthread_join(b->wake_thread, NULL);
	stop_listen_thread(b);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	if (b->wake_fd >= 0)
		close(b->wake_fd);
	pthread_mutex_destroy(&b->stats_lock);
	pthread_mutex_destroy(&b->listen_lock);
	pthread_cond_destroy(&b->listen_cond);
	free(b);
	return r;
}

void lock_broker_stop(struct lock_broker *b)
{
	if (!b)
		return;
	atomic_store(&b->stopping, true);
	eventfd_write(b->stop_fd, 1);
	pthread_join(b->thread, NULL);
	if (b->wake_thread_started)
		pthread_join(b->wake_thread, NULL);
	stop_listen_thread(b);
	for (size_t i = 0; i < b->n_conns; i++) {
		close(b->conns[i]->fd);
		free(b->conns[i]);
	}
	free(b->conns);
	locks_row_cache_clear(&b->row);
	unlink(b->path);
	close(b->listen_fd);
	close(b->stop_fd);
	close(b->wake_fd);
	pthread_mutex_destroy(&b->stats_lock);
	pthread_mutex_destroy(&b->listen_lock);
	pthread_cond_destroy(&b->listen_cond);
	free(b);
}
