/* test-engine-pull.c — pulling images and choosing the API version.
 *
 * The pure part needs nothing: image references, the X-Registry-Auth
 * header, the progress stream parser (fed in every possible chunking), and
 * version negotiation. The live part runs against the test env's Podman
 * and its registry (BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_REGISTRY_IMAGE,
 * _USER, _PASSWORD; skipped without them): a pull with the right password
 * brings the image, a wrong one fails with the registry's reason, and the
 * version this engine negotiates. The image it pulled is removed again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine-internal.h"
#include "engine/engine.h"

static void test_ref_split(void **state)
{
	(void)state;
	char repo[128], tag[128];
	assert_int_equal(engine_image_ref_split("nginx", repo, sizeof(repo), tag, sizeof(tag)), 0);
	assert_string_equal(repo, "nginx");
	assert_string_equal(tag, "latest");
	assert_int_equal(engine_image_ref_split("127.0.0.1:5000/a/b:1.2", repo, sizeof(repo), tag, sizeof(tag)), 0);
	assert_string_equal(repo, "127.0.0.1:5000/a/b");
	assert_string_equal(tag, "1.2");
	/* A port is not a tag. */
	assert_int_equal(engine_image_ref_split("127.0.0.1:5000/a/b", repo, sizeof(repo), tag, sizeof(tag)), 0);
	assert_string_equal(repo, "127.0.0.1:5000/a/b");
	assert_string_equal(tag, "latest");
	assert_int_equal(engine_image_ref_split("x/y@sha256:abcd", repo, sizeof(repo), tag, sizeof(tag)), 0);
	assert_string_equal(repo, "x/y");
	assert_string_equal(tag, "sha256:abcd");
	assert_int_equal(engine_image_ref_split("x:", repo, sizeof(repo), tag, sizeof(tag)), -EINVAL);
	assert_int_equal(engine_image_ref_split("../x", repo, sizeof(repo), tag, sizeof(tag)), -EINVAL);
	assert_int_equal(engine_image_ref_split("a b", repo, sizeof(repo), tag, sizeof(tag)), -EINVAL);
	assert_int_equal(engine_image_ref_split("x", repo, 1, tag, sizeof(tag)), -EINVAL);
}

static void test_registry_host(void **state)
{
	(void)state;
	char h[64];
	assert_int_equal(engine_image_registry("nginx:1", h, sizeof(h)), 0);
	assert_string_equal(h, "docker.io");
	assert_int_equal(engine_image_registry("library/nginx", h, sizeof(h)), 0);
	assert_string_equal(h, "docker.io");
	assert_int_equal(engine_image_registry("ghcr.io/a/b:2", h, sizeof(h)), 0);
	assert_string_equal(h, "ghcr.io");
	assert_int_equal(engine_image_registry("127.0.0.1:5000/b", h, sizeof(h)), 0);
	assert_string_equal(h, "127.0.0.1:5000");
	assert_int_equal(engine_image_registry("localhost/boxd/sftp:latest", h, sizeof(h)), 0);
	assert_string_equal(h, "localhost");
	assert_int_equal(engine_image_registry("ghcr.io/a", h, 4), -EINVAL);
}

static void test_auth_encode(void **state)
{
	(void)state;
	/* A password whose base64 has '+' and '/' (">>>?" encodes to "Pj4+Pw"). */
	struct engine_registry_auth a = { .username = "u", .password = ">>>?\"\\", .server = "r:5000" };
	char *v = NULL;
	assert_int_equal(engine_registry_auth_encode(&a, &v), 0);
	assert_null(strchr(v, '+'));
	assert_null(strchr(v, '/'));
	char *std = strdup(v);
	for (char *p = std; *p; p++)
		*p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
	unsigned char out[512] = {0}; /* the decoded padding stays NUL */
	int n = EVP_DecodeBlock(out, (unsigned char *)std, (int)strlen(std));
	assert_true(n > 0);
	json_t *j = json_loadb((char *)out, strlen((char *)out), 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "username")), "u");
	assert_string_equal(json_string_value(json_object_get(j, "password")), ">>>?\"\\");
	assert_string_equal(json_string_value(json_object_get(j, "serveraddress")), "r:5000");
	json_decref(j);
	free(std);
	free(v);
	struct engine_registry_auth none = { .username = "u" };
	assert_int_equal(engine_registry_auth_encode(&none, &v), -EINVAL);
}

/* What Docker sends for a two-layer pull (shortened), and Podman's error. */
static const char docker_stream[] =
	"{\"status\":\"Pulling from library/nginx\",\"id\":\"1\"}\n"
	"{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"aaaa\"}\n"
	"{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"bbbb\"}\n"
	"{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1000,\"total\":4000},\"id\":\"aaaa\"}\n"
	"{\"status\":\"Downloading\",\"progressDetail\":{\"current\":500,\"total\":6000},\"id\":\"bbbb\"}\n"
	"{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"aaaa\"}\n"
	"{\"status\":\"Extracting\",\"progressDetail\":{\"current\":4000,\"total\":4000},\"id\":\"aaaa\"}\n"
	"{\"status\":\"Digest: sha256:x\"}\n"
	"{\"status\":\"Status: Downloaded newer image for nginx:1\"}\n";

static void test_stream_every_split(void **state)
{
	(void)state;
	size_t len = strlen(docker_stream);
	/* Any chunking gives the same result: lines cut anywhere. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct engine_pull_stream s = {0};
		assert_int_equal(engine_pull_stream_feed(&s, docker_stream, cut), 0);
		assert_int_equal(engine_pull_stream_feed(&s, docker_stream + cut, len - cut), 0);
		assert_int_equal(engine_pull_stream_finish(&s), 0);
		struct engine_pull_progress p;
		engine_pull_stream_progress(&s, &p);
		assert_int_equal(p.layers, 2);
		assert_int_equal(p.layers_done, 1);
		assert_int_equal(p.total_bytes, 10000);
		assert_int_equal(p.current_bytes, 4000 + 500); /* Extracting does not count twice */
		assert_false(s.failed);
		engine_pull_stream_release(&s);
	}
}

static void test_stream_error(void **state)
{
	(void)state;
	static const char podman[] =
		"{\"progressDetail\":{},\"errorDetail\":{\"message\":\"reading manifest 1 in r/x: unauthorized: "
		"authentication required\"},\"error\":\"short\"}"; /* no newline at the end */
	struct engine_pull_stream s = {0};
	assert_int_equal(engine_pull_stream_feed(&s, podman, strlen(podman)), 0);
	assert_false(s.failed);
	assert_int_equal(engine_pull_stream_finish(&s), 0);
	assert_true(s.failed);
	assert_string_equal(s.error, "reading manifest 1 in r/x: unauthorized: authentication required");
	engine_pull_stream_release(&s);

	/* Control characters never reach a task message. */
	struct engine_pull_stream c = {0};
	const char *ctl = "{\"error\":\"a\\nb\\u001b[31m\"}\n";
	assert_int_equal(engine_pull_stream_feed(&c, ctl, strlen(ctl)), 0);
	assert_true(c.failed);
	assert_string_equal(c.error, "a b [31m");
	engine_pull_stream_release(&c);

	struct engine_pull_stream bad = {0};
	assert_int_equal(engine_pull_stream_feed(&bad, "not json\n", 9), -EBADMSG);
	engine_pull_stream_release(&bad);

	/* An endless line is refused, not buffered for ever. */
	struct engine_pull_stream big = {0};
	char *junk = malloc(70000);
	memset(junk, 'x', 70000);
	assert_int_equal(engine_pull_stream_feed(&big, junk, 70000), -EMSGSIZE);
	free(junk);
	engine_pull_stream_release(&big);
}

static void test_negotiate(void **state)
{
	(void)state;
	char v[ENGINE_API_VERSION_MAX], err[256];
	/* Podman 4.3, Docker 20.10. */
	assert_int_equal(engine_api_negotiate("1.41", "1.24", v, err, sizeof(err)), 0);
	assert_string_equal(v, "1.41");
	/* A newer engine: capped at what boxd knows. */
	assert_int_equal(engine_api_negotiate("1.47", "1.24", v, err, sizeof(err)), 0);
	assert_string_equal(v, ENGINE_API_VERSION_HIGHEST);
	assert_int_equal(engine_api_negotiate("1.42", "", v, err, sizeof(err)), 0);
	assert_string_equal(v, "1.42");
	assert_int_equal(engine_api_negotiate("1.42", NULL, v, err, sizeof(err)), 0);
	assert_string_equal(v, "1.42");
	/* 1.100 is newer than 1.43, not 1.10. */
	assert_int_equal(engine_api_negotiate("1.100", "1.12", v, err, sizeof(err)), 0);
	assert_string_equal(v, ENGINE_API_VERSION_HIGHEST);
	/* Too old: both versions named. */
	assert_int_equal(engine_api_negotiate("1.40", "1.12", v, err, sizeof(err)), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "1.40"));
	assert_non_null(strstr(err, ENGINE_API_VERSION_MIN));
	/* Docker 29 (oldest 1.44): spoken at 1.44. */
	assert_int_equal(engine_api_negotiate("1.52", "1.44", v, err, sizeof(err)), 0);
	assert_string_equal(v, "1.44");
	/* An engine whose oldest is newer than boxd's newest. */
	assert_int_equal(engine_api_negotiate("1.60", "1.45", v, err, sizeof(err)), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "1.45"));
	assert_non_null(strstr(err, ENGINE_API_VERSION_HIGHEST));
	/* Garbage. */
	assert_int_equal(engine_api_negotiate("", "1.24", v, err, sizeof(err)), -EBADMSG);
	assert_int_equal(engine_api_negotiate("1.4x", "1.24", v, err, sizeof(err)), -EBADMSG);
	assert_int_equal(engine_api_negotiate("v1.41", NULL, v, err, sizeof(err)), -EBADMSG);
	assert_int_equal(engine_api_negotiate(NULL, NULL, v, err, sizeof(err)), -EBADMSG);
	assert_int_equal(engine_api_negotiate("1.41", "x", v, err, sizeof(err)), -EBADMSG);
}

/* ---- live: the test env's Podman and registry ------------------------------ */

struct live {
	struct engine *e;
	const char *image, *user, *password, *registry;
};

static int live_setup(void **state)
{
	static struct live l;
	const char *sock = getenv("BOXD_TEST_ENGINE_SOCKET");
	l.image = getenv("BOXD_TEST_REGISTRY_IMAGE");
	l.user = getenv("BOXD_TEST_REGISTRY_USER");
	l.password = getenv("BOXD_TEST_REGISTRY_PASSWORD");
	l.registry = getenv("BOXD_TEST_REGISTRY");
	*state = &l;
	if (!sock || !l.image || !l.user || !l.password || !l.registry)
		return 0;
	return engine_open(sock, &l.e);
}

static int live_teardown(void **state)
{
	struct live *l = *state;
	if (l->e) {
		engine_image_remove(l->e, l->image, true);
		engine_close(l->e);
	}
	return 0;
}

static void count_cb(const struct engine_pull_progress *p, void *userdata)
{
	(void)p;
	(*(int *)userdata)++;
}

static void test_live_pull(void **state)
{
	struct live *l = *state;
	if (!l->e)
		skip();
	engine_image_remove(l->e, l->image, true);
	assert_int_equal(engine_image_exists(l->e, l->image), 0);

	/* Without credentials, and with a wrong password: the registry's
	 * reason, and still no image. */
	int r = engine_image_pull(l->e, l->image, NULL, NULL, NULL);
	assert_int_equal(r, -EACCES);
	assert_non_null(strstr(engine_errmsg(l->e), "unauthorized"));
	struct engine_registry_auth bad = { .username = l->user, .password = "wrong", .server = l->registry };
	r = engine_image_pull(l->e, l->image, &bad, NULL, NULL);
	assert_int_equal(r, -EACCES);
	assert_non_null(strstr(engine_errmsg(l->e), "unauthorized"));
	assert_int_equal(engine_image_exists(l->e, l->image), 0);

	/* A tag the registry does not have. */
	struct engine_registry_auth good = { .username = l->user, .password = l->password, .server = l->registry };
	char missing[512];
	snprintf(missing, sizeof(missing), "%s/boxd-test/busybox:no-such-tag", l->registry);
	r = engine_image_pull(l->e, missing, &good, NULL, NULL);
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(engine_errmsg(l->e), "manifest unknown"));

	int calls = 0;
	r = engine_image_pull(l->e, l->image, &good, count_cb, &calls);
	if (r < 0)
		fail_msg("pull: %s", engine_errmsg(l->e));
	assert_true(calls >= 1); /* at least the final report */
	assert_int_equal(engine_image_exists(l->e, l->image), 1);
}

static void test_live_version(void **state)
{
	struct live *l = *state;
	if (!l->e)
		skip();
	char v[ENGINE_API_VERSION_MAX];
	assert_int_equal(engine_api_version(l->e, v), 0);
	/* Podman 4.3 says 1.41. */
	assert_string_equal(v, "1.41");
	/* Requests go out with it and work. */
	assert_int_equal(engine_image_exists(l->e, "localhost/boxd-test/no-such-image:1"), 0);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_ref_split),
		cmocka_unit_test(test_registry_host),
		cmocka_unit_test(test_auth_encode),
		cmocka_unit_test(test_stream_every_split),
		cmocka_unit_test(test_stream_error),
		cmocka_unit_test(test_negotiate),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_live_version),
		cmocka_unit_test(test_live_pull),
	};
	int failed = cmocka_run_group_tests_name("engine pull (no engine needed)", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine pull (live)", live, live_setup, live_teardown);
	return failed ? 1 : 0;
}
