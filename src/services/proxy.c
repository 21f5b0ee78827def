/* proxy.c — the proxy service's spec, health probe and routes sync; see
 * proxy.h. One forward `goto out` per function for cleanup. */
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/app.h"
#include "apps/app_publish.h"
#include "common/fs.h"
#include "common/timeutil.h"

#define ADMIN_TIMEOUT_MS 10000
#define SYNC_LOCK_WAIT_MS 30000
#define ENGINE_TIMEOUT_MS 5000
#define ROOTS_MAX_BYTES (1024 * 1024)

void proxy_dir(const struct boxd_config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/proxy", cfg->state_dir);
}

void proxy_admin_socket(const struct boxd_config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/proxy/admin.sock", cfg->state_dir);
}

/* ---- the spec -------------------------------------------------------------- */

static int proxy_spec_load(const struct boxd_config *cfg, struct store *store, struct service_spec *ret, char *err,
			   size_t errlen)
{
	(void)store;
	char dir[4096];
	proxy_dir(cfg, dir, sizeof(dir));
	/* boxd's own directory (not an app's): made here, so that the bind
	 * source exists; root-only, it holds the ACME account's key. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "cannot make %s: %s", dir, strerror(e));
		return -e;
	}
	struct service_spec s;
	int r = service_spec_init(&s, "proxy", cfg->proxy.image);
	if (r >= 0)
		r = service_spec_add_mount(&s, dir, PROXY_DIR_IN_CONTAINER, ENGINE_PROPAGATION_DEFAULT, false,
					   "the proxy's state dir");
	if (r >= 0 && !(s.network_mode = strdup("host")))
		r = -ENOMEM;
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		service_spec_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

/* ---- health ---------------------------------------------------------------- */

static int proxy_probe(const struct boxd_config *cfg, int timeout_ms, char *why, size_t whylen)
{
	char sock[4096];
	proxy_admin_socket(cfg, sock, sizeof(sock));
	long status = 0;
	char *body = NULL;
	int r = proxy_admin_request(sock, "GET", "/config/", NULL, timeout_ms, &status, &body, why, whylen);
	free(body);
	if (r == -ETIMEDOUT)
		return -1;
	if (r < 0)
		return 0;
	if (status != 200) {
		snprintf(why, whylen, "the proxy's admin API answers HTTP %ld", status);
		return -1;
	}
	return 1;
}

/* ---- the routes ------------------------------------------------------------ */

/* Copy [proxy] acme_ca_root to <proxy dir>/acme-ca.pem (the container sees
 * only that dir): temp file, fsync, rename. */
static int copy_acme_roots(const struct boxd_config *cfg, char *err, size_t errlen)
{
	char dst[4096], tmp[4200];
	proxy_dir(cfg, dst, sizeof(dst));
	snprintf(tmp, sizeof(tmp), "%s/.acme-ca.pem.tmp", dst);
	strncat(dst, "/acme-ca.pem", sizeof(dst) - strlen(dst) - 1);
	int in = open(cfg->proxy.acme_ca_root, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
	char *buf = malloc(ROOTS_MAX_BYTES);
	ssize_t n = 0;
	if (in < 0 || !buf) {
		r = in < 0 ? -errno : -ENOMEM;
		snprintf(err, errlen, "cannot read [proxy] acme_ca_root %s: %s", cfg->proxy.acme_ca_root, strerror(-r));
		goto out;
	}
	n = read(in, buf, ROOTS_MAX_BYTES);
	if (n <= 0 || n == ROOTS_MAX_BYTES) {
		r = n < 0 ? -errno : -EINVAL;
		snprintf(err, errlen, "cannot read [proxy] acme_ca_root %s: %s", cfg->proxy.acme_ca_root,
			 n < 0 ? strerror(-r) : "empty or over 1 MiB");
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (out < 0 || write(out, buf, (size_t)n) != n || fsync(out) < 0 || rename(tmp, dst) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
		unlink(tmp);
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(buf);
	return r;
}

/* Take <proxy dir>/sync.lock, waiting at most SYNC_LOCK_WAIT_MS. */
static int sync_lock(const struct boxd_config *cfg, int *ret_fd, char *err, size_t errlen)
{
	char path[4200];
	proxy_dir(cfg, path, sizeof(path));
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot make %s: %s", path, strerror(errno));
		return -errno;
	}
	strncat(path, "/sync.lock", sizeof(path) - strlen(path) - 1);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	int64_t deadline = now_mono_ms() + SYNC_LOCK_WAIT_MS;
	int pause_us = 1000;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK || now_mono_ms() > deadline) {
			snprintf(err, errlen, "cannot lock %s: %s", path,
				 errno == EWOULDBLOCK ? "another routes sync holds it for over 30 s" : strerror(errno));
			close(fd);
			return -ETIMEDOUT;
		}
		usleep((useconds_t)pause_us);
		pause_us = pause_us < 50000 ? pause_us * 2 : pause_us;
	}
	*ret_fd = fd;
	return 0;
}

/* The routes of every app with domains, each to its container's address
 * (engine may be NULL: all 502). The routes' strings point into `apps`
 * and into the set. */
struct route_set {
	struct proxy_route *routes;
	size_t n;
	char (*addrs)[80];      /* per app: "IP:PORT" or "" */
	json_t **parsed;        /* per app: its domains array (owns the strings) */
	size_t n_apps;
};

static void route_set_release(struct route_set *rs)
{
	for (size_t i = 0; rs->parsed && i < rs->n_apps; i++)
		json_decref(rs->parsed[i]);
	free(rs->parsed);
	free(rs->addrs);
	free(rs->routes);
	*rs = (struct route_set){ 0 };
}

static int collect_routes(struct engine *e, const struct app *apps, size_t n_apps, struct route_set *rs)
{
	size_t cap = 0;
	*rs = (struct route_set){ .n_apps = n_apps };
	rs->parsed = calloc(n_apps + 1, sizeof(*rs->parsed));
	rs->addrs = calloc(n_apps + 1, sizeof(*rs->addrs));
	if (!rs->parsed || !rs->addrs)
		goto oom;
	for (size_t i = 0; i < n_apps; i++) {
		rs->parsed[i] = apps[i].domains ? json_loads(apps[i].domains, 0, NULL) : NULL;
		cap += json_array_size(rs->parsed[i]);
	}
	rs->routes = calloc(cap + 1, sizeof(*rs->routes));
	if (!rs->routes)
		goto oom;
	for (size_t i = 0; i < n_apps; i++) {
		json_t *d = rs->parsed[i];
		if (!json_array_size(d))
			continue;
		char cname[APP_ID_MAX + 8], ip[64];
		snprintf(cname, sizeof(cname), "app-%s", apps[i].id);
		struct engine_container c = { 0 };
		if (e && engine_container_inspect(e, cname, &c) == 0) {
			if (c.running && engine_container_address(&c, ip, sizeof(ip)) == 0)
				snprintf(rs->addrs[i], sizeof(rs->addrs[i]), "%s:%d", ip,
					 apps[i].http_port > 0 ? apps[i].http_port : 80);
			engine_container_release(&c);
		}
		size_t k;
		json_t *v;
		json_array_foreach(d, k, v) {
			/* The store is not trusted: only a valid name is a route. */
			const char *dom = json_string_value(v);
			if (!dom || !app_domain_valid(dom) || rs->n >= cap)
				continue;
			rs->routes[rs->n++] = (struct proxy_route){ .domain = dom, .app_id = apps[i].id,
								    .upstream = rs->addrs[i][0] ? rs->addrs[i] : NULL };
		}
	}
	return 0;
oom:
	route_set_release(rs);
	return -ENOMEM;
}

int proxy_routes_sync(const struct boxd_config *cfg, struct store *store, char *err, size_t errlen)
{
	struct app *apps = NULL;
	size_t n_apps = 0;
	struct route_set rs = { 0 };
	struct engine *e = NULL;
	json_t *conf = NULL;
	char *text = NULL, *reply = NULL, sock[4200], eerr[512];
	int fd = -1;
	int r = sync_lock(cfg, &fd, err, errlen);
	if (r < 0)
		return r;
	/* Read inside the lock: the last load is of the latest rows. */
	if ((r = app_list(store, &apps, &n_apps)) < 0) {
		snprintf(err, errlen, "cannot list apps: %s", store_errmsg(store));
		goto out;
	}
	/* Without an engine every domain answers 502 until the next sync. */
	if (service_engine_open(cfg, ENGINE_TIMEOUT_MS, &e, eerr, sizeof(eerr)) < 0)
		e = NULL;
	if ((r = collect_routes(e, apps, n_apps, &rs)) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (cfg->proxy.acme_ca_root && (r = copy_acme_roots(cfg, err, errlen)) < 0)
		goto out;
	conf = proxy_config_build(cfg, rs.routes, rs.n, cfg->proxy.acme_ca_root != NULL);
	text = conf ? json_dumps(conf, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!text) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	proxy_admin_socket(cfg, sock, sizeof(sock));
	long status = 0;
	r = proxy_admin_request(sock, "POST", "/load", text, ADMIN_TIMEOUT_MS, &status, &reply, err, errlen);
	if (r == -ECONNREFUSED || r == -ENOENT) {
		r = -ENOTCONN;
		snprintf(err, errlen, "the proxy does not answer on %s (not running?); its next start loads the routes",
			 sock);
	} else if (r == 0 && status != 200) {
		r = -EIO;
		snprintf(err, errlen, "the proxy refused the routes (HTTP %ld): %.300s", status, reply ? reply : "");
	}
out:
	free(reply);
	free(text);
	json_decref(conf);
	route_set_release(&rs);
	engine_close(e);
	app_list_free(apps, n_apps);
	close(fd); /* releases the lock */
	return r;
}

int proxy_config_current(const struct boxd_config *cfg, json_t **ret, char *err, size_t errlen)
{
	char sock[4200], *reply = NULL;
	long status = 0;
	proxy_admin_socket(cfg, sock, sizeof(sock));
	int r = proxy_admin_request(sock, "GET", "/config/", NULL, ADMIN_TIMEOUT_MS, &status, &reply, err, errlen);
	if (r == 0 && status != 200) {
		snprintf(err, errlen, "the proxy's admin API answers HTTP %ld", status);
		r = -EIO;
	}
	if (r == 0) {
		json_t *v = json_loads(reply ? reply : "", 0, NULL);
		if (!v) {
			snprintf(err, errlen, "the proxy's admin API sent no JSON");
			r = -EBADMSG;
		} else {
			*ret = v;
		}
	}
	free(reply);
	return r;
}

static int proxy_after_start(const struct boxd_config *cfg, struct store *store, char *err, size_t errlen)
{
	return proxy_routes_sync(cfg, store, err, errlen);
}

static bool proxy_enabled(const struct boxd_config *cfg)
{
	return cfg->proxy.enabled;
}

const struct service_def proxy_service = {
	.name = "proxy",
	.summary = "HTTPS for the apps' domains (Caddy reverse proxy, certificates from ACME)",
	.build_spec = proxy_spec_load,
	.probe = proxy_probe,
	.after_start = proxy_after_start,
	.enabled = proxy_enabled,
};
