/* serve_broker.h — the daemon's per-host lock broker (locks/broker.h):
 * started with the daemon when [locks] broker = on (the default), in a
 * thread of its own with a lock-store connection of its own, on
 * <state_dir>/lock-broker.sock; stopped before the daemon exits or
 * re-executes (its workers then go on with the direct CAS loop and
 * reconnect to the next daemon's broker at their next lock). */
#pragma once

#include "common/config.h"

struct serve_broker;

/* Start it (nothing when the config says off). A broker that cannot start
 * is logged and left out: workers take their locks directly. */
void serve_broker_start(const struct boxd_config *cfg, const char *host, struct serve_broker **ret);

/* Accepts NULL. */
void serve_broker_stop(struct serve_broker *sb);
