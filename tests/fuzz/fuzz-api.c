/* fuzz-api.c — raw HTTP requests (input from outside) to the API server,
 * running in this process: libmicrohttpd's parsing, boxd's admission
 * checks, routing, JSON bodies, every handler, on a real SQLite store.
 *
 * Each input is sent as it is over a fresh connection to the server's
 * unix socket (then the write side is shut), and the answer is read until
 * the server closes or a short deadline passes. Besides the sanitizers,
 * an input fails (abort) when an answer is the 500 "cannot encode the
 * answer" (a user string that broke the JSON encoder) or carries
 * Content-Type application/json with a body that does not parse.
 *
 * The state dir is a temp dir (in /dev/shm when there is one: SQLite's
 * fsyncs cost nothing there), removed at exit. No container engine (its
 * socket does not exist), no scheduler (created tasks stay queued).
 * Inputs that name a "hostPath" are skipped: a volume request would make
 * that directory on this machine.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "common/config.h"
#include "common/fs.h"
#include "tasks/store_open.h"

#define READ_DEADLINE_MS 1000
#define MAX_ANSWER (4 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct boxd_config cfg;
static struct api_server *srv;
static char dir[64], parent[16];

static void teardown(void)
{
	api_server_stop(srv);
	srv = NULL;
	char err[256];
	const char *const roots[] = { parent, NULL };
	fs_remove_tree(roots, dir, err, sizeof(err));
	config_release(&cfg);
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	snprintf(parent, sizeof(parent), "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	snprintf(dir, sizeof(dir), "%s/boxd-fuzz-api.XXXXXX", parent);
	if (!mkdtemp(dir))
		abort();
	char err[512], sock[128];
	unsetenv("BOXD_STORE_BACKEND");
	unsetenv("BOXD_STORE_DSN");
	unsetenv("BOXD_SOCKET");
	if (config_load(&cfg, NULL, dir, err, sizeof(err)) < 0)
		abort();
	snprintf(sock, sizeof(sock), "%s/no-engine.sock", dir);
	config_set(&cfg.engine_socket, sock);
	/* The pool opens the store without migrating: create the schema. */
	struct store *s;
	if (store_open_config(&cfg, 0, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-api: %s\n", err);
		abort();
	}
	store_close(s);
	struct api_opts o = { .config = &cfg, .host = "fuzz-host", .owner_id = "fuzz-host/000000000000", .started_at_ms = 1 };
	if (api_server_start(&o, &srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-api: %s\n", err);
		abort();
	}
	atexit(teardown);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every whole answer in `buf` (a connection may carry several): check
 * what boxd itself must guarantee. */
static void check_answers(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!head_end)
			return;
		const char *body = head_end + 4;
		long clen = -1;
		int status = 0;
		bool json = false;
		sscanf(p, "HTTP/1.%*d %d", &status);
		for (const char *l = p; l < head_end;) {
			const char *eol = memmem(l, (size_t)(head_end - l), "\r\n", 2);
			if (!eol)
				eol = head_end;
			size_t n = (size_t)(eol - l);
			if (n > 15 && strncasecmp(l, "Content-Length:", 15) == 0)
				clen = strtol(l + 15, NULL, 10);
			if (n >= 30 && strncasecmp(l, "Content-Type: application/json", 30) == 0)
				json = true;
			l = eol + 2;
		}
		if (clen < 0 || clen > end - body)
			return; /* a stream, or cut by the deadline */
		if (json) {
			json_error_t jerr;
			json_t *v = json_loadb(body, (size_t)clen, JSON_DECODE_ANY, &jerr);
			if (!v) {
				fprintf(stderr, "fuzz-api: a JSON answer does not parse: %s\n", jerr.text);
				abort();
			}
			/* api_reply_json()'s last resort: a body that could not
			 * be encoded (a user string that is not UTF-8). */
			const char *msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
			if (status == 500 && msg && strcmp(msg, "cannot encode the answer") == 0) {
				fprintf(stderr, "fuzz-api: an answer could not be encoded\n");
				abort();
			}
			json_decref(v);
		}
		p = body + clen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	if (memmem(data, size, "hostPath", 8))
		return 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg.socket_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort(); /* the server stopped accepting */
	/* Send what the server takes; it may answer and close early. */
	size_t off = 0;
	int64_t until = now_ms() + READ_DEADLINE_MS;
	char *answer = malloc(MAX_ANSWER);
	size_t got = 0;
	while (off < size && now_ms() < until) {
		struct pollfd p = { .fd = fd, .events = POLLOUT | POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		if (p.revents & POLLIN)
			break;
		ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN)
			break;
		if (n > 0)
			off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	while (answer && got < MAX_ANSWER) {
		int64_t left = until - now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = recv(fd, answer + got, MAX_ANSWER - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (answer)
		check_answers(answer, got);
	free(answer);
	return 0;
}
