/* cmd_service.c — `boxctl service list|show|restart|rebuild`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "common/timeutil.h"
#include "format.h"
#include "table.h"

static const char *str_or(json_t *v, const char *dflt)
{
	const char *s = json_string_value(v);
	return s && *s ? s : dflt;
}

/* The first 12 digits of a container id, as docker ps shows it. */
static void short_id(json_t *id, char *buf, size_t len)
{
	const char *s = json_string_value(id);
	snprintf(buf, len, "%.12s", s && *s ? s : "-");
}

static const char *yes_no(json_t *v)
{
	return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "?";
}

/* A service name goes into the URL: letters, digits, '-' and '_' only. */
static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

/* ---- service list -------------------------------------------------------------- */

int cmd_service_list(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 0, 0);
	if (r)
		return r;
	struct api_answer a;
	if (!api_get_to_show(cli, "/api/v1/services", &a, &r))
		return r;
	struct table tab;
	table_init(&tab, 6, (const char *[]){ "NAME", "STATE", "HEALTH", "CONTAINER", "UP-TO-DATE", "NOTE" });
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(a.json, "services"), i, s) {
		char id[16];
		short_id(json_object_get(s, "containerId"), id, sizeof(id));
		table_add(&tab, (const char *[]){ str_or(json_object_get(s, "name"), "?"),
						   str_or(json_object_get(s, "state"), "?"),
						   str_or(json_object_get(s, "health"), "?"), id,
						   yes_no(json_object_get(s, "upToDate")),
						   str_or(json_object_get(s, "error"), str_or(json_object_get(s, "summary"), "")) });
	}
	table_print_fit(&tab, stdout, 60);
	table_release(&tab);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

/* ---- service show ---------------------------------------------------------------- */

int cmd_service_show(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 1, 1);
	if (r)
		return r;
	const char *name = argv[optind];
	if (!name_ok(name))
		return cli_usage_error(cli, "'%s' is not a service name", name);
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/services/%s", name);
	struct api_answer a;
	if (!api_get_to_show(cli, path, &a, &r))
		return r;
	json_t *s = a.json, *spec = json_object_get(s, "spec");
	char age[32] = "";
	json_t *started = json_object_get(s, "startedAt");
	if (json_is_string(started))
		format_age(started, now_wall_ms(), age, sizeof(age));
	printf("%-12s %s\n", "name:", str_or(json_object_get(s, "name"), "?"));
	printf("%-12s %s\n", "summary:", str_or(json_object_get(s, "summary"), "-"));
	printf("%-12s %s\n", "container:", str_or(json_object_get(s, "containerName"), "-"));
	printf("%-12s %s\n", "id:", str_or(json_object_get(s, "containerId"), "-"));
	printf("%-12s %s%s%s%s\n", "state:", str_or(json_object_get(s, "state"), "?"), *age ? " (started " : "", age,
	       *age ? " ago)" : "");
	printf("%-12s %s\n", "health:", str_or(json_object_get(s, "health"), "?"));
	printf("%-12s %s\n", "image:", str_or(json_object_get(s, "image"), "-"));
	printf("%-12s %s\n", "up to date:", yes_no(json_object_get(s, "upToDate")));
	printf("%-12s %s\n", "spec hash:", str_or(json_object_get(s, "specHash"), "-"));
	printf("%-12s %s\n", "wanted hash:", str_or(json_object_get(s, "currentSpecHash"), "-"));
	if (json_is_string(json_object_get(s, "error")))
		printf("%-12s %s\n", "error:", json_string_value(json_object_get(s, "error")));
	size_t i;
	json_t *m;
	json_t *mounts = json_object_get(s, "mounts");
	if (json_array_size(mounts) > 0) {
		printf("mounts (container):\n");
		json_array_foreach(mounts, i, m) {
			const char *prop = str_or(json_object_get(m, "propagation"), "");
			printf("  %s -> %s%s%s%s\n", str_or(json_object_get(m, "source"), "?"),
			       str_or(json_object_get(m, "target"), "?"), *prop ? " (" : "", prop, *prop ? ")" : "");
		}
	}
	if (json_is_object(spec) && !json_is_true(json_object_get(s, "upToDate"))) {
		printf("mounts (wanted):\n");
		json_array_foreach(json_object_get(spec, "mounts"), i, m) {
			printf("  %s -> %s (%s)%s%s\n", str_or(json_object_get(m, "source"), "?"),
			       str_or(json_object_get(m, "target"), "?"), str_or(json_object_get(m, "propagation"), "-"),
			       json_is_string(json_object_get(m, "origin")) ? ", " : "",
			       str_or(json_object_get(m, "origin"), ""));
		}
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

/* ---- service restart, service rebuild -------------------------------------------- */

/* After --wait: say what the task did, from its result. */
static void print_result(struct cli *cli, int64_t id, bool rebuild)
{
	char path[64], err[256];
	snprintf(path, sizeof(path), "/api/v1/tasks/%lld", (long long)id);
	struct api_answer a;
	if (api_request(cli, "GET", path, NULL, &a, err, sizeof(err)) < 0)
		return;
	json_t *res = json_object_get(a.json, "result");
	char cid[16];
	short_id(json_object_get(res, "containerId"), cid, sizeof(cid));
	char took[32] = "";
	json_t *secs = json_object_get(res, "seconds");
	if (json_is_number(secs))
		format_duration((int64_t)(json_number_value(secs) * 1000), took, sizeof(took));
	if (rebuild && json_is_object(res))
		printf("%s: container %s (%s)%s%s\n", json_is_true(json_object_get(res, "rebuilt")) ? "rebuilt" : "not rebuilt",
		       cid, str_or(json_object_get(res, "reason"), "?"), *took ? " in " : "", took);
	else if (json_is_object(res))
		printf("restarted: container %s%s%s\n", cid, *took ? " in " : "", took);
	api_answer_release(&a);
}

static int start(struct cli *cli, int argc, char **argv, bool rebuild)
{
	static const struct option rebuild_opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "wait", no_argument, NULL, 'w' },
		{ 0 },
	};
	bool force = false, wait = false;
	int c;
	while ((c = getopt_long(argc, argv, ":", rebuild_opts, NULL)) != -1) {
		if (c == 'f' && rebuild)
			force = true;
		else if (c == 'w')
			wait = true;
		else
			return cli_bad_option(cli, c == 'f' ? '?' : c, argv);
	}
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r)
		return r;
	const char *name = argv[optind];
	if (!name_ok(name))
		return cli_usage_error(cli, "'%s' is not a service name", name);
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/services/%s/%s%s", name, rebuild ? "rebuild" : "restart",
		 force ? "?force=1" : "");
	struct api_answer a;
	r = api_call(cli, "POST", path, NULL, &a);
	if (r)
		return r;
	int64_t id = cli_answer_task_id(&a);
	char line[256];
	snprintf(line, sizeof(line), "task %lld %s %s%s", (long long)id, rebuild ? "rebuilds" : "restarts", name,
		 force ? " (forced)" : rebuild ? " if its spec changed" : "");
	r = cli_task_started(cli, &a, wait, line);
	if (wait && r == CLI_EXIT_OK && !cli->json)
		print_result(cli, id, rebuild);
	return r;
}

int cmd_service_restart(struct cli *cli, int argc, char **argv) { return start(cli, argc, argv, false); }
int cmd_service_rebuild(struct cli *cli, int argc, char **argv) { return start(cli, argc, argv, true); }
