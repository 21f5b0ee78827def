/* boxctl.h — what every boxctl command shares: the context, exit codes, the
 * command table, and the REST API helpers (api.c).
 *
 * Adding a command is one entry in the table in boxctl.c and one function
 * `int cmd_xxx(struct cli *cli, int argc, char **argv)` declared below. The
 * dispatcher has already handled the global options (--socket, --url,
 * --token, --json, wherever they were on the command line) and `--help`/`-h`
 * (it prints the entry's usage and help and exits 0), so the function only
 * parses its own options. argv[0] is the last word of the command's name;
 * getopt_long() can be used directly (optind is reset). The function returns
 * the process exit code (CLI_EXIT_*). Usage errors go through
 * cli_usage_error(), API errors through api_call() or api_report().
 */
#pragma once

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"

enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_API = 1,      /* boxd answered with an error, or a task failed */
	CLI_EXIT_USAGE = 2,    /* bad command line */
	CLI_EXIT_CONNECT = 3,  /* cannot reach boxd, or lost it */
	CLI_EXIT_TIMEOUT = 4,  /* `task wait --timeout` ran out */
};

struct cli_command;

struct cli {
	struct http_client *http;
	const char *target;              /* where boxd is, for messages: socket path or URL */
	bool via_socket;                 /* target is a unix socket */
	bool have_token;                 /* a bearer token is sent */
	bool json;                       /* --json: raw JSON answers for scripts */
	const struct cli_command *cmd;   /* the command being run */
};

struct cli_command {
	const char *name;    /* "task list": words matched against the command line */
	const char *args;    /* synopsis after the name, e.g. "ID [-f]"; "" if none */
	const char *summary; /* one line for `boxctl --help` */
	const char *help;    /* more for `boxctl NAME --help` (options, notes); may be NULL */
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* The command table (boxctl.c), in the order `boxctl --help` lists it: for
 * `boxctl completion` (cmd_completion.c). */
const struct cli_command *cli_command_table(size_t *ret_n);

/* ---- helpers for commands (boxctl.c) --------------------------------------- */

/* Print "boxctl NAME: <message>" and the command's usage line to stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report what getopt_long() returned as an error ('?' or ':', with an
 * optstring that starts with ':'): returns CLI_EXIT_USAGE. */
int cli_bad_option(const struct cli *cli, int c, char **argv);

/* Positional arguments: check that argv[optind..argc-1] holds min..max of
 * them (after getopt_long() is done). Returns 0 or a usage error. */
int cli_positionals(const struct cli *cli, int argc, char **argv, int min, int max);

/* For a command without options: reject any option, then
 * cli_positionals(). The arguments are then argv[optind..]. */
int cli_no_options(const struct cli *cli, int argc, char **argv, int min, int max);

/* Parse a task id (a positive integer). Returns 0, or a usage error. */
int cli_parse_id(const struct cli *cli, const char *s, int64_t *ret);

/* ---- the REST API (api.c) ---------------------------------------------------- */

struct api_answer {
	long status;
	char *raw;    /* the body as received, NUL-terminated */
	size_t len;
	json_t *json; /* the body parsed, or NULL if it is not JSON (or empty) */
};

void api_answer_release(struct api_answer *a);

/* Send a request and read the answer, whatever its status. `body` (borrowed,
 * may be NULL) is sent as JSON. Returns 0 with *ret filled, or a negative
 * errno from http_request() with a reason in err. Prints nothing. */
int api_request(struct cli *cli, const char *method, const char *path, json_t *body, struct api_answer *ret,
		char *err, size_t errlen);

/* api_request(), and if anything went wrong, say so: "boxctl: <the API's
 * message>" for an error answer (returns CLI_EXIT_API), or the connection
 * error (CLI_EXIT_CONNECT). Returns 0 only for a 2xx answer, with *ret
 * filled; otherwise *ret is left released. */
int api_call(struct cli *cli, const char *method, const char *path, json_t *body, struct api_answer *ret);

/* Print the error an answer carries ("boxctl: no task 99"); returns
 * CLI_EXIT_API. */
int api_report(const struct cli *cli, const struct api_answer *a);

/* Print a transport failure ("cannot reach boxd at ...: ... — is the daemon
 * running?"); returns CLI_EXIT_CONNECT. */
int api_report_transport(const struct cli *cli, int err, const char *why);

/* For --json: print the raw answer (and a newline) to stdout. */
void api_print_raw(const struct api_answer *a);

/* How a command that shows what one GET returns begins: api_call() and,
 * with --json, the raw answer printed. Returns true when the caller is to
 * show *ret itself (then it releases it); false when all is done, with
 * the exit code in *ret_code:
 *
 *	struct api_answer a;
 *	if (!api_get_to_show(cli, "/api/v1/status", &a, &r))
 *		return r;
 */
bool api_get_to_show(struct cli *cli, const char *path, struct api_answer *ret, int *ret_code);

/* ---- commands ------------------------------------------------------------------- */

int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_task_list(struct cli *cli, int argc, char **argv);
int cmd_task_show(struct cli *cli, int argc, char **argv);
int cmd_task_logs(struct cli *cli, int argc, char **argv);
int cmd_task_stop(struct cli *cli, int argc, char **argv);
int cmd_task_wait(struct cli *cli, int argc, char **argv);
int cmd_lock_hold(struct cli *cli, int argc, char **argv);
int cmd_locks(struct cli *cli, int argc, char **argv);
int cmd_hosts(struct cli *cli, int argc, char **argv);
int cmd_service_list(struct cli *cli, int argc, char **argv);
int cmd_service_show(struct cli *cli, int argc, char **argv);
int cmd_service_restart(struct cli *cli, int argc, char **argv);
int cmd_service_rebuild(struct cli *cli, int argc, char **argv);
int cmd_app_list(struct cli *cli, int argc, char **argv);
int cmd_app_show(struct cli *cli, int argc, char **argv);
int cmd_app_install(struct cli *cli, int argc, char **argv);
int cmd_app_uninstall(struct cli *cli, int argc, char **argv);
int cmd_app_move(struct cli *cli, int argc, char **argv);
int cmd_app_restart(struct cli *cli, int argc, char **argv);
int cmd_app_start(struct cli *cli, int argc, char **argv);
int cmd_app_stop(struct cli *cli, int argc, char **argv);
int cmd_app_configure(struct cli *cli, int argc, char **argv);
int cmd_app_env_list(struct cli *cli, int argc, char **argv);
int cmd_app_logs(struct cli *cli, int argc, char **argv);
int cmd_app_env_set(struct cli *cli, int argc, char **argv);
int cmd_app_env_unset(struct cli *cli, int argc, char **argv);
int cmd_app_update(struct cli *cli, int argc, char **argv);
int cmd_volume_list(struct cli *cli, int argc, char **argv);
int cmd_volume_add(struct cli *cli, int argc, char **argv);
int cmd_volume_remove(struct cli *cli, int argc, char **argv);
int cmd_app_backup(struct cli *cli, int argc, char **argv);
int cmd_app_restore(struct cli *cli, int argc, char **argv);
int cmd_backup_list(struct cli *cli, int argc, char **argv);
int cmd_backup_create(struct cli *cli, int argc, char **argv);
int cmd_update_apply(struct cli *cli, int argc, char **argv);
int cmd_box_restore(struct cli *cli, int argc, char **argv);
int cmd_box_restore_status(struct cli *cli, int argc, char **argv);
int cmd_events(struct cli *cli, int argc, char **argv);
int cmd_completion(struct cli *cli, int argc, char **argv);

/* Follow task `id` until it ends (task_wait.c): a progress bar on a TTY,
 * plain lines otherwise, the final task object with --json. timeout_ms < 0:
 * no limit. Returns CLI_EXIT_OK if it succeeded, CLI_EXIT_API if it failed or
 * was cancelled (the error is printed), CLI_EXIT_TIMEOUT, CLI_EXIT_CONNECT. */
int cli_task_wait(struct cli *cli, int64_t id, int64_t timeout_ms);

/* The task id of a 202 {"taskId": N} answer (0 if it has none). */
int64_t cli_answer_task_id(const struct api_answer *a);

/* After a 202 {taskId}: print `line` for people (or the raw answer with
 * --json when not waiting), release the answer, and with `wait` follow the
 * task (cli_task_wait). An answer without a task id is an API error. */
int cli_task_started(struct cli *cli, struct api_answer *a, bool wait, const char *line);

/* cli_task_started() with the line "WHAT: task N". */
int cli_task_started_as(struct cli *cli, struct api_answer *a, bool wait, const char *what);
