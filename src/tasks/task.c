/* task.c — task rows; see task.h. */
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "locks/lock_doc.h"

static const char *const state_names[] = {
	[TASK_QUEUED] = "queued",       [TASK_WAITING] = "waiting", [TASK_RUNNING] = "running",
	[TASK_SUCCEEDED] = "succeeded", [TASK_FAILED] = "failed",   [TASK_CANCELLED] = "cancelled",
};

#define FINAL_STATES "('succeeded','failed','cancelled')"
#define ACTIVE_STATES TASK_ACTIVE_STATES_SQL

const char *task_state_name(enum task_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

int task_state_from_string(const char *s, enum task_state *ret)
{
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*ret = (enum task_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool task_state_is_final(enum task_state s) { return s >= TASK_SUCCEEDED; }

void task_release(struct task *t)
{
	if (!t)
		return;
	free(t->type);
	free(t->app_id);
	free(t->args);
	free(t->message);
	free(t->waiting_for);
	free(t->error_code);
	free(t->error_message);
	free(t->result);
	free(t->host);
	free(t->stop_reason);
	free(t->app_host);
	memset(t, 0, sizeof(*t));
}

#define TASK_COLS                                                                                        \
	"id, type, app_id, args, state, percent, message, waiting_for, error_code, error_message, result, " \
	"pid, pid_start, host, stop_reason, created_at, started_at, finished_at, timeout_ms, claim, claimed_at, " \
	"COALESCE(run_on, (SELECT apps.host FROM apps WHERE apps.id = tasks.app_id))"

static void row_to_task(struct store_stmt *st, struct task *t)
{
	memset(t, 0, sizeof(*t));
	t->id = store_col_int64(st, 0);
	t->type = store_col_strdup(st, 1);
	t->app_id = store_col_strdup(st, 2);
	t->args = store_col_strdup(st, 3);
	const char *state = store_col_text(st, 4);
	if (!state || task_state_from_string(state, &t->state) < 0)
		t->state = TASK_FAILED;
	t->percent = (int)store_col_int64(st, 5);
	t->message = store_col_strdup(st, 6);
	t->waiting_for = store_col_strdup(st, 7);
	t->error_code = store_col_strdup(st, 8);
	t->error_message = store_col_strdup(st, 9);
	t->result = store_col_strdup(st, 10);
	t->pid = (int)store_col_int64(st, 11);
	t->pid_start = (uint64_t)store_col_int64(st, 12);
	t->host = store_col_strdup(st, 13);
	t->stop_reason = store_col_strdup(st, 14);
	t->created_at = store_col_int64(st, 15);
	t->started_at = store_col_int64(st, 16);
	t->finished_at = store_col_int64(st, 17);
	t->timeout_ms = store_col_int64(st, 18);
	t->claim = store_col_int64(st, 19);
	t->claimed_at = store_col_int64(st, 20);
	t->app_host = store_col_strdup(st, 21);
}

int task_create(struct store *s, const char *type, const char *app_id, const char *args_json, int64_t timeout_ms,
		int64_t *ret_id)
{
	return task_create_idempotent(s, type, app_id, args_json, timeout_ms, NULL, ret_id);
}

int task_create_idempotent(struct store *s, const char *type, const char *app_id, const char *args_json,
			   int64_t timeout_ms, const struct task_idempotency *idem, int64_t *ret_id)
{
	if (idem) {
		/* A key older than the window is free again: forget it on the
		 * old task, so the unique index lets the new one take it. */
		int64_t n = store_run(s, "UPDATE tasks SET idem_key = NULL, idem_fp = NULL WHERE idem_key = ? AND created_at < ?",
				      "si", idem->key, idem->not_before_ms);
		if (n < 0)
			return (int)n;
	}
	int r = store_query_int64(s, ret_id,
				  "INSERT INTO tasks (type, app_id, args, state, percent, message, created_at, timeout_ms, "
				  "idem_key, idem_fp) VALUES (?, ?, ?, 'queued', 0, '', ?, ?, ?, ?) RETURNING id",
				  "sssiiss", type, app_id, args_json ? args_json : "{}", now_wall_ms(), timeout_ms,
				  idem ? idem->key : NULL, idem ? idem->fingerprint : NULL);
	if (r == -EEXIST && idem)
		return store_set_error(s, r, "another request with Idempotency-Key \"%s\" created its task meanwhile; "
				       "send it again to get that task", idem->key);
	return r;
}

int task_find_idempotent(struct store *s, const char *key, int64_t not_before_ms, int64_t *ret_id, char *ret_fp,
			 size_t fplen, char **ret_app_id)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT id, idem_fp, app_id FROM tasks WHERE idem_key = ? AND created_at >= ?", "si",
			    key, not_before_ms);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		const char *fp = store_col_text(st, 1), *app = store_col_text(st, 2);
		char *app_copy = app ? strdup(app) : NULL;
		if (app && !app_copy) {
			r = -ENOMEM;
		} else {
			*ret_id = store_col_int64(st, 0);
			snprintf(ret_fp, fplen, "%s", fp ? fp : "");
			*ret_app_id = app_copy;
			r = 0;
		}
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	return r;
}

int task_get(struct store *s, int64_t id, struct task *ret)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT " TASK_COLS " FROM tasks WHERE id = ?", "i", id);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		row_to_task(st, ret);
		r = 0;
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	return r;
}

/* One fixed statement text per order: each filter is a "? = 0 OR ..."
 * pair (see task_list()), so every value is bound. */
#define MATCH_WHERE                                                                                      \
	" FROM tasks WHERE state IN " ACTIVE_STATES " AND (? = 0 OR type = ?) AND (? = 0 OR app_id = ?)" \
	" AND (? = 0 OR app_id IS NOT NULL) AND (? = 0 OR host = ?) AND (? = 0 OR run_on = ?)"            \
	" AND (? = 0 OR (state IN ('queued','waiting') AND stop_reason IS NULL)) AND (? = 0 OR state = ?)"
#define MATCH_ARGS(m)                                                                                           \
	(int64_t)((m)->type != NULL), (m)->type, (int64_t)((m)->app_id != NULL), (m)->app_id,                   \
		(int64_t)(m)->app_tasks, (int64_t)((m)->host != NULL), (m)->host, (int64_t)((m)->run_on != NULL), \
		(m)->run_on, (int64_t)(m)->not_started,                                                         \
		(int64_t)(m)->only_state, (m)->only_state ? task_state_name((m)->state) : NULL

int task_find_active(struct store *s, const struct task_match *m, struct task *ret)
{
	struct store_stmt *st;
	int r = store_query(s, &st,
			    m->newest_first ? "SELECT " TASK_COLS MATCH_WHERE " ORDER BY id DESC"
					    : "SELECT " TASK_COLS MATCH_WHERE " ORDER BY id",
			    "isisiisisiis", MATCH_ARGS(m));
	if (r < 0)
		return r;
	r = -ENOENT;
	int step = 0;
	while (r == -ENOENT && (step = store_step(st)) == 1) {
		struct task t;
		row_to_task(st, &t);
		if (!m->accept || m->accept(&t, m->userdata)) {
			*ret = t;
			r = 0;
		} else {
			task_release(&t);
		}
	}
	if (r == -ENOENT && step < 0)
		r = step;
	store_finalize(st);
	return r;
}

int task_count_active(struct store *s, const struct task_match *m, int64_t *ret_n)
{
	return store_query_int64(s, ret_n, "SELECT COUNT(*)" MATCH_WHERE, "isisiisisiis", MATCH_ARGS(m));
}

void task_list_free(struct task *tasks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		task_release(&tasks[i]);
	free(tasks);
}

int task_list(struct store *s, const struct task_filter *f, struct task **ret, size_t *ret_n, int64_t *ret_total)
{
	/* The filter is fixed SQL with "? = 0 OR col = ?" pairs (a flag: is
	 * this filter set?), so every value is bound and the statement text
	 * never varies. Not "? IS NULL": PostgreSQL cannot infer the type of a
	 * parameter there. */
	const char *where = " WHERE (? = 0 OR type = ?) AND (? = 0 OR app_id = ?) AND (? = 0 OR state = ?)"
			    " AND (? = 0 OR state IN " ACTIVE_STATES ")";
	const char *state = f->state >= 0 ? task_state_name((enum task_state)f->state) : NULL;
	int64_t per_page = f->per_page > 0 ? f->per_page : 50;
	int64_t page = f->page > 0 ? f->page : 1;
	int64_t has_type = f->type != NULL, has_app = f->app_id != NULL, has_state = state != NULL;
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM tasks%s", where);
	int64_t total = 0;
	int r = store_query_int64(s, &total, sql, "isisisi", has_type, f->type, has_app, f->app_id, has_state, state,
				  (int64_t)f->active_only);
	if (r < 0)
		return r;

	snprintf(sql, sizeof(sql), "SELECT " TASK_COLS " FROM tasks%s ORDER BY id DESC LIMIT ? OFFSET ?", where);
	struct store_stmt *st;
	r = store_query(s, &st, sql, "isisisiii", has_type, f->type, has_app, f->app_id, has_state, state,
			(int64_t)f->active_only, per_page, (page - 1) * per_page);
	if (r < 0)
		return r;
	struct task *tasks = NULL;
	size_t n = 0;
	while ((r = store_step(st)) == 1) {
		struct task *grown = realloc(tasks, (n + 1) * sizeof(*tasks));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		tasks = grown;
		row_to_task(st, &tasks[n++]);
	}
	store_finalize(st);
	if (r < 0) {
		task_list_free(tasks, n);
		return r;
	}
	*ret = tasks;
	*ret_n = n;
	if (ret_total)
		*ret_total = total;
	return 0;
}

/* A claim token: random, positive, never 0 (0 means "no claim"). */
static int64_t new_claim_token(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint64_t)now_mono_us() ^ ((uint64_t)getpid() << 32);
	v &= (uint64_t)INT64_MAX;
	return v ? (int64_t)v : 1;
}

static int claim_as(struct store *s, int64_t id, const char *host, bool again, int64_t old_claim)
{
	int64_t now = 0;
	int r = store_now_ms(s, &now);
	if (r < 0)
		return r;
	int64_t n = again
		? store_run_relaxed(s,
				    "UPDATE tasks SET host = ?, claim = ?, claimed_at = ? WHERE id = ? AND state = 'queued' "
				    "AND stop_reason IS NULL AND host IS NOT NULL AND COALESCE(claim, 0) = ? "
				    "AND (pid IS NULL OR pid = 0)",
				    "siiii", host, new_claim_token(), now, id, old_claim)
		: store_run_relaxed(s,
				    "UPDATE tasks SET host = ?, claim = ?, claimed_at = ? WHERE id = ? AND state = 'queued' "
				    "AND host IS NULL AND stop_reason IS NULL",
				    "siii", host, new_claim_token(), now, id);
	return n < 0 ? (int)n : n > 0;
}

int task_claim(struct store *s, int64_t id, const char *host) { return claim_as(s, id, host, false, 0); }

int task_claim_again(struct store *s, int64_t id, const char *host, int64_t old_claim)
{
	return claim_as(s, id, host, true, old_claim);
}

int task_requeue(struct store *s, int64_t id, int64_t old_claim)
{
	int64_t n = store_run(s, "UPDATE tasks SET host = NULL, claim = NULL, claimed_at = NULL WHERE id = ? "
				 "AND state = 'queued' AND COALESCE(claim, 0) = ? AND (pid IS NULL OR pid = 0)",
			      "ii", id, old_claim);
	return n < 0 ? (int)n : n > 0;
}

int task_set_pid(struct store *s, int64_t id, int64_t claim, int pid, uint64_t pid_start)
{
	int64_t n = store_run_relaxed(s,
				      "UPDATE tasks SET pid = ?, pid_start = ? WHERE id = ? AND COALESCE(claim, 0) = ?",
				      "iiii", (int64_t)pid, (int64_t)pid_start, id, claim);
	return n < 0 ? (int)n : 0;
}

int task_register_worker(struct store *s, int64_t id, int64_t claim, const char *host, int pid, uint64_t pid_start)
{
	int64_t n = claim == 0
		? store_run_relaxed(s, "UPDATE tasks SET pid = ?, pid_start = ? WHERE id = ? AND (pid IS NULL OR pid = 0)",
				    "iii", (int64_t)pid, (int64_t)pid_start, id)
		: store_run_relaxed(s,
				    "UPDATE tasks SET pid = ?, pid_start = ? WHERE id = ? AND (pid IS NULL OR pid = 0) "
				    "AND host = ? AND COALESCE(claim, 0) = ?",
				    "iiisi", (int64_t)pid, (int64_t)pid_start, id, host, claim);
	if (n < 0)
		return (int)n;
	struct task t;
	int r = task_get(s, id, &t);
	if (r < 0)
		return r;
	bool mine = (t.pid == pid || (t.pid > 1 && t.pid == (int)getppid())) &&
		    (claim == 0 || (t.claim == claim && t.host && strcmp(t.host, host) == 0));
	task_release(&t);
	return mine;
}

int task_set_message(struct store *s, int64_t id, const char *message)
{
	int64_t n = store_run(s, "UPDATE tasks SET message = ? WHERE id = ? AND state NOT IN " FINAL_STATES, "si",
			      message, id);
	return n < 0 ? (int)n : 0;
}

int task_set_waiting(struct store *s, int64_t id, const char *waiting_for_json, const char *message)
{
	int64_t n = store_run(s,
			      "UPDATE tasks SET state = 'waiting', waiting_for = ?, message = ? "
			      "WHERE id = ? AND state NOT IN " FINAL_STATES,
			      "ssi", waiting_for_json, message, id);
	return n < 0 ? (int)n : 0;
}

int task_report_waiting(struct store *s, int64_t id, const struct lock_blocker *b, char *msg, size_t msglen)
{
	char holder[96];
	struct task other;
	if (b->task_id > 0 && task_get(s, b->task_id, &other) == 0) {
		snprintf(holder, sizeof(holder), "task %lld, %s", (long long)b->task_id, other.type);
		task_release(&other);
	} else if (b->task_id > 0) {
		snprintf(holder, sizeof(holder), "task %lld", (long long)b->task_id);
	} else {
		snprintf(holder, sizeof(holder), "pid %d", b->pid);
	}
	char text_msg[400];
	if (b->deferred)
		snprintf(text_msg, sizeof(text_msg),
			 "Waiting for the full backup (%s) to end before queueing for %.128s; app tasks go on meanwhile",
			 holder, b->lock);
	else
		snprintf(text_msg, sizeof(text_msg), "Waiting for %s (%s %s)", b->lock,
			 b->queued ? "queued behind" : "held by", holder);
	if (msg)
		snprintf(msg, msglen, "%s", text_msg);
	json_t *wf = json_pack("{s:s, s:s, s:b, s:i, s:b}", "lock", b->lock, "mode", lock_mode_name(b->mode), "queued",
			       b->queued, "pid", b->pid, "deferred", b->deferred);
	json_object_set_new(wf, "heldBy", b->task_id > 0 ? json_integer(b->task_id) : json_null());
	char *text = json_dumps(wf, JSON_COMPACT);
	json_decref(wf);
	int r = task_set_waiting(s, id, text, text_msg);
	free(text);
	return r;
}

int task_set_running(struct store *s, int64_t id)
{
	int64_t n = store_run(s,
			      "UPDATE tasks SET state = 'running', waiting_for = NULL, message = '', "
			      "started_at = COALESCE(started_at, ?) WHERE id = ? AND state NOT IN " FINAL_STATES,
			      "ii", now_wall_ms(), id);
	return n < 0 ? (int)n : n > 0;
}

int task_set_progress(struct store *s, int64_t id, int percent, const char *message)
{
	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	int64_t n = store_run(s, "UPDATE tasks SET percent = ?, message = ? WHERE id = ? AND state NOT IN " FINAL_STATES,
			      "isi", (int64_t)percent, message ? message : "", id);
	return n < 0 ? (int)n : 0;
}

int task_finish(struct store *s, int64_t id, enum task_state state, const char *error_code,
		const char *error_message, const char *result_json)
{
	if (!task_state_is_final(state))
		return -EINVAL;
	int64_t n = store_run(s,
			      "UPDATE tasks SET state = ?, error_code = ?, error_message = ?, result = ?, "
			      "waiting_for = NULL, finished_at = ?, percent = CASE WHEN ? = 'succeeded' THEN 100 "
			      "ELSE percent END WHERE id = ? AND state NOT IN " FINAL_STATES,
			      "ssssisi", task_state_name(state), error_code, error_message, result_json, now_wall_ms(),
			      task_state_name(state), id);
	return n < 0 ? (int)n : n > 0;
}

/* Fail active task `id` claimed by owner id `host` as crashed with `msg`,
 * if the host's heartbeat is at least `gone_ms` old (or it has none): the
 * rule of host_liveness.h, with gone_ms for HOST_LEASE_MS (the sweep waits
 * twice that), written as SQL because the heartbeat is compared in the
 * same statement that fails the task: a beat between a host_liveness()
 * and the UPDATE would be missed. In the database's clock: no host's local
 * clock decides who is gone. 1 if this ended it, 0, or negative errno. */
static int fail_if_host_gone(struct store *s, int64_t id, const char *host, int64_t gone_ms, const char *msg)
{
	char host_id[HOST_ID_MAX + 1];
	snprintf(host_id, sizeof(host_id), "%.*s", (int)host_owner_host_len(host), host);
	int64_t now_db;
	int r = store_now_ms(s, &now_db);
	if (r < 0)
		return r;
	int64_t n = store_run(s,
			      "UPDATE tasks SET state = 'failed', error_code = ?, error_message = ?, waiting_for = NULL, "
			      "finished_at = ? WHERE id = ? AND host = ? AND state IN " ACTIVE_STATES
			      " AND NOT EXISTS (SELECT 1 FROM hosts WHERE hosts.id = ? AND hosts.heartbeat_at > ?)",
			      "ssiissi", TASK_ERR_CRASHED, msg, now_wall_ms(), id, host, host_id, now_db - gone_ms);
	return n < 0 ? (int)n : n > 0;
}

int task_fail_host_gone(struct store *s, int64_t id, const char *host, int64_t expired_ms_ago)
{
	char msg[400];
	snprintf(msg, sizeof(msg),
		 "its worker on host %s stopped renewing its lock lease (which expired %lld ms earlier by the "
		 "database's clock) and the host stopped its heartbeat: the host is presumed gone or frozen, and "
		 "another host freed its locks",
		 host, (long long)expired_ms_ago);
	return fail_if_host_gone(s, id, host, HOST_LEASE_MS, msg);
}

/* Does the document name task `id` as a holder or a waiter? */
static bool doc_names_task(const struct lock_doc *doc, int64_t id)
{
	for (size_t i = 0; i < doc->n_holders; i++)
		if (doc->holders[i].owner.task_id == id)
			return true;
	for (size_t i = 0; i < doc->n_waiters; i++)
		if (doc->waiters[i].owner.task_id == id)
			return true;
	return false;
}

int task_sweep_gone_hosts(struct store *s, const struct lock_doc *doc, const char *self, int *ret_n)
{
	size_t self_len = host_owner_host_len(self);
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT id, host FROM tasks WHERE state IN ('waiting','running') AND host IS NOT NULL",
			    NULL);
	if (r < 0)
		return r;
	int64_t ids[TASK_SWEEP_MAX];
	char hosts[TASK_SWEEP_MAX][HOST_ID_MAX + HOST_BOOT_TAG_LEN + 2]; /* owner ids */
	size_t n = 0;
	while (n < TASK_SWEEP_MAX && (r = store_step(st)) == 1) {
		int64_t id = store_col_int64(st, 0);
		const char *host = store_col_text(st, 1);
		/* This host's tasks are its supervisor's; those in the document
		 * are the reaper's (task_fail_host_gone()). */
		if (!host || strlen(host) >= sizeof(hosts[0]) ||
		    (host_owner_host_len(host) == self_len && strncmp(host, self, self_len) == 0) ||
		    doc_names_task(doc, id))
			continue;
		ids[n] = id;
		snprintf(hosts[n++], sizeof(hosts[0]), "%s", host);
	}
	store_finalize(st);
	if (r < 0)
		return r;
	int swept = 0;
	for (size_t i = 0; i < n; i++) {
		char msg[400];
		snprintf(msg, sizeof(msg),
			 "its host %.*s stopped its heartbeat over %d s ago and its worker holds no lock and waits for "
			 "none: the host is presumed gone",
			 (int)host_owner_host_len(hosts[i]), hosts[i], TASK_SWEEP_GONE_MS / 1000);
		r = fail_if_host_gone(s, ids[i], hosts[i], TASK_SWEEP_GONE_MS, msg);
		if (r < 0)
			return r;
		if (r == 1) {
			log_warn("task %lld (host %s) failed: %s", (long long)ids[i], hosts[i], msg);
			swept++;
		}
	}
	if (ret_n)
		*ret_n = swept;
	return 0;
}

void task_lock_lease_expired(const struct lock_owner *o, int64_t now_ms, void *store)
{
	int64_t ago = now_ms - o->lease_expires_ms;
	log_warn("freed the locks of pid %d on host %s (task %lld): its lease expired %lld ms ago", o->pid, o->host,
		 (long long)o->task_id, (long long)ago);
	if (o->task_id <= 0)
		return;
	int r = task_fail_host_gone(store, o->task_id, o->host, ago);
	if (r == 1)
		log_warn("task %lld (host %s) failed: its worker stopped renewing its lock lease and its host is gone",
			 (long long)o->task_id, o->host);
	else if (r == 0)
		log_info("task %lld (host %s) left to its host: it has ended, or its host still beats (a live worker "
			 "queues again or stops by itself; its daemon ends a dead one)",
			 (long long)o->task_id, o->host);
}

int task_request_stop(struct store *s, int64_t id, const char *reason)
{
	int64_t n = store_run(s,
			      "UPDATE tasks SET stop_reason = ? WHERE id = ? AND stop_reason IS NULL AND state IN " ACTIVE_STATES,
			      "si", reason, id);
	if (n < 0)
		return (int)n;
	if (n > 0)
		return 1;
	int64_t exists;
	int r = store_query_int64(s, &exists, "SELECT id FROM tasks WHERE id = ?", "i", id);
	return r == -ENOENT ? -ENOENT : r < 0 ? r : 0;
}

static json_t *json_or_null(const char *text)
{
	if (!text)
		return json_null();
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	return v ? v : json_string(text);
}

static json_t *time_or_null(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	char buf[40];
	format_rfc3339_ms(ms, buf, sizeof(buf));
	return json_string(buf);
}

json_t *task_to_json(const struct task *t)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(t->id));
	json_object_set_new(o, "type", json_string(t->type ? t->type : ""));
	json_object_set_new(o, "appId", t->app_id ? json_string(t->app_id) : json_null());
	json_object_set_new(o, "args", json_or_null(t->args));
	json_object_set_new(o, "state", json_string(task_state_name(t->state)));
	json_object_set_new(o, "percent", json_integer(t->percent));
	json_object_set_new(o, "message", json_string(t->message ? t->message : ""));
	json_object_set_new(o, "waitingFor", json_or_null(t->waiting_for));
	if (t->error_code)
		json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", t->error_code, "message",
							  t->error_message ? t->error_message : ""));
	else
		json_object_set_new(o, "error", json_null());
	json_object_set_new(o, "result", json_or_null(t->result));
	json_object_set_new(o, "pid", t->pid ? json_integer(t->pid) : json_null());
	/* Where it runs (ran): the host that claimed it, else the one that
	 * will (run_on, else its app's host; sched.c), else null: any host. */
	if (t->host)
		json_object_set_new(o, "host", json_stringn(t->host, host_owner_host_len(t->host)));
	else
		json_object_set_new(o, "host", t->app_host ? json_string(t->app_host) : json_null());
	json_object_set_new(o, "createdAt", time_or_null(t->created_at));
	json_object_set_new(o, "startedAt", time_or_null(t->started_at));
	json_object_set_new(o, "finishedAt", time_or_null(t->finished_at));
	return o;
}
