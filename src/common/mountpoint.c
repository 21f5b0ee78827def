/* mountpoint.c — see mountpoint.h. */
#include "mountpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MOUNTINFO_MAX (16 * 1024 * 1024)
/* Self-binds stacked at one path that mount_release() undoes at most. */
#define RELEASE_MAX 16

/* ---- parsing ------------------------------------------------------------- */

bool mountinfo_unescape(const char *s, size_t n, char *out, size_t outlen)
{
	if (outlen == 0)
		return false;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (o + 1 >= outlen)
			return false;
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
		    s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return true;
}

/* Split the next space-separated field off *p (within the line end). */
static bool next_field(const char **p, const char *end, const char **ret, size_t *ret_n)
{
	const char *s = *p;
	while (s < end && *s == ' ')
		s++;
	if (s >= end)
		return false;
	const char *e = s;
	while (e < end && *e != ' ')
		e++;
	*ret = s;
	*ret_n = (size_t)(e - s);
	*p = e;
	return true;
}

int mountinfo_line_parse(const char *line, const char *end, struct mountinfo_line *ret)
{
	const char *p = line, *f[6];
	size_t fn[6];
	int i;
	for (i = 0; i < 6 && next_field(&p, end, &f[i], &fn[i]); i++)
		;
	if (i == 0)
		return 0;
	if (i < 6)
		return -EBADMSG;
	struct mountinfo_line l = {
		.mount_id = atoi(f[0]),
		.parent_id = atoi(f[1]),
		.root = f[3],
		.root_len = fn[3],
		.mount_point = f[4],
		.mount_point_len = fn[4],
	};
	char num[32];
	if (fn[2] >= sizeof(num))
		return -EBADMSG;
	memcpy(num, f[2], fn[2]);
	num[fn[2]] = '\0';
	if (sscanf(num, "%u:%u", &l.dev_major, &l.dev_minor) != 2)
		return -EBADMSG;
	const char *opt;
	size_t on;
	while (next_field(&p, end, &opt, &on)) {
		if (on == 1 && opt[0] == '-') {
			*ret = l;
			return 1;
		}
		if (on > 7 && strncmp(opt, "shared:", 7) == 0)
			l.shared = atoi(opt + 7);
		else if (on > 7 && strncmp(opt, "master:", 7) == 0)
			l.master = atoi(opt + 7);
	}
	return -EBADMSG; /* no "-" separator */
}

/* Parse one line into *e. 1 parsed, 0 empty line, -EBADMSG. */
static int parse_line(const char *line, const char *end, struct mountinfo_entry *e)
{
	struct mountinfo_line l;
	int r = mountinfo_line_parse(line, end, &l);
	if (r <= 0)
		return r;
	*e = (struct mountinfo_entry){
		.found = true,
		.shared = l.shared != 0,
		.slave = l.master != 0,
		.mount_id = l.mount_id,
		.parent_id = l.parent_id,
		.dev_major = l.dev_major,
		.dev_minor = l.dev_minor,
	};
	if (!mountinfo_unescape(l.root, l.root_len, e->root, sizeof(e->root)) ||
	    !mountinfo_unescape(l.mount_point, l.mount_point_len, e->mount_point, sizeof(e->mount_point)))
		return -EBADMSG;
	return 1;
}

/* The last entry (mounted last: on top) that `match` accepts. */
static int find(const char *text, bool (*match)(const struct mountinfo_entry *, const void *), const void *arg,
		struct mountinfo_entry *ret)
{
	struct mountinfo_entry *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	ret->found = false;
	int r = 0;
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		r = parse_line(line, end, e);
		if (r < 0)
			break;
		if (r == 1 && match(e, arg))
			*ret = *e;
		r = 0;
		line = *end ? end + 1 : end;
	}
	free(e);
	if (r < 0)
		ret->found = false;
	return r;
}

static bool at_path(const struct mountinfo_entry *e, const void *path)
{
	return strcmp(e->mount_point, path) == 0;
}

static bool with_id(const struct mountinfo_entry *e, const void *id)
{
	return e->mount_id == *(const int *)id;
}

int mountinfo_lookup(const char *text, const char *path, struct mountinfo_entry *ret)
{
	return find(text, at_path, path, ret);
}

int mountinfo_by_id(const char *text, int mount_id, struct mountinfo_entry *ret)
{
	return find(text, with_id, &mount_id, ret);
}

bool mountinfo_is_self_bind(const struct mountinfo_entry *top, const struct mountinfo_entry *parent,
			    const char *path)
{
	if (!top->found || !parent->found || top->dev_major != parent->dev_major ||
	    top->dev_minor != parent->dev_minor)
		return false;
	/* `path` relative to the parent's mount point ... */
	const char *rel;
	size_t mpl = strlen(parent->mount_point);
	if (strcmp(parent->mount_point, path) == 0)
		rel = ""; /* stacked on another mount at the same path */
	else if (strcmp(parent->mount_point, "/") == 0)
		rel = path;
	else if (strncmp(path, parent->mount_point, mpl) == 0 && path[mpl] == '/')
		rel = path + mpl;
	else
		return false;
	/* ... is where in the parent's filesystem the top mount is rooted. */
	char want[PATH_MAX];
	int n = snprintf(want, sizeof(want), "%s%s", strcmp(parent->root, "/") == 0 && rel[0] ? "" : parent->root, rel);
	return n > 0 && (size_t)n < sizeof(want) && strcmp(want, top->root) == 0;
}

/* ---- the live table -------------------------------------------------------- */

int mountinfo_read(const char *file, char **ret, char *err, size_t errlen)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(e));
		return -e;
	}
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	int r = 0;
	for (;;) {
		if (!buf) {
			r = -ENOMEM;
			break;
		}
		if (len + 1 >= cap) {
			if (cap >= MOUNTINFO_MAX) {
				r = -EFBIG;
				break;
			}
			char *grown = realloc(buf, cap * 2);
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			buf = grown;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(-r));
		return r;
	}
	buf[len] = '\0';
	*ret = buf;
	return 0;
}

/* The topmost mount at `path` and (when parent is not NULL) the mount it
 * sits on. */
static int lookup(const char *path, struct mountinfo_entry *top, struct mountinfo_entry *parent, char *err,
		  size_t errlen)
{
	char *text = NULL;
	int r = mountinfo_read("/proc/self/mountinfo", &text, err, errlen);
	if (r < 0)
		return r;
	r = mountinfo_lookup(text, path, top);
	if (r >= 0 && parent) {
		parent->found = false;
		if (top->found)
			r = mountinfo_by_id(text, top->parent_id, parent);
	}
	free(text);
	if (r < 0)
		snprintf(err, errlen, "cannot parse /proc/self/mountinfo");
	return r;
}

/* Open a directory as O_PATH: without following any symlink on the way
 * (openat2 RESOLVE_NO_SYMLINKS), or after realpath() into `real`. */
static int open_dir(const char *path, unsigned flags, char real[PATH_MAX], int *ret_fd, char *err, size_t errlen)
{
	int fd;
	if (flags & MOUNT_NOFOLLOW) {
		if (path[0] != '/' || strlen(path) >= PATH_MAX) {
			snprintf(err, errlen, "%s: not an absolute path", path);
			return -EINVAL;
		}
		struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW,
					.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
		fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
		if (fd < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot open %s%s: %s", path,
				 e == ELOOP || e == EXDEV ? " without following a symlink" : "", strerror(e));
			return -e;
		}
		snprintf(real, PATH_MAX, "%s", path);
	} else {
		if (!realpath(path, real)) {
			int e = errno;
			snprintf(err, errlen, "%s: %s", path, strerror(e));
			return -e;
		}
		fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot open %s: %s", real, strerror(e));
			return -e;
		}
	}
	*ret_fd = fd;
	return 0;
}

static int mount_setattr_fd(int fd, unsigned flags, uint64_t set, uint64_t propagation)
{
	struct mount_attr a = { .attr_set = set, .propagation = propagation };
	return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | flags, &a, sizeof(a));
}

/* The self-bind in a peer group of its own: a detached recursive clone of
 * the directory, private (out of the peer groups it was cloned from), then
 * shared (a new group), optionally read-only, then attached on `fd`.
 * -ENOSYS when the kernel lacks the new mount API. */
static int self_bind_own_group(int fd, const char *real, bool read_only, char *err, size_t errlen)
{
	int cfd = (int)syscall(SYS_open_tree, fd, "", AT_EMPTY_PATH | AT_RECURSIVE | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (cfd < 0) {
		int e = errno;
		if (e != ENOSYS)
			snprintf(err, errlen, "cannot clone the mount at %s: %s", real, strerror(e));
		return -e;
	}
	const char *step = "make it private";
	int r = mount_setattr_fd(cfd, AT_RECURSIVE, 0, MS_PRIVATE);
	if (r == 0) {
		step = "make it shared";
		r = mount_setattr_fd(cfd, AT_RECURSIVE, 0, MS_SHARED);
	}
	if (r == 0 && read_only) {
		step = "make it read-only";
		r = mount_setattr_fd(cfd, 0, MOUNT_ATTR_RDONLY, 0);
	}
	if (r == 0) {
		step = "attach it";
		r = (int)syscall(SYS_move_mount, cfd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	}
	int e = errno;
	close(cfd);
	if (r < 0) {
		snprintf(err, errlen, "cannot bind %s onto itself (%s): %s", real, step, strerror(e));
		return -e;
	}
	return 0;
}

/* Before the new mount API: mount(2). The bind joins the peer group of the
 * mount it lies in (see mountpoint.h). */
static int self_bind_classic(const char *real, bool read_only, char *err, size_t errlen)
{
	if (mount(real, real, NULL, MS_BIND | MS_REC, NULL) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot bind-mount %s onto itself: %s", real, strerror(e));
		return -e;
	}
	if (read_only && mount(NULL, real, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
		int e = errno;
		umount2(real, MNT_DETACH);
		snprintf(err, errlen, "cannot make the bind of %s read-only: %s", real, strerror(e));
		return -e;
	}
	return 0;
}

int mount_make_shared(const char *path, unsigned flags, char *err, size_t errlen)
{
	char real[PATH_MAX];
	int fd = -1;
	int r = open_dir(path, flags, real, &fd, err, errlen);
	if (r < 0)
		return r;
	struct mountinfo_entry *e = malloc(sizeof(*e));
	if (!e) {
		close(fd);
		return -ENOMEM;
	}
	int changed = 0;
	r = lookup(real, e, NULL, err, errlen);
	if (r < 0)
		goto out;
	if (!e->found) {
		r = self_bind_own_group(fd, real, flags & MOUNT_READ_ONLY, err, errlen);
		if (r == -ENOSYS)
			r = self_bind_classic(real, flags & MOUNT_READ_ONLY, err, errlen);
		if (r < 0)
			goto out;
		changed = 1;
		r = lookup(real, e, NULL, err, errlen);
		if (r < 0)
			goto out;
	}
	if (!e->shared) {
		if (mount(NULL, real, NULL, MS_SHARED | MS_REC, NULL) < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot make %s a shared mount: %s", real, strerror(-r));
			goto out;
		}
		changed = 1;
	}
	r = changed;
out:
	free(e);
	close(fd);
	return r;
}

int mount_release(const char *path, char *err, size_t errlen)
{
	struct mountinfo_entry *top = malloc(2 * sizeof(*top));
	if (!top)
		return -ENOMEM;
	struct mountinfo_entry *parent = top + 1;
	int n = 0, r = 0;
	while (n < RELEASE_MAX) {
		r = lookup(path, top, parent, err, errlen);
		if (r < 0 || !top->found || !mountinfo_is_self_bind(top, parent, path))
			break;
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot unmount the bind of %s: %s", path, strerror(-r));
			break;
		}
		n++;
	}
	free(top);
	return r < 0 ? r : n;
}

int mount_is_point(const char *path, char *err, size_t errlen)
{
	struct mountinfo_entry *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	int r = lookup(path, e, NULL, err, errlen);
	if (r >= 0)
		r = e->found ? 1 : 0;
	free(e);
	return r;
}

struct below {
	const char *path;
	size_t len;
};

static bool is_below(const struct mountinfo_entry *e, const void *arg)
{
	const struct below *b = arg;
	return strncmp(e->mount_point, b->path, b->len) == 0 && e->mount_point[b->len] == '/';
}

int mount_find_below(const char *path, char *ret, char *err, size_t errlen)
{
	char *text = NULL;
	int r = mountinfo_read("/proc/self/mountinfo", &text, err, errlen);
	if (r < 0)
		return r;
	struct mountinfo_entry *e = malloc(sizeof(*e));
	struct below b = { path, strcmp(path, "/") == 0 ? 0 : strlen(path) };
	r = e ? find(text, is_below, &b, e) : -ENOMEM;
	free(text);
	if (r >= 0) {
		r = e->found ? 1 : 0;
		if (r)
			snprintf(ret, PATH_MAX, "%s", e->mount_point);
	} else if (r == -EBADMSG) {
		snprintf(err, errlen, "cannot parse /proc/self/mountinfo");
	}
	free(e);
	return r;
}

int mount_clone_fd(int fd, int *ret_fd, char *err, size_t errlen)
{
	int cfd = (int)syscall(SYS_open_tree, fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (cfd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot clone the mount: %s", strerror(e));
		return -e;
	}
	*ret_fd = cfd;
	return 0;
}

int mount_open_clone(const char *path, int *ret_fd, char *err, size_t errlen)
{
	char real[PATH_MAX];
	int fd = -1;
	int r = open_dir(path, MOUNT_NOFOLLOW, real, &fd, err, errlen);
	if (r < 0)
		return r;
	r = mount_clone_fd(fd, ret_fd, err, errlen);
	close(fd);
	return r;
}

/* ---- volumes boxd mounts ---------------------------------------------------- */

int mount_bind_dir(const char *source, const char *target, char *err, size_t errlen)
{
	char real[PATH_MAX];
	int tfd = -1, sfd = -1, cfd = -1;
	int r = mount_is_point(target, err, errlen);
	if (r != 0)
		return r < 0 ? r : 0;
	r = mount_make_shared(source, MOUNT_NOFOLLOW, err, errlen);
	if (r < 0)
		return r;
	if ((r = open_dir(target, MOUNT_NOFOLLOW, real, &tfd, err, errlen)) < 0 ||
	    (r = open_dir(source, MOUNT_NOFOLLOW, real, &sfd, err, errlen)) < 0)
		goto out;
	/* A clone of a shared mount is its peer: what is mounted later below
	 * the source shows at the target and the other way round. */
	cfd = (int)syscall(SYS_open_tree, sfd, "", AT_EMPTY_PATH | AT_RECURSIVE | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (cfd < 0 ||
	    syscall(SYS_move_mount, cfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		r = -errno;
		if (r == -ENOSYS && mount(source, target, NULL, MS_BIND | MS_REC, NULL) == 0)
			r = 1;
		else
			snprintf(err, errlen, "cannot bind %s at %s: %s", source, target, strerror(-r));
		goto out;
	}
	r = 1;
out:
	if (cfd >= 0)
		close(cfd);
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	return r;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run argv[0] (an absolute path) with stdout and stderr into a pipe; its
 * output (the tail that fits) goes to err. 0 when it exits 0. */
static int run_tool(char *const argv[], int timeout_ms, char *err, size_t errlen)
{
	extern char **environ;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (r != 0) {
		close(p[0]);
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(r));
		return -r;
	}
	char out[1024];
	size_t used = 0;
	int64_t until = mono_ms() + timeout_ms;
	bool timed_out = false;
	for (;;) {
		int left = (int)(until - mono_ms());
		if (left <= 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int n = poll(&pfd, 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		char buf[512];
		ssize_t got = read(p[0], buf, sizeof(buf));
		if (got <= 0)
			break; /* EOF: it exited (or closed its output) */
		for (ssize_t i = 0; i < got && used + 1 < sizeof(out); i++)
			out[used++] = buf[i] == '\n' ? ' ' : buf[i];
	}
	close(p[0]);
	out[used] = '\0';
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		snprintf(err, errlen, "%s did not finish within %d ms", argv[0], timeout_ms);
		return -ETIMEDOUT;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "%s failed: %s", argv[0], used ? out : "(no message)");
		return -EIO;
	}
	return 0;
}

int mount_filesystem(const char *fstype, const char *source, const char *options, const char *target,
		     int timeout_ms, char *err, size_t errlen)
{
	int r = mount_is_point(target, err, errlen);
	if (r < 0)
		return r;
	if (r == 0) {
		static const char *const tools[] = { "/usr/bin/mount", "/bin/mount", NULL };
		const char *tool = NULL;
		for (size_t i = 0; tools[i] && !tool; i++)
			if (access(tools[i], X_OK) == 0)
				tool = tools[i];
		if (!tool) {
			snprintf(err, errlen, "mount(8) is not installed");
			return -ENOENT;
		}
		char opts[1024];
		snprintf(opts, sizeof(opts), "nosuid,nodev%s%s", options && *options ? "," : "", options ? options : "");
		char *argv[] = { (char *)tool, "-t", (char *)fstype, "-o", opts, "--", (char *)source, (char *)target, NULL };
		r = run_tool(argv, timeout_ms, err, errlen);
		if (r < 0)
			return r;
	}
	int s = mount_make_shared(target, MOUNT_NOFOLLOW, err, errlen);
	if (s < 0)
		return s;
	return r == 0 ? 1 : 0;
}

int mount_detach(const char *target, char *err, size_t errlen)
{
	int r = mount_is_point(target, err, errlen);
	if (r <= 0)
		return r;
	if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot unmount %s: %s", target, strerror(-r));
		return r;
	}
	r = mount_release(target, err, errlen);
	return r < 0 ? r : 1;
}
