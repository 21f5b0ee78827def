#include "proc.h"

#include <errno.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int host_id_get(char *buf, size_t len)
{
	const char *env = getenv("BOXD_HOST_ID");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return 0;
	}
	int r = read_small_file("/proc/sys/kernel/random/boot_id", buf, len);
	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int proc_no_new_privs(void)
{
	int r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	return r < 0 ? -errno : r;
}
