/* test-app-publish.c — apps/app_publish.c: what a port or a domain may be,
 * and the reservation that refuses a port or domain another app or one of
 * boxd's own services holds, with nothing changed (on a real SQLite store). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "apps/app_publish.h"
#include "common/config.h"
#include "tasks/store_open.h"

static int parse_ports(const char *text, size_t *ret_n)
{
	json_t *v = json_loads(text, 0, NULL);
	struct app_port *p = NULL;
	size_t n = 0;
	char err[256];
	int r = app_ports_parse(v, &p, &n, err, sizeof(err));
	json_decref(v);
	free(p);
	if (ret_n)
		*ret_n = n;
	return r;
}

static void test_ports(void **state)
{
	(void)state;
	size_t n;
	assert_int_equal(parse_ports("[]", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(parse_ports("[{\"container\":8080,\"host\":18080}]", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(parse_ports("[{\"container\":53,\"host\":5353,\"protocol\":\"udp\"},"
				     "{\"container\":53,\"host\":5353,\"protocol\":\"tcp\"}]",
				     &n),
			 0);
	assert_int_equal(n, 2);
	/* Range, types, protocol, unknown fields, duplicates. */
	assert_int_equal(parse_ports("[{\"container\":0,\"host\":1}]", NULL), -EINVAL);
	assert_int_equal(parse_ports("[{\"container\":1,\"host\":65536}]", NULL), -EINVAL);
	assert_int_equal(parse_ports("[{\"container\":\"80\",\"host\":8080}]", NULL), -EINVAL);
	assert_int_equal(parse_ports("[{\"container\":80}]", NULL), -EINVAL);
	assert_int_equal(parse_ports("[{\"container\":80,\"host\":81,\"protocol\":\"sctp\"}]", NULL), -EINVAL);
	assert_int_equal(parse_ports("[{\"container\":80,\"host\":81,\"hostIp\":\"1.2.3.4\"}]", NULL), -EINVAL);
	assert_int_equal(parse_ports("[{\"container\":80,\"host\":81},{\"container\":82,\"host\":81}]", NULL),
			 -EINVAL);
	assert_int_equal(parse_ports("{\"container\":80,\"host\":81}", NULL), -EINVAL);
	assert_int_equal(parse_ports("[80]", NULL), -EINVAL);

	struct app_port p[] = { { 8080, 18080, "tcp" } };
	char *text = app_ports_format(p, 1);
	assert_string_equal(text, "[{\"container\":8080,\"host\":18080,\"protocol\":\"tcp\"}]");
	free(text);
}

static void test_domains(void **state)
{
	(void)state;
	assert_true(app_domain_valid("wiki.example.com"));
	assert_true(app_domain_valid("a.test"));
	assert_true(app_domain_valid("x-1.b2.example"));
	assert_false(app_domain_valid("localhost"));       /* one label */
	assert_false(app_domain_valid("*.example.com"));   /* wildcard */
	assert_false(app_domain_valid("Wiki.example.com")); /* folded by the parser, not here */
	assert_false(app_domain_valid("-a.example.com"));
	assert_false(app_domain_valid("a-.example.com"));
	assert_false(app_domain_valid("a..example.com"));
	assert_false(app_domain_valid(".example.com"));
	assert_false(app_domain_valid("example.com."));
	assert_false(app_domain_valid("127.0.0.1"));       /* an address */
	assert_false(app_domain_valid("a b.example.com"));
	assert_false(app_domain_valid("wiki.example.com/x"));
	char label[80];
	memset(label, 'a', 64);
	snprintf(label + 64, sizeof(label) - 64, ".com");
	assert_false(app_domain_valid(label));              /* a label over 63 */

	json_t *in = json_loads("[\"Wiki.Example.COM\", \"b.test\"]", 0, NULL), *out = NULL;
	char err[256];
	assert_int_equal(app_domains_parse(in, &out, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_array_get(out, 0)), "wiki.example.com");
	json_decref(in);
	json_decref(out);
	in = json_loads("[\"a.test\", \"A.test\"]", 0, NULL);
	assert_int_equal(app_domains_parse(in, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	json_decref(in);
	in = json_loads("[\"a.test\", 3]", 0, NULL);
	assert_int_equal(app_domains_parse(in, &out, err, sizeof(err)), -EINVAL);
	json_decref(in);
}

/* ---- reservations on a real store ------------------------------------------- */

static int reserve(const struct boxd_config *cfg, struct store *s, const char *id, const char *args_text, char *err,
		   size_t errlen)
{
	json_t *args = json_loads(args_text, 0, NULL);
	assert_non_null(args);
	int r = app_publish_reserve(cfg, s, id, args, err, errlen);
	json_decref(args);
	return r;
}

static void test_reserve(void **state)
{
	(void)state;
	char dir[] = "/tmp/boxd-test-publish-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct boxd_config cfg;
	char err[512] = "";
	assert_int_equal(config_load(&cfg, NULL, dir, err, sizeof(err)), 0);
	cfg.sftp_port = 2222;
	struct store *s = NULL;
	if (store_open_config(&cfg, 0, &s, err, sizeof(err)) < 0)
		fail_msg("store: %s", err);
	assert_int_equal(app_insert(s, "a", "img", "{}", NULL, NULL), 0);
	assert_int_equal(app_insert(s, "b", "img", "{}", NULL, NULL), 0);

	assert_int_equal(reserve(&cfg, s, "a", "{\"ports\":[{\"container\":80,\"host\":18080}]}", err, sizeof(err)), 0);
	/* b cannot take a's port, nor the sftp port; udp on the same number is
	 * another port. */
	assert_int_equal(reserve(&cfg, s, "b", "{\"ports\":[{\"container\":80,\"host\":18080}]}", err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "app a"));
	assert_int_equal(reserve(&cfg, s, "b", "{\"ports\":[{\"container\":22,\"host\":2222}]}", err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "sftp"));
	assert_int_equal(reserve(&cfg, s, "b",
				 "{\"ports\":[{\"container\":80,\"host\":18080,\"protocol\":\"udp\"}]}", err,
				 sizeof(err)),
			 0);
	/* a may keep its own port (a configure that names it again). */
	assert_int_equal(reserve(&cfg, s, "a", "{\"ports\":[{\"container\":81,\"host\":18080}]}", err, sizeof(err)), 0);

	/* Domains need the proxy; then one app per domain. */
	assert_int_equal(reserve(&cfg, s, "a", "{\"domains\":[\"wiki.test\"]}", err, sizeof(err)), -EPERM);
	cfg.proxy.enabled = true;
	assert_int_equal(reserve(&cfg, s, "a", "{\"domains\":[\"wiki.test\"], \"httpPort\": 8080}", err, sizeof(err)), 0);
	assert_int_equal(reserve(&cfg, s, "b", "{\"domains\":[\"other.test\", \"WIKI.test\"]}", err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "already routed to app a"));
	/* The proxy's own ports are boxd's once it is enabled. */
	assert_int_equal(reserve(&cfg, s, "b", "{\"ports\":[{\"container\":80,\"host\":443}]}", err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "proxy"));

	/* Nothing of the refused requests was stored. */
	struct app a, b;
	assert_int_equal(app_get(s, "a", &a), 0);
	assert_int_equal(app_get(s, "b", &b), 0);
	assert_string_equal(a.ports, "[{\"container\":81,\"host\":18080,\"protocol\":\"tcp\"}]");
	assert_string_equal(a.domains, "[\"wiki.test\"]");
	assert_int_equal(a.http_port, 8080);
	assert_string_equal(b.ports, "[{\"container\":80,\"host\":18080,\"protocol\":\"udp\"}]");
	assert_null(b.domains);
	json_t *urls = app_urls_json(&cfg, &a);
	assert_string_equal(json_string_value(json_array_get(urls, 0)), "https://wiki.test");
	json_decref(urls);
	cfg.proxy.https_port = 8443;
	urls = app_urls_json(&cfg, &a);
	assert_string_equal(json_string_value(json_array_get(urls, 0)), "https://wiki.test:8443");
	json_decref(urls);

	/* An empty list frees the domain for another app. */
	assert_int_equal(reserve(&cfg, s, "a", "{\"domains\":[]}", err, sizeof(err)), 0);
	assert_int_equal(reserve(&cfg, s, "b", "{\"domains\":[\"wiki.test\"]}", err, sizeof(err)), 0);

	/* The engine's bindings from the row. */
	struct engine_port_binding *pb;
	size_t n;
	assert_int_equal(app_port_bindings(&a, &pb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pb[0].container_port, 81);
	assert_int_equal(pb[0].host_port, 18080);
	assert_string_equal(pb[0].protocol, "tcp");
	assert_null(pb[0].host_ip);
	free(pb);
	free(a.ports);
	a.ports = strdup("[{\"container\":\"x\"}]"); /* the store is not trusted */
	assert_int_equal(app_port_bindings(&a, &pb, &n), -EINVAL);

	app_release(&a);
	app_release(&b);
	store_close(s);
	config_release(&cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
