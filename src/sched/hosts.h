/* hosts.h — the hosts sharing one store: who they are and whether they
 * are alive (issue 16, placement).
 *
 * Each daemon upserts its row of the `hosts` table (migration 11) every
 * HOSTS_HEARTBEAT_MS: its host id (common/proc.h), name, owner id, API URL
 * ([host] api_url) and version, and `heartbeat_at` in the database's clock
 * (store_now_ms(): no host's local clock decides who is gone). Whether a
 * host is alive or gone by that heartbeat is tasks/host_liveness.h's rule
 * (HOST_LEASE_MS), the one every layer uses. Apps are placed on hosts
 * (apps.host); the scheduler claims an app's tasks only on its host, and a
 * task of an app whose host is gone waits, naming it (sched.c).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "tasks/host_liveness.h"

#define HOSTS_HEARTBEAT_MS 2000

struct host_beat {
	const char *id;       /* host id */
	const char *owner_id; /* host id + boot */
	const char *name;     /* gethostname(); may be NULL */
	const char *api_url;  /* [host] api_url; may be NULL */
	const char *version;
	int64_t started_at_ms; /* wall clock of this daemon's start */
};

/* Insert or update this host's row with heartbeat_at = the database's now.
 * 0 or negative errno (store_errmsg()). */
int hosts_heartbeat(struct store *s, const struct host_beat *b);

/* Whether host id `id` is in use by another daemon: its row names an owner
 * id other than `owner_id` (another machine configured with the same id,
 * or this one before a reboot) and its heartbeat is alive. 1 with that
 * owner id in other[len] and its heartbeat age in *ret_age_ms; 0 no (no
 * row, our owner id, or a heartbeat HOST_LEASE_MS old or older); negative
 * errno. serve.c refuses to start on 1: two daemons with one host id would
 * take each other's lock owners for their own earlier boot and free them. */
int hosts_other_owner(struct store *s, const char *id, const char *owner_id, char *other, size_t len,
		      int64_t *ret_age_ms);

/* Place the apps from before placement (apps.host NULL) on host `id`, if
 * no other host has ever beaten in this store: a box that was one host
 * keeps its apps where their containers and data are, so that a host
 * added later does not claim their tasks. With other hosts in the table
 * nothing is guessed (they stay unplaced: any host). *ret_n: how many
 * were placed. 0 or negative errno. */
int hosts_adopt_unplaced_apps(struct store *s, const char *id, int64_t *ret_n);

/* Whether host `id` has a row, and whether its heartbeat is within the
 * lease by the database's clock: host_liveness() (tasks/host_liveness.h)
 * without the age. 0 or negative errno. */
int hosts_state(struct store *s, const char *id, enum host_state *ret);

/* Every host as a JSON array of {id, name, ownerId, apiUrl, version,
 * startedAt, lastHeartbeat, heartbeatAgeMs, alive, self}, by id; `self_id`
 * marks this host. 0 or negative errno. */
int hosts_list_json(struct store *s, const char *self_id, json_t **ret);
