/* cmd_box.c — `boxctl box restore` and `boxctl box restore-status`: the
 * whole box from a full backup, by the running daemon (POST/GET
 * /api/v1/box/restore, src/api/routes_box.c). The daemon runs `boxd
 * restore` as a child and re-executes itself on the restored store;
 * following it means reading its record until it failed, or succeeded and
 * the daemon answers again. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boxctl.h"

/* How long the daemon may not answer while it re-executes. */
#define GONE_MAX_MS 120000
#define POLL_MS 300

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Follow the record until the restore ended (and, after a success, the
 * daemon serves again). Prints the child's lines as they come. */
static int follow(struct cli *cli)
{
	size_t printed = 0;
	int64_t last_ok = mono_ms();
	for (;;) {
		struct api_answer a;
		char err[512];
		int r = api_request(cli, "GET", "/api/v1/box/restore", NULL, &a, err, sizeof(err));
		if (r < 0) {
			/* The daemon re-executes after a success: it is away a moment. */
			if (mono_ms() - last_ok > GONE_MAX_MS)
				return api_report_transport(cli, r, err);
			pause_ms(POLL_MS);
			continue;
		}
		last_ok = mono_ms();
		if (a.status != 200) {
			r = api_report(cli, &a);
			api_answer_release(&a);
			return r;
		}
		json_t *lines = json_object_get(a.json, "lines");
		if (!cli->json) {
			for (; printed < json_array_size(lines); printed++)
				printf("%s\n", json_string_value(json_array_get(lines, printed)) ?: "");
			fflush(stdout);
		}
		const char *state = json_string_value(json_object_get(a.json, "state")) ?: "";
		if (strcmp(state, "failed") == 0) {
			json_t *e = json_object_get(a.json, "error");
			if (cli->json)
				api_print_raw(&a);
			fprintf(stderr, "boxctl: the box restore failed: %s (%s)\n",
				json_string_value(json_object_get(e, "message")) ?: "?",
				json_string_value(json_object_get(e, "code")) ?: "?");
			api_answer_release(&a);
			return CLI_EXIT_API;
		}
		if (strcmp(state, "succeeded") == 0 && json_is_true(json_object_get(a.json, "restarted"))) {
			json_t *res = json_object_get(a.json, "result");
			if (cli->json)
				api_print_raw(&a);
			else
				printf("Box restored from full backup %lld: %lld apps, %lld volumes; boxd runs on the restored "
				       "store (its platformstart recreates the containers and sftp).\n",
				       (long long)json_integer_value(json_object_get(res, "backupId")),
				       (long long)json_integer_value(json_object_get(res, "apps")),
				       (long long)json_integer_value(json_object_get(res, "volumes")));
			api_answer_release(&a);
			return CLI_EXIT_OK;
		}
		api_answer_release(&a);
		pause_ms(POLL_MS);
	}
}

/* A path for the server: on the unix socket (same machine) a relative one
 * is made absolute here; over TCP it is sent as given (the server wants
 * absolute paths). */
static json_t *server_path(const struct cli *cli, const char *p)
{
	if (!cli->via_socket || p[0] == '/')
		return json_string(p);
	char cwd[PATH_MAX], buf[PATH_MAX * 2];
	if (!getcwd(cwd, sizeof(cwd)))
		return json_string(p);
	snprintf(buf, sizeof(buf), "%s/%s", cwd, p);
	return json_string(buf);
}

int cmd_box_restore(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },	   { "backup", required_argument, NULL, 'b' },
		{ "key", required_argument, NULL, 'K' },	   { "passphrase-file", required_argument, NULL, 'P' },
		{ "ssh-key", required_argument, NULL, 'k' },	   { "known-hosts", required_argument, NULL, 'h' },
		{ "appsdata-root", required_argument, NULL, 'a' }, { "volumes-root", required_argument, NULL, 'v' },
		{ "force", no_argument, NULL, 'F' },		   { "wait", no_argument, NULL, 'w' },
		{ 0, 0, 0, 0 },
	};
	json_t *body = json_object();
	bool wait = false;
	int c, r;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		const char *field = NULL;
		switch (c) {
		case 'f':
			json_object_set_new(body, "from",
					    strncmp(optarg, "sftp://", 7) == 0 ? json_string(optarg) : server_path(cli, optarg));
			break;
		case 'b': {
			char *end;
			errno = 0;
			long long id = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || id <= 0) {
				json_decref(body);
				return cli_usage_error(cli, "--backup takes a full backup's id, not '%s'", optarg);
			}
			json_object_set_new(body, "backup", json_integer(id));
			break;
		}
		case 'K': field = "keyFile"; break;
		case 'P': field = "passphraseFile"; break;
		case 'k': field = "sshKeyFile"; break;
		case 'h': field = "knownHosts"; break;
		case 'a': field = "appsdataRoot"; break;
		case 'v': field = "volumesRoot"; break;
		case 'F': json_object_set_new(body, "force", json_true()); break;
		case 'w': wait = true; break;
		default: json_decref(body); return cli_bad_option(cli, c, argv);
		}
		if (field)
			json_object_set_new(body, field, server_path(cli, optarg));
	}
	if ((r = cli_positionals(cli, argc, argv, 0, 0))) {
		json_decref(body);
		return r;
	}
	if (!json_object_get(body, "from")) {
		json_decref(body);
		return cli_usage_error(cli, "--from sftp://USER@HOST[:PORT]/PATH or --from DIR is required");
	}
	struct api_answer a;
	r = api_call(cli, "POST", "/api/v1/box/restore", body, &a);
	json_decref(body);
	if (r)
		return r;
	if (!wait) {
		if (cli->json)
			api_print_raw(&a);
		else
			printf("box restore started; follow it with `boxctl box restore-status --wait`\n");
		api_answer_release(&a);
		return CLI_EXIT_OK;
	}
	api_answer_release(&a);
	return follow(cli);
}

int cmd_box_restore_status(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "wait", no_argument, NULL, 'w' }, { 0, 0, 0, 0 } };
	bool wait = false;
	int c, r;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'w')
			wait = true;
		else
			return cli_bad_option(cli, c, argv);
	}
	if ((r = cli_positionals(cli, argc, argv, 0, 0)))
		return r;
	if (wait)
		return follow(cli);
	struct api_answer a;
	if ((r = api_call(cli, "GET", "/api/v1/box/restore", NULL, &a)))
		return r;
	if (cli->json) {
		api_print_raw(&a);
	} else {
		json_t *e = json_object_get(a.json, "error");
		printf("state: %s%s\nstep: %s\npercent: %lld\n", json_string_value(json_object_get(a.json, "state")) ?: "?",
		       json_is_true(json_object_get(a.json, "restarted")) ? " (boxd restarted on the restored store)" : "",
		       json_string_value(json_object_get(a.json, "step")) ?: "",
		       (long long)json_integer_value(json_object_get(a.json, "percent")));
		size_t i;
		json_t *l;
		json_array_foreach(json_object_get(a.json, "changed"), i, l)
			printf("changed: %s\n", json_string_value(l));
		if (e)
			printf("error: %s (%s)\n", json_string_value(json_object_get(e, "message")) ?: "?",
			       json_string_value(json_object_get(e, "code")) ?: "?");
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}
