/* cmd_app_logs.c — `boxctl app logs ID [-f] [--tail N]`: an app container's
 * output, as the engine keeps it, or followed (the SSE stream of
 * GET /api/v1/apps/:id/logs?follow=1, routes_app_logs.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "sse.h"

static int follow_logs(struct cli *cli, const char *id, const char *path)
{
	json_t *end;
	int code = cli_follow_log(cli, path, &end);
	if (code != CLI_EXIT_OK)
		return code;
	const char *st = json_string_value(json_object_get(end, "state"));
	const char *msg = json_string_value(json_object_get(json_object_get(end, "error"), "message"));
	if (!end) {
		fprintf(stderr, "boxctl: the log stream of app %s ended before its container stopped (boxd stopped?)\n",
			id);
		code = CLI_EXIT_CONNECT;
	} else if (msg && *msg) {
		fprintf(stderr, "boxctl: %s\n", msg);
		code = CLI_EXIT_API;
	} else {
		fprintf(stderr, "boxctl: app %s's container is %s (exit code %d)\n", id, st ? st : "unknown",
			(int)json_integer_value(json_object_get(end, "exitCode")));
	}
	json_decref(end);
	return code;
}

int cmd_app_logs(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "tail", required_argument, NULL, 'n' },
		{ "follow", no_argument, NULL, 'f' },
		{ 0 },
	};
	const char *tail = NULL;
	bool follow = false;
	int c;
	while ((c = getopt_long(argc, argv, ":n:f", options, NULL)) != -1) {
		if (c == 'n')
			tail = optarg;
		else if (c == 'f')
			follow = true;
		else
			return cli_bad_option(cli, c, argv);
	}
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r)
		return r;
	if (tail && (!*tail || strspn(tail, "0123456789") != strlen(tail)))
		return cli_usage_error(cli, "--tail takes a number of lines");
	const char *id = argv[optind];
	char path[300];
	snprintf(path, sizeof(path), "/api/v1/apps/%s/logs?follow=%d%s%s", id, follow ? 1 : 0, tail ? "&tail=" : "",
		 tail ? tail : "");
	if (follow)
		return follow_logs(cli, id, path);
	struct api_answer a;
	if ((r = api_call(cli, "GET", path, NULL, &a)))
		return r;
	fwrite(a.raw, 1, a.len, stdout);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}
