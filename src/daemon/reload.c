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

/* The settings the daemon does not take over. Workers read the file again
 * when they start (only the store choice, the state dir and the engine
 * socket come from the daemon's environment), so the report says who uses
 * a changed value from when:
 *   DAEMON   the daemon alone holds it: a restart;
 *   BOTH     workers started from now on, the daemon after a restart;
 *   WORKERS  only workers read it: tasks started from now on. */
static const struct {
	const char *name;
	size_t off;
	enum { STR, INT, I64, BOOL } kind;
	enum { DAEMON, BOTH, WORKERS } who;
} held[] = {
	{ "[boxd] state_dir", offsetof(struct boxd_config, state_dir), STR, DAEMON },
	{ "[api] socket", offsetof(struct boxd_config, socket_path), STR, DAEMON },
	{ "[api] listen", offsetof(struct boxd_config, listen), STR, DAEMON },
	{ "[api] tokens_file", offsetof(struct boxd_config, tokens_file), STR, DAEMON },
	{ "[api] max_connections", offsetof(struct boxd_config, api_max_connections), INT, DAEMON },
	{ "[api] max_connections_per_ip", offsetof(struct boxd_config, api_max_per_ip), INT, DAEMON },
	{ "[api] idle_timeout", offsetof(struct boxd_config, api_idle_timeout_ms), I64, DAEMON },
	{ "[api] tls_cert", offsetof(struct boxd_config, tls_cert), STR, DAEMON },
	{ "[api] tls_key", offsetof(struct boxd_config, tls_key), STR, DAEMON },
	{ "[api] session_lifetime", offsetof(struct boxd_config, api_session_lifetime_ms), I64, DAEMON },
	{ "[tasks] user", offsetof(struct boxd_config, task_user), STR, DAEMON },
	{ "[store] backend", offsetof(struct boxd_config, store_backend), STR, DAEMON },
	{ "[store] path", offsetof(struct boxd_config, sqlite_path), STR, BOTH },
	{ "[store] dsn", offsetof(struct boxd_config, dsn), STR, DAEMON },
	{ "[store] lease", offsetof(struct boxd_config, lease_ms), I64, BOTH },
	{ "[store] outage_grace", offsetof(struct boxd_config, outage_grace_ms), I64, BOTH },
	{ "[engine] socket", offsetof(struct boxd_config, engine_socket), STR, DAEMON },
	{ "[paths] appsdata", offsetof(struct boxd_config, appsdata_root), STR, BOTH },
	{ "[paths] volumes", offsetof(struct boxd_config, volumes_root), STR, BOTH },
	{ "[paths] backups", offsetof(struct boxd_config, backups_dir), STR, BOTH },
	{ "[backups] format", offsetof(struct boxd_config, backups_format), STR, WORKERS },
	{ "[backups] keep", offsetof(struct boxd_config, backups_keep), INT, WORKERS },
	{ "[backups] max_archive_size", offsetof(struct boxd_config, backups_max_archive_size), I64, WORKERS },
	{ "[backups] restore_special", offsetof(struct boxd_config, backups_restore_special), BOOL, WORKERS },
	{ "[backups] restore_foreign_owners", offsetof(struct boxd_config, backups_restore_foreign_owners), BOOL,
	  WORKERS },
	{ "[backups] target", offsetof(struct boxd_config, backups_target), STR, WORKERS },
	{ "[backups] ssh_key_file", offsetof(struct boxd_config, backups_ssh_key_file), STR, WORKERS },
	{ "[backups] known_hosts", offsetof(struct boxd_config, backups_known_hosts), STR, WORKERS },
	{ "[tasks] backup_wait_max", offsetof(struct boxd_config, backup_wait_max_ms), I64, WORKERS },
	{ "[sched] sftp_quiet", offsetof(struct boxd_config, sftp_quiet_ms), I64, DAEMON },
	{ "[sftp] authorized_keys_file", offsetof(struct boxd_config, sftp_authorized_keys_file), STR, BOTH },
	{ "[sftp] port", offsetof(struct boxd_config, sftp_port), INT, BOTH },
	{ "[sftp] image", offsetof(struct boxd_config, sftp_image), STR, BOTH },
	{ "[sftp] memory_limit", offsetof(struct boxd_config, sftp_memory_bytes), I64, BOTH },
	{ "[sftp] rebuild_max_delay", offsetof(struct boxd_config, sftp_rebuild_max_delay_ms), I64, DAEMON },
	{ "[update] install_root", offsetof(struct boxd_config, install_root), STR, BOTH },
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
	/* The schedule is the daemon's own (backup_schedule.h): the next tick
	 * plans from the new one. */
	const char *os = cfg->backups_schedule, *ns = fresh.backups_schedule;
	if (!((!os && !ns) || (os && ns && strcmp(os, ns) == 0))) {
		add(report, len, "[backups] schedule \"%s\" -> \"%s\"", os ? os : "", ns ? ns : "");
		config_set(&cfg->backups_schedule, ns);
	}
	if (fresh.backups_random_delay_ms != cfg->backups_random_delay_ms) {
		add(report, len, "[backups] random_delay %lld ms -> %lld ms (from the next planned run)",
		    (long long)cfg->backups_random_delay_ms, (long long)fresh.backups_random_delay_ms);
		cfg->backups_random_delay_ms = fresh.backups_random_delay_ms;
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
		if (same)
			continue;
		if (held[i].who == DAEMON)
			add(report, len, "%s changed: needs a restart of boxd", held[i].name);
		else if (held[i].who == BOTH)
			add(report, len, "%s changed: tasks started from now on use it, the daemon after a restart",
			    held[i].name);
		else
			add(report, len, "%s changed: tasks started from now on use it", held[i].name);
	}
	config_release(&fresh);
	if (!*report)
		snprintf(report, len, "nothing changed");
	return 0;
}
