/* cli_common.h — what every `boxd` subcommand shares: global options, the
 * configuration and the store it names. */
#pragma once

#include <stdbool.h>

#include "common/config.h"
#include "store/store.h"

struct boxd_globals {
	const char *state_dir_flag; /* --state-dir, or NULL */
	const char *config_path;    /* --config, or NULL */
};

/* Load the configuration (file, environment, --state-dir). Prints the
 * reason and returns negative errno on failure. */
int boxd_load_config(const struct boxd_globals *g, struct boxd_config *cfg);

/* Open the store the configuration names (SQLite at <state_dir>/boxd.db by
 * default), creating the state dir if needed. Prints the reason and returns
 * negative errno on failure. */
int boxd_open_store(const struct boxd_config *cfg, bool relaxed_durability, struct store **ret);

/* Every task type this binary knows (built-ins and the modules'). */
void boxd_register_task_types(void);

/* The command line boxd was started with (NULL-terminated), for a re-exec
 * of the daemon into a new release. */
char *const *boxd_original_argv(void);

/* Subcommands: argv[0] is the subcommand's own name. Return the exit code. */
int cmd_locks(const struct boxd_config *cfg, int argc, char **argv);
int cmd_serve(const struct boxd_globals *g, int argc, char **argv);
int cmd_task(const struct boxd_config *cfg, int argc, char **argv);
int cmd_token(const struct boxd_config *cfg, int argc, char **argv);
int cmd_unmount(const struct boxd_config *cfg, int argc, char **argv);
int cmd_restore(const struct boxd_config *cfg, int argc, char **argv);
