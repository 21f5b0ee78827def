/* test-engine.c — the Docker Engine API client.
 *
 * Two parts. The first needs no engine: request building, reply parsing
 * (including a small mutation fuzz run), the log demultiplexer, error
 * mapping, and transport errors against sockets this test makes itself.
 * The second runs against a real engine (Podman's compatible service in
 * `make check`): BOXD_TEST_ENGINE_SOCKET names its socket and
 * BOXD_TEST_APP_IMAGE a busybox image. Without them those tests are skipped.
 *
 * Every container the engine tests create carries the label
 * boxd.test.run=<unique run id>; the group teardown removes all of them, so
 * a failed assertion leaves nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine-internal.h"
#include "engine/engine.h"

#define RUN_LABEL "boxd.test.run"

struct ctx {
	struct engine *e;          /* NULL: no engine configured, skip */
	const char *socket;
	const char *image;
	char run_id[64];
	char run_label[128];       /* RUN_LABEL=run_id */
	char tmpdir[64];
};

static struct ctx *ctx_of(void **state)
{
	struct ctx *c = *state;
	if (!c->e)
		skip();
	return c;
}

static void name_for(const struct ctx *c, const char *what, char *buf, size_t len)
{
	snprintf(buf, len, "boxd-test-%s-%s", c->run_id, what);
}

/* ---- without an engine ---------------------------------------------------- */

static json_t *path(json_t *root, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(root, a);
	if (b)
		v = json_object_get(v, b);
	if (c)
		v = json_object_get(v, c);
	return v;
}

static void test_spec_to_json(void **state)
{
	const char *cmd[] = { "/bin/sh", "-c", "echo \"$X\"; exit 3", NULL };
	const char *env[] = { "X=a b\"c", "EMPTY=", NULL };
	struct engine_kv labels[] = { { "boxd.app", "wp" }, { "quote\"key", "v\n" } };
	struct engine_mount mounts[] = {
		{ .type = ENGINE_MOUNT_BIND, .source = "/srv/apps", .target = "/mnt/appsdata",
		  .propagation = ENGINE_PROPAGATION_RSLAVE },
		{ .type = ENGINE_MOUNT_BIND, .source = "/etc/x", .target = "/x", .read_only = true },
		{ .type = ENGINE_MOUNT_TMPFS, .target = "/tmp" },
	};
	struct engine_port_binding ports[] = {
		{ .container_port = 80, .host_ip = "127.0.0.1", .host_port = 8080 },
		{ .container_port = 80, .host_port = 8081 },
		{ .container_port = 53, .protocol = "udp" },
	};
	struct engine_container_spec spec = {
		.name = "app-wp", .image = "localhost/x:1", .cmd = cmd, .env = env,
		.labels = labels, .n_labels = 2, .mounts = mounts, .n_mounts = 3,
		.restart = ENGINE_RESTART_ON_FAILURE, .restart_max_retries = 4,
		.network_mode = "host", .ports = ports, .n_ports = 3, .memory_bytes = 64 << 20,
	};
	char err[256] = "";
	json_t *j;
	(void)state;

	assert_int_equal(engine_spec_to_json(&spec, &j, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(path(j, "Image", NULL, NULL)), "localhost/x:1");
	assert_int_equal(json_array_size(path(j, "Cmd", NULL, NULL)), 3);
	assert_string_equal(json_string_value(json_array_get(path(j, "Cmd", NULL, NULL), 2)), cmd[2]);
	assert_string_equal(json_string_value(json_array_get(path(j, "Env", NULL, NULL), 0)), "X=a b\"c");
	assert_string_equal(json_string_value(path(j, "Labels", "quote\"key", NULL)), "v\n");
	assert_int_equal(json_integer_value(path(j, "StopTimeout", NULL, NULL)), 10);
	assert_null(path(j, "Tty", NULL, NULL));

	json_t *hc = path(j, "HostConfig", NULL, NULL);
	json_t *m0 = json_array_get(json_object_get(hc, "Mounts"), 0);
	assert_string_equal(json_string_value(json_object_get(m0, "Type")), "bind");
	assert_string_equal(json_string_value(json_object_get(m0, "Source")), "/srv/apps");
	assert_string_equal(json_string_value(json_object_get(m0, "Target")), "/mnt/appsdata");
	assert_true(json_is_false(json_object_get(m0, "ReadOnly")));
	assert_string_equal(json_string_value(path(m0, "BindOptions", "Propagation", NULL)), "rslave");
	json_t *m1 = json_array_get(json_object_get(hc, "Mounts"), 1);
	assert_true(json_is_true(json_object_get(m1, "ReadOnly")));
	/* Not recursive: Docker must be told, it binds recursively by default. */
	assert_true(json_is_true(path(m1, "BindOptions", "NonRecursive", NULL)));
	assert_null(path(m1, "BindOptions", "Propagation", NULL));
	json_t *m2 = json_array_get(json_object_get(hc, "Mounts"), 2);
	assert_string_equal(json_string_value(json_object_get(m2, "Type")), "tmpfs");
	assert_null(json_object_get(m2, "Source"));
	assert_null(json_object_get(hc, "Binds"));

	assert_string_equal(json_string_value(path(hc, "RestartPolicy", "Name", NULL)), "on-failure");
	assert_int_equal(json_integer_value(path(hc, "RestartPolicy", "MaximumRetryCount", NULL)), 4);
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "host");
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 64 << 20);
	json_t *pb = path(hc, "PortBindings", "80/tcp", NULL);
	assert_int_equal(json_array_size(pb), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(pb, 0), "HostIp")), "127.0.0.1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(pb, 0), "HostPort")), "8080");
	assert_string_equal(json_string_value(json_object_get(json_array_get(pb, 1), "HostIp")), "");
	pb = path(hc, "PortBindings", "53/udp", NULL);
	assert_string_equal(json_string_value(json_object_get(json_array_get(pb, 0), "HostPort")), "");
	assert_non_null(path(j, "ExposedPorts", "80/tcp", NULL));
	assert_non_null(path(j, "ExposedPorts", "53/udp", NULL));
	json_decref(j);

	/* The minimal spec: defaults only. */
	struct engine_container_spec min = { .image = "x", .stop_timeout_s = -1 };
	assert_int_equal(engine_spec_to_json(&min, &j, err, sizeof(err)), 0);
	assert_null(json_object_get(j, "StopTimeout"));
	assert_null(json_object_get(j, "Cmd"));
	assert_string_equal(json_string_value(path(j, "HostConfig", "RestartPolicy", "Name")), "no");
	assert_null(path(j, "HostConfig", "Mounts", NULL));
	json_decref(j);
}

/* A recursive bind: Docker gets Mounts (recursive by default), Podman a
 * Binds entry with "rbind" (its compatible API ignores recursion in
 * Mounts); non-recursive binds stay Mounts on both. */
static void test_spec_flavors(void **state)
{
	struct engine_mount mounts[] = {
		{ .type = ENGINE_MOUNT_BIND, .source = "/srv/apps", .target = "/mnt/appsdata",
		  .propagation = ENGINE_PROPAGATION_RSLAVE, .read_only = true, .recursive = true },
		{ .type = ENGINE_MOUNT_BIND, .source = "/srv/x", .target = "/mnt/x", .recursive = true },
		{ .type = ENGINE_MOUNT_BIND, .source = "/srv/flat", .target = "/flat" },
	};
	struct engine_container_spec spec = { .image = "x", .mounts = mounts, .n_mounts = 3 };
	char err[256] = "";
	json_t *j;
	(void)state;

	assert_int_equal(engine_spec_to_json_for(&spec, ENGINE_FLAVOR_DOCKER, &j, err, sizeof(err)), 0);
	json_t *hc = path(j, "HostConfig", NULL, NULL);
	assert_null(json_object_get(hc, "Binds"));
	assert_int_equal(json_array_size(json_object_get(hc, "Mounts")), 3);
	json_t *m0 = json_array_get(json_object_get(hc, "Mounts"), 0);
	assert_string_equal(json_string_value(path(m0, "BindOptions", "Propagation", NULL)), "rslave");
	assert_null(path(m0, "BindOptions", "NonRecursive", NULL));
	assert_true(json_is_true(json_object_get(m0, "ReadOnly")));
	assert_null(json_object_get(json_array_get(json_object_get(hc, "Mounts"), 1), "BindOptions"));
	assert_true(json_is_true(path(json_array_get(json_object_get(hc, "Mounts"), 2), "BindOptions", "NonRecursive",
				      NULL)));
	assert_null(path(m0, "BindOptions", "ReadOnlyNonRecursive", NULL));
	json_decref(j);

	/* Docker at API 1.44: the read-only recursive bind says that
	 * read-only is its top mount's only; the rest as before. */
	assert_int_equal(engine_spec_to_json_for(&spec, ENGINE_FLAVOR_DOCKER_1_44, &j, err, sizeof(err)), 0);
	hc = path(j, "HostConfig", NULL, NULL);
	assert_null(json_object_get(hc, "Binds"));
	m0 = json_array_get(json_object_get(hc, "Mounts"), 0);
	assert_true(json_is_true(path(m0, "BindOptions", "ReadOnlyNonRecursive", NULL)));
	assert_string_equal(json_string_value(path(m0, "BindOptions", "Propagation", NULL)), "rslave");
	assert_true(json_is_true(json_object_get(m0, "ReadOnly")));
	assert_null(json_object_get(json_array_get(json_object_get(hc, "Mounts"), 1), "BindOptions"));
	assert_true(json_is_true(path(json_array_get(json_object_get(hc, "Mounts"), 2), "BindOptions", "NonRecursive",
				      NULL)));
	json_decref(j);

	assert_int_equal(engine_spec_to_json_for(&spec, ENGINE_FLAVOR_PODMAN, &j, err, sizeof(err)), 0);
	hc = path(j, "HostConfig", NULL, NULL);
	json_t *binds = json_object_get(hc, "Binds");
	assert_int_equal(json_array_size(binds), 2);
	assert_string_equal(json_string_value(json_array_get(binds, 0)), "/srv/apps:/mnt/appsdata:ro,rslave,rbind");
	assert_string_equal(json_string_value(json_array_get(binds, 1)), "/srv/x:/mnt/x:rw,rbind");
	assert_int_equal(json_array_size(json_object_get(hc, "Mounts")), 1);
	json_t *m = json_array_get(json_object_get(hc, "Mounts"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "Source")), "/srv/flat");
	assert_null(json_object_get(m, "BindOptions"));
	json_decref(j);

	/* Only recursive binds on Podman: no empty Mounts array. */
	struct engine_container_spec one = { .image = "x", .mounts = mounts, .n_mounts = 1 };
	assert_int_equal(engine_spec_to_json_for(&one, ENGINE_FLAVOR_PODMAN, &j, err, sizeof(err)), 0);
	assert_null(path(j, "HostConfig", "Mounts", NULL));
	json_decref(j);

	/* The Binds syntax cannot carry ':' or ',' in a path. */
	struct engine_mount colon = { .type = ENGINE_MOUNT_BIND, .source = "/srv/a:b", .target = "/a", .recursive = true };
	struct engine_container_spec bad = { .image = "x", .mounts = &colon, .n_mounts = 1 };
	j = NULL;
	assert_int_equal(engine_spec_to_json_for(&bad, ENGINE_FLAVOR_PODMAN, &j, err, sizeof(err)), -EINVAL);
	assert_null(j);
	assert_non_null(strstr(err, "':'"));
	/* ... which Docker's Mounts can. */
	assert_int_equal(engine_spec_to_json_for(&bad, ENGINE_FLAVOR_DOCKER, &j, err, sizeof(err)), 0);
	json_decref(j);
	/* Recursion is for binds only. */
	struct engine_mount rtmpfs = { .type = ENGINE_MOUNT_TMPFS, .target = "/t", .recursive = true };
	struct engine_container_spec bad2 = { .image = "x", .mounts = &rtmpfs, .n_mounts = 1 };
	assert_int_equal(engine_spec_to_json_for(&bad2, ENGINE_FLAVOR_DOCKER, &j, err, sizeof(err)), -EINVAL);
}

/* Which refusals are a container's transient state (retried), and which
 * are final. */
static void test_transient_errors(void **state)
{
	(void)state;
	assert_true(engine_error_transient(-EBUSY, "Conflict"));
	assert_true(engine_error_transient(-EIO, "unable to restart a container in a paused or unknown state: "
						 "container state improper"));
	assert_true(engine_error_transient(-EIO, "timed out waiting for file /run/libpod/exits/abc"));
	assert_true(engine_error_transient(-EIO, "container abc is running or paused, refusing to clean up: x"));
	assert_false(engine_error_transient(-EIO, "OCI runtime error: no such file"));
	assert_false(engine_error_transient(-ENOENT, "no such container"));
	assert_false(engine_error_transient(-EINVAL, "container state improper"));
	assert_false(engine_error_transient(-EIO, NULL));
}

static void expect_bad_spec(const struct engine_container_spec *spec, const char *needle)
{
	char err[256] = "";
	json_t *j = NULL;

	assert_int_equal(engine_spec_to_json(spec, &j, err, sizeof(err)), -EINVAL);
	assert_null(j);
	if (!strstr(err, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

static void test_spec_invalid(void **state)
{
	const char *bad_env[] = { "NOEQUALS", NULL };
	const char *bad_utf8[] = { "X=\xff\xfe", NULL };
	struct engine_mount rel = { .type = ENGINE_MOUNT_BIND, .source = "/a", .target = "rel" };
	struct engine_mount relsrc = { .type = ENGINE_MOUNT_BIND, .source = "a", .target = "/a" };
	struct engine_mount volprop = { .type = ENGINE_MOUNT_VOLUME, .source = "v", .target = "/a",
					.propagation = ENGINE_PROPAGATION_SHARED };
	struct engine_mount badprop = { .type = ENGINE_MOUNT_BIND, .source = "/a", .target = "/a",
					.propagation = (enum engine_propagation)42 };
	struct engine_kv badkey = { "\xc3", "v" };
	struct engine_port_binding port0 = { 0 };
	struct engine_port_binding badproto = { .container_port = 1, .protocol = "icmp" };
	(void)state;

	expect_bad_spec(&(struct engine_container_spec){ 0 }, "image");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .name = "../images" }, "name");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .name = "a b" }, "name");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .env = bad_env }, "KEY=VALUE");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .env = bad_utf8 }, "UTF-8");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .mounts = &rel, .n_mounts = 1 }, "absolute");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .mounts = &relsrc, .n_mounts = 1 },
			"absolute");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .mounts = &volprop, .n_mounts = 1 },
			"propagation");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .mounts = &badprop, .n_mounts = 1 },
			"propagation");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .labels = &badkey, .n_labels = 1 }, "UTF-8");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .ports = &port0, .n_ports = 1 }, "port");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .ports = &badproto, .n_ports = 1 },
			"protocol");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .restart_max_retries = 3 }, "on-failure");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .memory_bytes = -1 }, "memory");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .network_mode = "" }, "network");
	expect_bad_spec(&(struct engine_container_spec){ .image = "x", .n_mounts = 1 }, "array");
}

static void test_names(void **state)
{
	enum engine_propagation p;
	enum engine_restart_policy rp;
	(void)state;

	assert_string_equal(engine_propagation_to_string(ENGINE_PROPAGATION_RSLAVE), "rslave");
	assert_int_equal(engine_propagation_from_string("rshared", &p), 0);
	assert_int_equal(p, ENGINE_PROPAGATION_RSHARED);
	assert_int_equal(engine_propagation_from_string("", &p), 0);
	assert_int_equal(p, ENGINE_PROPAGATION_DEFAULT);
	assert_int_equal(engine_propagation_from_string("weird", &p), -EINVAL);
	assert_string_equal(engine_restart_policy_to_string(ENGINE_RESTART_UNLESS_STOPPED), "unless-stopped");
	assert_int_equal(engine_restart_policy_from_string("always", &rp), 0);
	assert_int_equal(rp, ENGINE_RESTART_ALWAYS);
	assert_int_equal(engine_restart_policy_from_string("sometimes", &rp), -EINVAL);

	assert_true(engine_container_ref_valid("abc123"));
	assert_true(engine_container_ref_valid("boxd-sftp_1.x"));
	assert_false(engine_container_ref_valid(""));
	assert_false(engine_container_ref_valid(NULL));
	assert_false(engine_container_ref_valid(".."));
	assert_false(engine_container_ref_valid("a/b"));
	assert_false(engine_container_ref_valid("a?b"));
	assert_false(engine_container_ref_valid("a%2F"));
	assert_true(engine_image_ref_valid("localhost/boxd-test/busybox:latest"));
	assert_true(engine_image_ref_valid("sha256:0123abcd"));
	assert_true(engine_image_ref_valid("repo@sha256:0123"));
	assert_false(engine_image_ref_valid("../containers/x"));
	assert_false(engine_image_ref_valid("a/./b"));
	assert_false(engine_image_ref_valid("a//b"));
	assert_false(engine_image_ref_valid("/abs"));
	assert_false(engine_image_ref_valid("a b"));
	assert_false(engine_image_ref_valid("a?x=1"));
}

static void test_parse_time(void **state)
{
	int64_t ms = -1;
	(void)state;

	assert_int_equal(engine_parse_time_ms("2026-11-28T00:35:59.385842182Z", &ms), 0);
	assert_int_equal(ms, 1795826159385LL);
	assert_int_equal(engine_parse_time_ms("2026-11-28T01:35:59.3+01:00", &ms), 0);
	assert_int_equal(ms, 1795826159300LL);
	assert_int_equal(engine_parse_time_ms("2026-11-27T23:35:59-01:00", &ms), 0);
	assert_int_equal(ms, 1795826159000LL);
	assert_int_equal(engine_parse_time_ms("0001-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(engine_parse_time_ms("", &ms), -EINVAL);
	assert_int_equal(engine_parse_time_ms("2026-11-28", &ms), -EINVAL);
	assert_int_equal(engine_parse_time_ms("2026-11-28T00:35:59", &ms), -EINVAL);
	assert_int_equal(engine_parse_time_ms("2026-11-28T00:35:59.Z", &ms), -EINVAL);
	assert_int_equal(engine_parse_time_ms("2026-13-28T00:35:59Z", &ms), -EINVAL);
	assert_int_equal(engine_parse_time_ms("2026-11-28T00:35:59Zjunk", &ms), -EINVAL);
	assert_int_equal(engine_parse_time_ms("+026-11-28T00:35:59Z", &ms), -EINVAL);
	assert_int_equal(engine_parse_time_ms("2026-11-28T00:35:59+0100", &ms), -EINVAL);
}

static void test_demux(void **state)
{
	static const unsigned char stream[] = {
		1, 0, 0, 0, 0, 0, 0, 6, 'h', 'e', 'l', 'l', 'o', '\n',
		2, 0, 0, 0, 0, 0, 0, 4, 'e', 'r', 'r', '\n',
		0, 0, 0, 0, 0, 0, 0, 2, 'i', 'n',
		1, 0, 0, 0, 0, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0, 3, 'b', 'y', 'e',
	};
	char *out;
	size_t len;
	(void)state;

	assert_int_equal(engine_demux_logs(stream, sizeof(stream), 0, &out, &len), 0);
	assert_int_equal(len, strlen("hello\nerr\nbye"));
	assert_string_equal(out, "hello\nerr\nbye");
	free(out);
	assert_int_equal(engine_demux_logs(stream, sizeof(stream), ENGINE_LOGS_STDOUT, &out, &len), 0);
	assert_string_equal(out, "hello\nbye");
	free(out);
	assert_int_equal(engine_demux_logs(stream, sizeof(stream), ENGINE_LOGS_STDERR, &out, &len), 0);
	assert_string_equal(out, "err\n");
	free(out);
	/* Cut in the middle of the last payload, and in a header. */
	assert_int_equal(engine_demux_logs(stream, sizeof(stream) - 1, 0, &out, &len), 0);
	assert_string_equal(out, "hello\nerr\nby");
	free(out);
	assert_int_equal(engine_demux_logs(stream, 17, 0, &out, &len), 0);
	assert_string_equal(out, "hello\n");
	free(out);
	assert_int_equal(engine_demux_logs("", 0, 0, &out, &len), 0);
	assert_int_equal(len, 0);
	free(out);
	/* A raw (TTY) stream is not a multiplexed one. */
	assert_int_equal(engine_demux_logs("hello world\n", 12, 0, &out, &len), -EBADMSG);
	static const unsigned char bad[] = { 7, 0, 0, 0, 0, 0, 0, 1, 'x' };
	assert_int_equal(engine_demux_logs(bad, sizeof(bad), 0, &out, &len), -EBADMSG);
}

/* The demultiplexer of a followed log gets the stream in pieces cut
 * anywhere (also inside a frame header): cut in three at every pair of
 * points, it gives what the whole-buffer demultiplexer gives. */
static void test_demux_pieces(void **state)
{
	static const unsigned char stream[] = {
		1, 0, 0, 0, 0, 0, 0, 6, 'h', 'e', 'l', 'l', 'o', '\n',
		2, 0, 0, 0, 0, 0, 0, 4, 'e', 'r', 'r', '\n',
		0, 0, 0, 0, 0, 0, 0, 2, 'i', 'n',
		1, 0, 0, 0, 0, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0, 3, 'b', 'y', 'e',
	};
	static const unsigned streams[] = { 0, ENGINE_LOGS_STDOUT, ENGINE_LOGS_STDERR };
	(void)state;

	for (size_t k = 0; k < 3; k++) {
		char *whole;
		size_t whole_len;
		assert_int_equal(engine_demux_logs(stream, sizeof(stream), streams[k], &whole, &whole_len), 0);
		for (size_t i = 0; i <= sizeof(stream); i++) {
			for (size_t j = i; j <= sizeof(stream); j++) {
				struct engine_log_demux d = { .streams = streams[k] };
				char out[sizeof(stream)];
				size_t o = 0, n;
				const size_t cut[] = { 0, i, j, sizeof(stream) };
				for (size_t p = 0; p < 3; p++) {
					assert_int_equal(engine_log_demux_feed(&d, (const char *)stream + cut[p],
									       cut[p + 1] - cut[p], out + o, &n), 0);
					o += n;
				}
				assert_int_equal(o, whole_len);
				assert_memory_equal(out, whole, o);
			}
		}
		free(whole);
	}
	/* A bad header is an error, after the good bytes before it. */
	static const unsigned char bad[] = { 1, 0, 0, 0, 0, 0, 0, 1, 'x', 7, 0, 0, 0, 0, 0, 0, 1, 'y' };
	struct engine_log_demux d = { 0 };
	char out[sizeof(bad)];
	size_t n;
	assert_int_equal(engine_log_demux_feed(&d, (const char *)bad, sizeof(bad), out, &n), -EBADMSG);
	assert_int_equal(n, 1);
	/* Raw (a TTY): every byte as it is. */
	struct engine_log_demux raw = { .raw = true };
	assert_int_equal(engine_log_demux_feed(&raw, "a\r\nb", 4, out, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "a\r\nb", 4);
}

static void test_errors_mapping(void **state)
{
	char msg[128], cause[64];
	(void)state;

	assert_int_equal(engine_http_error(404, NULL, NULL), -ENOENT);
	assert_int_equal(engine_http_error(400, NULL, "bad"), -EINVAL);
	assert_int_equal(engine_http_error(403, NULL, NULL), -EACCES);
	assert_int_equal(engine_http_error(409, NULL,
					   "Conflict. The container name \"/x\" is already in use by container \"1\""),
			 -EEXIST);
	assert_int_equal(engine_http_error(409, NULL, "You cannot remove a running container"), -EBUSY);
	assert_int_equal(engine_http_error(500, "that name is already in use", "..."), -EEXIST);
	assert_int_equal(engine_http_error(500, "container state improper", "..."), -EBUSY);
	assert_int_equal(engine_http_error(500, "no such container", "..."), -ENOENT);
	assert_int_equal(engine_http_error(500, "something", "..."), -EIO);
	assert_int_equal(engine_http_error(418, NULL, NULL), -EINVAL);

	const char *body = "{\"cause\":\"no such container\",\"message\":\"no container with name \\\"x\\\"\\nfound\","
			   "\"response\":404}";
	engine_error_text(404, body, strlen(body), msg, sizeof(msg), cause, sizeof(cause));
	assert_string_equal(msg, "no container with name \"x\"");
	assert_string_equal(cause, "no such container");
	engine_error_text(502, "Bad Gateway\x01\nmore", 17, msg, sizeof(msg), cause, sizeof(cause));
	assert_string_equal(msg, "Bad Gateway?");
	assert_string_equal(cause, "");
	engine_error_text(500, "{}", 2, msg, sizeof(msg), NULL, 0);
	assert_string_equal(msg, "HTTP 500 from the container engine");
	engine_error_text(500, NULL, 0, msg, sizeof(msg), NULL, 0);
	assert_string_equal(msg, "HTTP 500 from the container engine");
	engine_error_text(500, "{\"message\":\"long message\"}", 26, msg, 5, NULL, 0);
	assert_string_equal(msg, "long");
}

static json_t *load(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	return j;
}

static void test_parse_defensive(void **state)
{
	struct engine_container c;
	struct engine_container_list cl;
	struct engine_image_list il;
	struct engine_version v;
	char id[ENGINE_ID_MAX];
	json_t *j;
	(void)state;

	/* Every field missing or of the wrong type. */
	j = load("{\"Id\":5,\"State\":\"running\",\"Config\":[],\"Mounts\":{},\"Name\":null}");
	assert_int_equal(engine_parse_container_inspect(j, &c), 0);
	assert_string_equal(c.id, "");
	assert_string_equal(c.name, "");
	assert_string_equal(c.status, "");
	assert_false(c.running);
	assert_int_equal(c.n_mounts, 0);
	assert_int_equal(c.n_labels, 0);
	assert_null(engine_container_label(&c, "x"));
	engine_container_release(&c);
	engine_container_release(&c); /* twice is fine */
	json_decref(j);

	j = load("{\"Id\":\"abc\",\"Name\":\"/n\",\"Created\":\"2026-11-28T00:35:59Z\","
		 "\"State\":{\"Running\":true,\"Pid\":99999999999,\"ExitCode\":-1,\"StartedAt\":\"garbage\"},"
		 "\"Config\":{\"Labels\":{\"a\":\"1\",\"b\":2,\"c\":\"3\"},\"Tty\":\"yes\"},"
		 "\"Mounts\":[1,{\"Type\":\"bind\",\"RW\":false,\"Propagation\":\"rslave\"},{}]}");
	assert_int_equal(engine_parse_container_inspect(j, &c), 0);
	json_decref(j); /* the result keeps its own reference */
	assert_string_equal(c.id, "abc");
	assert_string_equal(c.name, "n");
	assert_true(c.running);
	assert_int_equal(c.pid, 0);
	assert_int_equal(c.exit_code, -1);
	assert_int_equal(c.started_ms, 0);
	assert_int_equal(c.created_ms, 1795826159000LL);
	assert_false(c.tty);
	assert_int_equal(c.n_labels, 2);
	assert_string_equal(engine_container_label(&c, "c"), "3");
	assert_null(engine_container_label(&c, "b"));
	assert_int_equal(c.n_mounts, 2);
	assert_true(c.mounts[0].read_only);
	assert_string_equal(c.mounts[0].propagation, "rslave");
	assert_false(c.mounts[1].read_only);
	assert_string_equal(c.mounts[1].source, "");
	engine_container_release(&c);

	j = load("[]");
	assert_int_equal(engine_parse_container_inspect(j, &c), -EBADMSG);
	assert_int_equal(engine_parse_version(j, &v), -EBADMSG);
	assert_int_equal(engine_parse_container_list(j, &cl), 0);
	assert_int_equal(cl.n, 0);
	engine_container_list_release(&cl);
	json_decref(j);

	j = load("[1, null, {\"Id\":\"x\",\"Names\":[\"/a\"],\"State\":\"running\",\"Created\":1795826159,"
		 "\"Labels\":null}, {\"Names\":[7],\"State\":{}}]");
	assert_int_equal(engine_parse_container_list(j, &cl), 0);
	json_decref(j);
	assert_int_equal(cl.n, 2);
	assert_string_equal(cl.v[0].name, "a");
	assert_true(cl.v[0].running);
	assert_int_equal(cl.v[0].created_ms, 1795826159000LL);
	assert_string_equal(cl.v[1].name, "");
	assert_string_equal(cl.v[1].status, "");
	engine_container_list_release(&cl);

	j = load("[{\"Id\":\"sha256:1\",\"RepoTags\":[\"<none>:<none>\",\"a:1\",3],\"Size\":1e3},"
		 "{\"RepoTags\":null,\"Size\":\"big\"}]");
	assert_int_equal(engine_parse_image_list(j, &il), 0);
	json_decref(j);
	assert_int_equal(il.n, 2);
	assert_int_equal(il.v[0].n_repo_tags, 1);
	assert_string_equal(il.v[0].repo_tags[0], "a:1");
	assert_null(il.v[0].repo_tags[1]);
	assert_int_equal(il.v[0].size, 1000);
	assert_int_equal(il.v[1].n_repo_tags, 0);
	assert_null(il.v[1].repo_tags[0]);
	assert_int_equal(il.v[1].size, 0);
	engine_image_list_release(&il);

	j = load("{\"Components\":{},\"ApiVersion\":1.41}");
	assert_int_equal(engine_parse_version(j, &v), 0);
	assert_string_equal(v.api_version, "");
	assert_string_equal(v.product, "");
	engine_version_release(&v);
	json_decref(j);

	const char *bad_ids[] = { "{}", "{\"Id\":\"\"}", "{\"Id\":\"ABC\"}", "{\"Id\":\"../x\"}", "[]",
				  "{\"Id\":\"00000000000000000000000000000000000000000000000000000000000000000\"}" };
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		j = load(bad_ids[i]);
		assert_int_equal(engine_parse_create_reply(j, id), -EBADMSG);
		json_decref(j);
	}
	j = load("{\"Id\":\"0123abc\",\"Warnings\":[]}");
	assert_int_equal(engine_parse_create_reply(j, id), 0);
	assert_string_equal(id, "0123abc");
	json_decref(j);
}

/* A few thousand mutations of real replies through every parser: under
 * ASan this is a cheap stand-in for a libFuzzer run (engine_fuzz_one is
 * the libFuzzer entry). */
static void test_fuzz_smoke(void **state)
{
	static const char *const seeds[] = {
		"{\"Id\":\"c0068c18fb84\",\"Created\":\"2026-11-28T00:35:59.385842182Z\",\"State\":{\"Status\":"
		"\"running\",\"Running\":true,\"Pid\":8905,\"ExitCode\":0,\"StartedAt\":\"2026-11-28T00:35:59.7Z\"},"
		"\"Name\":\"/exp1\",\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/s\",\"Destination\":\"/mnt/x\","
		"\"RW\":true,\"Propagation\":\"rslave\"}],\"Config\":{\"Tty\":false,\"Labels\":{\"a\":\"b\"}}}",
		"[{\"Id\":\"c0\",\"Names\":[\"/exp1\"],\"Image\":\"x\",\"Created\":1795826159,\"State\":\"running\","
		"\"Labels\":{\"boxd.test\":\"x\"},\"Mounts\":[]}]",
		"[{\"Id\":\"sha256:8a\",\"RepoTags\":[\"localhost/x:latest\"],\"Created\":1795826146,\"Size\":2131068}]",
		"{\"Components\":[{\"Name\":\"Podman Engine\"}],\"Version\":\"4.3.1\",\"ApiVersion\":\"1.41\"}",
		"{\"cause\":\"no such container\",\"message\":\"no container\",\"response\":404}",
		"\x01\0\0\0\0\0\0\x06hello\n\x02\0\0\0\0\0\0\x04" "err\n",
		"2026-11-28T01:35:59.3+01:00",
	};
	static const size_t seed_len[] = { 0, 0, 0, 0, 0, 26, 0 };
	unsigned seed = 12345;
	uint8_t buf[1024];
	(void)state;

	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		size_t len = seed_len[s] ? seed_len[s] : strlen(seeds[s]);
		engine_fuzz_one((const uint8_t *)seeds[s], len);
		for (int iter = 0; iter < 600; iter++) {
			size_t n = len;
			memcpy(buf, seeds[s], n);
			int edits = 1 + rand_r(&seed) % 4;
			for (int k = 0; k < edits && n > 0; k++) {
				size_t at = (size_t)rand_r(&seed) % n;
				switch (rand_r(&seed) % 4) {
				case 0: buf[at] = (uint8_t)rand_r(&seed); break;                 /* flip a byte */
				case 1: n = at; break;                                            /* truncate */
				case 2: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;  /* delete */
				case 3: buf[at] = "{}[]\",:0"[rand_r(&seed) % 8]; break;         /* syntax */
				}
			}
			engine_fuzz_one(buf, n);
		}
	}
}

/* ---- transport errors, with sockets made here ------------------------------ */

static void test_missing_socket(void **state)
{
	struct engine *e = NULL;
	char err[256];
	(void)state;

	/* An explicit path is not contacted at open ... */
	assert_int_equal(engine_open("/nonexistent/boxd-test/engine.sock", &e), 0);
	assert_string_equal(engine_socket_path(e), "/nonexistent/boxd-test/engine.sock");
	/* ... the first request says what is wrong. */
	assert_int_equal(engine_ping(e), -ENOENT);
	assert_non_null(strstr(engine_errmsg(e), "container engine not reachable at /nonexistent/boxd-test/engine.sock"));
	struct engine_container c;
	assert_int_equal(engine_container_inspect(e, "x", &c), -ENOENT);
	assert_non_null(strstr(engine_errmsg(e), "not reachable"));
	/* Argument errors come before any I/O. */
	assert_int_equal(engine_container_inspect(e, "../x", &c), -EINVAL);
	assert_non_null(strstr(engine_errmsg(e), "bad container id"));
	engine_close(e);

	/* Autodetection that finds nothing. */
	const char *none[] = { "/nonexistent/a.sock", "/nonexistent/b.sock", NULL };
	struct engine_options opts = { .autodetect_paths = none };
	e = NULL;
	assert_int_equal(engine_open_opts(&opts, &e, err, sizeof(err)), -ENOENT);
	assert_null(e);
	assert_string_equal(err, "no container engine found (tried /nonexistent/a.sock, /nonexistent/b.sock)");

	assert_int_equal(engine_open("", &e), -EINVAL);
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(engine_open(longpath, &e), -EINVAL);
	assert_null(e);
	engine_close(NULL);
}

static int make_socket(const char *path, bool do_listen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static void test_refused_and_timeout(void **state)
{
	char dir[] = "/tmp/boxd-test-engine-XXXXXX", dead[128], mute[128], err[256];
	struct engine *e = NULL;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(dead, sizeof(dead), "%s/dead.sock", dir);
	snprintf(mute, sizeof(mute), "%s/mute.sock", dir);
	int dead_fd = make_socket(dead, false); /* bound, not listening: refused */
	int mute_fd = make_socket(mute, true);  /* listening, never answers */

	assert_int_equal(engine_open(dead, &e), 0);
	assert_int_equal(engine_ping(e), -ECONNREFUSED);
	assert_non_null(strstr(engine_errmsg(e), "not reachable"));
	engine_close(e);

	struct engine_options opts = { .socket_path = mute, .timeout_ms = 300 };
	assert_int_equal(engine_open_opts(&opts, &e, err, sizeof(err)), 0);
	assert_int_equal(engine_ping(e), -ETIMEDOUT);
	assert_non_null(strstr(engine_errmsg(e), "did not answer"));
	engine_close(e);

	/* Autodetect skips a candidate that is not a socket and reports the
	 * first one that does not answer. */
	const char *cands[] = { dir, dead, mute, NULL };
	struct engine_options auto_opts = { .autodetect_paths = cands, .timeout_ms = 300 };
	e = NULL;
	assert_int_equal(engine_open_opts(&auto_opts, &e, err, sizeof(err)), -ECONNREFUSED);
	assert_null(e);
	assert_non_null(strstr(err, dead));

	close(dead_fd);
	close(mute_fd);
	unlink(dead);
	unlink(mute);
	rmdir(dir);
}

/* ---- against the engine ----------------------------------------------------- */

static int engine_group_setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char err[256];

	if (!c)
		return -1;
	*state = c;
	c->socket = getenv("BOXD_TEST_ENGINE_SOCKET");
	c->image = getenv("BOXD_TEST_APP_IMAGE");
	if (!c->socket || !c->socket[0] || !c->image || !c->image[0]) {
		fprintf(stderr, "# BOXD_TEST_ENGINE_SOCKET / BOXD_TEST_APP_IMAGE not set: engine tests skipped\n");
		return 0;
	}
	struct engine_options opts = { .socket_path = c->socket };
	if (engine_open_opts(&opts, &c->e, err, sizeof(err)) < 0) {
		fprintf(stderr, "engine_open: %s\n", err);
		return -1;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(c->run_id, sizeof(c->run_id), "%ld%03ld%d", (long)ts.tv_sec % 100000, ts.tv_nsec / 1000000L,
		 (int)getpid());
	snprintf(c->run_label, sizeof(c->run_label), RUN_LABEL "=%s", c->run_id);
	snprintf(c->tmpdir, sizeof(c->tmpdir), "/tmp/boxd-test-engine-XXXXXX");
	if (!mkdtemp(c->tmpdir)) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

static int engine_group_teardown(void **state)
{
	struct ctx *c = *state;
	struct engine_container_list l;
	char cmd[128];
	int r = 0;

	if (c->e) {
		const char *filter[] = { c->run_label, NULL };
		if (engine_container_list(c->e, filter, true, &l) == 0) {
			for (size_t i = 0; i < l.n; i++) {
				int k = engine_container_remove(c->e, l.v[i].id,
								ENGINE_REMOVE_FORCE | ENGINE_REMOVE_VOLUMES);
				if (k < 0 && k != -ENOENT) {
					fprintf(stderr, "cleanup of %s: %s\n", l.v[i].id, engine_errmsg(c->e));
					r = -1;
				}
			}
			engine_container_list_release(&l);
		} else {
			fprintf(stderr, "cleanup: %s\n", engine_errmsg(c->e));
			r = -1;
		}
		/* Nothing of this run may be left. */
		if (engine_container_list(c->e, filter, true, &l) == 0) {
			if (l.n) {
				fprintf(stderr, "cleanup: %zu containers left\n", l.n);
				r = -1;
			}
			engine_container_list_release(&l);
		}
		engine_close(c->e);
	}
	if (c->tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->tmpdir);
		if (system(cmd) != 0)
			r = -1;
	}
	free(c);
	return r;
}

/* Create a container of this run from the test image. */
static void create_container(struct ctx *c, struct engine_container_spec *spec, const char *what, char id[ENGINE_ID_MAX])
{
	char name[128];
	struct engine_kv *labels = calloc(spec->n_labels + 1, sizeof(*labels));

	assert_non_null(labels);
	if (spec->n_labels)
		memcpy(labels, spec->labels, spec->n_labels * sizeof(*labels));
	labels[spec->n_labels] = (struct engine_kv){ RUN_LABEL, c->run_id };
	name_for(c, what, name, sizeof(name));
	spec->name = spec->name ? spec->name : name;
	spec->image = c->image;
	spec->labels = labels;
	spec->n_labels++;
	int r = engine_container_create(c->e, spec, id);
	spec->n_labels--;
	free(labels);
	if (r < 0)
		fail_msg("create %s: %s", what, engine_errmsg(c->e));
}

/* Poll the log until it contains `needle` (containers start asynchronously). */
static char *wait_for_log(struct ctx *c, const char *id, const struct engine_logs_opts *opts, const char *needle)
{
	char *text = NULL;
	size_t len;

	for (int i = 0; i < 100; i++) {
		int r = engine_container_logs(c->e, id, opts, &text, &len);
		if (r < 0)
			fail_msg("logs: %s", engine_errmsg(c->e));
		assert_int_equal(strlen(text), len);
		if (strstr(text, needle))
			return text;
		free(text);
		usleep(50 * 1000);
	}
	fail_msg("log of %s never showed \"%s\"", id, needle);
	return NULL;
}

static void test_ping_version(void **state)
{
	struct ctx *c = ctx_of(state);
	struct engine_version v;

	assert_int_equal(engine_ping(c->e), 0);
	assert_string_equal(engine_errmsg(c->e), "");
	assert_int_equal(engine_version(c->e, &v), 0);
	assert_string_equal(v.api_version, "1.41");
	assert_string_equal(v.os, "linux");
	assert_true(v.version[0] != '\0');
	assert_true(v.product[0] != '\0'); /* "Podman Engine" or "Engine" */
	printf("# engine: %s %s, API %s\n", v.product, v.version, v.api_version);
	engine_version_release(&v);

	/* Autodetection with the test socket as the second candidate. */
	const char *cands[] = { "/nonexistent/docker.sock", c->socket, NULL };
	struct engine_options opts = { .autodetect_paths = cands };
	struct engine *e2;
	char err[256];
	assert_int_equal(engine_open_opts(&opts, &e2, err, sizeof(err)), 0);
	assert_string_equal(engine_socket_path(e2), c->socket);
	assert_int_equal(engine_ping(e2), 0);
	engine_close(e2);
}

static void test_images(void **state)
{
	struct ctx *c = ctx_of(state);
	struct engine_image_list l;
	struct engine_image img;
	bool found = false;

	assert_int_equal(engine_image_list(c->e, &l), 0);
	for (size_t i = 0; i < l.n; i++)
		for (size_t k = 0; k < l.v[i].n_repo_tags; k++)
			if (strcmp(l.v[i].repo_tags[k], c->image) == 0) {
				found = true;
				assert_true(l.v[i].size > 0);
				assert_true(l.v[i].created_ms > 0);
			}
	engine_image_list_release(&l);
	assert_true(found);

	assert_int_equal(engine_image_inspect(c->e, c->image, &img), 0);
	assert_non_null(strstr(img.id, "sha256:"));
	assert_true(img.n_repo_tags >= 1);
	assert_true(img.created_ms > 0);
	engine_image_release(&img);

	assert_int_equal(engine_image_exists(c->e, c->image), 1);
	assert_int_equal(engine_image_exists(c->e, "localhost/boxd-test/no-such-image:never"), 0);
	assert_string_equal(engine_errmsg(c->e), "");
	assert_int_equal(engine_image_inspect(c->e, "localhost/boxd-test/no-such-image:never", &img), -ENOENT);
	assert_true(engine_errmsg(c->e)[0] != '\0');
	assert_int_equal(engine_image_inspect(c->e, "../../containers/json", &img), -EINVAL);
}

static void test_lifecycle(void **state)
{
	struct ctx *c = ctx_of(state);
	char id[ENGINE_ID_MAX], src[128], name[128], *text;
	struct engine_container ci;
	struct engine_container_list l;

	snprintf(src, sizeof(src), "%s/appsdata", c->tmpdir);
	assert_int_equal(mkdir(src, 0755), 0);
	/* The shell traps SIGTERM so that a stop is quick and clean (as PID 1
	 * it would otherwise ignore it until the SIGKILL). */
	const char *cmd[] = { "/bin/sh", "-c",
			      "trap 'echo bye; exit 0' TERM; echo \"hello $GREETING\"; echo oops >&2; "
			      "sleep 0.3; ls /mnt/appsdata; while true; do sleep 0.1; done",
			      NULL };
	const char *env[] = { "GREETING=from boxd", NULL };
	struct engine_kv labels[] = { { "boxd.app", "lifecycle" }, { "boxd.spec-hash", "abc123" } };
	struct engine_mount mounts[] = { { .type = ENGINE_MOUNT_BIND, .source = src, .target = "/mnt/appsdata",
					   .propagation = ENGINE_PROPAGATION_RSLAVE } };
	struct engine_container_spec spec = {
		.cmd = cmd, .env = env, .labels = labels, .n_labels = 2, .mounts = mounts, .n_mounts = 1,
		.restart = ENGINE_RESTART_UNLESS_STOPPED, .stop_timeout_s = 5,
	};
	char marker[300];
	FILE *f;
	snprintf(marker, sizeof(marker), "%s/marker-file", src);
	assert_non_null(f = fopen(marker, "w"));
	fclose(f);

	create_container(c, &spec, "lifecycle", id);
	assert_int_equal(strlen(id), 64);
	name_for(c, "lifecycle", name, sizeof(name));

	/* Created, not running. */
	assert_int_equal(engine_container_inspect(c->e, id, &ci), 0);
	assert_false(ci.running);
	assert_string_equal(ci.status, "created");
	engine_container_release(&ci);

	assert_int_equal(engine_container_start(c->e, id), 0);
	assert_int_equal(engine_container_start(c->e, name), 1); /* already running: 304 */

	assert_int_equal(engine_container_inspect(c->e, name, &ci), 0);
	assert_string_equal(ci.id, id);
	assert_string_equal(ci.name, name);
	assert_string_equal(ci.image, c->image);
	assert_non_null(strstr(ci.image_id, "sha256:") ? ci.image_id : NULL);
	assert_true(ci.running);
	assert_string_equal(ci.status, "running");
	assert_true(ci.pid > 0);
	assert_false(ci.tty);
	assert_true(ci.created_ms > 0);
	assert_true(ci.started_ms >= ci.created_ms - 1000);
	assert_string_equal(engine_container_label(&ci, "boxd.app"), "lifecycle");
	assert_string_equal(engine_container_label(&ci, "boxd.spec-hash"), "abc123");
	assert_string_equal(engine_container_label(&ci, RUN_LABEL), c->run_id);
	assert_int_equal(ci.n_mounts, 1);
	assert_string_equal(ci.mounts[0].type, "bind");
	assert_string_equal(ci.mounts[0].source, src);
	assert_string_equal(ci.mounts[0].destination, "/mnt/appsdata");
	assert_string_equal(ci.mounts[0].propagation, "rslave");
	assert_false(ci.mounts[0].read_only);
	int64_t started = ci.started_ms;
	engine_container_release(&ci);

	/* The restart policy and stop timeout arrived (private raw reply). */
	assert_int_equal(engine_container_inspect(c->e, id, &ci), 0);
	json_t *raw = ci.priv_;
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(raw, "HostConfig"), "RestartPolicy"), "Name")),
			    "unless-stopped");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(raw, "Config"), "StopTimeout")), 5);
	engine_container_release(&ci);

	/* List by label finds exactly this one. */
	char filter_app[64];
	snprintf(filter_app, sizeof(filter_app), "boxd.app=lifecycle");
	const char *filter[] = { c->run_label, filter_app, NULL };
	assert_int_equal(engine_container_list(c->e, filter, false, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, id);
	assert_string_equal(l.v[0].name, name);
	assert_true(l.v[0].running);
	assert_string_equal(engine_container_label(&l.v[0], "boxd.spec-hash"), "abc123");
	engine_container_list_release(&l);
	const char *nomatch[] = { c->run_label, "boxd.app=nothing-has-this", NULL };
	assert_int_equal(engine_container_list(c->e, nomatch, true, &l), 0);
	assert_int_equal(l.n, 0);
	engine_container_list_release(&l);

	/* Logs: what the container echoed, env included, and the bind mount
	 * shows the host directory. */
	text = wait_for_log(c, id, NULL, "marker-file");
	assert_non_null(strstr(text, "hello from boxd\n"));
	assert_non_null(strstr(text, "oops\n"));
	free(text);
	struct engine_logs_opts only_err = { .flags = ENGINE_LOGS_STDERR };
	text = wait_for_log(c, id, &only_err, "oops");
	assert_null(strstr(text, "hello"));
	free(text);
	/* The sleep before `ls` makes its line the last of both streams:
	 * Podman counts the tail over both before it picks the streams. */
	struct engine_logs_opts tail1 = { .flags = ENGINE_LOGS_STDOUT, .tail = 1 };
	text = wait_for_log(c, id, &tail1, "marker-file");
	assert_string_equal(text, "marker-file\n");
	free(text);

	/* Restart keeps the id and moves the start time. */
	usleep(20 * 1000);
	assert_int_equal(engine_container_restart(c->e, id, 5), 0);
	assert_int_equal(engine_container_inspect(c->e, name, &ci), 0);
	assert_string_equal(ci.id, id);
	assert_true(ci.running);
	assert_true(ci.started_ms > started);
	engine_container_release(&ci);

	/* Stop: the trap runs (exit 0); stopping again is a no-op. */
	assert_int_equal(engine_container_stop(c->e, id, 5), 0);
	assert_int_equal(engine_container_inspect(c->e, id, &ci), 0);
	assert_false(ci.running);
	assert_string_equal(ci.status, "exited");
	assert_int_equal(ci.exit_code, 0);
	assert_int_equal(ci.pid, 0);
	assert_true(ci.finished_ms >= ci.started_ms);
	engine_container_release(&ci);
	assert_int_equal(engine_container_stop(c->e, id, 5), 1);
	text = wait_for_log(c, id, NULL, "bye");
	free(text);

	/* Not running any more: the running-only list does not show it. */
	assert_int_equal(engine_container_list(c->e, filter, false, &l), 0);
	assert_int_equal(l.n, 0);
	engine_container_list_release(&l);
	assert_int_equal(engine_container_list(c->e, filter, true, &l), 0);
	assert_int_equal(l.n, 1);
	assert_false(l.v[0].running);
	engine_container_list_release(&l);

	assert_int_equal(engine_container_remove(c->e, id, 0), 0);
	assert_int_equal(engine_container_inspect(c->e, id, &ci), -ENOENT);
	/* The bind source on the host is untouched. */
	struct stat st;
	assert_int_equal(stat(src, &st), 0);
}

static void test_errors(void **state)
{
	struct ctx *c = ctx_of(state);
	struct engine_container ci;
	char id[ENGINE_ID_MAX], id2[ENGINE_ID_MAX] = "", name[128];

	/* Unknown container: -ENOENT with the engine's message. */
	name_for(c, "no-such-container", name, sizeof(name));
	assert_int_equal(engine_container_inspect(c->e, name, &ci), -ENOENT);
	assert_non_null(strstr(engine_errmsg(c->e), name));
	assert_int_equal(engine_container_start(c->e, name), -ENOENT);
	assert_int_equal(engine_container_stop(c->e, name, 1), -ENOENT);
	assert_int_equal(engine_container_restart(c->e, name, 1), -ENOENT);
	assert_int_equal(engine_container_remove(c->e, name, 0), -ENOENT);
	assert_int_equal(engine_container_remove(c->e, name, ENGINE_REMOVE_FORCE), -ENOENT);
	char *text = NULL;
	size_t len;
	assert_int_equal(engine_container_logs(c->e, name, NULL, &text, &len), -ENOENT);
	assert_null(text);

	/* Duplicate name: -EEXIST, and the first container is untouched. Its
	 * command ignores SIGTERM, for the forced remove below. */
	const char *deaf[] = { "/bin/sh", "-c", "trap '' TERM; while true; do sleep 0.1; done", NULL };
	struct engine_container_spec spec = { .cmd = deaf };
	create_container(c, &spec, "dup", id);
	struct engine_container_spec spec2 = { 0 };
	name_for(c, "dup", name, sizeof(name));
	spec2.name = name;
	spec2.image = c->image;
	struct engine_kv run = { RUN_LABEL, c->run_id };
	spec2.labels = &run;
	spec2.n_labels = 1;
	assert_int_equal(engine_container_create(c->e, &spec2, id2), -EEXIST);
	assert_string_equal(id2, "");
	assert_non_null(strstr(engine_errmsg(c->e), "already in use"));

	/* Removing a running container needs force. */
	assert_int_equal(engine_container_start(c->e, id), 0);
	assert_int_equal(engine_container_remove(c->e, id, 0), -EBUSY);
	assert_true(engine_errmsg(c->e)[0] != '\0');
	assert_int_equal(engine_container_inspect(c->e, id, &ci), 0);
	assert_true(ci.running);
	engine_container_release(&ci);
	/* Force kills it at once, although it ignores SIGTERM and its stop
	 * timeout is 10 s (Podman alone would wait those 10 s). */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(engine_container_remove(c->e, id, ENGINE_REMOVE_FORCE), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 8);
	assert_int_equal(engine_container_inspect(c->e, id, &ci), -ENOENT);

	/* Unknown image: nothing is pulled. */
	struct engine_container_spec noimg = { .image = "localhost/boxd-test/no-such-image:never" };
	name_for(c, "noimg", name, sizeof(name));
	noimg.name = name;
	assert_int_equal(engine_container_create(c->e, &noimg, id2), -ENOENT);
	assert_true(engine_errmsg(c->e)[0] != '\0');

	/* A bad spec never reaches the engine. */
	struct engine_container_spec bad = { .image = c->image, .name = "no/slashes" };
	assert_int_equal(engine_container_create(c->e, &bad, id2), -EINVAL);
	assert_non_null(strstr(engine_errmsg(c->e), "name"));

	/* A failed call's message is gone after a good one. */
	assert_int_equal(engine_ping(c->e), 0);
	assert_string_equal(engine_errmsg(c->e), "");
}

/* A recursive bind shows a filesystem that was mounted below its source
 * before the container was created (Podman: only through "rbind" in
 * Binds); rename moves the name; restarting a stopped container starts it. */
static void test_rbind_rename_restart(void **state)
{
	struct ctx *c = ctx_of(state);
	char id[ENGINE_ID_MAX], src[128], sub[160], name[128], renamed[160], *text;
	struct engine_container ci;

	if (geteuid() != 0)
		skip(); /* mounting the tmpfs needs root */
	snprintf(src, sizeof(src), "%s/rbind", c->tmpdir);
	snprintf(sub, sizeof(sub), "%s/sub", src);
	assert_int_equal(mkdir(src, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(mount("boxd-test", sub, "tmpfs", 0, "size=64k"), 0);
	char marker[200];
	snprintf(marker, sizeof(marker), "%s/on-the-submount", sub);
	FILE *f = fopen(marker, "w");
	assert_non_null(f);
	fclose(f);
	const char *cmd[] = { "/bin/sh", "-c",
			      "trap 'exit 0' TERM; ls /m/sub; echo listed; while true; do sleep 0.1; done", NULL };
	struct engine_mount m = { .type = ENGINE_MOUNT_BIND, .source = src, .target = "/m",
				  .propagation = ENGINE_PROPAGATION_RSLAVE, .recursive = true };
	struct engine_container_spec spec = { .cmd = cmd, .mounts = &m, .n_mounts = 1, .stop_timeout_s = 5 };
	create_container(c, &spec, "rbind", id);
	assert_int_equal(engine_container_start(c->e, id), 0);
	text = wait_for_log(c, id, NULL, "listed");
	bool seen = strstr(text, "on-the-submount") != NULL;
	free(text);
	umount2(sub, MNT_DETACH);
	assert_true(seen);

	name_for(c, "rbind", name, sizeof(name));
	snprintf(renamed, sizeof(renamed), "%s-old", name);
	assert_int_equal(engine_container_rename(c->e, id, renamed), 0);
	assert_int_equal(engine_container_inspect(c->e, renamed, &ci), 0);
	assert_string_equal(ci.id, id);
	engine_container_release(&ci);
	assert_int_equal(engine_container_inspect(c->e, name, &ci), -ENOENT);

	/* A stopped container: restart starts it. */
	assert_int_equal(engine_container_stop(c->e, id, 5), 0);
	assert_int_equal(engine_container_restart(c->e, id, 5), 0);
	assert_int_equal(engine_container_inspect(c->e, id, &ci), 0);
	assert_true(ci.running);
	engine_container_release(&ci);
	assert_int_equal(engine_container_remove(c->e, id, ENGINE_REMOVE_FORCE), 0);
}

static void test_tty_and_settings(void **state)
{
	struct ctx *c = ctx_of(state);
	char id[ENGINE_ID_MAX], *text;
	struct engine_container ci;
	const char *cmd[] = { "/bin/sh", "-c", "echo tty-out; echo tty-err >&2; exec sleep 1000", NULL };
	struct engine_port_binding port = { .container_port = 8080, .host_ip = "127.0.0.1",
					    .host_port = (uint16_t)(20000 + getpid() % 20000) };
	struct engine_container_spec spec = {
		.cmd = cmd, .tty = true, .memory_bytes = 64 << 20, .ports = &port, .n_ports = 1,
		.network_mode = "bridge", .restart = ENGINE_RESTART_ON_FAILURE, .restart_max_retries = 2,
		.working_dir = "/tmp",
	};

	create_container(c, &spec, "tty", id);
	assert_int_equal(engine_container_start(c->e, id), 0);
	text = wait_for_log(c, id, NULL, "tty-err");
	/* A TTY merges the streams and turns \n into \r\n; no frame headers. */
	assert_non_null(strstr(text, "tty-out\r\n"));
	assert_null(memchr(text, '\x01', strlen(text)));
	free(text);

	assert_int_equal(engine_container_inspect(c->e, id, &ci), 0);
	assert_true(ci.tty);
	json_t *hc = json_object_get(ci.priv_, "HostConfig");
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 64 << 20);
	assert_string_equal(json_string_value(json_object_get(json_object_get(hc, "RestartPolicy"), "Name")),
			    "on-failure");
	json_t *pb = json_array_get(json_object_get(json_object_get(hc, "PortBindings"), "8080/tcp"), 0);
	assert_string_equal(json_string_value(json_object_get(pb, "HostIp")), "127.0.0.1");
	char hport[8];
	snprintf(hport, sizeof(hport), "%u", (unsigned)port.host_port);
	assert_string_equal(json_string_value(json_object_get(pb, "HostPort")), hport);
	engine_container_release(&ci);

	assert_int_equal(engine_container_remove(c->e, id, ENGINE_REMOVE_FORCE | ENGINE_REMOVE_VOLUMES), 0);
}

/* Following a log: the lines so far (tail), a line written later (the
 * container waits for a file the test makes in its bind-mounted dir), the
 * end when the container stops; a watched descriptor that becomes
 * readable ends a wait at once; a missing container is -ENOENT. */
static int read_until(struct engine_log_follow *f, char *got, size_t cap, size_t *len, const char *needle)
{
	char buf[256];
	while (!strstr(got, needle)) {
		int n = engine_logs_follow_read(f, buf, sizeof(buf), -1, 30000);
		if (n <= 0 || *len + (size_t)n >= cap)
			return n <= 0 ? n : -EMSGSIZE;
		memcpy(got + *len, buf, (size_t)n);
		*len += (size_t)n;
		got[*len] = '\0';
	}
	return 1;
}

static void test_follow(void **state)
{
	struct ctx *c = ctx_of(state);
	char id[ENGINE_ID_MAX], buf[256], got[1024] = "", dir[] = "/tmp/boxd-test-follow.XXXXXX", go[64];
	size_t len = 0;
	const char *cmd[] = { "/bin/sh", "-c",
			      "echo one; echo two >&2; while [ ! -e /w/go ]; do sleep 0.05; done; echo three; "
			      "exec sleep 1000", NULL };
	assert_non_null(mkdtemp(dir));
	struct engine_mount m = { .type = ENGINE_MOUNT_BIND, .source = dir, .target = "/w" };
	struct engine_container_spec spec = { .cmd = cmd, .mounts = &m, .n_mounts = 1 };
	struct engine_log_follow *f;
	int n, sv[2];

	assert_int_equal(engine_logs_follow_open(c->e, "boxd-test-no-such-container", NULL, &f), -ENOENT);
	create_container(c, &spec, "follow", id);
	assert_int_equal(engine_container_start(c->e, id), 0);
	free(wait_for_log(c, id, NULL, "two"));
	assert_int_equal(engine_logs_follow_open(c->e, id, &(struct engine_logs_opts){ .tail = 1 }, &f), 0);
	/* tail 1: only the last line so far. */
	assert_int_equal(read_until(f, got, sizeof(got), &len, "\n"), 1);
	assert_string_equal(got, "two\n");
	/* Nothing new: a wait ends at its time, or at once when the watched
	 * descriptor is readable. */
	assert_int_equal(engine_logs_follow_read(f, buf, sizeof(buf), -1, 100), -EAGAIN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(engine_logs_follow_read(f, buf, sizeof(buf), sv[0], 20000), -ECANCELED);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	close(sv[0]);
	close(sv[1]);
	/* A line written now arrives. */
	snprintf(go, sizeof(go), "%s/go", dir);
	int fd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(read_until(f, got, sizeof(got), &len, "three\n"), 1);
	assert_string_equal(got, "two\nthree\n");
	/* A stop ends the stream: 0, and 0 again. */
	assert_true(engine_container_stop(c->e, id, 1) >= 0);
	do
		n = engine_logs_follow_read(f, buf, sizeof(buf), -1, 30000);
	while (n > 0);
	assert_int_equal(n, 0);
	assert_int_equal(engine_logs_follow_read(f, buf, sizeof(buf), -1, 100), 0);
	engine_logs_follow_close(f);
	assert_int_equal(engine_container_remove(c->e, id, ENGINE_REMOVE_FORCE | ENGINE_REMOVE_VOLUMES), 0);
	unlink(go);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_spec_to_json),
		cmocka_unit_test(test_spec_invalid),
		cmocka_unit_test(test_spec_flavors),
		cmocka_unit_test(test_transient_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_demux),
		cmocka_unit_test(test_demux_pieces),
		cmocka_unit_test(test_errors_mapping),
		cmocka_unit_test(test_parse_defensive),
		cmocka_unit_test(test_fuzz_smoke),
		cmocka_unit_test(test_missing_socket),
		cmocka_unit_test(test_refused_and_timeout),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_ping_version),
		cmocka_unit_test(test_images),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_tty_and_settings),
		cmocka_unit_test(test_rbind_rename_restart),
		cmocka_unit_test(test_follow),
	};
	int failed = cmocka_run_group_tests_name("engine (no engine needed)", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine (live)", live, engine_group_setup, engine_group_teardown);
	return failed ? 1 : 0;
}
