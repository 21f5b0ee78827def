/* bind_source.c — see bind_source.h. */
#include "bind_source.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int bind_source_check(const char *const *roots, const struct bind_source *b, struct fs_id *ret_id, char *err,
		      size_t errlen)
{
	int fd;
	int r = fs_open_nofollow(roots, b->path, O_PATH | O_DIRECTORY, &fd);
	if (r < 0) {
		if (r == -ELOOP)
			snprintf(err, errlen,
				 "%s %s: a component of the path is a symbolic link; boxd does not hand it to the engine",
				 b->what, b->path);
		else if (r == -ENOTDIR)
			snprintf(err, errlen, "%s %s: not a directory (or a component of the path is not)", b->what,
				 b->path);
		else
			snprintf(err, errlen, "%s %s: %s", b->what, b->path, strerror(-r));
		return r;
	}
	struct stat st;
	r = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "%s %s: %s", b->what, b->path, strerror(-r));
		return r;
	}
	struct fs_id id = { .dev = st.st_dev, .ino = st.st_ino };
	if (b->expect && (b->expect->dev != id.dev || b->expect->ino != id.ino)) {
		snprintf(err, errlen,
			 "%s %s is not the directory boxd made there (device/inode %llu/%llu, recorded %llu/%llu): it was "
			 "replaced; boxd does not hand it to the engine",
			 b->what, b->path, (unsigned long long)id.dev, (unsigned long long)id.ino,
			 (unsigned long long)b->expect->dev, (unsigned long long)b->expect->ino);
		return -EXDEV;
	}
	if (ret_id)
		*ret_id = id;
	return 0;
}

/* openat2(RESOLVE_IN_ROOT): `path` resolved as if `root_fd` were "/",
 * symlinks in the container's tree included. -ENOSYS on old kernels. */
static int open_in_root(int root_fd, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

int bind_source_check_mounted(pid_t pid, const char *target, const struct fs_id *want, const char *what, char *err,
			      size_t errlen)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot look into the container (pid %d): %s", (int)pid, strerror(e));
		return e == ENOENT ? -ESRCH : e == EPERM ? -EACCES : -e;
	}
	while (*target == '/')
		target++;
	int fd = open_in_root(rfd, target);
	struct stat st;
	int r;
	if (fd == -ENOSYS) /* no openat2: the mount point itself is not a symlink */
		r = fstatat(rfd, target, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	else if (fd < 0)
		r = fd;
	else {
		r = fstat(fd, &st) < 0 ? -errno : 0;
		close(fd);
	}
	close(rfd);
	if (r < 0) {
		snprintf(err, errlen, "cannot check what the container got at /%s: %s", target, strerror(-r));
		return r;
	}
	if ((uint64_t)st.st_dev != want->dev || (uint64_t)st.st_ino != want->ino) {
		snprintf(err, errlen,
			 "the container got another directory at /%s than %s (device/inode %llu/%llu, expected %llu/%llu): "
			 "the source was replaced while the engine started it",
			 target, what, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (unsigned long long)want->dev, (unsigned long long)want->ino);
		return -EXDEV;
	}
	return 0;
}
