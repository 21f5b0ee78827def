/* reload.h — `systemctl reload boxd` (SIGHUP): the daemon re-reads its
 * configuration where that is safe.
 *
 * The file, the environment and the command line's flags are read again
 * exactly as at start. Taken over at once: [boxd] log_level,
 * [tasks] app_concurrency and stop_grace, [timeouts] (for tasks created
 * from now on). Every other setting that differs is named in the report
 * with who uses it from when: workers read the file themselves when they
 * start, so a key only the daemon reads ([api], ...) needs a restart, one
 * only workers read ([backups]) applies to tasks started from now on, and
 * one both read ([paths], [sftp], ...) reaches workers started from now on
 * and the daemon after a restart.
 */
#pragma once

#include <stddef.h>

#include "common/config.h"
#include "cli_common.h"

typedef int (*serve_flags_fn)(struct boxd_config *cfg, int argc, char **argv);

/* Re-read the configuration into a fresh copy (config_load() with the
 * globals, then apply(argc, argv) for the flags), take the reloadable
 * settings over into `cfg` and describe the rest in `report` ("log_level
 * info -> debug; [store] backend changed: needs a restart"). Returns 0, or
 * a negative errno with the reason in report, `cfg` unchanged. Loop thread
 * only (it is the one that reads those settings, except the timeouts, which
 * API threads read under config_task_timeout_ms()'s lock). */
int serve_reload_config(struct boxd_config *cfg, const struct boxd_globals *g, serve_flags_fn apply, int argc,
			char **argv, char *report, size_t len);
