/* backups.c — the fullbackup, backup and restore task types, and
 * backups_run_full() (see backups.h).
 *
 * Files in the backup dir (config [backups] dir):
 *   box-<UTC stamp>-t<task>.tar.zst        the box state (box_state.h)
 *   app-<app>-<UTC stamp>-t<task>.tar.zst  one app's data dir
 *   <archive>.json                         its metadata (the row, as JSON)
 *   full-<UTC stamp>-t<task>.json          a full backup's manifest
 * Each written with the temp/fsync/rename/fsync-dir sequence (tarball.h).
 * A row in `backups` is inserted only once its archive is durable, so a
 * row in state ok always names a complete file.
 */
#include "backups.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apps/app.h"
#include "apps/app_bind.h"
#include "backup_key.h"
#include "backup_store.h"
#include "box_state.h"
#include "restore_swap.h"
#include "common/fs.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "locks/locks.h"
#include "tarball.h"
#include "tasks/store_open.h"
#include "tasks/task.h"
#include "tasks/task_type.h"

#define CONTAINER_STOP_TIMEOUT_S 10

static bool cancelled(const struct task_ctx *ctx) { return ctx->cancel && *ctx->cancel; }

static int config_format(struct task_ctx *ctx, enum tarball_format *ret)
{
	const char *f = ctx->config->backups_format ? ctx->config->backups_format : "zstd";
	if (tarball_format_from_string(f, ret) < 0)
		return task_ctx_fail(ctx, -EINVAL, "bad_config", "[backups] format \"%s\" is not zstd or gzip", f);
	return 0;
}

static int ensure_backups_dir(struct task_ctx *ctx)
{
	char err[512];
	int r = fs_mkdir_p(ctx->config->backups_dir, 0700, err, sizeof(err));
	return r < 0 ? task_ctx_fail(ctx, r, "fs_error", "cannot create the backup dir: %s", err) : 0;
}

/* "<dir>/<prefix>-<stamp>-t<task><ext>", not yet taken. */
static void make_path(struct task_ctx *ctx, const char *prefix, const char *ext, char *buf, size_t len)
{
	char stamp[32];
	time_t now = (time_t)(now_wall_ms() / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 1;; n++) {
		char suffix[16] = "";
		if (n > 1)
			snprintf(suffix, sizeof(suffix), "-%d", n);
		snprintf(buf, len, "%s/%s-%s-t%lld%s%s", ctx->config->backups_dir, prefix, stamp,
			 (long long)ctx->task->id, suffix, ext);
		struct stat st;
		if (lstat(buf, &st) < 0 || n > 100)
			return;
	}
}

/* ---- one archive ------------------------------------------------------------------- */

struct archived {
	int64_t id;
	char path[PATH_MAX];
	char sha256[TARBALL_SHA256_HEX];
	int64_t size;
	int64_t data_bytes;
};

static int write_metadata(const char *path, json_t *meta, char *err, size_t errlen)
{
	char *text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	size_t len = strlen(text);
	char *with_nl = realloc(text, len + 2);
	if (!with_nl) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	with_nl[len] = '\n';
	with_nl[len + 1] = '\0';
	int r = tarball_write_file(path, with_nl, len + 1, err, errlen);
	free(with_nl);
	return r;
}

/* Archive `src_dir` as a backup of `kind` (app: of app_id), record its row
 * and write its metadata file. On failure nothing is left behind: no file,
 * no row. */
static int make_archive(struct task_ctx *ctx, const char *kind, const char *app_id, const char *src_dir,
			int64_t full_id, struct archived *ret)
{
	enum tarball_format fmt;
	int r = config_format(ctx, &fmt);
	if (r < 0)
		return r;
	char prefix[APP_ID_MAX + 8], err[1024];
	if (app_id)
		snprintf(prefix, sizeof(prefix), "app-%s", app_id);
	else
		snprintf(prefix, sizeof(prefix), "%s", kind);
	make_path(ctx, prefix, tarball_format_ext(fmt), ret->path, sizeof(ret->path));
	struct tarball_info info;
	r = tarball_create(src_dir, ret->path, fmt, ctx->config->backups_max_archive_size, ctx->cancel, &info, err,
			   sizeof(err));
	if (r == -ECANCELED)
		return r;
	if (r < 0)
		return task_ctx_fail(ctx, r, r == -EFBIG ? "backup_too_large" : "backup_failed", "cannot archive %s: %s",
				     src_dir, err);
	/* Marks the archive as boxd's own (backup_key.h). */
	char mac[BACKUP_MAC_HEX];
	r = backup_mac(ctx->config, kind, app_id, info.sha256, info.size, mac, err, sizeof(err));
	if (r < 0) {
		unlink(ret->path);
		return task_ctx_fail(ctx, r, "backup_failed", "cannot authenticate the archive: %s", err);
	}

	int64_t created = now_wall_ms();
	struct backup row = {
		.kind = (char *)kind, .app_id = (char *)app_id, .task_id = ctx->task->id, .path = ret->path,
		.format = (char *)tarball_format_name(fmt), .sha256 = info.sha256, .size = info.size,
		.created_at = created, .state = "ok", .full_backup_id = full_id, .mac = mac,
	};
	r = backup_insert(ctx->store, &row, &ret->id);
	if (r < 0) {
		unlink(ret->path);
		return task_ctx_fail(ctx, r, "store_error", "cannot record the backup: %s", store_errmsg(ctx->store));
	}
	row.id = ret->id;
	char meta_path[PATH_MAX + 8];
	snprintf(meta_path, sizeof(meta_path), "%s.json", ret->path);
	json_t *meta = backup_to_json(&row);
	json_object_set_new(meta, "dataBytes", json_integer(info.data_bytes));
	json_object_set_new(meta, "entries", json_integer(info.entries));
	if (app_id)
		json_object_set_new(meta, "source", json_string(src_dir));
	json_object_set_new(meta, "boxdVersion", json_string(BOXD_VERSION));
	r = write_metadata(meta_path, meta, err, sizeof(err));
	json_decref(meta);
	if (r < 0) {
		backup_delete(ctx->store, ret->id);
		unlink(ret->path);
		return task_ctx_fail(ctx, r, "backup_failed", "cannot write the backup's metadata: %s", err);
	}
	memcpy(ret->sha256, info.sha256, sizeof(ret->sha256));
	ret->size = info.size;
	ret->data_bytes = info.data_bytes;
	return 0;
}

/* The box state: dump into a temp dir in the backup dir, archive it. */
static int archive_box_state(struct task_ctx *ctx, int64_t full_id, struct archived *ret)
{
	char tmp[PATH_MAX], err[1024];
	snprintf(tmp, sizeof(tmp), "%s/.box-state-XXXXXX", ctx->config->backups_dir);
	if (!mkdtemp(tmp))
		return task_ctx_fail(ctx, -errno, "fs_error", "cannot create a temp dir in %s: %s",
				     ctx->config->backups_dir, strerror(errno));
	const char *name = NULL;
	int r = box_state_dump(ctx->config, tmp, &name, err, sizeof(err));
	if (r < 0)
		r = task_ctx_fail(ctx, r, "backup_failed", "cannot dump the box state: %s", err);
	else
		r = make_archive(ctx, "box", NULL, tmp, full_id, ret);
	const char *roots[] = { ctx->config->backups_dir, NULL };
	fs_remove_tree(roots, tmp, err, sizeof(err));
	return r;
}

/* ---- waiting for a lock inside a running task ---------------------------------------- */

struct wait_state {
	struct task_ctx *ctx;
	bool waited;
};

/* Like the worker's report: the task shows what it waits for. */
static void on_wait(const struct lock_blocker *b, void *userdata)
{
	struct wait_state *w = userdata;
	char msg[256];
	if (task_report_waiting(w->ctx->store, w->ctx->task->id, b, msg, sizeof(msg)) >= 0) {
		printf("%s\n", msg);
		fflush(stdout);
	}
	w->waited = true;
}

/* Take app:<id> exclusive for this task, waiting as long as it takes (or
 * until the task is stopped). */
static int lock_app(struct task_ctx *ctx, struct store *ls, const char *app_id)
{
	struct lock_req req = { .mode = LOCK_EXCLUSIVE };
	snprintf(req.name, sizeof(req.name), "app:%s", app_id);
	struct wait_state w = { ctx, false };
	struct store_retry rt; /* a store outage is waited out, as by the worker */
	store_retry_init(&rt, ctx->config->outage_grace_ms);
	rt.busy_is_waiting = true;
	struct locks_acquire_opts opts = {
		.timeout_ms = -1, .on_wait = on_wait, .userdata = &w, .cancel = ctx->cancel,
		.lease_ms = config_lease_ms(ctx->config),
		.on_expired = task_lock_lease_expired, .expired_userdata = ctx->store, .retry = &rt,
	};
	int64_t token;
	int r = locks_acquire(ls, ctx->owner, &req, 1, &opts, &token, NULL);
	if (w.waited)
		task_set_running(ctx->store, ctx->task->id); /* back from waiting */
	if (r == -ECANCELED)
		return r;
	if (r < 0)
		return task_ctx_fail(ctx, r, "lock_error", "cannot take %s: %s", req.name, store_errmsg(ls));
	return 0;
}

static void unlock_app(struct task_ctx *ctx, struct store *ls, const char *app_id)
{
	char name[LOCK_NAME_MAX];
	snprintf(name, sizeof(name), "app:%s", app_id);
	const char *names[] = { name };
	/* A failure here leaves the lock to the worker's final release. */
	(void)locks_release(ls, ctx->owner, names, 1, NULL);
}

/* ---- retention ------------------------------------------------------------------------- */

/* The files of a deleted row, if the row names a file in the backup dir
 * (the store is not trusted for path safety: a row naming anything else
 * loses its row, never that file). */
static void remove_files_of(struct task_ctx *ctx, const struct backup *b)
{
	char err[512];
	if (!b->path)
		return;
	if (path_check_backup_file(ctx->config, b->path, err, sizeof(err)) < 0) {
		printf("retention: not deleting the file of backup %lld: %s\n", (long long)b->id, err);
		fflush(stdout);
		return;
	}
	unlink(b->path);
	if (strcmp(b->kind, "full") != 0) {
		char meta[PATH_MAX + 8];
		snprintf(meta, sizeof(meta), "%s.json", b->path);
		unlink(meta);
	}
}

/* Apply the retention rule (backup_store.h). The row goes first: the
 * store is the truth, and a file whose row is gone is only litter. */
static int apply_retention(struct task_ctx *ctx, int *ret_deleted)
{
	struct backup *all;
	size_t n;
	int r = backup_list(ctx->store, NULL, &all, &n);
	if (r < 0)
		return r;
	struct retention_plan plan;
	r = backup_retention_plan(all, n, ctx->config->backups_keep > 0 ? ctx->config->backups_keep : 7, &plan);
	if (r < 0) {
		backup_list_free(all, n);
		return r;
	}
	int deleted = 0;
	for (size_t i = 0; i < plan.n_detach && r >= 0; i++) {
		r = backup_detach(ctx->store, plan.detach_ids[i]);
		if (r == -ENOENT)
			r = 0;
	}
	for (size_t i = 0; i < plan.n_delete && r >= 0; i++) {
		for (size_t j = 0; j < n; j++) {
			if (all[j].id != plan.delete_ids[i])
				continue;
			r = backup_delete(ctx->store, all[j].id);
			if (r == -ENOENT)
				r = 0; /* someone else's retention was faster */
			else if (r == 0) {
				remove_files_of(ctx, &all[j]);
				deleted++;
			}
			break;
		}
	}
	if (deleted)
		fs_fsync_dir(ctx->config->backups_dir);
	retention_plan_release(&plan);
	backup_list_free(all, n);
	if (r == 0 && ret_deleted)
		*ret_deleted = deleted;
	return r;
}

/* ---- the full backup ----------------------------------------------------------------------- */

struct full_stats {
	int apps_ok;
	json_t *failed_apps;    /* [{appId, error}] */
	int64_t bytes;          /* archive bytes written */
	int64_t app_data_bytes; /* data read from app data dirs */
	int64_t app_ms;         /* time spent archiving apps (not waiting) */
	int deleted;            /* backups removed by retention */
};

static int scale(int from, int to, int step, int steps) { return from + (to - from) * step / (steps > 0 ? steps : 1); }

/* Archive one app while holding its lock. Returns 0, -ECANCELED, or
 * another negative errno with ctx's error set (the caller goes on with the
 * next app). *ret_skipped: the app went away meanwhile. */
static int full_one_app(struct task_ctx *ctx, struct store *ls, const char *app_id, int64_t full_id,
			json_t *manifest_apps, struct full_stats *stats, bool *ret_skipped)
{
	*ret_skipped = false;
	int r = lock_app(ctx, ls, app_id);
	if (r < 0)
		return r;
	/* Re-read under the lock: it may have been uninstalled or moved while
	 * we waited. */
	struct app a;
	r = app_get(ctx->store, app_id, &a);
	if (r == -ENOENT || (r == 0 && strcmp(a.install_state, "installed") != 0)) {
		if (r == 0)
			app_release(&a);
		unlock_app(ctx, ls, app_id);
		*ret_skipped = true;
		return 0;
	}
	if (r < 0) {
		unlock_app(ctx, ls, app_id);
		return task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", app_id, store_errmsg(ctx->store));
	}
	char *dir = NULL, err[512];
	r = app_data_dir_checked(ctx->config, &a, &dir, err, sizeof(err));
	app_release(&a);
	if (r < 0) {
		unlock_app(ctx, ls, app_id);
		return task_ctx_fail(ctx, r, "bad_path", "%s", err);
	}
	struct archived ar;
	int64_t t0 = now_mono_ms();
	r = make_archive(ctx, "app", app_id, dir, full_id, &ar);
	/* Released at once: only this app waited for us, and only this long. */
	unlock_app(ctx, ls, app_id);
	free(dir);
	if (r < 0)
		return r;
	stats->app_ms += now_mono_ms() - t0;
	stats->apps_ok++;
	stats->bytes += ar.size;
	stats->app_data_bytes += ar.data_bytes;
	const char *slash = strrchr(ar.path, '/');
	json_array_append_new(manifest_apps, json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "id", (json_int_t)ar.id, "appId",
						       app_id, "file", slash ? slash + 1 : ar.path, "sha256", ar.sha256,
						       "size", (json_int_t)ar.size, "dataBytes", (json_int_t)ar.data_bytes));
	return 0;
}

/* *stats is always initialized; the caller releases stats->failed_apps. */
static int run_full(struct task_ctx *ctx, int from, int to, int64_t *ret_id, struct full_stats *stats)
{
	*stats = (struct full_stats){ .failed_apps = json_array() };
	enum tarball_format fmt;
	int r = config_format(ctx, &fmt);
	if (r < 0)
		return r;
	if ((r = ensure_backups_dir(ctx)) < 0)
		return r;
	(void)backup_mark_stale_failed(ctx->store, NULL);

	struct store *ls = NULL;
	struct app *apps = NULL;
	size_t n_apps = 0;
	int64_t full_id = 0;
	bool recorded = false; /* the full backup's row has its final state */
	json_t *manifest = NULL;
	char err[512];

	struct backup row = { .kind = "full", .task_id = ctx->task->id, .format = (char *)tarball_format_name(fmt),
			      .state = "creating" };
	r = backup_insert(ctx->store, &row, &full_id);
	if (r < 0)
		return task_ctx_fail(ctx, r, "store_error", "cannot record the full backup: %s", store_errmsg(ctx->store));
	r = store_open_config(ctx->config, STORE_OPEN_NO_MIGRATE | STORE_OPEN_RELAXED, &ls, err, sizeof(err));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "store_error", "cannot open the lock store: %s", err);
		goto out;
	}
	r = app_list(ctx->store, &apps, &n_apps);
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "store_error", "cannot list apps: %s", store_errmsg(ctx->store));
		goto out;
	}
	/* Only installed apps; the list is taken now, and each app is looked
	 * at again once its lock is held. */
	size_t n = 0;
	for (size_t i = 0; i < n_apps; i++)
		if (strcmp(apps[i].install_state, "installed") == 0)
			n++;
	int steps = (int)n + 1, step = 0;

	task_ctx_progress(ctx, scale(from, to, step, steps), "Backing up the box state");
	struct archived box;
	r = archive_box_state(ctx, full_id, &box);
	if (r < 0)
		goto out;
	stats->bytes += box.size;
	const char *slash = strrchr(box.path, '/');
	manifest = json_pack("{s:s, s:I, s:I, s:s, s:s, s:{s:I, s:s, s:s, s:I}, s:[]}", "kind", "full", "id",
			     (json_int_t)full_id, "taskId", (json_int_t)ctx->task->id, "format", tarball_format_name(fmt),
			     "boxdVersion", BOXD_VERSION, "boxState", "id", (json_int_t)box.id, "file",
			     slash ? slash + 1 : box.path, "sha256", box.sha256, "size", (json_int_t)box.size, "apps");

	int done = 0;
	for (size_t i = 0; i < n_apps; i++) {
		if (strcmp(apps[i].install_state, "installed") != 0)
			continue;
		step++;
		done++;
		if (cancelled(ctx)) {
			r = -ECANCELED;
			goto out;
		}
		task_ctx_progress(ctx, scale(from, to, step, steps), "Backing up app %d of %zu: %s", done, n, apps[i].id);
		bool skipped;
		r = full_one_app(ctx, ls, apps[i].id, full_id, json_object_get(manifest, "apps"), stats, &skipped);
		if (r == -ECANCELED)
			goto out;
		if (r < 0) {
			/* One broken app does not keep the others from being
			 * backed up; the full backup ends failed, naming it. */
			json_array_append_new(stats->failed_apps,
					      json_pack("{s:s, s:s, s:s}", "appId", apps[i].id, "code", ctx->error_code,
							"message", ctx->error_message));
			printf("backup of app %s failed: %s\n", apps[i].id, ctx->error_message);
			fflush(stdout);
			ctx->error_code[0] = ctx->error_message[0] = '\0';
			r = 0;
		}
		(void)skipped;
	}

	/* The manifest, then the row: ok only if every app made it. */
	bool complete = json_array_size(stats->failed_apps) == 0;
	json_object_set(manifest, "failedApps", stats->failed_apps);
	char created[40];
	format_rfc3339_ms(now_wall_ms(), created, sizeof(created));
	json_object_set_new(manifest, "createdAt", json_string(created));
	json_object_set_new(manifest, "size", json_integer(stats->bytes));
	char mpath[PATH_MAX];
	make_path(ctx, "full", ".json", mpath, sizeof(mpath));
	r = write_metadata(mpath, manifest, err, sizeof(err));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "backup_failed", "cannot write the manifest: %s", err);
		goto out;
	}
	char msha[TARBALL_SHA256_HEX];
	if (tarball_sha256_file(mpath, msha, NULL, err, sizeof(err)) < 0)
		msha[0] = '\0';
	r = backup_finish_full(ctx->store, full_id, complete ? "ok" : "failed", mpath, msha[0] ? msha : NULL,
			       stats->bytes);
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "store_error", "cannot record the full backup: %s", store_errmsg(ctx->store));
		goto out;
	}
	recorded = true;
	if (!complete) {
		json_t *first = json_array_get(stats->failed_apps, 0);
		r = task_ctx_fail(ctx, -EIO, "backup_failed", "%zu of %zu apps could not be backed up (first: %s: %s)",
				  json_array_size(stats->failed_apps), n,
				  json_string_value(json_object_get(first, "appId")),
				  json_string_value(json_object_get(first, "message")));
		goto out;
	}
	task_ctx_progress(ctx, to, "Removing old backups (keeping the last %d full backups)", ctx->config->backups_keep);
	r = apply_retention(ctx, &stats->deleted);
	if (r < 0) {
		/* The backup itself is complete; old ones stay until next time. */
		printf("retention failed: %s\n", store_errmsg(ctx->store));
		fflush(stdout);
		r = 0;
	}
	if (ret_id)
		*ret_id = full_id;
out:
	if (full_id > 0 && !recorded)
		backup_finish_full(ctx->store, full_id, "failed", NULL, NULL, stats->bytes);
	json_decref(manifest);
	app_list_free(apps, n_apps);
	store_close(ls);
	if (r == -ECANCELED && !ctx->error_code[0])
		task_ctx_fail(ctx, r, "stopped", "the full backup was stopped");
	return r;
}

int backups_run_full(struct task_ctx *ctx, int percent_from, int percent_to, int64_t *ret_backup_id)
{
	struct full_stats stats;
	int r = run_full(ctx, percent_from, percent_to, ret_backup_id, &stats);
	json_decref(stats.failed_apps);
	return r;
}

static int run_fullbackup(struct task_ctx *ctx)
{
	struct full_stats stats;
	int64_t id = 0, t0 = now_mono_ms();
	int r = run_full(ctx, 0, 100, &id, &stats);
	if (r == 0) {
		ctx->result = json_pack("{s:I, s:i, s:I, s:I, s:I, s:I, s:i}", "backupId", (json_int_t)id, "apps",
					stats.apps_ok, "size", (json_int_t)stats.bytes, "appDataBytes",
					(json_int_t)stats.app_data_bytes, "appMs", (json_int_t)stats.app_ms, "totalMs",
					(json_int_t)(now_mono_ms() - t0), "deleted", stats.deleted);
	}
	json_decref(stats.failed_apps);
	return r;
}

/* ---- app backup and restore ------------------------------------------------------------------ */

static int load_app(struct task_ctx *ctx, struct app *a)
{
	int r = app_get(ctx->store, ctx->task->app_id, a);
	if (r == -ENOENT)
		return task_ctx_fail(ctx, r, "not_found", "no app %s", ctx->task->app_id);
	if (r < 0)
		return task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", ctx->task->app_id,
				     store_errmsg(ctx->store));
	return 0;
}

static int run_backup(struct task_ctx *ctx)
{
	struct app a;
	int r = load_app(ctx, &a);
	if (r < 0)
		return r;
	char *dir = NULL;
	if (strcmp(a.install_state, "installed") != 0) {
		r = task_ctx_fail(ctx, -EBUSY, "bad_state", "app %s is %s; cannot back it up", a.id, a.install_state);
		goto out;
	}
	if ((r = ensure_backups_dir(ctx)) < 0)
		goto out;
	char err[512];
	if ((r = app_data_dir_checked(ctx->config, &a, &dir, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_path", "%s", err);
		goto out;
	}
	task_ctx_progress(ctx, 10, "Backing up %s", dir);
	struct archived ar;
	int64_t t0 = now_mono_ms();
	r = make_archive(ctx, "app", a.id, dir, 0, &ar);
	if (r < 0)
		goto out;
	ctx->result = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "backupId", (json_int_t)ar.id, "appId", a.id,
				"path", ar.path, "sha256", ar.sha256, "size", (json_int_t)ar.size, "dataBytes",
				(json_int_t)ar.data_bytes, "ms", (json_int_t)(now_mono_ms() - t0));
out:
	free(dir);
	app_release(&a);
	return r;
}

/* A private (0700) temp dir ".<name>.restore-XXXXXX" in `pfd`, beside the
 * data dir (same filesystem, for the renames), or in it. */
static int make_restore_dir(int pfd, const char *name, char *ret_tmp, size_t len, int *ret_fd)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	for (int tries = 0; tries < 100; tries++) {
		unsigned char rnd[6];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		char suffix[7];
		for (int i = 0; i < 6; i++)
			suffix[i] = chars[rnd[i] % (sizeof(chars) - 1)];
		suffix[6] = '\0';
		if (snprintf(ret_tmp, len, ".%.200s.restore-%s", name, suffix) >= (int)len)
			return -ENAMETOOLONG;
		if (mkdirat(pfd, ret_tmp, 0700) < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		int fd = openat(pfd, ret_tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		*ret_fd = fd;
		return 0;
	}
	return -EEXIST;
}

static int run_restore(struct task_ctx *ctx)
{
	int64_t backup_id = json_integer_value(json_object_get(ctx->args, "backupId"));
	const struct boxd_config *cfg = ctx->config;
	struct app a = { 0 };
	struct backup b = { 0 };
	struct engine *eng = NULL;
	char *dir = NULL, *parent = NULL;
	char tmp[NAME_MAX + 1] = "", old[NAME_MAX + 1] = "", err[1024], container[APP_ID_MAX + 8];
	const char *roots[PATHS_TRUSTED_MAX + 1], *name = NULL;
	int pfd = -1, tfd = -1, afd = -1, dfd = -1, base = -1;
	int at = -1; /* where tmp and old are: pfd (beside the data dir) or dfd (inside it) */
	paths_trusted_roots(cfg, roots);
	bool stopped = false;
	int r = load_app(ctx, &a);
	if (r < 0)
		return r;
	if (strcmp(a.install_state, "installed") != 0 && strcmp(a.install_state, "error") != 0) {
		r = task_ctx_fail(ctx, -EBUSY, "bad_state", "app %s is %s; cannot restore it", a.id, a.install_state);
		goto out;
	}
	r = backup_get(ctx->store, backup_id, &b);
	if (r == -ENOENT) {
		r = task_ctx_fail(ctx, r, "not_found", "no backup %lld", (long long)backup_id);
		goto out;
	}
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "store_error", "cannot load backup %lld: %s", (long long)backup_id,
				  store_errmsg(ctx->store));
		goto out;
	}
	if (strcmp(b.kind, "app") != 0 || !b.app_id || strcmp(b.app_id, a.id) != 0 || strcmp(b.state, "ok") != 0 ||
	    !b.path || !b.sha256) {
		r = task_ctx_fail(ctx, -EINVAL, "bad_backup", "backup %lld is not a good backup of app %s",
				  (long long)backup_id, a.id);
		goto out;
	}
	/* Both paths come from the store: checked again before use. */
	if ((r = path_check_backup_file(cfg, b.path, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_backup", "backup %lld: %s; nothing was changed", (long long)b.id, err);
		goto out;
	}
	if ((r = app_data_dir_checked(cfg, &a, &dir, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_path", "%s; nothing was changed", err);
		goto out;
	}

	/* 1. Open the archive once and verify it before anything changes:
	 * boxd's own file, its size and SHA-256. Everything after reads this
	 * descriptor, never the name again. */
	bool authentic = backup_mac_ok(cfg, b.kind, b.app_id, b.sha256, b.size, b.mac);
	struct tarball_extract_opts xo = {
		.sha256 = b.sha256, .size = b.size, .require_own = true, .max_size = cfg->backups_max_archive_size,
		.owners = authentic || cfg->backups_restore_foreign_owners, .special = cfg->backups_restore_special,
	};
	task_ctx_progress(ctx, 5, "Verifying backup %lld (%s)", (long long)b.id, b.path);
	r = tarball_open_verified(b.path, &xo, &afd, err, sizeof(err));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "backup_corrupt", "backup %lld %s: %s; nothing was changed", (long long)b.id,
				  r == -EBADMSG ? "is damaged" : "cannot be used", err);
		goto out;
	}
	if (cancelled(ctx)) {
		r = -ECANCELED;
		goto out;
	}

	/* 2. Extract beside the data dir (same filesystem, for the renames),
	 * or inside it when it is a filesystem of its own, into a private dir
	 * reached without following any symlink. */
	const char *slash = strrchr(dir, '/');
	if (!slash || slash == dir || !slash[1]) {
		r = task_ctx_fail(ctx, -EINVAL, "bad_path", "unusable data dir %s", dir);
		goto out;
	}
	parent = strndup(dir, (size_t)(slash - dir));
	if (!parent || (r = fs_mkdir_nofollow(roots, parent, 0755, NULL, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, parent ? r : -ENOMEM, "fs_error", "%s", parent ? err : "out of memory");
		goto out;
	}
	if ((r = fs_open_parent(roots, dir, &pfd, &name)) < 0) {
		r = task_ctx_fail(ctx, r, "fs_error", "cannot open the parent of %s: %s", dir,
				  r == -ELOOP ? "a component is a symbolic link" : strerror(-r));
		goto out;
	}
	/* The data dir stays (restore_swap.h): an app in error may have lost
	 * it, then it is made. A filesystem mounted below it would move aside
	 * with the old entries: refused. */
	char below[PATH_MAX];
	if ((r = fs_mkdir_nofollow(roots, dir, 0755, NULL, err, sizeof(err))) < 0 ||
	    (dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = task_ctx_fail(ctx, r < 0 ? r : -errno, "fs_error", "%s", r < 0 ? err : strerror(errno));
		goto out;
	}
	if ((r = mount_find_below(dir, below, err, sizeof(err))) != 0) {
		r = r < 0 ? task_ctx_fail(ctx, r, "fs_error", "%s", err)
			  : task_ctx_fail(ctx, -EBUSY, "restore_failed",
					  "a filesystem is mounted at %s, below the data dir; unmount it first (nothing was "
					  "changed)", below);
		goto out;
	}
	struct stat sd, sp;
	bool inside = fstat(dfd, &sd) == 0 && fstat(pfd, &sp) == 0 && sd.st_dev != sp.st_dev;
	at = inside ? dfd : pfd;
	if ((r = make_restore_dir(at, inside ? "boxd" : name, tmp, sizeof(tmp), &tfd)) < 0) {
		r = task_ctx_fail(ctx, r, "fs_error", "cannot create a temp dir in %s: %s", inside ? dir : parent,
				  strerror(-r));
		tmp[0] = '\0';
		goto out;
	}
	/* The renames happen in a clone of the mount that shows `at`, where
	 * the data dir (a mount point of its own) is a plain directory; with
	 * no clone (no CAP_SYS_ADMIN), in `at` itself. */
	if ((r = mount_clone_fd(at, &base, err, sizeof(err))) < 0 && (base = dup(at)) < 0) {
		r = task_ctx_fail(ctx, -errno, "fs_error", "%s", strerror(errno));
		goto out;
	}
	task_ctx_progress(ctx, 15, "Extracting backup %lld", (long long)b.id);
	struct tarball_extract_info xi;
	r = tarball_extract_fd(afd, b.path, tfd, &xo, ctx->cancel, &xi, err, sizeof(err));
	if (r == -ECANCELED)
		goto out;
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "restore_failed", "cannot extract backup %lld: %s", (long long)b.id, err);
		goto out;
	}
	if (xi.skipped || xi.stripped || !xo.owners) {
		printf("restore of backup %lld: %lld device nodes/fifos skipped, %lld setuid/setgid bits cleared, owners %s\n",
		       (long long)b.id, (long long)xi.skipped, (long long)xi.stripped,
		       xo.owners ? "restored" : "not restored (the archive is not authenticated as this box's backup)");
		fflush(stdout);
	}

	/* 3. Stop the app, swap the data dir's entries (the dir stays: every
	 * bind of it shows the restored data), start it. The container is
	 * down only for the renames. From here on nothing is undone: only
	 * while the task's locks are still its own (the fencing token). */
	snprintf(container, sizeof(container), "app-%s", a.id);
	if ((r = task_ctx_fence_check(ctx, "stopping the app to swap its data directory")) < 0)
		goto out;
	struct engine_options eo = { .socket_path = cfg->engine_socket };
	r = engine_open_opts(&eo, &eng, err, sizeof(err));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "engine_unavailable", "%s", err);
		goto out;
	}
	task_ctx_progress(ctx, 70, "Stopping container %s", container);
	r = engine_container_stop(eng, container, CONTAINER_STOP_TIMEOUT_S);
	bool have_container = r != -ENOENT;
	if (r < 0 && r != -ENOENT) {
		r = task_ctx_fail(ctx, r, "engine_error", "cannot stop container %s: %s", container, engine_errmsg(eng));
		goto out;
	}
	stopped = have_container;
	task_ctx_progress(ctx, 80, "Replacing the contents of %s", dir);
	if ((r = task_ctx_fence_check(ctx, "swapping the data directory's contents")) < 0)
		goto out;
	snprintf(old, sizeof(old), ".%.180s.replaced-%d", inside ? "boxd" : name, (int)getpid());
	struct restore_swap sw = { .base_fd = base, .dir = inside ? "." : name, .fresh = tmp, .aside = old,
				   .skip = { inside ? tmp : NULL, inside ? old : NULL } };
	r = restore_swap_children(&sw, err, sizeof(err));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "fs_error", "%s", err);
		goto out; /* the aside dir, empty, goes below */
	}
	fsync(at);
	/* The data dir is the same directory as before (its binds stay
	 * valid); only one the restore had to make anew is recorded now, as
	 * what its binds are checked against (app_bind.h). */
	struct stat dst;
	if (fstat(dfd, &dst) == 0 &&
	    (!a.has_data_id || a.data_id.dev != (uint64_t)dst.st_dev || a.data_id.ino != (uint64_t)dst.st_ino)) {
		struct fs_id now_id = { .dev = dst.st_dev, .ino = dst.st_ino };
		if ((r = app_set_data_id(ctx->store, a.id, &now_id)) < 0) {
			r = task_ctx_fail(ctx, r, "store_error", "cannot record the data dir: %s", store_errmsg(ctx->store));
			goto out;
		}
		a.has_data_id = true;
		a.data_id = now_id;
	}
	task_ctx_progress(ctx, 85, "Removing the replaced data");
	if (fs_remove_tree_at(at, old, err, sizeof(err)) < 0)
		printf("warning: %s\n", err);
	old[0] = '\0';
	if (inside) {
		/* The temp dirs were in the data dir: its times are the
		 * archive's again once they are gone. */
		fs_remove_tree_at(at, tmp, err, sizeof(err));
		tmp[0] = '\0';
		futimens(dfd, sw.times);
	}
	if (have_container) {
		task_ctx_progress(ctx, 90, "Starting container %s", container);
		stopped = false;
		r = app_container_start_checked(ctx, eng, &a, dir, container, false, 0);
		if (r < 0) {
			app_set(ctx->store, a.id, "install_state", "error");
			char code[sizeof(ctx->error_code)], inner[sizeof(ctx->error_message)];
			snprintf(code, sizeof(code), "%s", ctx->error_code);
			snprintf(inner, sizeof(inner), "%s", ctx->error_message);
			task_ctx_fail(ctx, r, code, "restored the data, but: %s", inner);
			goto out;
		}
		app_set(ctx->store, a.id, "run_state", "running");
	} else {
		app_set(ctx->store, a.id, "run_state", "stopped");
	}
	stopped = false;
	if (strcmp(a.install_state, "error") == 0 && have_container)
		app_set(ctx->store, a.id, "install_state", "installed");
	ctx->result = json_pack("{s:s, s:I, s:s, s:b, s:b, s:I, s:I}", "appId", a.id, "backupId", (json_int_t)b.id,
				"dataDir", dir, "containerStarted", have_container, "ownersRestored", xo.owners,
				"skippedSpecial", (json_int_t)xi.skipped, "clearedSetid", (json_int_t)xi.stripped);
out:
	if (stopped && eng) {
		/* The data is as it was: bring the app back, on the same checks
		 * (keeping the task's own error). */
		char code[sizeof(ctx->error_code)], msg[sizeof(ctx->error_message)];
		memcpy(code, ctx->error_code, sizeof(code));
		memcpy(msg, ctx->error_message, sizeof(msg));
		if (app_container_start_checked(ctx, eng, &a, dir, container, false, 0) < 0)
			printf("warning: container %s not started again: %s\n", container, ctx->error_message);
		memcpy(ctx->error_code, code, sizeof(code));
		memcpy(ctx->error_message, msg, sizeof(msg));
	}
	if (tfd >= 0)
		close(tfd);
	if (tmp[0] && at >= 0)
		fs_remove_tree_at(at, tmp, err, sizeof(err)); /* empty after a swap */
	if (old[0] && at >= 0)
		fs_remove_tree_at(at, old, err, sizeof(err));
	if (base >= 0)
		close(base);
	if (dfd >= 0)
		close(dfd);
	if (pfd >= 0)
		close(pfd);
	if (afd >= 0)
		close(afd);
	engine_close(eng);
	free(parent);
	free(dir);
	backup_release(&b);
	app_release(&a);
	return r;
}

/* ---- types ------------------------------------------------------------------------------------ */

static int restore_validate(json_t *args, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v) {
		if (strcmp(key, "backupId") != 0) {
			snprintf(err, errlen, "restore: unknown argument \"%s\" (expected \"backupId\")", key);
			return -EINVAL;
		}
	}
	json_t *id = json_object_get(args, "backupId");
	if (!json_is_integer(id) || json_integer_value(id) <= 0) {
		snprintf(err, errlen, "restore: \"backupId\" must be a positive integer");
		return -EINVAL;
	}
	return 0;
}

static int locks_of(const struct task *t, const char *const *names, const enum lock_mode *modes, size_t n,
		    struct lock_req **ret, size_t *ret_n)
{
	struct lock_req *reqs = calloc(n, sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], "app:") == 0)
			snprintf(reqs[i].name, sizeof(reqs[i].name), "app:%s", t->app_id);
		else
			snprintf(reqs[i].name, sizeof(reqs[i].name), "%s", names[i]);
		reqs[i].mode = modes[i];
	}
	*ret = reqs;
	*ret_n = n;
	return 0;
}

static int fullbackup_locks(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)args;
	static const char *const names[] = { "type:fullbackup", "platform" };
	static const enum lock_mode modes[] = { LOCK_EXCLUSIVE, LOCK_SHARED };
	return locks_of(t, names, modes, 2, ret, ret_n);
}

static int backup_locks(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)args;
	if (!t->app_id)
		return -EINVAL;
	static const char *const names[] = { "app:", "platform" };
	static const enum lock_mode modes[] = { LOCK_EXCLUSIVE, LOCK_SHARED };
	return locks_of(t, names, modes, 2, ret, ret_n);
}

/* A restore replaces a data dir: service:sftp shared, like the app tasks
 * that create, move or delete one (app_tasks.h). */
static int restore_locks(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)args;
	if (!t->app_id)
		return -EINVAL;
	static const char *const names[] = { "app:", "platform", "service:sftp" };
	static const enum lock_mode modes[] = { LOCK_EXCLUSIVE, LOCK_SHARED, LOCK_SHARED };
	return locks_of(t, names, modes, 3, ret, ret_n);
}

static const struct task_type backup_types[] = {
	{ .name = "fullbackup", .locks = fullbackup_locks, .run = run_fullbackup },
	{ .name = "backup", .app_task = true, .locks = backup_locks, .run = run_backup },
	{ .name = "restore", .app_task = true, .validate = restore_validate, .locks = restore_locks, .run = run_restore },
};

void backups_register_task_types(void)
{
	for (size_t i = 0; i < sizeof(backup_types) / sizeof(backup_types[0]); i++)
		task_type_register(&backup_types[i]);
}
