/* fs.c — see fs.h.
 *
 * Every walk holds a directory descriptor and takes one component at a
 * time with openat(O_NOFOLLOW): the kernel then never resolves more than
 * one name for us, and a name that is a symlink fails the open (ELOOP,
 * or ENOTDIR with O_PATH|O_DIRECTORY). Cleanup: one forward `goto out`
 * per function.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, int e, const char *what, const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
	return -e;
}

int fs_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return fail(err, errlen, ENAMETOOLONG, "cannot create", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		struct stat st;
		if (mkdir(buf, mode) < 0) {
			if (errno != EEXIST)
				return fail(err, errlen, errno, "cannot create", buf);
			if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
				return fail(err, errlen, ENOTDIR, "cannot create", buf);
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	return 0;
}

/* ---- the no-follow walk ------------------------------------------------ */

/* Absolute, and no empty, "." or ".." component ("/" itself is fine). */
static bool normalized(const char *p)
{
	if (!p || p[0] != '/')
		return false;
	if (p[1] == '\0')
		return true;
	for (const char *s = p; *s;) {
		s++; /* the '/' */
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
	}
	return true;
}

static bool is_under(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return path[0] == '/';
	return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The longest trusted root that contains `path` ("/" if none). */
static const char *root_of(const char *const *roots, const char *path)
{
	const char *best = "/";
	for (const char *const *r = roots; r && *r; r++)
		if (**r && normalized(*r) && is_under(path, *r) && strlen(*r) > strlen(best))
			best = *r;
	return best;
}

/* One step of the walk: `name` in `dirfd`, never through a symlink. */
static int open_step(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	if (e == ENOTDIR || e == ELOOP) {
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			return -ELOOP;
	}
	return -e;
}

/* Walk from the root of `path` to the directory holding its last
 * component (stop_before_last) or to the last component itself.
 * *ret_name points at the last component. */
static int walk(const char *const *roots, const char *path, bool stop_before_last, int last_flags, int *ret_fd,
		const char **ret_name)
{
	if (!normalized(path) || strlen(path) >= PATH_MAX)
		return -EINVAL;
	const char *root = root_of(roots, path);
	const char *rest = path + strlen(root);
	while (*rest == '/')
		rest++;
	if (stop_before_last && !*rest)
		return -EINVAL; /* the root itself has no parent we trust */
	int cur = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	if (!*rest) {
		int fd = openat(cur, ".", last_flags | O_CLOEXEC);
		int r = fd < 0 ? -errno : 0;
		close(cur);
		if (r == 0) {
			*ret_fd = fd;
			if (ret_name)
				*ret_name = root;
		}
		return r;
	}
	char comp[NAME_MAX + 1];
	for (const char *s = rest;;) {
		size_t n = strcspn(s, "/");
		bool last = s[n] == '\0';
		if (n > NAME_MAX) {
			close(cur);
			return -ENAMETOOLONG;
		}
		if (last && stop_before_last) {
			/* `cur` is an O_PATH fd; hand out one that can be fsynced. */
			int fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			int r = fd < 0 ? -errno : 0;
			close(cur);
			if (r == 0) {
				*ret_fd = fd;
				*ret_name = s;
			}
			return r;
		}
		memcpy(comp, s, n);
		comp[n] = '\0';
		int fd = open_step(cur, comp, last ? last_flags : O_PATH | O_DIRECTORY);
		close(cur);
		if (fd < 0)
			return fd;
		cur = fd;
		if (last) {
			*ret_fd = cur;
			if (ret_name)
				*ret_name = s;
			return 0;
		}
		s += n + 1;
	}
}

int fs_open_nofollow(const char *const *roots, const char *path, int flags, int *ret_fd)
{
	return walk(roots, path, false, flags, ret_fd, NULL);
}

int fs_open_parent(const char *const *roots, const char *path, int *ret_fd, const char **ret_name)
{
	return walk(roots, path, true, 0, ret_fd, ret_name);
}

/* A message for a failed walk to `path`. */
static int walk_fail(char *err, size_t errlen, int r, const char *what, const char *path)
{
	if (r == -ELOOP)
		snprintf(err, errlen, "%s %s: a component of the path is a symbolic link (boxd never follows one there)",
			 what, path);
	else if (r == -EINVAL)
		snprintf(err, errlen, "%s %s: not an absolute, normalized path", what, path);
	else
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-r));
	return r;
}

int fs_mkdir_nofollow(const char *const *roots, const char *path, mode_t mode, struct fs_id *ret_id, char *err,
		      size_t errlen)
{
	if (!normalized(path) || strlen(path) >= PATH_MAX)
		return walk_fail(err, errlen, -EINVAL, "cannot create", path);
	const char *root = root_of(roots, path);
	int r = fs_mkdir_p(root, mode, err, errlen);
	if (r < 0)
		return r;
	int cur = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return fail(err, errlen, errno, "cannot open", root);
	char comp[NAME_MAX + 1];
	for (const char *s = path + strlen(root); *s;) {
		while (*s == '/')
			s++;
		size_t n = strcspn(s, "/");
		if (n > NAME_MAX) {
			r = walk_fail(err, errlen, -ENAMETOOLONG, "cannot create", path);
			goto out;
		}
		memcpy(comp, s, n);
		comp[n] = '\0';
		if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST) {
			r = walk_fail(err, errlen, -errno, "cannot create", path);
			goto out;
		}
		int fd = open_step(cur, comp, O_PATH | O_DIRECTORY);
		if (fd < 0) {
			r = walk_fail(err, errlen, fd, "cannot create", path);
			goto out;
		}
		close(cur);
		cur = fd;
		s += n;
	}
	if (ret_id) {
		struct stat st;
		if (fstat(cur, &st) < 0) {
			r = fail(err, errlen, errno, "cannot stat", path);
			goto out;
		}
		*ret_id = (struct fs_id){ .dev = st.st_dev, .ino = st.st_ino };
	}
	r = 0;
out:
	close(cur);
	return r;
}

/* ---- removing a tree ---------------------------------------------------- */

/* Remove everything inside the directory open as `dfd` (same device only). */
static int remove_contents(int dfd, dev_t dev, const char *where, char *err, size_t errlen)
{
	int fd2 = dup(dfd);
	if (fd2 < 0)
		return fail(err, errlen, errno, "cannot read", where);
	DIR *d = fdopendir(fd2);
	if (!d) {
		close(fd2);
		return fail(err, errlen, errno, "cannot read", where);
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = fail(err, errlen, errno, "cannot stat an entry of", where);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				snprintf(err, errlen, "refusing to delete %s/%s: another filesystem is mounted there", where,
					 de->d_name);
				r = -EXDEV;
				break;
			}
			int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = fail(err, errlen, errno, "cannot open a directory in", where);
				break;
			}
			r = remove_contents(sub, dev, where, err, errlen);
			close(sub);
			if (r == 0 && unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0)
				r = fail(err, errlen, errno, "cannot remove a directory in", where);
		} else if (unlinkat(dfd, de->d_name, 0) < 0) {
			r = fail(err, errlen, errno, "cannot remove a file in", where);
		}
	}
	if (r == 0 && errno)
		r = fail(err, errlen, errno, "cannot read", where);
	closedir(d);
	return r;
}


/* Remove the tree `name` of `dirfd`; `shown` names it in messages. */
static int remove_tree_at(int dirfd, const char *name, const char *shown, char *err, size_t errlen)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : fail(err, errlen, errno, "cannot delete", shown);
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "refusing to delete %s: not a directory (only a directory tree is deleted)", shown);
		return -ENOTDIR;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, errno, "cannot delete", shown);
	/* The device of what we opened (the name may have been swapped for
	 * another directory since the fstatat: that one is what we empty). */
	int r = fstat(fd, &st) < 0 ? fail(err, errlen, errno, "cannot delete", shown) : 0;
	if (r == 0)
		r = remove_contents(fd, st.st_dev, shown, err, errlen);
	close(fd);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		r = fail(err, errlen, errno, "cannot delete", shown);
	return r;
}

int fs_remove_tree_at(int dirfd, const char *name, char *err, size_t errlen)
{
	return remove_tree_at(dirfd, name, name, err, errlen);
}

int fs_remove_tree(const char *const *roots, const char *path, char *err, size_t errlen)
{
	int pfd;
	const char *name;
	int r = fs_open_parent(roots, path, &pfd, &name);
	if (r == -ENOENT)
		return 0; /* no parent, no tree */
	if (r < 0)
		return walk_fail(err, errlen, r, "refusing to delete", path);
	r = remove_tree_at(pfd, name, path, err, errlen);
	close(pfd);
	return r;
}

/* ---- copying and moving ---------------------------------------------------- */

static int copy_file(int sdir, int ddir, const char *name, const struct stat *st, const char *where, char *err,
		     size_t errlen)
{
	int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return fail(err, errlen, errno, "cannot read a file in", where);
	int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 07777);
	if (out < 0) {
		int e = errno;
		close(in);
		return fail(err, errlen, e, "cannot create a file in", where);
	}
	int r = 0;
	char buf[1 << 16];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail(err, errlen, errno, "cannot read a file in", where);
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				r = fail(err, errlen, errno, "cannot write a file in", where);
				break;
			}
			off += w;
		}
		if (r < 0)
			break;
	}
	if (r == 0 && fsync(out) < 0)
		r = fail(err, errlen, errno, "cannot sync a file in", where);
	if (r == 0) {
		(void)!fchown(out, st->st_uid, st->st_gid);
		fchmod(out, st->st_mode & 07777);
		struct timespec times[2] = { st->st_atim, st->st_mtim };
		futimens(out, times);
	}
	close(in);
	close(out);
	return r;
}

static int copy_contents(int sdir, int ddir, const char *where, char *err, size_t errlen)
{
	int fd2 = dup(sdir);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!d) {
		if (fd2 >= 0)
			close(fd2);
		return fail(err, errlen, errno, "cannot read", where);
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(sdir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = fail(err, errlen, errno, "cannot stat an entry of", where);
		} else if (S_ISDIR(st.st_mode)) {
			if (mkdirat(ddir, de->d_name, 0700) < 0) {
				r = fail(err, errlen, errno, "cannot create a directory in", where);
				break;
			}
			int s2 = openat(sdir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int d2 = openat(ddir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s2 < 0 || d2 < 0)
				r = fail(err, errlen, errno, "cannot open a directory in", where);
			else
				r = copy_contents(s2, d2, where, err, errlen);
			if (d2 >= 0) {
				(void)!fchown(d2, st.st_uid, st.st_gid);
				fchmod(d2, st.st_mode & 07777);
				struct timespec times[2] = { st.st_atim, st.st_mtim };
				futimens(d2, times);
				fsync(d2);
				close(d2);
			}
			if (s2 >= 0)
				close(s2);
		} else if (S_ISREG(st.st_mode)) {
			r = copy_file(sdir, ddir, de->d_name, &st, where, err, errlen);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(sdir, de->d_name, target, sizeof(target) - 1);
			if (n < 0) {
				r = fail(err, errlen, errno, "cannot read a link in", where);
				break;
			}
			target[n] = '\0';
			if (symlinkat(target, ddir, de->d_name) < 0)
				r = fail(err, errlen, errno, "cannot create a link in", where);
			else
				(void)!fchownat(ddir, de->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
		}
		/* Sockets, fifos and devices are not data: skipped. */
	}
	closedir(d);
	return r;
}


/* Copy the contents of `sfd` into the new directory `name` of `dpfd`, then
 * give it the owner, mode and times of `st` (the source directory). */
static int copy_dir_into(int sfd, const struct stat *st, int dpfd, const char *name, const char *where, char *err,
			 size_t errlen)
{
	if (mkdirat(dpfd, name, 0700) < 0)
		return fail(err, errlen, errno, "cannot create a directory in", where);
	int d = openat(dpfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return fail(err, errlen, errno, "cannot open a directory in", where);
	int r = copy_contents(sfd, d, where, err, errlen);
	if (r == 0) {
		(void)!fchown(d, st->st_uid, st->st_gid);
		fchmod(d, st->st_mode & 07777);
		struct timespec times[2] = { st->st_atim, st->st_mtim };
		futimens(d, times);
		if (fsync(d) < 0)
			r = fail(err, errlen, errno, "cannot sync", where);
	}
	close(d);
	return r;
}

int fs_move_tree(const char *const *roots, const char *src, const char *dst, struct fs_id *ret_id, char *err,
		 size_t errlen)
{
	int spfd = -1, dpfd = -1, sfd = -1, r;
	const char *sname, *dname;
	char tmp[NAME_MAX + 1] = "";
	r = fs_open_parent(roots, src, &spfd, &sname);
	if (r < 0) {
		r = walk_fail(err, errlen, r, "cannot move", src);
		goto out;
	}
	struct stat st;
	if (fstatat(spfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = fail(err, errlen, errno, "cannot move", src);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		r = fail(err, errlen, ENOTDIR, "cannot move", src);
		goto out;
	}
	/* The parent of dst, created without following symlinks. */
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dst);
	char *slash = strrchr(parent, '/');
	if (!slash || slash == parent || !normalized(dst)) {
		r = walk_fail(err, errlen, -EINVAL, "cannot move to", dst);
		goto out;
	}
	*slash = '\0';
	if ((r = fs_mkdir_nofollow(roots, parent, 0750, NULL, err, errlen)) < 0)
		goto out;
	r = fs_open_parent(roots, dst, &dpfd, &dname);
	if (r < 0) {
		r = walk_fail(err, errlen, r, "cannot move to", dst);
		goto out;
	}
	/* The target may be missing or an empty directory, nothing else:
	 * refuse before anything is copied. */
	struct stat dst_st;
	if (fstatat(dpfd, dname, &dst_st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (!S_ISDIR(dst_st.st_mode) || unlinkat(dpfd, dname, AT_REMOVEDIR) < 0)) {
		r = fail(err, errlen, EEXIST, "cannot move: the target exists and is not an empty directory:", dst);
		goto out;
	}
	if (renameat(spfd, sname, dpfd, dname) == 0) {
		fsync(dpfd);
		fsync(spfd);
		goto done;
	}
	if (errno != EXDEV) {
		r = fail(err, errlen, errno, "cannot move to", dst);
		goto out;
	}
	/* Another filesystem: copy beside the target, then swap it in. */
	if (snprintf(tmp, sizeof(tmp), "%.200s.boxd-move-tmp", dname) >= (int)sizeof(tmp)) {
		r = fail(err, errlen, ENAMETOOLONG, "cannot move to", dst);
		tmp[0] = '\0';
		goto out;
	}
	char ignored[256];
	fs_remove_tree_at(dpfd, tmp, ignored, sizeof(ignored)); /* a leftover of a crash */
	sfd = openat(spfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) < 0) {
		r = fail(err, errlen, errno, "cannot read", src);
		goto out;
	}
	if ((r = copy_dir_into(sfd, &st, dpfd, tmp, src, err, errlen)) < 0)
		goto out;
	if (renameat(dpfd, tmp, dpfd, dname) < 0) {
		r = fail(err, errlen, errno, "cannot move into place", dst);
		goto out;
	}
	tmp[0] = '\0';
	fsync(dpfd);
	if ((r = remove_tree_at(spfd, sname, src, err, errlen)) < 0)
		goto out;
done:
	if (ret_id) {
		if (fstatat(dpfd, dname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = fail(err, errlen, errno, "cannot stat", dst);
			goto out;
		}
		*ret_id = (struct fs_id){ .dev = st.st_dev, .ino = st.st_ino };
	}
	r = 0;
out:
	if (tmp[0] && dpfd >= 0) {
		char ignored2[256];
		fs_remove_tree_at(dpfd, tmp, ignored2, sizeof(ignored2));
	}
	if (sfd >= 0)
		close(sfd);
	if (spfd >= 0)
		close(spfd);
	if (dpfd >= 0)
		close(dpfd);
	return r;
}

bool fs_dir_is_free(const char *path, bool *ret_exists)
{
	struct stat st;
	bool exists = lstat(path, &st) == 0;
	if (ret_exists)
		*ret_exists = exists;
	if (!exists)
		return errno == ENOENT;
	if (!S_ISDIR(st.st_mode))
		return false;
	DIR *d = opendir(path);
	if (!d)
		return false;
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}
