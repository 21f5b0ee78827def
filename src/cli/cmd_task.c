/* cmd_task.c — `boxctl task list|show|logs|stop|wait`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "common/timeutil.h"
#include "format.h"
#include "sse.h"
#include "table.h"

#define LIST_MESSAGE_MAX 60 /* message column when stdout is not a terminal */

/* ---- task list ------------------------------------------------------------------ */

/* Append "&name=value" (escaped) to the query in buf. */
static int add_param(char *buf, size_t len, const char *name, const char *value)
{
	if (!value)
		return 0;
	char *esc = http_escape(value);
	if (!esc)
		return -ENOMEM;
	size_t used = strlen(buf);
	snprintf(buf + used, len - used, "%s%s=%s", strchr(buf, '?') ? "&" : "?", name, esc);
	free(esc);
	return 0;
}

static bool positive(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	return !errno && *end == '\0' && end != s && v > 0;
}

/* The MESSAGE column: what an active task does, why an ended one failed. */
static void list_message(json_t *t, char *buf, size_t len)
{
	json_t *error = json_object_get(t, "error");
	if (json_is_object(error) && !json_is_object(json_object_get(t, "waitingFor")))
		format_task_error(error, buf, len);
	else
		format_task_activity(t, buf, len);
}

int cmd_task_list(struct cli *cli, int argc, char **argv)
{
	enum { OPT_TYPE = 256, OPT_STATE, OPT_APP, OPT_PAGE, OPT_PER_PAGE };
	static const struct option options[] = {
		{ "type", required_argument, NULL, OPT_TYPE },   { "state", required_argument, NULL, OPT_STATE },
		{ "app", required_argument, NULL, OPT_APP },     { "page", required_argument, NULL, OPT_PAGE },
		{ "per-page", required_argument, NULL, OPT_PER_PAGE }, { 0 },
	};
	const char *type = NULL, *state = NULL, *app = NULL, *page = NULL, *per_page = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case OPT_TYPE: type = optarg; break;
		case OPT_STATE: state = optarg; break;
		case OPT_APP: app = optarg; break;
		case OPT_PAGE: page = optarg; break;
		case OPT_PER_PAGE: per_page = optarg; break;
		default: return cli_bad_option(cli, c, argv);
		}
	}
	int r = cli_positionals(cli, argc, argv, 0, 0);
	if (r)
		return r;
	if (page && !positive(page))
		return cli_usage_error(cli, "--page takes a positive integer, not '%s'", page);
	if (per_page && !positive(per_page))
		return cli_usage_error(cli, "--per-page takes a positive integer, not '%s'", per_page);

	char path[2048] = "/api/v1/tasks";
	if (add_param(path, sizeof(path), "type", type) < 0 || add_param(path, sizeof(path), "state", state) < 0 ||
	    add_param(path, sizeof(path), "appId", app) < 0 || add_param(path, sizeof(path), "page", page) < 0 ||
	    add_param(path, sizeof(path), "per_page", per_page) < 0) {
		fprintf(stderr, "boxctl: out of memory\n");
		return CLI_EXIT_API;
	}
	struct api_answer a;
	if (!api_get_to_show(cli, path, &a, &r))
		return r;

	json_t *tasks = json_object_get(a.json, "tasks");
	int64_t now = now_wall_ms();
	struct table tab;
	table_init(&tab, 7, (const char *[]){ "ID", "TYPE", "APP", "STATE", "PERCENT", "AGE", "MESSAGE" });
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t) {
		char id[24], pct[8], age[32], msg[1024];
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(t, "id")));
		snprintf(pct, sizeof(pct), "%lld%%", (long long)json_integer_value(json_object_get(t, "percent")));
		format_age(json_object_get(t, "createdAt"), now, age, sizeof(age));
		list_message(t, msg, sizeof(msg));
		const char *app_id = json_string_value(json_object_get(t, "appId"));
		table_add(&tab, (const char *[]){ id, json_string_value(json_object_get(t, "type")), app_id ? app_id : "-",
						   json_string_value(json_object_get(t, "state")), pct, age, msg });
	}
	if (table_rows(&tab) == 0) {
		printf(type || state || app ? "no tasks match\n" : "no tasks yet\n");
	} else {
		table_print_fit(&tab, stdout, LIST_MESSAGE_MAX);
	}
	json_int_t total = json_integer_value(json_object_get(a.json, "total"));
	json_int_t pg = json_integer_value(json_object_get(a.json, "page"));
	json_int_t pp = json_integer_value(json_object_get(a.json, "perPage"));
	if (pp > 0 && total > pp) {
		json_int_t pages = (total + pp - 1) / pp;
		printf("page %lld of %lld (%lld tasks)%s", (long long)pg, (long long)pages, (long long)total,
		       pg < pages ? "" : "\n");
		if (pg < pages)
			printf("; --page %lld for more\n", (long long)pg + 1);
	}
	table_release(&tab);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

/* ---- task show ------------------------------------------------------------------ */

static void show_time(const char *label, json_t *when, int64_t now)
{
	const char *s = json_string_value(when);
	if (!s) {
		printf("%-10s -\n", label);
		return;
	}
	char age[32];
	format_age(when, now, age, sizeof(age));
	printf("%-10s %s (%s ago)\n", label, s, age);
}

static void show_json(const char *label, json_t *v)
{
	if (!v || json_is_null(v))
		return;
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	printf("%-10s %s\n", label, text ? text : "?");
	free(text);
}

int cmd_task_show(struct cli *cli, int argc, char **argv)
{
	int64_t id;
	int r = cli_no_options(cli, argc, argv, 1, 1);
	if (r || (r = cli_parse_id(cli, argv[optind], &id)))
		return r;
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tasks/%lld", (long long)id);
	struct api_answer a;
	if (!api_get_to_show(cli, path, &a, &r))
		return r;
	json_t *t = a.json;
	int64_t now = now_wall_ms();
	const char *app = json_string_value(json_object_get(t, "appId"));
	const char *msg = json_string_value(json_object_get(t, "message"));
	json_t *pid = json_object_get(t, "pid");
	char buf[1024];

	printf("%-10s %lld\n", "id:", (long long)json_integer_value(json_object_get(t, "id")));
	printf("%-10s %s\n", "type:", json_string_value(json_object_get(t, "type")));
	printf("%-10s %s\n", "app:", app ? app : "-");
	printf("%-10s %s, %lld%%\n", "state:", json_string_value(json_object_get(t, "state")),
	       (long long)json_integer_value(json_object_get(t, "percent")));
	format_waiting(json_object_get(t, "waitingFor"), buf, sizeof(buf));
	if (*buf)
		printf("%-10s %s\n", "blocked:", buf);
	printf("%-10s %s\n", "message:", msg && *msg ? msg : "-");
	format_task_error(json_object_get(t, "error"), buf, sizeof(buf));
	if (*buf)
		printf("%-10s %s\n", "error:", buf);
	show_json("args:", json_object_get(t, "args"));
	show_json("result:", json_object_get(t, "result"));
	if (json_is_integer(pid))
		printf("%-10s %lld\n", "pid:", (long long)json_integer_value(pid));
	show_time("created:", json_object_get(t, "createdAt"), now);
	show_time("started:", json_object_get(t, "startedAt"), now);
	show_time("finished:", json_object_get(t, "finishedAt"), now);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

/* ---- task logs ------------------------------------------------------------------- */

static int follow_logs(struct cli *cli, int64_t id)
{
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tasks/%lld/logstream", (long long)id);
	json_t *end;
	int code = cli_follow_log(cli, path, &end);
	if (code != CLI_EXIT_OK)
		return code;
	const char *st = json_string_value(json_object_get(end, "state"));
	if (!end) {
		fprintf(stderr, "boxctl: the log stream of task %lld ended before the task did (boxd stopped?)\n",
			(long long)id);
		code = CLI_EXIT_CONNECT;
	} else if (!st || strcmp(st, "succeeded") != 0) {
		/* Say why, as `task wait` does. */
		struct api_answer a;
		char tpath[64], why[1024] = "", err[512];
		snprintf(tpath, sizeof(tpath), "/api/v1/tasks/%lld", (long long)id);
		if (api_request(cli, "GET", tpath, NULL, &a, err, sizeof(err)) == 0) {
			format_task_error(json_object_get(a.json, "error"), why, sizeof(why));
			api_answer_release(&a);
		}
		fprintf(stderr, "boxctl: task %lld %s%s%s\n", (long long)id, st ? st : "unknown", *why ? ": " : "", why);
		code = CLI_EXIT_API;
	}
	json_decref(end);
	return code;
}

int cmd_task_logs(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = { { "follow", no_argument, NULL, 'f' }, { 0 } };
	bool follow = false;
	int c;
	while ((c = getopt_long(argc, argv, ":f", options, NULL)) != -1) {
		if (c != 'f')
			return cli_bad_option(cli, c, argv);
		follow = true;
	}
	int64_t id;
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r || (r = cli_parse_id(cli, argv[optind], &id)))
		return r;
	if (follow)
		return follow_logs(cli, id);
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tasks/%lld/logs", (long long)id);
	struct api_answer a;
	r = api_call(cli, "GET", path, NULL, &a);
	if (r)
		return r;
	fwrite(a.raw, 1, a.len, stdout);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

/* ---- task stop, task wait ---------------------------------------------------------- */

int cmd_task_stop(struct cli *cli, int argc, char **argv)
{
	int64_t id;
	int r = cli_no_options(cli, argc, argv, 1, 1);
	if (r || (r = cli_parse_id(cli, argv[optind], &id)))
		return r;
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tasks/%lld/stop", (long long)id);
	struct api_answer a;
	r = api_call(cli, "POST", path, NULL, &a);
	if (r)
		return r;
	if (cli->json) {
		if (a.len)
			api_print_raw(&a);
	} else {
		printf("stopping task %lld\n", (long long)id);
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

int cmd_task_wait(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = { { "timeout", required_argument, NULL, 't' }, { 0 } };
	int64_t timeout_ms = -1;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 't')
			return cli_bad_option(cli, c, argv);
		if (parse_duration_ms(optarg, &timeout_ms) < 0)
			return cli_usage_error(cli, "--timeout takes a duration such as 30, 30s, 5m or 1h, not '%s'",
					       optarg);
	}
	int64_t id;
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r || (r = cli_parse_id(cli, argv[optind], &id)))
		return r;
	return cli_task_wait(cli, id, timeout_ms);
}
