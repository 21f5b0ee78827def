/* app_image.c — see app_image.h. */
#include "app_image.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "tasks/task_type.h"

struct pull_report {
	struct task_ctx *ctx;
	const char *app_id;
	int pct_from, pct_to;
	char last[128];           /* the last message sent: only changes go out */
	int64_t bytes;            /* downloaded so far */
};

static void on_progress(const struct engine_pull_progress *p, void *userdata)
{
	struct pull_report *rep = userdata;
	char msg[128];
	int pct = rep->pct_from;
	if (p->total_bytes > 0) {
		/* Whole MB (10^6, as registries and engines count them),
		 * rounded up so that a small image is not "0 of 0 MB". */
		long long cur = (p->current_bytes + 999999) / 1000000, tot = (p->total_bytes + 999999) / 1000000;
		snprintf(msg, sizeof(msg), "Pulling %s: %lld of %lld MB", rep->app_id, cur, tot);
		pct += (int)((rep->pct_to - rep->pct_from) * p->current_bytes / p->total_bytes);
	} else {
		snprintf(msg, sizeof(msg), "Pulling %s: %zu of %zu layers", rep->app_id, p->layers_done, p->layers);
	}
	if (strcmp(msg, rep->last) == 0)
		return;
	snprintf(rep->last, sizeof(rep->last), "%s", msg);
	task_ctx_progress(rep->ctx, pct, "%s", msg);
	/* Also in the task log (at most a few lines a second): the message
	 * alone is overwritten by the next one. */
	log_info("task %lld: %s", (long long)rep->ctx->task->id, msg);
	rep->bytes = p->current_bytes;
}

int app_image_ensure(struct task_ctx *ctx, struct engine *engine, const char *app_id, const char *image,
		     int pct_from, int pct_to)
{
	int r = engine_image_exists(engine, image);
	if (r > 0)
		return 0;
	if (r < 0)
		return task_ctx_fail(ctx, r, "engine_error", "cannot check image %s: %s", image, engine_errmsg(engine));

	char host[256];
	r = engine_image_registry(image, host, sizeof(host));
	if (r < 0)
		return task_ctx_fail(ctx, r, "bad_image", "bad image name %s", image);
	/* "localhost/..." names what was built or imported on this host
	 * (Podman's convention): there is no registry to pull it from. */
	if (strcmp(host, "localhost") == 0)
		return task_ctx_fail(ctx, -ENOENT, "image_not_found",
				     "image %s is not available: no such image (localhost/ images are built on this "
				     "host, never pulled)", image);
	const struct config_registry *reg = config_registry_for(ctx->config, host);
	char *password = NULL;
	if (reg && (r = config_registry_password(reg, &password)) < 0)
		return task_ctx_fail(ctx, r, "registry_unauthorized", "cannot read the password for registry %s: %s",
				     host, strerror(-r));
	/* Docker Hub's credentials are keyed by its old index address. */
	struct engine_registry_auth auth = {
		.username = reg ? reg->username : NULL,
		.password = password,
		.server = strcmp(host, "docker.io") == 0 ? "https://index.docker.io/v1/" : host,
	};
	struct pull_report rep = { .ctx = ctx, .app_id = app_id, .pct_from = pct_from, .pct_to = pct_to };
	task_ctx_progress(ctx, pct_from, "Pulling %s: image %s%s", app_id, image,
			  reg ? " (with the configured credentials)" : "");
	int64_t t0 = now_mono_ms();
	log_info("task %lld: pulling %s from %s%s", (long long)ctx->task->id, image, host,
		 reg ? " with the configured credentials" : "");
	r = engine_image_pull(engine, image, reg ? &auth : NULL, on_progress, &rep);
	int64_t ms = now_mono_ms() - t0;
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (r >= 0) {
		/* The stream's byte count is what the engine chose to report
		 * (Podman sends a layer's size only when its download lasts
		 * past its 1 s progress tick); the image's own size says how
		 * much arrived (uncompressed). */
		struct engine_image img = { 0 };
		int64_t size = rep.bytes;
		if (engine_image_inspect(engine, image, &img) == 0) {
			if (img.size > size)
				size = img.size;
			engine_image_release(&img);
		}
		log_info("task %lld: pulled %s: %.1f MB in %.2f s (%.1f MB/s; the image is %.1f MB, %.1f MB reported "
			 "while downloading)", (long long)ctx->task->id, image, size / 1e6, ms / 1e3,
			 ms > 0 ? size / 1e3 / ms : 0.0, size / 1e6, rep.bytes / 1e6);
	}
	if (r < 0) {
		const char *code = r == -ENOENT ? "image_not_found" : r == -EACCES ? "registry_unauthorized"
										 : "image_pull_failed";
		return task_ctx_fail(ctx, r, code, "pulling %s failed: %s", image, engine_errmsg(engine));
	}
	return 0;
}
