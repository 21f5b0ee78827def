/* app_record.h — the app's record carried in each of its archives, so that
 * an app that was uninstalled can be installed again from its backup
 * (`app restore` on an unknown id; a whole-box restore elsewhere).
 *
 * It is the archive's first entry, "boxd-app.json" (tarball.h), a JSON
 * object (version 1):
 *
 *   {"boxdAppRecord": 1,
 *    "id": "wiki", "image": "docker.io/library/nginx:1",
 *    "env": {"KEY": "value", ...},
 *    "dataDir": "/var/lib/boxd/appsdata/wiki",   the data dir when archived
 *    "customDataDir": false,                     true: dataDir was set by the operator
 *    "volumes": [],                              volumes the app's container mounts
 *                                                (none today: boxd mounts volumes into sftp only)
 *    "ports": [...], "domains": [...], "httpPort": N,   as the API shows them (app_publish.h);
 *                                                a reinstall reserves them again
 *    "createdAt": "...",                         when the app was installed
 *    "recordedAt": "...", "boxdVersion": "..."}
 *
 * Unknown keys are ignored when reading, so later versions may add some.
 * The record holds the app's env, secrets included: that is one more
 * reason to encrypt backups that leave the box (backup_crypt.h).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "apps/app.h"
#include "common/config.h"

/* The record of `a` as JSON text, malloc'ed; NULL when out of memory. */
char *app_record_make(const struct boxd_config *cfg, const struct app *a);

struct app_record {
	char *id;
	char *image;
	char *env_json;  /* compact JSON object of strings */
	char *data_dir;  /* the custom data dir; NULL: the default under this box's appsdata root */
	json_t *ports;   /* as recorded, or NULL */
	json_t *domains; /* as recorded, or NULL */
	int http_port;   /* the container port domains are routed to; 0: none recorded */
};

/* Parse and check a record: version 1, `id` equal to want_id (an archive
 * of another app is refused), a valid id, an image, an env of strings,
 * a dataDir string when customDataDir. 0, or -EBADMSG with a message. */
int app_record_parse(const char *text, const char *want_id, struct app_record *ret, char *err, size_t errlen);
void app_record_release(struct app_record *r);
