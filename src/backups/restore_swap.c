/* restore_swap.c — see restore_swap.h. One forward `goto out`. */
#include "restore_swap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The names of the entries of the directory open as `fd`, without "." and
 * "..", nor the names in `skip` (NULL entries allowed). */
static int list_names(int fd, const char *const skip[2], char ***ret, size_t *ret_n)
{
	int dfd = dup(fd);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return -e;
	}
	rewinddir(d);
	char **v = NULL;
	size_t n = 0;
	int r = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || (skip[0] && strcmp(name, skip[0]) == 0) ||
		    (skip[1] && strcmp(name, skip[1]) == 0))
			continue;
		char **grown = realloc(v, (n + 1) * sizeof(*v));
		char *copy = strdup(name);
		if (!grown || !copy) {
			free(copy);
			if (grown)
				v = grown;
			r = -ENOMEM;
			break;
		}
		v = grown;
		v[n++] = copy;
		errno = 0;
	}
	if (!r && errno)
		r = -errno;
	closedir(d);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Move names[0..n) from `from` to `to`; on failure move back what moved
 * and return -errno with *ret_failed set to the name that failed. */
static int move_all(int from, int to, char **names, size_t n, const char **ret_failed)
{
	for (size_t i = 0; i < n; i++) {
		if (renameat(from, names[i], to, names[i]) == 0)
			continue;
		int e = errno;
		*ret_failed = names[i];
		while (i-- > 0)
			renameat(to, names[i], from, names[i]);
		return -e;
	}
	return 0;
}

static void move_back(int from, int to, char **names, size_t n)
{
	for (size_t i = n; i-- > 0;)
		renameat(to, names[i], from, names[i]);
}

int restore_swap_children(struct restore_swap *sw, char *err, size_t errlen)
{
	int dir = -1, fresh = -1, aside = -1, r;
	char **old = NULL, **new = NULL;
	size_t n_old = 0, n_new = 0;
	const char *failed = "";
	const char *none[2] = { NULL, NULL };

	dir = openat(sw->base_fd, sw->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	fresh = dir < 0 ? -1 : openat(sw->base_fd, sw->fresh, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0 || fresh < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open %s: %s", dir < 0 ? sw->dir : sw->fresh, strerror(-r));
		goto out;
	}
	if (mkdirat(sw->base_fd, sw->aside, 0700) < 0 ||
	    (aside = openat(sw->base_fd, sw->aside, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make %s: %s", sw->aside, strerror(-r));
		goto out;
	}
	/* The extracted root's mode, owner and times, before the moves below
	 * change its times. */
	struct stat st;
	bool have_st = fstat(fresh, &st) == 0;
	if ((r = list_names(dir, sw->skip, &old, &n_old)) < 0 || (r = list_names(fresh, none, &new, &n_new)) < 0) {
		snprintf(err, errlen, "cannot list %s: %s", old ? sw->fresh : sw->dir, strerror(-r));
		goto out;
	}
	r = move_all(dir, aside, old, n_old, &failed);
	if (r < 0) {
		snprintf(err, errlen, "cannot move %s/%s aside: %s (nothing was changed)", sw->dir, failed, strerror(-r));
		goto out;
	}
	r = move_all(fresh, dir, new, n_new, &failed);
	if (r < 0) {
		move_back(dir, aside, old, n_old);
		snprintf(err, errlen, "cannot move the restored %s into %s: %s (nothing was changed)", failed, sw->dir,
			 strerror(-r));
		goto out;
	}
	/* The data dir looks like the archive's root. Failures here leave the
	 * data restored with the dir's old mode: not worth undoing it. */
	if (have_st) {
		if (fchown(dir, st.st_uid, st.st_gid) < 0 || fchmod(dir, st.st_mode & 07777) < 0)
			snprintf(err, errlen, "restored, but the data dir keeps its old owner or mode: %s", strerror(errno));
		sw->times[0] = st.st_atim;
		sw->times[1] = st.st_mtim;
		futimens(dir, sw->times);
	}
	fsync(dir);
	fsync(aside);
	fsync(fresh);
	r = 0;
out:
	free_names(old, n_old);
	free_names(new, n_new);
	if (dir >= 0)
		close(dir);
	if (fresh >= 0)
		close(fresh);
	if (aside >= 0)
		close(aside);
	return r;
}
