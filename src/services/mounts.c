/* mounts.c — see mounts.h. The mountinfo parser here (every line, for
 * mount_release.c) is built on common/mountpoint.c's line parser. */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "apps/app.h"
#include "common/array.h"
#include "common/bind_source.h"
#include "common/fs.h"
#include "common/paths.h"
#include "service.h"

/* A field of the line, decoded into a string of its own. */
static char *field_dup(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (out)
		mountinfo_unescape(s, n, out, n + 1);
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
		struct mountinfo_line l;
		int r = mountinfo_line_parse(line, end, &l);
		if (r == 1 && ARRAY_GROW(all, n + 1, cap) < 0)
			r = -ENOMEM;
		if (r == 1) {
			struct mountinfo_mount *m = &all[n++];
			*m = (struct mountinfo_mount){
				.id = l.mount_id,
				.parent = l.parent_id,
				.major = l.dev_major,
				.minor = l.dev_minor,
				.root = field_dup(l.root, l.root_len),
				.mount_point = field_dup(l.mount_point, l.mount_point_len),
				.shared = l.shared,
				.master = l.master,
			};
			if (!m->root || !m->mount_point)
				r = -ENOMEM;
		}
		if (r < 0) {
			mountinfo_free(all, n);
			return r;
		}
		line = *end ? end + 1 : end;
	}
	*ret = all;
	*ret_n = n;
	return 0;
}

int services_prepare_roots(const struct boxd_config *cfg, char *err, size_t errlen)
{
	const char *roots[] = { cfg->appsdata_root, cfg->volumes_root };
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		int r = fs_mkdir_p(roots[i], 0755, err, errlen);
		if (r < 0)
			return r;
		r = mount_make_shared(roots[i], 0, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int services_prepare_spec_sources(const struct service_spec *spec, char *err, size_t errlen)
{
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct service_mount *m = &spec->mounts[i];
		if (!m->share)
			continue;
		int r = mount_make_shared(m->source, MOUNT_NOFOLLOW | (m->read_only ? MOUNT_READ_ONLY : 0), err, errlen);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
	}
	return 0;
}

int services_prepare_data_dirs(const struct boxd_config *cfg, struct store *store, char *err, size_t errlen)
{
	struct app *apps = NULL;
	struct volume *vols = NULL;
	size_t n_apps = 0, n_vols = 0;
	int failed = 0;
	char msg[512];
	err[0] = '\0';
	int r = app_list(store, &apps, &n_apps);
	if (r < 0 || (r = volume_list(store, &vols, &n_vols)) < 0) {
		snprintf(err, errlen, "cannot list apps and volumes: %s", store_errmsg(store));
		app_list_free(apps, n_apps);
		return r;
	}
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(cfg, roots);
	for (size_t i = 0; i < n_apps + n_vols; i++) {
		/* Only the directory boxd made is made a mount point: one that
		 * was replaced stays as it is (its app's next task, which checks
		 * the same, fails and says so). */
		const char *path = i < n_apps ? NULL : vols[i - n_apps].host_path;
		char *owned = i < n_apps ? app_data_dir(cfg, &apps[i]) : NULL;
		const struct fs_id *expect = NULL;
		if (i < n_apps) {
			path = owned;
			expect = apps[i].has_data_id ? &apps[i].data_id : NULL;
		} else if (vols[i - n_apps].has_host_id && strcmp(vols[i - n_apps].mount_type, "dir") == 0) {
			expect = &vols[i - n_apps].host_id;
		}
		struct bind_source b = { .path = path, .what = path, .expect = expect };
		if (!path)
			r = -ENOMEM;
		else if (expect && (r = bind_source_check(roots, &b, NULL, msg, sizeof(msg))) < 0)
			;
		else if (i < n_apps)
			r = mount_make_shared(path, MOUNT_NOFOLLOW, msg, sizeof(msg));
		else
			r = services_mount_volume(cfg, &vols[i - n_apps], msg, sizeof(msg));
		free(owned);
		if (r < 0 && r != -ENOENT) {
			if (!failed++)
				snprintf(err, errlen, "%s", msg);
		}
	}
	app_list_free(apps, n_apps);
	volume_list_free(vols, n_vols);
	return failed;
}

int services_mount_volume(const struct boxd_config *cfg, const struct volume *v, char *err, size_t errlen)
{
	if (strcmp(v->mount_type, "mountpoint") == 0 || strcmp(v->mount_type, "dir") == 0) {
		unsigned flags = MOUNT_NOFOLLOW | (strcmp(v->mount_type, "mountpoint") == 0 ? MOUNT_READ_ONLY : 0);
		int r = mount_make_shared(v->host_path, flags, err, errlen);
		return r < 0 ? r : 0;
	}
	if (!volume_type_managed(v->mount_type) || !v->mount_source) {
		snprintf(err, errlen, "volume %s: unknown mount type %s", v->id, v->mount_type);
		return -EINVAL;
	}
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(cfg, roots);
	int r = fs_mkdir_nofollow(roots, v->host_path, 0755, NULL, err, errlen);
	if (r < 0)
		return r;
	if (strcmp(v->mount_type, "bind") == 0)
		r = mount_bind_dir(v->mount_source, v->host_path, err, errlen);
	else
		r = mount_filesystem(v->mount_type, v->mount_source, v->mount_options, v->host_path,
				     SERVICES_MOUNT_TIMEOUT_MS, err, errlen);
	return r;
}

int services_unmount_volume(const struct volume *v, char *err, size_t errlen)
{
	if (volume_type_managed(v->mount_type))
		return mount_detach(v->host_path, err, errlen);
	int r = mount_release(v->host_path, err, errlen);
	return r < 0 ? r : 0;
}
