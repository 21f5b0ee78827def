/* cmd_events.c — `boxctl events`: follow GET /api/v1/events, the live feed
 * the dashboard runs on, and print one line per change as it comes:
 *
 *	task {"id":12,"type":"hold","state":"running","percent":40,...}
 *	lock {"holders":[...],"queue":[...],"version":7}
 *
 * (the event's name, a space, its JSON as boxd sent it); with --json, one
 * JSON object per line instead: {"event":"task","data":{...}}. `hello` and
 * the heartbeats are not printed; a `resync` is (the client missed events:
 * fetch the lists again). --kind KIND (repeatable) keeps only those kinds.
 * It runs until interrupted; a stream that ends (boxd stopped) exits 3. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "sse.h"

#define KINDS_MAX 8

static const char *const known_kinds[] = { "task", "lock", "app", "volumes", "service", "backups", "resync", NULL };

struct events_out {
	bool json;
	const char *kinds[KINDS_MAX];
	size_t n_kinds;
};

static bool wanted(const struct events_out *o, const char *event)
{
	if (strcmp(event, "hello") == 0 || strcmp(event, "heartbeat") == 0 || !*event)
		return false;
	if (o->n_kinds == 0)
		return true;
	for (size_t i = 0; i < o->n_kinds; i++)
		if (strcmp(o->kinds[i], event) == 0)
			return true;
	return false;
}

static int on_event(const char *event, const char *data, void *userdata)
{
	struct events_out *o = userdata;
	if (!wanted(o, event))
		return 0;
	int r;
	if (o->json) {
		json_t *v = json_loads(data, JSON_DECODE_ANY, NULL);
		json_t *line = json_pack("{s:s, s:o}", "event", event, "data", v ? v : json_string(data));
		char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
		json_decref(line);
		if (!text)
			return -ENOMEM;
		r = printf("%s\n", text);
		free(text);
	} else {
		r = printf("%s %s\n", event, data);
	}
	return r < 0 ? -EPIPE : 0;
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = { { "kind", required_argument, NULL, 'k' }, { 0 } };
	struct events_out o = { .json = cli->json };
	int c;
	while ((c = getopt_long(argc, argv, ":k:", options, NULL)) != -1) {
		if (c != 'k')
			return cli_bad_option(cli, c, argv);
		bool known = false;
		for (size_t i = 0; known_kinds[i]; i++)
			known = known || strcmp(known_kinds[i], optarg) == 0;
		if (!known)
			return cli_usage_error(cli, "unknown kind \"%s\" (task, lock, app, volumes, service, backups, resync)",
					       optarg);
		if (o.n_kinds == KINDS_MAX)
			return cli_usage_error(cli, "at most %d --kind options", KINDS_MAX);
		o.kinds[o.n_kinds++] = optarg;
	}
	int r = cli_positionals(cli, argc, argv, 0, 0);
	if (r)
		return r;

	/* A daemon that stops may cut the stream rather than end it. */
	int code = cli_sse_get(cli, "/api/v1/events", on_event, &o, "the event stream ended (boxd stopped?)");
	if (code == CLI_EXIT_OK) {
		fprintf(stderr, "boxctl: the event stream ended (boxd stopped?)\n");
		code = CLI_EXIT_CONNECT;
	}
	return code;
}
