/* store_open.c — see store_open.h. */
#include "store_open.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int store_open_config(const struct boxd_config *cfg, unsigned flags, struct store **ret, char *err, size_t errlen)
{
	struct store_options o = { .relaxed_durability = flags & STORE_OPEN_RELAXED,
				   .no_migrate = flags & STORE_OPEN_NO_MIGRATE };
	if (store_backend_from_string(cfg->store_backend, &o.backend) < 0) {
		snprintf(err, errlen, "unknown store backend '%s' (use sqlite, mysql or postgres)", cfg->store_backend);
		return -EINVAL;
	}
	if (o.backend == STORE_BACKEND_SQLITE) {
		if (mkdir(cfg->state_dir, 0750) < 0 && errno != EEXIST) {
			int e = errno;
			snprintf(err, errlen, "cannot create state dir %s: %s", cfg->state_dir, strerror(e));
			return -e;
		}
		o.sqlite_path = cfg->sqlite_path;
	} else {
		o.dsn = cfg->dsn;
	}
	return store_open(&o, ret, err, errlen);
}
