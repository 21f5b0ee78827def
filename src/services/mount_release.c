/* mount_release.c — undo the shared self-binds of the roots when nothing
 * needs them any more (see mounts.h).
 *
 * Why this exists: boxd makes each root a bind mount of itself so that it
 * can be a shared mount point. That mount outlives the daemon, and a
 * directory that is a mount point cannot be removed: after `make run` was
 * stopped, `rm -rf var` failed with "Device or resource busy". The daemon
 * therefore unmounts its self-binds when it stops, unless something still
 * depends on them: a mount in another namespace that is a peer or a slave
 * of the root's peer group is exactly a container (the sftp service) that
 * receives the root's later mounts. Peer group ids are global, so one look
 * at every namespace's mountinfo answers that without asking the engine
 * (which may be down, or may not be the only one).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "mounts.h"

/* The topmost mount at `path` in `m`, or NULL. */
static const struct mountinfo_mount *mount_at(const struct mountinfo_mount *m, size_t n, const char *path)
{
	const struct mountinfo_mount *top = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].mount_point, path) == 0)
			top = &m[i]; /* later lines are mounted on top */
	return top;
}

static const struct mountinfo_mount *mount_by_id(const struct mountinfo_mount *m, size_t n, int id)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].id == id)
			return &m[i];
	return NULL;
}

/* Is `e`, mounted at `path`, the directory below it bound onto itself?
 * Then it shows the same filesystem as its parent mount, and its root is
 * the parent's root plus the path below the parent's mount point. */
static bool is_self_bind(const struct mountinfo_mount *m, size_t n, const struct mountinfo_mount *e,
			 const char *path)
{
	const struct mountinfo_mount *p = mount_by_id(m, n, e->parent);
	if (!p || p == e || p->major != e->major || p->minor != e->minor)
		return false;
	size_t pl = strcmp(p->mount_point, "/") == 0 ? 0 : strlen(p->mount_point);
	if (strncmp(path, p->mount_point, pl) != 0 || path[pl] != '/')
		return false;
	const char *rel = path + pl; /* "/dir/below" */
	char want[PATH_MAX * 2];
	snprintf(want, sizeof(want), "%s%s", strcmp(p->root, "/") == 0 ? "" : p->root, rel);
	return strcmp(e->root, want) == 0;
}

/* Is a mount of peer group `group` in a mount namespace other than ours?
 * Sets who to "pid N (comm)" of the first one found. */
static int group_used_elsewhere(int group, char *who, size_t wholen)
{
	struct stat self;
	if (stat("/proc/self/ns/mnt", &self) < 0)
		return -errno;
	DIR *proc = opendir("/proc");
	if (!proc)
		return -errno;
	ino_t seen[256];
	size_t n_seen = 0;
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char path[64];
		struct stat ns;
		snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", pid);
		if (stat(path, &ns) < 0 || ns.st_ino == self.st_ino)
			continue; /* gone, a kernel thread, or our own namespace */
		bool known = false;
		for (size_t i = 0; i < n_seen && !known; i++)
			known = seen[i] == ns.st_ino;
		if (known)
			continue;
		if (n_seen < sizeof(seen) / sizeof(seen[0]))
			seen[n_seen++] = ns.st_ino;
		snprintf(path, sizeof(path), "/proc/%ld/mountinfo", pid);
		char *text, err[256];
		if (mountinfo_read(path, &text, err, sizeof(err)) < 0)
			continue; /* exited meanwhile */
		struct mountinfo_mount *m;
		size_t mn;
		if (mountinfo_parse(text, &m, &mn) == 0) {
			for (size_t i = 0; i < mn && !found; i++)
				found = m[i].shared == group || m[i].master == group;
			mountinfo_free(m, mn);
		}
		free(text);
		if (found) {
			char comm[64] = "?";
			snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
			FILE *f = fopen(path, "re");
			if (f) {
				if (fgets(comm, sizeof(comm), f))
					comm[strcspn(comm, "\n")] = '\0';
				fclose(f);
			}
			snprintf(who, wholen, "pid %ld (%s)", pid, comm);
		}
	}
	closedir(proc);
	return found;
}

int mount_release_shared(const char *path, char *why, size_t whylen)
{
	char real[PATH_MAX];
	why[0] = '\0';
	if (!realpath(path, real))
		return errno == ENOENT ? 0 : -errno;
	char *text;
	int r = mountinfo_read("/proc/self/mountinfo", &text, why, whylen);
	if (r < 0)
		return r;
	struct mountinfo_mount *m;
	size_t n;
	r = mountinfo_parse(text, &m, &n);
	free(text);
	if (r < 0) {
		snprintf(why, whylen, "cannot parse /proc/self/mountinfo");
		return r;
	}
	const struct mountinfo_mount *e = mount_at(m, n, real);
	if (!e)
		goto out; /* not a mount point: nothing to undo */
	if (!is_self_bind(m, n, e, real)) {
		snprintf(why, whylen, "not a bind mount of itself (the operator mounted something there)");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (m[i].parent == e->id && &m[i] != e) {
			snprintf(why, whylen, "%s is mounted below it", m[i].mount_point);
			goto out;
		}
	if (e->shared > 0) {
		char who[128];
		int used = group_used_elsewhere(e->shared, who, sizeof(who));
		if (used < 0) {
			r = used;
			snprintf(why, whylen, "cannot look at the other mount namespaces: %s", strerror(-used));
			goto out;
		}
		if (used) {
			snprintf(why, whylen, "a container still receives its mounts: the namespace of %s", who);
			goto out;
		}
	}
	if (umount2(real, UMOUNT_NOFOLLOW) < 0) {
		r = -errno;
		snprintf(why, whylen, "cannot unmount it: %s", strerror(errno));
		goto out;
	}
	r = 1;
out:
	mountinfo_free(m, n);
	return r;
}

static int cmp_longer_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* The data dirs and volume dirs below a root are self-binds of their own
 * (sftp.h): release those nothing needs, deepest first, so that the root
 * can go too. Others (a filesystem mounted there, one a container still
 * receives) stay, and keep the root. */
static void release_below(const char *root)
{
	char real[PATH_MAX], err[256], *text;
	if (!realpath(root, real) || mountinfo_read("/proc/self/mountinfo", &text, err, sizeof(err)) < 0)
		return;
	struct mountinfo_mount *m;
	size_t n;
	int r = mountinfo_parse(text, &m, &n);
	free(text);
	if (r < 0)
		return;
	char **below = calloc(n + 1, sizeof(*below));
	size_t nb = 0, rl = strlen(real);
	for (size_t i = 0; below && i < n; i++)
		if (strncmp(m[i].mount_point, real, rl) == 0 && m[i].mount_point[rl] == '/')
			below[nb++] = m[i].mount_point;
	if (below) {
		qsort(below, nb, sizeof(*below), cmp_longer_first);
		for (size_t i = 0; i < nb; i++) {
			char why[300];
			mount_release_shared(below[i], why, sizeof(why));
		}
	}
	free(below);
	mountinfo_free(m, n);
}

int services_release_roots(const struct boxd_config *cfg, char *report, size_t len)
{
	const char *roots[] = { cfg->appsdata_root, cfg->volumes_root };
	int released = 0, first_err = 0;
	size_t o = strlen(report);
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		char why[600];
		release_below(roots[i]);
		int r = mount_release_shared(roots[i], why, sizeof(why));
		if (r > 0)
			released++;
		else if (r < 0 && !first_err)
			first_err = r;
		if (r == 0 && !*why)
			continue;
		int w = snprintf(report + o, len > o ? len - o : 0, "%s%s: %s", o ? "; " : "", roots[i],
				 r > 0 ? "unmounted its shared self-bind" : why);
		if (w > 0 && o + (size_t)w < len)
			o += (size_t)w;
	}
	return first_err ? first_err : released;
}
