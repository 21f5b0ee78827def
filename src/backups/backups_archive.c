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

#include "app_record.h"
#include "apps/app.h"
#include "apps/app_tasks.h"
#include "backup_crypt.h"
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

/* ---- progress -------------------------------------------------------------------- */

void backups_format_bytes(int64_t bytes, char *buf, size_t len)
{
	if (bytes >= 1000LL * 1000 * 1000)
		snprintf(buf, len, "%.1f GB", (double)bytes / 1e9);
	else
		snprintf(buf, len, "%.1f MB", (double)bytes / 1e6);
}

double backups_mb_per_s(int64_t bytes, int64_t ms) { return ms > 0 ? (double)bytes / 1e6 / ((double)ms / 1000) : 0; }

/* "1.2 of 4.0 GB" with one unit, the total's. */
static void format_of(int64_t done, int64_t total, char *buf, size_t len)
{
	bool gb = total >= 1000LL * 1000 * 1000;
	double d = gb ? 1e9 : 1e6;
	snprintf(buf, len, "%.1f of %.1f %s", (double)done / d, (double)total / d, gb ? "GB" : "MB");
}

void backups_progress_bytes(void *userdata, int64_t bytes)
{
	struct backups_progress *p = userdata;
	int64_t now = now_mono_ms();
	bool end = bytes >= p->archive_total;
	if (!end && now - p->last_ms < 500)
		return;
	p->last_ms = now;
	if (bytes > p->archive_total)
		bytes = p->archive_total; /* a file that grew while archived */
	double rate = backups_mb_per_s(bytes, now - p->t0_ms);
	char of[64], all[96] = "";
	format_of(bytes, p->archive_total, of, sizeof(of));
	if (p->total > p->archive_total) {
		char sum[64];
		format_of(p->done_before + bytes, p->total, sum, sizeof(sum));
		snprintf(all, sizeof(all), " (all apps %s)", sum);
	}
	int64_t done = p->done_before + bytes;
	int pct = p->from + (int)((double)(p->to - p->from) * (p->total > 0 ? (double)done / (double)p->total : 1));
	task_ctx_progress(p->ctx, pct, "Backing up %s%s %s%s, %.0f MB/s", p->label,
			  strchr(p->label, ':') ? "," : ":", of, all, rate);
	if (end || now - p->last_log_ms >= 10000) {
		p->last_log_ms = now;
		printf("%s %s: %s%s, %.1f MB/s\n", end ? "backed up" : "backing up", p->label, of, all, rate);
		fflush(stdout);
	}
}

/* ---- the secret ---------------------------------------------------------------------- */

int backups_secret(struct task_ctx *ctx, struct backup_secret **ret)
{
	static struct backup_secret secret;
	static bool loaded;
	if (!loaded) {
		char err[512];
		int r = backup_secret_load(ctx->config, &secret, err, sizeof(err));
		if (r < 0)
			return task_ctx_fail(ctx, r, "bad_config", "backup encryption: %s", err);
		loaded = true;
	}
	*ret = &secret;
	return 0;
}

/* ---- one archive ---------------------------------------------------------------------- */

int backups_make_archive(struct task_ctx *ctx, const char *kind, const struct app *a, const char *src_dir,
			 int64_t full_id, struct backups_progress *progress, struct archived *ret)
{
	enum tarball_format fmt;
	struct backup_secret *secret;
	int r = backups_config_format(ctx, &fmt);
	if (r < 0 || (r = backups_secret(ctx, &secret)) < 0)
		return r;
	bool encrypted = secret->kind != BACKUP_KEY_NONE;
	const char *app_id = a ? a->id : NULL;
	char prefix[APP_ID_MAX + 8], err[1024], ext[32], name_id[BACKUP_CRYPT_NAME_HEX] = "";
	/* Encrypted: the app's id stays out of the file's name (backup_crypt.h). */
	if (app_id && encrypted && (r = backup_crypt_name(secret, app_id, name_id, err, sizeof(err))) < 0)
		return task_ctx_fail(ctx, r, "backup_failed", "%s", err);
	if (app_id)
		snprintf(prefix, sizeof(prefix), "app-%s", encrypted ? name_id : app_id);
	else
		snprintf(prefix, sizeof(prefix), "%s", kind);
	snprintf(ext, sizeof(ext), "%s%s", tarball_format_ext(fmt), encrypted ? BACKUP_CRYPT_EXT : "");
	backups_make_path(ctx, prefix, ext, ret->path, sizeof(ret->path));
	char *record = a ? app_record_make(ctx->config, a) : NULL;
	if (a && !record)
		return task_ctx_fail(ctx, -ENOMEM, "internal", "out of memory");
	struct tarball_create_opts o = {
		.fmt = fmt, .max_size = ctx->config->backups_max_archive_size, .record = record, .secret = secret,
		.progress = progress ? backups_progress_bytes : NULL, .userdata = progress,
	};
	if (progress)
		progress->t0_ms = progress->last_log_ms = now_mono_ms();
	struct tarball_info info;
	r = tarball_create_ex(src_dir, ret->path, &o, ctx->cancel, &info, err, sizeof(err));
	free(record);
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
	if (encrypted) {
		/* Beside an encrypted archive nothing names the app: the row
		 * (in the store, and in the encrypted box state) does. */
		static const char *const leaks[] = { "appId", "source", "path", NULL };
		for (const char *const *k = leaks; *k; k++)
			json_object_del(meta, *k);
		json_object_set_new(meta, "encrypted", json_true());
		if (app_id)
			json_object_set_new(meta, "nameId", json_string(name_id));
	}
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
	ret->encrypted = encrypted;
	snprintf(ret->name_id, sizeof(ret->name_id), "%s", name_id);
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
		r = backups_make_archive(ctx, "box", NULL, tmp, full_id, NULL, ret);
	const char *roots[] = { ctx->config->backups_dir, NULL };
	fs_remove_tree(roots, tmp, err, sizeof(err));
	return r;
}


/* ---- the app backup task ------------------------------------------------------------------ */

int backups_archive_app(struct task_ctx *ctx, const struct app *a, const char *dir, int from, int to,
			struct archived *ret, int64_t *ret_ms)
{
	char err[512];
	struct backups_progress p = { .ctx = ctx, .from = from, .to = to };
	snprintf(p.label, sizeof(p.label), "%s", a->id);
	int r = tarball_tree_size(dir, &p.archive_total, NULL, err, sizeof(err));
	if (r < 0)
		return task_ctx_fail(ctx, r, "backup_failed", "%s", err);
	p.total = p.archive_total;
	char total[32];
	backups_format_bytes(p.total, total, sizeof(total));
	task_ctx_progress(ctx, from, "Backing up %s: %s of data in %s", a->id, total, dir);
	int64_t t0 = now_mono_ms();
	r = backups_make_archive(ctx, "app", a, dir, 0, &p, ret);
	if (r == 0 && ret_ms)
		*ret_ms = now_mono_ms() - t0;
	return r;
}

/* The final backup of an uninstall (app_tasks.h): an app backup inside
 * the uninstall task, which holds app:<id>. */
static int final_backup(struct task_ctx *ctx, const struct app *a, const char *data_dir, int64_t *ret_id)
{
	int r = backups_ensure_dir(ctx);
	if (r < 0)
		return r;
	struct archived ar;
	int64_t ms = 0;
	if ((r = backups_archive_app(ctx, a, data_dir, 0, 20, &ar, &ms)) < 0)
		return r;
	printf("final backup %lld of app %s: %s (%lld bytes of data in %lld ms, %.1f MB/s)\n", (long long)ar.id, a->id,
	       ar.path, (long long)ar.data_bytes, (long long)ms, backups_mb_per_s(ar.data_bytes, ms));
	fflush(stdout);
	*ret_id = ar.id;
	return 0;
}

void backups_set_final_backup(void) { app_set_final_backup(final_backup); }

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
	struct archived ar;
	int64_t ms = 0;
	if ((r = backups_archive_app(ctx, &a, dir, 5, 100, &ar, &ms)) < 0)
		goto out;
	ctx->result = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:b}", "backupId", (json_int_t)ar.id, "appId",
				a.id, "path", ar.path, "sha256", ar.sha256, "size", (json_int_t)ar.size, "dataBytes",
				(json_int_t)ar.data_bytes, "ms", (json_int_t)ms, "throughputMBps",
				backups_mb_per_s(ar.data_bytes, ms), "encrypted", ar.encrypted);
out:
	free(dir);
	app_release(&a);
	return r;
}
