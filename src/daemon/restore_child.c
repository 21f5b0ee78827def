/* restore_child.c — see restore_child.h. */
#include "restore_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backups/box_restore_status.h"
#include "common/log.h"
#include "common/timeutil.h"

extern char **environ;

void restore_child_init(struct restore_child *rc, uv_loop_t *loop, const struct boxd_config *cfg,
			const struct boxd_globals *g, const char *self_exe, void (*on_end)(void *, bool), void *userdata)
{
	rc->loop = loop;
	rc->cfg = cfg;
	rc->g = g;
	rc->self_exe = self_exe;
	rc->on_end = on_end;
	rc->userdata = userdata;
	pthread_mutex_init(&rc->mu, NULL);
}

static void free_argv(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

int restore_child_request(struct restore_child *rc, json_t *args, const char *token, char *err, size_t errlen)
{
	if (strlen(token) >= sizeof(rc->token)) {
		snprintf(err, errlen, "bad token");
		return -EINVAL;
	}
	/* boxd --state-dir S [--config F] restore ARGS... */
	size_t n = json_array_size(args), k = 0;
	char **argv = calloc(n + 7, sizeof(*argv));
	if (!argv)
		goto nomem;
	argv[k++] = strdup(rc->self_exe);
	argv[k++] = strdup("--state-dir");
	argv[k++] = strdup(rc->cfg->state_dir);
	if (rc->g && rc->g->config_path) {
		argv[k++] = strdup("--config");
		argv[k++] = strdup(rc->g->config_path);
	}
	argv[k++] = strdup("restore");
	for (size_t i = 0; i < n; i++)
		argv[k++] = strdup(json_string_value(json_array_get(args, i)) ?: "");
	for (size_t i = 0; i < k; i++)
		if (!argv[i])
			goto nomem;
	pthread_mutex_lock(&rc->mu);
	if (atomic_load(&rc->active)) {
		pthread_mutex_unlock(&rc->mu);
		free_argv(argv);
		snprintf(err, errlen, "a restore is already running");
		return -EBUSY;
	}
	free_argv(rc->argv);
	rc->argv = argv;
	snprintf(rc->token, sizeof(rc->token), "%s", token);
	atomic_store(&rc->active, true);
	pthread_mutex_unlock(&rc->mu);
	return 0;
nomem:
	free_argv(argv);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* Record how it ended; returns whether it succeeded. */
static bool record_end(const struct boxd_config *cfg, int64_t exit_status, int term_signal)
{
	json_t *st = NULL;
	if (box_restore_status_load(cfg, &st) < 0)
		st = json_object();
	char path[4096];
	json_t *res = box_restore_status_path(cfg, "result.json", path, sizeof(path)) ? json_load_file(path, 0, NULL)
										   : NULL;
	bool ok = exit_status == 0 && term_signal == 0 && json_is_true(json_object_get(res, "ok"));
	json_object_set_new(st, "state", json_string(ok ? "succeeded" : "failed"));
	json_object_set_new(st, "endedAt", json_integer(now_wall_ms()));
	json_object_set_new(st, "exitStatus", json_integer(exit_status));
	json_object_del(st, "token");
	if (ok) {
		json_object_set(st, "result", json_object_get(res, "result"));
	} else if (json_is_string(json_object_get(res, "code"))) {
		json_object_set_new(st, "error", json_pack("{s:O, s:O}", "code", json_object_get(res, "code"), "message",
							   json_object_get(res, "message")));
	} else {
		char msg[200];
		if (term_signal)
			snprintf(msg, sizeof(msg), "boxd restore was killed by signal %d (%s); its log says how far it got",
				 term_signal, strsignal(term_signal));
		else
			snprintf(msg, sizeof(msg), "boxd restore ended with status %lld; its log says why",
				 (long long)exit_status);
		json_object_set_new(st, "error", json_pack("{s:s, s:s}", "code", "restore_failed", "message", msg));
	}
	json_decref(res);
	char err[600];
	if (box_restore_status_save(cfg, st, err, sizeof(err)) < 0)
		log_error("box restore: cannot record its end: %s", err);
	json_decref(st);
	return ok;
}

static void child_exited(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct restore_child *rc = p->data;
	bool ok = record_end(rc->cfg, exit_status, term_signal);
	if (ok)
		log_info("box restore: boxd restore (pid %d) succeeded; re-executing on the restored store", p->pid);
	else
		log_warn("box restore: boxd restore (pid %d) failed (status %lld, signal %d); the box is unchanged",
			 p->pid, (long long)exit_status, term_signal);
	uv_close((uv_handle_t *)p, NULL);
	rc->spawned = false;
	if (!ok)
		atomic_store(&rc->active, false);
	rc->on_end(rc->userdata, ok);
}

static void spawn_failed(struct restore_child *rc, const char *why)
{
	json_t *st = NULL;
	if (box_restore_status_load(rc->cfg, &st) < 0)
		st = json_object();
	json_object_set_new(st, "state", json_string("failed"));
	json_object_set_new(st, "endedAt", json_integer(now_wall_ms()));
	json_object_del(st, "token");
	json_object_set_new(st, "error", json_pack("{s:s, s:s}", "code", "restore_failed", "message", why));
	char err[600];
	box_restore_status_save(rc->cfg, st, err, sizeof(err));
	json_decref(st);
	log_error("box restore: %s", why);
	atomic_store(&rc->active, false);
	rc->on_end(rc->userdata, false);
}

void restore_child_poll(struct restore_child *rc)
{
	pthread_mutex_lock(&rc->mu);
	char **argv = rc->argv;
	rc->argv = NULL;
	pthread_mutex_unlock(&rc->mu);
	if (!argv)
		return;
	char log_path[4096], why[4400];
	int fd = -1;
	if (box_restore_status_path(rc->cfg, "log", log_path, sizeof(log_path)))
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot open the restore's log %s: %s", log_path, strerror(errno));
		free_argv(argv);
		spawn_failed(rc, why);
		return;
	}
	/* The daemon's environment (the store choice, the state dir) plus the
	 * token that lets this child run under the daemon. */
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	char tok[sizeof(rc->token) + sizeof(BOX_RESTORE_TOKEN_ENV) + 2];
	snprintf(tok, sizeof(tok), "%s=%s", BOX_RESTORE_TOKEN_ENV, rc->token);
	size_t k = 0;
	for (size_t i = 0; env && i < n; i++)
		if (strncmp(environ[i], BOX_RESTORE_TOKEN_ENV "=", strlen(BOX_RESTORE_TOKEN_ENV) + 1) != 0)
			env[k++] = environ[i];
	if (env)
		env[k] = tok;
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_INHERIT_FD, .data.fd = fd },
		{ .flags = UV_INHERIT_FD, .data.fd = fd },
	};
	uv_process_options_t po = { .exit_cb = child_exited, .file = rc->self_exe, .args = argv, .env = env,
				    .stdio_count = 3, .stdio = stdio };
	rc->proc.data = rc;
	int r = env ? uv_spawn(rc->loop, &rc->proc, &po) : UV_ENOMEM;
	close(fd);
	free(env);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot start %s restore: %s", rc->self_exe, uv_strerror(r));
		free_argv(argv);
		if (env)
			uv_close((uv_handle_t *)&rc->proc, NULL);
		spawn_failed(rc, why);
		return;
	}
	rc->spawned = true;
	json_t *st = NULL;
	if (box_restore_status_load(rc->cfg, &st) == 0) {
		json_object_set_new(st, "pid", json_integer(rc->proc.pid));
		char err[600];
		box_restore_status_save(rc->cfg, st, err, sizeof(err));
		json_decref(st);
	}
	log_info("box restore: started boxd restore (pid %d); restore mode until it ends", rc->proc.pid);
	free_argv(argv);
}

void restore_child_at_start(const struct boxd_config *cfg)
{
	json_t *st;
	if (box_restore_status_load(cfg, &st) < 0)
		return;
	const char *state = json_string_value(json_object_get(st, "state"));
	bool changed = false;
	char path[4096];
	json_t *res = state && strcmp(state, "running") == 0 &&
			      box_restore_status_path(cfg, "result.json", path, sizeof(path))
			      ? json_load_file(path, 0, NULL)
			      : NULL;
	if (json_is_true(json_object_get(res, "ok"))) {
		/* The daemon stopped, its child went on and finished. */
		json_object_set_new(st, "state", json_string("succeeded"));
		json_object_set_new(st, "endedAt", json_integer(now_wall_ms()));
		json_object_del(st, "token");
		json_object_set(st, "result", json_object_get(res, "result"));
		json_object_set_new(st, "restarted", json_true());
		json_object_set_new(st, "restartedAt", json_integer(now_wall_ms()));
		changed = true;
	} else if (json_is_string(json_object_get(res, "code"))) {
		json_object_set_new(st, "state", json_string("failed"));
		json_object_set_new(st, "endedAt", json_integer(now_wall_ms()));
		json_object_del(st, "token");
		json_object_set_new(st, "error", json_pack("{s:O, s:O}", "code", json_object_get(res, "code"), "message",
							   json_object_get(res, "message")));
		changed = true;
	} else if (state && strcmp(state, "running") == 0) {
		json_object_set_new(st, "state", json_string("failed"));
		json_object_set_new(st, "endedAt", json_integer(now_wall_ms()));
		json_object_del(st, "token");
		json_object_set_new(
			st, "error",
			json_pack("{s:s, s:s}", "code", "interrupted", "message",
				  "boxd stopped while the restore ran; ask for it again with the same source and "
				  "\"force\": true: it resumes from its journal"));
		changed = true;
	} else if (state && strcmp(state, "succeeded") == 0 && !json_is_true(json_object_get(st, "restarted"))) {
		json_object_set_new(st, "restarted", json_true());
		json_object_set_new(st, "restartedAt", json_integer(now_wall_ms()));
		changed = true;
	}
	json_decref(res);
	char err[600];
	if (changed && box_restore_status_save(cfg, st, err, sizeof(err)) < 0)
		log_error("box restore: cannot update its record: %s", err);
	json_decref(st);
}
