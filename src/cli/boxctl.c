/* boxctl.c — the `boxctl` program: global options, the command table and
 * dispatch. The commands live in cmd_*.c; see boxctl.h for how to add one. */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "common/argv_secrets.h"

#define DEFAULT_SOCKET "/var/lib/boxd/boxd.sock"

/* Commands, in the order `boxctl --help` lists them. A name of several words
 * is a subcommand ("task list"); its first word groups it. */
static const struct cli_command commands[] = {
	{ "status", "", "show the daemon: version, host, store, engine, uptime, task counts", NULL, cmd_status },
	{ "task list", "[--type T] [--state S] [--app ID] [--page N] [--per-page N]", "list tasks, newest first",
	  "  --type T       only tasks of type T (hold, install, fullbackup, ...)\n"
	  "  --state S      queued, waiting, running, succeeded, failed, cancelled, or active\n"
	  "                 (queued, waiting and running)\n"
	  "  --app ID       only tasks of app ID\n"
	  "  --page N       page N (from 1) of --per-page tasks (default 50, at most 1000)\n",
	  cmd_task_list },
	{ "task show", "ID", "show every field of a task", NULL, cmd_task_show },
	{ "task logs", "ID [-f]", "print a task's log",
	  "  -f, --follow   follow the log until the task ends; exit 0 if it succeeded, else 1\n"
	  "The log is text: --json does not change it.\n",
	  cmd_task_logs },
	{ "task stop", "ID", "stop a task (its worker gets SIGTERM, its locks are released)", NULL, cmd_task_stop },
	{ "task wait", "ID [--timeout DURATION]", "wait for a task to end, with a progress bar",
	  "  --timeout D    give up after D (30, 30s, 5m, 1h); exit 4 then\n"
	  "Exit 0 if the task succeeded, 1 if it failed or was cancelled (the error is printed).\n"
	  "With --json, print the final task object instead of the progress.\n",
	  cmd_task_wait },
	{ "lock hold", "NAME[:shared|:exclusive]... --for DURATION [--wait]",
	  "hold locks for a while (a `hold` task): a maintenance window",
	  "  --for D        how long to hold them once taken: 30, 30s, 5m, 1h\n"
	  "  --wait         wait for the task to end, like `task wait`\n"
	  "Locks are exclusive unless :shared is given; the task waits its turn for them.\n"
	  "Release them early with `boxctl task stop ID`.\n",
	  cmd_lock_hold },
	{ "locks", "", "show held locks and the wait queue", NULL, cmd_locks },
	{ "hosts", "", "list the hosts sharing the store: alive or gone by their heartbeat (* this one)", NULL,
	  cmd_hosts },
	{ "service list", "", "list the services (sftp): state, health, whether the container is up to date", NULL,
	  cmd_service_list },
	{ "service show", "NAME", "show a service: its container, health, mounts and spec hash", NULL, cmd_service_show },
	{ "service restart", "NAME [--wait]", "restart a service's container (same container, never a rebuild)",
	  "  --wait         wait for the task to end, like `task wait`\n", cmd_service_restart },
	{ "service rebuild", "NAME [--force] [--wait]", "recreate a service's container if its spec changed",
	  "  --force        recreate it even if its spec did not change\n"
	  "  --wait         wait for the task to end, like `task wait`, then say what it did\n"
	  "A bind source that does not exist fails the rebuild (it is never created).\n",
	  cmd_service_rebuild },
	{ "app list", "", "list apps", NULL, cmd_app_list },
	{ "app show", "ID", "show an app", NULL, cmd_app_show },
	{ "app install", "ID --image IMAGE [--env K=V]... [--data-dir PATH] [--port H:C[/udp]]... [--domain D]... "
	  "[--http-port N] [--host HOST] [--wait]", "install an app",
	  "  --data-dir PATH   a custom data dir outside the appsdata root\n"
	  "  --port H:C        publish container port C on host port H (every address)\n"
	  "  --domain D        serve the app at https://D through the proxy service\n"
	  "  --http-port N     the container port the domains go to (80)\n"
	  "  --host HOST       the host the app lives on (boxctl hosts; default: this one)\n", cmd_app_install },
	{ "app move", "ID --to HOST [--wait]",
	  "move an app to another host: backed up and removed on its host, restored on HOST", NULL, cmd_app_move },
	{ "app uninstall", "ID [--no-backup] [--yes] [--wait]",
	  "uninstall an app: its container and its data dir (a final backup is kept first)", NULL, cmd_app_uninstall },
	{ "app restart", "ID [--wait]", "restart an app's container", NULL, cmd_app_restart },
	{ "app stop", "ID [--wait]", "stop an app; it stays stopped (also across a restart of boxd) until started",
	  NULL, cmd_app_stop },
	{ "app start", "ID [--wait]", "start an app that was stopped (or whose container stopped)", NULL, cmd_app_start },
	{ "app configure", "ID [--env K=V... --replace-all] [--data-dir PATH | --default-data-dir] "
	  "[--port H:C[/udp]... | --no-ports] [--domain D... | --no-domains] [--http-port N] [--wait]",
	  "replace an app's whole env, move its data dir (the data is kept), change its ports or domains",
	  "  --replace-all  needed with --env: the variables not given are removed\n"
	  "                 (to change some and keep the rest: app env set)\n"
	  "  --port, --domain  the app's whole list of ports or domains (--no-ports,\n"
	  "                 --no-domains: none); a domain change moves only routes\n", cmd_app_configure },
	{ "app env list", "ID", "show an app's env variables", NULL, cmd_app_env_list },
	{ "app logs", "ID [-f] [--tail N]", "print an app container's output (stdout and stderr)",
	  "  --tail N       only the last N lines\n"
	  "  -f, --follow   go on printing what it writes until it stops (or Ctrl-C);\n"
	  "                 exit 0 when it stopped, 3 when boxd went away first\n", cmd_app_logs },
	{ "app env set", "ID K=V... [--wait]", "set env variables of an app; the others stay", NULL,
	  cmd_app_env_set },
	{ "app env unset", "ID K... [--wait]", "remove env variables of an app; the others stay", NULL,
	  cmd_app_env_unset },
	{ "app update", "ID --image IMAGE [--wait]", "recreate an app's container from a new image (data kept)", NULL,
	  cmd_app_update },
	{ "app backup", "ID [--wait]", "back up an app's data dir (live: the app keeps running)",
	  "  --wait         wait for the task to end, like `task wait`\n", cmd_app_backup },
	{ "app restore", "ID BACKUP_ID [--wait]", "replace an app's data dir with one of its backups",
	  "  --wait         wait for the task to end, like `task wait`\n"
	  "The backup's SHA-256 is checked first: a damaged or missing archive is refused and\n"
	  "nothing changes. Then the app is stopped, its data dir's contents swapped (the dir\n"
	  "itself stays, so sftp keeps showing it), and started again.\n",
	  cmd_app_restore },
	{ "volume list", "", "list volumes", NULL, cmd_volume_list },
	{ "volume add", "ID [--name N] [--host-path PATH] [--mountpoint | --bind DIR | --fs TYPE --source S [--options O]]",
	  "add a volume",
	  "  --mountpoint  the host mounts something there at its leisure (boxd does not create it;\n"
	  "                read-only over sftp until then)\n"
	  "  --bind DIR    boxd binds the existing host directory DIR there (again at every start)\n"
	  "  --fs TYPE     boxd mounts S there with mount -t TYPE (ext4, xfs, btrfs, cifs, nfs, nfs4),\n"
	  "                options O plus nosuid,nodev (again at every start)\n",
	  cmd_volume_add },
	{ "volume remove", "ID", "forget a volume (its data on the host is kept)", NULL, cmd_volume_remove },
	{ "backup list", "[--app ID]", "list backups, newest first (full backups, box state, apps)",
	  "  --app ID       only the backups of app ID\n", cmd_backup_list },
	{ "backup create", "[--wait]", "start a full backup: the box state, then every installed app",
	  "  --wait         wait for the task to end, like `task wait`\n"
	  "Apps are backed up one at a time, live; only the app being archived waits for it.\n",
	  cmd_backup_create },
	{ "box restore",
	  "--from sftp://USER@HOST[:PORT]/PATH|DIR [--backup ID] [--key F|--passphrase-file F] [--ssh-key F] "
	  "[--known-hosts F] [--appsdata-root D] [--volumes-root D] [--force] [--wait]",
	  "restore the whole box from a full backup (an empty box; boxd restarts on it)",
	  "  --backup ID    that full backup (default: the newest complete one)\n"
	  "  --key F, --passphrase-file F   the key of encrypted backups (default: the config's)\n"
	  "  --ssh-key F, --known-hosts F   for an sftp:// source (default: the config's)\n"
	  "  --appsdata-root D, --volumes-root D   where custom data dirs / outside volumes land\n"
	  "  --force        restore over a box that has apps or volumes\n"
	  "  --wait         follow it until boxd runs on the restored box; exit 1 if it failed\n"
	  "Paths are files on the server. Every archive is verified before anything changes;\n"
	  "meanwhile boxd answers other changes with 503 `restoring`.\n",
	  cmd_box_restore },
	{ "box restore-status", "[--wait]", "show (or follow) the latest box restore",
	  "  --wait         follow it until it ends\n", cmd_box_restore_status },
	{ "update apply", "FILE [--skip-backup] [--sha256 HEX] [--wait]", "update boxd to the release in FILE",
	  "  --skip-backup  do not make a full backup first\n"
	  "  --sha256 HEX   the package's expected SHA-256 (default: computed from FILE here)\n"
	  "  --wait         wait for the task to end, like `task wait` (it survives boxd's re-exec)\n"
	  "FILE is a .tar.gz or .tar.zst holding manifest.json, bin/boxd and bin/boxctl. boxd\n"
	  "verifies it, backs up, waits for running app tasks, unpacks it under the install\n"
	  "root, switches `current` and re-executes itself into it.\n",
	  cmd_update_apply },
	{ "events", "[--kind KIND]...", "follow the live feed of changes (tasks, locks, apps, services, ...)",
	  "  --kind KIND    only events of KIND: task, lock, app, volumes, service, backups,\n"
	  "                 resync (repeatable)\n"
	  "One line per change as it happens: KIND and its JSON (with --json: {\"event\",\"data\"}).\n"
	  "The feed the web dashboard runs on (GET /api/v1/events). Runs until interrupted;\n"
	  "exits 3 when boxd ends the stream.\n",
	  cmd_events },
	{ "completion", "bash|zsh", "print a shell completion script for boxctl, made from this command list",
	  "  bash: source <(boxctl completion bash)\n"
	  "  zsh:  boxctl completion zsh > \"${fpath[1]}/_boxctl\"\n"
	  "`make install` and the Debian package install both scripts.\n",
	  cmd_completion },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct cli_command *cli_command_table(size_t *ret_n)
{
	*ret_n = N_COMMANDS;
	return commands;
}

/* ---- usage ----------------------------------------------------------------- */

static void print_command_line(FILE *f, const struct cli_command *c)
{
	char synopsis[256];
	snprintf(synopsis, sizeof(synopsis), "%s%s%s", c->name, *c->args ? " " : "", c->args);
	if (strlen(synopsis) <= 34)
		fprintf(f, "  %-34s  %s\n", synopsis, c->summary);
	else
		fprintf(f, "  %s\n  %-34s  %s\n", synopsis, "", c->summary);
}

/* Print the commands whose first word is `group` (all if NULL). */
static void print_commands(FILE *f, const char *group)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		size_t n = strcspn(commands[i].name, " ");
		if (!group || (strlen(group) == n && strncmp(commands[i].name, group, n) == 0))
			print_command_line(f, &commands[i]);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: boxctl [--socket PATH | --url URL [--token TOKEN] [--cacert FILE]] [--json] COMMAND ...\n"
		   "\n"
		   "commands:\n");
	print_commands(f, NULL);
	fprintf(f, "\n"
		   "options (anywhere on the command line):\n"
		   "  --socket PATH   boxd's unix socket (default $BOXD_SOCKET, else " DEFAULT_SOCKET ")\n"
		   "  --url URL       talk to boxd over TCP instead, e.g. http://127.0.0.1:8640\n"
		   "                  (https:// when boxd has [api] tls_cert)\n"
		   "  --token TOKEN   API token for --url (default $BOXD_TOKEN)\n"
		   "  --cacert FILE   trust the certificates in FILE (PEM) for https:// (default\n"
		   "                  $BOXD_CACERT, else the system's)\n"
		   "  --json          print the API's JSON answers as they are, for scripts\n"
		   "\n"
		   "exit codes: 0 ok, 1 boxd refused or the task failed, 2 bad usage, 3 cannot reach boxd,\n"
		   "4 timeout. `boxctl COMMAND --help` tells more about a command.\n");
}

static void command_help(FILE *f, const struct cli_command *c)
{
	fprintf(f, "usage: boxctl %s%s%s\n\n%s\n", c->name, *c->args ? " " : "", c->args, c->summary);
	if (c->help)
		fprintf(f, "\n%s", c->help);
}

/* ---- helpers for commands --------------------------------------------------- */

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "boxctl %s: ", cli->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: boxctl %s%s%s\n", cli->cmd->name, *cli->cmd->args ? " " : "", cli->cmd->args);
	return CLI_EXIT_USAGE;
}

int cli_bad_option(const struct cli *cli, int c, char **argv)
{
	/* getopt leaves the offending word at argv[optind - 1] for long
	 * options and for a missing value; a bad short option is in optopt. */
	const char *word = optind > 0 ? argv[optind - 1] : "?";
	if (c == ':')
		return cli_usage_error(cli, "option %s needs a value", word);
	if (optopt > 0 && optopt < 128 && strncmp(word, "--", 2) != 0)
		return cli_usage_error(cli, "unknown option -%c", optopt);
	return cli_usage_error(cli, "unknown option %s", word);
}

int cli_positionals(const struct cli *cli, int argc, char **argv, int min, int max)
{
	int n = argc - optind;
	if (n < min)
		return cli_usage_error(cli, "missing argument");
	if (n > max)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + max]);
	return 0;
}

int cli_no_options(const struct cli *cli, int argc, char **argv, int min, int max)
{
	static const struct option none[] = { { 0 } };
	int c = getopt_long(argc, argv, ":", none, NULL);
	if (c != -1)
		return cli_bad_option(cli, c, argv);
	return cli_positionals(cli, argc, argv, min, max);
}

int cli_parse_id(const struct cli *cli, const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || errno || *end || end == s || v <= 0)
		return cli_usage_error(cli, "a task ID is a positive integer, not '%s'", s ? s : "");
	*ret = v;
	return 0;
}

/* ---- global options ------------------------------------------------------------ */

struct globals {
	const char *socket_path, *url, *token, *cacert;
	bool json;
};

/* Take the global options out of argv wherever they are (before "--");
 * what remains is compacted to the front. Returns the new argc, or -1 after
 * a usage error. */
static int take_globals(int argc, char **argv, struct globals *g)
{
	static const struct {
		const char *name;
		size_t off;
	} valued[] = {
		{ "--socket", offsetof(struct globals, socket_path) },
		{ "--url", offsetof(struct globals, url) },
		{ "--token", offsetof(struct globals, token) },
		{ "--cacert", offsetof(struct globals, cacert) },
	};
	int kept = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[kept++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0) {
			g->json = true;
			continue;
		}
		bool taken = false;
		for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]) && !taken; k++) {
			size_t n = strlen(valued[k].name);
			const char **slot = (const char **)((char *)g + valued[k].off);
			if (strcmp(argv[i], valued[k].name) == 0) {
				if (i + 1 >= argc) {
					fprintf(stderr, "boxctl: %s needs a value\n", valued[k].name);
					return -1;
				}
				*slot = argv[++i];
				taken = true;
			} else if (strncmp(argv[i], valued[k].name, n) == 0 && argv[i][n] == '=') {
				*slot = argv[i] + n + 1;
				taken = true;
			}
		}
		if (!taken)
			argv[kept++] = argv[i];
	}
	argv[kept] = NULL;
	return kept;
}

/* Decide where boxd is and open the client. Returns 0 or an exit code. */
static int connect_cli(struct cli *cli, const struct globals *g)
{
	struct http_target t = { 0 };
	if (g->url && g->socket_path) {
		fprintf(stderr, "boxctl: --socket and --url exclude each other\n");
		return CLI_EXIT_USAGE;
	}
	if (g->url) {
		if (strncmp(g->url, "http://", 7) != 0 && strncmp(g->url, "https://", 8) != 0) {
			fprintf(stderr, "boxctl: --url takes http://HOST:PORT, not '%s'\n", g->url);
			return CLI_EXIT_USAGE;
		}
		t.base_url = g->url;
		cli->target = g->url;
	} else {
		const char *env = getenv("BOXD_SOCKET");
		t.socket_path = g->socket_path ? g->socket_path : env && *env ? env : DEFAULT_SOCKET;
		cli->target = t.socket_path;
		cli->via_socket = true;
	}
	const char *env_token = getenv("BOXD_TOKEN"), *env_ca = getenv("BOXD_CACERT");
	t.token = g->token ? g->token : env_token;
	t.ca_file = g->cacert ? g->cacert : env_ca && *env_ca ? env_ca : NULL;
	cli->have_token = t.token && *t.token;
	if (http_client_new(&t, &cli->http) < 0) {
		fprintf(stderr, "boxctl: out of memory\n");
		return CLI_EXIT_API;
	}
	return 0;
}

/* ---- dispatch ---------------------------------------------------------------------- */

/* How many words of argv the command's name matches in full, or 0. */
static int name_matches(const char *name, int argc, char **argv)
{
	int words = 0;
	const char *p = name;
	while (*p) {
		size_t n = strcspn(p, " ");
		if (words >= argc || strlen(argv[words]) != n || strncmp(argv[words], p, n) != 0)
			return 0;
		words++;
		p += n;
		p += *p == ' ';
	}
	return words;
}

static bool is_group(const char *word)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		size_t n = strcspn(commands[i].name, " ");
		if (commands[i].name[n] == ' ' && strlen(word) == n && strncmp(commands[i].name, word, n) == 0)
			return true;
	}
	return false;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct globals g = { 0 };
	/* ps shows argv to every local user, for as long as a `task wait`
	 * runs: a --token moves to $BOXD_TOKEN, which connect_cli() reads. */
	static const struct argv_secret secrets[] = { { "--token", "BOXD_TOKEN" }, { NULL, NULL } };
	if (argv_hide_secrets(&argc, argv, secrets) < 0) {
		fprintf(stderr, "boxctl: cannot move --token into the environment\n");
		return CLI_EXIT_USAGE;
	}
	argc = take_globals(argc, argv, &g);
	if (argc < 0)
		return CLI_EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *first = argv[1];
	if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0 || strcmp(first, "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(first, "--version") == 0 || strcmp(first, "version") == 0) {
		printf("boxctl %s\n", BOXD_VERSION);
		return CLI_EXIT_OK;
	}

	const struct cli_command *cmd = NULL;
	int words = 0;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		int w = name_matches(commands[i].name, argc - 1, argv + 1);
		if (w > words) {
			words = w;
			cmd = &commands[i];
		}
	}
	if (!cmd) {
		if (is_group(first)) {
			bool help = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
			if (!help) {
				if (argc > 2)
					fprintf(stderr, "boxctl %s: unknown subcommand '%s'\n", first, argv[2]);
				else
					fprintf(stderr, "boxctl %s: which one?\n", first);
			}
			fprintf(help ? stdout : stderr, "usage:\n");
			print_commands(help ? stdout : stderr, first);
			return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		}
		fprintf(stderr, "boxctl: unknown command '%s' (boxctl --help lists them)\n", first);
		return CLI_EXIT_USAGE;
	}

	/* The command sees its own words only: argv[0] is its last word. */
	int sub_argc = argc - words;
	char **sub_argv = argv + words;
	if (wants_help(sub_argc, sub_argv)) {
		command_help(stdout, cmd);
		return CLI_EXIT_OK;
	}

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "boxctl: cannot initialize libcurl\n");
		return CLI_EXIT_API;
	}
	struct cli cli = { .json = g.json, .cmd = cmd };
	int code = connect_cli(&cli, &g);
	if (code) {
		curl_global_cleanup();
		return code;
	}
	optind = 0; /* glibc: a full re-initialization of getopt */
	opterr = 0; /* the commands report bad options themselves */
	code = cmd->run(&cli, sub_argc, sub_argv);
	http_client_free(cli.http);
	curl_global_cleanup();
	if (fflush(stdout) != 0 && code == CLI_EXIT_OK)
		code = CLI_EXIT_API; /* e.g. a full disk under a redirect */
	return code;
}
