/* broker.h — the per-host lock broker: one process of the host (the
 * daemon) takes and releases locks for the host's workers, batching their
 * requests into one compare-and-swap per round.
 *
 * Why: with N processes each running its own CAS loop on one document,
 * every change is a write transaction of its own and every waiter polls
 * or is woken to look again. The broker keeps the queue of its local
 * waiters in memory and, per round, commits all pending releases and
 * requests (its waiters' retries included) in one change
 * (lock_doc_apply_batch(), locks_batch.h): a lock that a worker releases
 * is handed to the next local waiter in the same write, and the waiter is
 * told after that write committed. The document stays the single source
 * of truth: every holder and ticket is in it, other hosts and direct
 * callers see them and follow the same rules, `boxd locks list` shows
 * them.
 *
 * Transport: a unix SOCK_SEQPACKET socket at a path (the daemon's:
 * <state_dir>/lock-broker.sock, lock_broker_socket_path()), which workers
 * connect to when they first need a lock (broker_client.h). A worker that
 * cannot connect, or whose connection breaks, goes on with the direct CAS
 * loop (locks.h).
 *
 * Who may ask: the peer's credentials (SO_PEERCRED) at connect: its uid
 * must be ours, root's or `extra_uid` (the [tasks] user), and every
 * request's owner must be the peer itself — its pid, that pid's start
 * time from /proc, and this host — or it is refused with -EPERM, so a
 * local process cannot take or release locks as another one.
 *
 * Threads: the broker runs in a thread of its own with its own store
 * connection, so a slow round (a busy database) never stalls the daemon's
 * loop. A round takes at most `batch_max` requests; the rest wait for the
 * next. A round whose commit fails (the store's busy timeout, an outage)
 * hands its requests back: each waiter goes on directly with its ticket
 * (BROKER_FALLBACK), each release is done by the worker itself.
 *
 * Waking: a helper thread sleeps on the database's wake-up word
 * (lock_wake.h, every store) and wakes the broker when another process of
 * this host changed the document; with no word the broker reads the
 * version every 2 ms while it has waiters (one read for all of them).
 * Other hosts' changes do not bump the word: while the document has owners
 * of other hosts, a MariaDB broker polls the version (2 ms, after 500 ms
 * 20 ms), a PostgreSQL one LISTENs on `listen_store`. Once a
 * second while it has waiters it reaps this host's dead owners in its
 * round, as a direct waiter would.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../store/store.h"

struct lock_broker;

struct lock_broker_opts {
	const char *socket_path;
	/* The broker's own lock-store connection (its thread is the only
	 * user until lock_broker_stop()). */
	struct store *store;
	const char *host;      /* this host's id (lock owners' host) */
	uid_t extra_uid;       /* another uid allowed to connect; (uid_t)-1: none */
	size_t batch_max;      /* requests per round; 0: 128 */
	/* PostgreSQL, optional: a second connection (its own, used by the
	 * broker's LISTEN thread until lock_broker_stop()) on which the
	 * broker LISTENs for other hosts' changes while it has waiters and
	 * the document has other hosts' owners. Without it the broker polls
	 * for them as on MariaDB. */
	struct store *listen_store;
	/* With the wake-up word, the longest sleep before the version is read
	 * anyway (a writer that cannot bump the word); 0: 1000 ms. */
	int safety_poll_ms;
	/* How often, while it has waiters, a round reaps this host's dead
	 * owners; 0: 1000 ms. */
	int reap_interval_ms;
	/* How long a request that can only queue behind a lock another
	 * client of the broker holds waits for a round with other work
	 * before it gets one of its own (broker.c, TICKET_DEFER_MS);
	 * 0: 10 ms. */
	int ticket_defer_ms;
	/* The rounds' commits (a moving average) below which the waiter next
	 * in line for a lock being released is told before the commit
	 * (broker.c, PREPARE_MAX_US); 0: 150 us, negative: never. */
	int prepare_max_us;
};

/* Bind the socket (a stale one is replaced), start the thread. 0 or
 * negative errno with the reason in err. */
int lock_broker_start(const struct lock_broker_opts *opts, struct lock_broker **ret, char *err, size_t errlen);

/* Stop the thread, close every connection (their workers go on
 * directly), remove the socket. Accepts NULL. */
void lock_broker_stop(struct lock_broker *b);

struct lock_broker_stats {
	uint64_t rounds;       /* commits attempted */
	uint64_t requests;     /* acquires, unlocks and cancels served */
	uint64_t grants;
	uint64_t refused_peers; /* requests refused: not the peer's own owner */
	uint64_t fallbacks;    /* requests handed back after a failed round */
	uint64_t retried_rounds; /* rounds the store did not take, tried again with the waiters kept */
	uint64_t prepares;     /* PREPARE hints sent */
};
void lock_broker_stats_get(struct lock_broker *b, struct lock_broker_stats *ret);

/* "<state_dir>/lock-broker.sock" into buf; -ENAMETOOLONG if it does not
 * fit a unix socket address. */
int lock_broker_socket_path(const char *state_dir, char *buf, size_t len);
