/* apibench.c — latency of GET /api/v1/status on boxd's unix socket, one
 * fresh connection per request (as boxctl makes them). scripts/bench.sh
 * runs it on an idle daemon and again while conn-flood holds 2,000 hostile
 * TCP connections against the daemon's TCP listener (issue 10: the unix
 * socket must keep answering, target p99 < 100 ms).
 *
 *	apibench --socket PATH [--requests N] [--label TEXT]
 *
 * Output: one line of JSON {"bench":"api-unix-status", "label", "requests",
 * "ok" (answers 200), "p50_ms", "p99_ms", "max_ms"}. A request without an
 * answer within 10 s counts as not ok, with 10000 ms.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 10000

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

/* One GET; returns the HTTP status (0 = no answer in time). */
static int get_status(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	static const char req[] = "GET /api/v1/status HTTP/1.1\r\nHost: boxd\r\nConnection: close\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return 0;
	}
	char buf[8192];
	size_t got = 0;
	double until = now_ms() + DEADLINE_MS;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(until - now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			got = 16; /* keep the status line, drop the rest */
	}
	close(fd);
	buf[got] = '\0';
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	return status;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *socket_path = NULL, *label = "";
	int n = 200;
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "requests", required_argument, NULL, 'n' },
		{ "label", required_argument, NULL, 'l' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': socket_path = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'l': label = optarg; break;
		default: return 2;
		}
	}
	if (!socket_path || n < 1) {
		fprintf(stderr, "usage: apibench --socket PATH [--requests N] [--label TEXT]\n");
		return 2;
	}
	double *ms = calloc((size_t)n, sizeof(*ms));
	if (!ms)
		return 1;
	int ok = 0;
	for (int i = 0; i < n; i++) {
		double t = now_ms();
		int status = get_status(socket_path);
		ms[i] = status ? now_ms() - t : DEADLINE_MS;
		ok += status == 200;
	}
	qsort(ms, (size_t)n, sizeof(*ms), cmp);
	printf("{\"bench\": \"api-unix-status\", \"label\": \"%s\", \"requests\": %d, \"ok\": %d, \"p50_ms\": %.2f, "
	       "\"p99_ms\": %.2f, \"max_ms\": %.2f}\n",
	       label, n, ok, ms[n / 2], ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], ms[n - 1]);
	free(ms);
	return 0;
}
