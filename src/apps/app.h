/* app.h — the app and volume model (rows in `apps` and `volumes`).
 *
 * An app is an image, its env and a data directory; boxd runs it as the
 * container `app-<id>` with the data dir bound at /app/data. A volume is a
 * host directory (or a mount point the host mounts at leisure) that apps and
 * the sftp service can see.
 *
 * Installation states, and who moves an app between them:
 *   pending_install → installed            (install task)
 *   installed → pending_configure → installed | error
 *   installed → pending_update → installed | error
 *   any → pending_uninstall → (row deleted) | error
 * Run state: running | stopped | unknown: what the engine was last seen
 * doing. `stopped` (a flag apart from it) is what the operator wants: set by
 * the stop task, cleared by the start task. While it is set nothing of boxd
 * starts the app's container: platformstart leaves it stopped (and stops it
 * if it runs), configure and update make its new container without
 * starting it, a restore leaves it stopped, restart is refused (409). The
 * API refuses a task that the current state does not allow (409, naming
 * the state).
 *
 * All functions take the calling thread's store connection and return 0 or
 * negative errno (-ENOENT for an unknown id).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/fs.h"
#include "store/store.h"

#define APP_ID_MAX 64

struct app {
	char *id;
	char *image;
	char *env;            /* JSON object text */
	char *data_dir;       /* NULL: default <appsdata_root>/<id> */
	char *install_state;
	char *run_state;
	char *health;
	int64_t task_id;      /* current or last task; 0 none */
	char *container_id;
	int64_t created_at;
	int64_t updated_at;
	/* The identity of the data dir boxd made (bind_source.h); false for
	 * rows from before it was recorded. */
	bool has_data_id;
	struct fs_id data_id;
	/* What the app publishes (app_publish.h): JSON array texts, NULL for
	 * none, and the container port its domains are routed to (0: 80). */
	char *ports;
	char *domains;
	int http_port;
	bool stopped;         /* stopped by the operator (see above) */
	/* The host the app lives on (sched/hosts.h): only it claims the app's
	 * tasks. NULL: not placed (rows from before placement): any host. */
	char *host;
};

/* Volume mount types. "dir": a directory boxd makes; "mountpoint": a
 * directory where the host mounts a filesystem at its leisure. The others
 * boxd mounts itself at host_path (and again at every start): "bind" binds
 * the existing host directory mount_source; a filesystem type ("ext4",
 * "xfs", "btrfs", "cifs", "nfs", "nfs4") mounts mount_source with
 * mount(8), nosuid,nodev plus mount_options. */
struct volume {
	char *id;
	char *name;
	char *host_path;
	char *mount_type;
	char *mount_source;   /* NULL for dir and mountpoint */
	char *mount_options;  /* NULL: none */
	int64_t created_at;
	bool has_host_id;     /* "dir": the identity of the dir boxd made */
	struct fs_id host_id;
};

/* Is `type` a mount type boxd knows; does boxd mount it (bind or a
 * filesystem type)? */
bool volume_type_valid(const char *type);
bool volume_type_managed(const char *type);

/* An app or volume id: 1..63 of [a-z0-9-], starting with a letter or digit. */
bool app_id_valid(const char *id);

void app_release(struct app *a);
void app_list_free(struct app *apps, size_t n);
void volume_release(struct volume *v);
void volume_list_free(struct volume *v, size_t n);

/* The data dir the app uses (its own, or the default), malloc'ed, as the
 * row says: for display and comparisons only. */
char *app_data_dir(const struct boxd_config *cfg, const struct app *a);

/* The data dir of `a`, checked again before boxd acts on it (the store is
 * not trusted for path safety, paths.h): <appsdata_root>/<id> for a valid
 * id, or a custom dir that passes path_check_app_data(). malloc'ed into
 * *ret; -EINVAL with a message in err for a row that fails, -ENOMEM. Every
 * task that creates, moves, deletes, archives, restores or binds a data dir
 * takes it from here. */
int app_data_dir_checked(const struct boxd_config *cfg, const struct app *a, char **ret, char *err, size_t errlen);

/* Insert in state pending_install, placed on `host` (NULL: not placed).
 * -EEXIST when the id is taken. */
int app_insert(struct store *s, const char *id, const char *image, const char *env_json, const char *data_dir,
	       const char *host);
int app_get(struct store *s, const char *id, struct app *ret);
int app_list(struct store *s, struct app **ret, size_t *ret_n);
int app_delete(struct store *s, const char *id);

/* Set one column. Allowed names: install_state, run_state, health, image,
 * env, data_dir, container_id, ports, domains. NULL value sets NULL. */
int app_set(struct store *s, const char *id, const char *column, const char *value);
int app_set_task(struct store *s, const char *id, int64_t task_id);
/* The container port the app's domains are routed to; 0 stores NULL (80). */
int app_set_http_port(struct store *s, const char *id, int port);
/* Set or clear the operator's stopped flag (see above). */
int app_set_stopped(struct store *s, const char *id, bool stopped);
/* Record the identity of the app's data dir (after boxd made, moved or
 * restored it). NULL clears it. */
int app_set_data_id(struct store *s, const char *id, const struct fs_id *data_id);

/* Move from one of `from` states (NULL-terminated) to `to`, atomically.
 * Returns 1 if moved, 0 if the app was in another state, -ENOENT. */
int app_transition(struct store *s, const char *id, const char *const *from, const char *to);

json_t *app_to_json(const struct boxd_config *cfg, const struct app *a);

int volume_insert(struct store *s, const char *id, const char *name, const char *host_path, const char *mount_type,
		  const char *mount_source, const char *mount_options);
int volume_get(struct store *s, const char *id, struct volume *ret);
int volume_list(struct store *s, struct volume **ret, size_t *ret_n);
int volume_delete(struct store *s, const char *id);
int volume_set_host_id(struct store *s, const char *id, const struct fs_id *host_id);
json_t *volume_to_json(const struct volume *v);
