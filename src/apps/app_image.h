/* app_image.h — the image an app task needs, pulled when the engine does
 * not have it.
 *
 * Credentials come from the config's [registries] block for the image's
 * registry host (config.h); they go to the engine in the X-Registry-Auth
 * header only: never into task args, messages, logs or the API.
 */
#pragma once

struct engine;
struct task_ctx;

/* Make sure the engine has `image`: 0 at once when it does, else pull it
 * (except a localhost/ image: built on this host, there is no registry),
 * reporting "Pulling <app>: 34 of 120 MB" as task progress between
 * pct_from and pct_to. On failure the task's error is set to the
 * registry's reason (code image_not_found, registry_unauthorized or
 * image_pull_failed) and a negative errno returned; nothing else is
 * changed. */
int app_image_ensure(struct task_ctx *ctx, struct engine *engine, const char *app_id, const char *image,
		     int pct_from, int pct_to);
