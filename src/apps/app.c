/* app.c — see app.h. */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/paths.h"
#include "common/timeutil.h"

bool app_id_valid(const char *id)
{
	size_t n = 0;
	for (const char *p = id; *p; p++, n++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (*p == '-' && n > 0);
		if (!ok)
			return false;
	}
	return n > 0 && n < APP_ID_MAX;
}

void app_release(struct app *a)
{
	if (!a)
		return;
	free(a->id);
	free(a->image);
	free(a->env);
	free(a->data_dir);
	free(a->install_state);
	free(a->run_state);
	free(a->health);
	free(a->container_id);
	free(a->ports);
	free(a->domains);
	free(a->host);
	memset(a, 0, sizeof(*a));
}

void app_list_free(struct app *apps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		app_release(&apps[i]);
	free(apps);
}

void volume_release(struct volume *v)
{
	if (!v)
		return;
	free(v->id);
	free(v->name);
	free(v->host_path);
	free(v->mount_type);
	free(v->mount_source);
	free(v->mount_options);
	memset(v, 0, sizeof(*v));
}

void volume_list_free(struct volume *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		volume_release(&v[i]);
	free(v);
}

char *app_data_dir(const struct boxd_config *cfg, const struct app *a)
{
	if (a->data_dir)
		return strdup(a->data_dir);
	size_t len = strlen(cfg->appsdata_root) + strlen(a->id) + 2;
	char *p = malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", cfg->appsdata_root, a->id);
	return p;
}

int app_data_dir_checked(const struct boxd_config *cfg, const struct app *a, char **ret, char *err, size_t errlen)
{
	if (!a->id || !app_id_valid(a->id)) {
		snprintf(err, errlen, "the app row has an invalid id \"%.80s\"", a->id ? a->id : "");
		return -EINVAL;
	}
	if (a->data_dir) {
		char why[512];
		if (path_check_app_data(cfg, a->data_dir, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "app %s: its data dir is not acceptable: %s", a->id, why);
			return -EINVAL;
		}
	}
	char *dir = app_data_dir(cfg, a);
	if (!dir) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*ret = dir;
	return 0;
}

#define APP_COLS                                                                                              \
	"id, image, env, data_dir, install_state, run_state, health, task_id, container_id, created_at, updated_at, " \
	"data_dev, data_ino, ports, domains, http_port, stopped, host"

static void row_to_app(struct store_stmt *st, struct app *a)
{
	*a = (struct app){
		.id = store_col_strdup(st, 0), .image = store_col_strdup(st, 1), .env = store_col_strdup(st, 2), .data_dir = store_col_strdup(st, 3),
		.install_state = store_col_strdup(st, 4), .run_state = store_col_strdup(st, 5), .health = store_col_strdup(st, 6),
		.task_id = store_col_int64(st, 7), .container_id = store_col_strdup(st, 8),
		.created_at = store_col_int64(st, 9), .updated_at = store_col_int64(st, 10),
		.has_data_id = !store_col_is_null(st, 11) && !store_col_is_null(st, 12),
		.data_id = { .dev = (uint64_t)store_col_int64(st, 11), .ino = (uint64_t)store_col_int64(st, 12) },
		.ports = store_col_strdup(st, 13), .domains = store_col_strdup(st, 14), .http_port = (int)store_col_int64(st, 15),
		.stopped = store_col_int64(st, 16) != 0, .host = store_col_strdup(st, 17),
	};
}

int app_insert(struct store *s, const char *id, const char *image, const char *env_json, const char *data_dir,
	       const char *host)
{
	int64_t now = now_wall_ms();
	int64_t n = store_run(s,
			      "INSERT INTO apps (id, image, env, data_dir, install_state, run_state, health, created_at, "
			      "updated_at, host) VALUES (?, ?, ?, ?, 'pending_install', 'stopped', 'unknown', ?, ?, ?)",
			      "ssssiis", id, image, env_json ? env_json : "{}", data_dir, now, now, host);
	return n < 0 ? (int)n : 0;
}

int app_get(struct store *s, const char *id, struct app *ret)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT " APP_COLS " FROM apps WHERE id = ?", "s", id);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		row_to_app(st, ret);
		r = 0;
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	return r;
}

int app_list(struct store *s, struct app **ret, size_t *ret_n)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT " APP_COLS " FROM apps ORDER BY id", NULL);
	if (r < 0)
		return r;
	struct app *apps = NULL;
	size_t n = 0;
	while ((r = store_step(st)) == 1) {
		struct app *grown = realloc(apps, (n + 1) * sizeof(*apps));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		apps = grown;
		row_to_app(st, &apps[n++]);
	}
	store_finalize(st);
	if (r < 0) {
		app_list_free(apps, n);
		return r;
	}
	*ret = apps;
	*ret_n = n;
	return 0;
}

int app_delete(struct store *s, const char *id)
{
	int64_t n = store_run(s, "DELETE FROM apps WHERE id = ?", "s", id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int app_set(struct store *s, const char *id, const char *column, const char *value)
{
	/* Column names cannot be bound; pick the statement from a fixed list. */
	static const char *const columns[] = { "install_state", "run_state", "health", "image",
					       "env", "data_dir", "container_id", "ports", "domains" };
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		if (strcmp(column, columns[i]) != 0)
			continue;
		char sql[128];
		snprintf(sql, sizeof(sql), "UPDATE apps SET %s = ?, updated_at = ? WHERE id = ?", columns[i]);
		int64_t n = store_run(s, sql, "sis", value, now_wall_ms(), id);
		return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
	}
	return -EINVAL;
}

int app_set_task(struct store *s, const char *id, int64_t task_id)
{
	int64_t n = store_run(s, "UPDATE apps SET task_id = ?, updated_at = ? WHERE id = ?", "iis", task_id,
			      now_wall_ms(), id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int app_set_http_port(struct store *s, const char *id, int port)
{
	int64_t n = port > 0 ? store_run(s, "UPDATE apps SET http_port = ?, updated_at = ? WHERE id = ?", "iis",
					 (int64_t)port, now_wall_ms(), id)
			     : store_run(s, "UPDATE apps SET http_port = NULL, updated_at = ? WHERE id = ?", "is",
					 now_wall_ms(), id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int app_set_stopped(struct store *s, const char *id, bool stopped)
{
	int64_t n = store_run(s, "UPDATE apps SET stopped = ?, updated_at = ? WHERE id = ?", "iis", (int64_t)stopped,
			      now_wall_ms(), id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int app_set_data_id(struct store *s, const char *id, const struct fs_id *data_id)
{
	int64_t n = data_id ? store_run(s, "UPDATE apps SET data_dev = ?, data_ino = ? WHERE id = ?", "iis",
					(int64_t)data_id->dev, (int64_t)data_id->ino, id)
			    : store_run(s, "UPDATE apps SET data_dev = NULL, data_ino = NULL WHERE id = ?", "s", id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int app_transition(struct store *s, const char *id, const char *const *from, const char *to)
{
	for (const char *const *f = from; *f; f++) {
		int64_t n = store_run(s, "UPDATE apps SET install_state = ?, updated_at = ? WHERE id = ? AND install_state = ?",
				      "siss", to, now_wall_ms(), id, *f);
		if (n < 0)
			return (int)n;
		if (n > 0)
			return 1;
	}
	struct app a;
	int r = app_get(s, id, &a);
	if (r < 0)
		return r;
	app_release(&a);
	return 0;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *app_to_json(const struct boxd_config *cfg, const struct app *a)
{
	char *dir = app_data_dir(cfg, a);
	json_t *env = json_loads(a->env ? a->env : "{}", 0, NULL);
	char created[40], updated[40];
	format_rfc3339_ms(a->created_at, created, sizeof(created));
	format_rfc3339_ms(a->updated_at, updated, sizeof(updated));
	json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:b, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "id", a->id, "image",
			      a->image, "env", env ? env : json_object(), "dataDir", dir ? dir : "", "customDataDir",
			      a->data_dir != NULL, "installationState", a->install_state, "runState", a->run_state,
			      "health", a->health, "taskId", a->task_id ? json_integer(a->task_id) : json_null(),
			      "containerId", str_or_null(a->container_id), "createdAt", created, "updatedAt", updated);
	if (o) {
		json_t *ports = a->ports ? json_loads(a->ports, 0, NULL) : NULL;
		json_t *domains = a->domains ? json_loads(a->domains, 0, NULL) : NULL;
		json_object_set_new(o, "ports", json_is_array(ports) ? ports : (json_decref(ports), json_array()));
		json_object_set_new(o, "domains", json_is_array(domains) ? domains : (json_decref(domains), json_array()));
		json_object_set_new(o, "httpPort", json_integer(a->http_port > 0 ? a->http_port : 80));
		json_object_set_new(o, "stopped", json_boolean(a->stopped));
		json_object_set_new(o, "host", str_or_null(a->host));
	}
	free(dir);
	return o;
}

static const char *const fs_types[] = { "ext4", "xfs", "btrfs", "cifs", "nfs", "nfs4", NULL };

bool volume_type_managed(const char *type)
{
	if (!type)
		return false;
	if (strcmp(type, "bind") == 0)
		return true;
	for (size_t i = 0; fs_types[i]; i++)
		if (strcmp(type, fs_types[i]) == 0)
			return true;
	return false;
}

bool volume_type_valid(const char *type)
{
	return type && (strcmp(type, "dir") == 0 || strcmp(type, "mountpoint") == 0 || volume_type_managed(type));
}

#define VOLUME_COLS "id, name, host_path, mount_type, created_at, host_dev, host_ino, mount_source, mount_options"

static void row_to_volume(struct store_stmt *st, struct volume *v)
{
	*v = (struct volume){
		.id = store_col_strdup(st, 0), .name = store_col_strdup(st, 1), .host_path = store_col_strdup(st, 2), .mount_type = store_col_strdup(st, 3),
		.created_at = store_col_int64(st, 4),
		.has_host_id = !store_col_is_null(st, 5) && !store_col_is_null(st, 6),
		.host_id = { .dev = (uint64_t)store_col_int64(st, 5), .ino = (uint64_t)store_col_int64(st, 6) },
		.mount_source = store_col_strdup(st, 7), .mount_options = store_col_strdup(st, 8),
	};
}

int volume_set_host_id(struct store *s, const char *id, const struct fs_id *host_id)
{
	int64_t n = host_id ? store_run(s, "UPDATE volumes SET host_dev = ?, host_ino = ? WHERE id = ?", "iis",
					(int64_t)host_id->dev, (int64_t)host_id->ino, id)
			    : store_run(s, "UPDATE volumes SET host_dev = NULL, host_ino = NULL WHERE id = ?", "s", id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int volume_insert(struct store *s, const char *id, const char *name, const char *host_path, const char *mount_type,
		  const char *mount_source, const char *mount_options)
{
	int64_t n = store_run(s,
			      "INSERT INTO volumes (id, name, host_path, mount_type, created_at, mount_source, mount_options) "
			      "VALUES (?, ?, ?, ?, ?, ?, ?)",
			      "ssssiss", id, name, host_path, mount_type, now_wall_ms(), mount_source, mount_options);
	return n < 0 ? (int)n : 0;
}

int volume_get(struct store *s, const char *id, struct volume *ret)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT " VOLUME_COLS " FROM volumes WHERE id = ?", "s", id);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		row_to_volume(st, ret);
		r = 0;
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	return r;
}

int volume_list(struct store *s, struct volume **ret, size_t *ret_n)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT " VOLUME_COLS " FROM volumes ORDER BY id", NULL);
	if (r < 0)
		return r;
	struct volume *v = NULL;
	size_t n = 0;
	while ((r = store_step(st)) == 1) {
		struct volume *grown = realloc(v, (n + 1) * sizeof(*v));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		v = grown;
		row_to_volume(st, &v[n++]);
	}
	store_finalize(st);
	if (r < 0) {
		volume_list_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int volume_delete(struct store *s, const char *id)
{
	int64_t n = store_run(s, "DELETE FROM volumes WHERE id = ?", "s", id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

json_t *volume_to_json(const struct volume *v)
{
	char created[40];
	format_rfc3339_ms(v->created_at, created, sizeof(created));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", v->id, "name", v->name, "hostPath", v->host_path,
			      "mountType", v->mount_type, "createdAt", created);
	if (o && v->mount_source)
		json_object_set_new(o, "mountSource", json_string(v->mount_source));
	if (o && v->mount_options)
		json_object_set_new(o, "mountOptions", json_string(v->mount_options));
	return o;
}
