/* backups_full.c — the full backup: the box state, then each installed
 * app under its own app:<id> lock taken inside the running task, the
 * manifest, and retention (see backups.h: backups_run_full()). */
#include "backups-internal.h"

#include "backup_crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apps/app.h"
#include "backup_store.h"
#include "backup_upload.h"
#include "target_prune.h"
#include "common/fs.h"
#include "common/paths.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "tarball.h"
#include "tasks/task.h"
#include "tasks/task_ctx_lock.h"

/* ---- one app's lock ----------------------------------------------------------------------- */

/* app:<id> exclusive for this task, waiting as long as it takes (or until
 * the task is stopped), visibly (task_ctx_lock.h). */
static int lock_app(struct task_ctx *ctx, const char *app_id)
{
	char name[LOCK_NAME_MAX];
	snprintf(name, sizeof(name), "app:%s", app_id);
	return task_ctx_lock(ctx, name, LOCK_EXCLUSIVE);
}

static void unlock_app(struct task_ctx *ctx, const char *app_id)
{
	char name[LOCK_NAME_MAX];
	snprintf(name, sizeof(name), "app:%s", app_id);
	task_ctx_unlock(ctx, name);
}

/* ---- retention ------------------------------------------------------------------------- */

/* The files of a deleted row, if the row names a file in the backup dir
 * (the store is not trusted for path safety: a row naming anything else
 * loses its row, never that file). Their names go to `target_names` too:
 * the same files are removed from the target (target_prune.h). */
static void remove_files_of(struct task_ctx *ctx, const struct backup *b, json_t *target_names)
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
	const char *slash = strrchr(b->path, '/');
	json_array_append_new(target_names, json_string(slash ? slash + 1 : b->path));
	if (strcmp(b->kind, "full") != 0) {
		char meta[PATH_MAX + 8];
		snprintf(meta, sizeof(meta), "%s.json", b->path);
		unlink(meta);
		snprintf(meta, sizeof(meta), "%s.json", slash ? slash + 1 : b->path);
		json_array_append_new(target_names, json_string(meta));
	}
}

/* Drop from `all` the full backups that another host made (their task ran
 * there: tasks.run_on), so that each host's retention keeps its own `keep`
 * newest and never deletes another host's. Full backups from before
 * per-host backups (run_on NULL) count as this host's. Their archives stay
 * in the list: they are deleted only with a full backup that is doomed. */
static int drop_other_hosts_fulls(struct task_ctx *ctx, struct backup *all, size_t *n)
{
	char self[HOST_ID_MAX + 1];
	int r = host_id_get(self, sizeof(self));
	if (r < 0)
		return r;
	struct store_stmt *st;
	r = store_query(ctx->store, &st,
			"SELECT backups.id FROM backups JOIN tasks ON tasks.id = backups.task_id "
			"WHERE backups.kind = 'full' AND tasks.run_on IS NOT NULL AND tasks.run_on <> ?",
			"s", self);
	if (r < 0)
		return r;
	while ((r = store_step(st)) == 1) {
		int64_t id = store_col_int64(st, 0);
		for (size_t i = 0; i < *n; i++) {
			if (all[i].id != id)
				continue;
			backup_release(&all[i]);
			all[i] = all[--*n];
			break;
		}
	}
	store_finalize(st);
	return r < 0 ? r : 0;
}

/* Apply the retention rule (backup_store.h) to this host's full backups.
 * The row goes first: the store is the truth, and a file whose row is gone
 * is only litter. */
static int apply_retention(struct task_ctx *ctx, int *ret_deleted, json_t *target_names)
{
	struct backup *all;
	size_t n;
	int r = backup_list(ctx->store, NULL, &all, &n);
	if (r < 0)
		return r;
	size_t listed = n;
	r = drop_other_hosts_fulls(ctx, all, &n);
	if (r < 0) {
		backup_list_free(all, listed);
		return r;
	}
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
				remove_files_of(ctx, &all[j], target_names);
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
	json_t *target;         /* the upload's result (backup_upload.h); NULL: no target */
};

static int scale(int from, int to, int step, int steps) { return from + (to - from) * step / (steps > 0 ? steps : 1); }

/* Does this host's full backup take app a? Installed, and placed here or
 * on no host (a box from before placement): each host backs up the apps it
 * runs, whose data dirs it has (issue 16). */
static bool backed_up_here(const struct app *a)
{
	char self[HOST_ID_MAX + 1];
	if (strcmp(a->install_state, "installed") != 0)
		return false;
	return !a->host || (host_id_get(self, sizeof(self)) == 0 && strcmp(a->host, self) == 0);
}

/* Archive one app while holding its lock. Returns 0, -ECANCELED, or
 * another negative errno with ctx's error set (the caller goes on with the
 * next app). *ret_skipped: the app went away meanwhile. */
static int full_one_app(struct task_ctx *ctx, const char *app_id, int64_t full_id,
			json_t *manifest_apps, struct full_stats *stats, struct backups_progress *progress,
			bool *ret_skipped)
{
	*ret_skipped = false;
	int r = lock_app(ctx, app_id);
	if (r < 0)
		return r;
	/* Re-read under the lock: it may have been uninstalled or moved
	 * (to another host, too) while we waited. */
	struct app a;
	r = app_get(ctx->store, app_id, &a);
	if (r == -ENOENT || (r == 0 && !backed_up_here(&a))) {
		if (r == 0)
			app_release(&a);
		unlock_app(ctx, app_id);
		*ret_skipped = true;
		return 0;
	}
	if (r < 0) {
		unlock_app(ctx, app_id);
		return task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", app_id, store_errmsg(ctx->store));
	}
	char *dir = NULL, err[512];
	r = app_data_dir_checked(ctx->config, &a, &dir, err, sizeof(err));
	if (r < 0) {
		app_release(&a);
		unlock_app(ctx, app_id);
		return task_ctx_fail(ctx, r, "bad_path", "%s", err);
	}
	struct archived ar;
	int64_t t0 = now_mono_ms();
	r = backups_make_archive(ctx, "app", &a, dir, full_id, progress, &ar);
	/* Released at once: only this app waited for us, and only this long. */
	unlock_app(ctx, app_id);
	app_release(&a);
	free(dir);
	if (r < 0)
		return r;
	stats->app_ms += now_mono_ms() - t0;
	stats->apps_ok++;
	stats->bytes += ar.size;
	stats->app_data_bytes += ar.data_bytes;
	const char *slash = strrchr(ar.path, '/');
	/* Encrypted: the manifest names the app by its name id only
	 * (backup_crypt.h); the record inside the archive says which app. */
	json_array_append_new(manifest_apps, json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "id", (json_int_t)ar.id,
						       ar.encrypted ? "nameId" : "appId", ar.encrypted ? ar.name_id : app_id,
						       "file", slash ? slash + 1 : ar.path, "sha256", ar.sha256, "size",
						       (json_int_t)ar.size, "dataBytes", (json_int_t)ar.data_bytes));
	return 0;
}

/* *stats is always initialized; the caller releases stats->failed_apps. */
static int run_full(struct task_ctx *ctx, int from, int to, int64_t *ret_id, struct full_stats *stats)
{
	*stats = (struct full_stats){ .failed_apps = json_array() };
	enum tarball_format fmt;
	int r = backups_config_format(ctx, &fmt);
	if (r < 0)
		return r;
	if ((r = backups_ensure_dir(ctx)) < 0)
		return r;
	(void)backup_mark_stale_failed(ctx->store, NULL);

	struct app *apps = NULL;
	size_t n_apps = 0;
	int64_t full_id = 0, *sizes = NULL;
	bool recorded = false; /* the full backup's row has its final state */
	json_t *manifest = NULL;
	char err[512];

	struct backup row = { .kind = "full", .task_id = ctx->task->id, .format = (char *)tarball_format_name(fmt),
			      .state = "creating" };
	r = backup_insert(ctx->store, &row, &full_id);
	if (r < 0)
		return task_ctx_fail(ctx, r, "store_error", "cannot record the full backup: %s", store_errmsg(ctx->store));
	r = app_list(ctx->store, &apps, &n_apps);
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "store_error", "cannot list apps: %s", store_errmsg(ctx->store));
		goto out;
	}
	/* Only installed apps of this host; the list is taken now, and each
	 * app is looked at again once its lock is held. */
	size_t n = 0;
	for (size_t i = 0; i < n_apps; i++)
		if (backed_up_here(&apps[i]))
			n++;
	int steps = (int)n + 1, step = 0;
	/* The data of every app first (metadata only): progress by bytes over
	 * all of it. */
	sizes = calloc(n_apps ? n_apps : 1, sizeof(*sizes));
	if (!sizes) {
		r = task_ctx_fail(ctx, -ENOMEM, "internal", "out of memory");
		goto out;
	}
	struct backups_progress progress = { .ctx = ctx, .from = scale(from, to, 1, 50), .to = to };
	for (size_t i = 0; i < n_apps; i++) {
		char *dir = NULL;
		if (!backed_up_here(&apps[i]) ||
		    app_data_dir_checked(ctx->config, &apps[i], &dir, err, sizeof(err)) < 0 ||
		    tarball_tree_size(dir, &sizes[i], NULL, err, sizeof(err)) < 0)
			sizes[i] = 0;
		free(dir);
		progress.total += sizes[i];
	}
	char total_text[32];
	backups_format_bytes(progress.total, total_text, sizeof(total_text));

	task_ctx_progress(ctx, scale(from, to, step, steps), "Backing up the box state (then %zu apps, %s of data)", n,
			  total_text);
	struct archived box;
	r = backups_archive_box_state(ctx, full_id, &box);
	if (r < 0)
		goto out;
	stats->bytes += box.size;
	const char *slash = strrchr(box.path, '/');
	manifest = json_pack("{s:s, s:I, s:I, s:s, s:s, s:{s:I, s:s, s:s, s:I}, s:[]}", "kind", "full", "id",
			     (json_int_t)full_id, "taskId", (json_int_t)ctx->task->id, "format", tarball_format_name(fmt),
			     "boxdVersion", BOXD_VERSION, "boxState", "id", (json_int_t)box.id, "file",
			     slash ? slash + 1 : box.path, "sha256", box.sha256, "size", (json_int_t)box.size, "apps");
	/* Where this box keeps its data: a restore elsewhere (box_restore.h)
	 * moves what lay below these roots below its own. */
	json_object_set_new(manifest, "roots", json_pack("{s:s, s:s}", "appsdata", ctx->config->appsdata_root,
							 "volumes", ctx->config->volumes_root));

	int done = 0;
	for (size_t i = 0; i < n_apps; i++) {
		if (!backed_up_here(&apps[i]))
			continue;
		step++;
		done++;
		if (backups_cancelled(ctx)) {
			r = -ECANCELED;
			goto out;
		}
		int pct = progress.from + (int)((double)(progress.to - progress.from) *
						(progress.total > 0 ? (double)progress.done_before / (double)progress.total : 0));
		task_ctx_progress(ctx, pct, "Backing up app %d of %zu: %s", done, n, apps[i].id);
		snprintf(progress.label, sizeof(progress.label), "app %d of %zu: %s", done, n, apps[i].id);
		progress.archive_total = sizes[i];
		bool skipped;
		r = full_one_app(ctx, apps[i].id, full_id, json_object_get(manifest, "apps"), stats, &progress,
				 &skipped);
		progress.done_before += sizes[i];
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
	backups_make_path(ctx, "full", ".json", mpath, sizeof(mpath));
	r = backups_write_metadata(mpath, manifest, err, sizeof(err));
	if (r < 0) {
		r = task_ctx_fail(ctx, r, "backup_failed", "cannot write the manifest: %s", err);
		goto out;
	}
	/* Off the box before it counts as done: a full backup is ok only
	 * once the target has every file, verified (backup_upload.h). */
	if (complete && (r = backup_upload_full(ctx, mpath, to - 1, to, &stats->target)) < 0)
		goto out;
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
	json_t *target_names = json_array();
	r = apply_retention(ctx, &stats->deleted, target_names);
	if (r < 0) {
		/* The backup itself is complete; old ones stay until next time. */
		printf("retention failed: %s\n", store_errmsg(ctx->store));
		fflush(stdout);
		r = 0;
	}
	/* The same backups off the target, now that the new one is there
	 * and verified; failures are reported, never fatal (target_prune.h). */
	backup_target_prune(ctx, target_names, stats->target);
	json_decref(target_names);
	if (ret_id)
		*ret_id = full_id;
out:
	if (full_id > 0 && !recorded)
		backup_finish_full(ctx->store, full_id, "failed", NULL, NULL, stats->bytes);
	json_decref(manifest);
	free(sizes);
	app_list_free(apps, n_apps);
	if (r == -ECANCELED && !ctx->error_code[0])
		task_ctx_fail(ctx, r, "stopped", "the full backup was stopped");
	return r;
}

int backups_run_full(struct task_ctx *ctx, int percent_from, int percent_to, int64_t *ret_backup_id)
{
	struct full_stats stats;
	int r = run_full(ctx, percent_from, percent_to, ret_backup_id, &stats);
	json_decref(stats.failed_apps);
	json_decref(stats.target);
	return r;
}

int backups_run_fullbackup(struct task_ctx *ctx)
{
	struct full_stats stats;
	int64_t id = 0, t0 = now_mono_ms();
	int r = run_full(ctx, 0, 100, &id, &stats);
	if (r == 0) {
		struct backup_secret *secret = NULL;
		backups_secret(ctx, &secret);
		ctx->result = json_pack("{s:I, s:i, s:I, s:I, s:I, s:I, s:i, s:f, s:b}", "backupId", (json_int_t)id, "apps",
					stats.apps_ok, "size", (json_int_t)stats.bytes, "appDataBytes",
					(json_int_t)stats.app_data_bytes, "appMs", (json_int_t)stats.app_ms, "totalMs",
					(json_int_t)(now_mono_ms() - t0), "deleted", stats.deleted, "throughputMBps",
					backups_mb_per_s(stats.app_data_bytes, stats.app_ms), "encrypted",
					secret && secret->kind != BACKUP_KEY_NONE);
		if (ctx->result && stats.target)
			json_object_set(ctx->result, "target", stats.target);
	}
	json_decref(stats.failed_apps);
	json_decref(stats.target);
	return r;
}
