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

/* boxd's own directories (not for apps or volumes), and the root that
 * `path` may lie in although that root is inside one of them. */
static int check_own_dirs(const struct boxd_config *cfg, const char *path, const char *role_root, char *err,
			  size_t errlen)
{
	const struct {
		const char *dir, *what;
	} own[] = {
		{ cfg->state_dir, "boxd's state dir" },
		{ cfg->install_root, "boxd's install root" },
		{ cfg->backups_dir, "the backup dir" },
		{ cfg->appsdata_root, "the appsdata root" },
		{ cfg->volumes_root, "the volumes root" },
	};
	size_t n = sizeof(own) / sizeof(own[0]);
	/* First the dirs it would hold: the more telling message. */
	for (size_t i = 0; i < n; i++) {
		const char *d = own[i].dir;
		if (d && *d && path_is_under(d, path)) {
			snprintf(err, errlen, "%s: %s (%s) or a parent of it is not allowed", path, own[i].what, d);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const char *d = own[i].dir;
		if (!d || !*d || !path_is_under(path, d) || (role_root && strcmp(d, role_root) == 0))
			continue;
		/* Inside: only below the role's root, where that root lies in
		 * this dir by design (the default <state>/volumes; the state
		 * dir may also be the install root). */
		bool allowed = role_root && *role_root && path_is_under(path, role_root) && strcmp(path, role_root) != 0 &&
			       path_is_under(role_root, d);
		if (!allowed) {
			snprintf(err, errlen, "%s: paths inside %s (%s) are not allowed", path, own[i].what, d);
			return -EINVAL;
		}
	}
	return 0;
}

int path_check_volume(const struct boxd_config *cfg, const char *path, char *err, size_t errlen)
{
	int r = path_check(path, NULL, true, err, errlen);
	if (r < 0)
		return r;
	if ((r = check_own_dirs(cfg, path, cfg->volumes_root, err, errlen)) < 0)
		return r;
	if (cfg->volumes_root && path_is_under(path, cfg->volumes_root) && strcmp(path, cfg->volumes_root) != 0)
		return 0;
	static const char *const allowed[] = { "/mnt", "/media", "/srv", "/opt" };
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (path_is_under(path, allowed[i]))
			return 0;
	snprintf(err, errlen, "%s: a volume outside the volumes root must lie under /mnt, /media, /srv or /opt", path);
	return -EINVAL;
}

int path_check_app_data(const struct boxd_config *cfg, const char *path, char *err, size_t errlen)
{
	int r = path_check(path, NULL, true, err, errlen);
	return r < 0 ? r : check_own_dirs(cfg, path, NULL, err, errlen);
}

int path_check_backup_file(const struct boxd_config *cfg, const char *path, char *err, size_t errlen)
{
	const char *dir = cfg->backups_dir;
	size_t n = dir ? strlen(dir) : 0;
	if (!path || !dir || !normalized(dir) || strncmp(path, dir, n) != 0 || path[n] != '/' || !path[n + 1] ||
	    path[n + 1] == '.' || strchr(path + n + 1, '/')) {
		snprintf(err, errlen, "%s: not a file in the backup dir %s", path ? path : "(none)", dir ? dir : "?");
		return -EINVAL;
	}
	return 0;
}

void paths_trusted_roots(const struct boxd_config *cfg, const char *ret[PATHS_TRUSTED_MAX + 1])
{
	const char *all[] = { cfg->appsdata_root, cfg->volumes_root, cfg->backups_dir, cfg->state_dir,
			      cfg->install_root };
	size_t n = 0;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i] && all[i][0] == '/')
			ret[n++] = all[i];
	ret[n] = NULL;
}
