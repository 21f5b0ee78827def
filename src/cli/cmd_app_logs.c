/* cmd_app_logs.c — `boxctl app logs ID [-f] [--tail N]`: an app container's
 * output, as the engine keeps it, or followed (the SSE stream of
 * GET /api/v1/apps/:id/logs?follow=1, routes_app_logs.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "sse.h"

struct follow {
	struct sse_parser sse;
	bool ended;             /* an "end" event came */
	char state[32];         /* the container's state then */
	int exit_code;
	char error[600];        /* the engine's failure, "" none */
};

static int follow_data(const char *event, const char *data, void *userdata)
{
	struct follow *f = userdata;
	if (strcmp(event, "end") == 0) {
		json_t *v = json_loads(data, 0, NULL);
		const char *st = json_string_value(json_object_get(v, "state"));
		const char *msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
		f->ended = true;
		snprintf(f->state, sizeof(f->state), "%s", st ? st : "unknown");
		f->exit_code = (int)json_integer_value(json_object_get(v, "exitCode"));
		snprintf(f->error, sizeof(f->error), "%s", msg ? msg : "");
		json_decref(v);
		return 0;
	}
	if (*event)
		return 0; /* an event this boxctl does not know */
	if (fputs(data, stdout) == EOF || fputc('\n', stdout) == EOF)
		return -EPIPE;
	return 0;
}

static int follow_chunk(const char *data, size_t len, void *userdata)
{
	struct follow *f = userdata;
	int r = sse_feed(&f->sse, data, len);
	fflush(stdout);
	return r;
}

static int follow_logs(struct cli *cli, const char *id, const char *path)
{
	char err[512];
	struct follow f = { 0 };
	sse_init(&f.sse, follow_data, &f);
	struct http_request req = { .method = "GET", .path = path, .on_chunk = follow_chunk, .userdata = &f };
	struct http_response resp = { 0 };
	int code;
	int r = http_request(cli->http, &req, &resp, err, sizeof(err));
	if (r == -EPIPE) {
		code = CLI_EXIT_API; /* stdout went away: nobody to tell */
	} else if (r < 0) {
		code = api_report_transport(cli, r, err);
	} else if (resp.status < 200 || resp.status >= 300) {
		struct api_answer a = { .status = resp.status, .raw = resp.body, .len = resp.len };
		a.json = json_loadb(resp.body, resp.len, 0, NULL);
		code = api_report(cli, &a);
		json_decref(a.json);
	} else if (!f.ended) {
		fprintf(stderr, "boxctl: the log stream of app %s ended before its container stopped (boxd stopped?)\n",
			id);
		code = CLI_EXIT_CONNECT;
	} else if (f.error[0]) {
		fprintf(stderr, "boxctl: %s\n", f.error);
		code = CLI_EXIT_API;
	} else {
		fprintf(stderr, "boxctl: app %s's container is %s (exit code %d)\n", id, f.state, f.exit_code);
		code = CLI_EXIT_OK;
	}
	http_response_release(&resp);
	sse_release(&f.sse);
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
