/* locks.h — multi-process locks kept in the database.
 *
 * The lock document (lock_doc.h) lives in row id=1 of table
 * locks(id, version, data). Every change here is one compare-and-swap:
 *
 *	read (version, data) → compute the new document with a pure function →
 *	UPDATE locks SET data=?, version=version+1 WHERE id=1 AND version=?
 *
 * and zero rows updated means another process won the race: re-read and
 * retry. On SQLite the read and the update run inside BEGIN IMMEDIATE, so the
 * CAS always wins there and waiting is done by SQLite's write lock (except
 * a change that starts from a locks_row_cache, below: its UPDATE alone);
 * on the server databases the WHERE version=? is what keeps it correct. A change
 * that leaves the document byte-identical is not written at all, so pollers
 * that find nothing to do do not wake each other.
 *
 * Waiting: a waiter takes a ticket in the document's FIFO queue, then waits
 * for the version to move and tries again when it has. It is woken rather
 * than polling: every committed change of this host bumps a futex word keyed
 * by the database (lock_wake.h: beside SQLite's file, in /dev/shm for
 * MariaDB and PostgreSQL), on which the host's waiters sleep; a safety
 * poll of 10 s remains. Changes made on other hosts do not bump it: while
 * the document has owners of other hosts, a MariaDB waiter also polls the
 * version (a cheap read; backoff capped at 2 ms for its first 500 ms, then
 * 20 ms) and a PostgreSQL waiter polls for 500 ms, then LISTENs on the
 * notices the lock row's trigger sends (store_listen()). On SQLite the
 * waiter next in line (only holders in front of it) reaps dead owners once
 * a second, so a holder that was SIGKILLed cannot block anyone for long,
 * and the others every 30 s (a reap reads /proc for every owner: N waiters
 * reaping every second would cost N² reads); on the server stores every
 * waiter reaps once a second.
 *
 * All functions take an open store connection (see store.h) and return 0 or
 * a negative errno with store_errmsg() or the function's own message saying
 * what went wrong. A lock document that does not parse is an error
 * (-EBADMSG, "lock document in row locks.id=1 does not parse: ...") and is
 * never reset silently; locks_repair() is the operator's explicit way out.
 */
#pragma once

#include <signal.h>
#include <stdint.h>

#include "../store/store.h"
#include "../store/store_retry.h"
#include "lock_doc.h"

/* Fill `ret` with this process as owner: host id, pid, pid start time.
 * task_id 0 for a process that is not a task. */
int lock_owner_self(struct lock_owner *ret, int64_t task_id);

typedef void (*locks_wait_fn)(const struct lock_blocker *blocker, void *userdata);

/* Multi-host: called after a change that removed the holdings or ticket of
 * an owner of another host because its lease had expired by the database's
 * clock — its host stopped renewing it, so the host is presumed gone. Once
 * per owner; `now_ms` is the database time of that change. */
typedef void (*locks_expired_fn)(const struct lock_owner *owner, int64_t now_ms, void *userdata);

struct locks_acquire_opts {
	/* 0: try once (with one reap of dead owners before giving up);
	 * > 0: wait at most this long; < 0: wait without a deadline. */
	int64_t timeout_ms;
	/* Called when the request starts waiting and whenever what it waits
	 * for changes. */
	locks_wait_fn on_wait;
	void *userdata;
	/* When it becomes non-zero the wait gives up with -ECANCELED (a
	 * worker's SIGTERM handler sets it). */
	const volatile sig_atomic_t *cancel;
	/* Ticket expiry; default 30 s. A waiter refreshes its ticket well
	 * before then; a ticket of a waiter that vanished blocks the queue for
	 * at most this long (less when the reaper sees the waiter is dead). */
	int64_t ticket_ttl_ms;
	/* Multi-host: holders and tickets get lease_expires = db now +
	 * lease_ms. The waiter renews its ticket's lease itself while it
	 * polls (at least every lease_ms / 10); holdings are renewed by their
	 * owner (locks_renew_owner()). 0: none. */
	int64_t lease_ms;
	/* Called with `expired_userdata` for each owner of another host that
	 * this request reaped because its lease expired (a worker passes
	 * task_lock_lease_expired, tasks/task.h, with its store). */
	locks_expired_fn on_expired;
	void *expired_userdata;
	/* Riding out store outages (store/store_retry.h). NULL: any store
	 * error ends the wait at once. Otherwise a transient error (busy,
	 * connection lost or refused, disk full) is retried with the policy's
	 * backoff until it gives up (its grace; a policy with busy_is_waiting
	 * never gives up on -EBUSY: a busy database is part of the wait), and
	 * on_store_error is called after each such failure with the error,
	 * the policy's state and the store's message, and once with err 0
	 * when the store answers again (before the outage is forgotten). The
	 * ticket is kept: a change whose answer was lost may have been
	 * applied, and the next attempt finds it (grants are idempotent). */
	struct store_retry *retry;
	void (*on_store_error)(int err, const struct store_retry *rt, const char *msg, void *userdata);
	/* > 0: while a long-running shared holder (a full backup holding
	 * `platform`) blocks the request, wait outside the queue for at most
	 * this long from the start of the call (lock_doc.h, LOCK_ACQ_DEFER),
	 * then queue. on_wait sees the blocker with `deferred` set. 0: never. */
	int64_t defer_ms;
	/* How often a waiter reaps dead owners, the once-a-second reap of
	 * the overview above; 0: the default, 1 s. (A larger value lets a
	 * test see the waiter's other paths alone.) */
	int64_t reap_interval_ms;
	/* With wake-ups (SQLite's futex word, PostgreSQL's LISTEN) the
	 * longest a waiter sleeps without one: a safety net for writers that
	 * cannot wake it. 0: the default, 10 s. (A test sets it high to
	 * prove that the wake-ups, not this poll, let the waiter through.) */
	int64_t wake_poll_ms;
	/* The ticket this owner already has in the queue (a waiter that the
	 * lock broker was serving goes on waiting directly, broker.h): it
	 * keeps its place. 0: none. */
	int64_t resume_ticket;
};

/* Acquire all of `reqs` for `owner`, all or none.
 * Returns 0 and sets *ret_version (the fencing token: the document version
 * that recorded the grant); -EAGAIN when a try was refused (and *ret_blocker,
 * if given, says why); -ETIMEDOUT when the deadline passed; -ECANCELED when
 * cancelled; -EINVAL for a bad request; -EBADMSG for a corrupt document;
 * other negative errno from the store. A waiter that gives up removes its
 * ticket. */
int locks_acquire(struct store *s, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
		  const struct locks_acquire_opts *opts, int64_t *ret_version, struct lock_blocker *ret_blocker);

/* Unlock: remove the owner's holdings of `names` (all of them if n == 0).
 * *ret_unlocked (optional) gets the number of holdings removed. (Named
 * _unlock, not _release: in boxd as in git, _release frees memory.) */
int locks_unlock(struct store *s, const struct lock_owner *owner, const char *const *names, size_t n,
		 int *ret_unlocked);

/* Remove every holding and ticket of task `task_id`, whichever process
 * took them (the supervisor does this when a worker ends). */
int locks_unlock_task(struct store *s, int64_t task_id, int *ret_unlocked);

/* Remove holders and tickets of dead owners: on this host (`my_host`) an
 * owner whose pid is gone or was reused (start time differs); on another
 * host an owner whose lease has expired by the database's clock (an owner
 * of another host without a lease is never reaped from here). */
int locks_reap(struct store *s, const char *my_host, int *ret_reaped);

/* Remove only the holders and tickets of other hosts whose lease has
 * expired by the database's clock (this host's own dead owners are left to
 * the supervisor, which kills a dead worker's process group before it frees
 * its locks), and call `on_expired` (if not NULL) for each such owner. */
int locks_reap_expired(struct store *s, const char *my_host, locks_expired_fn on_expired, void *userdata,
		       int *ret_reaped);

/* Renew the lease of every holder and ticket on `host` to db now +
 * lease_ms. (Not used by boxd itself any more: a worker renews its own,
 * locks_renew_owner(); kept for tools and tests.) */
int locks_renew_leases(struct store *s, const char *host, int64_t lease_ms, int *ret_renewed);

/* What one renewal of an owner's lease found (locks_renew_owner()). */
struct locks_renewal {
	int renewed;             /* entries whose lease was pushed out */
	size_t holders;          /* the owner's holdings in the document */
	size_t tickets;          /* its tickets */
	int64_t first_expiry_ms; /* earliest lease of its holdings after the change (db clock; 0: none) */
	int64_t now_ms;          /* the database's clock at the change */
};

/* The owner renews its own lease (whoever acts on a lock holds its lease):
 * holders whose lease ends within `holders_within_ms` and tickets whose
 * lease ends within `tickets_within_ms` get lease = db now + lease_ms; a
 * renewal that is not due yet writes nothing. *ret says what the document
 * holds for the owner afterwards: an owner that believes it holds locks
 * and finds none has lost them (another host reaped them once their lease
 * had expired). */
int locks_renew_owner(struct store *s, const struct lock_owner *owner, int64_t lease_ms, int64_t holders_within_ms,
		      int64_t tickets_within_ms, struct locks_renewal *ret);

/* Read the document. ret_doc and ret_text are optional; *ret_text is the
 * document as JSON (lock_doc_format_json(), malloc'ed), whatever format is
 * stored; when it does not parse and ret_doc is NULL, the stored text as it
 * is (and 0). */
int locks_read(struct store *s, struct lock_doc *ret_doc, int64_t *ret_version, char **ret_text);

struct locks_repair_report {
	bool was_valid;        /* nothing needed repair */
	char *old_text;        /* the document as it was (malloc'ed) */
	int64_t old_version;
	int64_t new_version;
	int holders_kept;
	int entries_dropped;   /* holders and tickets that could not be salvaged */
	char problem[256];     /* why the old document did not parse */
};

/* Operator repair of a document that does not parse, or parses but breaks
 * an invariant (lock_doc_verify): keeps every holder entry that still
 * parses and can stand with those before it (so live holders stay
 * protected; of conflicting holders, e.g. two exclusive holders of one
 * name, the first in document order stays and the later ones are dropped),
 * drops the rest and the wait queue (waiters re-queue by themselves), and
 * sets nextTicket past any ticket ever issued. A valid document is left alone. The caller
 * keeps report->old_text for the record. Free with locks_repair_report_release(). */
int locks_repair(struct store *s, struct locks_repair_report *report);
void locks_repair_report_release(struct locks_repair_report *report);

/* The document's version (a cheap read: has anything changed?). */
int locks_version(struct store *s, int64_t *ret);

struct lock_batch_item;
struct locks_row_cache;
/* Group commit (the lock broker, broker.h): apply `items` with
 * lock_doc_apply_batch() (locks_batch.h) in one compare-and-swap, retried
 * on a lost race like every change here; each item's results are those of
 * the attempt that committed. With `reap_host`, owners of that host whose
 * process is gone are reaped first (other hosts' expired leases are left
 * to the daemon's housekeeping, which fails their tasks). *ret_version:
 * the version after the change. *ret_other_hosts (optional): whether the
 * document it wrote has owners of a host other than `my_host` (holders or
 * tickets): only then can a change that does not bump this host's wake-up
 * word (lock_wake.h) let a waiter through. */
int locks_commit_batch(struct store *s, struct lock_batch_item *items, size_t n, const char *reap_host,
		       const char *my_host, struct locks_row_cache *cache, int64_t *ret_version,
		       bool *ret_other_hosts);

/* The lock row as one writer last read or wrote it, for
 * locks_commit_batch() (optional). A change then starts from it instead
 * of reading the row: on the server stores its compare-and-swap is the
 * change's one round trip instead of two (a SELECT, then the UPDATE); on
 * SQLite it is one autocommitted UPDATE instead of BEGIN IMMEDIATE, a
 * SELECT, the UPDATE and COMMIT (about 3 of the broker's 33 us a round,
 * 8 processes on one name). If
 * anyone else changed the row meanwhile, the swap matches no row and the
 * change reads the row and runs again, as after any lost race; so the
 * cache only saves time when its writer is the row's usual writer (the
 * broker of the only host). The database's clock is the one read with the
 * row, moved on by this host's monotonic clock; the row (and the clock)
 * is read again at least every LOCKS_ROW_CACHE_MAX_MS (on SQLite the
 * clock is this host's). Zero-initialise; locks_row_cache_clear() frees it. */
struct locks_row_cache {
	bool valid;
	int64_t version;
	char *text;
	int64_t read_mono_ms;    /* when the row and the clock were last read */
	int64_t clock_offset_ms; /* the database's clock minus now_mono_ms() then */
};
#define LOCKS_ROW_CACHE_MAX_MS 1000
void locks_row_cache_clear(struct locks_row_cache *c);

/* Per-process counters, for tests and benchmarks. */
struct locks_stats {
	uint64_t cas_commits;     /* document writes */
	uint64_t cas_conflicts;   /* CAS lost to another writer: retried */
	uint64_t cas_noops;       /* computed document identical: not written */
	uint64_t polls;           /* version reads while waiting */
	uint64_t row_cache_hits;  /* changes that started from a locks_row_cache */
};
void locks_stats_get(struct locks_stats *ret);
