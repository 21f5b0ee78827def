/* routes_apps.c — /api/v1/apps and /api/v1/volumes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api-internal.h"
#include "app_engine_state.h"
#include "apps/app.h"
#include "apps/app_publish.h"
#include "apps/app_admit.h"
#include "apps/app_tasks.h"
#include "backups/app_move.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mountpoint.h"
#include "common/paths.h"
#include "common/proc.h"
#include "engine/engine.h"
#include "sched/hosts.h"
#include "services/mounts.h"
#include "services/service.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"

static bool image_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("./:_@-", *p)))
			return false;
	return true;
}

static bool env_valid(struct api_req *req, json_t *env)
{
	if (!json_is_object(env)) {
		api_reply_error(req, 400, "bad_request", "\"env\" must be an object of strings");
		return false;
	}
	const char *key;
	json_t *v;
	json_object_foreach(env, key, v) {
		bool ok = key[0] && !(key[0] >= '0' && key[0] <= '9') && strlen(key) < 256;
		for (const char *p = key; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
		if (!ok) {
			api_reply_error(req, 400, "bad_request", "env: \"%s\" is not a valid variable name", key);
			return false;
		}
		if (!json_is_string(v)) {
			api_reply_error(req, 400, "bad_request", "env: the value of %s must be a string", key);
			return false;
		}
	}
	return true;
}

/* A custom data dir: a valid path, and not inside the appsdata root (the
 * root holds the default dirs, named after apps). */
static bool data_dir_valid(struct api_req *req, const char *dir)
{
	const struct boxd_config *cfg = api_config(req);
	char err[512];
	if (path_check_app_data(cfg, dir, err, sizeof(err)) < 0) {
		api_reply_error(req, 422, "bad_path", "%s", err);
		return false;
	}
	if (path_is_under(dir, cfg->appsdata_root) || path_is_under(cfg->appsdata_root, dir) ||
	    path_is_under(dir, cfg->volumes_root) || path_is_under(dir, cfg->backups_dir)) {
		api_reply_error(req, 422, "bad_path",
				"%s: a custom data dir must lie outside the appsdata, volumes and backups dirs", dir);
		return false;
	}
	return true;
}

/* Queue an app task: the rules are apps_admit()'s (apps/app_admit.h), run
 * in the write transaction that queues it. For install, the app's row is
 * inserted in the same transaction. `data_dir`: the custom data dir the
 * task gives the app (install, configure). */
static void queue_app_task_on(struct api_req *req, const char *type, const char *id, json_t *args, const char *image,
			      const char *env_text, const char *data_dir, const char *host)
{
	struct apps_admission adm = { .cfg = api_config(req), .image = image, .env_json = env_text, .data_dir = data_dir,
				      .host = host };
	char *args_text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	if (!args_text) {
		api_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	struct task_enqueue e;
	apps_enqueue_init(&e, type, id, args_text, &adm);
	json_t *reply = json_pack("{s:s}", "id", id);
	if (host)
		json_object_set_new(reply, "host", json_string(host));
	api_enqueue(req, &e, reply);
	free(args_text);
}

static void queue_app_task(struct api_req *req, const char *type, const char *id, json_t *args, const char *image,
			   const char *env_text, const char *data_dir)
{
	queue_app_task_on(req, type, id, args, image, env_text, data_dir, NULL);
}

/* The host an install places the app on: "host" of the body, else the
 * host that received the request. Any host in the hosts table will do,
 * alive or gone (its tasks wait for it: sched.c); one never seen is 404
 * unknown_host. NULL after a reply. */
static const char *install_host(struct api_req *req, json_t *host)
{
	if (!host || json_is_null(host) || (json_is_string(host) && strcmp(json_string_value(host), api_host(req)) == 0))
		return api_host(req);
	if (!json_is_string(host) || !host_id_valid(json_string_value(host))) {
		api_reply_error(req, 400, "bad_request",
				"\"host\" must be a host id (1-%d of letters, digits, '.', '_' and '-'; GET /api/v1/hosts)",
				HOST_ID_MAX);
		return NULL;
	}
	enum host_state st;
	int r = hosts_state(req->store, json_string_value(host), &st);
	if (r < 0) {
		api_reply_store_error(req, r);
		return NULL;
	}
	if (st == HOST_UNKNOWN) {
		api_reply_error(req, 404, "unknown_host", "no host %s shares this store (GET /api/v1/hosts lists them)",
				json_string_value(host));
		return NULL;
	}
	return json_string_value(host);
}

/* "ports", "domains" and "httpPort" of an install or configure body are
 * well-formed (400 otherwise); conflicts are checked when the task is
 * queued (409). */
static bool publish_valid(struct api_req *req, json_t *body)
{
	char err[512];
	json_t *ports = json_object_get(body, "ports"), *domains = json_object_get(body, "domains"),
	       *http = json_object_get(body, "httpPort");
	struct app_port *p = NULL;
	size_t n;
	json_t *d = NULL;
	int hp;
	if ((ports && app_ports_parse(ports, &p, &n, err, sizeof(err)) < 0) ||
	    (domains && app_domains_parse(domains, &d, err, sizeof(err)) < 0) ||
	    (http && app_http_port_parse(http, &hp, err, sizeof(err)) < 0)) {
		api_reply_error(req, 400, "bad_request", "%s", err);
		return false;
	}
	free(p);
	json_decref(d);
	return true;
}

static void list_apps(struct api_req *req)
{
	struct app *apps;
	size_t n;
	int r = app_list(req->store, &apps, &n);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, app_to_json(api_config(req), &apps[i]));
	app_list_free(apps, n);
	api_reply_json(req, 200, json_pack("{s:o}", "apps", arr));
}

static void install_app(struct api_req *req)
{
	static const char *const fields[] = { "id",	  "image",    "env",  "dataDir", "ports",
					      "domains", "httpPort", "host", NULL };
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields))
		goto out;
	json_t *id = json_object_get(body, "id"), *image = json_object_get(body, "image"),
	       *env = json_object_get(body, "env"), *dir = json_object_get(body, "dataDir");
	if (!json_is_string(id) || !app_id_valid(json_string_value(id))) {
		api_reply_error(req, 400, "bad_request",
				"\"id\" must be 1-63 characters of lowercase letters, digits and '-'");
		goto out;
	}
	if (!json_is_string(image) || !image_valid(json_string_value(image))) {
		api_reply_error(req, 400, "bad_request", "\"image\" must be an image name such as localhost/app:1");
		goto out;
	}
	if (env && !env_valid(req, env))
		goto out;
	if (dir && !json_is_null(dir) && (!json_is_string(dir) || !data_dir_valid(req, json_string_value(dir)))) {
		if (!req->response)
			api_reply_error(req, 400, "bad_request", "\"dataDir\" must be an absolute path");
		goto out;
	}
	if (!publish_valid(req, body))
		goto out;
	const char *host = install_host(req, json_object_get(body, "host"));
	if (!host)
		goto out;
	char *env_text = json_dumps(env ? env : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
	json_t *args = json_object();
	static const char *const publish[] = { "ports", "domains", "httpPort" };
	for (size_t i = 0; i < sizeof(publish) / sizeof(publish[0]); i++)
		if (json_object_get(body, publish[i]))
			json_object_set(args, publish[i], json_object_get(body, publish[i]));
	queue_app_task_on(req, "install", json_string_value(id), args, json_string_value(image), env_text,
			  json_is_string(dir) ? json_string_value(dir) : NULL, host);
	json_decref(args);
	free(env_text);
out:
	json_decref(body);
}

bool api_app_get(struct api_req *req, struct app *ret)
{
	int r = app_get(req->store, req->params[0], ret);
	if (r == -ENOENT)
		api_reply_error(req, 404, "not_found", "no app %s", req->params[0]);
	else if (r < 0)
		api_reply_store_error(req, r);
	return r == 0;
}

static void get_app(struct api_req *req)
{
	struct app a;
	if (!api_app_get(req, &a))
		return;
	json_t *o = app_to_json(api_config(req), &a);
	app_publish_fill_json(api_config(req), &a, o);
	/* What the engine says of the container (app_engine_state.h): only
	 * here, not in the list, which must not wait for the engine. */
	json_object_set_new(o, "container", app_engine_state_json(api_config(req), &a));
	api_reply_json(req, 200, o);
	app_release(&a);
}

static void simple_app_task(struct api_req *req, const char *type)
{
	if (!api_body_empty(req))
		return;
	json_t *args = json_object();
	queue_app_task(req, type, req->params[0], args, NULL, NULL, NULL);
	json_decref(args);
}

/* The body of a request that changes some of `fields` (NULL-terminated): a
 * JSON object with only those keys, and at least one of them. Else answers
 * 400 ("<what> needs "a", "b" and/or "c"") and returns NULL. */
static json_t *body_with_some(struct api_req *req, const char *const *fields, const char *what)
{
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields)) {
		json_decref(body);
		return NULL;
	}
	size_t n = 0;
	bool any = false;
	for (; fields[n]; n++)
		any = any || json_object_get(body, fields[n]);
	if (any)
		return body;
	char list[256] = "";
	for (size_t i = 0, used = 0; i < n && used < sizeof(list); i++, used = strlen(list))
		snprintf(list + used, sizeof(list) - used, "%s\"%s\"", i == 0 ? "" : i + 1 < n ? ", " : " and/or ",
			 fields[i]);
	api_reply_error(req, 400, "bad_request", "%s needs %s", what, list);
	json_decref(body);
	return NULL;
}

/* PATCH /api/v1/apps/:id/env {"set":{"A":"1"},"unset":["B"]}: a configure
 * task that changes only those variables. The merge happens in the worker,
 * on the env the app has when the task runs (tasks of an app run in
 * order), so two patches queued one after the other both count. */
static void patch_env(struct api_req *req)
{
	static const char *const fields[] = { "set", "unset", NULL };
	json_t *body = body_with_some(req, fields, "an env patch");
	if (!body)
		goto out;
	json_t *set = json_object_get(body, "set"), *unset = json_object_get(body, "unset");
	if (set && !env_valid(req, set))
		goto out;
	if (unset) {
		size_t i;
		json_t *k;
		if (!json_is_array(unset)) {
			api_reply_error(req, 400, "bad_request", "\"unset\" must be an array of variable names");
			goto out;
		}
		/* Names are checked like set's keys (an object of them). */
		json_t *names = json_object();
		json_array_foreach(unset, i, k) {
			if (!json_is_string(k)) {
				api_reply_error(req, 400, "bad_request", "\"unset\" must be an array of variable names");
				json_decref(names);
				goto out;
			}
			json_object_set_new(names, json_string_value(k), json_string(""));
			if (set && json_object_get(set, json_string_value(k))) {
				api_reply_error(req, 400, "bad_request", "env: %s is both set and unset",
						json_string_value(k));
				json_decref(names);
				goto out;
			}
		}
		bool ok = env_valid(req, names);
		json_decref(names);
		if (!ok)
			goto out;
	}
	json_t *args = json_pack("{s:O?, s:O?}", "envSet", set, "envUnset", unset);
	queue_app_task(req, "configure", req->params[0], args, NULL, NULL, NULL);
	json_decref(args);
out:
	json_decref(body);
}

/* POST /api/v1/apps/:id/uninstall [{"noBackup": true}]: by default the
 * uninstall first makes a final backup of the app (with its record, so
 * that `restore` can bring it back); noBackup skips it. */
static void uninstall_app(struct api_req *req)
{
	json_t *args = json_object();
	if (req->body_len > 0) {
		static const char *const fields[] = { "noBackup", NULL };
		json_t *body = api_body_object(req);
		bool ok = body && api_check_fields(req, body, fields);
		json_t *nb = ok ? json_object_get(body, "noBackup") : NULL;
		if (ok && nb && !json_is_boolean(nb)) {
			api_reply_error(req, 400, "bad_request", "\"noBackup\" must be true or false");
			ok = false;
		}
		if (ok && json_is_true(nb))
			json_object_set_new(args, "noBackup", json_true());
		json_decref(body);
		if (!ok) {
			json_decref(args);
			return;
		}
	}
	queue_app_task(req, "uninstall", req->params[0], args, NULL, NULL, NULL);
	json_decref(args);
}
static void restart_app(struct api_req *req) { simple_app_task(req, "restart"); }

static void configure_app(struct api_req *req)
{
	static const char *const fields[] = { "env", "dataDir", "ports", "domains", "httpPort", NULL };
	json_t *body = body_with_some(req, fields, "configure");
	if (!body)
		goto out;
	json_t *env = json_object_get(body, "env"), *dir = json_object_get(body, "dataDir");
	if (!publish_valid(req, body))
		goto out;
	if (env && !env_valid(req, env))
		goto out;
	if (dir && !json_is_null(dir) && (!json_is_string(dir) || !data_dir_valid(req, json_string_value(dir)))) {
		if (!req->response)
			api_reply_error(req, 400, "bad_request", "\"dataDir\" must be an absolute path or null");
		goto out;
	}
	queue_app_task(req, "configure", req->params[0], body, NULL, NULL, json_string_value(dir));
out:
	json_decref(body);
}

static void update_app(struct api_req *req)
{
	static const char *const fields[] = { "image", NULL };
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields))
		goto out;
	json_t *image = json_object_get(body, "image");
	if (!json_is_string(image) || !image_valid(json_string_value(image))) {
		api_reply_error(req, 400, "bad_request", "\"image\" must be an image name such as localhost/app:2");
		goto out;
	}
	queue_app_task(req, "update", req->params[0], body, NULL, NULL, NULL);
out:
	json_decref(body);
}

/* POST /api/v1/apps/:id/move {"host": H}: a move task on the app's host
 * (backups/app_move.h). The target must be a host of the hosts table
 * with a live heartbeat (404 unknown_host, 409 host_gone); the app's
 * checks (404, 409 app_busy, 409 same_host) are made where the task is
 * queued. */
static void move_app(struct api_req *req)
{
	static const char *const fields[] = { "host", NULL };
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields))
		goto out;
	json_t *host = json_object_get(body, "host");
	if (!json_is_string(host) || !host_id_valid(json_string_value(host))) {
		api_reply_error(req, 400, "bad_request", "\"host\" must be a host id (GET /api/v1/hosts lists them)");
		goto out;
	}
	const char *target = json_string_value(host);
	enum host_state hs;
	int r = hosts_state(req->store, target, &hs);
	if (r < 0) {
		api_reply_store_error(req, r);
		goto out;
	}
	if (hs == HOST_UNKNOWN) {
		api_reply_error(req, 404, "unknown_host", "no host %s (GET /api/v1/hosts lists them)", target);
		goto out;
	}
	if (hs == HOST_GONE) {
		api_reply_error(req, 409, "host_gone", "host %s is gone (its heartbeat is over %d s old)", target,
				HOST_LEASE_MS / 1000);
		goto out;
	}
	json_t *args = json_pack("{s:s}", "host", target);
	char *args_text = args ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(args);
	if (!args_text) {
		api_reply_error(req, 500, "internal", "out of memory");
		goto out;
	}
	struct app_move_admission adm = { .target = target, .self_host = api_host(req) };
	struct task_enqueue e;
	struct task_idempotency idem;
	struct task_enqueued res;
	app_move_enqueue_init(&e, req->params[0], args_text, &adm);
	e.idem = api_idempotency(req, &idem);
	r = task_enqueue(req->store, api_config(req), &e, &res);
	api_reply_enqueued(req, r, &res, json_pack("{s:s, s:s, s:s}", "id", req->params[0], "from", adm.source, "to", target));
	free(args_text);
out:
	json_decref(body);
}

/* ---- volumes ---------------------------------------------------------------- */

static void list_volumes(struct api_req *req)
{
	struct volume *v;
	size_t n;
	int r = volume_list(req->store, &v, &n);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, volume_to_json(&v[i]));
	volume_list_free(v, n);
	api_reply_json(req, 200, json_pack("{s:o}", "volumes", arr));
}

/* Options a volume's mount may not carry: boxd mounts nosuid,nodev, and
 * mount(8) lets the last of two contradicting options win. */
static bool option_allowed(const char *opt, size_t len)
{
	static const char *const denied[] = { "suid", "dev", "remount", "bind", "rbind", "move", NULL };
	for (size_t i = 0; denied[i]; i++)
		if (strlen(denied[i]) == len && strncmp(opt, denied[i], len) == 0)
			return false;
	return len > 0;
}

/* mountSource and mountOptions of a POST /volumes body: required for the
 * types boxd mounts, refused for the others. Replies and returns false on
 * bad input. */
static bool volume_fields(struct api_req *req, const struct boxd_config *cfg, json_t *body, const char *type,
			  const char **ret_source, const char **ret_options)
{
	json_t *src = json_object_get(body, "mountSource"), *opts = json_object_get(body, "mountOptions");
	if ((src && !json_is_string(src)) || (opts && !json_is_string(opts))) {
		api_reply_error(req, 400, "bad_request", "\"mountSource\" and \"mountOptions\" must be strings");
		return false;
	}
	if (!volume_type_managed(type)) {
		if (src || opts) {
			api_reply_error(req, 400, "bad_request", "\"mountSource\" and \"mountOptions\" are for the mount "
					"types boxd mounts (bind and filesystem types), not \"%s\"", type);
			return false;
		}
		return true;
	}
	const char *s = src ? json_string_value(src) : "";
	if (!*s || strlen(s) > 1024 || s[0] == '-') {
		api_reply_error(req, 400, "bad_request", "mount type %s needs \"mountSource\" (what to mount)", type);
		return false;
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			api_reply_error(req, 400, "bad_request", "\"mountSource\" contains a control character");
			return false;
		}
	}
	char err[512];
	if (strcmp(type, "bind") == 0) {
		struct stat st;
		if (opts) {
			api_reply_error(req, 400, "bad_request", "a bind volume takes no \"mountOptions\"");
			return false;
		}
		if (path_check_volume(cfg, s, err, sizeof(err)) < 0) {
			api_reply_error(req, 422, "bad_path", "mountSource: %s", err);
			return false;
		}
		if (stat(s, &st) < 0 || !S_ISDIR(st.st_mode)) {
			api_reply_error(req, 422, "bad_path", "mountSource %s is not an existing directory", s);
			return false;
		}
	}
	const char *o = opts ? json_string_value(opts) : NULL;
	if (o) {
		const char *p = o;
		if (strlen(o) > 512)
			goto bad_options;
		for (const char *q = o; *q; q++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=,._:/@+-", *q))
				goto bad_options;
		while (*p) {
			size_t len = strcspn(p, ",="), all = strcspn(p, ",");
			if (!option_allowed(p, len))
				goto bad_options;
			p += all + (p[all] == ',');
		}
	}
	*ret_source = s;
	*ret_options = o;
	return true;
bad_options:
	api_reply_error(req, 400, "bad_request",
			"\"mountOptions\" is a comma-separated list of mount(8) options (letters, digits and =._:/@+-), "
			"without suid, dev, remount, bind, rbind or move");
	return false;
}

static void add_volume(struct api_req *req)
{
	static const char *const fields[] = { "id", "name", "hostPath", "mountType", "mountSource", "mountOptions", NULL };
	const struct boxd_config *cfg = api_config(req);
	json_t *body = api_body_object(req);
	if (!body || !api_check_fields(req, body, fields))
		goto out;
	json_t *id = json_object_get(body, "id"), *name = json_object_get(body, "name"),
	       *path = json_object_get(body, "hostPath"), *type = json_object_get(body, "mountType");
	if (!json_is_string(id) || !app_id_valid(json_string_value(id))) {
		api_reply_error(req, 400, "bad_request",
				"\"id\" must be 1-63 characters of lowercase letters, digits and '-'");
		goto out;
	}
	if ((name && !json_is_string(name)) || (path && !json_is_string(path)) || (type && !json_is_string(type))) {
		api_reply_error(req, 400, "bad_request", "\"name\", \"hostPath\" and \"mountType\" must be strings");
		goto out;
	}
	const char *mount_type = type ? json_string_value(type) : "dir";
	if (!volume_type_valid(mount_type)) {
		api_reply_error(req, 400, "bad_request",
				"\"mountType\" is \"dir\", \"mountpoint\", \"bind\" or a filesystem type (ext4, xfs, "
				"btrfs, cifs, nfs, nfs4)");
		goto out;
	}
	const char *mount_source = NULL, *mount_options = NULL;
	if (!volume_fields(req, cfg, body, mount_type, &mount_source, &mount_options))
		goto out;
	char host_path[4096];
	if (path)
		snprintf(host_path, sizeof(host_path), "%s", json_string_value(path));
	else
		snprintf(host_path, sizeof(host_path), "%s/%s", cfg->volumes_root, json_string_value(id));
	char err[512];
	if (path_check_volume(cfg, host_path, err, sizeof(err)) < 0) {
		api_reply_error(req, 422, "bad_path", "%s", err);
		goto out;
	}
	/* Not where an app keeps its data (nor around it): an uninstall of
	 * the app would delete the volume's data. Checked and inserted in one
	 * transaction, like the app side in queue_app_task(). */
	char msg[5120] = "";
	int r = store_begin(req->store, true);
	if (r < 0) {
		api_reply_store_error(req, r);
		goto out;
	}
	struct app *apps;
	size_t n;
	r = app_list(req->store, &apps, &n);
	if (r >= 0) {
		for (size_t i = 0; i < n && !msg[0]; i++) {
			char *dir = app_data_dir(cfg, &apps[i]);
			if (dir && (path_is_under(host_path, dir) || path_is_under(dir, host_path)))
				snprintf(msg, sizeof(msg), "%s overlaps the data dir of app %s (%s)", host_path,
					 apps[i].id, dir);
			free(dir);
		}
		app_list_free(apps, n);
	}
	if (r >= 0 && !msg[0])
		r = volume_insert(req->store, json_string_value(id),
				  name ? json_string_value(name) : json_string_value(id), host_path, mount_type,
				  mount_source, mount_options);
	if (r >= 0 && !msg[0])
		r = store_commit(req->store);
	else
		store_rollback(req->store);
	if (msg[0] || r == -EEXIST) {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "volume %s already exists", json_string_value(id));
		api_reply_error(req, 409, "conflict", "%s", msg);
		goto out;
	}
	if (r < 0) {
		api_reply_store_error(req, r);
		goto out;
	}
	/* A plain directory is made now (never through a symlink), and its
	 * identity recorded: the sftp service binds only that directory
	 * (common/bind_source.h). A mount point is the host's to mount;
	 * boxd's own mounts make their directory themselves. */
	if (strcmp(mount_type, "dir") == 0) {
		const char *roots[PATHS_TRUSTED_MAX + 1];
		paths_trusted_roots(cfg, roots);
		struct fs_id made;
		int fr = fs_mkdir_nofollow(roots, host_path, 0755, &made, err, sizeof(err));
		if (fr == 0 && volume_set_host_id(req->store, json_string_value(id), &made) < 0) {
			snprintf(err, sizeof(err), "cannot record volume %s: %s", json_string_value(id),
				 store_errmsg(req->store));
			fr = -EIO;
		}
		if (fr < 0) {
			volume_delete(req->store, json_string_value(id));
			api_reply_error(req, 500, "fs_error", "%s", err);
			goto out;
		}
	}
	/* Then as its type says (services_mount_volume): a shared mount point
	 * of its own (read-only until the host mounts something on a
	 * mountpoint volume), or what boxd mounts there. A mount that fails
	 * undoes the volume: 422 mount_failed. A dir that cannot be made a
	 * mount point (no CAP_SYS_ADMIN) only loses propagation: a warning. */
	struct volume v;
	volume_get(req->store, json_string_value(id), &v);
	r = services_mount_volume(cfg, &v, err, sizeof(err));
	if (r < 0 && volume_type_managed(mount_type)) {
		volume_delete(req->store, v.id);
		volume_release(&v);
		api_reply_error(req, 422, "mount_failed", "%s", err);
		goto out;
	}
	if (r < 0 && r != -ENOENT)
		log_warn("volume %s: %s", json_string_value(id), err);
	api_wake(req); /* the sftp spec may have changed */
	api_reply_json(req, 201, volume_to_json(&v));
	volume_release(&v);
out:
	json_decref(body);
}

static void delete_volume(struct api_req *req)
{
	/* Only boxd's record goes, and boxd's bind of the directory onto
	 * itself; the data on the host stays. */
	struct volume v;
	if (volume_get(req->store, req->params[0], &v) == 0) {
		char err[512];
		if (services_unmount_volume(&v, err, sizeof(err)) < 0)
			log_warn("volume %s: %s", v.id, err);
		volume_release(&v);
	}
	int r = volume_delete(req->store, req->params[0]);
	if (r == -ENOENT)
		api_reply_error(req, 404, "not_found", "no volume %s", req->params[0]);
	else if (r < 0)
		api_reply_store_error(req, r);
	else {
		api_wake(req);
		api_reply_empty(req, 204);
	}
}

const struct api_route api_routes_apps[] = {
	{ "GET", "/api/v1/apps", list_apps },
	{ "POST", "/api/v1/apps", install_app },
	{ "GET", "/api/v1/apps/:id", get_app },
	{ "POST", "/api/v1/apps/:id/uninstall", uninstall_app },
	{ "POST", "/api/v1/apps/:id/restart", restart_app },
	{ "POST", "/api/v1/apps/:id/configure", configure_app },
	{ "PATCH", "/api/v1/apps/:id/env", patch_env },
	{ "POST", "/api/v1/apps/:id/update", update_app },
	{ "POST", "/api/v1/apps/:id/move", move_app },
	{ "GET", "/api/v1/volumes", list_volumes },
	{ "POST", "/api/v1/volumes", add_volume },
	{ "DELETE", "/api/v1/volumes/:id", delete_volume },
	{ NULL, NULL, NULL },
};
