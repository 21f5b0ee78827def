/* backup_upload.c — see backup_upload.h. */
#include "backup_upload.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "sftp_target.h"
#include "tarball.h"
#include "tasks/task_type.h"

struct upload_file {
	char name[NAME_MAX + 1];
	char sha256[TARBALL_SHA256_HEX];
	int64_t size;
};

struct upload_run {
	struct task_ctx *ctx;
	struct sftp_target *t;
	int from, to;
	int64_t total, done_before; /* bytes of all files; of the files already done */
	int64_t t0, last_report;
	const char *file;
};

static void on_progress(void *userdata, int64_t done, int64_t total)
{
	struct upload_run *u = userdata;
	(void)total;
	int64_t now = now_mono_ms();
	if (now - u->last_report < 500)
		return;
	u->last_report = now;
	int64_t all = u->done_before + done;
	double secs = (double)(now - u->t0) / 1000.0;
	int pct = u->from + (int)((int64_t)(u->to - u->from) * all / (u->total > 0 ? u->total : 1));
	task_ctx_progress(u->ctx, pct, "Uploading to %s: %.1f of %.1f MB, %.0f MB/s (%s)", sftp_target_name(u->t),
			  (double)all / 1e6, (double)u->total / 1e6, secs > 0 ? (double)all / 1e6 / secs : 0.0, u->file);
}

static const char *code_of(int r)
{
	switch (r) {
	case -ENOSPC: return "target_full";
	case -EPERM:
	case -EACCES: return "target_refused";
	case -EBADMSG: return "target_verify_failed";
	case -ECONNRESET:
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ETIMEDOUT: return "target_unreachable";
	default: return "target_failed";
	}
}

static bool transient(int r) { return r == -ECONNRESET || r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT; }

/* Wait `ms`, or less when the task is stopped. */
static void backoff(struct task_ctx *ctx, int64_t ms)
{
	for (int64_t waited = 0; waited < ms && !(ctx->cancel && *ctx->cancel); waited += 100) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* The files to send, in order, from the manifest; the metadata files'
 * hashes are taken now (they are not in the manifest). */
static int collect(struct task_ctx *ctx, const char *dir, const char *manifest_path, struct upload_file **ret,
		   size_t *ret_n)
{
	json_error_t je;
	json_t *m = json_load_file(manifest_path, 0, &je);
	if (!m)
		return task_ctx_fail(ctx, -EINVAL, "backup_failed", "cannot read the manifest %s: %s", manifest_path,
				     je.text);
	json_t *apps = json_object_get(m, "apps");
	size_t n_apps = json_array_size(apps), cap = 2 * (n_apps + 1) + 1, n = 0;
	struct upload_file *files = calloc(cap, sizeof(*files));
	int r = files ? 0 : -ENOMEM;
	char err[512];
	for (size_t i = 0; r == 0 && i <= n_apps; i++) {
		json_t *a = i == 0 ? json_object_get(m, "boxState") : json_array_get(apps, i - 1);
		const char *file = json_string_value(json_object_get(a, "file"));
		const char *sha = json_string_value(json_object_get(a, "sha256"));
		if (!file || !sha || strchr(file, '/') || strlen(file) + 6 > NAME_MAX) {
			r = task_ctx_fail(ctx, -EINVAL, "backup_failed", "the manifest %s lists a bad archive", manifest_path);
			break;
		}
		snprintf(files[n].name, sizeof(files[n].name), "%s", file);
		snprintf(files[n].sha256, sizeof(files[n].sha256), "%s", sha);
		files[n].size = json_integer_value(json_object_get(a, "size"));
		n++;
		char meta[PATH_MAX];
		snprintf(meta, sizeof(meta), "%s/%s.json", dir, file);
		snprintf(files[n].name, sizeof(files[n].name), "%s.json", file);
		if ((r = tarball_sha256_file(meta, files[n].sha256, &files[n].size, err, sizeof(err))) < 0) {
			r = task_ctx_fail(ctx, r, "backup_failed", "%s", err);
			break;
		}
		n++;
	}
	if (r == 0) {
		const char *slash = strrchr(manifest_path, '/');
		snprintf(files[n].name, sizeof(files[n].name), "%s", slash ? slash + 1 : manifest_path);
		if ((r = tarball_sha256_file(manifest_path, files[n].sha256, &files[n].size, err, sizeof(err))) < 0)
			r = task_ctx_fail(ctx, r, "backup_failed", "%s", err);
		n++;
	}
	json_decref(m);
	if (r == -ENOMEM)
		r = task_ctx_fail(ctx, r, "internal", "out of memory");
	if (r < 0) {
		free(files);
		return r;
	}
	*ret = files;
	*ret_n = n;
	return 0;
}

int backup_upload_full(struct task_ctx *ctx, const char *manifest_path, int pct_from, int pct_to,
		       json_t **ret_result)
{
	const struct boxd_config *cfg = ctx->config;
	*ret_result = NULL;
	if (!cfg->backups_target)
		return 0;
	struct upload_file *files = NULL;
	size_t n = 0;
	int r = collect(ctx, cfg->backups_dir, manifest_path, &files, &n);
	if (r < 0)
		return r;
	struct upload_run u = { .ctx = ctx, .from = pct_from, .to = pct_to, .t0 = now_mono_ms() };
	for (size_t i = 0; i < n; i++)
		u.total += files[i].size;
	char err[1024];
	struct sftp_target_opts o = { .url = cfg->backups_target, .key_file = cfg->backups_ssh_key_file,
				      .known_hosts = cfg->backups_known_hosts, .cancel = ctx->cancel };
	task_ctx_progress(ctx, pct_from, "Connecting to the backup target %s", cfg->backups_target);
	int reconnects = 0, resumed = 0;
	r = sftp_target_open(&o, &u.t, err, sizeof(err));
	for (int tries = 0; r < 0 && transient(r) && tries < UPLOAD_RECONNECTS && !(ctx->cancel && *ctx->cancel); tries++) {
		printf("backup target: %s; trying again\n", err);
		fflush(stdout);
		backoff(ctx, 1000LL << tries);
		r = sftp_target_open(&o, &u.t, err, sizeof(err));
	}
	if (r < 0)
		goto fail;
	int64_t sent = 0;
	for (size_t i = 0; i < n; i++) {
		char local[PATH_MAX];
		snprintf(local, sizeof(local), "%s/%s", cfg->backups_dir, files[i].name);
		u.file = files[i].name;
		struct sftp_transfer_info info;
		r = sftp_target_put(u.t, local, files[i].name, files[i].sha256, files[i].size, on_progress, &u, &info, err,
				    sizeof(err));
		int tries = 0;
		/* A cut connection: open it again and go on where the target's
		 * copy ends. A copy that read back wrong was removed: once more
		 * from zero. */
		while (r < 0 && (transient(r) || (r == -EBADMSG && tries == 0)) && tries < UPLOAD_RECONNECTS &&
		       !(ctx->cancel && *ctx->cancel)) {
			printf("backup target: %s; %s\n", err, r == -EBADMSG ? "sending it again" : "reconnecting to resume");
			fflush(stdout);
			if (transient(r)) {
				backoff(ctx, 1000LL << tries);
				reconnects++;
				int rr = sftp_target_reopen(u.t, err, sizeof(err));
				if (rr < 0) {
					r = rr;
					tries++;
					continue;
				}
			}
			tries++;
			r = sftp_target_put(u.t, local, files[i].name, files[i].sha256, files[i].size, on_progress, &u, &info,
					    err, sizeof(err));
		}
		if (r < 0)
			goto fail;
		if (info.resumed_from > 0 && !info.already_there) {
			resumed++;
			printf("backup target: %s resumed at byte %lld of %lld\n", files[i].name, (long long)info.resumed_from,
			       (long long)files[i].size);
			fflush(stdout);
		}
		sent += info.sent;
		u.done_before += files[i].size;
	}
	int64_t ms = now_mono_ms() - u.t0;
	*ret_result = json_pack("{s:s, s:I, s:I, s:I, s:i, s:i, s:I, s:f}", "target", sftp_target_name(u.t), "files",
				(json_int_t)n, "bytes", (json_int_t)u.total, "sent", (json_int_t)sent, "resumedFiles",
				resumed, "reconnects", reconnects, "ms", (json_int_t)ms, "mbPerS",
				ms > 0 ? (double)u.total / 1e6 / ((double)ms / 1000.0) : 0.0);
	sftp_target_close(u.t);
	free(files);
	return 0;
fail:
	sftp_target_close(u.t);
	free(files);
	if (r == -ECANCELED)
		return r;
	return task_ctx_fail(ctx, r, code_of(r),
			     "the upload to the backup target failed: %s; the backup stays in %s, and the backups already "
			     "on the target are untouched",
			     err, cfg->backups_dir);
}
