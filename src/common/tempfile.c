/* tempfile.c — see tempfile.h. */
#include "tempfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define TMP_INFIX ".tmp-"

/* The directory of `path` into dir (PATH_MAX bytes). */
static void dir_of(const char *path, char dir[PATH_MAX])
{
	snprintf(dir, PATH_MAX, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, PATH_MAX, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
}

int tempfile_write(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s" TMP_INFIX "%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	int r = fs_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	/* The rename itself must survive a crash too. */
	char dir[PATH_MAX];
	dir_of(path, dir);
	return fs_fsync_dir(dir);
}

int tempfile_commit(int fd, const char *tmp, const char *path, char *err, size_t errlen)
{
	int own = fd < 0 ? open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	int r = 0;
	if (fd < 0 && own < 0)
		r = -errno;
	else if (fsync(fd < 0 ? own : fd) < 0)
		r = -errno;
	if (own >= 0)
		close(own);
	if (r < 0) {
		snprintf(err, errlen, "cannot fsync %s: %s", tmp, strerror(-r));
		return r;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
		return r;
	}
	char dir[PATH_MAX];
	dir_of(path, dir);
	r = fs_fsync_dir(dir);
	if (r < 0)
		snprintf(err, errlen, "cannot fsync directory %s: %s", dir, strerror(-r));
	return r;
}

/* The writer's pid of a temp file name, or 0 if it is not one. */
static pid_t writer_of(const char *name)
{
	const char *infix = NULL;
	for (const char *p = strstr(name, TMP_INFIX); p; p = strstr(p + 1, TMP_INFIX))
		infix = p;
	if (!infix || infix == name)
		return 0;
	const char *digits = infix + strlen(TMP_INFIX);
	if (!*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 9)
		return 0;
	return (pid_t)atoi(digits);
}

int tempfile_sweep(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		pid_t pid = writer_of(e->d_name);
		if (pid <= 0 || e->d_type == DT_DIR)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue; /* its writer may still be at work */
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
