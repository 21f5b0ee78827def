/* sftp.c — the sftp service's spec and health probe; see sftp.h. */
#include "sftp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apps/app.h"
#include "common/paths.h"
#include "common/timeutil.h"

#define KEYS_MAX_BYTES (1024 * 1024)

/* A path that the root mounts already show. */
static bool under_roots(const struct boxd_config *cfg, const char *path)
{
	return path_is_under(path, cfg->appsdata_root) || path_is_under(path, cfg->volumes_root);
}

static bool id_ok(const char *id)
{
	if (!id || !*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (const char *p = id; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20)
			return false;
	return true;
}

static int add_custom(struct service_spec *s, const struct boxd_config *cfg, const struct sftp_dir *d, const char *kind,
		      char *err, size_t errlen)
{
	if (!d->path || under_roots(cfg, d->path))
		return 0;
	if (!id_ok(d->id)) {
		snprintf(err, errlen, "%s id '%s' cannot name a directory", kind, d->id ? d->id : "");
		return -EINVAL;
	}
	char target[512], origin[128];
	snprintf(target, sizeof(target), "/mnt/custom/%ss/%s", kind, d->id);
	snprintf(origin, sizeof(origin), "%s %s", kind, d->id);
	struct service_mount m = { .source = (char *)d->path, .target = target, .recursive = true,
				   .propagation = ENGINE_PROPAGATION_RSLAVE,
				   .share = d->mountpoint ? SERVICE_SHARE_RO : SERVICE_SHARE_RW, .origin = origin,
				   .identity = (char *)d->identity };
	return service_spec_add_bind(s, &m);
}

static int add_root(struct service_spec *s, const char *root, const char *target, const char *origin)
{
	struct service_mount m = { .source = (char *)root, .target = (char *)target, .read_only = true,
				   .recursive = true, .propagation = ENGINE_PROPAGATION_RSLAVE, .origin = (char *)origin };
	return service_spec_add_bind(s, &m);
}

int sftp_spec_build(const struct boxd_config *cfg, const struct sftp_dir *apps, size_t n_apps,
		    const struct sftp_dir *volumes, size_t n_volumes, const char *authorized_keys,
		    struct service_spec *ret, char *err, size_t errlen)
{
	struct service_spec s;
	int r = service_spec_init(&s, "sftp", cfg->sftp_image);
	char port[16];
	snprintf(port, sizeof(port), "%d", cfg->sftp_port);
	if (r < 0 || (r = add_root(&s, cfg->appsdata_root, "/mnt/appsdata", "the appsdata root")) < 0 ||
	    (r = add_root(&s, cfg->volumes_root, "/mnt/volumes", "the volumes root")) < 0)
		goto fail;
	for (size_t i = 0; i < n_apps; i++)
		if ((r = add_custom(&s, cfg, &apps[i], "app", err, errlen)) < 0)
			goto fail;
	for (size_t i = 0; i < n_volumes; i++)
		if ((r = add_custom(&s, cfg, &volumes[i], "volume", err, errlen)) < 0)
			goto fail;
	if ((r = service_spec_add_env(&s, "SFTP_PORT", port)) < 0 ||
	    (r = service_spec_add_env(&s, "SFTP_AUTHORIZED_KEYS", authorized_keys ? authorized_keys : "")) < 0)
		goto fail;
	s.network_mode = strdup("host");
	if (!s.network_mode) {
		r = -ENOMEM;
		goto fail;
	}
	s.memory_bytes = cfg->sftp_memory_bytes;
	*ret = s;
	return 0;
fail:
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	service_spec_release(&s);
	return r;
}

char *sftp_keys_normalize(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (const char *line = text; *line;) {
		size_t n = strcspn(line, "\n");
		const char *next = line + n + (line[n] == '\n');
		size_t start = 0;
		while (start < n && (line[start] == ' ' || line[start] == '\t'))
			start++;
		while (n > start && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
			n--;
		if (n > start && line[start] != '#') {
			if (o > 0)
				out[o++] = '\n';
			memcpy(out + o, line + start, n - start);
			o += n - start;
		}
		line = next;
	}
	out[o] = '\0';
	return out;
}

/* The keys file's key lines; "" when it does not exist. */
static int read_keys(const char *path, char **ret, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT) {
			*ret = strdup("");
			return *ret ? 0 : -ENOMEM;
		}
		int e = errno;
		snprintf(err, errlen, "cannot read the sftp authorized keys %s: %s", path, strerror(e));
		return -e;
	}
	char *buf = malloc(KEYS_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, KEYS_MAX_BYTES + 1, f);
	bool bad = ferror(f);
	fclose(f);
	if (bad || n > KEYS_MAX_BYTES) {
		free(buf);
		snprintf(err, errlen, "cannot read the sftp authorized keys %s: %s", path,
			 bad ? "read error" : "larger than 1 MiB");
		return bad ? -EIO : -EFBIG;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		free(buf);
		snprintf(err, errlen, "the sftp authorized keys %s is not a text file", path);
		return -EINVAL;
	}
	*ret = sftp_keys_normalize(buf);
	free(buf);
	return *ret ? 0 : -ENOMEM;
}

/* Pin the custom mount of `kind` `id` (if it has one) to `expect`. */
static void pin(struct service_spec *s, const char *kind, const char *id, const struct fs_id *expect)
{
	char target[512];
	snprintf(target, sizeof(target), "/mnt/custom/%ss/%s", kind, id);
	for (size_t i = 0; i < s->n_mounts; i++) {
		if (strcmp(s->mounts[i].target, target) == 0) {
			s->mounts[i].has_expect = true;
			s->mounts[i].expect = *expect;
		}
	}
}

int sftp_spec_load(const struct boxd_config *cfg, struct store *store, struct service_spec *ret, char *err,
		   size_t errlen)
{
	struct app *apps = NULL;
	struct volume *vols = NULL;
	size_t n_apps = 0, n_vols = 0;
	struct sftp_dir *adirs = NULL, *vdirs = NULL;
	struct identity {
		char text[48];
	} *ids = NULL;
	char *keys = NULL;
	int r = app_list(store, &apps, &n_apps);
	if (r < 0) {
		snprintf(err, errlen, "cannot list apps: %s", store_errmsg(store));
		goto out;
	}
	r = volume_list(store, &vols, &n_vols);
	if (r < 0) {
		snprintf(err, errlen, "cannot list volumes: %s", store_errmsg(store));
		goto out;
	}
	adirs = calloc(n_apps + 1, sizeof(*adirs));
	vdirs = calloc(n_vols + 1, sizeof(*vdirs));
	ids = calloc(n_apps + n_vols + 1, sizeof(*ids));
	if (!adirs || !vdirs || !ids) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	size_t n_adirs = 0;
	for (size_t i = 0; i < n_apps; i++) {
		/* An app whose install has not made its data dir yet has nothing
		 * to show; its install holds service:sftp shared, so the rebuild
		 * after it sees the dir. Likewise an app whose install failed
		 * before the dir existed. */
		struct stat st;
		if (strcmp(apps[i].install_state, "pending_install") == 0 ||
		    (strcmp(apps[i].install_state, "error") == 0 && apps[i].data_dir && lstat(apps[i].data_dir, &st) < 0))
			continue;
		/* The store is not trusted for path safety: a row whose path
		 * would not be accepted today fails the spec (nothing bound). */
		char *checked = NULL;
		if ((r = app_data_dir_checked(cfg, &apps[i], &checked, err, errlen)) < 0)
			goto out;
		free(checked);
		adirs[n_adirs].id = apps[i].id;
		/* Only a custom dir can lie outside the roots; the default one
		 * is <appsdata_root>/<id>. */
		adirs[n_adirs].path = apps[i].data_dir;
		/* A reinstall makes a new row (and a new dir at the same path). */
		snprintf(ids[i].text, sizeof(ids[i].text), "app created %lld", (long long)apps[i].created_at);
		adirs[n_adirs].identity = ids[i].text;
		n_adirs++;
	}
	for (size_t i = 0; i < n_vols; i++) {
		char why[512];
		if ((r = path_check_volume(cfg, vols[i].host_path, why, sizeof(why))) < 0) {
			snprintf(err, errlen, "volume %s: its host path is not acceptable: %s", vols[i].id, why);
			goto out;
		}
		snprintf(ids[n_apps + i].text, sizeof(ids[n_apps + i].text), "volume created %lld",
			 (long long)vols[i].created_at);
		vdirs[i] = (struct sftp_dir){ vols[i].id, vols[i].host_path, ids[n_apps + i].text,
					      vols[i].mount_type && strcmp(vols[i].mount_type, "mountpoint") == 0 };
	}
	r = read_keys(cfg->sftp_authorized_keys_file, &keys, err, errlen);
	if (r < 0)
		goto out;
	r = sftp_spec_build(cfg, adirs, n_adirs, vdirs, n_vols, keys, ret, err, errlen);
	if (r < 0)
		goto out;
	/* The dirs boxd made are pinned to the identity it recorded
	 * (common/bind_source.h); a mount point volume changes identity when
	 * the host mounts on it, so only a plain dir is. */
	for (size_t i = 0; i < n_apps; i++)
		if (apps[i].has_data_id)
			pin(ret, "app", apps[i].id, &apps[i].data_id);
	for (size_t i = 0; i < n_vols; i++)
		if (vols[i].has_host_id && vols[i].mount_type && strcmp(vols[i].mount_type, "dir") == 0)
			pin(ret, "volume", vols[i].id, &vols[i].host_id);
out:
	free(keys);
	free(adirs);
	free(vdirs);
	free(ids);
	app_list_free(apps, n_apps);
	volume_list_free(vols, n_vols);
	return r;
}

static int spec_load(const struct boxd_config *cfg, struct store *store, struct service_spec *ret, char *err,
		     size_t errlen)
{
	return sftp_spec_load(cfg, store, ret, err, errlen);
}

int sftp_probe(const struct boxd_config *cfg, int timeout_ms, char *why, size_t whylen)
{
	int64_t deadline = now_mono_ms() + timeout_ms;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return 0;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->sftp_port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = 0;
	char banner[256];
	size_t got = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		snprintf(why, whylen, "nothing listens on port %d: %s", cfg->sftp_port, strerror(errno));
		goto out;
	}
	/* Connected once writable; then the server speaks first: "SSH-2.0-...". */
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int left = (int)(deadline - now_mono_ms());
	if (left <= 0 || poll(&p, 1, left) != 1) {
		snprintf(why, whylen, "port %d does not accept connections", cfg->sftp_port);
		goto out;
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		snprintf(why, whylen, "nothing listens on port %d: %s", cfg->sftp_port, strerror(soerr ? soerr : errno));
		goto out;
	}
	/* Connected: from here on a failure means a server that is there but
	 * slow (or not sshd), which the caller leaves alone for a while. */
	ok = -1;
	while (got < 4) {
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		left = (int)(deadline - now_mono_ms());
		if (left <= 0 || poll(&p, 1, left) != 1) {
			snprintf(why, whylen, "port %d accepts connections but sends no SSH banner", cfg->sftp_port);
			goto out;
		}
		ssize_t n = read(fd, banner + got, sizeof(banner) - 1 - got);
		if (n <= 0) {
			snprintf(why, whylen, "port %d closed the connection without an SSH banner", cfg->sftp_port);
			goto out;
		}
		got += (size_t)n;
	}
	if (memcmp(banner, "SSH-", 4) != 0) {
		snprintf(why, whylen, "port %d answers, but not with SSH", cfg->sftp_port);
		goto out;
	}
	ok = 1;
out:
	close(fd);
	return ok;
}

const struct service_def sftp_service = {
	.name = "sftp",
	.summary = "sftp access to app data and volumes (OpenSSH internal-sftp)",
	.build_spec = spec_load,
	.probe = sftp_probe,
};
