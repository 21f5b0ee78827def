/* dgram-sink — a stand-in for the two sockets systemd gives a service, for
 * tests/e2e/t0870-systemd.sh: the notify socket (NOTIFY_SOCKET, what
 * sd_notify() writes to) and journald's native socket
 * (/run/systemd/journal/socket, what sd_journal_send() writes to). Both
 * take one datagram per message; libsystemd is the real sender.
 *
 *	dgram-sink PATH [--on LINE CMD [ARG...]]
 *
 * Binds an AF_UNIX datagram socket at PATH and prints every datagram it
 * receives to stdout as one record:
 *
 *	@@ pid=SENDER_PID len=N
 *	<the N bytes>
 *
 * (the sender's pid comes from SCM_CREDENTIALS; a payload passed as a
 * memfd, as libsystemd does for large journal entries, is read from it).
 * With --on, the first datagram holding the line LINE (e.g. READY=1) makes
 * it run CMD right away, while the sender goes on, and print
 * "@@ on-exit=STATUS": a check of what must be true when the message
 * arrives. Runs until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_DGRAM (256 * 1024)

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static bool has_line(const char *buf, size_t n, const char *line)
{
	size_t ll = strlen(line);
	for (size_t i = 0; i + ll <= n; i++)
		if ((i == 0 || buf[i - 1] == '\n') && memcmp(buf + i, line, ll) == 0 &&
		    (i + ll == n || buf[i + ll] == '\n'))
			return true;
	return false;
}

static int run(char **argv)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
	if (argc < 2 || (argc > 2 && (argc < 5 || strcmp(argv[2], "--on") != 0))) {
		fprintf(stderr, "usage: dgram-sink PATH [--on LINE CMD [ARG...]]\n");
		return 2;
	}
	const char *path = argv[1], *on_line = argc > 2 ? argv[3] : NULL;
	char **on_cmd = argc > 2 ? argv + 4 : NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "dgram-sink: path too long\n");
		return 2;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int one = 1;
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		perror("dgram-sink");
		return 1;
	}
	int rcvbuf = 8 * 1024 * 1024;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sigaction act = { .sa_handler = on_signal };
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	/* Say that the socket is there (the test waits for this line). */
	printf("@@ listening\n");
	fflush(stdout);

	static char buf[MAX_DGRAM];
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	while (!stop) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
		ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("dgram-sink: recvmsg");
			return 1;
		}
		pid_t sender = 0;
		int memfd = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
				sender = ((struct ucred *)(void *)CMSG_DATA(c))->pid;
			else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				memcpy(&memfd, CMSG_DATA(c), sizeof(int));
		}
		size_t len = (size_t)n;
		if (memfd >= 0) {
			ssize_t r = pread(memfd, buf, sizeof(buf), 0);
			len = r > 0 ? (size_t)r : 0;
			close(memfd);
		}
		printf("@@ pid=%d len=%zu\n", (int)sender, len);
		fwrite(buf, 1, len, stdout);
		printf("\n");
		fflush(stdout);
		if (on_line && has_line(buf, len, on_line)) {
			printf("@@ on-exit=%d\n", run(on_cmd));
			fflush(stdout);
			on_line = NULL;
		}
	}
	unlink(path);
	return 0;
}
