/* reexec.c — the update's hand-over to a new release (see reexec.h). */
#include "reexec.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/proc.h"
#include "common/tempfile.h"
#include "common/timeutil.h"

#define PIDFILE "boxd.pid"
#define REQUEST "update-reexec.json"
#define RESULT "update-reexec-result.json"
#define WAIT_POLL_US 5000

static void state_path(const struct boxd_config *cfg, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", cfg->state_dir, name);
}

/* temp file, fsync, rename over the target, fsync the dir. */
static int write_atomic(const struct boxd_config *cfg, const char *name, const char *text, char *err, size_t errlen)
{
	char path[4200];
	state_path(cfg, name, path, sizeof(path));
	int r = tempfile_write(path, text, strlen(text), 0640);
	if (r < 0)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
	return r;
}

static json_t *read_json(const struct boxd_config *cfg, const char *name)
{
	char path[4200];
	state_path(cfg, name, path, sizeof(path));
	return json_load_file(path, 0, NULL);
}

static void remove_file(const struct boxd_config *cfg, const char *name)
{
	char path[4200];
	state_path(cfg, name, path, sizeof(path));
	if (unlink(path) == 0)
		fs_fsync_dir(cfg->state_dir);
}

static int write_result(const struct boxd_config *cfg, int64_t task, bool ok, const char *version, const char *error,
			char *err, size_t errlen)
{
	json_t *o = json_pack("{s:I, s:b, s:s, s:i, s:s?}", "task", (json_int_t)task, "ok", ok, "version",
			      version ? version : "", "pid", (int)getpid(), "error", error);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = write_atomic(cfg, RESULT, text, err, errlen);
	free(text);
	return r;
}

/* ---- the daemon --------------------------------------------------------------- */

int update_pidfile_write(const struct boxd_config *cfg, char *err, size_t errlen)
{
	uint64_t start = 0;
	int r = proc_start_time(getpid(), &start);
	if (r < 0) {
		snprintf(err, errlen, "cannot read this process's start time: %s", strerror(-r));
		return r;
	}
	char text[64];
	snprintf(text, sizeof(text), "%d %llu\n", (int)getpid(), (unsigned long long)start);
	return write_atomic(cfg, PIDFILE, text, err, errlen);
}

int update_reexec_pending(const struct boxd_config *cfg, int64_t *ret_task, char *ret_exe, size_t exe_len, char *err,
			  size_t errlen)
{
	json_t *req = read_json(cfg, REQUEST);
	if (!req) {
		snprintf(err, errlen, "no update is waiting for a re-exec");
		return -ENOENT;
	}
	int64_t task = json_integer_value(json_object_get(req, "task"));
	json_decref(req);
	if (task <= 0) {
		snprintf(err, errlen, "%s/%s does not name a task", cfg->state_dir, REQUEST);
		return -EBADMSG;
	}
	char exe[PATH_MAX];
	snprintf(exe, sizeof(exe), "%s/current/bin/boxd", cfg->install_root);
	if (access(exe, X_OK) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot execute %s: %s", exe, strerror(e));
		return -e;
	}
	if (strlen(exe) >= exe_len) {
		snprintf(err, errlen, "path too long: %s", exe);
		return -ENAMETOOLONG;
	}
	memcpy(ret_exe, exe, strlen(exe) + 1);
	*ret_task = task;
	return 0;
}

int update_reexec_exec(const struct boxd_config *cfg, int64_t task_id, const char *exe, char *const argv[],
		       const char *fallback_exe, char *err, size_t errlen)
{
	/* A clean slate for the new image: no blocked signals (the mask is
	 * inherited across execve, handlers are not). Every descriptor boxd
	 * opens is close-on-exec; stdout and stderr stay (the daemon's log). */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	fflush(NULL);
	execv(exe, argv);
	int e = errno;
	char why[600], e2[256];
	snprintf(why, sizeof(why), "cannot execute %s: %s; boxd restarted on its previous binary", exe, strerror(e));
	write_result(cfg, task_id, false, NULL, why, e2, sizeof(e2));
	remove_file(cfg, REQUEST);
	fprintf(stderr, "boxd: %s\n", why);
	fflush(NULL);
	execv(fallback_exe, argv);
	snprintf(err, errlen, "cannot execute %s (%s) nor %s (%s)", exe, strerror(e), fallback_exe, strerror(errno));
	return -e;
}

int update_reexec_finish(const struct boxd_config *cfg, int64_t *ret_task, char *err, size_t errlen)
{
	json_t *req = read_json(cfg, REQUEST);
	if (!req)
		return 0;
	int64_t task = json_integer_value(json_object_get(req, "task"));
	json_decref(req);
	int r = write_result(cfg, task, true, update_running_version(cfg), NULL, err, errlen);
	if (r < 0)
		return r;
	remove_file(cfg, REQUEST);
	if (ret_task)
		*ret_task = task;
	return 1;
}

/* ---- the update worker ---------------------------------------------------------- */

static int read_daemon(const struct boxd_config *cfg, pid_t *ret_pid, char *err, size_t errlen)
{
	char path[4200];
	state_path(cfg, PIDFILE, path, sizeof(path));
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "cannot read %s (is boxd serving?): %s", path, strerror(e));
		return -ESRCH;
	}
	int pid = 0;
	unsigned long long start = 0;
	int n = fscanf(f, "%d %llu", &pid, &start);
	fclose(f);
	if (n != 2 || pid <= 0) {
		snprintf(err, errlen, "%s does not hold \"PID STARTTIME\"", path);
		return -EBADMSG;
	}
	if (proc_check(pid, start) != PROC_ALIVE) {
		snprintf(err, errlen, "the daemon recorded in %s (pid %d) is not running", path, pid);
		return -ESRCH;
	}
	*ret_pid = pid;
	return 0;
}

int update_reexec_request(const struct boxd_config *cfg, int64_t task_id, const char *version, char *err,
			  size_t errlen)
{
	pid_t pid;
	int r = read_daemon(cfg, &pid, err, errlen);
	if (r < 0)
		return r;
	remove_file(cfg, RESULT); /* an answer left from an earlier attempt */
	json_t *o = json_pack("{s:I, s:s, s:I}", "task", (json_int_t)task_id, "version", version, "requestedAt",
			      (json_int_t)now_wall_ms());
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = write_atomic(cfg, REQUEST, text, err, errlen);
	free(text);
	if (r < 0)
		return r;
	if (kill(pid, SIGUSR2) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot signal the daemon (pid %d): %s", (int)pid, strerror(errno));
		remove_file(cfg, REQUEST);
		return r;
	}
	return 0;
}

int update_reexec_wait(const struct boxd_config *cfg, int64_t task_id, int64_t timeout_ms,
		       char ret_version[UPDATE_VERSION_MAX], int *ret_pid, char *err, size_t errlen)
{
	int64_t until = now_mono_ms() + timeout_ms;
	for (;;) {
		json_t *res = read_json(cfg, RESULT);
		if (res && json_integer_value(json_object_get(res, "task")) == task_id) {
			bool ok = json_is_true(json_object_get(res, "ok"));
			const char *v = json_string_value(json_object_get(res, "version"));
			const char *why = json_string_value(json_object_get(res, "error"));
			int r = 0;
			if (ok) {
				snprintf(ret_version, UPDATE_VERSION_MAX, "%s", v ? v : "");
				if (ret_pid)
					*ret_pid = (int)json_integer_value(json_object_get(res, "pid"));
			} else {
				snprintf(err, errlen, "%s", why ? why : "the daemon could not re-execute");
				r = -EIO;
			}
			json_decref(res);
			remove_file(cfg, RESULT);
			return r;
		}
		json_decref(res);
		if (now_mono_ms() >= until) {
			snprintf(err, errlen, "boxd did not come back within %lld s", (long long)(timeout_ms / 1000));
			return -ETIMEDOUT;
		}
		sleep_us(WAIT_POLL_US);
	}
}

void update_reexec_cancel(const struct boxd_config *cfg, int64_t task_id)
{
	json_t *req = read_json(cfg, REQUEST);
	if (req && json_integer_value(json_object_get(req, "task")) == task_id)
		remove_file(cfg, REQUEST);
	json_decref(req);
}
