/* fs.c — see fs.h. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
			if (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
				return fail(err, errlen, ENOTDIR, "cannot create", buf);
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	return 0;
}

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

int fs_remove_tree(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail(err, errlen, errno, "cannot delete", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? fail(err, errlen, errno, "cannot delete", path) : 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, errno, "cannot delete", path);
	int r = remove_contents(fd, st.st_dev, path, err, errlen);
	close(fd);
	if (r == 0 && rmdir(path) < 0)
		r = fail(err, errlen, errno, "cannot delete", path);
	return r;
}

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

int fs_copy_tree(const char *src, const char *dst, char *err, size_t errlen)
{
	struct stat st;
	int s = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s < 0 || fstat(s, &st) < 0) {
		int e = errno;
		if (s >= 0)
			close(s);
		return fail(err, errlen, e, "cannot read", src);
	}
	if (mkdir(dst, 0700) < 0) {
		int e = errno;
		close(s);
		return fail(err, errlen, e, "cannot create", dst);
	}
	int d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = d < 0 ? fail(err, errlen, errno, "cannot open", dst) : copy_contents(s, d, src, err, errlen);
	if (d >= 0) {
		(void)!fchown(d, st.st_uid, st.st_gid);
		fchmod(d, st.st_mode & 07777);
		fsync(d);
		close(d);
	}
	close(s);
	return r;
}

int fs_move_tree(const char *src, const char *dst, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dst);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	/* The target may be missing or an empty directory, nothing else:
	 * refuse before anything is copied. */
	struct stat st;
	if (lstat(dst, &st) == 0 && (!S_ISDIR(st.st_mode) || rmdir(dst) < 0))
		return fail(err, errlen, EEXIST, "cannot move: the target exists and is not an empty directory:", dst);
	int r = fs_mkdir_p(parent, 0750, err, errlen);
	if (r < 0)
		return r;
	if (rename(src, dst) == 0) {
		fs_fsync_dir(parent);
		return 0;
	}
	if (errno != EXDEV)
		return fail(err, errlen, errno, "cannot move to", dst);
	/* Another filesystem: copy beside the target, then swap it in. */
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.boxd-move-tmp", dst);
	fs_remove_tree(tmp, err, errlen);
	r = fs_copy_tree(src, tmp, err, errlen);
	if (r < 0) {
		char ignored[64];
		fs_remove_tree(tmp, ignored, sizeof(ignored));
		return r;
	}
	if (rename(tmp, dst) < 0) {
		int e = errno;
		char ignored[64];
		fs_remove_tree(tmp, ignored, sizeof(ignored));
		return fail(err, errlen, e, "cannot move into place", dst);
	}
	fs_fsync_dir(parent);
	return fs_remove_tree(src, err, errlen);
}
