/* config.c — INI parsing with inih; see config.h. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calendar.h"
#include "log.h"
#include "proc.h"
#include "timeutil.h"

void config_set(char **field, const char *value)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
}

static char *join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

/* Relative paths (`--state-dir var`, `[paths] volumes = vol`) are taken
 * relative to the working directory at start and stored absolute: they
 * reach the container engine as bind sources, which it resolves from its
 * own working directory, and workers re-read them. */
static int make_paths_absolute(struct boxd_config *cfg, char *errbuf, size_t errlen)
{
	char **fields[] = { &cfg->state_dir, &cfg->socket_path, &cfg->tokens_file, &cfg->sqlite_path,
			    &cfg->appsdata_root, &cfg->volumes_root, &cfg->backups_dir,
			    &cfg->sftp_authorized_keys_file, &cfg->engine_socket, &cfg->config_path,
			    &cfg->install_root, &cfg->backups_passphrase_file, &cfg->backups_key_file,
			    &cfg->backups_ssh_key_file, &cfg->backups_known_hosts };
	char cwd[4096];
	bool have_cwd = false;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *p = *fields[i];
		if (!p || !*p || p[0] == '/')
			continue;
		if (!have_cwd && !getcwd(cwd, sizeof(cwd))) {
			int e = errno;
			snprintf(errbuf, errlen, "cannot make the relative path '%s' absolute: %s", p, strerror(e));
			config_release(cfg);
			return -e;
		}
		have_cwd = true;
		const char *rel = strncmp(p, "./", 2) == 0 ? p + 2 : p;
		char *abs = join(cwd, rel);
		if (!abs) {
			config_release(cfg);
			return -ENOMEM;
		}
		free(p);
		*fields[i] = abs;
	}
	return 0;
}

const char *config_docker_host_socket(void)
{
	const char *h = getenv("DOCKER_HOST");
	if (!h || strncmp(h, "unix://", 7) != 0 || !h[7])
		return NULL;
	return h + 7;
}

struct parse_ctx {
	struct boxd_config *cfg;
	char *err;
	size_t errlen;
	const char *path;
	int error_line;
};

static int set_int(const char *value, int min, int max, int *dst)
{
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || *end || end == value || v < min || v > max)
		return -EINVAL;
	*dst = (int)v;
	return 0;
}

static int set_bool(const char *value, bool *dst)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "on") == 0 ||
	    strcmp(value, "1") == 0)
		*dst = true;
	else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "off") == 0 ||
		 strcmp(value, "0") == 0)
		*dst = false;
	else
		return -EINVAL;
	return 0;
}

static int handle(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	struct boxd_config *cfg = ctx->cfg;
	int r = 0;

#define IS(s, n) (strcmp(section, s) == 0 && strcmp(name, n) == 0)
	if (IS("boxd", "state_dir"))
		config_set(&cfg->state_dir, value);
	else if (IS("host", "id"))
		r = host_id_valid(value) ? (config_set(&cfg->host_id, value), 0) : -EINVAL;
	else if (IS("host", "api_url"))
		config_set(&cfg->host_api_url, *value ? value : NULL);
	else if (IS("boxd", "log_level"))
		r = (cfg->log_level = log_level_from_string(value)) < 0 ? -EINVAL : 0;
	else if (IS("api", "socket"))
		config_set(&cfg->socket_path, value);
	else if (IS("api", "listen"))
		config_set(&cfg->listen, *value ? value : NULL);
	else if (IS("api", "tokens_file"))
		config_set(&cfg->tokens_file, value);
	else if (IS("api", "max_connections"))
		r = set_int(value, 1, 100000, &cfg->api_max_connections);
	else if (IS("api", "max_connections_per_ip"))
		r = set_int(value, 1, 100000, &cfg->api_max_per_ip);
	else if (IS("api", "session_lifetime"))
		r = parse_duration_ms(value, &cfg->api_session_lifetime_ms) < 0 || cfg->api_session_lifetime_ms < 1000 ? -EINVAL : 0;
	else if (IS("api", "idle_timeout"))
		r = parse_duration_ms(value, &cfg->api_idle_timeout_ms) < 0 || cfg->api_idle_timeout_ms < 1000 ? -EINVAL : 0;
	else if (IS("api", "tls_cert"))
		config_set(&cfg->tls_cert, *value ? value : NULL);
	else if (IS("api", "tls_key"))
		config_set(&cfg->tls_key, *value ? value : NULL);
	else if (IS("tasks", "user"))
		config_set(&cfg->task_user, *value ? value : NULL);
	else if (IS("tasks", "app_concurrency"))
		r = set_int(value, 1, 1000, &cfg->app_task_concurrency);
	else if (IS("tasks", "stop_grace"))
		r = parse_duration_ms(value, &cfg->stop_grace_ms);
	else if (IS("timeouts", "default"))
		r = parse_duration_ms(value, &cfg->default_timeout_ms);
	else if (strcmp(section, "timeouts") == 0) {
		if (cfg->n_timeouts >= CONFIG_MAX_TIMEOUTS || strlen(name) >= sizeof(cfg->timeouts[0].type)) {
			r = -E2BIG;
		} else {
			struct config_timeout *t = &cfg->timeouts[cfg->n_timeouts];
			r = parse_duration_ms(value, &t->ms);
			if (r >= 0) {
				snprintf(t->type, sizeof(t->type), "%s", name);
				cfg->n_timeouts++;
			}
		}
	} else if (IS("store", "backend"))
		config_set(&cfg->store_backend, value);
	else if (IS("store", "path"))
		config_set(&cfg->sqlite_path, value);
	else if (IS("store", "dsn") && cfg->dsn && *value) {
		/* Several dsn lines: one list of servers (MariaDB: the nodes of
		 * a Galera cluster), as "a, b, c" on one line, which inih cuts
		 * at 200 characters. */
		char *list;
		if (asprintf(&list, "%s, %s", cfg->dsn, value) < 0) {
			r = -ENOMEM;
		} else {
			free(cfg->dsn);
			cfg->dsn = list;
		}
	} else if (IS("store", "dsn"))
		config_set(&cfg->dsn, value);
	else if (IS("store", "lease"))
		r = parse_duration_ms(value, &cfg->lease_ms);
	else if (IS("store", "outage_grace"))
		r = parse_duration_ms(value, &cfg->outage_grace_ms);
	else if (IS("locks", "broker"))
		r = set_bool(value, &cfg->lock_broker);
	else if (IS("engine", "socket"))
		config_set(&cfg->engine_socket, *value ? value : NULL);
	else if (IS("engine", "shared"))
		r = set_bool(value, &cfg->engine_shared);
	else if (IS("paths", "appsdata"))
		config_set(&cfg->appsdata_root, value);
	else if (IS("paths", "volumes"))
		config_set(&cfg->volumes_root, value);
	else if (IS("paths", "backups"))
		config_set(&cfg->backups_dir, value);
	else if (IS("backups", "dir"))
		config_set(&cfg->backups_dir, value);
	else if (IS("backups", "format"))
		r = strcmp(value, "zstd") == 0 || strcmp(value, "gzip") == 0 ? (config_set(&cfg->backups_format, value), 0)
									     : -EINVAL;
	else if (IS("backups", "keep"))
		r = set_int(value, 1, 100000, &cfg->backups_keep);
	else if (IS("backups", "max_archive_size"))
		r = parse_size_bytes(value, &cfg->backups_max_archive_size);
	else if (IS("backups", "restore_special"))
		r = set_bool(value, &cfg->backups_restore_special);
	else if (IS("backups", "restore_foreign_owners"))
		r = set_bool(value, &cfg->backups_restore_foreign_owners);
	else if (IS("backups", "schedule")) {
		struct calendar cal;
		char why[400];
		if (*value && calendar_parse(value, &cal, why, sizeof(why)) < 0) {
			snprintf(ctx->err, ctx->errlen, "bad value for [backups] schedule: %s", why);
			return 0;
		}
		config_set(&cfg->backups_schedule, *value ? value : NULL);
	} else if (IS("backups", "random_delay"))
		r = parse_duration_ms(value, &cfg->backups_random_delay_ms);
	else if (IS("backups", "encryption_passphrase_file"))
		config_set(&cfg->backups_passphrase_file, *value ? value : NULL);
	else if (IS("backups", "encryption_key_file"))
		config_set(&cfg->backups_key_file, *value ? value : NULL);
	else if (IS("backups", "target"))
		config_set(&cfg->backups_target, *value ? value : NULL);
	else if (IS("backups", "ssh_key_file"))
		config_set(&cfg->backups_ssh_key_file, *value ? value : NULL);
	else if (IS("backups", "known_hosts"))
		config_set(&cfg->backups_known_hosts, *value ? value : NULL);
	else if (IS("sched", "sftp_quiet"))
		r = parse_duration_ms(value, &cfg->sftp_quiet_ms);
	else if (IS("sftp", "authorized_keys_file"))
		config_set(&cfg->sftp_authorized_keys_file, value);
	else if (IS("sftp", "port"))
		r = set_int(value, 1, 65535, &cfg->sftp_port);
	else if (IS("sftp", "image"))
		r = *value ? (config_set(&cfg->sftp_image, value), 0) : -EINVAL;
	else if (IS("sftp", "memory_limit"))
		r = parse_size_bytes(value, &cfg->sftp_memory_bytes);
	else if (IS("tasks", "backup_wait_max"))
		r = parse_duration_ms(value, &cfg->backup_wait_max_ms);
	else if (IS("sftp", "rebuild_max_delay"))
		r = parse_duration_ms(value, &cfg->sftp_rebuild_max_delay_ms);
	else if (IS("update", "install_root"))
		r = value[0] == '/' ? (config_set(&cfg->install_root, value), 0) : -EINVAL;
	else if (strcmp(section, "proxy") == 0) {
		if (config_proxy_handle(cfg, name, value, ctx->err, ctx->errlen) < 0)
			return 0;
	} else if (strcmp(section, "registries") == 0) {
		/* Its own messages: a generic one would print the password. */
		if (config_registries_handle(cfg, name, value, ctx->err, ctx->errlen) < 0)
			return 0;
	} else {
		snprintf(ctx->err, ctx->errlen, "unknown key [%s] %s", section, name);
		return 0;
	}
#undef IS
	if (r < 0) {
		snprintf(ctx->err, ctx->errlen, "bad value for [%s] %s: '%s'", section, name, value);
		return 0;
	}
	return 1;
}

int config_load(struct boxd_config *cfg, const char *path, const char *state_dir_override, char *errbuf,
		size_t errlen)
{
	*cfg = (struct boxd_config){
		.log_level = LOG_LVL_INFO,
		.app_task_concurrency = 5,
		.stop_grace_ms = 10000,
		.backup_wait_max_ms = 3600LL * 1000,
		.default_timeout_ms = 6LL * 3600 * 1000,
		.sftp_quiet_ms = 1000,
		.sftp_rebuild_max_delay_ms = 10 * 60 * 1000,
		.sftp_port = 2222,
		.sftp_memory_bytes = 256LL * 1024 * 1024,
		.lease_ms = -1, /* auto: see config_lease_ms() */
		.outage_grace_ms = 5LL * 60 * 1000,
		.lock_broker = true,
		.backups_keep = 7,
		.api_max_connections = 64,
		.api_max_per_ip = 16,
		.api_idle_timeout_ms = 30000,
		.api_session_lifetime_ms = 12LL * 3600 * 1000,
	};
	config_set(&cfg->store_backend, "sqlite");
	config_set(&cfg->state_dir, "/var/lib/boxd");
	config_set(&cfg->sftp_image, "localhost/boxd/sftp:latest");
	config_set(&cfg->backups_format, "zstd");
	config_set(&cfg->install_root, BOXD_INSTALL_ROOT);
	config_proxy_defaults(cfg);
	const char *env_state = getenv("BOXD_STATE_DIR");

	if (path) {
		char msg[256] = "";
		struct parse_ctx ctx = { cfg, msg, sizeof(msg), path, 0 };
		int line = ini_parse(path, handle, &ctx);
		if (line < 0) {
			snprintf(errbuf, errlen, "cannot read config file %s", path);
			config_release(cfg);
			return -ENOENT;
		}
		if (line > 0) {
			snprintf(errbuf, errlen, "%s:%d: %s", path, line, *msg ? msg : "syntax error");
			config_release(cfg);
			return -EINVAL;
		}
		config_set(&cfg->config_path, path);
		if (config_registries_check(cfg, msg, sizeof(msg)) < 0) {
			snprintf(errbuf, errlen, "%s: %s", path, msg);
			config_release(cfg);
			return -EINVAL;
		}
	}
	if (env_state && *env_state)
		config_set(&cfg->state_dir, env_state);
	/* Tests run several "hosts" on one machine; `boxd serve` also hands
	 * [host] id to its workers this way (main.c). */
	const char *env_host = getenv("BOXD_HOST_ID");
	if (env_host && *env_host) {
		if (!host_id_valid(env_host)) {
			snprintf(errbuf, errlen, "BOXD_HOST_ID='%s': a host id is 1 to %d letters, digits, '.', '_' "
				 "or '-', starting with a letter or digit", env_host, HOST_ID_MAX);
			config_release(cfg);
			return -EINVAL;
		}
		config_set(&cfg->host_id, env_host);
	}
	/* Set by `boxd serve` for its workers (see serve.c). */
	const char *env_backend = getenv("BOXD_STORE_BACKEND"), *env_dsn = getenv("BOXD_STORE_DSN");
	if (env_backend && *env_backend)
		config_set(&cfg->store_backend, env_backend);
	if (env_dsn && *env_dsn)
		config_set(&cfg->dsn, env_dsn);
	if (state_dir_override)
		config_set(&cfg->state_dir, state_dir_override);
	/* The engine: BOXD_ENGINE_SOCKET (and `boxd serve --engine-socket`,
	 * which sets it for the workers) beats the file; Docker's own
	 * DOCKER_HOST only stands in for autodetection, since it is set for
	 * every Docker client of a shell, not for boxd. */
	const char *env_root = getenv("BOXD_INSTALL_ROOT");
	if (env_root && *env_root)
		config_set(&cfg->install_root, env_root);
	const char *env_engine = getenv("BOXD_ENGINE_SOCKET");
	const char *docker_host = config_docker_host_socket();
	if (env_engine && *env_engine)
		config_set(&cfg->engine_socket, env_engine);
	else if (!cfg->engine_socket && docker_host)
		config_set(&cfg->engine_socket, docker_host);

	/* Derived defaults hang off the final state dir. */
	if (!cfg->sqlite_path)
		cfg->sqlite_path = join(cfg->state_dir, "boxd.db");
	if (!cfg->socket_path) {
		const char *env_sock = getenv("BOXD_SOCKET");
		cfg->socket_path = env_sock && *env_sock ? strdup(env_sock) : join(cfg->state_dir, "boxd.sock");
	}
	if (!cfg->tokens_file)
		cfg->tokens_file = join(cfg->state_dir, "api-tokens");
	if (!cfg->appsdata_root)
		cfg->appsdata_root = join(cfg->state_dir, "appsdata");
	if (!cfg->volumes_root)
		cfg->volumes_root = join(cfg->state_dir, "volumes");
	if (!cfg->backups_dir)
		cfg->backups_dir = join(cfg->state_dir, "backups");
	if (!cfg->sftp_authorized_keys_file)
		cfg->sftp_authorized_keys_file = join(cfg->state_dir, "sftp_authorized_keys");
	if (!cfg->backups_known_hosts)
		cfg->backups_known_hosts = join(cfg->state_dir, "backup_known_hosts");
	return make_paths_absolute(cfg, errbuf, errlen);
}

void config_release(struct boxd_config *cfg)
{
	if (!cfg)
		return;
	char **fields[] = { &cfg->host_id, &cfg->host_api_url, &cfg->state_dir, &cfg->socket_path, &cfg->listen, &cfg->tokens_file, &cfg->task_user,
			    &cfg->store_backend, &cfg->sqlite_path, &cfg->dsn, &cfg->engine_socket,
			    &cfg->appsdata_root, &cfg->volumes_root, &cfg->backups_dir, &cfg->backups_format, &cfg->config_path,
			    &cfg->sftp_authorized_keys_file, &cfg->sftp_image, &cfg->install_root,
			    &cfg->tls_cert, &cfg->tls_key, &cfg->backups_schedule, &cfg->backups_passphrase_file,
			    &cfg->backups_key_file, &cfg->backups_target, &cfg->backups_ssh_key_file,
			    &cfg->backups_known_hosts };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
	config_registries_release(cfg);
	config_proxy_release(cfg);
}

int parse_size_bytes(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0 || *s == '-' || *s == '+')
		return -EINVAL;
	int64_t mult = 1;
	switch (*end) {
	case 'k': case 'K': mult = 1024; end++; break;
	case 'm': case 'M': mult = 1024LL * 1024; end++; break;
	case 'g': case 'G': mult = 1024LL * 1024 * 1024; end++; break;
	case 't': case 'T': mult = 1024LL * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (mult > 1 && *end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (mult > 1 && v > INT64_MAX / mult))
		return -EINVAL;
	*ret = (int64_t)v * mult;
	return 0;
}

int64_t config_lease_ms(const struct boxd_config *cfg)
{
	if (cfg->lease_ms >= 0)
		return cfg->lease_ms;
	/* A server database may be shared by several hosts; SQLite never is. */
	return cfg->store_backend && strcmp(cfg->store_backend, "sqlite") != 0 ? 10000 : 0;
}

/* The timeouts are the one reloadable part that API threads read while the
 * loop thread may change it (config_set_timeouts()). */
static pthread_rwlock_t timeouts_lock = PTHREAD_RWLOCK_INITIALIZER;

int64_t config_task_timeout_ms(const struct boxd_config *cfg, const char *type)
{
	int64_t ms = -1;
	pthread_rwlock_rdlock(&timeouts_lock);
	for (int i = 0; i < cfg->n_timeouts && ms < 0; i++)
		if (strcmp(cfg->timeouts[i].type, type) == 0)
			ms = cfg->timeouts[i].ms;
	if (ms < 0)
		ms = cfg->default_timeout_ms;
	pthread_rwlock_unlock(&timeouts_lock);
	return ms;
}

void config_set_timeouts(struct boxd_config *dst, const struct boxd_config *src)
{
	pthread_rwlock_wrlock(&timeouts_lock);
	dst->default_timeout_ms = src->default_timeout_ms;
	memcpy(dst->timeouts, src->timeouts, sizeof(dst->timeouts));
	dst->n_timeouts = src->n_timeouts;
	pthread_rwlock_unlock(&timeouts_lock);
}
