/* sched.c — see sched.h. */
#include "sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "hosts.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"

/* Another host's claim of a task that has no worker after this long is
 * taken over: that host is gone (or cannot write to the store). */
#define SCHED_CLAIM_STALE_MS 30000

struct sched {
	struct sched_opts o;
	uv_idle_t idle;     /* runs a kicked pass once the loop is idle */
	bool kicked;
	uv_timer_t quiet;   /* the sftp quiet period */
	bool spec_dirty;    /* app work happened since the last sftp check */
	int64_t dirty_since_ms; /* when spec_dirty became true (monotonic) */
	bool app_busy;      /* app tasks active or queued at the last pass */
	bool queue_failing; /* the last pass could not read the queue */
	unsigned rebuilds;
	char host_id[HOST_ID_MAX + 1]; /* o.host's host id part */
};

static void on_idle(uv_idle_t *h)
{
	struct sched *sc = h->data;
	uv_idle_stop(&sc->idle);
	sc->kicked = false;
	sched_pass(sc);
}

int sched_new(const struct sched_opts *opts, struct sched **ret)
{
	struct sched *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->o = *opts;
	snprintf(sc->host_id, sizeof(sc->host_id), "%.*s", (int)host_owner_host_len(opts->host), opts->host);
	uv_idle_init(opts->loop, &sc->idle);
	sc->idle.data = sc;
	uv_timer_init(opts->loop, &sc->quiet);
	sc->quiet.data = sc;
	*ret = sc;
	return 0;
}

void sched_close(struct sched *sc)
{
	if (!sc)
		return;
	uv_close((uv_handle_t *)&sc->idle, NULL);
	uv_close((uv_handle_t *)&sc->quiet, NULL);
}

unsigned sched_sftp_rebuilds(const struct sched *sc) { return sc->rebuilds; }

/* Is a rebuild of this host's sftp queued, waiting or running? While one is, the
 * container's hash label is the old one and the comparison below would
 * queue a second rebuild for nothing; the check is put off until it ends
 * (the spec stays dirty, and a later pass compares again). */
static bool rebuild_active(struct sched *sc)
{
	int64_t n = 0;
	int r = task_count_active(sc->o.store, &(struct task_match){ .type = "service.rebuild", .run_on = sc->host_id },
				  &n);
	return r < 0 || n > 0;
}

/* Compare the sftp spec and queue one rebuild if it changed. `why` says
 * what made the check happen, for the log. Returns false when the check
 * was put off because a rebuild is active. */
static bool check_sftp(struct sched *sc, const char *why)
{
	if (rebuild_active(sc))
		return false; /* spec_dirty stays: compared again after it */
	sc->spec_dirty = false;
	bool changed = false;
	int r = sc->o.sftp_changed ? sc->o.sftp_changed(sc->o.userdata, &changed) : 0;
	if (r < 0) {
		/* No engine at all is a normal state (status says so); anything
		 * else deserves a warning. */
		if (r == -ENOENT || r == -ECONNREFUSED)
			log_debug("scheduler: no container engine: sftp spec not compared");
		else
			log_warn("scheduler: cannot compare the sftp spec (%s); will retry after the next app task",
				 strerror(-r));
		return true;
	}
	if (!changed)
		return true;
	/* This host's sftp container: only this host may run it. */
	struct task_enqueue e = { .type = "service.rebuild", .args_json = "{\"force\":false,\"name\":\"sftp\"}",
				  .run_on = sc->host_id };
	struct task_enqueued out;
	r = task_enqueue(sc->o.store, sc->o.config, &e, &out);
	int64_t id = out.id;
	if (r < 0) {
		log_error("scheduler: cannot queue the sftp rebuild: %s", store_errmsg(sc->o.store));
		return true;
	}
	sc->rebuilds++;
	log_info("scheduler: %s and the sftp mount spec changed: queued rebuild task %lld", why, (long long)id);
	sched_kick(sc);
	return true;
}

static void on_quiet(uv_timer_t *h)
{
	struct sched *sc = h->data;
	if (sc->app_busy || supervisor_count_app_tasks(sc->o.supervisor, NULL) > 0 || !sc->spec_dirty)
		return; /* the next pass that finds app work over restarts the timer */
	check_sftp(sc, "app work is over");
}

void sched_note_spec_change(struct sched *sc)
{
	if (!sc->spec_dirty)
		sc->dirty_since_ms = now_mono_ms();
	sc->spec_dirty = true;
	/* The quiet period counts from the latest change: the next pass that
	 * finds app work over starts it afresh. */
	uv_timer_stop(&sc->quiet);
	sched_kick(sc);
}

void sched_free(struct sched *sc) { free(sc); }

void sched_kick(struct sched *sc)
{
	if (sc->kicked)
		return;
	sc->kicked = true;
	uv_idle_start(&sc->idle, on_idle);
}

/* Apps seen in this pass that already have an earlier task queued or
 * running: a later task of the same app must not overtake it. */
struct app_set {
	char **ids;
	size_t n;
};

static bool app_set_has(const struct app_set *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0)
			return true;
	return false;
}

static void app_set_add(struct app_set *s, const char *id)
{
	char **grown = realloc(s->ids, (s->n + 1) * sizeof(*s->ids));
	if (!grown)
		return;
	s->ids = grown;
	s->ids[s->n++] = strdup(id);
}

static void app_set_free(struct app_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s->ids);
}

/* Log a failure to read the queue once per outage, and its end. */
static void queue_read_failed(struct sched *sc, bool failed)
{
	if (failed && !sc->queue_failing)
		log_error("scheduler: cannot read the queue: %s (retrying every second)", store_errmsg(sc->o.store));
	else if (!failed && sc->queue_failing)
		log_info("scheduler: the queue can be read again");
	sc->queue_failing = failed;
}

/* Queued tasks for other hosts (run_on, else their app's host): while that
 * host is gone (or was never seen), say so in waitingFor, naming it; once
 * it is alive again, clear that (its own pass claims the task). Nothing
 * else changes: the task stays queued for its host. Best effort: a failure
 * here is seen again next pass. */
static void mark_host_gone(struct sched *sc, const char *host_id)
{
	struct store *s = sc->o.store;
	struct store_stmt *st = NULL;
	struct placed {
		int64_t id;
		char *host;
		bool marked;
	} *p = NULL;
	size_t n = 0;
	if (store_query(s, &st,
			"SELECT tasks.id, COALESCE(tasks.run_on, apps.host), tasks.waiting_for FROM tasks "
			"LEFT JOIN apps ON apps.id = tasks.app_id WHERE tasks.state = 'queued' "
			"AND COALESCE(tasks.run_on, apps.host) <> ? ORDER BY tasks.id",
			"s", host_id) < 0)
		return;
	while (store_step(st) == 1) {
		struct placed *grown = realloc(p, (n + 1) * sizeof(*p));
		if (!grown)
			break;
		p = grown;
		const char *wf = store_col_text(st, 2);
		p[n++] = (struct placed){ .id = store_col_int64(st, 0), .host = store_col_strdup(st, 1),
					  .marked = wf && strstr(wf, "\"host_gone\"") };
	}
	store_finalize(st);
	for (size_t i = 0; i < n; i++) {
		enum host_state hs;
		if (!p[i].host || hosts_state(s, p[i].host, &hs) < 0)
			continue;
		if (hs == HOST_ALIVE && p[i].marked) {
			store_run(s, "UPDATE tasks SET waiting_for = NULL, message = '' WHERE id = ? AND state = 'queued'",
				  "i", p[i].id);
		} else if (hs != HOST_ALIVE && !p[i].marked) {
			json_t *wf = json_pack("{s:s, s:s}", "host", p[i].host, "reason", "host_gone");
			char *text = wf ? json_dumps(wf, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
			char msg[160];
			snprintf(msg, sizeof(msg), "Waiting for host %s, where the app lives: no heartbeat for %d s",
				 p[i].host, HOST_LEASE_MS / 1000);
			if (text && store_run(s, "UPDATE tasks SET waiting_for = ?, message = ? WHERE id = ? AND state = 'queued'",
					      "ssi", text, msg, p[i].id) > 0)
				log_info("scheduler: task %lld waits for host %s (gone), where its app lives",
					 (long long)p[i].id, p[i].host);
			free(text);
			json_decref(wf);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(p[i].host);
	free(p);
}

int sched_pass(struct sched *sc)
{
	struct store *s = sc->o.store;
	/* Oldest first: FIFO. Tasks nobody claimed yet (host IS NULL), and
	 * tasks another host claimed long ago without its worker ever
	 * registering (that host is gone or cannot write): the claim token
	 * makes taking them over safe (task_claim_again()). This host's own
	 * such claims are queued again by the reconcile. */
	int64_t now = 0;
	/* A task with run_on is claimed only by that host (a move's steps,
	 * service tasks). */
	const char *host_id = sc->host_id;
	int r = store_now_ms(s, &now);
	struct store_stmt *st = NULL;
	if (r >= 0)
		r = store_query(s, &st,
				"SELECT id, type, app_id, stop_reason, host, claim FROM tasks WHERE state = 'queued' "
				"AND (host IS NULL OR (host <> ? AND (pid IS NULL OR pid = 0) AND claimed_at < ?)) "
				/* run_on (a move's steps) names the one host; else an app
				 * placed on another host is left to it (apps.host NULL:
				 * anywhere) */
				"AND (run_on = ? OR (run_on IS NULL AND NOT EXISTS (SELECT 1 FROM apps "
				"WHERE apps.id = tasks.app_id AND apps.host <> ?))) ORDER BY id",
				"siss", sc->o.host, now - SCHED_CLAIM_STALE_MS, host_id, host_id);
	if (r < 0) {
		queue_read_failed(sc, true);
		return r;
	}
	struct queued {
		int64_t id;
		char *type, *app_id;
		bool stop;
		int64_t stale_claim; /* another host's claim to take over; 0: unclaimed */
		bool claimed;
	} *q = NULL;
	size_t n = 0;
	while ((r = store_step(st)) == 1) {
		struct queued *grown = realloc(q, (n + 1) * sizeof(*q));
		if (!grown)
			break;
		q = grown;
		q[n++] = (struct queued){ .id = store_col_int64(st, 0), .type = store_col_strdup(st, 1),
					  .app_id = store_col_strdup(st, 2), .stop = !store_col_is_null(st, 3),
					  .claimed = !store_col_is_null(st, 4), .stale_claim = store_col_int64(st, 5) };
	}
	store_finalize(st);
	queue_read_failed(sc, r < 0);
	if (r >= 0)
		mark_host_gone(sc, host_id);

	int started = 0;
	size_t app_active = supervisor_count_app_tasks(sc->o.supervisor, NULL);
	size_t app_queued = 0;
	struct app_set busy = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct queued *t = &q[i];
		if (t->stop) {
			task_finish(s, t->id, TASK_CANCELLED, TASK_ERR_STOPPED, "stopped before it started", NULL);
			continue;
		}
		const struct task_type *type = task_type_find(t->type);
		if (!type) {
			task_finish(s, t->id, TASK_FAILED, "bad_task", "unknown task type", NULL);
			continue;
		}
		if (type->app_task)
			app_queued++;
		if (type->app_task && t->app_id) {
			if (app_set_has(&busy, t->app_id))
				continue;
			app_set_add(&busy, t->app_id);
			if (supervisor_count_app_tasks(sc->o.supervisor, t->app_id) > 0)
				continue;
			if (app_active >= (size_t)sc->o.config->app_task_concurrency)
				continue;
		}
		int claimed = t->claimed ? task_claim_again(s, t->id, sc->o.host, t->stale_claim)
					 : task_claim(s, t->id, sc->o.host);
		if (claimed != 1)
			continue;
		if (t->claimed)
			log_warn("scheduler: task %lld was claimed by another host over %d s ago and never started; "
				 "taking it over", (long long)t->id, SCHED_CLAIM_STALE_MS / 1000);
		struct task full;
		if (task_get(s, t->id, &full) < 0)
			continue;
		if (supervisor_spawn(sc->o.supervisor, &full) == 0) {
			started++;
			if (type->app_task) {
				app_active++;
				app_queued--;
			}
		}
		task_release(&full);
	}
	app_set_free(&busy);
	/* Quiet period: started by the first pass that finds app work over,
	 * and not pushed back by later passes without news (the housekeeping
	 * tick kicks a pass every second: restarting the timer on each pass
	 * meant a quiet period longer than that never ended). */
	sc->app_busy = app_active > 0 || app_queued > 0;
	if (sc->app_busy)
		uv_timer_stop(&sc->quiet);
	else if (sc->spec_dirty && !uv_is_active((uv_handle_t *)&sc->quiet))
		uv_timer_start(&sc->quiet, on_quiet, (uint64_t)sc->o.config->sftp_quiet_ms, 0);
	/* App work that never goes quiet must not hold a rebuild back for
	 * ever: after rebuild_max_delay it is queued anyway, and its worker
	 * waits its turn for service:sftp like any task (the housekeeping tick
	 * runs a pass every second, so this is looked at often enough). */
	int64_t max_delay = sc->o.config->sftp_rebuild_max_delay_ms;
	if (sc->app_busy && sc->spec_dirty && max_delay > 0 && now_mono_ms() - sc->dirty_since_ms >= max_delay) {
		char why[96];
		snprintf(why, sizeof(why), "app work has not gone quiet for %lld ms ([sftp] rebuild_max_delay)",
			 (long long)(now_mono_ms() - sc->dirty_since_ms));
		if (check_sftp(sc, why) && sc->spec_dirty)
			sc->dirty_since_ms = now_mono_ms(); /* failed: try again one delay later */
	}
	for (size_t i = 0; i < n; i++) {
		free(q[i].type);
		free(q[i].app_id);
	}
	free(q);
	return started;
}
