/* lock_wake.h — same-host wake-ups for lock waiters on SQLite.
 *
 * Waiting on the lock document was polling: every waiter re-read the row's
 * version every 0.1–2 ms. On SQLite every process that changes the document
 * runs on this host, so a change can wake the waiters instead: a 32-bit
 * counter in a small file beside the database (`<db>-lockwake`, mapped
 * shared), bumped after every committed change, with FUTEX_WAKE; a waiter
 * takes the counter before it reads the version and sleeps in FUTEX_WAIT on
 * it (futexes on a shared file mapping work across processes). A change
 * made after the waiter read the version bumps the counter after its
 * commit, so the wait returns at once: no wake-up is lost. A process that
 * cannot open the file (another user) neither waits on it nor bumps it:
 * waiters keep a timed poll for such writers.
 */
#pragma once

#include <stdint.h>

#include "../store/store.h"

struct lock_wake;

/* The wake-up word of the database behind `s`, or NULL (server backends,
 * or the file cannot be opened or mapped). Opened once per database file
 * and process, kept until exit. */
struct lock_wake *lock_wake_get(struct store *s);

uint32_t lock_wake_seq(const struct lock_wake *w);

/* After a committed change: bump the counter and wake every waiter. */
void lock_wake_bump(struct lock_wake *w);

/* Sleep until the counter differs from `seen` or timeout_us passed (or a
 * signal). */
void lock_wake_wait(struct lock_wake *w, uint32_t seen, int64_t timeout_us);
