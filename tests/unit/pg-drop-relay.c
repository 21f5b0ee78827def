/* pg-drop-relay.c — see pg-drop-relay.h. The client's side of the
 * protocol is parsed only as far as needed: the startup message (a length,
 * no type byte), then messages of a type byte and a length. Over a unix
 * socket libpq asks for neither SSL nor GSS encryption first. */
#include "pg-drop-relay.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int unix_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -1;
	strcpy(a->sun_path, path);
	return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The child: one connection, relayed until the drop or either end closes. */
static void relay(int lfd, const char *server_socket, int drop_at)
{
	int c = accept(lfd, NULL, NULL);
	close(lfd); /* a second connection is refused, not left waiting */
	struct sockaddr_un sa;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || s < 0 || unix_addr(&sa, server_socket) < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(1);
	static unsigned char buf[1 << 16];
	size_t have = 0;
	bool started = false;
	int queries = 0;
	for (;;) {
		struct pollfd p[2] = { { .fd = c, .events = POLLIN }, { .fd = s, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			_exit(1);
		if (p[1].revents) {
			unsigned char b[8192];
			ssize_t n = read(s, b, sizeof(b));
			if (n <= 0 || write_all(c, b, (size_t)n) < 0)
				_exit(0);
		}
		if (!p[0].revents)
			continue;
		ssize_t n = read(c, buf + have, sizeof(buf) - have);
		if (n <= 0)
			_exit(0);
		have += (size_t)n;
		/* Forward each whole message, unless it is the query to drop at. */
		for (;;) {
			size_t head = started ? 5 : 4;
			if (have < head)
				break;
			size_t len = started ? 1 + be32(buf + 1) : be32(buf);
			if (len < head || len > sizeof(buf))
				_exit(1);
			if (have < len)
				break;
			if (started && buf[0] == 'Q' && ++queries == drop_at) {
				close(c);
				close(s);
				_exit(0);
			}
			if (write_all(s, buf, len) < 0)
				_exit(0);
			started = true;
			memmove(buf, buf + len, have - len);
			have -= len;
		}
	}
}

int pg_drop_relay_start(struct pg_drop_relay *r, const char *server_socket, int drop_at)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/boxd-pg-relay.XXXXXX");
	if (!mkdtemp(r->dir))
		return -1;
	r->port = 5999;
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", r->dir, r->port);
	struct sockaddr_un a;
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || unix_addr(&a, path) < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0) {
		if (lfd >= 0)
			close(lfd);
		rmdir(r->dir);
		return -1;
	}
	r->pid = fork();
	if (r->pid == 0)
		relay(lfd, server_socket, drop_at);
	close(lfd);
	if (r->pid < 0) {
		unlink(path);
		rmdir(r->dir);
		return -1;
	}
	return 0;
}

void pg_drop_relay_stop(struct pg_drop_relay *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", r->dir, r->port);
	unlink(path);
	rmdir(r->dir);
}
