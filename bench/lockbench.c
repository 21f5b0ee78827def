/* lockbench.c — one run of the lock benchmark (scripts/bench.sh, `make bench`).
 *
 *	lockbench --impl IMPL --procs N --iterations M --names distinct|shared
 *		  [--dir DIR] [--dsn DSN] [--timeout SECONDS] [--seconds S]
 *		  [--held K] [--queued Q] [--broker]
 *
 * One run = one implementation × N processes × M acquire+release pairs each,
 * on distinct names (process i uses "bench:i") or on one shared name
 * ("bench:shared"). With --seconds S a process starts no new pair once S
 * seconds have passed since the start (M is then a cap). The parent prepares the database, forks N children; each
 * opens its own connection, then all are released together (a futex in
 * shared memory) and do their M pairs back to back. Output: one line of JSON.
 *
 * Implementations:
 *   boxd-sqlite, boxd-mysql, boxd-postgres   locks_acquire/locks_unlock
 *	through the store, waiting with a deadline. SQLite opens the database
 *	like the daemon's lock connection (WAL, synchronous=NORMAL);
 *	boxd-sqlite-full uses synchronous=FULL (what every other row pays).
 *   flock         flock(2) on DIR/<name>, one fd per process and name
 *   getlock       MariaDB SELECT GET_LOCK(name, T) / RELEASE_LOCK(name)
 *   pg-advisory   SELECT pg_advisory_lock(hashtext(name)) / _unlock
 *   update-sqlite, update-mysql, update-postgres   the floor: one
 *	autocommitted `UPDATE bench SET n = n + 1 WHERE id = ?` per "pair",
 *	one row per name (update-sqlite-full: synchronous=FULL)
 *
 * --broker (boxd rows only): a per-host lock broker (src/locks/broker.h,
 * the daemon's code) runs in one more child with its own connection, on
 * a socket in a fresh temp dir, and the N processes take and release
 * through it (locks_acquire_brokered / locks_unlock_brokered). Its CPU is
 * counted with the workers'. The JSON line says "broker": true.
 *
 * --held K / --queued Q (boxd rows only): before the run the document gets K
 * other holders ("held:0".."held:K-1", exclusive) and Q tickets (each
 * waiting for "held:0", or for "queued:0" when K is 0), all owned by the
 * parent, which stays alive (so no reap removes them), under distinct task
 * ids. The K sweep: how the cost of one pair grows with the size of the
 * document.
 *
 * SQLite databases live in DIR (fresh files per run); the server ones use
 * the database named in DSN (the boxd schema is migrated there; the table
 * `bench` is created there for the update runs).
 *
 * Measures:
 *   pairs_per_s   N*M / wall time (first start to last end, from the
 *		   children's own clocks, so connection set-up is not counted)
 *   pair_p50/p99  acquire start → release end of one pair
 *   handoff_p50/p99 (shared name, N > 1): every holding's acquire start,
 *		   acquire end, release start and release end are recorded
 *		   (CLOCK_MONOTONIC) in shared memory. Holdings of one exclusive
 *		   name are serialized, so sorted by acquire end they are in
 *		   grant order; for each holding i whose acquirer was already
 *		   waiting when holding i-1 began its release (a contended
 *		   hand-off) the latency is acquire_end[i] - release_start[i-1]:
 *		   from the holder deciding to let go to the waiter holding it.
 *		   Not meaningful for the update rows (no holding): null.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "locks/broker.h"
#include "locks/broker_client.h"
#include "locks/locks.h"
#include "store/store.h"

enum kind { K_BOXD, K_FLOCK, K_GETLOCK, K_PGADV, K_UPDATE };

struct impl {
	const char *name;
	enum kind kind;
	enum store_backend backend;
	bool full; /* SQLite synchronous=FULL */
};

static const struct impl impls[] = {
	{ "boxd-sqlite", K_BOXD, STORE_BACKEND_SQLITE, false },
	{ "boxd-sqlite-full", K_BOXD, STORE_BACKEND_SQLITE, true },
	{ "boxd-mysql", K_BOXD, STORE_BACKEND_MYSQL, false },
	{ "boxd-postgres", K_BOXD, STORE_BACKEND_POSTGRES, false },
	{ "flock", K_FLOCK, STORE_BACKEND_SQLITE, false },
	{ "getlock", K_GETLOCK, STORE_BACKEND_MYSQL, false },
	{ "pg-advisory", K_PGADV, STORE_BACKEND_POSTGRES, false },
	{ "update-sqlite", K_UPDATE, STORE_BACKEND_SQLITE, false },
	{ "update-sqlite-full", K_UPDATE, STORE_BACKEND_SQLITE, true },
	{ "update-mysql", K_UPDATE, STORE_BACKEND_MYSQL, false },
	{ "update-postgres", K_UPDATE, STORE_BACKEND_POSTGRES, false },
};

struct config {
	const struct impl *impl;
	int procs;
	long iterations;
	bool shared;
	const char *dir;
	const char *dsn;
	int64_t timeout_ms;
	int64_t max_ns; /* --seconds: stop starting pairs after this long; 0: no limit */
	long held, queued; /* --held, --queued: the document's size before the run */
	const char *broker; /* --broker: the broker's socket; NULL: direct */
};

/* One holding (or one UPDATE), nanoseconds of CLOCK_MONOTONIC. */
struct rec {
	int64_t acq_start, acq_end, rel_start, rel_end;
	int32_t proc;
};

struct child_result {
	int64_t start_ns, end_ns;
	long pairs;
	struct locks_stats stats;
	int done;
	char error[400];
};

struct shm {
	_Atomic int ready;
	_Atomic int go; /* futex word */
	int64_t deadline_ns; /* set before go; 0: none */
	struct child_result res[];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "lockbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static struct child_result *g_res; /* this child's slot, for child_fail */

static void __attribute__((noreturn, format(printf, 1, 2))) child_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_res->error, sizeof(g_res->error), fmt, ap);
	va_end(ap);
	fprintf(stderr, "lockbench[%d]: %s\n", (int)getpid(), g_res->error);
	_exit(1);
}

static void sqlite_path(const struct config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.db", cfg->dir, cfg->impl->kind == K_UPDATE ? "update" : "locks");
}

static struct store *open_store(const struct config *cfg, bool migrate, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct store_options o = {
		.backend = cfg->impl->backend,
		/* The daemon's lock connection: synchronous=NORMAL. */
		.relaxed_durability = !cfg->impl->full,
		.no_migrate = !migrate,
		.busy_timeout_ms = (int)cfg->timeout_ms,
	};
	if (o.backend == STORE_BACKEND_SQLITE) {
		sqlite_path(cfg, path, sizeof(path));
		o.sqlite_path = path;
	} else {
		o.dsn = cfg->dsn;
	}
	struct store *s = NULL;
	int r = store_open(&o, &s, err, errlen);
	return r < 0 ? NULL : s;
}

static void name_of(const struct config *cfg, int proc, char *buf, size_t len)
{
	if (cfg->shared)
		snprintf(buf, len, "bench:shared");
	else
		snprintf(buf, len, "bench:%d", proc);
}

/* ---- preparation (parent) ------------------------------------------------ */

static void remove_sqlite_files(const struct config *cfg)
{
	char path[PATH_MAX + 8];
	const char *suffix[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < 4; i++) {
		char base[PATH_MAX];
		sqlite_path(cfg, base, sizeof(base));
		snprintf(path, sizeof(path), "%s%s", base, suffix[i]);
		unlink(path);
	}
}

/* The K sweep's ballast: K holders and Q tickets of the parent (alive for
 * the whole run) under task ids of their own, written in one change. */
static void fill_document(const struct config *cfg, struct store *s)
{
	struct lock_owner me;
	int64_t now;
	if (lock_owner_self(&me, 0) < 0 || store_now_ms(s, &now) < 0)
		die("owner or clock: %s", store_errmsg(s));
	struct lock_doc doc;
	lock_doc_init(&doc);
	doc.holders = calloc((size_t)cfg->held + 1, sizeof(*doc.holders));
	doc.waiters = calloc((size_t)cfg->queued + 1, sizeof(*doc.waiters));
	if (!doc.holders || !doc.waiters)
		die("out of memory");
	for (long i = 0; i < cfg->held; i++) {
		struct lock_holder *h = &doc.holders[doc.n_holders++];
		snprintf(h->lock.name, sizeof(h->lock.name), "held:%ld", i);
		h->lock.mode = LOCK_EXCLUSIVE;
		h->owner = me;
		h->owner.task_id = 1000000 + i;
		h->owner.acquired_at_ms = now;
	}
	for (long i = 0; i < cfg->queued; i++) {
		struct lock_waiter *w = &doc.waiters[doc.n_waiters++];
		w->ticket = doc.next_ticket++;
		w->owner = me;
		w->owner.task_id = 2000000 + i;
		w->expires_ms = now + 3600 * 1000; /* outlives the run */
		w->locks = calloc(1, sizeof(*w->locks));
		if (!w->locks)
			die("out of memory");
		snprintf(w->locks[0].name, sizeof(w->locks[0].name), "%s", cfg->held ? "held:0" : "queued:0");
		w->n_locks = 1;
	}
	char *text;
	if (lock_doc_format(&doc, &text) < 0)
		die("format the document: out of memory");
	lock_doc_release(&doc);
	if (store_run(s, "UPDATE locks SET data = ?, version = version + 1 WHERE id = 1", "s", text) != 1)
		die("write the document: %s", store_errmsg(s));
	free(text);
}

static void prepare(const struct config *cfg)
{
	const struct impl *im = cfg->impl;
	char err[512];
	if (im->kind == K_FLOCK) {
		for (int i = 0; i < cfg->procs; i++) {
			char name[64], path[PATH_MAX];
			name_of(cfg, i, name, sizeof(name));
			snprintf(path, sizeof(path), "%s/%s", cfg->dir, name);
			int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0)
				die("create %s: %m", path);
			close(fd);
		}
		return;
	}
	if (im->kind == K_GETLOCK || im->kind == K_PGADV)
		return;
	if (im->backend == STORE_BACKEND_SQLITE)
		remove_sqlite_files(cfg);
	struct store *s = open_store(cfg, im->kind == K_BOXD, err, sizeof(err));
	if (!s)
		die("cannot open the store: %s", err);
	if (im->kind == K_BOXD) {
		/* A clean document: reap owners a previous, killed run left. */
		char host[LOCK_HOST_MAX];
		if (host_owner_id_get(host, sizeof(host)) < 0 || locks_reap(s, host, NULL) < 0)
			die("reap: %s", store_errmsg(s));
		struct lock_doc doc;
		if (locks_read(s, &doc, NULL, NULL) < 0)
			die("read the lock document: %s", store_errmsg(s));
		if (doc.n_holders || doc.n_waiters)
			fprintf(stderr, "lockbench: warning: the lock document has %zu holder(s) and %zu waiter(s) "
					"of live processes\n", doc.n_holders, doc.n_waiters);
		lock_doc_release(&doc);
		if (cfg->held || cfg->queued)
			fill_document(cfg, s);
	} else {
		if (store_run(s, "CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)", "") < 0 ||
		    store_run(s, "DELETE FROM bench", "") < 0)
			die("create table bench: %s", store_errmsg(s));
		for (int i = 0; i < cfg->procs; i++)
			if (store_run(s, "INSERT INTO bench (id, n) VALUES (?, 0)", "i", (int64_t)i) < 0)
				die("insert into bench: %s", store_errmsg(s));
	}
	store_close(s);
}

/* ---- the child ----------------------------------------------------------- */

struct worker {
	const struct config *cfg;
	int proc;
	char name[64];
	struct store *s;
	struct lock_owner owner;
	struct lock_req req;
	int fd;
	int64_t row;
};

/* Run a statement that returns one row; return its first column (or 1 when
 * `want_col` is false). */
static int64_t select_one(struct worker *w, const char *sql, bool want_col)
{
	struct store_stmt *st;
	int r = store_query(w->s, &st, sql, "s", w->name);
	if (r < 0)
		child_fail("%s: %s", sql, store_errmsg(w->s));
	r = store_step(st);
	if (r != 1) {
		const char *msg = store_errmsg(w->s);
		store_finalize(st);
		child_fail("%s: %s", sql, r == 0 ? "no row" : msg);
	}
	int64_t v = want_col ? store_col_int64(st, 0) : 1;
	while ((r = store_step(st)) == 1)
		;
	store_finalize(st);
	return v;
}

static void worker_open(struct worker *w)
{
	const struct config *cfg = w->cfg;
	char err[512];
	name_of(cfg, w->proc, w->name, sizeof(w->name));
	switch (cfg->impl->kind) {
	case K_FLOCK: {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", cfg->dir, w->name);
		w->fd = open(path, O_RDWR | O_CLOEXEC);
		if (w->fd < 0)
			child_fail("open %s: %s", path, strerror(errno));
		return;
	}
	case K_BOXD: {
		int r = lock_owner_self(&w->owner, 0);
		if (r < 0)
			child_fail("lock_owner_self: %s", strerror(-r));
		snprintf(w->req.name, sizeof(w->req.name), "%s", w->name);
		w->req.mode = LOCK_EXCLUSIVE;
		break;
	}
	case K_UPDATE:
		w->row = cfg->shared ? 0 : w->proc;
		break;
	default:
		break;
	}
	w->s = open_store(cfg, false, err, sizeof(err));
	if (!w->s)
		child_fail("cannot open the store: %s", err);
	/* Warm the statement cache (server-side prepares) outside the clock. */
	if (cfg->impl->kind == K_BOXD) {
		int64_t v;
		if (locks_read(w->s, NULL, &v, NULL) < 0)
			child_fail("read the lock document: %s", store_errmsg(w->s));
	}
}

static void do_acquire(struct worker *w)
{
	switch (w->cfg->impl->kind) {
	case K_BOXD: {
		struct locks_acquire_opts o = { .timeout_ms = w->cfg->timeout_ms };
		int64_t token;
		struct lock_blocker b;
		int r = locks_acquire_brokered(w->cfg->broker, w->s, &w->owner, &w->req, 1, &o, &token, &b);
		if (r < 0)
			child_fail("acquire %s: %s (%s)", w->name, strerror(-r), r == -ETIMEDOUT ? "" : store_errmsg(w->s));
		break;
	}
	case K_FLOCK:
		while (flock(w->fd, LOCK_EX) < 0)
			if (errno != EINTR)
				child_fail("flock %s: %s", w->name, strerror(errno));
		break;
	case K_GETLOCK: {
		char sql[64];
		snprintf(sql, sizeof(sql), "SELECT GET_LOCK(?, %d)", (int)(w->cfg->timeout_ms / 1000));
		if (select_one(w, sql, true) != 1)
			child_fail("GET_LOCK(%s) timed out", w->name);
		break;
	}
	case K_PGADV:
		select_one(w, "SELECT pg_advisory_lock(hashtext(?))", false);
		break;
	case K_UPDATE: {
		int64_t n = store_run(w->s, "UPDATE bench SET n = n + 1 WHERE id = ?", "i", w->row);
		if (n != 1)
			child_fail("UPDATE bench: %s", n < 0 ? store_errmsg(w->s) : "no row");
		break;
	}
	}
}

static void do_release(struct worker *w)
{
	switch (w->cfg->impl->kind) {
	case K_BOXD: {
		const char *names[] = { w->name };
		int released = 0;
		int r = locks_unlock_brokered(w->cfg->broker, w->s, &w->owner, names, 1, &released);
		if (r < 0 || released != 1)
			child_fail("release %s: %s", w->name, r < 0 ? store_errmsg(w->s) : "was not held");
		break;
	}
	case K_FLOCK:
		if (flock(w->fd, LOCK_UN) < 0)
			child_fail("unlock %s: %s", w->name, strerror(errno));
		break;
	case K_GETLOCK:
		if (select_one(w, "SELECT RELEASE_LOCK(?)", true) != 1)
			child_fail("RELEASE_LOCK(%s) did not release", w->name);
		break;
	case K_PGADV:
		if (select_one(w, "SELECT CASE WHEN pg_advisory_unlock(hashtext(?)) THEN 1 ELSE 0 END", true) != 1)
			child_fail("pg_advisory_unlock(%s) did not release", w->name);
		break;
	case K_UPDATE:
		break; /* the UPDATE was the whole "pair" */
	}
}

static void futex_wait(_Atomic int *addr, int val)
{
	syscall(SYS_futex, (int *)addr, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic int *addr)
{
	syscall(SYS_futex, (int *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void child_main(const struct config *cfg, int proc, struct shm *shm, struct rec *recs)
{
	g_res = &shm->res[proc];
	struct worker w = { .cfg = cfg, .proc = proc, .fd = -1 };
	worker_open(&w);
	atomic_fetch_add(&shm->ready, 1);
	while (atomic_load(&shm->go) == 0)
		futex_wait(&shm->go, 0);

	struct rec *mine = recs + (size_t)proc * (size_t)cfg->iterations;
	g_res->start_ns = now_ns();
	for (long i = 0; i < cfg->iterations; i++) {
		if (shm->deadline_ns && now_ns() >= shm->deadline_ns)
			break;
		struct rec *r = &mine[i];
		r->proc = proc;
		r->acq_start = now_ns();
		do_acquire(&w);
		r->acq_end = now_ns();
		r->rel_start = now_ns();
		do_release(&w);
		r->rel_end = now_ns();
		g_res->pairs = i + 1;
	}
	g_res->end_ns = now_ns();
	locks_stats_get(&g_res->stats);
	g_res->done = 1;
	if (w.fd >= 0)
		close(w.fd);
	store_close(w.s);
	_exit(0);
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_rec_acq_end(const void *a, const void *b)
{
	int64_t x = ((const struct rec *)a)->acq_end, y = ((const struct rec *)b)->acq_end;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct_ms(const int64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return (double)v[i - 1] / 1e6;
}

static void json_ms(FILE *f, const char *key, const int64_t *v, size_t n, double q)
{
	if (n == 0)
		fprintf(f, ", \"%s\": null", key);
	else
		fprintf(f, ", \"%s\": %.3f", key, pct_ms(v, n, q));
}

static double load1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: lockbench --impl IMPL --procs N --iterations M --names distinct|shared\n"
			"                 [--dir DIR] [--dsn DSN] [--timeout SECONDS] [--seconds S] [--held K] [--queued Q]\n"
			"IMPL: ");
	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
		fprintf(stderr, "%s%s", i ? ", " : "", impls[i].name);
	fputc('\n', stderr);
	exit(2);
}

static char broker_dir[] = "/tmp/lockbench-broker.XXXXXX";

/* The broker in a child of its own, with its own connection; returns once
 * it listens. */
static pid_t start_broker(struct config *cfg)
{
	static char sock[128];
	if (!mkdtemp(broker_dir))
		die("mkdtemp: %m");
	snprintf(sock, sizeof(sock), "%s/lock-broker.sock", broker_dir);
	cfg->broker = sock;
	int fds[2];
	if (pipe(fds) < 0)
		die("pipe: %m");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %m");
	if (pid == 0) {
		char err[512], host[LOCK_HOST_MAX];
		struct store *s = open_store(cfg, false, err, sizeof(err));
		struct lock_broker *b;
		if (!s || host_owner_id_get(host, sizeof(host)) < 0)
			_exit(1);
		struct lock_broker_opts o = { .socket_path = sock, .store = s, .host = host, .extra_uid = (uid_t)-1 };
		if (lock_broker_start(&o, &b, err, sizeof(err)) < 0) {
			fprintf(stderr, "lockbench: %s\n", err);
			_exit(1);
		}
		(void)!write(fds[1], "R", 1);
		for (;;)
			pause();
	}
	close(fds[1]);
	char c;
	if (read(fds[0], &c, 1) != 1)
		die("the lock broker did not start");
	close(fds[0]);
	return pid;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "impl", required_argument, NULL, 'i' },
		{ "procs", required_argument, NULL, 'p' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "names", required_argument, NULL, 'N' },
		{ "dir", required_argument, NULL, 'd' },
		{ "dsn", required_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "held", required_argument, NULL, 'H' },
		{ "queued", required_argument, NULL, 'Q' },
		{ "broker", no_argument, NULL, 'B' },
		{ 0 },
	};
	struct config cfg = { .procs = 1, .iterations = 1000, .timeout_ms = 120000 };
	const char *names = "distinct";
	int c;
	bool want_broker = false;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
				if (strcmp(optarg, impls[i].name) == 0)
					cfg.impl = &impls[i];
			if (!cfg.impl)
				usage();
			break;
		case 'p': cfg.procs = atoi(optarg); break;
		case 'n': cfg.iterations = atol(optarg); break;
		case 'N': names = optarg; break;
		case 'd': cfg.dir = optarg; break;
		case 'D': cfg.dsn = optarg; break;
		case 't': cfg.timeout_ms = atol(optarg) * 1000; break;
		case 'S': cfg.max_ns = (int64_t)(atof(optarg) * 1e9); break;
		case 'H': cfg.held = atol(optarg); break;
		case 'Q': cfg.queued = atol(optarg); break;
		case 'B': want_broker = true; break;
		default: usage();
		}
	}
	if (optind != argc || !cfg.impl || cfg.procs < 1 || cfg.procs > 256 || cfg.iterations < 1 ||
	    cfg.timeout_ms < 1000 || cfg.held < 0 || cfg.queued < 0 || cfg.held > 100000 || cfg.queued > 100000)
		usage();
	if ((cfg.held || cfg.queued) && cfg.impl->kind != K_BOXD)
		die("--held and --queued are for the boxd rows");
	if (strcmp(names, "shared") == 0)
		cfg.shared = true;
	else if (strcmp(names, "distinct") != 0)
		usage();
	bool need_dir = cfg.impl->kind == K_FLOCK || cfg.impl->backend == STORE_BACKEND_SQLITE;
	if (need_dir && !cfg.dir)
		die("%s needs --dir", cfg.impl->name);
	if (cfg.impl->backend != STORE_BACKEND_SQLITE && !cfg.dsn)
		die("%s needs --dsn", cfg.impl->name);

	prepare(&cfg);
	if (want_broker && cfg.impl->kind != K_BOXD)
		die("--broker is for the boxd rows");
	pid_t broker = want_broker ? start_broker(&cfg) : 0;

	size_t maxrec = (size_t)cfg.procs * (size_t)cfg.iterations;
	size_t shm_size = sizeof(struct shm) + (size_t)cfg.procs * sizeof(struct child_result);
	struct shm *shm = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct rec *recs = mmap(NULL, maxrec * sizeof(struct rec), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				-1, 0);
	if (shm == MAP_FAILED || recs == MAP_FAILED)
		die("mmap: %m");
	fflush(NULL);
	pid_t *pids = calloc((size_t)cfg.procs, sizeof(pid_t));
	for (int i = 0; i < cfg.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %m");
		if (pids[i] == 0)
			child_main(&cfg, i, shm, recs);
	}
	/* Release them together once all are connected (or report the one
	 * that failed to). */
	int failed = 0;
	while (atomic_load(&shm->ready) < cfg.procs) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p > 0) {
			failed = 1;
			break;
		}
		usleep(1000);
	}
	if (cfg.max_ns)
		shm->deadline_ns = now_ns() + cfg.max_ns;
	atomic_store(&shm->go, 1);
	futex_wake_all(&shm->go);
	for (int i = 0; i < cfg.procs; i++) {
		int st;
		waitpid(pids[i], &st, 0);
	}
	if (broker > 0) {
		kill(broker, SIGKILL);
		waitpid(broker, NULL, 0); /* its CPU joins RUSAGE_CHILDREN */
		unlink(cfg.broker);
		rmdir(broker_dir);
	}

	const char *error = NULL;
	int64_t start = INT64_MAX, end = 0;
	size_t nrec = 0;
	struct locks_stats total = { 0 };
	for (int i = 0; i < cfg.procs; i++) {
		struct child_result *r = &shm->res[i];
		if (!r->done) {
			error = r->error[0] ? r->error : "a worker died";
			failed = 1;
			continue;
		}
		if (r->start_ns < start)
			start = r->start_ns;
		if (r->end_ns > end)
			end = r->end_ns;
		/* Gather the holdings at the front of the array. */
		memmove(recs + nrec, recs + (size_t)i * (size_t)cfg.iterations, (size_t)r->pairs * sizeof(struct rec));
		nrec += (size_t)r->pairs;
		total.cas_commits += r->stats.cas_commits;
		total.cas_conflicts += r->stats.cas_conflicts;
		total.cas_noops += r->stats.cas_noops;
		total.polls += r->stats.polls;
	}

	printf("{\"impl\": \"%s\", \"procs\": %d, \"names\": \"%s\", \"held\": %ld, \"queued\": %ld, "
	       "\"max_iterations\": %ld, \"max_seconds\": %.1f",
	       cfg.impl->name, cfg.procs, cfg.shared ? "shared" : "distinct", cfg.held, cfg.queued, cfg.iterations,
	       (double)cfg.max_ns / 1e9);
	printf(", \"broker\": %s", cfg.broker ? "true" : "false");
	if (failed) {
		printf(", \"error\": \"");
		for (const char *p = error ? error : "a worker failed"; *p; p++) {
			if (*p == '"' || *p == '\\')
				putchar('\\');
			putchar((unsigned char)*p < 0x20 ? ' ' : *p);
		}
		printf("\"}\n");
		return 1;
	}
	double secs = (double)(end - start) / 1e9;
	int64_t *pair = malloc((nrec ? nrec : 1) * sizeof(int64_t));
	int64_t *handoff = malloc((nrec ? nrec : 1) * sizeof(int64_t));
	size_t nh = 0;
	for (size_t i = 0; i < nrec; i++)
		pair[i] = recs[i].rel_end - recs[i].acq_start;
	qsort(pair, nrec, sizeof(int64_t), cmp_i64);
	bool holds = cfg.impl->kind != K_UPDATE;
	if (cfg.shared && holds && cfg.procs > 1) {
		qsort(recs, nrec, sizeof(struct rec), cmp_rec_acq_end);
		for (size_t i = 1; i < nrec; i++) {
			if (recs[i].acq_start < recs[i - 1].rel_start && recs[i].acq_end >= recs[i - 1].rel_start)
				handoff[nh++] = recs[i].acq_end - recs[i - 1].rel_start;
		}
		qsort(handoff, nh, sizeof(int64_t), cmp_i64);
	}
	printf(", \"pairs\": %zu, \"seconds\": %.3f, \"pairs_per_s\": %.1f", nrec, secs, (double)nrec / secs);
	json_ms(stdout, "pair_p50_ms", pair, nrec, 0.50);
	json_ms(stdout, "pair_p99_ms", pair, nrec, 0.99);
	printf(", \"handoffs\": %zu", nh);
	json_ms(stdout, "handoff_p50_ms", handoff, nh, 0.50);
	json_ms(stdout, "handoff_p99_ms", handoff, nh, 0.99);
	if (cfg.impl->kind == K_BOXD)
		printf(", \"cas_commits\": %" PRIu64 ", \"cas_conflicts\": %" PRIu64 ", \"cas_noops\": %" PRIu64
		       ", \"polls\": %" PRIu64,
		       total.cas_commits, total.cas_conflicts, total.cas_noops, total.polls);
	/* CPU of the worker processes (not of a database server), per pair:
	 * less sensitive to a busy machine than the wall-clock numbers. */
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	printf(", \"cpu_user_us_per_pair\": %.1f, \"cpu_sys_us_per_pair\": %.1f",
	       ((double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec) / (double)nrec,
	       ((double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec) / (double)nrec);
	printf(", \"load1\": %.2f}\n", load1());
	free(pair);
	free(handoff);
	free(pids);
	return 0;
}
