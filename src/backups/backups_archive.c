/* backups_archive.c — one archive: the pieces every backup uses (where its
 * file goes, the archive with its row and metadata file, the box state),
 * and the app backup task (see backups.h, backups-internal.h). */
#include "backups-internal.h"

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
#include "backup_key.h"
#include "backup_store.h"
#include "box_state.h"
#include "common/fs.h"
#include "common/timeutil.h"
#include "tasks/task.h"

int backups_config_format(struct task_ctx *ctx, enum tarball_format *ret)
{
	const char *f = ctx->config->backups_format ? ctx->config->backups_format : "zstd";
	if (tarball_format_from_string(f, ret) < 0)
		return task_ctx_fail(ctx, -EINVAL, "bad_config", "[backups] format \"%s\" is not zstd or gzip", f);
	return 0;
}

int backups_ensure_dir(struct task_ctx *ctx)
{
	char err[512];
	int r = fs_mkdir_p(ctx->config->backups_dir, 0700, err, sizeof(err));
	return r < 0 ? task_ctx_fail(ctx, r, "fs_error", "cannot create the backup dir: %s", err) : 0;
}

/* "<dir>/<prefix>-<stamp>-t<task><ext>", not yet taken. */
void backups_make_path(struct task_ctx *ctx, const char *prefix, const char *ext, char *buf, size_t len)
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

int backups_write_metadata(const char *path, json_t *meta, char *err, size_t errlen)
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
int backups_make_archive(struct task_ctx *ctx, const char *kind, const char *app_id, const char *src_dir,
			 int64_t full_id, struct archived *ret)
{
	enum tarball_format fmt;
	int r = backups_config_format(ctx, &fmt);
	if (r < 0)
		return r;
	char prefix[APP_ID_MAX + 8], err[1024];
	if (app_id)
		snprintf(prefix, sizeof(prefix), "app-%s", app_id);
	else
		snprintf(prefix, sizeof(prefix), "%s", kind);
	backups_make_path(ctx, prefix, tarball_format_ext(fmt), ret->path, sizeof(ret->path));
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
	r = backups_write_metadata(meta_path, meta, err, sizeof(err));
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
int backups_archive_box_state(struct task_ctx *ctx, int64_t full_id, struct archived *ret)
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
		r = backups_make_archive(ctx, "box", NULL, tmp, full_id, ret);
	const char *roots[] = { ctx->config->backups_dir, NULL };
	fs_remove_tree(roots, tmp, err, sizeof(err));
	return r;
}


/* ---- the app backup task ------------------------------------------------------------------ */

int backups_load_app(struct task_ctx *ctx, struct app *a)
{
	int r = app_get(ctx->store, ctx->task->app_id, a);
	if (r == -ENOENT)
		return task_ctx_fail(ctx, r, "not_found", "no app %s", ctx->task->app_id);
	if (r < 0)
		return task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", ctx->task->app_id,
				     store_errmsg(ctx->store));
	return 0;
}

int backups_run_backup(struct task_ctx *ctx)
{
	struct app a;
	int r = backups_load_app(ctx, &a);
	if (r < 0)
		return r;
	char *dir = NULL;
	if (strcmp(a.install_state, "installed") != 0) {
		r = task_ctx_fail(ctx, -EBUSY, "bad_state", "app %s is %s; cannot back it up", a.id, a.install_state);
		goto out;
	}
	if ((r = backups_ensure_dir(ctx)) < 0)
		goto out;
	char err[512];
	if ((r = app_data_dir_checked(ctx->config, &a, &dir, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_path", "%s", err);
		goto out;
	}
	task_ctx_progress(ctx, 10, "Backing up %s", dir);
	struct archived ar;
	int64_t t0 = now_mono_ms();
	r = backups_make_archive(ctx, "app", a.id, dir, 0, &ar);
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
