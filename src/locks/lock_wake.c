/* lock_wake.c — same-host wake-ups for lock waiters; see lock_wake.h. */
#include "lock_wake.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAKE_FILE_SIZE 4096
/* Server databases: the word is in shared memory, named by the database
 * (store_db_key()), so every process of this host on it finds it. The
 * test env points BOXD_LOCK_WAKE_DIR into its own directory, so that the
 * files of its many short-lived databases go away with it. */
#define WAKE_SHM_DIR "/dev/shm"
#define WAKE_DIR_ENV "BOXD_LOCK_WAKE_DIR"

struct lock_wake {
	struct lock_wake *next;
	_Atomic uint32_t *word;
	char path[PATH_MAX]; /* of the word's file */
};

static pthread_mutex_t wakes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lock_wake *wakes; /* one per database; kept until exit */

/* Map w->path (created with `mode` if missing) into w->word.
 * `own_only`: refuse a file that another user owns (one planted in a
 * shared directory, which that user could truncate under our mapping:
 * SIGBUS). */
static void map_word(struct lock_wake *w, mode_t mode, bool own_only)
{
	int fd = open(w->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (own_only && st.st_uid != geteuid()) ||
	    (st.st_size < WAKE_FILE_SIZE && ftruncate(fd, WAKE_FILE_SIZE) < 0)) {
		close(fd);
		return;
	}
	void *m = mmap(NULL, WAKE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m != MAP_FAILED)
		w->word = m;
}

static int shm_file(const char *key, char *ret, size_t len)
{
	const char *dir = getenv(WAKE_DIR_ENV);
	if (!dir || !*dir)
		dir = WAKE_SHM_DIR;
	return snprintf(ret, len, "%s/boxd-lockwake-%.32s", dir, key) < (int)len ? 0 : -ENAMETOOLONG;
}

int lock_wake_file_of(const struct store_options *opts, char *ret, size_t len)
{
	if (opts->backend == STORE_BACKEND_SQLITE)
		return snprintf(ret, len, "%s-lockwake", opts->sqlite_path) < (int)len ? 0 : -ENAMETOOLONG;
	char key[65];
	int r = store_db_key_of(opts, key);
	return r < 0 ? r : shm_file(key, ret, len);
}

struct lock_wake *lock_wake_get(struct store *s)
{
	/* SQLite: beside the database file. A server database: in shared
	 * memory, named by the database. */
	char file[PATH_MAX];
	const char *db = store_sqlite_file(s), *key = db ? NULL : store_db_key(s);
	if (!db && !key)
		return NULL;
	if (db ? snprintf(file, sizeof(file), "%s-lockwake", db) >= (int)sizeof(file) : shm_file(key, file, sizeof(file)) < 0)
		return NULL;
	pthread_mutex_lock(&wakes_lock);
	struct lock_wake *w = wakes;
	while (w && strcmp(w->path, file) != 0)
		w = w->next;
	if (!w && (w = calloc(1, sizeof(*w)))) {
		/* Tried once: a word that cannot be mapped (another user's
		 * file, no /dev/shm) stays NULL, and its waiters poll. */
		snprintf(w->path, sizeof(w->path), "%s", file);
		struct stat st;
		if (db) /* who may open the database may open this: the same mode */
			map_word(w, stat(db, &st) == 0 ? (st.st_mode & 0666) : 0600, false);
		else
			map_word(w, 0600, true);
		w->next = wakes;
		wakes = w;
	}
	pthread_mutex_unlock(&wakes_lock);
	return w && w->word ? w : NULL;
}

uint32_t lock_wake_seq(const struct lock_wake *w) { return atomic_load_explicit(w->word, memory_order_acquire); }

/* Who sleeps on the word, as futex bitset bits: bit 0 every waiter of
 * lock_wake_wait(), one of bits 1..31 a broker's watcher
 * (lock_wake_watch()). A broker thread's own bumps leave its watcher's bit
 * out: the broker knows of its own changes, and waking its watcher for
 * them cost a thread wake-up, an eventfd and a read of the version per
 * round. */
#define WAITER_BIT 1u
static __thread uint32_t own_watcher_bit; /* set in a broker's thread */

uint32_t lock_wake_watcher_bit(void)
{
	/* Two brokers of one host on one database (two daemons on one
	 * server database) whose pids give the same bit do not wake each
	 * other: they still poll (broker.c, poll_cap_ms()). */
	return 1u << (1 + (uint32_t)getpid() % 31);
}

void lock_wake_this_thread_is_broker(uint32_t watcher_bit) { own_watcher_bit = watcher_bit; }

void lock_wake_bump(struct lock_wake *w)
{
	atomic_fetch_add_explicit(w->word, 1, memory_order_release);
	syscall(SYS_futex, (uint32_t *)w->word, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL,
		FUTEX_BITSET_MATCH_ANY & ~own_watcher_bit);
}

static void wait_bits(struct lock_wake *w, uint32_t seen, int64_t timeout_us, uint32_t bits)
{
	if (timeout_us <= 0)
		return;
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(timeout_us / 1000000);
	ts.tv_nsec += (long)(timeout_us % 1000000) * 1000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	syscall(SYS_futex, (uint32_t *)w->word, FUTEX_WAIT_BITSET, seen, &ts, NULL, bits);
}

void lock_wake_wait(struct lock_wake *w, uint32_t seen, int64_t timeout_us)
{
	wait_bits(w, seen, timeout_us, WAITER_BIT);
}

void lock_wake_watch(struct lock_wake *w, uint32_t seen, int64_t timeout_us, uint32_t watcher_bit)
{
	wait_bits(w, seen, timeout_us, watcher_bit);
}
