/* cmd_app.c — `boxctl app ...` and `boxctl volume ...`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boxctl.h"
#include "format.h"
#include "table.h"

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}


/* Options shared by the app task commands: --wait, and per command a few
 * more (collected into `body`). */
struct app_opts {
	bool wait;
	bool replace_all;    /* --replace-all: what --env means for configure */
	json_t *body;
};

/* --port HOST:CONTAINER[/tcp|/udp] (repeated), --no-ports, --domain D
 * (repeated), --no-domains, --http-port N into the request body. */
static int publish_option(json_t *body, int c, const char *arg)
{
	const char *key = c == 'p' || c == 'P' ? "ports" : c == 'm' || c == 'M' ? "domains" : "httpPort";
	if (c == 'H') {
		char *end;
		long n = strtol(arg, &end, 10);
		if (!*arg || *end)
			return -EINVAL;
		json_object_set_new(body, key, json_integer(n));
		return 0;
	}
	json_t *list = json_object_get(body, key);
	if (!list) {
		list = json_array();
		json_object_set_new(body, key, list);
	}
	if (c == 'm') {
		json_array_append_new(list, json_string(arg));
	} else if (c == 'p') {
		unsigned host, container;
		char proto[8] = "tcp";
		int used = 0;
		if (sscanf(arg, "%u:%u%n", &host, &container, &used) != 2)
			return -EINVAL;
		if (arg[used] == '/')
			snprintf(proto, sizeof(proto), "%s", arg + used + 1);
		else if (arg[used])
			return -EINVAL;
		json_array_append_new(list, json_pack("{s:i, s:i, s:s}", "host", (int)host, "container", (int)container,
						      "protocol", proto));
	}
	return 0;
}

static int parse_common(struct cli *cli, int argc, char **argv, struct app_opts *o, bool env, bool data_dir,
			bool image)
{
	static const struct option options[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ "env", required_argument, NULL, 'e' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "default-data-dir", no_argument, NULL, 'D' },
		{ "image", required_argument, NULL, 'i' },
		{ "replace-all", no_argument, NULL, 'R' },
		{ "port", required_argument, NULL, 'p' },
		{ "no-ports", no_argument, NULL, 'P' },
		{ "domain", required_argument, NULL, 'm' },
		{ "no-domains", no_argument, NULL, 'M' },
		{ "http-port", required_argument, NULL, 'H' },
		{ "host", required_argument, NULL, 'o' },
		{ 0 },
	};
	o->wait = false;
	o->replace_all = false;
	o->body = json_object();
	json_t *envo = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c == 'w') {
			o->wait = true;
		} else if (c == 'e' && env) {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return cli_usage_error(cli, "--env takes KEY=VALUE");
			if (!envo)
				envo = json_object();
			char key[256];
			snprintf(key, sizeof(key), "%.*s", (int)(eq - optarg), optarg);
			json_object_set_new(envo, key, json_string(eq + 1));
		} else if (c == 'd' && data_dir) {
			json_object_set_new(o->body, "dataDir", json_string(optarg));
		} else if (c == 'D' && data_dir) {
			json_object_set_new(o->body, "dataDir", json_null());
		} else if (c == 'R' && env) {
			o->replace_all = true;
		} else if (c == 'o' && image && env && data_dir) { /* install only */
			json_object_set_new(o->body, "host", json_string(optarg));
		} else if (c == 'i' && image) {
			json_object_set_new(o->body, "image", json_string(optarg));
		} else if ((c == 'p' || c == 'P' || c == 'm' || c == 'M' || c == 'H') && data_dir) {
			/* Ports and domains: install and configure (the API checks
			 * them; a list given replaces the app's). */
			if (publish_option(o->body, c, optarg) < 0) {
				json_decref(envo);
				return cli_usage_error(cli, c == 'p' ? "--port takes HOST:CONTAINER or HOST:CONTAINER/udp"
								     : "--http-port takes a port number");
			}
		} else {
			json_decref(envo);
			return cli_bad_option(cli, c, argv);
		}
	}
	if (envo)
		json_object_set_new(o->body, "env", envo);
	return 0;
}

int cmd_app_list(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 0, 0);
	if (r)
		return r;
	struct api_answer a;
	if ((r = api_call(cli, "GET", "/api/v1/apps", NULL, &a)))
		return r;
	if (cli->json) {
		api_print_raw(&a);
	} else {
		static const char *const header[] = { "ID", "STATE", "RUN", "IMAGE", "DATA DIR" };
		struct table t;
		table_init(&t, 5, header);
		size_t i;
		json_t *app;
		json_array_foreach(json_object_get(a.json, "apps"), i, app) {
			const char *row[] = { str(app, "id"), str(app, "installationState"), str(app, "runState"),
					      str(app, "image"), str(app, "dataDir") };
			table_add(&t, row);
		}
		if (table_rows(&t) == 0)
			printf("no apps\n");
		else
			table_print(&t, stdout, 0);
		table_release(&t);
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

/* `app show ID` and `app env list ID`: GET the app named by the one
 * operand. 0 with the answer in *ret, or the exit code. */
static int get_app(struct cli *cli, int argc, char **argv, struct api_answer *ret)
{
	int r = cli_no_options(cli, argc, argv, 1, 1);
	if (r)
		return r;
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/apps/%s", argv[optind]);
	return api_call(cli, "GET", path, NULL, ret);
}

int cmd_app_show(struct cli *cli, int argc, char **argv)
{
	struct api_answer a;
	int r = get_app(cli, argc, argv, &a);
	if (r)
		return r;
	if (cli->json) {
		api_print_raw(&a);
	} else {
		json_t *app = a.json;
		printf("app %s\n  state:     %s (%s)\n  image:     %s\n  data dir:  %s%s\n  container: %s\n", str(app, "id"),
		       str(app, "installationState"), str(app, "runState"), str(app, "image"), str(app, "dataDir"),
		       json_is_true(json_object_get(app, "customDataDir")) ? " (custom)" : "", str(app, "containerId"));
		if (json_is_string(json_object_get(app, "host")))
			printf("  host:      %s\n", str(app, "host"));
		if (json_is_true(json_object_get(app, "stopped")))
			printf("  stopped:   by the operator; boxd starts it only with `app start`\n");
		json_t *task = json_object_get(app, "taskId");
		if (json_is_integer(task))
			printf("  last task: %lld\n", (long long)json_integer_value(task));
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(app, "env"), key, v)
			printf("  env:       %s=%s\n", key, json_string_value(v));
		size_t i;
		json_array_foreach(json_object_get(app, "ports"), i, v)
			printf("  port:      %lld/%s -> %lld\n", (long long)json_integer_value(json_object_get(v, "host")),
			       str(v, "protocol"), (long long)json_integer_value(json_object_get(v, "container")));
		json_array_foreach(json_object_get(app, "urls"), i, v)
			printf("  url:       %s\n", json_string_value(v));
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

int cmd_app_install(struct cli *cli, int argc, char **argv)
{
	struct app_opts o;
	int r = parse_common(cli, argc, argv, &o, true, true, true);
	if (r == 0)
		r = cli_positionals(cli, argc, argv, 1, 1);
	if (r == 0 && !json_object_get(o.body, "image"))
		r = cli_usage_error(cli, "--image is required");
	if (r) {
		json_decref(o.body);
		return r;
	}
	json_object_set_new(o.body, "id", json_string(argv[optind]));
	struct api_answer a;
	r = api_call(cli, "POST", "/api/v1/apps", o.body, &a);
	json_decref(o.body);
	return r ? r : cli_task_started_as(cli, &a, o.wait, "installing");
}

static int app_action(struct cli *cli, int argc, char **argv, const char *action, bool env, bool data_dir,
		      bool image, const char *what)
{
	struct app_opts o;
	int r = parse_common(cli, argc, argv, &o, env, data_dir, image);
	if (r == 0)
		r = cli_positionals(cli, argc, argv, 1, 1);
	/* configure --env replaces every variable: the ones not given are
	 * gone. That silently dropped an app's other variables, so it takes
	 * --replace-all to say so; `app env set` changes some, keeps the rest. */
	bool has_env = json_object_get(o.body, "env") != NULL;
	if (r == 0 && strcmp(action, "configure") == 0 && has_env && !o.replace_all)
		r = cli_usage_error(cli, "--env replaces all of the app's variables (the ones not given are removed): "
					 "add --replace-all, or use `boxctl app env set ID K=V`");
	if (r == 0 && o.replace_all && !has_env)
		r = cli_usage_error(cli, "--replace-all goes with --env");
	if (r) {
		json_decref(o.body);
		return r;
	}
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/apps/%s/%s", argv[optind], action);
	struct api_answer a;
	r = api_call(cli, "POST", path, json_object_size(o.body) ? o.body : NULL, &a);
	json_decref(o.body);
	return r ? r : cli_task_started_as(cli, &a, o.wait, what);
}

/* `app uninstall ID [--no-backup] [--yes] [--wait]`. On a terminal it asks
 * first, unless --yes. Without a terminal (scripts, pipes) it goes ahead as
 * before: nobody is there to answer, and the final backup is kept unless
 * --no-backup says otherwise. */
int cmd_app_uninstall(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ "no-backup", no_argument, NULL, 'n' },
		{ "yes", no_argument, NULL, 'y' },
		{ 0 },
	};
	bool wait = false, no_backup = false, yes = false;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c == 'w')
			wait = true;
		else if (c == 'n')
			no_backup = true;
		else if (c == 'y')
			yes = true;
		else
			return cli_bad_option(cli, c, argv);
	}
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r)
		return r;
	const char *id = argv[optind];
	if (!yes && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
		fprintf(stderr, "Uninstall app %s? Its container and its data dir are removed%s. [y/N] ", id,
			no_backup ? ", with NO final backup" : " (a final backup is kept first)");
		fflush(stderr);
		char answer[16] = "";
		if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
			fprintf(stderr, "not uninstalled\n");
			return CLI_EXIT_USAGE;
		}
	}
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/apps/%s/uninstall", id);
	json_t *body = no_backup ? json_pack("{s:b}", "noBackup", 1) : NULL;
	struct api_answer a;
	r = api_call(cli, "POST", path, body, &a);
	json_decref(body);
	return r ? r : cli_task_started_as(cli, &a, wait, "uninstalling");
}

/* `app move ID --to HOST [--wait]`: to another host of the same store
 * (boxctl hosts lists them). */
int cmd_app_move(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ "to", required_argument, NULL, 't' },
		{ 0 },
	};
	bool wait = false;
	const char *to = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c == 'w')
			wait = true;
		else if (c == 't')
			to = optarg;
		else
			return cli_bad_option(cli, c, argv);
	}
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r)
		return r;
	if (!to || !*to) {
		fprintf(stderr, "boxctl: app move needs --to HOST (boxctl hosts lists them)\n");
		return CLI_EXIT_USAGE;
	}
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/apps/%s/move", argv[optind]);
	json_t *body = json_pack("{s:s}", "host", to);
	struct api_answer a;
	r = api_call(cli, "POST", path, body, &a);
	json_decref(body);
	return r ? r : cli_task_started_as(cli, &a, wait, "moving");
}

int cmd_app_restart(struct cli *cli, int argc, char **argv)
{
	return app_action(cli, argc, argv, "restart", false, false, false, "restarting");
}

/* `app stop ID [--wait]`: stopped until `app start` (also across a
 * restart of boxd); `app start ID [--wait]`. */
int cmd_app_start(struct cli *cli, int argc, char **argv)
{
	return app_action(cli, argc, argv, "start", false, false, false, "starting");
}

int cmd_app_stop(struct cli *cli, int argc, char **argv)
{
	return app_action(cli, argc, argv, "stop", false, false, false, "stopping");
}

/* configure --env replaces every variable: the ones not given are gone.
 * That silently dropped an app's other variables, so it now takes
 * --replace-all to say so; `app env set` changes some and keeps the rest. */
int cmd_app_configure(struct cli *cli, int argc, char **argv)
{
	return app_action(cli, argc, argv, "configure", true, true, false, "configuring");
}

/* `app env set ID K=V... [--wait]` and `app env unset ID K... [--wait]`:
 * PATCH /api/v1/apps/:id/env; the app's other variables stay. */
static int env_patch(struct cli *cli, int argc, char **argv, bool set)
{
	static const struct option options[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ 0 },
	};
	bool wait = false;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c == 'w')
			wait = true;
		else
			return cli_bad_option(cli, c, argv);
	}
	int r = cli_positionals(cli, argc, argv, 2, 10000);
	if (r)
		return r;
	const char *id = argv[optind];
	json_t *vars = set ? json_object() : json_array();
	for (int i = optind + 1; i < argc; i++) {
		if (set) {
			const char *eq = strchr(argv[i], '=');
			if (!eq || eq == argv[i]) {
				json_decref(vars);
				return cli_usage_error(cli, "env set takes KEY=VALUE, not \"%s\"", argv[i]);
			}
			char key[256];
			snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
			json_object_set_new(vars, key, json_string(eq + 1));
		} else {
			json_array_append_new(vars, json_string(argv[i]));
		}
	}
	json_t *body = json_pack("{s:o}", set ? "set" : "unset", vars);
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/apps/%s/env", id);
	struct api_answer a;
	r = api_call(cli, "PATCH", path, body, &a);
	json_decref(body);
	return r ? r : cli_task_started_as(cli, &a, wait, "configuring");
}

int cmd_app_env_set(struct cli *cli, int argc, char **argv)
{
	return env_patch(cli, argc, argv, true);
}

int cmd_app_env_unset(struct cli *cli, int argc, char **argv)
{
	return env_patch(cli, argc, argv, false);
}

/* `app env list ID`: KEY=VALUE lines, sorted; --json the env object. */
int cmd_app_env_list(struct cli *cli, int argc, char **argv)
{
	struct api_answer a;
	int r = get_app(cli, argc, argv, &a);
	if (r)
		return r;
	json_t *env = json_object_get(a.json, "env");
	if (cli->json) {
		char *text = json_dumps(env ? env : json_object(), JSON_SORT_KEYS);
		printf("%s\n", text ? text : "{}");
		free(text);
	} else {
		const char *key;
		json_t *v;
		json_object_foreach(env, key, v)
			printf("%s=%s\n", key, json_string_value(v) ? json_string_value(v) : "");
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

int cmd_app_update(struct cli *cli, int argc, char **argv)
{
	return app_action(cli, argc, argv, "update", false, false, true, "updating");
}

int cmd_volume_list(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 0, 0);
	if (r)
		return r;
	struct api_answer a;
	if ((r = api_call(cli, "GET", "/api/v1/volumes", NULL, &a)))
		return r;
	if (cli->json) {
		api_print_raw(&a);
	} else {
		static const char *const header[] = { "ID", "NAME", "TYPE", "HOST PATH" };
		struct table t;
		table_init(&t, 4, header);
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(a.json, "volumes"), i, v) {
			const char *row[] = { str(v, "id"), str(v, "name"), str(v, "mountType"), str(v, "hostPath") };
			table_add(&t, row);
		}
		if (table_rows(&t) == 0)
			printf("no volumes\n");
		else
			table_print(&t, stdout, 0);
		table_release(&t);
	}
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

int cmd_volume_add(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "host-path", required_argument, NULL, 'p' },
		{ "mountpoint", no_argument, NULL, 'm' },
		{ "bind", required_argument, NULL, 'b' },
		{ "fs", required_argument, NULL, 'f' },
		{ "source", required_argument, NULL, 's' },
		{ "options", required_argument, NULL, 'o' },
		{ 0 },
	};
	json_t *body = json_object();
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c == 'n')
			json_object_set_new(body, "name", json_string(optarg));
		else if (c == 'p')
			json_object_set_new(body, "hostPath", json_string(optarg));
		else if (c == 'm')
			json_object_set_new(body, "mountType", json_string("mountpoint"));
		else if (c == 'b') {
			json_object_set_new(body, "mountType", json_string("bind"));
			json_object_set_new(body, "mountSource", json_string(optarg));
		} else if (c == 'f')
			json_object_set_new(body, "mountType", json_string(optarg));
		else if (c == 's')
			json_object_set_new(body, "mountSource", json_string(optarg));
		else if (c == 'o')
			json_object_set_new(body, "mountOptions", json_string(optarg));
		else {
			json_decref(body);
			return cli_bad_option(cli, c, argv);
		}
	}
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r) {
		json_decref(body);
		return r;
	}
	json_object_set_new(body, "id", json_string(argv[optind]));
	struct api_answer a;
	r = api_call(cli, "POST", "/api/v1/volumes", body, &a);
	json_decref(body);
	if (r)
		return r;
	if (cli->json)
		api_print_raw(&a);
	else
		printf("volume %s at %s\n", str(a.json, "id"), str(a.json, "hostPath"));
	api_answer_release(&a);
	return CLI_EXIT_OK;
}

int cmd_volume_remove(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 1, 1);
	if (r)
		return r;
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/volumes/%s", argv[optind]);
	struct api_answer a;
	if ((r = api_call(cli, "DELETE", path, NULL, &a)))
		return r;
	if (!cli->json)
		printf("volume %s removed from boxd (the data on the host is kept)\n", argv[optind]);
	api_answer_release(&a);
	return CLI_EXIT_OK;
}
