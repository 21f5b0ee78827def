/* mounts.c — see mounts.h. */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common/fs.h"

#define MOUNTINFO_MAX (16 * 1024 * 1024)

/* Decode mountinfo's octal escapes ("\040" for a space) of the field
 * [s, s+n) into out (at least n+1 bytes). */
static void unescape(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
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

int mountinfo_lookup(const char *text, const char *path, struct mountinfo_entry *ret)
{
	struct mountinfo_entry best = { 0 };
	char *buf = NULL;
	size_t buflen = 0;
	int r = 0;
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		const char *p = line, *f[6];
		size_t fn[6];
		int i;
		for (i = 0; i < 6 && next_field(&p, end, &f[i], &fn[i]); i++)
			;
		if (i == 0)
			goto next; /* an empty line */
		if (i < 6) {
			r = -EBADMSG;
			goto out;
		}
		if (fn[4] + 1 > buflen) {
			char *grown = realloc(buf, fn[4] + 1);
			if (!grown) {
				r = -ENOMEM;
				goto out;
			}
			buf = grown;
			buflen = fn[4] + 1;
		}
		unescape(f[4], fn[4], buf);
		if (strcmp(buf, path) == 0) {
			/* Later lines are mounted later, on top: the last one
			 * is what the path shows. */
			struct mountinfo_entry e = { .found = true, .mount_id = atoi(f[0]) };
			const char *opt;
			size_t on;
			bool dash = false;
			while (next_field(&p, end, &opt, &on)) {
				if (on == 1 && opt[0] == '-') {
					dash = true;
					break;
				}
				if (on > 7 && strncmp(opt, "shared:", 7) == 0)
					e.shared = true;
				else if (on > 7 && strncmp(opt, "master:", 7) == 0)
					e.slave = true;
			}
			if (!dash) {
				r = -EBADMSG;
				goto out;
			}
			best = e;
		}
next:
		line = *end ? end + 1 : end;
	}
	*ret = best;
out:
	free(buf);
	return r;
}

static char *field_dup(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (out)
		unescape(s, n, out);
	return out;
}

void mountinfo_free(struct mountinfo_mount *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].root);
		free(m[i].mount_point);
	}
	free(m);
}

int mountinfo_parse(const char *text, struct mountinfo_mount **ret, size_t *ret_n)
{
	struct mountinfo_mount *all = NULL;
	size_t n = 0, cap = 0;
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		const char *p = line, *f[6];
		size_t fn[6];
		int i;
		for (i = 0; i < 6 && next_field(&p, end, &f[i], &fn[i]); i++)
			;
		if (i > 0) {
			struct mountinfo_mount m = { .id = atoi(f[0]), .parent = atoi(f[1]) };
			const char *opt;
			size_t on;
			bool dash = false;
			while (i == 6 && next_field(&p, end, &opt, &on)) {
				if (on == 1 && opt[0] == '-') {
					dash = true;
					break;
				}
				if (on > 7 && strncmp(opt, "shared:", 7) == 0)
					m.shared = atoi(opt + 7);
				else if (on > 7 && strncmp(opt, "master:", 7) == 0)
					m.master = atoi(opt + 7);
			}
			if (!dash || sscanf(f[2], "%u:%u", &m.major, &m.minor) != 2) {
				mountinfo_free(all, n);
				return -EBADMSG;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct mountinfo_mount *grown = realloc(all, ncap * sizeof(*all));
				if (!grown) {
					mountinfo_free(all, n);
					return -ENOMEM;
				}
				all = grown;
				cap = ncap;
			}
			m.root = field_dup(f[3], fn[3]);
			m.mount_point = field_dup(f[4], fn[4]);
			all[n++] = m;
			if (!m.root || !m.mount_point) {
				mountinfo_free(all, n);
				return -ENOMEM;
			}
		}
		line = *end ? end + 1 : end;
	}
	*ret = all;
	*ret_n = n;
	return 0;
}

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

static int lookup(const char *path, struct mountinfo_entry *e, char *err, size_t errlen)
{
	char *text = NULL;
	int r = mountinfo_read("/proc/self/mountinfo", &text, err, errlen);
	if (r < 0)
		return r;
	r = mountinfo_lookup(text, path, e);
	free(text);
	if (r < 0)
		snprintf(err, errlen, "cannot parse /proc/self/mountinfo");
	return r;
}

int mount_make_shared(const char *path, char *err, size_t errlen)
{
	char real[PATH_MAX];
	if (!realpath(path, real)) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	struct mountinfo_entry e;
	int r = lookup(real, &e, err, errlen);
	if (r < 0)
		return r;
	int changed = 0;
	if (!e.found) {
		if (mount(real, real, NULL, MS_BIND | MS_REC, NULL) < 0) {
			int en = errno;
			snprintf(err, errlen, "cannot bind-mount %s onto itself: %s", real, strerror(en));
			return -en;
		}
		changed = 1;
		/* A fresh bind inherits the propagation of its parent's peer
		 * group; read it again. */
		r = lookup(real, &e, err, errlen);
		if (r < 0)
			return r;
	}
	if (!e.shared) {
		if (mount(NULL, real, NULL, MS_SHARED | MS_REC, NULL) < 0) {
			int en = errno;
			snprintf(err, errlen, "cannot make %s a shared mount: %s", real, strerror(en));
			return -en;
		}
		changed = 1;
	}
	return changed;
}

int services_prepare_roots(const struct boxd_config *cfg, char *err, size_t errlen)
{
	const char *roots[] = { cfg->appsdata_root, cfg->volumes_root };
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		int r = fs_mkdir_p(roots[i], 0755, err, errlen);
		if (r < 0)
			return r;
		r = mount_make_shared(roots[i], err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}
