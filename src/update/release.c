/* release.c — the install root: `current`, the running release, preflight
 * (see release.h). */
#include "release.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/timeutil.h"

#define PREFLIGHT_TIMEOUT_MS 10000

extern char **environ;

int update_current_read(const char *root, char *ret_target, size_t len, char *err, size_t errlen)
{
	char path[4200], buf[4096];
	snprintf(path, sizeof(path), "%s/current", root);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0 && errno == ENOENT) {
		if (len > 0)
			ret_target[0] = '\0';
		return 0;
	}
	if (n < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot read the symlink %s: %s", path, strerror(e));
		return -e;
	}
	buf[n] = '\0';
	if ((size_t)n >= len) {
		snprintf(err, errlen, "%s points to a path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(ret_target, buf, (size_t)n + 1);
	return 0;
}

int update_current_switch(const char *root, const char *target, char *err, size_t errlen)
{
	char cur[4200], tmp[4200];
	snprintf(cur, sizeof(cur), "%s/current", root);
	if (!target || !*target) {
		if (unlink(cur) < 0 && errno != ENOENT) {
			int e = errno;
			snprintf(err, errlen, "cannot remove %s: %s", cur, strerror(e));
			return -e;
		}
	} else {
		/* A fresh symlink renamed over `current`: readers see the old
		 * target or the new one, never none. */
		snprintf(tmp, sizeof(tmp), "%s/.current.tmp-%d", root, (int)getpid());
		unlink(tmp);
		if (symlink(target, tmp) < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot create the symlink %s: %s", tmp, strerror(e));
			return -e;
		}
		if (rename(tmp, cur) < 0) {
			int e = errno;
			unlink(tmp);
			snprintf(err, errlen, "cannot rename %s over %s: %s", tmp, cur, strerror(e));
			return -e;
		}
	}
	int r = fs_fsync_dir(root);
	if (r < 0) {
		snprintf(err, errlen, "cannot fsync %s: %s", root, strerror(-r));
		return r;
	}
	return 0;
}

int update_current_version(const char *root, char ret_version[UPDATE_VERSION_MAX], char *err, size_t errlen)
{
	char target[4096];
	int r = update_current_read(root, target, sizeof(target), err, errlen);
	if (r < 0)
		return r;
	if (!*target) {
		ret_version[0] = '\0';
		return 0;
	}
	char dir[8300];
	if (target[0] == '/')
		snprintf(dir, sizeof(dir), "%s", target);
	else
		snprintf(dir, sizeof(dir), "%s/%s", root, target);
	if (update_release_version(dir, ret_version, err, errlen) == 0)
		return 0;
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (!update_version_valid(base))
		return -EBADMSG; /* err says why the manifest cannot be read */
	memcpy(ret_version, base, strlen(base) + 1); /* valid: shorter than UPDATE_VERSION_MAX */
	return 0;
}

int update_releases_prune(const char *root, const char *const *keep, size_t n_keep, char *err, size_t errlen)
{
	char target[4096], dir[4200];
	int r = update_current_read(root, target, sizeof(target), err, errlen);
	if (r < 0)
		return r;
	const char *current = strrchr(target, '/');
	current = current ? current + 1 : target;
	snprintf(dir, sizeof(dir), "%s/releases", root);
	DIR *d = opendir(dir);
	if (!d) {
		int e = errno;
		if (e == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot list %s: %s", dir, strerror(e));
		return -e;
	}
	int removed = 0, first_err = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		if (name[0] == '.' || strcmp(name, current) == 0)
			continue;
		bool kept = false;
		for (size_t i = 0; i < n_keep && !kept; i++)
			kept = keep[i] && strcmp(keep[i], name) == 0;
		if (kept || !update_version_valid(name))
			continue;
		char msg[512];
		int rr = update_release_remove(root, name, msg, sizeof(msg));
		if (rr < 0 && !first_err) {
			first_err = rr;
			snprintf(err, errlen, "%s", msg);
		} else if (rr >= 0) {
			removed++;
		}
	}
	closedir(d);
	return first_err ? first_err : removed;
}

/* ---- the running release -------------------------------------------------- */

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static bool running_known;
static char running_version[UPDATE_VERSION_MAX];

/* The version of the release whose bin/ holds `exe`, if `exe` is
 * <root>/releases/<X>/bin/<name>. */
static bool release_of_exe(const char *root_cfg, const char *exe, char ret[UPDATE_VERSION_MAX])
{
	char root[PATH_MAX];
	if (!root_cfg || !realpath(root_cfg, root))
		return false;
	size_t n = strlen(root);
	if (strncmp(exe, root, n) != 0 || strncmp(exe + n, "/releases/", 10) != 0)
		return false;
	const char *x = exe + n + 10, *slash = strchr(x, '/');
	if (!slash || (size_t)(slash - x) >= UPDATE_VERSION_MAX || strncmp(slash, "/bin/", 5) != 0 ||
	    strchr(slash + 5, '/'))
		return false;
	char dirname[UPDATE_VERSION_MAX];
	memcpy(dirname, x, (size_t)(slash - x));
	dirname[slash - x] = '\0';
	char dir[PATH_MAX + 80], err[256];
	snprintf(dir, sizeof(dir), "%s/releases/%s", root, dirname);
	if (update_release_version(dir, ret, err, sizeof(err)) == 0)
		return true;
	if (!update_version_valid(dirname))
		return false;
	snprintf(ret, UPDATE_VERSION_MAX, "%s", dirname);
	return true;
}

const char *update_running_version(const struct boxd_config *cfg)
{
	pthread_mutex_lock(&running_lock);
	if (!running_known) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			/* A binary whose file was replaced shows as "... (deleted)". */
			static const char deleted[] = " (deleted)";
			size_t dl = sizeof(deleted) - 1;
			if ((size_t)n > dl && strcmp(exe + n - dl, deleted) == 0)
				exe[n - dl] = '\0';
		}
		if (n <= 0 || !release_of_exe(cfg->install_root, exe, running_version))
			snprintf(running_version, sizeof(running_version), "%s", BOXD_VERSION);
		running_known = true;
	}
	pthread_mutex_unlock(&running_lock);
	return running_version;
}

/* ---- preflight ------------------------------------------------------------------ */

int update_release_preflight(const char *release_dir, char *err, size_t errlen)
{
	char exe[4200];
	snprintf(exe, sizeof(exe), "%s/bin/boxd", release_dir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *const argv[] = { exe, "version", NULL };
	pid_t pid;
	int r = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		snprintf(err, errlen, "cannot run %s: %s", exe, strerror(r));
		return -r;
	}
	int64_t until = now_mono_ms() + PREFLIGHT_TIMEOUT_MS;
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(err, errlen, "cannot wait for %s: %s", exe, strerror(errno));
			return -errno;
		}
		if (now_mono_ms() >= until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(err, errlen, "%s version did not finish within %d s", exe, PREFLIGHT_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		sleep_us(5000);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(err, errlen, "%s version exited with status %d (cannot run on this host?)", exe,
			 WEXITSTATUS(status));
	else
		snprintf(err, errlen, "%s version was killed by signal %d", exe, WTERMSIG(status));
	return -ENOEXEC;
}
