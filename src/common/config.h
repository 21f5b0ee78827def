/* config.h — boxd's configuration: defaults, the INI file, overrides.
 *
 * Precedence: built-in defaults < config file (--config FILE) < environment
 * (BOXD_STATE_DIR, BOXD_SOCKET, BOXD_ENGINE_SOCKET, BOXD_INSTALL_ROOT) <
 * command-line flags.
 * DOCKER_HOST=unix://PATH, which every Docker client reads, names the
 * engine only when neither the file nor BOXD_ENGINE_SOCKET does. Relative
 * paths are made absolute against the working directory at load time.
 * The daemon and its workers read the same file, so a worker sees what its
 * daemon saw: the daemon passes --config and --state-dir on to every worker
 * it spawns.
 * See etc/boxd.conf for every key with its meaning.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_TIMEOUTS 16

struct config_timeout {
	char type[32];
	int64_t ms;
};

struct boxd_config {
	char *state_dir;            /* [boxd] state_dir */
	char *socket_path;          /* [api] socket (default <state_dir>/boxd.sock) */
	char *listen;               /* [api] listen = HOST:PORT for TCP; NULL = none */
	char *tokens_file;          /* [api] tokens_file (default <state_dir>/api-tokens) */
	int api_max_connections;    /* [api] max_connections: TCP connections at once, default 64 */
	int api_max_per_ip;         /* [api] max_connections_per_ip: default 16 */
	int64_t api_idle_timeout_ms; /* [api] idle_timeout: close a silent connection, default 30s */
	char *tls_cert, *tls_key;   /* [api] tls_cert, tls_key: PEM files; TLS on the TCP listener */
	int64_t api_session_lifetime_ms; /* [api] session_lifetime: a dashboard login, default 12h */
	int log_level;              /* [boxd] log_level */
	char *host_id;              /* [host] id (or $BOXD_HOST_ID); NULL: /etc/machine-id (proc.h) */
	char *host_api_url;         /* [host] api_url: how other hosts' users reach this host's API
				     * (shown in GET /hosts); NULL: unknown */
	char *task_user;            /* [tasks] user: run workers via sudo -n -u USER */
	int app_task_concurrency;   /* [tasks] app_concurrency, default 5 */
	int64_t stop_grace_ms;      /* [tasks] stop_grace, default 10s */
	int64_t backup_wait_max_ms; /* [tasks] backup_wait_max, default 1h: how long a request for an
				     * exclusive lock that a running full backup holds shared (an
				     * update's apply, platformstart) waits outside the lock queue */
	int64_t default_timeout_ms; /* [timeouts] default, default 6h */
	struct config_timeout timeouts[CONFIG_MAX_TIMEOUTS]; /* [timeouts] <type> = DURATION */
	int n_timeouts;
	/* [store] */
	char *store_backend;        /* sqlite | mysql | postgres */
	char *sqlite_path;          /* default <state_dir>/boxd.db */
	char *dsn;
	int64_t lease_ms;           /* [store] lease: multi-host lock leases; 0 = off, -1 = auto
				     * (read it through config_lease_ms()) */
	int64_t outage_grace_ms;    /* [store] outage_grace: how long workers and the daemon retry
				     * a store that is busy, unreachable or full before a task
				     * fails; default 5 min, 0 = retry for ever */
	/* [locks] */
	bool lock_broker;           /* [locks] broker = on|off (default on): workers take their
				     * locks through the daemon's lock broker (locks/broker.h) */
	/* [engine] */
	char *engine_socket;        /* NULL = autodetect; see config_docker_host_socket() */
	bool engine_shared;         /* [engine] shared: other boxd hosts use this engine too, so
				     * service containers carry the host id in their name
				     * (service_container_name()); default no */
	/* [paths] */
	char *appsdata_root;        /* default <state_dir>/appsdata */
	char *volumes_root;         /* default <state_dir>/volumes */
	char *backups_dir;          /* default <state_dir>/backups */
	char *backups_format;       /* [backups] format = zstd | gzip (default zstd) */
	int backups_keep;           /* [backups] keep = N full backups (default 7) */
	int64_t backups_max_archive_size; /* [backups] max_archive_size: bytes, 0 = no limit (default) */
	bool backups_restore_special;     /* [backups] restore_special: setuid/setgid bits, device
					   * nodes, fifos (default no) */
	bool backups_restore_foreign_owners; /* [backups] restore_foreign_owners: owners of archives
					      * boxd cannot authenticate (default no) */
	char *backups_schedule;     /* [backups] schedule: calendar.h grammar, UTC; NULL = none */
	int64_t backups_random_delay_ms; /* [backups] random_delay: up to this late (default 0) */
	char *backups_passphrase_file; /* [backups] encryption_passphrase_file (backup_crypt.h) */
	char *backups_key_file;        /* [backups] encryption_key_file: 32 bytes, raw or hex */
	char *backups_target;       /* [backups] target = sftp://user@host[:port]/path (NULL: local only) */
	char *backups_ssh_key_file; /* [backups] ssh_key_file: the private key for the target */
	char *backups_known_hosts;  /* [backups] known_hosts: the target's pinned host key, OpenSSH
				     * known_hosts format (default <state_dir>/backup_known_hosts) */
	/* [sched] */
	int64_t sftp_quiet_ms;      /* default 1s */
	/* [sftp] the sftp service container */
	char *sftp_authorized_keys_file; /* authorized_keys (default <state_dir>/sftp_authorized_keys) */
	int sftp_port;              /* port sshd listens on (host network), default 2222 */
	char *sftp_image;           /* default localhost/boxd/sftp:latest */
	int64_t sftp_memory_bytes;  /* memory_limit, default 256M; 0 = no limit */
	int64_t sftp_rebuild_max_delay_ms; /* rebuild_max_delay, default 10min; 0 = none:
				     * a pending rebuild waits for app work to go quiet */
	/* [update] */
	char *install_root;         /* install_root: releases/<version>, current; default
				     * BOXD_INSTALL_ROOT (meson option install_root, /var/lib/boxd) */
	/* Where the config came from, for messages. */
	char *config_path;
	/* [registries]: credentials per registry host (config_registry_for). */
	struct config_registry *registries;
	int n_registries;
	/* [proxy]: the reverse-proxy service (services/proxy.h). */
	struct config_proxy {
		bool enabled;           /* enabled: run boxd-proxy, allow domains (default no) */
		char *image;            /* image, default localhost/boxd/proxy:latest */
		int http_port;          /* http_port, default 80 (host network) */
		int https_port;         /* https_port, default 443 */
		char *acme_ca;          /* acme_ca: ACME directory URL; NULL: Caddy's default CAs */
		char *acme_email;       /* acme_email: the ACME account's contact; NULL: none */
		char *acme_ca_root;     /* acme_ca_root: PEM file of roots trusted for the ACME
					 * server's own HTTPS (a private CA); NULL: the system's */
	} proxy;
};

/* For config.c: defaults of [proxy], one key of it (0, or -EINVAL with a
 * message in err), and the release (config_proxy.c). */
void config_proxy_defaults(struct boxd_config *cfg);
int config_proxy_handle(struct boxd_config *cfg, const char *name, const char *value, char *err, size_t errlen);
void config_proxy_release(struct boxd_config *cfg);

/* One block of [registries]:
 *	host = 127.0.0.1:5000      starts a block (a registry host, as in
 *	                           image names; Docker Hub: docker.io)
 *	username = boxd
 *	password = ...             or password_file = PATH (its first line,
 *	                           read at each pull, so a changed file
 *	                           counts from the next pull on)
 * The password is a secret: never printed, wiped on release. */
struct config_registry {
	char *host;
	char *username;
	char *password;             /* NULL when password_file is set */
	char *password_file;
};

/* The password of `reg` (inline, or read from its password_file now),
 * malloc'ed: the caller wipes (explicit_bzero) and frees it. 0 or negative
 * errno (-ENOENT, -EACCES, -EFBIG for a file over 4 KiB, -ENOMEM). */
int config_registry_password(const struct config_registry *reg, char **ret);

/* The credentials for registry `host` ("docker.io", "index.docker.io" and
 * "registry-1.docker.io" are one), or NULL. Valid until config_release. */
const struct config_registry *config_registry_for(const struct boxd_config *cfg, const char *host);

/* For config.c: one key of [registries], the check after loading (each
 * block complete, no host twice), and the release. 0 or negative errno
 * with a message in err that names no secret. */
int config_registries_handle(struct boxd_config *cfg, const char *name, const char *value, char *err, size_t errlen);
int config_registries_check(const struct boxd_config *cfg, char *err, size_t errlen);
void config_registries_release(struct boxd_config *cfg);

/* Fill defaults, read `path` (may be NULL), then apply environment. The
 * state dir given as `state_dir_override` (a --state-dir flag, may be NULL)
 * wins over everything. On error returns negative errno with a message
 * ("FILE:LINE: ...") in errbuf. Free with config_release(). */
int config_load(struct boxd_config *cfg, const char *path, const char *state_dir_override, char *errbuf,
		size_t errlen);
void config_release(struct boxd_config *cfg);

/* The socket path of DOCKER_HOST when it is unix://PATH; NULL otherwise
 * (unset, or tcp://, which boxd does not speak). */
const char *config_docker_host_socket(void);

/* [store] lease: the multi-host lock lease. Unset: 10 s on a server
 * database (mysql, postgres), which several hosts may share; 0 (off) on
 * SQLite. */
int64_t config_lease_ms(const struct boxd_config *cfg);

/* The timeout for a task type: [timeouts] <type>, else the default.
 * Thread-safe against config_set_timeouts(). */
int64_t config_task_timeout_ms(const struct boxd_config *cfg, const char *type);

/* Take over src's [timeouts] into dst (a reload, while API threads read
 * dst through config_task_timeout_ms()). */
void config_set_timeouts(struct boxd_config *dst, const struct boxd_config *src);

/* Parse a size such as "0", "4096", "512k", "256M", "1G" (powers of 1024;
 * an optional trailing "B"/"iB" is accepted) into bytes. 0 or -EINVAL. */
int parse_size_bytes(const char *s, int64_t *ret);

/* Set a string field, replacing (and freeing) the old value. */
void config_set(char **field, const char *value);
