/* cmd_locks.c — `boxctl locks` (the lock document) and `boxctl lock hold`
 * (a `hold` task). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "common/timeutil.h"
#include "format.h"
#include "common/lock_spec.h"
#include "table.h"

/* ---- lock hold ---------------------------------------------------------------- */

int cmd_lock_hold(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "for", required_argument, NULL, 'f' },
		{ "wait", no_argument, NULL, 'w' },
		{ 0 },
	};
	int64_t hold_ms = -1;
	const char *hold_text = NULL;
	bool wait = false;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_duration_ms(optarg, &hold_ms) < 0)
				return cli_usage_error(cli, "--for takes a duration such as 30, 30s, 5m or 1h, not '%s'",
						       optarg);
			hold_text = optarg;
			break;
		case 'w': wait = true; break;
		default: return cli_bad_option(cli, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "name at least one lock, e.g. app:wiki or platform:shared");
	if (hold_ms < 0)
		return cli_usage_error(cli, "--for DURATION is required");

	json_t *locks = json_array();
	char what[1024] = "";
	size_t o = 0;
	for (int i = optind; i < argc; i++) {
		char name[LOCK_SPEC_NAME_MAX];
		bool shared;
		if (lock_spec_parse(argv[i], name, &shared) < 0) {
			json_decref(locks);
			return cli_usage_error(cli,
					       "invalid lock '%s' (a name is letters, digits and :._-@/, optionally "
					       "followed by :shared or :exclusive)",
					       argv[i]);
		}
		const char *mode = shared ? "shared" : "exclusive";
		json_array_append_new(locks, json_pack("{s:s, s:s}", "name", name, "mode", mode));
		int n = snprintf(what + o, sizeof(what) - o, "%s%s (%s)", i > optind ? ", " : "", name, mode);
		if (n > 0 && (size_t)n < sizeof(what) - o)
			o += (size_t)n;
	}
	json_t *seconds = hold_ms % 1000 == 0 ? json_integer(hold_ms / 1000) : json_real((double)hold_ms / 1000.0);
	json_t *body = json_pack("{s:s, s:{s:o, s:o}}", "type", "hold", "args", "locks", locks, "seconds", seconds);
	struct api_answer a;
	int r = api_call(cli, "POST", "/api/v1/tasks", body, &a);
	json_decref(body);
	if (r)
		return r;
	char line[2048];
	snprintf(line, sizeof(line), "task %lld holds %s for %s%s", (long long)cli_answer_task_id(&a), what, hold_text,
		 strspn(hold_text, "0123456789.") == strlen(hold_text) ? "s" : "");
	return cli_task_started(cli, &a, wait, line);
}

/* ---- locks ----------------------------------------------------------------------- */

static void owner_label(json_t *owner, char *buf, size_t len)
{
	json_int_t task = json_integer_value(json_object_get(owner, "task"));
	if (task > 0)
		snprintf(buf, len, "task %lld", (long long)task);
	else
		snprintf(buf, len, "pid %lld", (long long)json_integer_value(json_object_get(owner, "pid")));
}

int cmd_locks(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 0, 0);
	if (r)
		return r;
	struct api_answer a;
	if (!api_get_to_show(cli, "/api/v1/locks", &a, &r))
		return r;
	json_t *holders = json_object_get(a.json, "holders"), *queue = json_object_get(a.json, "queue");
	/* "at" is the database's clock; on one host that is ours. */
	int64_t now = now_wall_ms();
	printf("lock document version %lld: %zu held, %zu waiting\n",
	       (long long)json_integer_value(json_object_get(a.json, "version")), json_array_size(holders),
	       json_array_size(queue));

	size_t i;
	json_t *h;
	if (json_array_size(holders)) {
		struct table t;
		table_init(&t, 4, (const char *[]){ "LOCK", "MODE", "OWNER", "HELD-FOR" });
		json_array_foreach(holders, i, h) {
			char who[48], held[32];
			owner_label(h, who, sizeof(who));
			format_duration(now - json_integer_value(json_object_get(h, "at")), held, sizeof(held));
			table_add(&t, (const char *[]){ json_string_value(json_object_get(h, "name")),
							json_string_value(json_object_get(h, "mode")), who, held });
		}
		printf("\n");
		table_print(&t, stdout, 0);
		table_release(&t);
	}
	if (json_array_size(queue)) {
		struct table t;
		table_init(&t, 3, (const char *[]){ "TICKET", "TASK", "WANTS" });
		json_array_foreach(queue, i, h) {
			char ticket[24], who[48], wants[1024];
			snprintf(ticket, sizeof(ticket), "%lld", (long long)json_integer_value(json_object_get(h, "ticket")));
			owner_label(h, who, sizeof(who));
			format_lock_list(json_object_get(h, "locks"), wants, sizeof(wants));
			table_add(&t, (const char *[]){ ticket, who, wants });
		}
		printf("\n");
		table_print(&t, stdout, 0);
		table_release(&t);
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}
