/* port-hold.c — listen on a TCP port on every address (0.0.0.0 and [::],
 * IPv6 only), accept nothing, until killed: for tests that need a port no
 * server can bind (tests/e2e/t0312-sftp-rebuilds.sh: an sftp container
 * whose sshd cannot start).
 *
 *	port-hold PORT    prints "ready" once both sockets listen
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_on(int family, int port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	if (family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
					  .sin6_addr = IN6ADDR_ANY_INIT };
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			return -1;
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_ANY) };
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			return -1;
	}
	return listen(fd, 1);
}

int main(int argc, char **argv)
{
	int port = argc == 2 ? atoi(argv[1]) : 0;
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: port-hold PORT\n");
		return 2;
	}
	if (listen_on(AF_INET, port) < 0) {
		perror("port-hold: 0.0.0.0");
		return 1;
	}
	if (listen_on(AF_INET6, port) < 0)
		perror("port-hold: [::] (IPv4 only)");
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
