/* store_open.h — open the store a config names (daemon, API threads,
 * workers and tools all go through here, so they agree on the database). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "store/store.h"

enum store_open_flags {
	/* A connection used only for the lock document: commits with
	 * synchronous=NORMAL (DESIGN.md "Durability"). */
	STORE_OPEN_RELAXED = 1 << 0,
	/* Skip the migration check: for connections opened while a daemon that
	 * already migrated runs (workers, API threads). It saves a write
	 * transaction per open. */
	STORE_OPEN_NO_MIGRATE = 1 << 1,
};

int store_open_config(const struct boxd_config *cfg, unsigned flags, struct store **ret, char *err, size_t errlen);
