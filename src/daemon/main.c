/* main.c — the `boxd` program: global options and subcommand dispatch. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_common.h"
#include "common/argv_secrets.h"
#include "common/log.h"
#include "tasks/store_open.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: boxd [--state-dir DIR] [--config FILE] COMMAND ...\n"
		"\n"
		"commands:\n"
		"  serve [--socket PATH] [--listen HOST:PORT] [--log-level L] [--store B] [--dsn DSN]\n"
		"        [--task-user U] [--app-concurrency N] [--timeout TYPE=DURATION]...\n"
		"        [--engine-socket PATH]\n"
		"                                         run the daemon in the foreground\n"
		"  task run ID                            run one task (what the daemon spawns)\n"
		"  token create NAME | list | revoke NAME API tokens for TCP clients\n"
		"  locks list [--json]                    show held locks and the wait queue\n"
		"  locks hold NAME[:shared|:exclusive]... --for SECONDS [--wait SECONDS]\n"
		"                                         take locks as this process, hold, release\n"
		"  locks reap                             free locks of dead owners\n"
		"  locks repair                           repair a lock document that does not parse\n"
		"  unmount                                undo the shared self-binds of the roots that\n"
		"                                         nothing uses (boxd serve does it when it stops)\n"
		"  restore --from sftp://USER@HOST[:PORT]/PATH|DIR [--backup ID] [--key FILE]\n"
		"        [--passphrase-file FILE] [--ssh-key FILE] [--known-hosts FILE]\n"
		"        [--appsdata-root DIR] [--volumes-root DIR] [--force]\n"
		"                                         the whole box from a full backup (daemon stopped)\n"
		"  version                                print the version\n"
		"\n"
		"The state dir defaults to $BOXD_STATE_DIR, else /var/lib/boxd; a relative one is\n"
		"taken from the working directory. The engine socket: --engine-socket, else\n"
		"$BOXD_ENGINE_SOCKET, else [engine] socket, else DOCKER_HOST=unix://PATH.\n");
}

int boxd_load_config(const struct boxd_globals *g, struct boxd_config *cfg)
{
	char err[512];
	int r = config_load(cfg, g->config_path, g->state_dir_flag, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "boxd: %s\n", err);
	/* [host] id reaches host_id_get() — of this process, its workers and
	 * a re-exec — through the environment. */
	else if (cfg->host_id)
		setenv("BOXD_HOST_ID", cfg->host_id, 1);
	return r;
}

int boxd_open_store(const struct boxd_config *cfg, bool relaxed, struct store **ret)
{
	char err[512];
	int r = store_open_config(cfg, relaxed ? STORE_OPEN_RELAXED : 0, ret, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "boxd: cannot open the store: %s\n", err);
	return r;
}

/* argv as boxd was started, before the option handling below rewrites it:
 * an update re-executes the daemon with it (serve.c). */
static char **original_argv;

char *const *boxd_original_argv(void) { return original_argv; }

static void save_argv(int argc, char **argv)
{
	original_argv = calloc((size_t)argc + 1, sizeof(*original_argv));
	for (int i = 0; original_argv && i < argc; i++)
		original_argv[i] = strdup(argv[i]);
}

int main(int argc, char **argv)
{
	struct boxd_globals g = { 0 };
	/* The database holds app secrets, the logs what tasks print: nothing
	 * boxd creates is for other users (the socket widens its own mode;
	 * see state_dir.h for what existed before). */
	umask(077);
	/* ps shows argv to every local user: a --dsn (its password) goes to
	 * the environment instead, where config_load() finds it, and so does
	 * a re-exec of the daemon, which reuses the argv saved below. */
	static const struct argv_secret secrets[] = { { "--dsn", "BOXD_STORE_DSN" }, { NULL, NULL } };
	if (argv_hide_secrets(&argc, argv, secrets) < 0) {
		fprintf(stderr, "boxd: cannot move --dsn into the environment\n");
		return 1;
	}
	save_argv(argc, argv);

	/* --state-dir and --config are accepted anywhere on the command line
	 * (before or after the subcommand); pull them out first. */
	int kept = 1;
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		const char *val = NULL;
		if (strcmp(argv[i], "--state-dir") == 0 || strcmp(argv[i], "--config") == 0) {
			slot = argv[i][2] == 's' ? &g.state_dir_flag : &g.config_path;
			if (i + 1 >= argc) {
				fprintf(stderr, "boxd: %s needs a value\n", argv[i]);
				return 2;
			}
			val = argv[++i];
		} else if (strncmp(argv[i], "--state-dir=", 12) == 0) {
			slot = &g.state_dir_flag;
			val = argv[i] + 12;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			slot = &g.config_path;
			val = argv[i] + 9;
		} else if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[kept++] = argv[i++];
			break;
		}
		if (slot)
			*slot = val;
		else
			argv[kept++] = argv[i];
	}
	argc = kept;
	argv[argc] = NULL;
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	optind = 1;
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	optind = 1; /* subcommands run getopt again on their own argv */

	if (strcmp(cmd, "version") == 0) {
		printf("boxd %s\n", BOXD_VERSION);
		return 0;
	}
	boxd_register_task_types();
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(&g, sub_argc, sub_argv);

	struct boxd_config cfg;
	if (boxd_load_config(&g, &cfg) < 0)
		return 1;
	int code = 2;
	if (strcmp(cmd, "locks") == 0)
		code = cmd_locks(&cfg, sub_argc, sub_argv);
	else if (strcmp(cmd, "task") == 0)
		code = cmd_task(&cfg, sub_argc, sub_argv);
	else if (strcmp(cmd, "token") == 0)
		code = cmd_token(&cfg, sub_argc, sub_argv);
	else if (strcmp(cmd, "unmount") == 0)
		code = cmd_unmount(&cfg, sub_argc, sub_argv);
	else if (strcmp(cmd, "restore") == 0)
		code = cmd_restore(&cfg, sub_argc, sub_argv);
	else {
		fprintf(stderr, "boxd: unknown command '%s'\n", cmd);
		usage(stderr);
	}
	config_release(&cfg);
	return code;
}
