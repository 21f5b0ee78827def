/* app_admit.c — see app_admit.h. */
#include "app_admit.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "app_publish.h"
#include "common/paths.h"
#include "tasks/task.h"

static bool is_start_or_stop(const struct task *t, void *userdata)
{
	(void)userdata;
	return strcmp(t->type, "start") == 0 || strcmp(t->type, "stop") == 0;
}

/* Will the app be stopped by the operator once its queued and running
 * tasks have run? The newest active start or stop says; without one, the
 * row. 0/1 or a store error. */
static int projected_stopped(struct store *s, const char *id, bool row_stopped)
{
	struct task t;
	int r = task_find_active(s, &(struct task_match){ .app_id = id, .newest_first = true, .accept = is_start_or_stop },
				 &t);
	if (r == -ENOENT)
		return row_stopped;
	if (r < 0)
		return r;
	bool stopped = strcmp(t.type, "stop") == 0;
	task_release(&t);
	return stopped;
}

/* May a task of `type` for app `id` be queued now? */
static int check_state(struct store *s, const char *type, const char *id, char *err, size_t errlen)
{
	struct app a;
	int r = app_get(s, id, &a);
	if (r < 0 && r != -ENOENT)
		return r;
	bool exists = r == 0, row_stopped = false;
	/* The state the app will be in after its queued and running tasks. */
	char projected[40] = "absent";
	if (exists) {
		snprintf(projected, sizeof(projected), "%s", a.install_state);
		row_stopped = a.stopped;
		app_release(&a);
	}
	struct task last;
	r = task_find_active(s, &(struct task_match){ .app_id = id, .newest_first = true }, &last);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0) {
		snprintf(projected, sizeof(projected), "%s",
			 strcmp(last.type, "uninstall") == 0 ? "pending_uninstall" : "installed");
		task_release(&last);
	}

	/* A move (backups/app_move.h) hands the app to another host: nothing
	 * queues behind it, which might run on the host it leaves. */
	struct task mv;
	r = task_find_active(s, &(struct task_match){ .app_id = id, .type = "move" }, &mv);
	if (r == 0) {
		snprintf(err, errlen, "app %s is being moved to another host by task %lld; try again once it ends", id,
			 (long long)mv.id);
		task_release(&mv);
		return -EBUSY;
	}
	if (r != -ENOENT)
		return r;

	if (strcmp(type, "install") == 0) {
		if (!exists)
			return 0;
		snprintf(err, errlen, "app %s already exists (state %s)", id, projected);
		return -EEXIST;
	}
	if (!exists) {
		snprintf(err, errlen, "no app %s", id);
		return -ENOENT;
	}
	if (strcmp(type, "uninstall") == 0)
		return 0;
	/* configure and restore are also how an app in error is repaired;
	 * backup (like restart, update, start and stop) needs it installed. */
	bool repairs = strcmp(type, "configure") == 0 || strcmp(type, "restore") == 0;
	bool ok = strcmp(projected, "installed") == 0 || (repairs && strcmp(projected, "error") == 0);
	if (ok && strcmp(type, "restart") == 0) {
		/* Restart is of a running app; only start undoes a stop. */
		if ((r = projected_stopped(s, id, row_stopped)) < 0)
			return r;
		if (r) {
			snprintf(err, errlen, "app %s is stopped; restart needs it running (start it)", id);
			return -EBUSY;
		}
	}
	if (ok)
		return 0;
	snprintf(err, errlen, "app %s is %s; %s needs it installed%s", id, projected, type,
		 repairs ? " (or in error)" : "");
	return -EBUSY;
}

/* A custom data dir must not be, contain or lie inside the data dir of
 * another app or the host path of a volume. 0, -EEXIST with a message, or
 * a store error. */
static int data_dir_free(struct store *s, const struct boxd_config *cfg, const char *id, const char *dir, char *msg,
			 size_t msglen)
{
	struct app *apps;
	size_t n;
	int r = app_list(s, &apps, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (strcmp(apps[i].id, id) == 0)
			continue;
		char *other = app_data_dir(cfg, &apps[i]);
		if (!other) {
			r = -ENOMEM;
		} else if (path_is_under(dir, other) || path_is_under(other, dir)) {
			snprintf(msg, msglen, "dataDir %s overlaps the data dir of app %s (%s)", dir, apps[i].id, other);
			r = -EEXIST;
		}
		free(other);
	}
	app_list_free(apps, n);
	if (r < 0)
		return r;
	struct volume *v;
	if ((r = volume_list(s, &v, &n)) < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (path_is_under(dir, v[i].host_path) || path_is_under(v[i].host_path, dir)) {
			snprintf(msg, msglen, "dataDir %s overlaps volume %s (%s)", dir, v[i].id, v[i].host_path);
			r = -EEXIST;
		}
	}
	volume_list_free(v, n);
	return r;
}

int apps_admit(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret)
{
	const struct apps_admission *adm = e->userdata;
	int r = check_state(s, e->type, e->app_id, ret->message, sizeof(ret->message));
	if (r >= 0 && adm && adm->data_dir)
		r = data_dir_free(s, adm->cfg, e->app_id, adm->data_dir, ret->message, sizeof(ret->message));
	if (r >= 0 && strcmp(e->type, "install") == 0)
		r = app_insert(s, e->app_id, adm ? adm->image : NULL, adm ? adm->env_json : NULL,
			       adm ? adm->data_dir : NULL, adm ? adm->host : NULL);
	/* Ports and domains are taken here, checked against every app in
	 * this transaction (app_publish.h). */
	if (r >= 0 && adm && adm->cfg) {
		json_t *args = json_loads(e->args_json ? e->args_json : "{}", 0, NULL);
		r = args ? app_publish_reserve(adm->cfg, s, e->app_id, args, ret->message, sizeof(ret->message))
			 : -ENOMEM;
		json_decref(args);
		if (r == -EPERM)
			ret->code = "proxy_disabled";
	}
	return r;
}

int apps_task_created(struct store *s, const struct task_enqueue *e, int64_t id)
{
	return app_set_task(s, e->app_id, id);
}

void apps_enqueue_init(struct task_enqueue *e, const char *type, const char *app_id, const char *args_json,
		       struct apps_admission *adm)
{
	*e = (struct task_enqueue){ .type = type, .app_id = app_id, .args_json = args_json, .admit = apps_admit,
				    .created = apps_task_created, .userdata = adm };
}
