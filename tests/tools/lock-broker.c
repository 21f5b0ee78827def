/* lock-broker.c — the daemon's lock broker (src/locks/broker.h) alone in
 * a process, for the lock torture (t0100, t0101) and the benchmark: the
 * same code the daemon runs in its broker thread, without the daemon.
 *
 *	lock-broker --socket PATH (--db PATH | --store mysql|postgres --dsn DSN)
 *
 * Prints "LISTENING" (flushed) once it serves, then runs until SIGTERM or
 * SIGINT (then prints its stats as one line of JSON and exits 0), or until
 * its parent goes away. SIGKILL is the crash the tests make.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/timeutil.h"
#include "locks/broker.h"
#include "locks/lock_doc.h"
#include "store/store.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void usage(void)
{
	fprintf(stderr, "usage: lock-broker --socket PATH (--db PATH | --store mysql|postgres --dsn DSN)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "db", required_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 'b' },
		{ "dsn", required_argument, NULL, 'D' },
		{ 0 },
	};
	const char *sock = NULL, *db = NULL, *dsn = NULL;
	enum store_backend backend = STORE_BACKEND_SQLITE;
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'S': sock = optarg; break;
		case 'd': db = optarg; break;
		case 'D': dsn = optarg; break;
		case 'b':
			if (store_backend_from_string(optarg, &backend) < 0)
				usage();
			break;
		default: usage();
		}
	}
	if (!sock || optind != argc || (backend == STORE_BACKEND_SQLITE ? !db : !dsn))
		usage();
	/* As the daemon opens its lock connection. */
	struct store_options o = { .backend = backend, .sqlite_path = db, .dsn = dsn, .relaxed_durability = true };
	struct store *s;
	char err[512] = "";
	if (store_open(&o, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "lock-broker: %s\n", err);
		return 1;
	}
	char host[LOCK_HOST_MAX];
	if (host_owner_id_get(host, sizeof(host)) < 0) {
		fprintf(stderr, "lock-broker: cannot identify this host\n");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct lock_broker_opts bo = { .socket_path = sock, .store = s, .host = host, .extra_uid = (uid_t)-1 };
	struct lock_broker *b;
	if (lock_broker_start(&bo, &b, err, sizeof(err)) < 0) {
		fprintf(stderr, "lock-broker: %s\n", err);
		return 1;
	}
	printf("LISTENING %s\n", sock);
	fflush(stdout);
	pid_t parent = getppid();
	while (!stop && getppid() == parent)
		sleep_us(50 * 1000);
	struct lock_broker_stats st;
	lock_broker_stats_get(b, &st);
	lock_broker_stop(b);
	printf("{\"rounds\": %" PRIu64 ", \"requests\": %" PRIu64 ", \"grants\": %" PRIu64
	       ", \"refused_peers\": %" PRIu64 ", \"fallbacks\": %" PRIu64 "}\n",
	       st.rounds, st.requests, st.grants, st.refused_peers, st.fallbacks);
	store_close(s);
	return 0;
}
