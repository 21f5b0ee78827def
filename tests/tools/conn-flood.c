/* conn-flood.c — a hostile HTTP client: hold N TCP connections open against
 * HOST:PORT, each with an unfinished request head (slowloris), and open a
 * new one for every connection the server closes, for as long as it runs.
 *
 *	conn-flood HOST PORT N [RECONNECT_DELAY_MS]
 *
 * Prints "ready open=K" once every one of the N slots has tried its first
 * connect (K connected), then runs until SIGTERM/SIGINT or until stdin
 * reaches EOF, and prints "done open=K opened=M closed_by_server=C
 * failed=F". A slot the server closes is reconnected after
 * RECONNECT_DELAY_MS (default 10).
 *
 * tests/e2e/t0207-api-abuse.sh and `make bench` (scripts/bench.sh, with
 * bench/apibench) use it: the unix socket must keep answering meanwhile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char head[] = "GET /api/v1/status HTTP/1.1\r\nHost: boxd\r\nX-Slow: ";

struct slot {
	int fd;
	int connected; /* the head was sent */
	long long retry_at;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_one(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: conn-flood HOST PORT N [RECONNECT_DELAY_MS]\n");
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "conn-flood: bad IPv4 address %s\n", argv[1]);
		return 2;
	}
	int n = atoi(argv[3]);
	long long delay = argc == 5 ? atoll(argv[4]) : 10;
	if (n < 1 || n > 100000) {
		fprintf(stderr, "conn-flood: N must be 1..100000\n");
		return 2;
	}
	/* Every connection is a descriptor. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	struct slot *slots = calloc((size_t)n, sizeof(*slots));
	struct pollfd *pfds = calloc((size_t)n + 1, sizeof(*pfds));
	if (!slots || !pfds)
		return 1;
	long long opened = 0, closed = 0, failed = 0;
	for (int i = 0; i < n; i++) {
		slots[i].fd = open_one(&sa);
		if (slots[i].fd < 0) {
			failed++;
			slots[i].retry_at = now_ms() + delay;
		}
	}
	int ready_printed = 0;
	long long ready_deadline = now_ms() + 10000;
	while (!stop) {
		/* Slot i polls at pfds[i]; stdin at pfds[n]. */
		long long now = now_ms();
		int pending = 0, open_now = 0;
		for (int i = 0; i < n; i++) {
			struct slot *s = &slots[i];
			if (s->fd < 0 && now >= s->retry_at) {
				s->fd = open_one(&sa);
				s->connected = 0;
				if (s->fd < 0) {
					failed++;
					s->retry_at = now + delay;
				}
			}
			pfds[i] = (struct pollfd){ .fd = s->fd, .events = s->connected ? POLLIN : POLLOUT };
			if (s->fd >= 0 && !s->connected)
				pending++;
			if (s->connected)
				open_now++;
		}
		if (!ready_printed && (pending == 0 || now >= ready_deadline)) {
			printf("ready open=%d\n", open_now);
			fflush(stdout);
			ready_printed = 1;
		}
		pfds[n] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		if (poll(pfds, (nfds_t)n + 1, 50) < 0 && errno != EINTR)
			break;
		if (pfds[n].revents) {
			char b[256];
			if (read(STDIN_FILENO, b, sizeof(b)) <= 0)
				break;
		}
		now = now_ms();
		for (int i = 0; i < n; i++) {
			struct slot *s = &slots[i];
			short re = pfds[i].revents;
			if (s->fd < 0 || !re)
				continue;
			if (!s->connected) {
				int err = 0;
				socklen_t len = sizeof(err);
				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (!err && (re & POLLOUT) && write(s->fd, head, sizeof(head) - 1) > 0) {
					s->connected = 1;
					opened++;
					continue;
				}
				failed++;
			} else {
				/* Whatever the server says, we never finish the
				 * request; a read of 0 or an error means it closed. */
				char b[4096];
				ssize_t r = read(s->fd, b, sizeof(b));
				if (r > 0 || (r < 0 && errno == EAGAIN))
					continue;
				closed++;
			}
			close(s->fd);
			s->fd = -1;
			s->connected = 0;
			s->retry_at = now + delay;
		}
	}
	int open_now = 0;
	for (int i = 0; i < n; i++)
		open_now += slots[i].connected;
	printf("done open=%d opened=%lld closed_by_server=%lld failed=%lld\n", open_now, opened, closed, failed);
	return 0;
}
