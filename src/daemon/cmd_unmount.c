/* cmd_unmount.c — `boxd unmount`: undo the shared self-binds of the
 * appsdata and volumes roots, as `boxd serve` does when it stops
 * (services/mounts.h). For a state dir left behind while a container still
 * received the roots' mounts: once that container is gone, this frees the
 * state dir for `rm -rf`. Exit 0 when no self-bind is left, 1 otherwise. */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "services/mounts.h"

int cmd_unmount(const struct boxd_config *cfg, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: boxd [--state-dir DIR] [--config FILE] unmount\n");
		return 2;
	}
	char report[1400] = "";
	int r = services_release_roots(cfg, report, sizeof(report));
	if (*report)
		printf("%s\n", report);
	if (r < 0)
		return 1;
	/* Whatever stayed mounted is named in the report: check again. */
	const char *roots[] = { cfg->appsdata_root, cfg->volumes_root };
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		char why[600];
		if (mount_release_shared(roots[i], why, sizeof(why)) != 0 || *why)
			return 1;
	}
	return 0;
}
