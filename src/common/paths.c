/* paths.c — see paths.h. */
#include "paths.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const system_dirs[] = {
	"/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
	"/run", "/var/run", "/var/lib/dpkg", "/var/lib/apt", "/var/log", "/root", "/tmp/.X11-unix",
};

bool path_is_under(const char *path, const char *parent)
{
	size_t n = strlen(parent);
	if (n == 1 && parent[0] == '/')
		return path[0] == '/';
	return strncmp(path, parent, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int fail(char *err, size_t errlen, const char *fmt, const char *path)
{
	snprintf(err, errlen, fmt, path);
	return -EINVAL;
}

static bool normalized(const char *p)
{
	if (p[0] != '/' || strcmp(p, "/") == 0)
		return false;
	for (const char *s = p; *s; s++) {
		if (*s != '/')
			continue;
		const char *c = s + 1;
		size_t len = strcspn(c, "/");
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
	}
	return true;
}

/* No existing component may be a symlink: lstat each prefix. */
static int no_symlinks(const char *path, char *err, size_t errlen)
{
	char prefix[4096];
	size_t len = strlen(path);
	if (len >= sizeof(prefix))
		return fail(err, errlen, "path too long: %s", path);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(prefix, path, i);
		prefix[i] = '\0';
		struct stat st;
		if (lstat(prefix, &st) < 0) {
			if (errno == ENOENT)
				return 0; /* the rest does not exist yet */
			snprintf(err, errlen, "cannot check %s: %s", prefix, strerror(errno));
			return -EINVAL;
		}
		if (S_ISLNK(st.st_mode)) {
			snprintf(err, errlen, "%s: %s is a symbolic link; use the real path", path, prefix);
			return -EINVAL;
		}
		if (path[i] != '\0' && !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: %s is not a directory", path, prefix);
			return -EINVAL;
		}
	}
	return 0;
}

int path_check(const char *path, const char *state_dir, bool allow_in_state, char *err, size_t errlen)
{
	if (!path || !*path)
		return fail(err, errlen, "empty path%s", "");
	if (strlen(path) >= 4000)
		return fail(err, errlen, "path too long: %.64s...", path);
	if (path[0] != '/')
		return fail(err, errlen, "%s: the path must be absolute", path);
	if (strcmp(path, "/") == 0)
		return fail(err, errlen, "%s: the root directory is not allowed", path);
	if (!normalized(path))
		return fail(err, errlen, "%s: the path must be normalized (no '.', '..', '//' or trailing '/')", path);
	for (size_t i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]); i++) {
		if (path_is_under(path, system_dirs[i])) {
			snprintf(err, errlen, "%s: paths under %s are not allowed", path, system_dirs[i]);
			return -EINVAL;
		}
	}
	if (strcmp(path, "/var") == 0 || strcmp(path, "/var/lib") == 0 || strcmp(path, "/home") == 0 ||
	    strcmp(path, "/mnt") == 0 || strcmp(path, "/media") == 0 || strcmp(path, "/srv") == 0 ||
	    strcmp(path, "/opt") == 0)
		return fail(err, errlen, "%s: a top-level system directory is not allowed", path);
	if (state_dir && *state_dir) {
		if (strcmp(path, state_dir) == 0 || path_is_under(state_dir, path))
			return fail(err, errlen, "%s: boxd's state dir (or a parent of it) is not allowed", path);
		if (!allow_in_state && path_is_under(path, state_dir))
			return fail(err, errlen, "%s: paths inside boxd's state dir are not allowed here", path);
	}
	return no_symlinks(path, err, errlen);
}

int path_check_volume(const char *path, const char *volumes_root, const char *state_dir, char *err, size_t errlen)
{
	bool in_root = volumes_root && path_is_under(path, volumes_root) && strcmp(path, volumes_root) != 0;
	int r = path_check(path, state_dir, in_root, err, errlen);
	if (r < 0)
		return r;
	if (in_root)
		return 0;
	static const char *const allowed[] = { "/mnt", "/media", "/srv", "/opt" };
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (path_is_under(path, allowed[i]))
			return 0;
	snprintf(err, errlen, "%s: a volume outside the volumes root must lie under /mnt, /media, /srv or /opt", path);
	return -EINVAL;
}

int path_check_app_data(const char *path, const char *state_dir, char *err, size_t errlen)
{
	return path_check(path, state_dir, true, err, errlen);
}
