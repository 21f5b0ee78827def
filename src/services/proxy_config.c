/* proxy_config.c — the Caddy config boxd loads into the proxy (proxy.h).
 * Pure: JSON in memory, no I/O. */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_route(const void *a, const void *b)
{
	const struct proxy_route *const *x = a, *const *y = b;
	return strcmp((*x)->domain, (*y)->domain);
}

static json_t *route_json(const struct proxy_route *r)
{
	json_t *handle;
	if (r->upstream) {
		handle = json_pack("[{s:s, s:[{s:s}]}]", "handler", "reverse_proxy", "upstreams", "dial", r->upstream);
	} else {
		char body[160];
		snprintf(body, sizeof(body), "app %s is not running\n", r->app_id);
		handle = json_pack("[{s:s, s:i, s:s}]", "handler", "static_response", "status_code", 502, "body", body);
	}
	if (!handle)
		return NULL;
	/* "@id" names the route in the admin API (/id/boxd-route-DOMAIN). */
	char id[300];
	snprintf(id, sizeof(id), "boxd-route-%s", r->domain);
	return json_pack("{s:s, s:[{s:[s]}], s:o, s:b}", "@id", id, "match", "host", r->domain, "handle", handle,
			 "terminal", 1);
}

json_t *proxy_config_build(const struct boxd_config *cfg, const struct proxy_route *routes, size_t n,
			   bool acme_roots)
{
	const struct proxy_route **sorted = calloc(n + 1, sizeof(*sorted));
	json_t *list = json_array(), *out = NULL;
	if (!sorted || !list)
		goto done;
	for (size_t i = 0; i < n; i++)
		sorted[i] = &routes[i];
	qsort(sorted, n, sizeof(*sorted), cmp_route);
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(list, route_json(sorted[i])) < 0)
			goto done;

	char listen[32], admin[sizeof(PROXY_ADMIN_SOCKET_IN_CONTAINER) + 8];
	snprintf(listen, sizeof(listen), ":%d", cfg->proxy.https_port);
	snprintf(admin, sizeof(admin), "unix/%s", PROXY_ADMIN_SOCKET_IN_CONTAINER);
	/* Automatic HTTPS: a server on https_port whose routes match host
	 * names gets certificates for them. Its own HTTP → HTTPS redirects
	 * are replaced by a server of ours on http_port: Caddy 2.6's leave
	 * out a https_port other than 443 (http://a:8080/x went to
	 * https://a/x). Caddy's HTTP servers answer an ACME HTTP-01
	 * challenge before their routes, and TLS-ALPN-01 is solved on
	 * https_port; the test CA (pebble, always valid) checks neither, so
	 * the tests do not prove that part. */
	json_t *server = json_pack("{s:[s], s:O, s:{s:b}}", "listen", listen, "routes", list, "automatic_https",
				   "disable_redirects", 1);
	char http_listen[32], location[80];
	snprintf(http_listen, sizeof(http_listen), ":%d", cfg->proxy.http_port);
	if (cfg->proxy.https_port == 443)
		snprintf(location, sizeof(location), "https://{http.request.host}{http.request.uri}");
	else
		snprintf(location, sizeof(location), "https://{http.request.host}:%d{http.request.uri}",
			 cfg->proxy.https_port);
	json_t *redirect = json_pack("{s:[s], s:[{s:[{s:s, s:i, s:{s:[s]}}]}]}", "listen", http_listen, "routes",
				     "handle", "handler", "static_response", "status_code", 308, "headers", "Location",
				     location);
	json_t *issuer = json_pack("{s:s}", "module", "acme");
	if (issuer && cfg->proxy.acme_ca)
		json_object_set_new(issuer, "ca", json_string(cfg->proxy.acme_ca));
	if (issuer && cfg->proxy.acme_email)
		json_object_set_new(issuer, "email", json_string(cfg->proxy.acme_email));
	if (issuer && acme_roots)
		json_object_set_new(issuer, "trusted_roots_pem_files", json_pack("[s]", PROXY_ACME_ROOTS_IN_CONTAINER));
	if (!server || !issuer || !redirect) {
		json_decref(server);
		json_decref(issuer);
		json_decref(redirect);
		goto done;
	}
	out = json_pack("{s:{s:s, s:b}, s:{s:{s:i, s:i, s:{s:o, s:o}}, s:{s:{s:[{s:[o]}]}}}}", "admin", "listen",
			admin, "enforce_origin", 0, "apps", "http", "http_port", cfg->proxy.http_port, "https_port",
			cfg->proxy.https_port, "servers", "boxd", server, "boxd-http", redirect, "tls", "automation",
			"policies", "issuers", issuer);
done:
	json_decref(list);
	free(sorted);
	return out;
}
