/* host_liveness.h — the one rule for whether a host sharing the store is
 * alive or gone.
 *
 * Each daemon writes its `hosts` row's heartbeat_at every
 * HOSTS_HEARTBEAT_MS (sched/hosts.h) in the database's clock
 * (store_now_ms()). A host is alive while that heartbeat is less than
 * HOST_LEASE_MS old by the same clock, and gone once it is at least that
 * old; no host's local clock decides who is gone. A host with no row is
 * unknown: it never beat in this store (or is not a host at all).
 *
 * Here in `tasks` because every layer that asks sits on it: the scheduler
 * and the placement checks (sched/hosts.h hosts_state()), the app move
 * (backups, which does not link sched) and the lock reaper's failing of a
 * gone host's tasks (task.h task_fail_host_gone()). The reaper cannot call
 * host_liveness(): it tests the heartbeat inside the UPDATE that fails the
 * task, so that a beat landing between a check and the write cannot be
 * missed; its clause is this rule written in SQL, with HOST_LEASE_MS. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* How old a heartbeat must be, by the database's clock, for its host to
 * count as gone. Five heartbeats (sched/hosts.h HOSTS_HEARTBEAT_MS). */
#define HOST_LEASE_MS 10000

/* The rule itself, for a caller that has the heartbeat's age already (a
 * list of every host read in one query, hosts.c). */
static inline bool host_age_alive(int64_t age_ms) { return age_ms < HOST_LEASE_MS; }

enum host_state {
	HOST_UNKNOWN, /* no hosts row */
	HOST_ALIVE,   /* heartbeat younger than HOST_LEASE_MS */
	HOST_GONE,    /* heartbeat HOST_LEASE_MS old or older */
};

/* Read host `host_id`'s heartbeat and judge it by the rule above, with one
 * store_now_ms() and one prepared SELECT. 0 with the state in *ret, and,
 * when the host has a row (HOST_ALIVE or HOST_GONE), its heartbeat's age in
 * ms in *ret_age_ms (may be NULL; left alone for HOST_UNKNOWN). A negative
 * errno when the store fails (store_errmsg()); nothing is written then.
 * Callers choose what unknown and a failure mean to them. */
int host_liveness(struct store *s, const char *host_id, enum host_state *ret, int64_t *ret_age_ms);
