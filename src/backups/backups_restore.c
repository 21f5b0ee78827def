/* backups_restore.c — the restore task: verify the archive from one
 * descriptor, extract beside the data dir, stop the container, swap, start
 * (see backups.h; restore_swap.h for the swap). */
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
#include <sys/random.h>

#include "apps/app.h"
#include "apps/app_bind.h"
#include "backup_crypt.h"
#include "backup_key.h"
#include "backup_store.h"
#include "common/fs.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "restore_swap.h"
#include "tarball.h"
#include "tasks/task.h"

#define CONTAINER_STOP_TIMEOUT_S 10

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

int backups_archive_fail(struct task_ctx *ctx, int r, int64_t backup_id, const char *err)
{
	if (r == -ENOKEY)
		return task_ctx_fail(ctx, r, "no_key", "backup %lld is encrypted: %s; nothing was changed",
				     (long long)backup_id, err);
	if (r == -EKEYREJECTED)
		return task_ctx_fail(ctx, r, "wrong_key", "backup %lld: %s; nothing was changed", (long long)backup_id, err);
	return task_ctx_fail(ctx, r, "backup_corrupt", "backup %lld %s: %s; nothing was changed", (long long)backup_id,
			     r == -EBADMSG ? "is damaged" : "cannot be used", err);
}

int backups_run_restore(struct task_ctx *ctx)
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
	bool stopped = false, reinstall = false, have_container = false;
	int64_t t0 = now_mono_ms();
	struct backup_secret *secret;
	int r = backups_secret(ctx, &secret);
	if (r < 0)
		return r;
	r = app_get(ctx->store, ctx->task->app_id, &a);
	if (r == -ENOENT) {
		/* Uninstalled since: installed again from the backup's record. */
		if ((r = backups_reinstall_prepare(ctx, backup_id, &a)) < 0)
			return r;
		reinstall = true;
	} else if (r < 0) {
		return task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", ctx->task->app_id,
				     store_errmsg(ctx->store));
	}
	/* A move's restore on its target (app_move.h): the app is
	 * pending_move, and none of this host's containers is its own. */
	bool move = strcmp(ctx->task->type, "move.restore") == 0;
	if (!reinstall && strcmp(a.install_state, "installed") != 0 && strcmp(a.install_state, "error") != 0 &&
	    !(move && strcmp(a.install_state, "pending_move") == 0)) {
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
		.secret = secret,
	};
	task_ctx_progress(ctx, 5, "Verifying backup %lld (%s)", (long long)b.id, b.path);
	r = tarball_open_verified(b.path, &xo, &afd, err, sizeof(err));
	if (r < 0) {
		r = backups_archive_fail(ctx, r, b.id, err);
		goto out;
	}
	char magic[8];
	bool afd_encrypted = pread(afd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
			     backup_crypt_is_encrypted(magic, sizeof(magic));
	if (backups_cancelled(ctx)) {
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
	r = move ? -ENOENT : engine_container_stop(eng, container, CONTAINER_STOP_TIMEOUT_S);
	have_container = r != -ENOENT;
	if (r < 0 && r != -ENOENT) {
		r = task_ctx_fail(ctx, r, "engine_error", "cannot stop container %s: %s", container, engine_errmsg(eng));
		goto out;
	}
	stopped = have_container && !a.stopped; /* the operator's stop stays (app.h) */
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
	if (reinstall) {
		if ((r = backups_reinstall_finish(ctx, eng, &a, dir)) < 0)
			goto out;
		have_container = true;
	} else if (have_container && !a.stopped) {
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
	int64_t ms = now_mono_ms() - t0;
	ctx->result = json_pack("{s:s, s:I, s:s, s:b, s:b, s:I, s:I, s:b, s:b, s:I, s:I, s:f}", "appId", a.id, "backupId",
				(json_int_t)b.id, "dataDir", dir, "containerStarted", have_container, "ownersRestored",
				xo.owners, "skippedSpecial", (json_int_t)xi.skipped, "clearedSetid",
				(json_int_t)xi.stripped, "reinstalled", reinstall, "encrypted", afd_encrypted, "dataBytes",
				(json_int_t)xi.data_bytes, "ms", (json_int_t)ms, "throughputMBps",
				backups_mb_per_s(xi.data_bytes, ms));
out:
	if (r < 0 && reinstall && !have_container)
		app_set(ctx->store, a.id, "install_state", "error"); /* as a failed install; uninstall clears it */
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
