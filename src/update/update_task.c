/* update_task.c — the `update` task type (see update.h). */
#include "update.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backups/backups.h"
#include "common/log.h"
#include "platformstart.h"
#include "reexec.h"
#include "release.h"
#include "tasks/task.h"
#include "tasks/task_ctx_lock.h"
#include "tasks/task_enqueue.h"
#include "tasks/task_type.h"

/* How long the worker waits for the re-executed daemon to answer. */
#define REEXEC_TIMEOUT_MS 60000

/* ---- args ------------------------------------------------------------------- */

static bool hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
			return false;
	return true;
}

int update_args_validate(json_t *args, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v) {
		if (strcmp(key, "package") != 0 && strcmp(key, "sha256") != 0 && strcmp(key, "skipBackup") != 0) {
			snprintf(err, errlen, "unknown field \"%s\" (expected \"package\", \"sha256\", \"skipBackup\")", key);
			return -EINVAL;
		}
	}
	const char *pkg = json_string_value(json_object_get(args, "package"));
	if (!pkg || pkg[0] != '/' || strlen(pkg) >= 4096) {
		snprintf(err, errlen, "\"package\" must be the absolute path of the update package on the server");
		return -EINVAL;
	}
	if (!hex64(json_string_value(json_object_get(args, "sha256")))) {
		snprintf(err, errlen, "\"sha256\" must be the package's SHA-256 as 64 hex digits");
		return -EINVAL;
	}
	json_t *skip = json_object_get(args, "skipBackup");
	if (skip && !json_is_boolean(skip)) {
		snprintf(err, errlen, "\"skipBackup\" must be true or false");
		return -EINVAL;
	}
	return 0;
}

int update_admit(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	(void)e;
	struct task t;
	int r = task_find_active(s, &(struct task_match){ .type = "platformupdate" }, &t);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	ret->id = t.id;
	snprintf(ret->message, sizeof(ret->message), "an update is already %s: task %lld", task_state_name(t.state),
		 (long long)t.id);
	task_release(&t);
	return -EEXIST;
}

/* ---- the backup before ------------------------------------------------------------ */

/* A full backup inside this task (backups.h): it takes app:<id> for one app
 * at a time and never `platform` exclusively, so app tasks go on. */
static int backup_first(struct task_ctx *ctx, int64_t *ret_id)
{
	task_ctx_progress(ctx, 5, "Backing up before the update");
	int r = backups_run_full(ctx, 5, 60, ret_id);
	if (r < 0 && !ctx->error_code[0])
		task_ctx_fail(ctx, r, "backup_failed", "the backup before the update failed: %s", strerror(-r));
	return r;
}

/* ---- the handler ------------------------------------------------------------------ */

/* Does <root>/current resolve to <root>/releases/<version> (however the
 * symlink spells it)? */
static bool points_to_release(const char *root, const char *version)
{
	char cur[4200], rel[4200], a[PATH_MAX], b[PATH_MAX];
	snprintf(cur, sizeof(cur), "%s/current", root);
	snprintf(rel, sizeof(rel), "%s/releases/%s", root, version);
	return realpath(cur, a) && realpath(rel, b) && strcmp(a, b) == 0;
}

struct apply {
	struct task_ctx *ctx;
	const char *root;
	char version[UPDATE_VERSION_MAX];
	char old_target[4096];     /* `current` before, "" if none */
	bool unpacked, replaced_dir, switched;
};

/* Undo what the apply did so far; returns the task's error. */
static int apply_fail(struct apply *ap, int r, const char *fmt, const char *detail)
{
	char undo[600] = "";
	char err[512];
	if (ap->switched) {
		if (update_current_switch(ap->root, ap->old_target, err, sizeof(err)) < 0)
			snprintf(undo, sizeof(undo), "; restoring current failed too: %s", err);
		else
			snprintf(undo, sizeof(undo), "; current points at %.500s again",
				 ap->old_target[0] ? ap->old_target : "nothing (as before)");
	} else {
		snprintf(undo, sizeof(undo), "; current is unchanged (%.500s)", ap->old_target[0] ? ap->old_target : "none");
	}
	if (ap->unpacked && !ap->replaced_dir)
		update_release_remove(ap->root, ap->version, err, sizeof(err));
	char what[700];
	snprintf(what, sizeof(what), fmt, detail);
	return task_ctx_fail(ap->ctx, r, "apply_failed", "%s%s; boxd keeps running release %s", what, undo,
			     update_running_version(ap->ctx->config));
}

static int run_update(struct task_ctx *ctx)
{
	const struct boxd_config *cfg = ctx->config;
	const char *package = json_string_value(json_object_get(ctx->args, "package"));
	const char *want = json_string_value(json_object_get(ctx->args, "sha256"));
	bool skip_backup = json_is_true(json_object_get(ctx->args, "skipBackup"));
	struct apply ap = { .ctx = ctx, .root = cfg->install_root };
	int64_t backup_id = 0;
	char err[1024], got[UPDATE_SHA256_HEX];
	int r;

	/* 1. The checksum, before anything else. */
	task_ctx_progress(ctx, 1, "Verifying the SHA-256 of %s", package);
	int fd = open(package, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		return task_ctx_fail(ctx, r, r == -ENOENT ? "package_missing" : "package_unreadable",
				     "cannot open the package %s: %s", package, strerror(-r));
	}
	r = sha256_fd(fd, got, err, sizeof(err));
	if (r < 0) {
		task_ctx_fail(ctx, r, "package_unreadable", "%s", err);
		goto out;
	}
	if (!sha256_hex_equal(got, want)) {
		r = task_ctx_fail(ctx, -EBADMSG, "bad_checksum",
				  "the package's SHA-256 is %s, not %s: refused, nothing was changed", got, want);
		goto out;
	}

	/* 2. Is it a release at all, and a new one? */
	task_ctx_progress(ctx, 3, "Checking the package");
	struct update_manifest m;
	r = update_package_check(fd, &m, err, sizeof(err));
	if (r < 0) {
		task_ctx_fail(ctx, r, "bad_package", "%s: %s", package, err);
		goto out;
	}
	snprintf(ap.version, sizeof(ap.version), "%s", m.version);
	r = update_current_read(ap.root, ap.old_target, sizeof(ap.old_target), err, sizeof(err));
	if (r < 0) {
		task_ctx_fail(ctx, r, "install_root_error", "%s", err);
		goto out;
	}
	char new_target[UPDATE_VERSION_MAX + 16];
	snprintf(new_target, sizeof(new_target), "releases/%s", m.version);
	if (strcmp(ap.old_target, new_target) == 0 || points_to_release(ap.root, m.version)) {
		r = task_ctx_fail(ctx, -EEXIST, "same_version", "release %s is already installed (%s/current -> %s)",
				  m.version, ap.root, ap.old_target);
		goto out;
	}
	log_info("task %lld: package %s holds release %s (%zu entries, %lld bytes)", (long long)ctx->task->id,
		 package, m.version, m.entries, m.bytes);

	/* 3. Back up first: per-app locks only, so the box keeps working. */
	if (!skip_backup && (r = backup_first(ctx, &backup_id)) < 0)
		goto out;
	if (*ctx->cancel) {
		r = -ECANCELED;
		goto out;
	}

	/* 4. The apply, under `platform` exclusive: no app task or backup runs
	 * while the code changes under them. While a full backup runs, the
	 * request waits for it outside the lock queue: app tasks (platform
	 * shared) go on meanwhile instead of queueing behind it for the rest
	 * of the backup (task_ctx_lock.h). The worker releases `platform`
	 * with the task's other locks. */
	task_ctx_progress(ctx, 60, "Waiting for the running app tasks to finish (platform)");
	r = task_ctx_lock_here(ctx, "platform", LOCK_EXCLUSIVE);
	if (r < 0)
		goto out;
	task_ctx_progress(ctx, 65, "Unpacking release %s into %s/releases/%s", m.version, ap.root, m.version);
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/releases/%s", ap.root, m.version);
	struct stat st;
	ap.replaced_dir = lstat(dir, &st) == 0;
	r = update_release_unpack(fd, want, ap.root, m.version, ctx->cancel, err, sizeof(err));
	if (r == -ECANCELED)
		goto out;
	if (r < 0) {
		r = apply_fail(&ap, r, "cannot unpack the release: %s", err);
		goto out;
	}
	ap.unpacked = true;
	task_ctx_progress(ctx, 75, "Checking that the new boxd runs here");
	r = update_release_preflight(dir, err, sizeof(err));
	if (r < 0) {
		r = apply_fail(&ap, r, "the new release does not run: %s", err);
		goto out;
	}
	if (*ctx->cancel) {
		apply_fail(&ap, -ECANCELED, "%s", "cancelled");
		r = -ECANCELED;
		goto out;
	}
	/* The release switch is the step that cannot be taken back once the
	 * daemon re-executes: only while this task's locks (and with them
	 * `platform`, taken as the same owner under the same lease) are still
	 * its own. */
	if ((r = task_ctx_fence_check(ctx, "switching the current release")) < 0) {
		char why[sizeof(ctx->error_message)], code[sizeof(ctx->error_code)];
		snprintf(why, sizeof(why), "%s", ctx->error_message);
		snprintf(code, sizeof(code), "%s", ctx->error_code);
		apply_fail(&ap, r, "%s", why);
		snprintf(ctx->error_code, sizeof(ctx->error_code), "%s", code);
		goto out;
	}
	task_ctx_progress(ctx, 80, "Switching %s/current to %s", ap.root, new_target);
	r = update_current_switch(ap.root, new_target, err, sizeof(err));
	if (r < 0) {
		r = apply_fail(&ap, r, "cannot switch current: %s", err);
		goto out;
	}
	ap.switched = true;
	log_info("task %lld: %s/current -> %s (was %s); asking boxd to re-execute", (long long)ctx->task->id, ap.root,
		 new_target, ap.old_target[0] ? ap.old_target : "none");

	/* From here on a stop request is not honoured: the daemon may be in
	 * the middle of its exec, and only its answer tells whether to keep
	 * the new `current` or to restore the old one. */
	task_ctx_progress(ctx, 85, "Restarting boxd into release %s", m.version);
	r = update_reexec_request(cfg, ctx->task->id, m.version, err, sizeof(err));
	if (r < 0) {
		r = apply_fail(&ap, r, "cannot ask boxd to re-execute: %s", err);
		goto out;
	}
	char running[UPDATE_VERSION_MAX];
	int daemon_pid = 0;
	r = update_reexec_wait(cfg, ctx->task->id, REEXEC_TIMEOUT_MS, running, &daemon_pid, err, sizeof(err));
	if (r < 0) {
		update_reexec_cancel(cfg, ctx->task->id);
		r = apply_fail(&ap, r, "%s", err);
		goto out;
	}
	if (strcmp(running, m.version) != 0) {
		char detail[200];
		snprintf(detail, sizeof(detail), "boxd came back running release %s, not %s", running, m.version);
		r = apply_fail(&ap, -EIO, "%s", detail);
		goto out;
	}
	log_info("task %lld: boxd (pid %d) serves release %s", (long long)ctx->task->id, daemon_pid, running);
	/* Keep the new release and the one it replaced (and the one this
	 * worker was started from, should that be a third): older ones go. */
	const char *old_name = strrchr(ap.old_target, '/');
	old_name = old_name ? old_name + 1 : ap.old_target;
	const char *keep[] = { m.version, old_name, update_running_version(cfg) };
	int pruned = update_releases_prune(ap.root, keep, sizeof(keep) / sizeof(keep[0]), err, sizeof(err));
	if (pruned < 0)
		log_warn("task %lld: cannot remove old releases: %s", (long long)ctx->task->id, err);
	else if (pruned > 0)
		log_info("task %lld: removed %d old release(s) from %s/releases", (long long)ctx->task->id, pruned,
			 ap.root);
	task_ctx_progress(ctx, 100, "boxd runs release %s", m.version);
	ctx->result = json_pack("{s:s, s:s, s:s, s:s?, s:o, s:i, s:i}", "version", m.version, "previousVersion",
				update_running_version(cfg), "release", new_target, "previousRelease",
				ap.old_target[0] ? ap.old_target : NULL, "backupId",
				backup_id > 0 ? json_integer(backup_id) : json_null(), "daemonPid", daemon_pid,
				"releasesRemoved", pruned > 0 ? pruned : 0);
	r = 0;
out:
	close(fd);
	return r;
}

static int update_validate(json_t *args, char *err, size_t errlen) { return update_args_validate(args, err, errlen); }

static const struct task_type update_type = {
	.name = "platformupdate",
	.generic = false,
	.validate = update_validate,
	/* One update at a time; the backup before it takes each app's lock in
	 * turn (backups_run_full()), the apply `platform` exclusive. */
	.locks = { { "type:update", LOCK_EXCLUSIVE }, { "app:%s", LOCK_EXCLUSIVE, .later = true },
		   { "platform:%h", LOCK_EXCLUSIVE, .later = true } },
	.run = run_update,
};

void update_register_task_types(void)
{
	task_type_register(&update_type);
	platformstart_register();
}
