/* cmd_hosts.c — `boxctl hosts`: the hosts sharing the store, alive or gone
 * by their heartbeat (GET /api/v1/hosts). */
#include <stdio.h>
#include <string.h>

#include "boxctl.h"
#include "format.h"
#include "table.h"

static const char *str_or(json_t *v, const char *dflt)
{
	const char *s = json_string_value(v);
	return s && *s ? s : dflt;
}

int cmd_hosts(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 0, 0);
	if (r)
		return r;
	struct api_answer a;
	if (!api_get_to_show(cli, "/api/v1/hosts", &a, &r))
		return r;
	struct table tab;
	table_init(&tab, 6, (const char *[]){ "HOST", "STATE", "HEARTBEAT", "NAME", "VERSION", "API" });
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(a.json, "hosts"), i, h) {
		char id[80], age[32];
		snprintf(id, sizeof(id), "%s%s", str_or(json_object_get(h, "id"), "?"),
			 json_is_true(json_object_get(h, "self")) ? " *" : "");
		format_duration(json_integer_value(json_object_get(h, "heartbeatAgeMs")), age, sizeof(age));
		char ago[48];
		snprintf(ago, sizeof(ago), "%s ago", age);
		table_add(&tab, (const char *[]){ id, json_is_true(json_object_get(h, "alive")) ? "alive" : "gone", ago,
						   str_or(json_object_get(h, "name"), "-"),
						   str_or(json_object_get(h, "version"), "-"),
						   str_or(json_object_get(h, "apiUrl"), "-") });
	}
	table_print_fit(&tab, stdout, 60);
	table_release(&tab);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}
