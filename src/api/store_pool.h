/* store_pool.h — a few store connections shared by the API threads.
 *
 * Each connection is used by one thread at a time: store_pool_get() hands
 * one out (opening a new one while fewer than `max` exist, else waiting for
 * one to come back) and store_pool_put() returns it. A connection that
 * failed in a way that may have broken it is closed instead (put with
 * broken = true). Thread-safe.
 */
#pragma once

#include <stdbool.h>

#include "common/config.h"
#include "store/store.h"

struct store_pool;

int store_pool_new(const struct boxd_config *cfg, int max, struct store_pool **ret);
void store_pool_free(struct store_pool *p);
int store_pool_get(struct store_pool *p, struct store **ret, char *err, size_t errlen);
void store_pool_put(struct store_pool *p, struct store *s, bool broken);
