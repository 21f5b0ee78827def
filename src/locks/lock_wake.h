/* lock_wake.h — same-host wake-ups for lock waiters, on every store.
 *
 * Waiting on the lock document was polling: every waiter re-read the row's
 * version every 0.1–2 ms. The processes of one host that change the
 * document can wake that host's waiters instead: a 32-bit counter in a
 * small shared file, bumped after every committed change, with FUTEX_WAKE;
 * a waiter takes the counter before it reads the version and sleeps in
 * FUTEX_WAIT on it (futexes on a shared file mapping work across
 * processes). A change made after the waiter read the version bumps the
 * counter after its commit, so the wait returns at once: no wake-up is
 * lost.
 *
 * The file is keyed by the database, so that every process of this host
 * on it finds the same word: on SQLite `<db>-lockwake` beside the database
 * file (mode of the database); on MariaDB and PostgreSQL
 * /dev/shm/boxd-lockwake-<key> with the key from store_db_key() (a digest
 * of the DSN's hosts, port, socket and database name), mode 0600, and
 * refused when another user owns it (the directory is $BOXD_LOCK_WAKE_DIR
 * when set: the test env's own, removed with it). A process that cannot map the word
 * (another user, no /dev/shm, a different spelling of the DSN) neither
 * waits on it nor bumps it: waiters keep a timed poll for such writers.
 * Changes made on other hosts never bump it: locks.c polls (MariaDB) or
 * LISTENs (PostgreSQL) for them while the document has owners of other
 * hosts.
 */
#pragma once

#include <stdint.h>

#include "../store/store.h"

struct lock_wake;

/* The wake-up word of the database behind `s`, or NULL (the file cannot
 * be opened or mapped, or the database has no key). Opened once per
 * database and process (also a failure is remembered), kept until exit. */
struct lock_wake *lock_wake_get(struct store *s);

/* The file of the word of the database `opts` opens (a test that drops
 * its database removes it too). 0, or negative errno. */
int lock_wake_file_of(const struct store_options *opts, char *ret, size_t len);

uint32_t lock_wake_seq(const struct lock_wake *w);

/* After a committed change: bump the counter and wake every waiter. */
void lock_wake_bump(struct lock_wake *w);

/* Sleep until the counter differs from `seen` or timeout_us passed (or a
 * signal). */
void lock_wake_wait(struct lock_wake *w, uint32_t seen, int64_t timeout_us);

/* A lock broker's watcher: lock_wake_wait(), woken by every bump except
 * those of the broker's own thread, which called
 * lock_wake_this_thread_is_broker() with the same bit (the broker knows
 * its own changes). The bit is lock_wake_watcher_bit(), one per process. */
uint32_t lock_wake_watcher_bit(void);
void lock_wake_this_thread_is_broker(uint32_t watcher_bit);
void lock_wake_watch(struct lock_wake *w, uint32_t seen, int64_t timeout_us, uint32_t watcher_bit);
