/* backups_reinstall.c — a restore of an app that is not installed (it was
 * uninstalled since the backup): the app is installed again from the
 * record its archive carries (app_record.h), then the restore puts its
 * data back as for any app (backups_restore.c).
 *
 * Order, so that a refusal changes nothing: the backup row and the archive
 * are checked (and an encrypted one decrypted in full) and the record read
 * and checked; the image is pulled if the engine lacks it; only then is
 * the app's row inserted (pending_install). After the data is in place the
 * container is created and started like an install's; a failure there
 * leaves the app in error, as a failed install does (uninstall clears it,
 * a restore again repairs it). */
#include "backups-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_record.h"
#include "apps/app.h"
#include "apps/app_image.h"
#include "apps/app_publish.h"
#include "apps/app_tasks.h"
#include "backup_crypt.h"
#include "backup_store.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "common/proc.h"
#include "engine/engine.h"

int backups_reinstall_prepare(struct task_ctx *ctx, int64_t backup_id, struct app *ret)
{
	const char *id = ctx->task->app_id;
	struct backup b = { 0 };
	struct app_record rec = { 0 };
	struct engine *eng = NULL;
	struct backup_secret *secret;
	char err[1024], *text = NULL;
	int fd = -1;
	int r = backups_secret(ctx, &secret);
	if (r < 0)
		return r;
	r = backup_get(ctx->store, backup_id, &b);
	if (r < 0) {
		r = r == -ENOENT ? task_ctx_fail(ctx, r, "not_found", "no app %s, and no backup %lld to install it from", id,
						 (long long)backup_id)
				 : task_ctx_fail(ctx, r, "store_error", "cannot load backup %lld: %s", (long long)backup_id,
						 store_errmsg(ctx->store));
		goto out;
	}
	if (strcmp(b.kind, "app") != 0 || !b.app_id || strcmp(b.app_id, id) != 0 || strcmp(b.state, "ok") != 0 ||
	    !b.path || !b.sha256) {
		r = task_ctx_fail(ctx, -EINVAL, "bad_backup", "backup %lld is not a good backup of app %s",
				  (long long)backup_id, id);
		goto out;
	}
	if ((r = path_check_backup_file(ctx->config, b.path, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_backup", "backup %lld: %s; nothing was changed", (long long)b.id, err);
		goto out;
	}
	struct tarball_extract_opts xo = { .sha256 = b.sha256, .size = b.size, .require_own = true,
					   .max_size = ctx->config->backups_max_archive_size, .secret = secret };
	task_ctx_progress(ctx, 2, "App %s is not installed: reading its record in backup %lld", id, (long long)b.id);
	if ((r = tarball_open_verified(b.path, &xo, &fd, err, sizeof(err))) < 0 ||
	    (r = tarball_read_record(fd, b.path, &xo, &text, err, sizeof(err))) < 0) {
		r = backups_archive_fail(ctx, r, b.id, err);
		goto out;
	}
	if ((r = app_record_parse(text, id, &rec, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "bad_backup", "backup %lld: %s; nothing was changed", (long long)b.id, err);
		goto out;
	}
	struct engine_options eo = { .socket_path = ctx->config->engine_socket };
	if ((r = engine_open_opts(&eo, &eng, err, sizeof(err))) < 0) {
		r = task_ctx_fail(ctx, r, "engine_unavailable", "%s", err);
		goto out;
	}
	if ((r = app_image_ensure(ctx, eng, id, rec.image, 3, 10)) < 0)
		goto out;
	/* The row and what it publishes (ports, domains: checked against
	 * every other app as an install's are) in one transaction. */
	json_t *publish = json_object();
	if (json_array_size(rec.ports))
		json_object_set(publish, "ports", rec.ports);
	if (json_array_size(rec.domains))
		json_object_set(publish, "domains", rec.domains);
	if (rec.http_port > 0 && json_object_size(publish))
		json_object_set_new(publish, "httpPort", json_integer(rec.http_port));
	char perr[512] = "";
	/* The app lives where it is restored: this worker's host. */
	char host[HOST_ID_MAX + 1];
	bool placed = host_id_get(host, sizeof(host)) == 0;
	if ((r = store_begin(ctx->store, true)) >= 0) {
		r = app_insert(ctx->store, id, rec.image, rec.env_json, rec.data_dir, placed ? host : NULL);
		if (r >= 0 && json_object_size(publish))
			r = app_publish_reserve(ctx->config, ctx->store, id, publish, perr, sizeof(perr));
		if (r >= 0)
			r = store_commit(ctx->store);
		else
			store_rollback(ctx->store);
	}
	json_decref(publish);
	if (r < 0) {
		if (perr[0])
			r = task_ctx_fail(ctx, r, r == -EEXIST ? "conflict" : "bad_backup",
					  "cannot install app %s again with the ports and domains of its record: %s; "
					  "nothing was changed", id, perr);
		else
			r = task_ctx_fail(ctx, r, r == -EEXIST ? "conflict" : "store_error", "cannot install app %s again: %s",
					  id, r == -EEXIST ? "it was installed meanwhile" : store_errmsg(ctx->store));
		goto out;
	}
	app_set_task(ctx->store, id, ctx->task->id);
	if ((r = app_get(ctx->store, id, ret)) < 0)
		r = task_ctx_fail(ctx, r, "store_error", "cannot load app %s: %s", id, store_errmsg(ctx->store));
	else
		printf("app %s installed again from backup %lld: image %s, data dir %s\n", id, (long long)b.id, rec.image,
		       rec.data_dir ? rec.data_dir : "(default)");
	fflush(stdout);
out:
	if (fd >= 0)
		close(fd);
	engine_close(eng);
	free(text);
	app_record_release(&rec);
	backup_release(&b);
	return r;
}

int backups_reinstall_finish(struct task_ctx *ctx, struct engine *eng, struct app *a, const char *dir)
{
	char err[512];
	/* As an install: the data dir a shared mount point of its own, for sftp. */
	if (mount_make_shared(dir, MOUNT_NOFOLLOW, err, sizeof(err)) < 0)
		printf("warning: %s: sftp shows the data dir read-only\n", err);
	task_ctx_progress(ctx, 90, "Creating container app-%s from %s", a->id, a->image);
	int r = app_container_recreate(ctx, eng, a);
	if (r < 0) {
		app_set(ctx->store, a->id, "install_state", "error");
		return r;
	}
	app_set(ctx->store, a->id, "install_state", "installed");
	/* Its domains, if any, are routed again (as after an install). */
	return app_tasks_sync_routes(ctx);
}
