/* routes_status.c — status, the lock document, and Prometheus metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "common/timeutil.h"
#include "locks/locks.h"
#include "status_hooks.h"
#include "tasks/task.h"
#include "update/release.h"

static int count_states(struct store *s, int64_t counts[6])
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT state, COUNT(*) FROM tasks GROUP BY state", NULL);
	if (r < 0)
		return r;
	memset(counts, 0, 6 * sizeof(int64_t));
	while ((r = store_step(st)) == 1) {
		enum task_state state;
		const char *name = store_col_text(st, 0);
		if (name && task_state_from_string(name, &state) == 0)
			counts[state] = store_col_int64(st, 1);
	}
	store_finalize(st);
	return r;
}

/* The release side of /status: the version <install_root>/current points
 * at (what a restart would run: the systemd unit starts
 * <install_root>/current/bin/boxd), and a warning when it is not the one
 * running, e.g. after a package upgrade that was not followed by a
 * restart, or a `current` switched by hand. */
static void status_add_release(json_t *o, const struct boxd_config *cfg)
{
	char current[UPDATE_VERSION_MAX], err[512];
	const char *running = update_running_version(cfg);
	json_t *warnings = json_array();
	int r = update_current_version(cfg->install_root, current, err, sizeof(err));
	json_object_set_new(o, "installRoot", json_string(cfg->install_root));
	json_object_set_new(o, "currentVersion", r == 0 && *current ? json_string(current) : json_null());
	if (r < 0) {
		char w[700];
		snprintf(w, sizeof(w), "cannot tell which release %s/current points at: %s", cfg->install_root, err);
		json_array_append_new(warnings, json_string(w));
	} else if (*current && strcmp(current, running) != 0) {
		char w[400];
		snprintf(w, sizeof(w),
			 "boxd runs release %s but %s/current points at %s: a restart of boxd runs %s", running,
			 cfg->install_root, current, current);
		json_array_append_new(warnings, json_string(w));
	}
	json_object_set_new(o, "warnings", warnings);
}

static void get_status(struct api_req *req)
{
	int64_t counts[6];
	int r = count_states(req->store, counts);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	json_t *engine = api_status_engine(api_config(req));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:o, s:I, s:{s:I, s:I, s:I}}", "version",
			      update_running_version(api_config(req)), "buildVersion", BOXD_VERSION, "host",
			      api_host(req), "ownerId", api_owner_id(req), "store", "backend", api_config(req)->store_backend, "engine", engine,
			      "uptimeSeconds", (json_int_t)((now_wall_ms() - api_started_at_ms(req)) / 1000), "tasks",
			      "queued", (json_int_t)counts[TASK_QUEUED], "waiting", (json_int_t)counts[TASK_WAITING],
			      "running", (json_int_t)counts[TASK_RUNNING]);
	if (o)
		status_add_release(o, api_config(req));
	api_reply_json(req, 200, o);
}

static void get_locks(struct api_req *req)
{
	int64_t version;
	char *text;
	int r = locks_read(req->store, NULL, &version, &text);
	if (r < 0) {
		api_reply_error(req, r == -EBADMSG ? 500 : 503, r == -EBADMSG ? "lock_document_corrupt" : "store_error",
				"%s", store_errmsg(req->store));
		return;
	}
	json_t *doc = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		api_reply_error(req, 500, "lock_document_corrupt", "the lock document does not parse");
		return;
	}
	json_object_set_new(doc, "version", json_integer(version));
	api_reply_json(req, 200, doc);
}

static void get_metrics(struct api_req *req)
{
	int64_t counts[6];
	int r = count_states(req->store, counts);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	struct lock_doc doc;
	int64_t version = 0;
	bool have_doc = locks_read(req->store, &doc, &version, NULL) == 0;
	char buf[4096];
	size_t o = 0;
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "# HELP boxd_tasks Tasks by state.\n# TYPE boxd_tasks gauge\n");
	for (int i = 0; i < 6; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "boxd_tasks{state=\"%s\"} %lld\n",
				      task_state_name((enum task_state)i), (long long)counts[i]);
	o += (size_t)snprintf(buf + o, sizeof(buf) - o,
			      "# HELP boxd_lock_holders Held locks.\n# TYPE boxd_lock_holders gauge\nboxd_lock_holders %zu\n"
			      "# HELP boxd_lock_waiters Tickets in the lock wait queue.\n# TYPE boxd_lock_waiters gauge\n"
			      "boxd_lock_waiters %zu\n"
			      "# HELP boxd_lock_document_version Changes of the lock document so far.\n"
			      "# TYPE boxd_lock_document_version counter\nboxd_lock_document_version %lld\n"
			      "# HELP boxd_uptime_seconds Seconds since the daemon started.\n"
			      "# TYPE boxd_uptime_seconds gauge\nboxd_uptime_seconds %lld\n",
			      have_doc ? doc.n_holders : 0, have_doc ? doc.n_waiters : 0, (long long)version,
			      (long long)((now_wall_ms() - api_started_at_ms(req)) / 1000));
	if (have_doc)
		lock_doc_release(&doc);
	api_reply_text(req, 200, "text/plain; version=0.0.4", buf, o);
}

const struct api_route api_routes_status[] = {
	{ "GET", "/api/v1/status", get_status },
	{ "GET", "/api/v1/locks", get_locks },
	{ "GET", "/metrics", get_metrics },
	{ NULL, NULL, NULL },
};
