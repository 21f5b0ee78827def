/* lock_wake.c — same-host wake-ups for lock waiters on SQLite; see lock_wake.h. */
#include "lock_wake.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAKE_FILE_SIZE 4096

struct lock_wake {
	struct lock_wake *next;
	_Atomic uint32_t *word;
	char path[PATH_MAX];
};

static pthread_mutex_t wakes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lock_wake *wakes; /* one per database file; kept until exit */

static struct lock_wake *open_wake(const char *db)
{
	struct lock_wake *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	char file[PATH_MAX + 16];
	snprintf(w->path, sizeof(w->path), "%s", db);
	snprintf(file, sizeof(file), "%s-lockwake", db);
	/* Who may open the database may open this: the same mode. */
	struct stat st;
	mode_t mode = stat(db, &st) == 0 ? (st.st_mode & 0666) : 0600;
	int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) < 0 || (st.st_size < WAKE_FILE_SIZE && ftruncate(fd, WAKE_FILE_SIZE) < 0)) {
		close(fd);
		goto fail;
	}
	void *m = mmap(NULL, WAKE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		goto fail;
	w->word = m;
	return w;
fail:
	free(w);
	return NULL;
}

struct lock_wake *lock_wake_get(struct store *s)
{
	const char *db = store_sqlite_file(s);
	if (!db)
		return NULL;
	pthread_mutex_lock(&wakes_lock);
	struct lock_wake *w = wakes;
	while (w && strcmp(w->path, db) != 0)
		w = w->next;
	if (!w) {
		w = open_wake(db);
		if (w) {
			w->next = wakes;
			wakes = w;
		}
	}
	pthread_mutex_unlock(&wakes_lock);
	return w;
}

uint32_t lock_wake_seq(const struct lock_wake *w) { return atomic_load_explicit(w->word, memory_order_acquire); }

void lock_wake_bump(struct lock_wake *w)
{
	atomic_fetch_add_explicit(w->word, 1, memory_order_release);
	syscall(SYS_futex, (uint32_t *)w->word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void lock_wake_wait(struct lock_wake *w, uint32_t seen, int64_t timeout_us)
{
	if (timeout_us <= 0)
		return;
	struct timespec ts = { .tv_sec = (time_t)(timeout_us / 1000000), .tv_nsec = (long)(timeout_us % 1000000) * 1000 };
	syscall(SYS_futex, (uint32_t *)w->word, FUTEX_WAIT, seen, &ts, NULL, 0);
}
