/* routes_box.c — /api/v1/box/restore: the whole box from a full backup,
 * onto this (fresh) box, while its daemon runs (docs/ARCHITECTURE.md,
 * "Box restore through the API").
 *
 * POST is accepted only on an empty box (no app, no volume in the store,
 * unless "force") with no active task. The daemon then enters restore
 * mode: every other mutating request is answered 503 `restoring` (the
 * gate below), the loop starts no task, and the daemon runs `boxd restore`
 * as a child process (argv, never a shell; api_opts.box_restore). GET
 * shows its progress from the record in <state>/box-restore/
 * (backups/box_restore_status.h), also after the daemon re-executed.
 *
 * The gate: a mutating request holds the read side of a rwlock while it
 * runs; POST /box/restore takes the write side to check the box and enter
 * restore mode, so no request that passed the gate is still creating a
 * task when the box is checked, and none passes it afterwards. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api-internal.h"
#include "backups/box_restore_status.h"
#include "common/timeutil.h"
#include "tasks/task.h"

static pthread_rwlock_t gate = PTHREAD_RWLOCK_INITIALIZER;
static atomic_bool restoring;

static void post_restore(struct api_req *req);

bool api_box_gate_enter(struct api_req *req, api_handler_fn h)
{
	if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 || h == post_restore)
		return true;
	pthread_rwlock_rdlock(&gate);
	if (atomic_load(&restoring)) {
		pthread_rwlock_unlock(&gate);
		api_reply_error(req, 503, "restoring",
				"the box is being restored from a backup; nothing else can change until it is done "
				"(GET /api/v1/box/restore shows its progress)");
		return false;
	}
	return true;
}

void api_box_gate_leave(struct api_req *req, api_handler_fn h)
{
	if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 || h == post_restore)
		return;
	pthread_rwlock_unlock(&gate);
}

void api_box_restore_end(void)
{
	pthread_rwlock_wrlock(&gate);
	atomic_store(&restoring, false);
	pthread_rwlock_unlock(&gate);
}

/* An absolute path without "..", "." or empty segments and without control
 * characters. */
static bool clean_path(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) >= 4096)
		return false;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	for (const char *seg = p + 1; *seg;) {
		const char *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (!end)
			break;
		seg = end + 1;
	}
	return true;
}

/* The body's options as `boxd restore` arguments; answers 400 on bad input. */
static bool restore_args(struct api_req *req, json_t *body, json_t *args)
{
	static const char *const fields[] = { "from", "backup", "keyFile", "passphraseFile", "sshKeyFile",
					      "knownHosts", "appsdataRoot", "volumesRoot", "force", NULL };
	static const struct {
		const char *field, *flag;
		bool is_dir;
	} paths[] = {
		{ "keyFile", "--key", false },		 { "passphraseFile", "--passphrase-file", false },
		{ "sshKeyFile", "--ssh-key", false },	 { "knownHosts", "--known-hosts", false },
		{ "appsdataRoot", "--appsdata-root", true }, { "volumesRoot", "--volumes-root", true },
	};
	if (!api_check_fields(req, body, fields))
		return false;
	json_t *from = json_object_get(body, "from");
	const char *f = json_string_value(from);
	struct stat st;
	if (!f) {
		api_reply_error(req, 400, "bad_request", "\"from\" is required: sftp://USER@HOST[:PORT]/PATH or a directory");
		return false;
	}
	if (strncmp(f, "sftp://", 7) == 0) {
		for (const char *c = f; *c; c++)
			if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
				api_reply_error(req, 400, "bad_request", "\"from\" has a space or a control character");
				return false;
			}
	} else if (!clean_path(f) || stat(f, &st) < 0 || !S_ISDIR(st.st_mode)) {
		api_reply_error(req, 400, "bad_request",
				"\"from\" is sftp://USER@HOST[:PORT]/PATH or an existing directory (absolute, without "
				"\"..\"), not \"%s\"", f);
		return false;
	}
	json_array_append_new(args, json_string("--from"));
	json_array_append(args, from);
	json_t *b = json_object_get(body, "backup");
	if (b) {
		if (!json_is_integer(b) || json_integer_value(b) <= 0) {
			api_reply_error(req, 400, "bad_request", "\"backup\" is a full backup's id (a positive integer)");
			return false;
		}
		char id[32];
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(b));
		json_array_append_new(args, json_string("--backup"));
		json_array_append_new(args, json_string(id));
	}
	if (json_object_get(body, "keyFile") && json_object_get(body, "passphraseFile")) {
		api_reply_error(req, 400, "bad_request", "give \"keyFile\" or \"passphraseFile\", not both");
		return false;
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		json_t *v = json_object_get(body, paths[i].field);
		if (!v)
			continue;
		const char *p = json_string_value(v);
		if (!clean_path(p)) {
			api_reply_error(req, 400, "bad_request",
					"\"%s\" is an absolute path on the server without \"..\"", paths[i].field);
			return false;
		}
		if (!paths[i].is_dir && (stat(p, &st) < 0 || !S_ISREG(st.st_mode))) {
			api_reply_error(req, 400, "bad_request", "\"%s\": %s is not a file on the server", paths[i].field, p);
			return false;
		}
		json_array_append_new(args, json_string(paths[i].flag));
		json_array_append(args, v);
	}
	json_t *force = json_object_get(body, "force");
	if (force && !json_is_boolean(force)) {
		api_reply_error(req, 400, "bad_request", "\"force\" is true or false");
		return false;
	}
	if (json_is_true(force))
		json_array_append_new(args, json_string("--force"));
	return true;
}

/* Ids of a table's rows, "a, b, c" (at most a few, then "..."). */
static int ids_of(struct store *s, const char *sql, char *buf, size_t len)
{
	struct store_stmt *st;
	buf[0] = '\0';
	int r = store_query(s, &st, sql, NULL);
	if (r < 0)
		return r;
	size_t w = 0;
	int n = 0;
	while ((r = store_step(st)) == 1) {
		const char *id = store_col_text(st, 0);
		if (n++ < 8)
			w += (size_t)snprintf(buf + w, len - w, "%s%s", w ? ", " : "", id ? id : "?");
		else if (n == 9)
			w += (size_t)snprintf(buf + w, len - w, ", ...");
		if (w >= len)
			w = len - 1;
	}
	store_finalize(st);
	return r < 0 ? r : n;
}

/* 409 unless the box is empty (or force) and no task is active. */
static bool box_ready(struct api_req *req, bool force)
{
	struct task t;
	struct task_match m = { 0 };
	int r = task_find_active(req->store, &m, &t);
	if (r == 0) {
		api_reply_error(req, 409, "tasks_active",
				"task %lld (%s) is %s: a box is restored only when no task is active; wait for it to end",
				(long long)t.id, t.type, task_state_name(t.state));
		task_release(&t);
		return false;
	}
	if (r != -ENOENT) {
		api_reply_store_error(req, r);
		return false;
	}
	if (force)
		return true;
	char apps[512], vols[512];
	int na = ids_of(req->store, "SELECT id FROM apps ORDER BY id", apps, sizeof(apps));
	int nv = na < 0 ? 0 : ids_of(req->store, "SELECT id FROM volumes ORDER BY id", vols, sizeof(vols));
	if (na < 0 || nv < 0) {
		api_reply_store_error(req, na < 0 ? na : nv);
		return false;
	}
	if (na + nv > 0) {
		api_reply_error(req, 409, "box_not_empty",
				"this box is not empty (%s%s%s%s%s): a backup is restored onto an empty box, or with "
				"\"force\": true; nothing was changed",
				na ? "apps: " : "", na ? apps : "", na && nv ? "; " : "", nv ? "volumes: " : "",
				nv ? vols : "");
		return false;
	}
	return true;
}

/* POST /api/v1/box/restore {"from", "backup"?, "keyFile"|"passphraseFile"?,
 * "sshKeyFile"?, "knownHosts"?, "appsdataRoot"?, "volumesRoot"?, "force"?}
 * → 202 the record (as GET shows it); 400 bad input; 409 box_not_empty,
 * tasks_active or restore_running; 501 when this daemon cannot run one. */
static void post_restore(struct api_req *req)
{
	const struct api_opts *o = api_opts_of(req);
	json_t *body = api_body_object(req);
	if (!body)
		return;
	json_t *args = json_array();
	if (!restore_args(req, body, args))
		goto out;
	if (!o->box_restore) {
		api_reply_error(req, 501, "not_supported", "this server cannot restore a box");
		goto out;
	}
	pthread_rwlock_wrlock(&gate);
	if (atomic_load(&restoring)) {
		pthread_rwlock_unlock(&gate);
		api_reply_error(req, 409, "restore_running", "a restore of this box is already running");
		goto out;
	}
	if (!box_ready(req, json_is_true(json_object_get(body, "force")))) {
		pthread_rwlock_unlock(&gate);
		goto out;
	}
	unsigned char rnd[16];
	char token[33];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		pthread_rwlock_unlock(&gate);
		api_reply_error(req, 500, "internal", "no random bytes");
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	const struct boxd_config *cfg = api_config(req);
	json_t *st = json_pack("{s:s, s:O, s:O?, s:I, s:b, s:s}", "state", "running", "from",
			       json_object_get(body, "from"), "backup", json_object_get(body, "backup"), "startedAt",
			       (json_int_t)now_wall_ms(), "restarted", 0, "token", token);
	char err[600];
	int r = st ? box_restore_status_save(cfg, st, err, sizeof(err)) : -ENOMEM;
	if (r == 0) {
		/* The child's log starts empty. */
		char log[4096];
		if (box_restore_status_path(cfg, "log", log, sizeof(log)))
			unlink(log);
		if (box_restore_status_path(cfg, "result.json", log, sizeof(log)))
			unlink(log);
		atomic_store(&restoring, true);
		r = o->box_restore(o->userdata, args, token, err, sizeof(err));
		if (r < 0)
			atomic_store(&restoring, false);
	}
	pthread_rwlock_unlock(&gate);
	json_decref(st);
	if (r < 0) {
		api_reply_error(req, 500, "internal", "cannot start the restore: %s", r == -ENOMEM ? "out of memory" : err);
		goto out;
	}
	json_t *view;
	if (box_restore_status_view(cfg, &view) < 0)
		view = json_pack("{s:s}", "state", "running");
	api_reply_json(req, 202, view);
out:
	json_decref(args);
	json_decref(body);
}

/* GET /api/v1/box/restore → the record of the latest restore: state
 * (running, failed, succeeded), step, percent, lines, changed, error,
 * result; 404 when none was ever asked for. */
static void get_restore(struct api_req *req)
{
	json_t *view;
	if (box_restore_status_view(api_config(req), &view) < 0) {
		api_reply_error(req, 404, "not_found", "no box restore was asked for on this box");
		return;
	}
	json_object_set_new(view, "restoring", json_boolean(atomic_load(&restoring)));
	api_reply_json(req, 200, view);
}

const struct api_route api_routes_box[] = {
	{ "POST", "/api/v1/box/restore", post_restore },
	{ "GET", "/api/v1/box/restore", get_restore },
	{ NULL, NULL, NULL },
};
