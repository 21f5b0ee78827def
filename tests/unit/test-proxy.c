/* test-proxy.c — services/proxy_config.c: the Caddy config boxd loads into
 * the proxy (routes sorted, a 502 for an app without an address, our own
 * HTTP → HTTPS redirect that keeps a non-default port, the ACME issuer);
 * engine/engine_net.c: a container's address from an inspect reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine-internal.h"
#include "services/proxy.h"

static const char *path_str(json_t *root, const char *path)
{
	json_error_t e;
	json_t *v = NULL;
	(void)e;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", path);
	v = root;
	for (char *save, *tok = strtok_r(buf, "/", &save); tok && v; tok = strtok_r(NULL, "/", &save)) {
		char *end;
		long idx = strtol(tok, &end, 10);
		v = *end ? json_object_get(v, tok) : json_array_get(v, (size_t)idx);
	}
	return json_string_value(v);
}

static void test_config(void **state)
{
	(void)state;
	struct boxd_config cfg = { 0 };
	cfg.proxy.enabled = true;
	cfg.proxy.http_port = 8080;
	cfg.proxy.https_port = 8443;
	cfg.proxy.acme_ca = "https://127.0.0.1:14000/dir";
	cfg.proxy.acme_email = "ops@example.com";
	struct proxy_route r[] = {
		{ .domain = "z.test", .app_id = "zed", .upstream = "10.88.0.7:8080" },
		{ .domain = "a.test", .app_id = "wiki", .upstream = NULL },
	};
	json_t *c = proxy_config_build(&cfg, r, 2, true);
	assert_non_null(c);
	assert_string_equal(path_str(c, "admin/listen"), "unix//var/lib/boxd-proxy/admin.sock");
	/* Sorted by domain: the same rows give the same text. */
	assert_string_equal(path_str(c, "apps/http/servers/boxd/routes/0/match/0/host/0"), "a.test");
	assert_string_equal(path_str(c, "apps/http/servers/boxd/routes/0/handle/0/handler"), "static_response");
	assert_non_null(strstr(path_str(c, "apps/http/servers/boxd/routes/0/handle/0/body"), "app wiki is not running"));
	assert_string_equal(path_str(c, "apps/http/servers/boxd/routes/1/handle/0/upstreams/0/dial"), "10.88.0.7:8080");
	assert_string_equal(path_str(c, "apps/http/servers/boxd/routes/1/@id"), "boxd-route-z.test");
	assert_string_equal(path_str(c, "apps/http/servers/boxd/listen/0"), ":8443");
	assert_string_equal(path_str(c, "apps/http/servers/boxd-http/listen/0"), ":8080");
	assert_string_equal(path_str(c, "apps/http/servers/boxd-http/routes/0/handle/0/headers/Location/0"),
			    "https://{http.request.host}:8443{http.request.uri}");
	assert_string_equal(path_str(c, "apps/tls/automation/policies/0/issuers/0/ca"), cfg.proxy.acme_ca);
	assert_string_equal(path_str(c, "apps/tls/automation/policies/0/issuers/0/email"), "ops@example.com");
	assert_string_equal(path_str(c, "apps/tls/automation/policies/0/issuers/0/trusted_roots_pem_files/0"),
			    PROXY_ACME_ROOTS_IN_CONTAINER);
	char *t1 = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);

	/* The same routes in another order: the same text. */
	struct proxy_route swapped[] = { r[1], r[0] };
	c = proxy_config_build(&cfg, swapped, 2, true);
	char *t2 = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);
	json_decref(c);

	/* Defaults: port 443 is not said in the redirect; no CA, no email,
	 * no roots: Caddy's own. No routes is a valid config too. */
	cfg.proxy.https_port = 443;
	cfg.proxy.acme_ca = cfg.proxy.acme_email = NULL;
	c = proxy_config_build(&cfg, NULL, 0, false);
	assert_non_null(c);
	assert_string_equal(path_str(c, "apps/http/servers/boxd-http/routes/0/handle/0/headers/Location/0"),
			    "https://{http.request.host}{http.request.uri}");
	assert_null(path_str(c, "apps/tls/automation/policies/0/issuers/0/ca"));
	assert_null(json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(c, "apps"), "tls"), "automation"), "policies"), 0), "issuers"), 0), "trusted_roots_pem_files"));
	assert_int_equal(json_array_size(json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(c, "apps"), "http"), "servers"), "boxd"), "routes")), 0);
	json_decref(c);
}

static void test_address(void **state)
{
	(void)state;
	struct engine_container c;
	char ip[64];
	/* Podman: named networks only, the first by name. */
	json_t *root = json_loads("{\"Id\":\"ab\",\"NetworkSettings\":{\"IPAddress\":\"\",\"Networks\":{"
				  "\"zz\":{\"IPAddress\":\"10.9.0.2\"},\"boxdtest\":{\"IPAddress\":\"10.128.5.3\"}}}}",
				  0, NULL);
	assert_int_equal(engine_parse_container_inspect(root, &c), 0);
	assert_int_equal(engine_container_address(&c, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "10.128.5.3");
	assert_int_equal(engine_container_address(&c, ip, 4), -ENOSPC);
	engine_container_release(&c);
	json_decref(root);
	/* Docker's default bridge. */
	root = json_loads("{\"Id\":\"ab\",\"NetworkSettings\":{\"IPAddress\":\"172.17.0.2\",\"Networks\":{}}}", 0, NULL);
	assert_int_equal(engine_parse_container_inspect(root, &c), 0);
	assert_int_equal(engine_container_address(&c, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "172.17.0.2");
	engine_container_release(&c);
	json_decref(root);
	/* Host network or stopped: none. */
	root = json_loads("{\"Id\":\"ab\",\"NetworkSettings\":{\"Networks\":{\"host\":{\"IPAddress\":\"\"}}}}", 0, NULL);
	assert_int_equal(engine_parse_container_inspect(root, &c), 0);
	assert_int_equal(engine_container_address(&c, ip, sizeof(ip)), -ENOENT);
	engine_container_release(&c);
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
