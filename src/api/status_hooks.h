/* status_hooks.h — parts of /api/v1/status that other modules fill in. */
#pragma once

#include <jansson.h>

#include "common/config.h"

/* {"reachable": bool, "socket": ..., "version": ..., "error": ...}. */
json_t *api_status_engine(const struct boxd_config *cfg);
