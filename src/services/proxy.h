/* proxy.h — the proxy service: one Caddy container, `boxd-proxy`, that
 * serves every app's domains over HTTPS with certificates from ACME and
 * redirects HTTP to HTTPS.
 *
 * It is a service like sftp (service.h): a spec with a hash, restart ≠
 * rebuild, a rebuild only when the spec changed. The spec is small and
 * depends on the config only — the image, the host network (Caddy listens
 * on [proxy] http_port and https_port) and one bind:
 *	<state_dir>/proxy  →  /var/lib/boxd-proxy
 * which holds Caddy's admin socket (admin.sock), its certificates and ACME
 * account (data/), its autosaved config (config/), and the ACME server's
 * trusted roots (acme-ca.pem, copied from [proxy] acme_ca_root). So the
 * certificates outlive a rebuild, and a restarted container resumes the
 * last config boxd loaded (`caddy run --resume`).
 *
 * The routes are not in the spec: boxd drives Caddy through its admin API
 * on the unix socket (libcurl, CURLOPT_UNIX_SOCKET_PATH). The whole Caddy
 * config — the listeners, the ACME issuer, a route per domain to its app's
 * container (its address on the engine's network, port httpPort) — is
 * built from the config and the apps' rows (proxy_config_build, pure) and
 * loaded with POST /load: a domain change is a route change, never a
 * rebuild, and the proxy container keeps its id. Loading the same config
 * again changes nothing in Caddy. Loads are serialized by a lock file
 * (<state_dir>/proxy/sync.lock) and each reads the rows inside it, so the
 * last load is always of the latest rows, whichever task ran it.
 *
 * Who loads: every app task that changes what is routed (app_tasks.h's
 * routes sync hook, set to proxy_routes_sync at program start), and the
 * service itself after a rebuild or restart answered (so a new container
 * gets the routes too).
 *
 * Errors: 0 or a negative errno with a message in err. Nothing logs.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "common/config.h"
#include "service.h"
#include "store/store.h"

/* Inside the container. */
#define PROXY_DIR_IN_CONTAINER "/var/lib/boxd-proxy"
#define PROXY_ADMIN_SOCKET_IN_CONTAINER PROXY_DIR_IN_CONTAINER "/admin.sock"
#define PROXY_ACME_ROOTS_IN_CONTAINER PROXY_DIR_IN_CONTAINER "/acme-ca.pem"

/* One domain's route: to `upstream` ("10.88.0.5:8080"), or, when NULL (the
 * app's container has no address: stopped, being recreated), a 502 that
 * names the app — the domain keeps its certificate either way. */
struct proxy_route {
	const char *domain;
	const char *app_id;
	const char *upstream;
};

/* The Caddy config (a new JSON object) for these routes and the [proxy]
 * settings: the admin API on PROXY_ADMIN_SOCKET_IN_CONTAINER only; one
 * HTTP server on https_port whose routes match the domains (automatic
 * HTTPS then gets their certificates and serves the HTTP → HTTPS redirect
 * on http_port); the ACME issuer of acme_ca / acme_email, trusting
 * PROXY_ACME_ROOTS_IN_CONTAINER when `acme_roots` is true. Routes are
 * sorted by domain, so the same rows give the same text. Pure. NULL on
 * ENOMEM. */
json_t *proxy_config_build(const struct boxd_config *cfg, const struct proxy_route *routes, size_t n,
			   bool acme_roots);

/* <state_dir>/proxy and its admin socket, into buf. */
void proxy_dir(const struct boxd_config *cfg, char *buf, size_t len);
void proxy_admin_socket(const struct boxd_config *cfg, char *buf, size_t len);

/* One request to the admin API: `method` `path` with an optional JSON
 * body; the status into *ret_status and the reply (malloc'ed, may be
 * NULL) into *ret_body. timeout_ms bounds the whole request. -ECONNREFUSED
 * / -ENOENT when nothing listens on the socket, -ETIMEDOUT, -EIO. */
int proxy_admin_request(const char *socket_path, const char *method, const char *path, const char *body,
			int timeout_ms, long *ret_status, char **ret_body, char *err, size_t errlen);

/* Build the config from the rows and the engine (each app's container
 * address) and load it into the running proxy (POST /load), under the
 * sync lock. -ENOTCONN when the proxy does not answer (not running yet:
 * its start loads the routes). The app_routes_sync_fn of app_tasks.h. */
int proxy_routes_sync(const struct boxd_config *cfg, struct store *store, char *err, size_t errlen);

/* The config Caddy runs now (GET /config/), a new reference; for tests
 * and status. */
int proxy_config_current(const struct boxd_config *cfg, json_t **ret, char *err, size_t errlen);

extern const struct service_def proxy_service;
