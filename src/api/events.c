/* events.c — see events.h. */
#include "events.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apps/app.h"
#include "common/array.h"
#include "common/random.h"
#include "backups/backup_store.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "locks/locks.h"
#include "services/service.h"
#include "store_pool.h"
#include "tasks/task.h"

#define RING_MAX 1024
#define RING_BYTES_MAX (8 * 1024 * 1024)
#define FAST_MS 200
#define SLOW_MS 5000
/* The slow watcher runs at most this often, however often it is poked. */
#define SLOW_GAP_MS 500
#define COLD_AFTER_MS 30000
/* A client's reconnect delay (the SSE retry field). */
#define RETRY_MS 1000
/* Tasks created and ended between two looks, looked up one by one. */
#define NEW_TASKS_MAX 200
#define ENGINE_TIMEOUT_MS 2000

/* What a watcher saw of one object: its key and the hash of its JSON. */
struct seen {
	char *key;
	uint64_t hash;
	bool mark;
};

struct seen_map {
	struct seen *v;
	size_t n, cap;
};

struct watcher;
typedef void (*tick_fn)(struct watcher *w, struct store *s);

struct watcher {
	struct api_events *ev;
	const char *name;
	pthread_t thread;
	bool started;
	tick_fn tick;
	int64_t period_ms, gap_ms;
	/* Under ev->mu: */
	bool warm, poke;
	int64_t last_tick_ms;
	/* The watcher thread's own: */
	struct store_pool *pool;
	struct seen_map tasks, apps, services;
	int64_t max_task_id; /* -1: not looked yet */
	uint64_t lock_hash, volumes_hash, backups_hash;
	int published_tasks;
};

/* One slot per sequence number; text NULL marks a gap (the watchers slept:
 * no resume across it). */
struct event {
	char *text;
	size_t len;
};

struct api_events {
	const struct boxd_config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cond_sub, cond_watch;
	uint32_t epoch;
	int64_t seq;             /* the last one given out */
	struct event ring[RING_MAX];
	size_t ring_start, ring_n, ring_bytes;
	int64_t first_seq;       /* seq of ring[ring_start] */
	int64_t warm_since_seq;  /* a resume needs a last id >= this */
	int subs;
	int64_t idle_since_ms;
	bool closing;
	struct watcher fast, slow;
};

struct api_events_sub {
	struct api_events *ev;
	int64_t next_seq;
	int64_t heartbeat_ms, last_send_ms;
	bool hello_sent, resumed;
	const char *resync_reason; /* static text or NULL */
	char *pending;
	size_t pending_len, pending_off;
};

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t json_hash(json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	uint64_t h = text ? fnv1a(text) : 0;
	free(text);
	return h;
}

static struct seen *seen_find(struct seen_map *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].key, key) == 0)
			return &m->v[i];
	return NULL;
}

/* Record `hash` for `key` (marked as seen); true when it is new or differs. */
static bool seen_update(struct seen_map *m, const char *key, uint64_t hash)
{
	struct seen *e = seen_find(m, key);
	if (e) {
		e->mark = true;
		if (e->hash == hash)
			return false;
		e->hash = hash;
		return true;
	}
	if (ARRAY_GROW(m->v, m->n + 1, m->cap) < 0)
		return true;
	char *k = strdup(key);
	if (!k)
		return true;
	m->v[m->n++] = (struct seen){ .key = k, .hash = hash, .mark = true };
	return true;
}

static void seen_remove_at(struct seen_map *m, size_t i)
{
	free(m->v[i].key);
	m->v[i] = m->v[--m->n];
}

static void seen_clear(struct seen_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].key);
	free(m->v);
	*m = (struct seen_map){ 0 };
}

static void seen_unmark(struct seen_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		m->v[i].mark = false;
}

static void abs_deadline(struct timespec *ts, int64_t ms_from_now)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms_from_now / 1000;
	ts->tv_nsec += (ms_from_now % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* ---- the ring --------------------------------------------------------------- */

/* Append the event for seq ++ev->seq (text NULL: a gap). Under ev->mu. */
static void ring_push(struct api_events *ev, char *text, size_t len)
{
	while (ev->ring_n > 0 && (ev->ring_n == RING_MAX || ev->ring_bytes + len > RING_BYTES_MAX)) {
		struct event *old = &ev->ring[ev->ring_start];
		ev->ring_bytes -= old->len;
		free(old->text);
		*old = (struct event){ 0 };
		ev->ring_start = (ev->ring_start + 1) % RING_MAX;
		ev->ring_n--;
		ev->first_seq++;
	}
	ev->seq++;
	if (ev->ring_n == 0)
		ev->first_seq = ev->seq;
	ev->ring[(ev->ring_start + ev->ring_n) % RING_MAX] = (struct event){ .text = text, .len = len };
	ev->ring_n++;
	ev->ring_bytes += len;
}

/* Publish one event; takes `data`. */
static void publish(struct api_events *ev, const char *kind, json_t *data)
{
	char *json = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(data);
	if (!json)
		return;
	pthread_mutex_lock(&ev->mu);
	char *text = NULL;
	int len = asprintf(&text, "id: %08x-%lld\nevent: %s\ndata: %s\n\n", ev->epoch, (long long)(ev->seq + 1), kind,
			   json);
	if (len > 0) {
		ring_push(ev, text, (size_t)len);
		pthread_cond_broadcast(&ev->cond_sub);
	}
	pthread_mutex_unlock(&ev->mu);
	free(json);
}

/* ---- the fast watcher: tasks, locks, apps, volumes --------------------------- */

static void publish_task(struct watcher *w, const struct task *t)
{
	publish(w->ev, "task", task_to_json(t));
	w->published_tasks++;
}

static void look_tasks(struct watcher *w, struct store *s)
{
	struct task_filter f = { .state = -1, .active_only = true, .page = 1, .per_page = 1000 };
	struct task *tasks;
	size_t n;
	int64_t total;
	if (task_list(s, &f, &tasks, &n, &total) < 0)
		return;
	seen_unmark(&w->tasks);
	char key[32];
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%lld", (long long)tasks[i].id);
		json_t *o = task_to_json(&tasks[i]);
		if (seen_update(&w->tasks, key, json_hash(o))) {
			publish(w->ev, "task", o);
			w->published_tasks++;
		} else {
			json_decref(o);
		}
	}
	task_list_free(tasks, n);
	/* Active before, not now: they ended. */
	for (size_t i = 0; i < w->tasks.n;) {
		if (w->tasks.v[i].mark) {
			i++;
			continue;
		}
		struct task t;
		if (task_get(s, strtoll(w->tasks.v[i].key, NULL, 10), &t) == 0) {
			publish_task(w, &t);
			task_release(&t);
		}
		seen_remove_at(&w->tasks, i);
	}
	/* New since the last look and not active (or not yet listed): a task
	 * that came and went between two looks. */
	int64_t max_id = 0;
	if (store_query_int64(s, &max_id, "SELECT COALESCE(MAX(id), 0) FROM tasks", NULL) < 0)
		return;
	if (w->max_task_id >= 0 && max_id - w->max_task_id <= NEW_TASKS_MAX) {
		for (int64_t id = w->max_task_id + 1; id <= max_id; id++) {
			snprintf(key, sizeof(key), "%lld", (long long)id);
			struct task t;
			if (seen_find(&w->tasks, key) || task_get(s, id, &t) < 0)
				continue;
			json_t *o = task_to_json(&t);
			if (!task_state_is_final(t.state))
				seen_update(&w->tasks, key, json_hash(o));
			publish(w->ev, "task", o);
			w->published_tasks++;
			task_release(&t);
		}
	}
	w->max_task_id = max_id;
}

/* The lock document without what changes while nothing happens: a lease
 * renewed every second, a waiter's ticket expiry refreshed as it polls. */
static uint64_t lock_doc_hash(json_t *doc)
{
	json_t *copy = json_deep_copy(doc);
	const char *lists[] = { "holders", "queue" };
	for (size_t l = 0; l < 2; l++) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(copy, lists[l]), i, e) {
			json_object_del(e, "lease");
			json_object_del(e, "expires");
		}
	}
	uint64_t h = json_hash(copy);
	json_decref(copy);
	return h;
}

static void look_locks(struct watcher *w, struct store *s)
{
	int64_t version;
	char *text;
	if (locks_read(s, NULL, &version, &text) < 0)
		return;
	json_t *doc = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return;
	}
	uint64_t h = lock_doc_hash(doc);
	if (h != w->lock_hash) {
		w->lock_hash = h;
		json_object_set_new(doc, "version", json_integer(version));
		publish(w->ev, "lock", doc);
	} else {
		json_decref(doc);
	}
}

static void look_apps(struct watcher *w, struct store *s)
{
	struct app *apps;
	size_t n;
	if (app_list(s, &apps, &n) < 0)
		return;
	seen_unmark(&w->apps);
	for (size_t i = 0; i < n; i++) {
		json_t *o = app_to_json(w->ev->cfg, &apps[i]);
		if (seen_update(&w->apps, apps[i].id, json_hash(o)))
			publish(w->ev, "app", o);
		else
			json_decref(o);
	}
	app_list_free(apps, n);
	for (size_t i = 0; i < w->apps.n;) {
		if (w->apps.v[i].mark) {
			i++;
			continue;
		}
		publish(w->ev, "app", json_pack("{s:s, s:b}", "id", w->apps.v[i].key, "deleted", 1));
		seen_remove_at(&w->apps, i);
	}
}

static void look_volumes(struct watcher *w, struct store *s)
{
	struct volume *v;
	size_t n;
	if (volume_list(s, &v, &n) < 0)
		return;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, volume_to_json(&v[i]));
	volume_list_free(v, n);
	uint64_t h = json_hash(arr);
	if (h != w->volumes_hash) {
		w->volumes_hash = h;
		publish(w->ev, "volumes", json_pack("{s:o}", "volumes", arr));
	} else {
		json_decref(arr);
	}
}

static void fast_tick(struct watcher *w, struct store *s)
{
	w->published_tasks = 0;
	look_tasks(w, s);
	look_locks(w, s);
	look_apps(w, s);
	look_volumes(w, s);
	if (w->published_tasks > 0) {
		/* A task moved: a service or the backups may have changed too. */
		pthread_mutex_lock(&w->ev->mu);
		w->ev->slow.poke = true;
		pthread_cond_broadcast(&w->ev->cond_watch);
		pthread_mutex_unlock(&w->ev->mu);
	}
}

/* ---- the slow watcher: services (the engine), backups --------------------------- */

static void slow_tick(struct watcher *w, struct store *s)
{
	const struct boxd_config *cfg = w->ev->cfg;
	struct engine *e = NULL;
	char err[600] = "";
	if (service_engine_open(cfg, ENGINE_TIMEOUT_MS, &e, err, sizeof(err)) < 0)
		e = NULL;
	size_t n;
	const struct service_def *const *defs = service_list(&n);
	for (size_t i = 0; i < n; i++) {
		if (!service_enabled(defs[i], cfg))
			continue;
		json_t *st = service_status(e, err, defs[i], cfg, s);
		if (st && seen_update(&w->services, defs[i]->name, json_hash(st)))
			publish(w->ev, "service", st);
		else
			json_decref(st);
	}
	engine_close(e);

	struct backup *list;
	struct backup_filter f = { 0 };
	if (backup_list(s, &f, &list, &n) < 0)
		return;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, backup_to_json(&list[i]));
	backup_list_free(list, n);
	uint64_t h = json_hash(arr);
	if (h != w->backups_hash) {
		w->backups_hash = h;
		publish(w->ev, "backups", json_pack("{s:o}", "backups", arr));
	} else {
		json_decref(arr);
	}
}

/* ---- the watcher threads --------------------------------------------------------- */

/* Forget what was seen (under no lock: the thread's own state). */
static void watcher_forget(struct watcher *w)
{
	seen_clear(&w->tasks);
	seen_clear(&w->apps);
	seen_clear(&w->services);
	w->max_task_id = -1;
	w->lock_hash = w->volumes_hash = w->backups_hash = 0;
	store_pool_free(w->pool);
	w->pool = NULL;
}

static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	struct api_events *ev = w->ev;
	pthread_mutex_lock(&ev->mu);
	while (!ev->closing) {
		int64_t now = now_mono_ms();
		if (ev->subs == 0) {
			if (w->warm && now - ev->idle_since_ms >= COLD_AFTER_MS) {
				/* Nobody listened for a while: sleep for real. A
				 * gap in the sequence: no resume across it. */
				w->warm = false;
				if (w == &ev->fast) {
					ring_push(ev, NULL, 0);
					ev->warm_since_seq = ev->seq;
				}
				pthread_mutex_unlock(&ev->mu);
				watcher_forget(w);
				pthread_mutex_lock(&ev->mu);
				continue;
			}
			if (w->warm) {
				struct timespec ts;
				abs_deadline(&ts, ev->idle_since_ms + COLD_AFTER_MS - now);
				pthread_cond_timedwait(&ev->cond_watch, &ev->mu, &ts);
			} else {
				pthread_cond_wait(&ev->cond_watch, &ev->mu);
			}
			continue;
		}
		w->warm = true;
		int64_t due = w->last_tick_ms + w->period_ms;
		if (w->poke && w->last_tick_ms + w->gap_ms < due)
			due = w->last_tick_ms + w->gap_ms;
		if (now < due) {
			struct timespec ts;
			abs_deadline(&ts, due - now);
			pthread_cond_timedwait(&ev->cond_watch, &ev->mu, &ts);
			continue;
		}
		w->poke = false;
		w->last_tick_ms = now;
		pthread_mutex_unlock(&ev->mu);
		struct store *s = NULL;
		char err[256];
		if (!w->pool)
			store_pool_new(ev->cfg, 1, &w->pool);
		if (w->pool && store_pool_get(w->pool, &s, err, sizeof(err)) == 0) {
			w->tick(w, s);
			/* A connection that failed is opened again next time. */
			store_pool_put(w->pool, s, false);
		}
		pthread_mutex_lock(&ev->mu);
	}
	pthread_mutex_unlock(&ev->mu);
	watcher_forget(w);
	return NULL;
}

int api_events_new(const struct boxd_config *cfg, struct api_events **ret)
{
	struct api_events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->cfg = cfg;
	pthread_mutex_init(&ev->mu, NULL);
	cond_init_mono(&ev->cond_sub);
	cond_init_mono(&ev->cond_watch);
	/* The watchers open the engine from their own threads: its library
	 * is loaded here, in the thread that starts them (engine.h). */
	engine_library_preload(cfg->engine_socket);
	if (random_bytes(&ev->epoch, sizeof(ev->epoch)) < 0)
		ev->epoch = (uint32_t)now_wall_ms();
	ev->idle_since_ms = now_mono_ms();
	struct watcher *ws[] = { &ev->fast, &ev->slow };
	ev->fast = (struct watcher){ .ev = ev, .name = "fast", .tick = fast_tick, .period_ms = FAST_MS, .gap_ms = 0 };
	ev->slow = (struct watcher){ .ev = ev, .name = "slow", .tick = slow_tick, .period_ms = SLOW_MS,
				     .gap_ms = SLOW_GAP_MS };
	for (size_t i = 0; i < 2; i++) {
		ws[i]->max_task_id = -1;
		ws[i]->last_tick_ms = -SLOW_MS;
		if (pthread_create(&ws[i]->thread, NULL, watcher_main, ws[i]) != 0) {
			api_events_close(ev);
			api_events_free(ev);
			return -EAGAIN;
		}
		ws[i]->started = true;
	}
	*ret = ev;
	return 0;
}

void api_events_close(struct api_events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->closing = true;
	pthread_cond_broadcast(&ev->cond_sub);
	pthread_cond_broadcast(&ev->cond_watch);
	pthread_mutex_unlock(&ev->mu);
	struct watcher *ws[] = { &ev->fast, &ev->slow };
	for (size_t i = 0; i < 2; i++) {
		if (ws[i]->started)
			pthread_join(ws[i]->thread, NULL);
		ws[i]->started = false;
	}
}

void api_events_free(struct api_events *ev)
{
	if (!ev)
		return;
	for (size_t i = 0; i < RING_MAX; i++)
		free(ev->ring[i].text);
	pthread_cond_destroy(&ev->cond_sub);
	pthread_cond_destroy(&ev->cond_watch);
	pthread_mutex_destroy(&ev->mu);
	free(ev);
}

void api_events_nudge(struct api_events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	if (ev->subs > 0) {
		ev->fast.poke = ev->slow.poke = true;
		pthread_cond_broadcast(&ev->cond_watch);
	}
	pthread_mutex_unlock(&ev->mu);
}

/* ---- streams ------------------------------------------------------------------ */

int api_events_subscribe(struct api_events *ev, const char *last_id, int64_t heartbeat_ms,
			 struct api_events_sub **ret)
{
	struct api_events_sub *sub = calloc(1, sizeof(*sub));
	if (!sub)
		return -ENOMEM;
	sub->ev = ev;
	sub->heartbeat_ms = heartbeat_ms;
	sub->last_send_ms = now_mono_ms();
	unsigned epoch = 0;
	long long seq = -1;
	char tail;
	bool parsed = last_id && sscanf(last_id, "%8x-%lld%c", &epoch, &seq, &tail) == 2;
	pthread_mutex_lock(&ev->mu);
	if (parsed && epoch == ev->epoch && seq >= ev->warm_since_seq && seq <= ev->seq &&
	    (ev->ring_n == 0 || seq + 1 >= ev->first_seq)) {
		sub->next_seq = seq + 1;
		sub->resumed = true;
	} else {
		sub->next_seq = ev->seq + 1;
		if (last_id && *last_id)
			sub->resync_reason = parsed && epoch == ev->epoch ? "events since that id are gone"
									    : "that id is from another start of boxd";
	}
	ev->subs++;
	pthread_cond_broadcast(&ev->cond_watch);
	pthread_mutex_unlock(&ev->mu);
	*ret = sub;
	return 0;
}

/* The text to send next (under ev->mu); false when there is none yet. */
static bool next_text(struct api_events_sub *sub, int64_t now)
{
	struct api_events *ev = sub->ev;
	char *text = NULL;
	int len = -1;
	if (!sub->hello_sent) {
		sub->hello_sent = true;
		len = asprintf(&text,
			       "retry: %d\nid: %08x-%lld\nevent: hello\ndata: {\"epoch\":\"%08x\",\"resumed\":%s,"
			       "\"heartbeatMs\":%lld}\n\n",
			       RETRY_MS, ev->epoch, (long long)(sub->next_seq - 1), ev->epoch,
			       sub->resumed ? "true" : "false", (long long)sub->heartbeat_ms);
	} else if (sub->resync_reason || (ev->ring_n > 0 && sub->next_seq < ev->first_seq)) {
		const char *why = sub->resync_reason ? sub->resync_reason : "the client fell behind";
		sub->resync_reason = NULL;
		sub->next_seq = ev->seq + 1;
		len = asprintf(&text, "id: %08x-%lld\nevent: resync\ndata: {\"reason\":\"%s\"}\n\n", ev->epoch,
			       (long long)ev->seq, why);
	} else if (sub->next_seq <= ev->seq) {
		struct event *e = &ev->ring[(ev->ring_start + (size_t)(sub->next_seq - ev->first_seq)) % RING_MAX];
		sub->next_seq++;
		if (!e->text)
			return false;
		text = malloc(e->len);
		if (text) {
			memcpy(text, e->text, e->len);
			len = (int)e->len;
		}
	} else if (now - sub->last_send_ms >= sub->heartbeat_ms) {
		text = strdup("event: heartbeat\ndata: {}\n\n");
		len = text ? (int)strlen(text) : -1;
	} else {
		return false;
	}
	if (len < 0) {
		free(text);
		return false;
	}
	sub->pending = text;
	sub->pending_len = (size_t)len;
	sub->pending_off = 0;
	sub->last_send_ms = now;
	return true;
}

size_t api_events_read(struct api_events_sub *sub, char *buf, size_t max)
{
	struct api_events *ev = sub->ev;
	pthread_mutex_lock(&ev->mu);
	for (;;) {
		if (sub->pending) {
			size_t n = sub->pending_len - sub->pending_off;
			if (n > max)
				n = max;
			memcpy(buf, sub->pending + sub->pending_off, n);
			sub->pending_off += n;
			if (sub->pending_off == sub->pending_len) {
				free(sub->pending);
				sub->pending = NULL;
			}
			pthread_mutex_unlock(&ev->mu);
			return n;
		}
		if (ev->closing)
			break;
		int64_t now = now_mono_ms();
		if (next_text(sub, now))
			continue;
		if (sub->next_seq <= ev->seq)
			continue; /* skipped a gap */
		struct timespec ts;
		int64_t wait = sub->last_send_ms + sub->heartbeat_ms - now;
		abs_deadline(&ts, wait < 1 ? 1 : wait > 1000 ? 1000 : wait);
		pthread_cond_timedwait(&ev->cond_sub, &ev->mu, &ts);
	}
	pthread_mutex_unlock(&ev->mu);
	return 0;
}

void api_events_unsubscribe(struct api_events_sub *sub)
{
	if (!sub)
		return;
	struct api_events *ev = sub->ev;
	pthread_mutex_lock(&ev->mu);
	if (--ev->subs == 0)
		ev->idle_since_ms = now_mono_ms();
	pthread_cond_broadcast(&ev->cond_watch);
	pthread_mutex_unlock(&ev->mu);
	free(sub->pending);
	free(sub);
}
