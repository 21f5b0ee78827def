/* lock-torture.c — one worker of the multi-process lock torture test
 * (tests/e2e/t0100-lock-torture.sh).
 *
 *	lock-torture --db PATH --counter PREFIX --iterations N --names K --seed S
 *		     [--shared-ratio 0.5] [--invariant-dir DIR] [--timeout SECONDS]
 *		     [--max-pause-us US]
 *	lock-torture --db PATH --hold-and-wait NAME
 *
 * With --broker SOCKET every acquire and release asks the lock broker
 * listening there (tests/tools/lock-broker.c, the daemon's broker code)
 * and falls back to the direct CAS loop when it is gone
 * (locks/broker_client.h); the stats line then counts both.
 *
 * The store: --db PATH is an SQLite file; --store mysql|postgres --dsn DSN
 * (instead of --db) a server database, as in [store] backend/dsn.
 *
 * Torture mode opens the store the way a worker does (relaxed
 * durability: the lock document's own connection) and performs N
 * acquisitions of one lock each over the names "t:0".."t:K-1", shared with
 * probability --shared-ratio and exclusive otherwise, each with a waiting
 * acquire (default deadline 60 s).
 *
 * What a holding does, so that a broken lock shows up as a wrong number:
 *   - exclusive: read-modify-write of the name's counter file
 *     "PREFIX.<name>" (read, a random pause, write read+1). The counter files
 *     together must end up equal to the number of exclusive holdings.
 *   - shared: read the counter, pause, read it again; a change means an
 *     exclusive holder ran at the same time.
 *
 * Independent witness (--invariant-dir): a holder creates
 * "<name>.excl.<pid>" or "<name>.shared.<pid>" (O_EXCL) while it holds, and
 * checks right after creating it, after its pause and before removing it
 * that no conflicting witness of another pid exists. It also keeps the
 * name's fencing token in "<name>.fence": an exclusive holder's token must be
 * greater than the last exclusive holder's, and a shared holder's token
 * greater than it too (the grant came later). And a release must find the
 * holding still there (nobody reaped a live owner).
 *
 * Exit status: 0 done (one line of JSON stats on stdout), 1 store or system
 * error, 2 usage, 3 "INVARIANT VIOLATION ..." (on stderr), 4 a wait timed out.
 *
 * Hold-and-wait mode acquires NAME exclusively, prints "HOLDING" (flushed)
 * and sleeps until it is killed — the victim of the kill test. It has no
 * witness: it dies holding. It exits by itself if its parent goes away, so a
 * test that died hard does not leave it behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "locks/broker_client.h"
#include "locks/locks.h"
#include "store/store.h"

#define EXIT_ERROR 1
#define EXIT_USAGE 2
#define EXIT_VIOLATION 3
#define EXIT_TIMEOUT 4

struct config {
	enum store_backend backend;
	const char *db;   /* SQLite: the file; a server backend: the DSN */
	const char *counter;
	const char *invariant_dir;
	const char *hold_name;
	long iterations;
	long names;
	uint64_t seed;
	double shared_ratio;
	int64_t timeout_ms;
	long max_pause_us;
};

static const char *broker_path; /* --broker: NULL, direct */

/* ---- randomness: splitmix64, reproducible from --seed ------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unit(void) { return (double)(rng_next() >> 11) / (double)(1ULL << 53); }

static void random_pause(const struct config *cfg)
{
	if (cfg->max_pause_us > 0)
		sleep_us((int64_t)(rng_next() % (uint64_t)(cfg->max_pause_us + 1)));
}

/* ---- failure exits ------------------------------------------------------- */

static void __attribute__((noreturn, format(printf, 2, 3))) die(int status, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "lock-torture[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

#define violation(...) die(EXIT_VIOLATION, "INVARIANT VIOLATION: " __VA_ARGS__)

/* ---- counter files ------------------------------------------------------- */

/* A counter is a fixed-width decimal written in place (no truncation), so a
 * reader never sees an empty file between two writes of a correct run. */
#define COUNTER_WIDTH 20

static int64_t counter_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		die(EXIT_ERROR, "open %s: %m", path);
	}
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	int saved = errno;
	close(fd);
	if (n < 0)
		die(EXIT_ERROR, "read %s: %s", path, strerror(saved));
	buf[n] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (n == 0 || errno || (*end && *end != '\n') || v < 0)
		violation("counter %s holds '%.*s', not a number (torn write by a concurrent holder?)", path,
			  (int)n, buf);
	return v;
}

static void counter_write(const char *path, int64_t v)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		die(EXIT_ERROR, "open %s: %m", path);
	char buf[64];
	int len = snprintf(buf, sizeof(buf), "%0*" PRId64 "\n", COUNTER_WIDTH, v);
	ssize_t n = pwrite(fd, buf, (size_t)len, 0);
	if (n != len)
		die(EXIT_ERROR, "write %s: %s", path, n < 0 ? strerror(errno) : "short write");
	close(fd);
}

/* ---- witness files ------------------------------------------------------- */

/* Fail if a witness of another pid conflicts with holding `name` in `mode`. */
static void witness_check(const char *dir, const char *name, enum lock_mode mode, const char *when)
{
	DIR *d = opendir(dir);
	if (!d)
		die(EXIT_ERROR, "opendir %s: %m", dir);
	size_t len = strlen(name);
	pid_t me = getpid();
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *f = de->d_name;
		if (strncmp(f, name, len) != 0 || f[len] != '.')
			continue;
		const char *rest = f + len + 1;
		bool excl = strncmp(rest, "excl.", 5) == 0;
		bool shared = strncmp(rest, "shared.", 7) == 0;
		if (!excl && !shared)
			continue; /* "<name>.fence" */
		if (atol(rest + (excl ? 5 : 7)) == me)
			continue;
		if (excl || mode == LOCK_EXCLUSIVE) {
			closedir(d);
			violation("pid %d holds %s %s (%s) while witness %s/%s exists", (int)me, name,
				  lock_mode_name(mode), when, dir, f);
		}
	}
	closedir(d);
}

static void witness_path(char *buf, size_t len, const char *dir, const char *name, enum lock_mode mode)
{
	snprintf(buf, len, "%s/%s.%s.%d", dir, name, mode == LOCK_EXCLUSIVE ? "excl" : "shared", (int)getpid());
}

static void witness_enter(const char *dir, const char *name, enum lock_mode mode)
{
	char path[PATH_MAX];
	witness_path(path, sizeof(path), dir, name, mode);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			violation("witness %s already exists: this process holds %s twice", path, name);
		die(EXIT_ERROR, "create %s: %m", path);
	}
	close(fd);
	witness_check(dir, name, mode, "after taking it");
}

static void witness_leave(const char *dir, const char *name, enum lock_mode mode)
{
	witness_check(dir, name, mode, "before releasing it");
	char path[PATH_MAX];
	witness_path(path, sizeof(path), dir, name, mode);
	if (unlink(path) < 0)
		die(EXIT_ERROR, "unlink %s: %m", path);
}

/* Fencing tokens: every grant of `name` must carry a larger document version
 * than the last exclusive grant of it. Only an exclusive holder writes. */
static void fence_check(const char *dir, const char *name, enum lock_mode mode, int64_t token)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.fence", dir, name);
	int64_t last = counter_read(path);
	if (token <= last)
		violation("pid %d got %s %s with fencing token %" PRId64 ", not above the last exclusive grant's %" PRId64,
			  (int)getpid(), name, lock_mode_name(mode), token, last);
	if (mode == LOCK_EXCLUSIVE)
		counter_write(path, token);
}

/* ---- the modes ----------------------------------------------------------- */

static struct store *open_store(const struct config *cfg)
{
	struct store_options o = { .backend = cfg->backend, .sqlite_path = cfg->db, .dsn = cfg->db,
				   .relaxed_durability = true };
	struct store *s;
	char err[512];
	int r = store_open(&o, &s, err, sizeof(err));
	if (r < 0)
		die(EXIT_ERROR, "cannot open %s: %s", cfg->db, err);
	return s;
}

static void acquire_one(struct store *s, const struct lock_owner *me, const struct lock_req *req,
			int64_t timeout_ms, int64_t *ret_token)
{
	struct locks_acquire_opts opts = { .timeout_ms = timeout_ms };
	struct lock_blocker b = { .lock = "" };
	int r = locks_acquire_brokered(broker_path, s, me, req, 1, &opts, ret_token, &b);
	if (r == -ETIMEDOUT)
		die(EXIT_TIMEOUT, "timed out after %.1fs waiting for %s %s (%s pid %d, %s)", timeout_ms / 1000.0,
		    req->name, lock_mode_name(req->mode), b.queued ? "queued behind" : "held by", b.pid,
		    lock_mode_name(b.mode));
	if (r < 0)
		die(EXIT_ERROR, "acquire %s: %s (%s)", req->name, strerror(-r), store_errmsg(s));
}

static int hold_and_wait(const struct config *cfg)
{
	struct store *s = open_store(cfg);
	struct lock_owner me;
	int r = lock_owner_self(&me, 0);
	if (r < 0)
		die(EXIT_ERROR, "lock_owner_self: %s", strerror(-r));
	struct lock_req req = { .mode = LOCK_EXCLUSIVE };
	snprintf(req.name, sizeof(req.name), "%s", cfg->hold_name);
	int64_t token;
	acquire_one(s, &me, &req, cfg->timeout_ms, &token);
	printf("HOLDING %s token %" PRId64 "\n", req.name, token);
	fflush(stdout);
	pid_t parent = getppid();
	while (getppid() == parent)
		sleep_us(100 * 1000);
	store_close(s);
	return EXIT_ERROR; /* orphaned: the test that started us is gone */
}

static int torture(const struct config *cfg)
{
	struct store *s = open_store(cfg);
	struct lock_owner me;
	int r = lock_owner_self(&me, 0);
	if (r < 0)
		die(EXIT_ERROR, "lock_owner_self: %s", strerror(-r));

	long n_excl = 0;
	int64_t max_wait_us = 0;
	int64_t start = now_mono_us();
	for (long i = 0; i < cfg->iterations; i++) {
		struct lock_req req;
		snprintf(req.name, sizeof(req.name), "t:%ld", (long)(rng_next() % (uint64_t)cfg->names));
		req.mode = rng_unit() < cfg->shared_ratio ? LOCK_SHARED : LOCK_EXCLUSIVE;
		char counter[PATH_MAX];
		snprintf(counter, sizeof(counter), "%s.%s", cfg->counter, req.name);

		int64_t t0 = now_mono_us(), token;
		acquire_one(s, &me, &req, cfg->timeout_ms, &token);
		if (now_mono_us() - t0 > max_wait_us)
			max_wait_us = now_mono_us() - t0;

		if (cfg->invariant_dir) {
			witness_enter(cfg->invariant_dir, req.name, req.mode);
			fence_check(cfg->invariant_dir, req.name, req.mode, token);
		}
		int64_t v = counter_read(counter);
		random_pause(cfg);
		if (req.mode == LOCK_EXCLUSIVE) {
			counter_write(counter, v + 1);
			n_excl++;
		} else {
			int64_t again = counter_read(counter);
			if (again != v)
				violation("pid %d holds %s shared, yet its counter changed from %" PRId64 " to %" PRId64,
					  (int)getpid(), req.name, v, again);
		}
		if (cfg->invariant_dir)
			witness_leave(cfg->invariant_dir, req.name, req.mode);

		const char *names[] = { req.name };
		int released = 0;
		r = locks_unlock_brokered(broker_path, s, &me, names, 1, &released);
		if (r < 0)
			die(EXIT_ERROR, "release %s: %s (%s)", req.name, strerror(-r), store_errmsg(s));
		if (released != 1)
			violation("pid %d released %s but %d holding(s) of it were recorded (reaped while alive?)",
				  (int)getpid(), req.name, released);
	}
	double seconds = (now_mono_us() - start) / 1e6;

	struct locks_stats st;
	locks_stats_get(&st);
	struct lock_broker_client_stats bs;
	lock_broker_client_stats_get(&bs);
	printf("{\"pid\": %d, \"ops\": %ld, \"exclusive_ops\": %ld, \"shared_ops\": %ld, \"seconds\": %.3f, "
	       "\"cas_commits\": %" PRIu64 ", \"cas_conflicts\": %" PRIu64 ", \"cas_noops\": %" PRIu64
	       ", \"polls\": %" PRIu64 ", \"max_wait_ms\": %.1f, \"brokered\": %" PRIu64 ", \"direct\": %" PRIu64
	       ", \"fallbacks\": %" PRIu64 ", \"held_on_reread\": %" PRIu64 "}\n",
	       (int)getpid(), cfg->iterations, n_excl, cfg->iterations - n_excl, seconds, st.cas_commits,
	       st.cas_conflicts, st.cas_noops, st.polls, max_wait_us / 1000.0, bs.brokered, bs.direct,
	       bs.fallbacks, bs.held_on_reread);
	fflush(stdout);
	store_close(s);
	return 0;
}

/* ---- arguments ----------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: lock-torture --db PATH --counter PREFIX --iterations N --names K --seed S\n"
		"                    [--shared-ratio 0.5] [--invariant-dir DIR] [--timeout SECONDS]\n"
		"                    [--max-pause-us US] [--broker SOCKET]\n"
		"       lock-torture --db PATH --hold-and-wait NAME\n"
		"       (a server database instead of --db PATH: --store mysql|postgres --dsn DSN)\n");
	exit(EXIT_USAGE);
}

static long parse_long(const char *opt, const char *s, long min)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min) {
		fprintf(stderr, "lock-torture: --%s needs an integer >= %ld, not '%s'\n", opt, min, s);
		usage();
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 'b' },
		{ "dsn", required_argument, NULL, 'D' },
		{ "counter", required_argument, NULL, 'c' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "names", required_argument, NULL, 'k' },
		{ "seed", required_argument, NULL, 's' },
		{ "shared-ratio", required_argument, NULL, 'r' },
		{ "invariant-dir", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-pause-us", required_argument, NULL, 'p' },
		{ "hold-and-wait", required_argument, NULL, 'H' },
		{ "broker", required_argument, NULL, 'B' },
		{ 0 },
	};
	struct config cfg = { .iterations = -1, .names = -1, .shared_ratio = 0.5, .timeout_ms = 60000,
			      .max_pause_us = 200 };
	bool have_seed = false;
	const char *dsn = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'd': cfg.db = optarg; break;
		case 'D': dsn = optarg; break;
		case 'b':
			if (store_backend_from_string(optarg, &cfg.backend) < 0) {
				fprintf(stderr, "lock-torture: --store is sqlite, mysql or postgres\n");
				usage();
			}
			break;
		case 'c': cfg.counter = optarg; break;
		case 'n': cfg.iterations = parse_long("iterations", optarg, 0); break;
		case 'k': cfg.names = parse_long("names", optarg, 1); break;
		case 's': cfg.seed = (uint64_t)strtoull(optarg, NULL, 0); have_seed = true; break;
		case 'i': cfg.invariant_dir = optarg; break;
		case 'p': cfg.max_pause_us = parse_long("max-pause-us", optarg, 0); break;
		case 'H': cfg.hold_name = optarg; break;
		case 'B': broker_path = optarg; break;
		case 'r': {
			char *end;
			cfg.shared_ratio = strtod(optarg, &end);
			if (end == optarg || *end || cfg.shared_ratio < 0 || cfg.shared_ratio > 1) {
				fprintf(stderr, "lock-torture: --shared-ratio is a number in [0, 1]\n");
				usage();
			}
			break;
		}
		case 't':
			if (parse_duration_ms(optarg, &cfg.timeout_ms) < 0 || cfg.timeout_ms <= 0) {
				fprintf(stderr, "lock-torture: --timeout takes a positive duration (30, 1.5, 500ms)\n");
				usage();
			}
			break;
		default: usage();
		}
	}
	if (cfg.backend != STORE_BACKEND_SQLITE) {
		if (cfg.db || !dsn) {
			fprintf(stderr, "lock-torture: --store %s takes --dsn, not --db\n", store_backend_name(cfg.backend));
			usage();
		}
		cfg.db = dsn;
	}
	if (optind != argc || !cfg.db)
		usage();
	if (cfg.hold_name) {
		if (!lock_name_valid(cfg.hold_name)) {
			fprintf(stderr, "lock-torture: invalid lock name '%s'\n", cfg.hold_name);
			return EXIT_USAGE;
		}
		return hold_and_wait(&cfg);
	}
	if (!cfg.counter || cfg.iterations < 0 || cfg.names < 1 || !have_seed)
		usage();
	rng_state = cfg.seed;
	return torture(&cfg);
}
