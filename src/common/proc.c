#include "proc.h"

#include <ctype.h>
#include <errno.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int read_small_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	buf[n] = '\0';
	return (int)n;
}

int proc_start_time(pid_t pid, uint64_t *ret_start)
{
	char path[64], buf[1024];
	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int r = read_small_file(path, buf, sizeof(buf));
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;
	/* The command name (field 2) is in parentheses and may itself contain
	 * spaces and ')' — so count fields from the last ')'. Field 3 (state)
	 * follows it; the start time is field 22. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EBADMSG;
	p++;
	/* A zombie (Z) or dying (X) process will never run again: treat it as
	 * gone even before its parent reaps it. */
	if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X'))
		return -ESRCH;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EBADMSG;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -EBADMSG;
	*ret_start = v;
	return 0;
}

enum proc_liveness proc_check(pid_t pid, uint64_t start_time)
{
	uint64_t now_start;
	int r = proc_start_time(pid, &now_start);
	if (r == -ESRCH)
		return PROC_GONE;
	if (r < 0)
		return PROC_ALIVE; /* cannot tell: never reap on doubt */
	return now_start == start_time ? PROC_ALIVE : PROC_REUSED;
}

int pidfd_open_pid(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* pidfds are close-on-exec by definition. */
	return fd < 0 ? -errno : fd;
}

int proc_ref_open(pid_t pid, uint64_t start_time, struct proc_ref *ret)
{
	if (pid <= 0)
		return -EINVAL;
	/* Checked before too: a pidfd on a newer process with the same pid
	 * is not worth opening. */
	if (start_time && proc_check(pid, start_time) != PROC_ALIVE)
		return -ESRCH;
	int pidfd = pidfd_open_pid(pid);
	if (pidfd < 0)
		return pidfd;
	struct proc_ref ref = { .pid = pid, .pidfd = pidfd, .start_time = start_time };
	if (start_time && proc_check(pid, start_time) != PROC_ALIVE) {
		close(pidfd);
		return -ESRCH;
	}
	if (!start_time && proc_start_time(pid, &ref.start_time) < 0)
		ref.start_time = 0; /* a zombie: no start time, still a process to reap */
	*ret = ref;
	return 0;
}

struct proc_ref proc_ref_of_child(pid_t pid, int pidfd)
{
	struct proc_ref ref = { .pid = pid, .pidfd = pidfd };
	if (proc_start_time(pid, &ref.start_time) < 0)
		ref.start_time = 0;
	return ref;
}

enum proc_liveness proc_ref_check(const struct proc_ref *ref)
{
	if (ref->pid <= 0 || !ref->start_time)
		return PROC_GONE; /* none, or it had exited when referenced */
	return proc_check(ref->pid, ref->start_time);
}

void proc_ref_close(struct proc_ref *ref)
{
	if (ref->pidfd >= 0)
		close(ref->pidfd);
	*ref = PROC_REF_NONE;
}

bool host_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > HOST_ID_MAX || !isalnum((unsigned char)id[0]))
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return false;
	return true;
}

/* The first line of a small file, without its newline; 0 or negative errno
 * (-ENOENT for a missing or empty file). */
static int read_first_line(const char *path, char *buf, size_t len)
{
	int r = read_small_file(path, buf, len);
	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = '\0';
	return *buf ? 0 : -ENOENT;
}

int host_id_get_from(char *buf, size_t len, const char **ret_source)
{
	const char *env = getenv("BOXD_HOST_ID");
	const char *source = "BOXD_HOST_ID";
	int r = 0;
	if (env && *env)
		snprintf(buf, len, "%s", env);
	else if ((r = read_first_line(source = "/etc/machine-id", buf, len)) < 0 &&
		 (r = read_first_line(source = "/var/lib/dbus/machine-id", buf, len)) < 0)
		/* No machine id (a bare container): the boot id, so a reboot
		 * looks like a new host; the daemon warns. */
		r = read_first_line(source = "/proc/sys/kernel/random/boot_id", buf, len);
	if (r < 0)
		return r;
	if (ret_source)
		*ret_source = source;
	return host_id_valid(buf) ? 0 : -EINVAL;
}

int host_id_get(char *buf, size_t len) { return host_id_get_from(buf, len, NULL); }

int host_boot_id_get(char *buf, size_t len)
{
	/* FAKE for tests: "another boot" cannot be produced for real in a
	 * test (it takes a reboot), so BOXD_FAKE_BOOT_ID stands in for the
	 * kernel's boot id. Nothing but tests sets it. */
	const char *fake = getenv("BOXD_FAKE_BOOT_ID");
	if (fake && *fake) {
		snprintf(buf, len, "%s", fake);
		return 0;
	}
	return read_first_line("/proc/sys/kernel/random/boot_id", buf, len);
}

int host_owner_id_get(char *buf, size_t len)
{
	char host[HOST_ID_MAX + 40], boot[64], tag[HOST_BOOT_TAG_LEN + 1];
	int r = host_id_get(host, sizeof(host));
	if (r < 0)
		return r;
	r = host_boot_id_get(boot, sizeof(boot));
	if (r < 0)
		return r;
	/* The boot id's first hex digits (dashes dropped): 48 random bits
	 * tell this boot from the host's earlier ones. */
	size_t n = 0;
	for (const char *p = boot; *p && n < HOST_BOOT_TAG_LEN; p++)
		if (isxdigit((unsigned char)*p))
			tag[n++] = (char)tolower((unsigned char)*p);
	tag[n] = '\0';
	if (n == 0)
		return -EBADMSG;
	if ((size_t)snprintf(buf, len, "%s/%s", host, tag) >= len)
		return -ENAMETOOLONG;
	return 0;
}

size_t host_owner_host_len(const char *owner)
{
	const char *slash = strrchr(owner, '/');
	return slash ? (size_t)(slash - owner) : strlen(owner);
}

bool host_owner_earlier_boot(const char *owner, const char *mine)
{
	size_t n = host_owner_host_len(mine);
	/* strncmp first: it stops at a shorter owner's end. */
	return mine[n] == '/' && strncmp(owner, mine, n) == 0 && owner[n] == '/' && strcmp(owner, mine) != 0;
}

int proc_no_new_privs(void)
{
	int r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	return r < 0 ? -errno : r;
}
