/* engine.h — a client for the Docker Engine REST API (v1.41 to v1.44,
 * negotiated) on a unix socket.
 *
 * boxd runs its app and service containers through this module. It speaks
 * the Docker Engine API over a unix socket (libcurl) and works against Docker
 * and against Podman's Docker-compatible service (`podman system service`).
 * It does not log; every failure is a negative errno plus a message.
 *
 * Handles: a `struct engine` is one connection (one curl easy handle, kept
 * alive between requests) and belongs to one thread at a time. Threads open
 * their own; handles share nothing. No global initialisation is needed
 * (curl_global_init runs once, on first use, under pthread_once).
 *
 *	struct engine *e;
 *	r = engine_open(NULL, &e);                 // autodetect the socket
 *	if (r < 0) ...                             // see engine_open_opts() for a message
 *	char id[ENGINE_ID_MAX];
 *	struct engine_container_spec spec = { .name = "app-x", .image = "localhost/x:1" };
 *	r = engine_container_create(e, &spec, id);
 *	if (r < 0)
 *		fprintf(stderr, "create: %s\n", engine_errmsg(e));
 *	r = engine_container_start(e, id);         // 0 started, 1 was already running
 *	engine_close(e);
 *
 * Errors (every function that talks to the engine):
 *	-ENOENT        the container or image does not exist (HTTP 404); also a
 *	               socket path that does not exist
 *	-EEXIST        a container of that name exists already (Docker: 409;
 *	               Podman: 500 "that name is already in use")
 *	-EBUSY         other conflicts: removing a running container without
 *	               force, an operation already in progress (409; Podman:
 *	               500 "container state improper")
 *	-EINVAL        bad arguments (checked here before anything is sent) or
 *	               refused by the engine as bad input (HTTP 400)
 *	-EACCES        HTTP 401/403, or no permission on the socket
 *	-ECONNREFUSED  the socket exists but nobody listens on it
 *	-ETIMEDOUT     no complete answer within the request's timeout
 *	-EBADMSG       the reply is not what the API promises (bad JSON, a
 *	               missing Id, a corrupt log stream)
 *	-EMSGSIZE      the reply exceeds engine_options.max_reply_bytes
 *	-EIO           any other engine failure (HTTP 5xx) or transport error
 *	-ENOMEM
 * engine_errmsg() then says what happened in words a user can read: the
 * engine's own JSON "message" verbatim for HTTP errors (e.g. `no container
 * with name or ID "x" found: no such container`), or for a transport error
 * "container engine not reachable at /run/podman/podman.sock: Connection
 * refused". Callers add their own context ("starting app x: %s").
 *
 * Replies are input from outside and parsed defensively: a missing or
 * mistyped field reads as "" (strings), 0 or false; it never crashes and is
 * not an error unless the call cannot mean anything without it (the Id of a
 * created container). Strings in result structs are never NULL.
 *
 * Ownership: argument strings are only read during the call. Result structs
 * (engine_version, engine_image, engine_container and the lists) are filled
 * in caller-owned memory; their strings and arrays stay valid until the
 * matching *_release(), which accepts a struct that was never filled
 * (zeroed) or already released. `ret` arguments are written only on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The API version boxd was first written for; what a handle speaks is
 * negotiated (see "API version" below). */
#define ENGINE_API_VERSION "1.41"

/* Sockets tried by engine_open(NULL, ...), in this order. */
#define ENGINE_DOCKER_SOCKET "/var/run/docker.sock"
#define ENGINE_PODMAN_SOCKET "/run/podman/podman.sock"

/* Container ids are 64 hex digits; a buffer of this size holds one and its
 * NUL. */
#define ENGINE_ID_MAX 65

struct engine;

struct engine_options {
	/* Unix socket of the engine. NULL: autodetect (see engine_open). */
	const char *socket_path;
	/* NULL-terminated candidates for autodetection instead of
	 * { ENGINE_DOCKER_SOCKET, ENGINE_PODMAN_SOCKET }. */
	const char *const *autodetect_paths;
	/* 0 means the default given in brackets. */
	int connect_timeout_ms;   /* [2000] connecting to the socket */
	int timeout_ms;           /* [30000] reads: ping, version, inspect, list, logs */
	int long_timeout_ms;      /* [300000] create, start, stop, restart, remove;
	                           * stop and restart add their own stop timeout */
	size_t max_reply_bytes;   /* [64 MiB] a larger reply fails with -EMSGSIZE */
	int retry_ms;             /* [10000] riding out transient container states
	                           * (see "Transient states"); < 0: no retries */
};

/* Open a handle on the engine at `socket_path`, or autodetect one when it is
 * NULL: the first of ENGINE_DOCKER_SOCKET and ENGINE_PODMAN_SOCKET that is a
 * socket and answers GET /_ping.
 *
 * With an explicit path nothing is sent yet (the daemon may start before the
 * engine does); the first request reports an unreachable engine, and
 * engine_ping() is the way to check reachability.
 *
 * Returns 0, or -EINVAL (empty path or one too long for a unix socket),
 * -ENOENT (autodetect: no candidate exists), -ECONNREFUSED / -ETIMEDOUT /
 * -EACCES ... (autodetect: a candidate exists but none answered; the error
 * of the first such candidate), -ENOMEM. *ret is untouched on failure. */
int engine_open(const char *socket_path, struct engine **ret);

/* Like engine_open() with all options; on failure a message for the user is
 * written to errbuf (when errbuf is not NULL), e.g. "no container engine
 * found (tried /var/run/docker.sock, /run/podman/podman.sock)". */
int engine_open_opts(const struct engine_options *opts, struct engine **ret, char *errbuf, size_t errlen);

/* Load the engine's HTTP client library (libcurl, loaded when first needed:
 * engine/curl_lib.h) now, in the calling thread, if this process will talk
 * to an engine: socket_path is set, or (NULL) one of the default sockets
 * exists. A process that opens engines from threads it starts calls it
 * first: libcurl initialises OpenSSL, and OpenSSL leaves per-thread state
 * behind in a thread that initialises it and then ends. 0, or the negative
 * errno of the load (the first engine_open() reports it again). */
int engine_library_preload(const char *socket_path);

/* Close the connection and free the handle; accepts NULL. */
void engine_close(struct engine *e);

/* The socket this handle talks to (the detected one after autodetection). */
const char *engine_socket_path(const struct engine *e);

/* Message of the last failed call on this handle; "" after a call that
 * succeeded. Valid until the next call on the handle. */
const char *engine_errmsg(const struct engine *e);

/* ---- the engine --------------------------------------------------------- */

/* GET /_ping: 0 when the engine answers "OK". Uses min(timeout_ms, 5 s), so
 * that a status page does not hang on a stuck engine. */
int engine_ping(struct engine *e);

struct engine_version {
	const char *api_version;      /* "1.41" */
	const char *min_api_version;
	const char *version;          /* the engine's version, "4.3.1" */
	const char *os;               /* "linux" */
	const char *arch;
	const char *kernel_version;
	/* Name of the first component: "Podman Engine" for Podman, "Engine"
	 * for Docker; "" when the engine lists none. */
	const char *product;
	void *priv_;                  /* private: the parsed reply */
};

int engine_version(struct engine *e, struct engine_version *ret);
void engine_version_release(struct engine_version *v);

/* ---- images ------------------------------------------------------------- */

struct engine_image {
	const char *id;               /* "sha256:..." */
	/* "repo:tag" names, NULL-terminated; dangling images have none
	 * (Docker's "<none>:<none>" is left out). */
	const char **repo_tags;
	size_t n_repo_tags;
	int64_t size;                 /* bytes */
	int64_t created_ms;           /* wall ms since the epoch; 0 unknown */
	void *priv_;
};

struct engine_image_list {
	struct engine_image *v;
	size_t n;
};

/* All local images (GET /images/json). */
int engine_image_list(struct engine *e, struct engine_image_list *ret);
void engine_image_list_release(struct engine_image_list *l);

/* Inspect an image by name ("localhost/x:latest"), id or digest reference.
 * -ENOENT when the engine has no such image. */
int engine_image_inspect(struct engine *e, const char *name, struct engine_image *ret);
void engine_image_release(struct engine_image *img);

/* 1 when the image exists locally, 0 when not, negative errno when the
 * engine cannot tell. */
int engine_image_exists(struct engine *e, const char *name);

/* ---- creating containers ------------------------------------------------ */

struct engine_kv {
	const char *key;
	const char *value;
};

enum engine_mount_type {
	ENGINE_MOUNT_BIND,            /* source: absolute host path */
	ENGINE_MOUNT_VOLUME,          /* source: a named volume */
	ENGINE_MOUNT_TMPFS,           /* source: NULL */
};

/* Bind mount propagation (mount(8) "--make-*"). DEFAULT leaves it to the
 * engine (rprivate). */
enum engine_propagation {
	ENGINE_PROPAGATION_DEFAULT,
	ENGINE_PROPAGATION_PRIVATE,
	ENGINE_PROPAGATION_RPRIVATE,
	ENGINE_PROPAGATION_SHARED,
	ENGINE_PROPAGATION_RSHARED,
	ENGINE_PROPAGATION_SLAVE,
	ENGINE_PROPAGATION_RSLAVE,
};

/* "rslave" etc.; "" for DEFAULT. from_string accepts "" (DEFAULT) and
 * returns -EINVAL for anything unknown. */
const char *engine_propagation_to_string(enum engine_propagation p);
int engine_propagation_from_string(const char *s, enum engine_propagation *ret);

/* Mounts are sent as HostConfig.Mounts, except a recursive bind mount on
 * Podman (below). Note that an engine may create a missing bind source
 * (Podman does, even for Mounts); a caller that must not create host
 * directories checks the sources itself.
 *
 * Recursion: a bind mount shows only the source's own filesystem unless it
 * is recursive (rbind), which also shows every mount below the source as it
 * was when the container started. Docker's Mounts are recursive by default
 * (BindOptions.NonRecursive is how one opts out; it is sent as
 * !recursive). Podman's compatible API (4.x) binds Mounts non-recursively
 * whatever BindOptions say and understands recursion only in Binds, so on
 * Podman a recursive bind is sent as a Binds entry "SRC:DST:OPTIONS" with
 * OPTIONS "ro"/"rw", the propagation, and "rbind" — its source and target
 * must then not contain ':' or ',' (-EINVAL). Which engine answers is
 * asked once per handle (engine_is_podman).
 *
 * Read-only is the top mount's: the mounts below a read-only recursive bind
 * keep their own flags (runc remounts only the top; Docker does the same
 * before API 1.44, and from 1.44 on when told ReadOnlyNonRecursive, which
 * this client then sends). */
struct engine_mount {
	enum engine_mount_type type;
	const char *source;
	const char *target;           /* absolute path inside the container */
	bool read_only;
	enum engine_propagation propagation;  /* bind mounts only */
	bool recursive;               /* bind mounts only: rbind */
};

enum engine_restart_policy {
	ENGINE_RESTART_NO,
	ENGINE_RESTART_ALWAYS,
	ENGINE_RESTART_UNLESS_STOPPED,
	ENGINE_RESTART_ON_FAILURE,
};

/* "no", "always", "unless-stopped", "on-failure" and back (-EINVAL). */
const char *engine_restart_policy_to_string(enum engine_restart_policy p);
int engine_restart_policy_from_string(const char *s, enum engine_restart_policy *ret);

/* Publish container_port/protocol on host_ip:host_port. */
struct engine_port_binding {
	uint16_t container_port;      /* required */
	const char *protocol;         /* "tcp" (NULL), "udp" or "sctp" */
	const char *host_ip;          /* NULL: all addresses */
	uint16_t host_port;           /* 0: the engine picks one */
};

/* What engine_container_create() makes. Zero/NULL means "not set" for every
 * field, so `{ .image = "x" }` is a valid spec. The spec is turned into JSON
 * with jansson, so any string is sent as data, never as syntax. */
struct engine_container_spec {
	const char *name;             /* [a-zA-Z0-9][a-zA-Z0-9_.-]*; NULL: engine picks */
	const char *image;            /* required */
	const char *const *cmd;       /* NULL-terminated argv; NULL: the image's CMD */
	const char *const *entrypoint;/* NULL-terminated; NULL: the image's */
	const char *const *env;       /* NULL-terminated "KEY=VALUE" strings */
	const struct engine_kv *labels;
	size_t n_labels;
	const struct engine_mount *mounts;
	size_t n_mounts;
	enum engine_restart_policy restart;
	int restart_max_retries;      /* on-failure only; 0: no limit */
	const char *network_mode;     /* NULL: engine default (bridge); "host",
	                               * "none", "bridge" or a network's name */
	const struct engine_port_binding *ports;
	size_t n_ports;
	int64_t memory_bytes;         /* 0: no limit */
	const char *user;             /* NULL: the image's */
	const char *working_dir;      /* NULL: the image's */
	/* Seconds between SIGTERM and SIGKILL when the container is stopped
	 * without an explicit timeout. 0: 10 s, Docker's default, sent
	 * explicitly because Podman's compatible API otherwise uses 0 (an
	 * immediate SIGKILL). < 0: whatever the engine does. */
	int stop_timeout_s;
	bool tty;                     /* allocate a TTY (logs are then not multiplexed) */
};

/* Create a container (not started). On success writes its full id to
 * ret_id (ENGINE_ID_MAX bytes). -EINVAL with a message for a bad spec (no
 * image, relative mount target, bad name, env entry without '=', ...);
 * -ENOENT when the image does not exist (nothing is pulled); -EEXIST when
 * the name is taken. */
int engine_container_create(struct engine *e, const struct engine_container_spec *spec, char ret_id[ENGINE_ID_MAX]);

/* 1 when the engine is Podman's Docker-compatible service (its replies
 * carry a "Libpod-Api-Version" header), 0 when it is another engine
 * (Docker), negative errno when it cannot tell. Learnt from the headers of
 * engine_ping() (at most one extra ping per handle; GET /version takes
 * seconds on a loaded Podman). */
int engine_is_podman(struct engine *e);

/* ---- running containers -------------------------------------------------- */

/* `id` below is a container id, a unique id prefix or a name.
 *
 * Transient states. An engine refuses an operation on a container that is
 * in the middle of another one (Docker: 409; Podman: 500 "container state
 * improper", "timed out waiting for file .../exits/...", "is running or
 * paused, refusing to clean up"), e.g. a start while the container is
 * being stopped by its restart policy or by someone else. start, stop,
 * restart and remove ride such states out: after a transient error they
 * look at the container (inspect) and either find the goal already reached
 * or try again, with a backoff from 50 ms to 1 s, for at most
 * engine_options.retry_ms in all. They are idempotent: starting a running
 * container, stopping a stopped one are successes (1). When they give up,
 * engine_errmsg() ends with the container's state as the engine last
 * reported it, e.g. "... (container state: exited, exit code 137)". */

/* Start. Returns 0 when started, 1 when it was already running (HTTP 304,
 * or found running after a transient error). */
int engine_container_start(struct engine *e, const char *id);

/* Stop: SIGTERM, then SIGKILL after timeout_s seconds (< 0: the
 * container's own stop timeout). Returns 0 when stopped, 1 when it was not
 * running (HTTP 304, or found stopped after a transient error). */
int engine_container_stop(struct engine *e, const char *id, int timeout_s);

/* Restart (stop as above, then start); the id stays the same. A stopped
 * container is started — also one that stopped while the restart was in
 * progress (Podman then answers "container state improper"): the goal is
 * a running container that was (re)started by this call. */
int engine_container_restart(struct engine *e, const char *id, int timeout_s);

/* Rename a container (POST /containers/{id}/rename). -EEXIST when the new
 * name is taken, -ENOENT when there is no such container. */
int engine_container_rename(struct engine *e, const char *id, const char *new_name);

enum {
	/* Kill it first if it runs. Done as a stop with timeout 0 before the
	 * forced remove: Docker kills at once on a forced remove, but
	 * Podman's compatible API waits the container's stop timeout. */
	ENGINE_REMOVE_FORCE = 1 << 0,
	ENGINE_REMOVE_VOLUMES = 1 << 1,  /* also remove its anonymous volumes */
};

/* Remove. -ENOENT when there is no such container (callers that only want
 * it gone may treat that as success); -EBUSY when it runs and FORCE is not
 * given. */
int engine_container_remove(struct engine *e, const char *id, unsigned flags);

/* A bind mount or volume as the engine reports it. */
struct engine_mount_info {
	const char *type;             /* "bind", "volume", "tmpfs" */
	const char *source;           /* host path or volume name */
	const char *destination;
	const char *propagation;      /* "rslave", ...; "" when not reported */
	bool read_only;
};

struct engine_container {
	const char *id;
	const char *name;             /* without Docker's leading '/' */
	const char *image;            /* as given at create, "localhost/x:1" */
	const char *image_id;
	/* "created", "running", "paused", "restarting", "exited", "dead"
	 * (and Podman's "stopped", "configured" in some versions). */
	const char *status;
	bool running;
	int exit_code;                /* of the last run */
	int pid;                      /* 0 when not running */
	int64_t created_ms;           /* wall ms since the epoch; 0 unknown */
	int64_t started_ms;           /* last start; 0 never */
	int64_t finished_ms;          /* last exit; 0 never */
	int restart_count;
	/* The image's (or container's) healthcheck: State.Health.Status,
	 * "starting", "healthy" or "unhealthy"; "" when there is none.
	 * Inspect only. */
	const char *health;
	int health_failing_streak;    /* consecutive failed checks */
	bool tty;
	struct engine_kv *labels;
	size_t n_labels;
	struct engine_mount_info *mounts;
	size_t n_mounts;
	void *priv_;                  /* private: the parsed reply */
};

/* Inspect one container (GET /containers/{id}/json). All fields are
 * filled. -ENOENT when it does not exist. */
int engine_container_inspect(struct engine *e, const char *id, struct engine_container *ret);
void engine_container_release(struct engine_container *c);

/* The container's IPv4 address on the engine's network, from an inspect:
 * NetworkSettings.IPAddress (Docker's default bridge), else that of the
 * first of NetworkSettings.Networks by name (Podman, named networks).
 * -ENOENT when it has none (not running, host or no network); -ENOSPC
 * when buf is too small. (engine_net.c) */
int engine_container_address(const struct engine_container *c, char *buf, size_t len);

/* Value of label `key`, or NULL when the container has no such label. */
const char *engine_container_label(const struct engine_container *c, const char *key);

struct engine_container_list {
	struct engine_container *v;
	size_t n;
};

/* Containers that carry all of `labels` (NULL-terminated, each "key" or
 * "key=value"; NULL or empty: every container). Running ones only, unless
 * `all`. The list API reports less than inspect: id, name, image, image_id,
 * status, running, created_ms, labels and mounts are filled, the rest is 0.
 * Order is the engine's. */
int engine_container_list(struct engine *e, const char *const *labels, bool all,
			  struct engine_container_list *ret);
void engine_container_list_release(struct engine_container_list *l);

enum {
	ENGINE_LOGS_STDOUT = 1 << 0,
	ENGINE_LOGS_STDERR = 1 << 1,
	ENGINE_LOGS_TIMESTAMPS = 1 << 2, /* prefix lines with RFC 3339 times */
};

struct engine_logs_opts {
	unsigned flags;               /* no stream bit: stdout and stderr */
	/* Only the last N lines; 0: all. Podman counts them over both
	 * streams before it selects the streams asked for, so with one
	 * stream fewer than N lines (even none) may come back. */
	int tail;
};

/* The container's log so far (it does not follow), stdout and stderr
 * interleaved in the order the engine recorded them. Handles both the
 * multiplexed stream (8-byte frame headers, containers without a TTY) and
 * the raw one (TTY). opts may be NULL (everything). On success *ret_text
 * is a malloc'ed, NUL-terminated buffer of *ret_len bytes (the log may
 * itself contain NULs) that the caller frees. */
int engine_container_logs(struct engine *e, const char *id, const struct engine_logs_opts *opts,
			  char **ret_text, size_t *ret_len);

/* ---- following a log ---------------------------------------------------- */

/* A followed log: GET /containers/{id}/logs?follow=1, demultiplexed like
 * engine_container_logs(), read piece by piece as the container writes.
 * It has a connection of its own (not the handle's) and belongs to one
 * thread at a time.
 *
 *	struct engine_log_follow *f;
 *	r = engine_logs_follow_open(e, "app-x", &(struct engine_logs_opts){ .tail = 10 }, &f);
 *	for (;;) {
 *		n = engine_logs_follow_read(f, buf, sizeof(buf), client_fd, 15000);
 *		if (n > 0) send(buf, n);
 *		else if (n == -EAGAIN) send a keepalive;
 *		else break;        // 0: ended; -ECANCELED: client_fd; else error
 *	}
 *	engine_logs_follow_close(f);
 */
struct engine_log_follow;

/* Start following container `id`: first what opts selects of the log so
 * far (tail N: the last N lines; 0: all of it; < 0: none, only what comes
 * from now on), then every line as it is written, until the container
 * stops (then the engine ends the stream; Docker and Podman both do).
 * `e` is used only during this call (inspect for the TTY, the API
 * version); it may be closed afterwards. -ENOENT (no such container) and
 * the other errors of the header's list, with engine_errmsg(e), come from
 * that inspect; the follow request itself is only started here (Podman
 * answers its status line with the first byte of log, which may take
 * long): what the engine answers to it is seen by the reads. */
int engine_logs_follow_open(struct engine *e, const char *id, const struct engine_logs_opts *opts,
			    struct engine_log_follow **ret);

/* Wait up to timeout_ms (< 0: no limit) for more of the log and copy up
 * to max bytes of it to buf (not NUL-terminated; a read may end inside a
 * line or a UTF-8 sequence). Returns early when watch_fd (>= 0; -1: none)
 * becomes readable or hangs up — e.g. the socket of a client that went
 * away. Returns the number of bytes (> 0); 0 when the log ended (the
 * container stopped, or the engine closed the stream); -EAGAIN when the
 * time passed with nothing new; -ECANCELED when watch_fd is ready; else a
 * negative errno (-EBADMSG a corrupt stream, -EIO, -ENOMEM) with
 * engine_logs_follow_errmsg(). After 0 or an error every read returns
 * the same. While the reader does not read, the engine's stream is held
 * back once 1 MiB is buffered. */
int engine_logs_follow_read(struct engine_log_follow *f, char *buf, size_t max, int watch_fd, int timeout_ms);

/* The message of the last failed read ("" before one). */
const char *engine_logs_follow_errmsg(const struct engine_log_follow *f);

/* Stop following (closes the connection); accepts NULL. */
void engine_logs_follow_close(struct engine_log_follow *f);

/* ---- pulling images --------------------------------------------------- */

/* Credentials for a registry, sent as X-Registry-Auth (base64url JSON, as
 * Docker's clients send it). `server` is the registry host the credentials
 * are for ("127.0.0.1:5000", "ghcr.io"; Docker Hub: "docker.io"). The
 * strings are only read during the call; the encoded header is wiped from
 * memory after the request. */
struct engine_registry_auth {
	const char *username;
	const char *password;
	const char *server;
};

/* How far a pull is, summed over the layers seen so far: a layer's size is
 * known once its download starts, so total_bytes may grow. */
struct engine_pull_progress {
	int64_t current_bytes;
	int64_t total_bytes;
	size_t layers;
	size_t layers_done;
};

/* Called from inside engine_image_pull() whenever progress arrived (at
 * most a few times a second). */
typedef void (*engine_pull_cb)(const struct engine_pull_progress *p, void *userdata);

/* Pull `ref` ("127.0.0.1:5000/wiki:1", "nginx", "repo@sha256:...") with
 * POST /images/create; no tag means "latest". `auth` may be NULL
 * (anonymous). Blocks until the engine has the image or gives up; there is
 * no overall timeout, but a pull that sends nothing for long_timeout_ms
 * fails with -ETIMEDOUT.
 *
 * Errors: -EINVAL bad reference; -EACCES the registry refused the
 * credentials or wants some ("unauthorized"); -ENOENT no such image or tag
 * ("manifest unknown", "not found"); -EIO any other failure. The engine
 * reports a failed pull inside a 200 stream; either way engine_errmsg()
 * is the engine's (registry's) reason verbatim, e.g. "initializing source
 * docker://...: reading manifest 1 in ...: manifest unknown". */
int engine_image_pull(struct engine *e, const char *ref, const struct engine_registry_auth *auth,
		      engine_pull_cb cb, void *userdata);

/* Remove a local image by name or id (DELETE /images/{name}); `force`
 * also removes it while containers use it. -ENOENT when there is none. */
int engine_image_remove(struct engine *e, const char *name, bool force);

/* The registry host `ref` is pulled from: its first component when that
 * looks like a host (has '.' or ':', or is "localhost"), else "docker.io".
 * 0, or -EINVAL for a bad reference or a too small buffer. */
int engine_image_registry(const char *ref, char *buf, size_t buflen);

/* ---- API version -------------------------------------------------------- */

/* The Docker API versions boxd speaks. Every handle negotiates before its
 * first versioned request, as Docker's own clients do: the engine's API
 * version, capped at ENGINE_API_VERSION_HIGHEST, is the /vX.Y prefix of
 * every request. The engine's version comes from the API-Version header of
 * GET /_ping (which engine_ping() and autodetection send anyway), else from
 * ApiVersion and MinAPIVersion of an unversioned GET /version (Podman's
 * takes seconds on a busy host: it runs conmon and runc). An engine whose
 * version is below ENGINE_API_VERSION_MIN, or whose MinAPIVersion is above
 * the version chosen, is refused: every call then fails with
 * -EPROTONOSUPPORT and a message naming both versions. (/_ping does not
 * report a minimum; an engine that refuses the version chosen says so
 * itself, e.g. Docker 29's "client version 1.43 is too old. Minimum
 * supported API version is 1.44".)
 *
 * From 1.44 on a read-only bind is recursively read-only on Docker; the
 * create request then sends BindOptions.ReadOnlyNonRecursive for a
 * recursive read-only bind, so that read-only stays the top mount's (what
 * the sftp service's read-only roots expect: the data dirs below them are
 * writable mounts of their own). */
#define ENGINE_API_VERSION_MIN "1.41"
#define ENGINE_API_VERSION_HIGHEST "1.44"
#define ENGINE_API_VERSION_MAX 16   /* buffer for "1.41" and its NUL */

/* The version this handle speaks, negotiating first if it has not yet.
 * 0 and the version in ret (ENGINE_API_VERSION_MAX bytes), or a negative
 * errno with the message set. */
int engine_api_version(struct engine *e, char ret[ENGINE_API_VERSION_MAX]);
