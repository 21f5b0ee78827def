/* store_retry.h — riding out a store outage: which failures are worth
 * another try, how long to back off, and when an outage has lasted too
 * long.
 *
 * A database that is busy (SQLite's write lock held by a process that is
 * frozen or slow, a row lock wait that timed out), unreachable (a server
 * restarting, a lost connection that could not be re-established at once)
 * or full (no room for the WAL) usually comes back. Whoever must not give
 * up at the first failure — a worker recording its result, waiting for a
 * lock or renewing its lease; the daemon recording how a worker ended —
 * retries with this one policy:
 *
 *	struct store_retry rt;
 *	store_retry_init(&rt, grace_ms);
 *	while ((r = record(s)) < 0) {
 *		if (store_retry_failed(&rt, r) < 0)
 *			break;                    // not transient, or too long
 *		if (store_retry_first(&rt))
 *			log("store unavailable since %s, retrying", ...);
 *		store_retry_sleep(&rt);
 *	}
 *	int64_t ms = store_retry_done(&rt);   // how long it was out
 *
 * One struct store_retry follows one kind of operation of one thread; it
 * is not shared between threads. Every store connection reconnects by
 * itself on the next statement (store.h), so retrying a statement is also
 * what reconnects, as often as needed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default of [store] outage_grace. */
#define STORE_OUTAGE_GRACE_DEFAULT_MS (5 * 60 * 1000)

/* Backoff between attempts: from the first to the cap, doubling. The cap
 * is short because a worker that holds a lease must get through within
 * the lease once the database is back. */
#define STORE_RETRY_FIRST_MS 20
#define STORE_RETRY_CAP_MS 500

struct store_retry {
	/* > 0: give up once an outage lasted this long; 0: never give up. */
	int64_t grace_ms;
	/* -EBUSY (another connection holds what we need: SQLite's write
	 * lock, a row lock) is waiting, not an outage: it never uses up the
	 * grace. For lock waits, which have no deadline of their own. */
	bool busy_is_waiting;
	/* The current outage (since_mono_ms == 0: none). */
	int64_t since_mono_ms;
	int64_t since_wall_ms;
	unsigned attempts;         /* failures in this outage */
	int last_err;
};

/* Whether `err` (a negative errno from the store) may go away by itself:
 * busy or locked, a lost or refused connection, too many connections, no
 * space left. Bad SQL, constraints, permissions and corruption are not. */
bool store_error_is_transient(int err);

void store_retry_init(struct store_retry *rt, int64_t grace_ms);

/* Record a failure. Returns 0 when the caller should try again (after
 * store_retry_sleep()), or `err` itself when it should give up: the error
 * is not transient, or the outage has lasted grace_ms. */
int store_retry_failed(struct store_retry *rt, int err);

/* True after the first failure of an outage (to report it once). */
bool store_retry_first(const struct store_retry *rt);

/* The backoff before the next attempt, and sleeping it. */
int64_t store_retry_delay_ms(const struct store_retry *rt);
void store_retry_sleep(const struct store_retry *rt);

/* How long the current outage has lasted (0 when there is none). */
int64_t store_retry_elapsed_ms(const struct store_retry *rt);

/* "HH:MM:SS UTC" of the outage's start, for messages such as "store
 * unavailable since 12:03:04 UTC, retrying". */
void store_retry_since(const struct store_retry *rt, char *buf, size_t len);

/* The operation succeeded: end the outage. Returns how long it lasted in
 * ms (0 when there was none). */
int64_t store_retry_done(struct store_retry *rt);
