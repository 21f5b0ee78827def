/* app_admit.h — may an app task be queued now? The admission of app tasks
 * (install, uninstall, restart, configure, update, start, stop, backup,
 * restore) for
 * task_enqueue() (tasks/task_enqueue.h), run inside its write transaction.
 *
 *	struct apps_admission adm = { .cfg = cfg, .data_dir = dir };
 *	struct task_enqueue e;
 *	apps_enqueue_init(&e, "configure", "wiki", args_json, &adm);
 *	r = task_enqueue(store, cfg, &e, &out);
 *
 * The worker checks again against the app's real state when it starts,
 * since the tasks queued before it may have failed.
 */
#pragma once

#include <stddef.h>

#include "common/config.h"
#include "store/store.h"
#include "tasks/task_enqueue.h"

/* What an app task brings along (e->userdata; may be NULL). */
struct apps_admission {
	const struct boxd_config *cfg;  /* needed with data_dir */
	const char *image;              /* install: the new app's row */
	const char *env_json;
	/* install, configure: the custom data dir the task gives the app. It
	 * must not be, contain or lie inside another app's data dir or a
	 * volume's host path (uninstalling one would delete the other's
	 * data): -EEXIST otherwise. */
	const char *data_dir;
	/* install: the host the app lives on (apps.host; NULL: not placed). */
	const char *host;
};

/* Judged against the state the app will be in once the tasks already
 * queued for it have run: -ENOENT (no such app), -EEXIST (install of an
 * existing app, or a data dir that overlaps) or -EBUSY (wrong state; a
 * restart of an app that is or will be stopped by the operator), with
 * a message for the operator. An install inserts the app's row. With
 * adm->cfg, the ports and domains of e->args_json are reserved
 * (app_publish_reserve(): -EEXIST naming the holder, -EINVAL, -EPERM with
 * code proxy_disabled). */
int apps_admit(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret);

/* The `created` hook of app tasks: the task becomes the app's current one. */
int apps_task_created(struct store *s, const struct task_enqueue *e, int64_t id);

/* A task_enqueue of an app task with the two hooks above. */
void apps_enqueue_init(struct task_enqueue *e, const char *type, const char *app_id, const char *args_json,
		       struct apps_admission *adm);
