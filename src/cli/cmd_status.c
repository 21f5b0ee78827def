/* cmd_status.c — `boxctl status`: GET /api/v1/status for people. */
#include <stdio.h>

#include "boxctl.h"
#include "format.h"

static const char *str_or(json_t *v, const char *dflt)
{
	const char *s = json_string_value(v);
	return s && *s ? s : dflt;
}

static void print_engine(json_t *engine)
{
	if (!json_is_object(engine)) {
		printf("  engine:   unknown\n");
		return;
	}
	if (json_is_true(json_object_get(engine, "reachable"))) {
		const char *version = json_string_value(json_object_get(engine, "version"));
		const char *api = json_string_value(json_object_get(engine, "apiVersion"));
		printf("  engine:   reachable");
		if (version)
			printf(", version %s", version);
		if (api)
			printf(", API %s", api);
		printf("\n");
		/* Reachable, but not usable (an API version boxd does not speak). */
		const char *err = json_string_value(json_object_get(engine, "error"));
		if (err)
			printf("  engine:   %s\n", err);
	} else {
		printf("  engine:   not reachable: %s\n", str_or(json_object_get(engine, "error"), "no reason given"));
	}
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 0, 0);
	if (r)
		return r;
	struct api_answer a;
	if (!api_get_to_show(cli, "/api/v1/status", &a, &r))
		return r;
	json_t *st = a.json, *tasks = json_object_get(st, "tasks");
	char uptime[32] = "-";
	json_t *up = json_object_get(st, "uptimeSeconds");
	if (json_is_integer(up))
		format_duration(json_integer_value(up) * 1000, uptime, sizeof(uptime));
	printf("boxd %s at %s%s\n", str_or(json_object_get(st, "version"), "(unknown version)"),
	       cli->via_socket ? "unix:" : "", cli->target);
	printf("  host:     %s\n", str_or(json_object_get(st, "host"), "-"));
	printf("  store:    %s\n", str_or(json_object_get(json_object_get(st, "store"), "backend"), "-"));
	print_engine(json_object_get(st, "engine"));
	printf("  uptime:   %s\n", uptime);
	printf("  tasks:    %lld running, %lld waiting, %lld queued\n",
	       (long long)json_integer_value(json_object_get(tasks, "running")),
	       (long long)json_integer_value(json_object_get(tasks, "waiting")),
	       (long long)json_integer_value(json_object_get(tasks, "queued")));
	const char *current = json_string_value(json_object_get(st, "currentVersion"));
	if (current)
		printf("  release:  %s/current -> %s\n", str_or(json_object_get(st, "installRoot"), "?"), current);
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(st, "warnings"), i, w)
		printf("  warning:  %s\n", json_string_value(w) ? json_string_value(w) : "?");
	api_answer_release(&a);
	return CLI_EXIT_OK;
}
