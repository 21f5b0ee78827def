/* cmd_backup.c — `boxctl backup list|create`, `boxctl app backup|restore`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "common/timeutil.h"
#include "format.h"
#include "table.h"

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

/* 1.5G, 320M, 12k, 512 */
static void format_size(int64_t n, char *buf, size_t len)
{
	static const char units[] = "kMGT";
	double v = (double)n;
	int u = -1;
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%lld", (long long)n);
	else
		snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* Parse --wait (the only option) and exactly `n` positionals. */
static int parse_wait(struct cli *cli, int argc, char **argv, int n, bool *wait)
{
	static const struct option options[] = { { "wait", no_argument, NULL, 'w' }, { 0 } };
	*wait = false;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 'w')
			return cli_bad_option(cli, c, argv);
		*wait = true;
	}
	return cli_positionals(cli, argc, argv, n, n);
}


int cmd_backup_list(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = { { "app", required_argument, NULL, 'a' }, { 0 } };
	const char *app = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 'a')
			return cli_bad_option(cli, c, argv);
		app = optarg;
	}
	int r = cli_positionals(cli, argc, argv, 0, 0);
	if (r)
		return r;
	char path[512] = "/api/v1/backups";
	if (app) {
		char *esc = http_escape(app);
		if (!esc) {
			fprintf(stderr, "boxctl: out of memory\n");
			return CLI_EXIT_API;
		}
		snprintf(path, sizeof(path), "/api/v1/backups?appId=%s", esc);
		free(esc);
	}
	struct api_answer a;
	if (!api_get_to_show(cli, path, &a, &r))
		return r;
	static const char *const header[] = { "ID", "KIND", "APP", "STATE", "SIZE", "AGE", "PART OF", "FILE" };
	struct table t;
	table_init(&t, 8, header);
	int64_t now = now_wall_ms();
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(a.json, "backups"), i, b) {
		char id[24], size[16], age[32], full[24] = "-";
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(b, "id")));
		format_size(json_integer_value(json_object_get(b, "size")), size, sizeof(size));
		format_age(json_object_get(b, "createdAt"), now, age, sizeof(age));
		json_t *fid = json_object_get(b, "fullBackupId");
		if (json_is_integer(fid))
			snprintf(full, sizeof(full), "full %lld", (long long)json_integer_value(fid));
		const char *row[] = { id, str(b, "kind"), str(b, "appId"), str(b, "state"), size, age, full,
				      str(b, "fileName") };
		table_add(&t, row);
	}
	if (table_rows(&t) == 0)
		printf(app ? "no backups of app %s\n" : "no backups yet\n", app);
	else
		table_print(&t, stdout, 0);
	table_release(&t);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

int cmd_backup_create(struct cli *cli, int argc, char **argv)
{
	bool wait;
	int r = parse_wait(cli, argc, argv, 0, &wait);
	if (r)
		return r;
	struct api_answer a;
	if ((r = api_call(cli, "POST", "/api/v1/backups/create", NULL, &a)))
		return r;
	return cli_task_started_as(cli, &a, wait, "full backup");
}

int cmd_app_backup(struct cli *cli, int argc, char **argv)
{
	bool wait;
	int r = parse_wait(cli, argc, argv, 1, &wait);
	if (r)
		return r;
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/apps/%s/backup", argv[optind]);
	struct api_answer a;
	if ((r = api_call(cli, "POST", path, NULL, &a)))
		return r;
	return cli_task_started_as(cli, &a, wait, "backing up");
}

int cmd_app_restore(struct cli *cli, int argc, char **argv)
{
	bool wait;
	int r = parse_wait(cli, argc, argv, 2, &wait);
	if (r)
		return r;
	char *end;
	errno = 0;
	long long backup_id = strtoll(argv[optind + 1], &end, 10);
	if (errno || *end || end == argv[optind + 1] || backup_id <= 0)
		return cli_usage_error(cli, "a backup ID is a positive integer, not '%s'", argv[optind + 1]);
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/apps/%s/restore", argv[optind]);
	json_t *body = json_pack("{s:I}", "backupId", (json_int_t)backup_id);
	struct api_answer a;
	r = api_call(cli, "POST", path, body, &a);
	json_decref(body);
	if (r)
		return r;
	return cli_task_started_as(cli, &a, wait, "restoring");
}
