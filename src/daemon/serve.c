/* serve.c — `boxd serve`: the daemon.
 *
 * Threads: the libuv loop thread owns the supervisor and the scheduler (and
 * its two store connections); libmicrohttpd's threads serve the API with
 * connections from a pool and wake the loop through `wake` (uv_async).
 *
 * SIGTERM/SIGINT: stop serving and exit, leaving workers running; the next
 * daemon re-adopts them.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "backup_schedule.h"
#include "cli_common.h"
#include "notify.h"
#include "reload.h"
#include "restore_child.h"
#include "serve_broker.h"
#include "state_dir.h"
#include "common/log.h"
#include "common/proc.h"
#include "sched/hosts.h"
#include "common/timeutil.h"
#include "locks/locks.h"
#include "sched/sched.h"
#include "store/store_retry.h"
#include "services/service.h"
#include "services/sftp.h"
#include "services/mounts.h"
#include "tasks/supervisor.h"
#include "update/platformstart.h"
#include "update/reexec.h"
#include "update/release.h"

#define HOUSEKEEPING_MS 1000
/* How often the active task rows are compared with the live workers even
 * without an outage (supervisor_reconcile()). */
#define RECONCILE_EVERY_MS 5000

struct daemon {
	struct boxd_config cfg;
	char host[LOCK_HOST_MAX];          /* owner id: host id + boot (common/proc.h) */
	char host_id[HOST_ID_MAX + 40];    /* host id: where apps are placed */
	/* The hosts table's row of this host (sched/hosts.h). */
	char host_name[256], api_url[300];
	int64_t started_wall_ms, last_beat_ms;
	bool beat_failing;
	char self_exe[PATH_MAX];
	uv_loop_t *loop;
	uv_async_t wake;
	uv_signal_t sigterm, sigint;
	uv_timer_t housekeeping;
	struct store *store, *lock_store;
	struct serve_broker *broker; /* the host's lock broker (serve_broker.h) */
	struct supervisor *sv;
	struct sched *sched;
	struct api_server *api;
	/* SIGUSR2 from an update task: re-exec into the new release once the
	 * loop has stopped (update/reexec.h). */
	uv_signal_t sigusr2;
	int64_t reexec_task;
	char reexec_exe[PATH_MAX];
	/* The loop thread's view of the store: an outage is logged once when
	 * it starts and once when it ends, and its end triggers a reconcile. */
	struct store_retry store_health;
	int64_t last_reconcile_ms;
	int64_t last_sweep_ms;        /* task_sweep_gone_hosts(), server stores */
	/* systemd (notify.h): the watchdog ping, and SIGHUP = reload
	 * (reload.h), which reads the config as the start did. */
	uv_timer_t watchdog;
	uv_signal_t sighup;
	const struct boxd_globals *g;
	int argc;
	char **argv;
	/* [backups] schedule (backup_schedule.h). */
	struct backup_schedule backup_schedule;
	/* POST /api/v1/box/restore (restore_child.h): while active the loop
	 * starts nothing and looks at nothing; after a success the daemon
	 * re-executes itself on the restored store. */
	struct restore_child restore;
	bool restore_reexec;
};

static bool restoring(struct daemon *d) { return atomic_load(&d->restore.active); }

static void on_wake(uv_async_t *h)
{
	struct daemon *d = h->data;
	if (restoring(d)) {
		restore_child_poll(&d->restore);
		return;
	}
	supervisor_apply_stops(d->sv);
	/* An operator's change (an app, a volume) may change the sftp spec. */
	sched_note_spec_change(d->sched);
}

static void wake_from_thread(void *userdata)
{
	struct daemon *d = userdata;
	uv_async_send(&d->wake);
}

static void on_worker_exit(int64_t task_id, const char *app_id, void *userdata)
{
	(void)task_id;
	struct daemon *d = userdata;
	if (app_id)
		sched_note_spec_change(d->sched);
	else
		sched_kick(d->sched);
}

/* The scheduler's question after app work went quiet (loop thread). */
static int sftp_changed(void *userdata, bool *ret_changed)
{
	struct daemon *d = userdata;
	char err[512];
	if (restoring(d)) {
		*ret_changed = false; /* the store is being replaced */
		return 0;
	}
	int r = service_spec_changed(NULL, &sftp_service, &d->cfg, d->store, ret_changed, err, sizeof(err));
	if (r < 0)
		log_debug("sftp: cannot compare its spec: %s", err);
	return r;
}

static void reconcile(struct daemon *d, const char *why)
{
	struct supervisor_reconcile_report rep;
	d->last_reconcile_ms = now_mono_ms();
	if (supervisor_reconcile(d->sv, &rep) < 0) {
		log_debug("reconcile: %s", store_errmsg(d->store));
		return;
	}
	if (rep.adopted || rep.ended || rep.requeued || rep.cancelled)
		log_info("reconcile (%s): re-adopted %d worker(s), recorded the end of %d task(s) whose worker was gone, "
			 "queued %d claimed task(s) again, cancelled %d", why, rep.adopted, rep.ended, rep.requeued,
			 rep.cancelled);
}

/* A cheap read through the loop thread's connection: is the store there?
 * Logs the start and the end of an outage once each; after one, reconcile
 * at once (workers may have ended meanwhile without recording it). */
static void check_store(struct daemon *d)
{
	int64_t v;
	int r = store_query_int64(d->store, &v, "SELECT version FROM schema_version", NULL);
	struct store_retry *h = &d->store_health;
	if (r < 0) {
		if (store_retry_failed(h, r) == 0 && store_retry_first(h)) {
			char since[32];
			store_retry_since(h, since, sizeof(since));
			log_error("store unavailable since %s: %s; workers and boxd retry (for up to [store] "
				  "outage_grace each)", since, store_errmsg(d->store));
		}
		return;
	}
	if (h->since_mono_ms) {
		log_info("store available again after %lld ms; reconciling tasks with their workers",
			 (long long)store_retry_done(h));
		reconcile(d, "after a store outage");
	}
}

/* This host's row in the hosts table, every HOSTS_HEARTBEAT_MS (and at
 * once when force). A failure is said once, and so is the recovery. */
static void heartbeat(struct daemon *d, bool force)
{
	if (!force && now_mono_ms() - d->last_beat_ms < HOSTS_HEARTBEAT_MS)
		return;
	d->last_beat_ms = now_mono_ms();
	struct host_beat b = { .id = d->host_id, .owner_id = d->host, .name = *d->host_name ? d->host_name : NULL,
			       .api_url = *d->api_url ? d->api_url : NULL, .version = update_running_version(&d->cfg),
			       .started_at_ms = d->started_wall_ms };
	int r = hosts_heartbeat(d->store, &b);
	if (r < 0 && !d->beat_failing)
		log_warn("cannot record this host's heartbeat (other hosts will see it gone after %d s): %s",
			 HOST_LEASE_MS / 1000, store_errmsg(d->store));
	else if (r >= 0 && d->beat_failing)
		log_info("this host's heartbeat is recorded again");
	d->beat_failing = r < 0;
}

/* Every SWEEP_EVERY_MS: the tasks of gone hosts that hold no lock, which
 * no reap ends (task_sweep_gone_hosts()). */
#define SWEEP_EVERY_MS 5000
static void sweep_gone_hosts(struct daemon *d)
{
	if (now_mono_ms() - d->last_sweep_ms < SWEEP_EVERY_MS)
		return;
	d->last_sweep_ms = now_mono_ms();
	struct lock_doc doc;
	if (locks_read(d->lock_store, &doc, NULL, NULL) < 0)
		return; /* the store is out: check_store() says so */
	int n = 0;
	if (task_sweep_gone_hosts(d->store, &doc, d->host, &n) < 0)
		log_warn("cannot look for the tasks of gone hosts: %s", store_errmsg(d->store));
	lock_doc_release(&doc);
}

static void on_housekeeping(uv_timer_t *h)
{
	struct daemon *d = h->data;
	check_store(d);
	if (restoring(d))
		return; /* no reconcile, no schedule, no pass on a store being replaced */
	/* Ends of workers that the store did not take when they ended. */
	supervisor_retry_pending(d->sv, NULL);
	heartbeat(d, false);
	if (now_mono_ms() - d->last_reconcile_ms >= RECONCILE_EVERY_MS)
		reconcile(d, "periodic");
	/* Leases are renewed by the workers that hold them (worker_lease.h),
	 * not here. Only a server database can be shared with other hosts:
	 * free what their workers stopped renewing, and fail those tasks
	 * (task_lock_lease_expired). */
	if (store_get_backend(d->lock_store) != STORE_BACKEND_SQLITE) {
		locks_reap_expired(d->lock_store, d->host, task_lock_lease_expired, d->store, NULL);
		sweep_gone_hosts(d);
	}
	/* A safety net: tasks created or stopped by another process (another
	 * host's API, an operator's tool) are picked up within a second. */
	supervisor_apply_stops(d->sv);
	backup_schedule_tick(&d->backup_schedule, d->store, &d->cfg);
	sched_kick(d->sched);
	notify_task_counts(d->store);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct daemon *d = h->data;
	log_info("received %s: stopping; running workers keep going and are re-adopted at the next start",
		 strsignal(sig));
	notify_stopping("stopping; running workers keep going");
	uv_stop(d->loop);
}

/* From the loop thread: a loop that stops turning stops the pings. */
static void on_watchdog(uv_timer_t *h)
{
	(void)h;
	notify_watchdog();
}

static int apply_flags(struct boxd_config *cfg, int argc, char **argv);

static void on_reload(uv_signal_t *h, int sig)
{
	(void)sig;
	struct daemon *d = h->data;
	char report[2048];
	notify_reloading();
	int r = serve_reload_config(&d->cfg, d->g, apply_flags, d->argc, d->argv, report, sizeof(report));
	if (r < 0)
		log_error("reload: %s", report);
	else
		log_info("reload of %s: %s", d->cfg.config_path ? d->cfg.config_path : "the configuration", report);
	notify_ready(r < 0 ? "reload failed; the configuration in use stays" : "configuration reloaded");
	if (!restoring(d))
		sched_kick(d->sched); /* a higher app_concurrency may start queued tasks now */
}

static void on_reexec_signal(uv_signal_t *h, int sig)
{
	(void)sig;
	struct daemon *d = h->data;
	char err[600];
	int r = update_reexec_pending(&d->cfg, &d->reexec_task, d->reexec_exe, sizeof(d->reexec_exe), err, sizeof(err));
	if (r < 0) {
		log_warn("SIGUSR2 ignored: %s", err);
		return;
	}
	log_info("update task %lld: re-executing as %s; running workers keep going and are re-adopted",
		 (long long)d->reexec_task, d->reexec_exe);
	notify_status("update task %lld: re-executing into the new release", (long long)d->reexec_task);
	uv_stop(d->loop);
}

/* An API thread accepted POST /api/v1/box/restore (routes_box.c). */
static int box_restore_request(void *userdata, json_t *args, const char *token, char *err, size_t errlen)
{
	struct daemon *d = userdata;
	int r = restore_child_request(&d->restore, args, token, err, errlen);
	if (r == 0)
		uv_async_send(&d->wake);
	return r;
}

static void box_restore_ended(void *userdata, bool ok)
{
	struct daemon *d = userdata;
	if (!ok) {
		api_box_restore_end();
		sched_kick(d->sched);
		return;
	}
	notify_status("box restored: re-executing on the restored store");
	d->restore_reexec = true;
	uv_stop(d->loop);
}

static int apply_flags(struct boxd_config *cfg, int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "listen", required_argument, NULL, 'L' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "store", required_argument, NULL, 'b' },
		{ "dsn", required_argument, NULL, 'd' },
		{ "task-user", required_argument, NULL, 'u' },
		{ "app-concurrency", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stop-grace", required_argument, NULL, 'g' },
		{ "engine-socket", required_argument, NULL, 'e' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'S': config_set(&cfg->socket_path, optarg); break;
		case 'L': config_set(&cfg->listen, optarg); break;
		case 'l':
			if ((cfg->log_level = log_level_from_string(optarg)) < 0) {
				fprintf(stderr, "boxd serve: --log-level is error, warn, info or debug\n");
				return -EINVAL;
			}
			break;
		case 'b': config_set(&cfg->store_backend, optarg); break;
		case 'd': config_set(&cfg->dsn, optarg); break;
		case 'e': config_set(&cfg->engine_socket, optarg); break;
		case 'u': config_set(&cfg->task_user, optarg); break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 1000) {
				fprintf(stderr, "boxd serve: --app-concurrency takes 1..1000\n");
				return -EINVAL;
			}
			cfg->app_task_concurrency = (int)v;
			break;
		}
		case 'g':
			if (parse_duration_ms(optarg, &cfg->stop_grace_ms) < 0) {
				fprintf(stderr, "boxd serve: --stop-grace takes a duration\n");
				return -EINVAL;
			}
			break;
		case 't': {
			const char *eq = strchr(optarg, '=');
			struct config_timeout *t = &cfg->timeouts[cfg->n_timeouts];
			if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof(t->type) ||
			    cfg->n_timeouts >= CONFIG_MAX_TIMEOUTS || parse_duration_ms(eq + 1, &t->ms) < 0) {
				fprintf(stderr, "boxd serve: --timeout takes TYPE=DURATION, e.g. hold=30s\n");
				return -EINVAL;
			}
			memcpy(t->type, optarg, (size_t)(eq - optarg));
			t->type[eq - optarg] = '\0';
			cfg->n_timeouts++;
			break;
		}
		default:
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "boxd serve: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	/* Workers re-read the configuration: hand the store choice on to them
	 * through the environment (not argv, where a DSN's password would show
	 * in ps). */
	setenv("BOXD_STORE_BACKEND", cfg->store_backend, 1);
	if (cfg->dsn)
		setenv("BOXD_STORE_DSN", cfg->dsn, 1);
	setenv("BOXD_STATE_DIR", cfg->state_dir, 1);
	if (cfg->engine_socket)
		setenv("BOXD_ENGINE_SOCKET", cfg->engine_socket, 1);
	return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int cmd_serve(const struct boxd_globals *g, int argc, char **argv)
{
	static struct daemon d;
	if (boxd_load_config(g, &d.cfg) < 0)
		return 1;
	if (apply_flags(&d.cfg, argc, argv) < 0)
		return 2;
	log_set_level((enum log_level)d.cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	d.g = g;
	d.argc = argc;
	d.argv = argv;
	/* Workers copy their lines to the journal when the daemon logs there
	 * (common/log.h). */
	if (log_to_journal())
		setenv("BOXD_LOG_JOURNAL", "1", 1);
	if (d.cfg.task_user && proc_no_new_privs() == 1) {
		log_error("[tasks] user = %s needs sudo, which cannot gain privileges under NoNewPrivileges=yes: "
			  "set NoNewPrivileges=no in a drop-in (systemctl edit boxd)",
			  d.cfg.task_user);
		return 1;
	}
	const char *docker_host = getenv("DOCKER_HOST");
	if (!d.cfg.engine_socket && docker_host && *docker_host && !config_docker_host_socket())
		log_warn("DOCKER_HOST=%s ignored: boxd reaches the engine over a unix socket only", docker_host);

	const char *host_source = NULL;
	int r = host_id_get_from(d.host_id, sizeof(d.host_id), &host_source);
	if (r == -EINVAL) {
		log_error("this host's id '%s' (from %s) is not a valid host id: set [host] id to 1 to %d letters, "
			  "digits, '.', '_' or '-'", d.host_id, host_source, HOST_ID_MAX);
		return 1;
	}
	if (r >= 0)
		r = host_owner_id_get(d.host, sizeof(d.host));
	ssize_t n = readlink("/proc/self/exe", d.self_exe, sizeof(d.self_exe) - 1);
	if (r < 0 || n <= 0) {
		log_error("cannot identify this host or this program");
		return 1;
	}
	if (strcmp(host_source, "/proc/sys/kernel/random/boot_id") == 0)
		log_warn("no /etc/machine-id: this host's id is its boot id, so after a reboot it is a new host "
			 "(its apps stay placed on the old one): set [host] id");
	d.self_exe[n] = '\0';
	char serr[600];
	if (state_dir_secure(&d.cfg, serr, sizeof(serr)) < 0) {
		log_error("%s", serr);
		return 1;
	}
	if (boxd_open_store(&d.cfg, false, &d.store) < 0 || boxd_open_store(&d.cfg, true, &d.lock_store) < 0)
		return 1;
	/* One host id, one daemon: before anything is reaped or adopted
	 * (another owner of our host id looks like our own earlier boot). */
	char other[LOCK_HOST_MAX];
	int64_t other_age = 0;
	int r_other = hosts_other_owner(d.store, d.host_id, d.host, other, sizeof(other), &other_age);
	if (r_other == 1) {
		log_error("host id %s is in use by another boxd (owner id %s, heartbeat %lld ms ago) sharing this "
			  "store: give each host its own [host] id (or its own /etc/machine-id); if this host has just "
			  "rebooted, start again in %d s",
			  d.host_id, other, (long long)other_age, HOST_LEASE_MS / 1000);
		return 1;
	}
	if (r_other < 0)
		log_warn("cannot check that host id %s is ours alone: %s", d.host_id, store_errmsg(d.store));
	/* A box from before placement that has been this one host: its apps
	 * are here, and stay claimed here when another host joins. */
	int64_t n_placed = 0;
	if (hosts_adopt_unplaced_apps(d.store, d.host_id, &n_placed) < 0)
		log_warn("cannot place the apps from before placement on this host: %s", store_errmsg(d.store));
	else if (n_placed > 0)
		log_info("placed %lld app(s) from before placement on this host (%s), where their data is",
			 (long long)n_placed, d.host_id);
	/* Before any worker starts (platformstart included): they ask it. */
	serve_broker_start(&d.cfg, d.host, &d.broker);
	/* The sftp container binds the roots rslave; only a shared root
	 * passes later host mounts on to it. Not fatal: without it boxd works,
	 * only without that propagation. */
	char roots_err[512];
	if (services_prepare_roots(&d.cfg, roots_err, sizeof(roots_err)) < 0)
		log_warn("the appsdata and volumes roots are not shared mounts: %s", roots_err);

	d.loop = uv_default_loop();
	uv_async_init(d.loop, &d.wake, on_wake);
	d.wake.data = &d;
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_signal_init(d.loop, &d.sighup);
	d.sighup.data = &d;
	uv_signal_start(&d.sighup, on_reload, SIGHUP);
	uint64_t wd_ms = notify_watchdog_interval_ms();
	if (wd_ms > 0) {
		uv_timer_init(d.loop, &d.watchdog);
		uv_timer_start(&d.watchdog, on_watchdog, 0, wd_ms);
	}
	uv_signal_init(d.loop, &d.sigusr2);
	d.sigusr2.data = &d;
	uv_signal_start(&d.sigusr2, on_reexec_signal, SIGUSR2);

	struct supervisor_opts so = { .loop = d.loop, .store = d.store, .lock_store = d.lock_store, .config = &d.cfg,
				      .self_exe = d.self_exe, .host = d.host, .on_exit = on_worker_exit,
				      .userdata = &d };
	struct sched_opts sco = { .loop = d.loop, .store = d.store, .config = &d.cfg, .host = d.host,
				  .sftp_changed = sftp_changed, .userdata = &d };
	if (supervisor_new(&so, &d.sv) < 0)
		return 1;
	sco.supervisor = d.sv;
	if (sched_new(&sco, &d.sched) < 0)
		return 1;

	/* In the hosts table before the API serves (GET /hosts lists this
	 * host at once). */
	d.started_wall_ms = now_wall_ms();
	if (gethostname(d.host_name, sizeof(d.host_name) - 1) < 0)
		d.host_name[0] = '\0';
	if (d.cfg.host_api_url)
		snprintf(d.api_url, sizeof(d.api_url), "%s", d.cfg.host_api_url);
	else if (d.cfg.listen)
		snprintf(d.api_url, sizeof(d.api_url), "%s://%s", d.cfg.tls_cert ? "https" : "http", d.cfg.listen);
	heartbeat(&d, true);

	/* Before anything new starts: re-adopt survivors, free what the dead
	 * left behind. */
	struct supervisor_reconcile_report rep = { 0 };
	int reaped = 0;
	store_retry_init(&d.store_health, 0);
	if (supervisor_adopt(d.sv, &rep) < 0)
		log_error("re-adopting workers failed (the reconcile tries again every %d s): %s", RECONCILE_EVERY_MS / 1000,
			  store_errmsg(d.store));
	d.last_reconcile_ms = now_mono_ms();
	if (locks_reap(d.lock_store, d.host, &reaped) < 0)
		log_error("reaping locks failed: %s", store_errmsg(d.lock_store));
	if (rep.adopted || rep.ended || rep.requeued || rep.cancelled || reaped)
		log_info("start: re-adopted %d worker(s), %d task(s) crashed or ended while boxd was down, %d claimed "
			 "task(s) queued again, %d cancelled, reaped %d lock(s)",
			 rep.adopted, rep.ended, rep.requeued, rep.cancelled, reaped);
	if (store_get_backend(d.lock_store) != STORE_BACKEND_SQLITE && config_lease_ms(&d.cfg) == 0)
		log_warn("[store] lease = 0: should this host die, other hosts sharing the database never free its locks");
	else if (config_lease_ms(&d.cfg) > 0)
		log_info("host %s (owner id %s): lock leases of %lld ms, renewed by each worker for its own locks",
			 d.host_id, d.host,
			 (long long)config_lease_ms(&d.cfg));

	/* Platform start (update/platformstart.h): its row exists before the
	 * API serves (so it is older than any task the API creates); it is
	 * spawned and in line for `platform` before the loop, and so the
	 * scheduler, runs. */
	int64_t ps_id = 0;
	bool ps_new = false;
	if (platformstart_queue(d.store, &d.cfg, d.host, &ps_id, &ps_new) < 0)
		log_error("cannot queue the platformstart task: %s", store_errmsg(d.store));

	char err[512];
	restore_child_init(&d.restore, d.loop, &d.cfg, g, d.self_exe, box_restore_ended, &d);
	restore_child_at_start(&d.cfg);
	struct api_opts ao = { .config = &d.cfg, .host = d.host_id, .owner_id = d.host, .started_at_ms = now_wall_ms(),
			       .wake = wake_from_thread, .box_restore = box_restore_request, .userdata = &d };
	if (api_server_start(&ao, &d.api, err, sizeof(err)) < 0) {
		log_error("cannot start the API: %s", err);
		return 1;
	}
	uv_timer_init(d.loop, &d.housekeeping);
	d.housekeeping.data = &d;
	uv_timer_start(&d.housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
	sched_kick(d.sched);

	log_info("boxd %s serving on unix:%s%s%s (store: %s, state: %s)", update_running_version(&d.cfg),
		 d.cfg.socket_path,
		 d.cfg.listen ? " and tcp:" : "", d.cfg.listen ? d.cfg.listen : "", d.cfg.store_backend,
		 d.cfg.state_dir);
	log_info("try: boxctl --socket %s status", d.cfg.socket_path);
	char perr[600];
	int64_t answered;
	if (update_pidfile_write(&d.cfg, perr, sizeof(perr)) < 0)
		log_warn("updates cannot re-execute this daemon: %s", perr);
	int fr = update_reexec_finish(&d.cfg, &answered, perr, sizeof(perr));
	if (fr == 1)
		log_info("update task %lld: now serving release %s", (long long)answered, update_running_version(&d.cfg));
	else if (fr < 0)
		log_warn("cannot answer the update waiting for this re-exec: %s", perr);
	/* The API already answers, but tasks it creates start only once the
	 * loop runs: spawn platformstart alone and wait until it is in line
	 * for `platform`, so that app tasks queue behind it (FIFO) and wait
	 * for it visibly. */
	int psr = ps_new ? platformstart_spawn(d.store, d.sv, ps_id) : 0;
	if (psr < 0)
		log_error("cannot start the platformstart task %lld: %s", (long long)ps_id, strerror(-psr));
	if (ps_id > 0 && platformstart_wait_queued(d.lock_store, d.store, ps_id, 2000) < 0)
		log_warn("platformstart task %lld is not in line for this host's platform lock after 2 s; going on", (long long)ps_id);
	if (ps_id > 0)
		log_info("platformstart: task %lld%s", (long long)ps_id, ps_new ? "" : " (already active)");
	/* The API answers and platformstart is in line: app tasks created from
	 * now on queue behind it. */
	notify_ready(NULL);
	notify_task_counts(d.store);

	uv_run(d.loop, UV_RUN_DEFAULT);

	/* Workers go on directly (and find the next daemon's broker). */
	serve_broker_stop(d.broker);
	api_server_stop(d.api);
	supervisor_close(d.sv);
	sched_close(d.sched);
	uv_walk(d.loop, close_walk, NULL);
	uv_run(d.loop, UV_RUN_DEFAULT);
	uv_loop_close(d.loop);
	supervisor_free(d.sv);
	sched_free(d.sched);
	backup_schedule_release(&d.backup_schedule);
	store_close(d.lock_store);
	store_close(d.store);
	if (d.restore_reexec) {
		/* The store was replaced under this process: start again on it
		 * (same pid; platformstart recreates the containers and sftp). */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		log_info("box restore: re-executing %s", d.self_exe);
		fflush(NULL);
		execv(d.self_exe, boxd_original_argv());
		log_error("box restore: cannot re-execute %s: %s; start boxd again", d.self_exe, strerror(errno));
		config_release(&d.cfg);
		return 1;
	}
	if (d.reexec_task > 0) {
		char rerr[1024];
		update_reexec_exec(&d.cfg, d.reexec_task, d.reexec_exe, boxd_original_argv(), d.self_exe, rerr,
				   sizeof(rerr));
		log_error("update task %lld: %s", (long long)d.reexec_task, rerr);
		config_release(&d.cfg);
		return 1;
	}
	/* A stop, not a re-exec: the self-binds of the roots go unless a
	 * container still receives their mounts (services/mounts.h), so that
	 * the state dir can be removed. The next start binds them again. */
	char released[1400] = "";
	if (services_release_roots(&d.cfg, released, sizeof(released)) != 0 || *released)
		log_info("roots: %s", released);
	config_release(&d.cfg);
	log_info("stopped");
	return 0;
}
