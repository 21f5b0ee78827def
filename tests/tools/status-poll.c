/* status-poll.c — poll GET /api/v1/status on boxd's unix socket every
 * INTERVAL_MS until STOP_FILE exists, and print one line per poll:
 *
 *	<wall ms when the poll ended> <the answer's "version", or "down">
 *
 * tests/e2e/t0600-update.sh measures the API's downtime during an update's
 * re-exec with it: a shell loop of curl | jq costs tens of milliseconds per
 * poll on a busy machine, this costs about one.
 *
 * usage: status-poll SOCKET INTERVAL_MS STOP_FILE
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One GET; writes the version into buf, or returns -1. */
static int poll_once(const char *path, char *buf, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	static const char request[] = "GET /api/v1/status HTTP/1.0\r\nHost: boxd\r\n\r\n";
	char reply[16384];
	size_t got = 0;
	int r = -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, request, sizeof(request) - 1) != (ssize_t)(sizeof(request) - 1))
		goto out;
	for (;;) {
		ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0 || got + (size_t)n >= sizeof(reply) - 1) {
			got += (size_t)(n > 0 ? n : 0);
			break;
		}
		got += (size_t)n;
	}
	reply[got] = '\0';
	if (strncmp(reply, "HTTP/1.", 7) != 0 || strncmp(reply + 8, " 200", 4) != 0)
		goto out;
	const char *v = strstr(reply, "\"version\":\"");
	if (!v)
		goto out;
	v += 11;
	size_t n = strcspn(v, "\"");
	if (n >= len)
		n = len - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	r = 0;
out:
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: status-poll SOCKET INTERVAL_MS STOP_FILE\n");
		return 2;
	}
	long interval = strtol(argv[2], NULL, 10);
	struct timespec gap = { .tv_sec = interval / 1000, .tv_nsec = (interval % 1000) * 1000000L };
	while (access(argv[3], F_OK) != 0) {
		char version[128];
		int r = poll_once(argv[1], version, sizeof(version));
		printf("%lld %s\n", now_ms(), r == 0 ? version : "down");
		fflush(stdout);
		nanosleep(&gap, NULL);
	}
	return 0;
}
