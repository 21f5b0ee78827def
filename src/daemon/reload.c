/* reload.c — re-read the configuration on SIGHUP; see reload.h. */
#include "reload.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

/* The settings the daemon holds: a change needs a restart. */
static const struct {
	const char *name;
	size_t off;
	enum { STR, INT, I64, BOOL } kind;
	bool secret; /* do not show the values */
} held[] = {
	{ "[boxd] state_dir", offsetof(struct boxd_config, state_dir), STR, false },
	{ "[api] socket", offsetof(struct boxd_config, socket_path), STR, false },
	{ "[api] listen", offsetof(struct boxd_config, listen), STR, false },
	{ "[api] tokens_file", offsetof(struct boxd_config, tokens_file), STR, false },
	{ "[api] max_connections", offsetof(struct boxd_config, api_max_connections), INT, false },
	{ "[api] max_connections_per_ip", offsetof(struct boxd_config, api_max_per_ip), INT, false },
	{ "[api] idle_timeout", offsetof(struct boxd_config, api_idle_timeout_ms), I64, false },
	{ "[api] tls_cert", offsetof(struct boxd_config, tls_cert), STR, false },
	{ "[api] tls_key", offsetof(struct boxd_config, tls_key), STR, false },
	{ "[api] session_lifetime", offsetof(struct boxd_config, api_session_lifetime_ms), I64, false },
	{ "[tasks] user", offsetof(struct boxd_config, task_user), STR, false },
	{ "[store] backend", offsetof(struct boxd_config, store_backend), STR, false },
	{ "[store] path", offsetof(struct boxd_config, sqlite_path), STR, false },
	{ "[store] dsn", offsetof(struct boxd_config, dsn), STR, true },
	{ "[store] lease", offsetof(struct boxd_config, lease_ms), I64, false },
	{ "[store] outage_grace", offsetof(struct boxd_config, outage_grace_ms), I64, false },
	{ "[engine] socket", offsetof(struct boxd_config, engine_socket), STR, false },
	{ "[paths] appsdata", offsetof(struct boxd_config, appsdata_root), STR, false },
	{ "[paths] volumes", offsetof(struct boxd_config, volumes_root), STR, false },
	{ "[paths] backups", offsetof(struct boxd_config, backups_dir), STR, false },
	{ "[backups] format", offsetof(struct boxd_config, backups_format), STR, false },
	{ "[backups] keep", offsetof(struct boxd_config, backups_keep), INT, false },
	{ "[backups] max_archive_size", offsetof(struct boxd_config, backups_max_archive_size), I64, false },
	{ "[backups] restore_special", offsetof(struct boxd_config, backups_restore_special), BOOL, false },
	{ "[backups] restore_foreign_owners", offsetof(struct boxd_config, backups_restore_foreign_owners), BOOL,
	  false },
	{ "[sched] sftp_quiet", offsetof(struct boxd_config, sftp_quiet_ms), I64, false },
	{ "[sftp] authorized_keys_file", offsetof(struct boxd_config, sftp_authorized_keys_file), STR, false },
	{ "[sftp] port", offsetof(struct boxd_config, sftp_port), INT, false },
	{ "[sftp] image", offsetof(struct boxd_config, sftp_image), STR, false },
	{ "[sftp] memory_limit", offsetof(struct boxd_config, sftp_memory_bytes), I64, false },
	{ "[update] install_root", offsetof(struct boxd_config, install_root), STR, false },
};

static void add(char *report, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *report, size_t len, const char *fmt, ...)
{
	size_t o = strlen(report);
	if (o + 3 >= len)
		return;
	if (o)
		o += (size_t)snprintf(report + o, len - o, "; ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(report + o, len - o, fmt, ap);
	va_end(ap);
}

static bool timeouts_equal(const struct boxd_config *a, const struct boxd_config *b)
{
	if (a->default_timeout_ms != b->default_timeout_ms || a->n_timeouts != b->n_timeouts)
		return false;
	for (int i = 0; i < a->n_timeouts; i++)
		if (strcmp(a->timeouts[i].type, b->timeouts[i].type) != 0 || a->timeouts[i].ms != b->timeouts[i].ms)
			return false;
	return true;
}

int serve_reload_config(struct boxd_config *cfg, const struct boxd_globals *g, serve_flags_fn apply, int argc,
			char **argv, char *report, size_t len)
{
	struct boxd_config fresh;
	char err[512];
	report[0] = '\0';
	int r = config_load(&fresh, g->config_path, g->state_dir_flag, err, sizeof(err));
	if (r < 0) {
		snprintf(report, len, "%s; the configuration in use stays", err);
		return r;
	}
	optind = 0; /* getopt_long() again over the same flags */
	opterr = 0;
	if (apply(&fresh, argc, argv) < 0) {
		config_release(&fresh);
		snprintf(report, len, "the command line's flags do not apply any more; the configuration in use stays");
		return -EINVAL;
	}

	static const char *const levels[] = { "error", "warn", "info", "debug" };
	if (fresh.log_level != cfg->log_level) {
		add(report, len, "log_level %s -> %s", levels[cfg->log_level], levels[fresh.log_level]);
		cfg->log_level = fresh.log_level;
		log_set_level((enum log_level)cfg->log_level);
	}
	if (fresh.app_task_concurrency != cfg->app_task_concurrency) {
		add(report, len, "app_concurrency %d -> %d", cfg->app_task_concurrency, fresh.app_task_concurrency);
		cfg->app_task_concurrency = fresh.app_task_concurrency;
	}
	if (fresh.stop_grace_ms != cfg->stop_grace_ms) {
		add(report, len, "stop_grace %lld ms -> %lld ms", (long long)cfg->stop_grace_ms,
		    (long long)fresh.stop_grace_ms);
		cfg->stop_grace_ms = fresh.stop_grace_ms;
	}
	if (!timeouts_equal(cfg, &fresh)) {
		add(report, len, "[timeouts] changed (tasks created from now on)");
		config_set_timeouts(cfg, &fresh);
	}
	for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
		const char *a = (const char *)cfg + held[i].off, *b = (const char *)&fresh + held[i].off;
		bool same;
		switch (held[i].kind) {
		case STR: {
			const char *sa = *(char *const *)a, *sb = *(char *const *)b;
			same = (!sa && !sb) || (sa && sb && strcmp(sa, sb) == 0);
			break;
		}
		case INT: same = *(const int *)a == *(const int *)b; break;
		case I64: same = *(const int64_t *)a == *(const int64_t *)b; break;
		default: same = *(const bool *)a == *(const bool *)b; break;
		}
		if (!same)
			add(report, len, "%s changed: needs a restart of boxd", held[i].name);
	}
	config_release(&fresh);
	if (!*report)
		snprintf(report, len, "nothing changed");
	return 0;
}
