/* pg-drop-relay.h — FAKE (named so): a stand-in for a PostgreSQL server
 * that goes away between accepting a connection and answering it (killed
 * or restarting), a moment no test can time for real. A child process
 * listens on a unix socket laid out as libpq expects
 * (<dir>/.s.PGSQL.<port>), relays one connection to the real server, and
 * closes both ends when the client sends its `drop_at`-th simple query
 * ('Q') after the startup: the server's answer to the startup has passed,
 * that query never reaches it. */
#pragma once

#include <limits.h>
#include <sys/types.h>

struct pg_drop_relay {
	pid_t pid;
	char dir[PATH_MAX]; /* the DSN's host */
	int port;           /* the DSN's port */
};

/* Relay to the server at unix socket `server_socket`. 0, or -1 (errno). */
int pg_drop_relay_start(struct pg_drop_relay *r, const char *server_socket, int drop_at);
void pg_drop_relay_stop(struct pg_drop_relay *r);
