/* test-services.c — the services module without an engine: the sftp spec
 * (which paths get a mount of their own), the spec hash (stable, and
 * changing exactly when the container would differ), the keys file, the
 * registry, the mountinfo parser, and the spec loaded from a real database.
 * The engine side is covered end to end by tests/e2e/t0300-sftp.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps/app.h"
#include "services/mounts.h"
#include "services/service.h"
#include "services/sftp.h"
#include "tasks/store_open.h"
#include "tasks/task_type.h"

#define KEY1 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 alice@box"
#define KEY2 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK2 bob@box"

static struct boxd_config test_cfg(void)
{
	return (struct boxd_config){
		.state_dir = "/var/lib/boxd",
		.appsdata_root = "/var/lib/boxd/appsdata",
		.volumes_root = "/var/lib/boxd/volumes",
		.sftp_image = "localhost/boxd/sftp:latest",
		.sftp_port = 2222,
		.sftp_memory_bytes = 256LL * 1024 * 1024,
	};
}

/* Build the spec; fail the test if that fails. */
static void build(const struct boxd_config *cfg, const struct sftp_dir *apps, size_t n_apps,
		  const struct sftp_dir *vols, size_t n_vols, const char *keys, struct service_spec *s)
{
	char err[256] = "";
	int r = sftp_spec_build(cfg, apps, n_apps, vols, n_vols, keys, s, err, sizeof(err));
	if (r < 0)
		fail_msg("sftp_spec_build: %d %s", r, err);
}

static void hash_of(const struct boxd_config *cfg, const struct sftp_dir *apps, size_t n_apps,
		    const struct sftp_dir *vols, size_t n_vols, const char *keys, char out[SERVICE_HASH_MAX])
{
	struct service_spec s;
	build(cfg, apps, n_apps, vols, n_vols, keys, &s);
	assert_int_equal(service_spec_hash(&s, out), 0);
	service_spec_release(&s);
}

static const struct service_mount *mount_at(const struct service_spec *s, const char *target)
{
	for (size_t i = 0; i < s->n_mounts; i++)
		if (strcmp(s->mounts[i].target, target) == 0)
			return &s->mounts[i];
	return NULL;
}

static const char *env_of(const struct service_spec *s, const char *key)
{
	for (size_t i = 0; i < s->n_env; i++)
		if (strcmp(s->env[i].key, key) == 0)
			return s->env[i].value;
	return NULL;
}

/* ---- the spec ------------------------------------------------------------ */

static void test_roots_give_two_mounts(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	struct service_spec s;
	build(&cfg, NULL, 0, NULL, 0, KEY1, &s);
	assert_string_equal(s.name, "sftp");
	assert_string_equal(s.image, "localhost/boxd/sftp:latest");
	assert_int_equal(s.n_mounts, 2);
	const struct service_mount *a = mount_at(&s, "/mnt/appsdata"), *v = mount_at(&s, "/mnt/volumes");
	assert_non_null(a);
	assert_non_null(v);
	assert_string_equal(a->source, "/var/lib/boxd/appsdata");
	assert_string_equal(v->source, "/var/lib/boxd/volumes");
	assert_int_equal(a->propagation, ENGINE_PROPAGATION_RSLAVE);
	assert_int_equal(v->propagation, ENGINE_PROPAGATION_RSLAVE);
	/* Read-only roots (their entries are mounts of their own), recursive,
	 * prepared at daemon start rather than per rebuild. */
	assert_true(a->read_only);
	assert_true(v->read_only);
	assert_true(a->recursive);
	assert_true(v->recursive);
	assert_int_equal(a->share, SERVICE_SHARE_NONE);
	assert_string_equal(s.network_mode, "host");
	assert_string_equal(env_of(&s, "SFTP_PORT"), "2222");
	assert_string_equal(env_of(&s, "SFTP_AUTHORIZED_KEYS"), KEY1);
	assert_true(s.memory_bytes == 256LL * 1024 * 1024);
	assert_int_equal(s.restart, ENGINE_RESTART_UNLESS_STOPPED);
	service_spec_release(&s);
	service_spec_release(&s); /* a released spec may be released again */
}

static void test_apps_under_root_add_nothing(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	const struct sftp_dir apps[] = {
		{ "wiki", NULL, NULL, false },                               /* the default dir */
		{ "blog", "/var/lib/boxd/appsdata/blog", NULL, false },      /* explicit, under the root */
		{ "deep", "/var/lib/boxd/appsdata/x/y/deep", NULL, false },
		{ "vol", "/var/lib/boxd/volumes/shared-app", NULL, false },  /* under the other root */
	};
	struct service_spec s;
	build(&cfg, apps, 4, NULL, 0, NULL, &s);
	assert_int_equal(s.n_mounts, 2);
	assert_string_equal(env_of(&s, "SFTP_AUTHORIZED_KEYS"), "");
	service_spec_release(&s);
}

static void test_custom_app_dir_outside_gets_a_mount(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	const struct sftp_dir apps[] = { { "wiki", NULL, NULL, false }, { "nas-app", "/srv/custom/nas-app", NULL, false } };
	struct service_spec s;
	build(&cfg, apps, 2, NULL, 0, NULL, &s);
	assert_int_equal(s.n_mounts, 3);
	const struct service_mount *m = mount_at(&s, "/mnt/custom/apps/nas-app");
	assert_non_null(m);
	assert_string_equal(m->source, "/srv/custom/nas-app");
	assert_int_equal(m->propagation, ENGINE_PROPAGATION_RSLAVE);
	assert_string_equal(m->origin, "app nas-app");
	/* Read-write, recursive, made a shared mount point before the bind. */
	assert_false(m->read_only);
	assert_true(m->recursive);
	assert_int_equal(m->share, SERVICE_SHARE_RW);
	service_spec_release(&s);
}

static void test_volumes(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	/* Inside the volumes root: covered by /mnt/volumes. */
	const struct sftp_dir inside[] = { { "media", "/var/lib/boxd/volumes/media", NULL, false } };
	struct service_spec s;
	build(&cfg, NULL, 0, inside, 1, NULL, &s);
	assert_int_equal(s.n_mounts, 2);
	service_spec_release(&s);
	/* Outside: one mount each. */
	const struct sftp_dir outside[] = { { "media", "/var/lib/boxd/volumes/media", NULL, false },
					    { "nas", "/mnt/nas", NULL, true }, { "usb", "/media/usb1", NULL, false } };
	build(&cfg, NULL, 0, outside, 3, NULL, &s);
	assert_int_equal(s.n_mounts, 4);
	assert_string_equal(mount_at(&s, "/mnt/custom/volumes/nas")->source, "/mnt/nas");
	assert_string_equal(mount_at(&s, "/mnt/custom/volumes/usb")->source, "/media/usb1");
	assert_string_equal(mount_at(&s, "/mnt/custom/volumes/nas")->origin, "volume nas");
	/* A mountpoint volume: its self-bind is read-only until the host
	 * mounts a filesystem on it; the container's bind is not. */
	assert_int_equal(mount_at(&s, "/mnt/custom/volumes/nas")->share, SERVICE_SHARE_RO);
	assert_false(mount_at(&s, "/mnt/custom/volumes/nas")->read_only);
	assert_int_equal(mount_at(&s, "/mnt/custom/volumes/usb")->share, SERVICE_SHARE_RW);
	service_spec_release(&s);
}

static void test_prefix_is_not_under(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	/* "/var/lib/boxd/appsdata2" starts with the root's text but is not
	 * below it. */
	const struct sftp_dir apps[] = { { "x", "/var/lib/boxd/appsdata2/x", NULL, false } };
	struct service_spec s;
	build(&cfg, apps, 1, NULL, 0, NULL, &s);
	assert_int_equal(s.n_mounts, 3);
	assert_non_null(mount_at(&s, "/mnt/custom/apps/x"));
	service_spec_release(&s);
}

static void test_bad_ids_refused(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	const char *bad[] = { "..", ".", "a/b", "", "x\ny" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct sftp_dir apps[] = { { bad[i], "/srv/data/x", NULL, false } };
		struct service_spec s = { 0 };
		char err[256] = "";
		assert_int_equal(sftp_spec_build(&cfg, apps, 1, NULL, 0, NULL, &s, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "cannot name a directory"));
		assert_null(s.name); /* untouched */
	}
}

/* ---- the hash ------------------------------------------------------------- */

static void test_hash_stable(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	const struct sftp_dir apps[] = { { "a", "/srv/a", NULL, false }, { "b", "/srv/b", NULL, false }, { "c", NULL, NULL, false } };
	const struct sftp_dir apps_rev[] = { { "c", NULL, NULL, false }, { "b", "/srv/b", NULL, false }, { "a", "/srv/a", NULL, false } };
	char h1[SERVICE_HASH_MAX], h2[SERVICE_HASH_MAX], h3[SERVICE_HASH_MAX];
	hash_of(&cfg, apps, 3, NULL, 0, KEY1, h1);
	hash_of(&cfg, apps, 3, NULL, 0, KEY1, h2);
	hash_of(&cfg, apps_rev, 3, NULL, 0, KEY1, h3);
	assert_int_equal(strlen(h1), 64);
	assert_int_equal(strspn(h1, "0123456789abcdef"), 64);
	assert_string_equal(h1, h2);
	assert_string_equal(h1, h3); /* the order of the rows does not matter */

	/* The same spec built by hand in another order hashes the same. */
	struct service_spec x, y;
	assert_int_equal(service_spec_init(&x, "svc", "img"), 0);
	assert_int_equal(service_spec_init(&y, "svc", "img"), 0);
	service_spec_add_mount(&x, "/a", "/t/a", ENGINE_PROPAGATION_RSLAVE, false, "one");
	service_spec_add_mount(&x, "/b", "/t/b", ENGINE_PROPAGATION_DEFAULT, true, NULL);
	service_spec_add_env(&x, "A", "1");
	service_spec_add_env(&x, "B", "2");
	service_spec_add_label(&x, "l1", "v");
	service_spec_add_port(&x, 22, NULL, "127.0.0.1", 2222);
	service_spec_add_port(&x, 80, "tcp", NULL, 0);
	service_spec_add_port(&y, 80, "tcp", NULL, 0);
	service_spec_add_port(&y, 22, "tcp", "127.0.0.1", 2222);
	service_spec_add_label(&y, "l1", "v");
	service_spec_add_env(&y, "B", "2");
	service_spec_add_env(&y, "A", "0");
	service_spec_add_env(&y, "A", "1"); /* replaces */
	service_spec_add_mount(&y, "/b", "/t/b", ENGINE_PROPAGATION_DEFAULT, true, "another origin");
	service_spec_add_mount(&y, "/a", "/t/a", ENGINE_PROPAGATION_RSLAVE, false, NULL);
	assert_int_equal(y.n_env, 2);
	assert_int_equal(service_spec_hash(&x, h1), 0);
	assert_int_equal(service_spec_hash(&y, h2), 0);
	assert_string_equal(h1, h2);
	char *cx = service_spec_canonical(&x), *cy = service_spec_canonical(&y);
	assert_string_equal(cx, cy);
	/* Sorted: /t/a before /t/b; keys sorted; origins are not hashed. */
	assert_true(strstr(cx, "\"/t/a\"") < strstr(cx, "\"/t/b\""));
	assert_null(strstr(cx, "origin"));
	free(cx);
	free(cy);
	service_spec_release(&x);
	service_spec_release(&y);
}

static void test_hash_changes_exactly_when_the_spec_does(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	const struct sftp_dir base_apps[] = { { "wiki", NULL, NULL, false } };
	char base[SERVICE_HASH_MAX], h[SERVICE_HASH_MAX];
	hash_of(&cfg, base_apps, 1, NULL, 0, KEY1, base);

	/* No change: another app under the root, a volume inside the volumes
	 * root, a custom dir inside a root. */
	const struct sftp_dir more_apps[] = { { "wiki", NULL, NULL, false }, { "blog", NULL, NULL, false }, { "x", "/var/lib/boxd/appsdata/x", NULL, false } };
	hash_of(&cfg, more_apps, 3, NULL, 0, KEY1, h);
	assert_string_equal(h, base);
	const struct sftp_dir vol_in[] = { { "media", "/var/lib/boxd/volumes/media", NULL, false } };
	hash_of(&cfg, base_apps, 1, vol_in, 1, KEY1, h);
	assert_string_equal(h, base);
	hash_of(&cfg, NULL, 0, NULL, 0, KEY1, h); /* no app at all */
	assert_string_equal(h, base);

	/* Changes: a custom dir outside, a volume outside, the keys, the
	 * port, the image, the memory limit, a root. */
	const struct sftp_dir custom[] = { { "wiki", "/srv/wiki", NULL, false } };
	hash_of(&cfg, custom, 1, NULL, 0, KEY1, h);
	assert_string_not_equal(h, base);
	char custom_hash[SERVICE_HASH_MAX];
	memcpy(custom_hash, h, sizeof(h));
	const struct sftp_dir custom2[] = { { "wiki", "/srv/wiki2", NULL, false } }; /* moved elsewhere outside */
	hash_of(&cfg, custom2, 1, NULL, 0, KEY1, h);
	assert_string_not_equal(h, base);
	assert_string_not_equal(h, custom_hash);
	const struct sftp_dir vol_out[] = { { "nas", "/mnt/nas", NULL, false } };
	hash_of(&cfg, base_apps, 1, vol_out, 1, KEY1, h);
	assert_string_not_equal(h, base);
	/* The same path, another directory (uninstall + reinstall: a new
	 * row): another spec, so the container that binds the deleted
	 * directory is rebuilt. */
	const struct sftp_dir custom_v1[] = { { "wiki", "/srv/wiki", "app created 1", false } };
	const struct sftp_dir custom_v2[] = { { "wiki", "/srv/wiki", "app created 2", false } };
	char v1[SERVICE_HASH_MAX];
	hash_of(&cfg, custom_v1, 1, NULL, 0, KEY1, v1);
	hash_of(&cfg, custom_v2, 1, NULL, 0, KEY1, h);
	assert_string_not_equal(h, v1);
	assert_string_not_equal(h, custom_hash);
	/* An identity of an app under a root changes nothing (the root's
	 * mount shows whatever dir is there). */
	const struct sftp_dir under_v2[] = { { "wiki", NULL, "app created 2", false } };
	hash_of(&cfg, under_v2, 1, NULL, 0, KEY1, h);
	assert_string_equal(h, base);
	hash_of(&cfg, base_apps, 1, NULL, 0, KEY1 "\n" KEY2, h);
	assert_string_not_equal(h, base);
	hash_of(&cfg, base_apps, 1, NULL, 0, NULL, h);
	assert_string_not_equal(h, base);

	struct boxd_config c2 = cfg;
	c2.sftp_port = 2223;
	hash_of(&c2, base_apps, 1, NULL, 0, KEY1, h);
	assert_string_not_equal(h, base);
	c2 = cfg;
	c2.sftp_image = "localhost/boxd/sftp:v2";
	hash_of(&c2, base_apps, 1, NULL, 0, KEY1, h);
	assert_string_not_equal(h, base);
	c2 = cfg;
	c2.sftp_memory_bytes = 0;
	hash_of(&c2, base_apps, 1, NULL, 0, KEY1, h);
	assert_string_not_equal(h, base);
	c2 = cfg;
	c2.volumes_root = "/srv/volumes";
	hash_of(&c2, base_apps, 1, NULL, 0, KEY1, h);
	assert_string_not_equal(h, base);

	/* Every field of a mount counts. */
	struct service_spec s;
	build(&cfg, base_apps, 1, NULL, 0, KEY1, &s);
	s.mounts[0].propagation = ENGINE_PROPAGATION_RPRIVATE;
	assert_int_equal(service_spec_hash(&s, h), 0);
	assert_string_not_equal(h, base);
	s.mounts[0].propagation = ENGINE_PROPAGATION_RSLAVE;
	s.mounts[0].read_only = false;
	assert_int_equal(service_spec_hash(&s, h), 0);
	assert_string_not_equal(h, base);
	s.mounts[0].read_only = true;
	s.mounts[0].recursive = false;
	assert_int_equal(service_spec_hash(&s, h), 0);
	assert_string_not_equal(h, base);
	s.mounts[0].recursive = true;
	s.mounts[0].share = SERVICE_SHARE_RW;
	assert_int_equal(service_spec_hash(&s, h), 0);
	assert_string_not_equal(h, base);
	s.mounts[0].share = SERVICE_SHARE_NONE;
	assert_int_equal(service_spec_hash(&s, h), 0);
	assert_string_equal(h, base);
	service_spec_add_label(&s, "x", "y");
	assert_int_equal(service_spec_hash(&s, h), 0);
	assert_string_not_equal(h, base);
	service_spec_release(&s);
}

static void test_spec_json_hides_env(void **state)
{
	(void)state;
	struct boxd_config cfg = test_cfg();
	const struct sftp_dir apps[] = { { "nas-app", "/srv/custom/nas-app", NULL, false } };
	struct service_spec s;
	build(&cfg, apps, 1, NULL, 0, KEY1, &s);
	json_t *j = service_spec_to_json(&s);
	assert_non_null(j);
	assert_null(json_object_get(j, "env"));
	assert_string_equal(json_string_value(json_object_get(j, "image")), "localhost/boxd/sftp:latest");
	assert_string_equal(json_string_value(json_object_get(j, "networkMode")), "host");
	json_t *mounts = json_object_get(j, "mounts");
	assert_int_equal(json_array_size(mounts), 3);
	/* Sorted by target: /mnt/appsdata, /mnt/custom/apps/nas-app, /mnt/volumes. */
	json_t *m = json_array_get(mounts, 1);
	assert_string_equal(json_string_value(json_object_get(m, "target")), "/mnt/custom/apps/nas-app");
	assert_string_equal(json_string_value(json_object_get(m, "propagation")), "rslave");
	assert_string_equal(json_string_value(json_object_get(m, "origin")), "app nas-app");
	char *text = json_dumps(j, 0);
	assert_null(strstr(text, "AAAAC3"));
	free(text);
	json_decref(j);
	service_spec_release(&s);
}

static void test_keys_normalize(void **state)
{
	(void)state;
	char *k = sftp_keys_normalize("# my keys\n\n  " KEY1 "  \r\n\t# bob:\n" KEY2 "\n\n");
	assert_string_equal(k, KEY1 "\n" KEY2);
	free(k);
	k = sftp_keys_normalize("");
	assert_string_equal(k, "");
	free(k);
	k = sftp_keys_normalize(KEY1);
	assert_string_equal(k, KEY1);
	free(k);
}

static void test_registry(void **state)
{
	(void)state;
	const struct service_def *d = service_find("sftp");
	assert_non_null(d);
	assert_ptr_equal(d, &sftp_service);
	assert_null(service_find("nope"));
	assert_null(service_find(NULL));
	size_t n;
	const struct service_def *const *all = service_list(&n);
	assert_true(n >= 1);
	assert_ptr_equal(all[0], d);
	char name[SERVICE_CONTAINER_NAME_MAX];
	service_container_name(NULL, "sftp", name, sizeof(name));
	assert_string_equal(name, "boxd-sftp");
	/* An engine shared by several hosts: each host its own container. */
	struct boxd_config shared = { .engine_shared = true }, alone = { 0 };
	assert_int_equal(setenv("BOXD_HOST_ID", "host-t", 1), 0);
	service_container_name(&shared, "sftp", name, sizeof(name));
	assert_string_equal(name, "boxd-sftp-host-t");
	service_container_name(&alone, "proxy", name, sizeof(name));
	assert_string_equal(name, "boxd-proxy");
	unsetenv("BOXD_HOST_ID");

	/* The task types and their validation. */
	services_register_task_types();
	const struct task_type *rb = task_type_find("service.rebuild"), *rs = task_type_find("service.restart");
	assert_non_null(rb);
	assert_non_null(rs);
	assert_false(rb->generic);
	char err[256];
	json_t *ok = json_pack("{s:s, s:b}", "name", "sftp", "force", 1);
	json_t *unknown = json_pack("{s:s}", "name", "ftp");
	json_t *bad_force = json_pack("{s:s, s:s}", "name", "sftp", "force", "yes");
	json_t *extra = json_pack("{s:s, s:i}", "name", "sftp", "x", 1);
	assert_int_equal(rb->validate(ok, err, sizeof(err)), 0);
	assert_int_equal(rb->validate(unknown, err, sizeof(err)), -EINVAL);
	assert_int_equal(rb->validate(bad_force, err, sizeof(err)), -EINVAL);
	assert_int_equal(rb->validate(extra, err, sizeof(err)), -EINVAL);
	assert_int_equal(rs->validate(ok, err, sizeof(err)), -EINVAL); /* restart takes no force */
	struct lock_req *reqs = NULL;
	size_t n_reqs = 0;
	struct task t = { .type = "service.rebuild" };
	/* Each host's own container: the lock names the host (issue 16). */
	assert_int_equal(setenv("BOXD_HOST_ID", "host-t", 1), 0);
	assert_int_equal(task_type_locks(rb, &t, ok, &reqs, &n_reqs), 0);
	unsetenv("BOXD_HOST_ID");
	assert_int_equal(n_reqs, 1);
	assert_string_equal(reqs[0].name, "service:sftp:host-t");
	assert_int_equal(reqs[0].mode, LOCK_EXCLUSIVE);
	free(reqs);
	json_decref(ok);
	json_decref(unknown);
	json_decref(bad_force);
	json_decref(extra);
}

/* ---- mountinfo -------------------------------------------------------------- */

static const char mountinfo[] =
	"22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	"42 22 254:0 /srv/box/appsdata /srv/box/appsdata rw,relatime shared:2 - ext4 /dev/vda rw\n"
	"48 22 254:0 /srv/box/volumes /srv/box/volumes rw,relatime - ext4 /dev/vda rw\n"
	"50 48 0:51 / /srv/box/volumes rw,relatime master:7 - tmpfs t rw\n"
	"51 22 0:52 / /srv/with\\040space rw shared:9 master:3 - tmpfs t rw\n"
	"\n";

static void test_mountinfo_lookup(void **state)
{
	(void)state;
	struct mountinfo_entry e;
	assert_int_equal(mountinfo_lookup(mountinfo, "/srv/box/appsdata", &e), 0);
	assert_true(e.found);
	assert_true(e.shared);
	assert_false(e.slave);
	assert_int_equal(e.mount_id, 42);
	/* Stacked: the last (topmost) one counts. */
	assert_int_equal(mountinfo_lookup(mountinfo, "/srv/box/volumes", &e), 0);
	assert_true(e.found);
	assert_false(e.shared);
	assert_true(e.slave);
	assert_int_equal(e.mount_id, 50);
	assert_int_equal(mountinfo_lookup(mountinfo, "/srv/with space", &e), 0);
	assert_true(e.found);
	assert_true(e.shared);
	assert_true(e.slave);
	assert_int_equal(mountinfo_lookup(mountinfo, "/srv/box", &e), 0);
	assert_false(e.found);
	assert_int_equal(mountinfo_lookup(mountinfo, "/", &e), 0);
	assert_true(e.found);
	assert_false(e.shared);
	assert_int_equal(mountinfo_lookup("22 1 254:0 / /\n", "/", &e), -EBADMSG);
	assert_int_equal(mountinfo_lookup("22 1 254:0 / /x rw shared:1\n", "/x", &e), -EBADMSG); /* no "-" */
	assert_int_equal(mountinfo_lookup("", "/", &e), 0);
	assert_false(e.found);
	/* This process's real mountinfo parses. */
	FILE *f = fopen("/proc/self/mountinfo", "re");
	assert_non_null(f);
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(n > 0);
	assert_int_equal(mountinfo_lookup(buf, "/", &e), 0);
	assert_true(e.found);
	free(buf);
}

/* Which mounts are boxd's binds of a directory onto itself (undone before a
 * data dir is moved or deleted) and which are someone's filesystem. */
/* mountinfo_parse(): every line, with peer group numbers and decoded paths
 * (mount_release.c's view), and the same refusals as mountinfo_lookup(). */
static void test_mountinfo_parse(void **state)
{
	(void)state;
	struct mountinfo_mount *m = NULL;
	size_t n = 0;
	assert_int_equal(mountinfo_parse(mountinfo, &m, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(m[0].id, 22);
	assert_int_equal(m[0].parent, 1);
	assert_int_equal(m[0].major, 254);
	assert_int_equal(m[0].minor, 0);
	assert_string_equal(m[0].root, "/");
	assert_int_equal(m[0].shared, 0);
	assert_int_equal(m[0].master, 0);
	assert_string_equal(m[1].mount_point, "/srv/box/appsdata");
	assert_int_equal(m[1].shared, 2);
	assert_int_equal(m[3].major, 0);
	assert_int_equal(m[3].minor, 51);
	assert_int_equal(m[3].master, 7);
	assert_int_equal(m[3].parent, 48);
	assert_string_equal(m[4].mount_point, "/srv/with space");
	assert_int_equal(m[4].shared, 9);
	assert_int_equal(m[4].master, 3);
	mountinfo_free(m, n);
	assert_int_equal(mountinfo_parse("", &m, &n), 0);
	assert_int_equal(n, 0);
	mountinfo_free(m, n);
	assert_int_equal(mountinfo_parse("22 1 254:0 / /\n", &m, &n), -EBADMSG);
	assert_int_equal(mountinfo_parse("22 1 254:0 / /x rw shared:1\n", &m, &n), -EBADMSG);
	assert_int_equal(mountinfo_parse("22 1 254 / /x rw - ext4 /dev/vda rw\n", &m, &n), -EBADMSG);
	/* A bad line after good ones: nothing is returned (and nothing leaks). */
	assert_int_equal(mountinfo_parse("22 1 254:0 / / rw - ext4 /dev/vda rw\n23 22\n", &m, &n), -EBADMSG);
}

static void test_mountinfo_self_bind(void **state)
{
	(void)state;
	static const char text[] =
		"22 1 254:0 / / rw - ext4 /dev/vda rw\n"
		/* a self-bind of a dir of the root fs */
		"60 22 254:0 /srv/app /srv/app rw shared:5 - ext4 /dev/vda rw\n"
		/* another self-bind stacked on it */
		"61 60 254:0 /srv/app /srv/app rw shared:6 - ext4 /dev/vda rw\n"
		/* a tmpfs mounted on a dir */
		"70 22 0:40 / /srv/nas rw shared:7 - tmpfs t rw\n"
		/* a self-bind of a dir inside that tmpfs */
		"71 70 0:40 /app /srv/nas/app rw shared:8 - tmpfs t rw\n"
		/* a bind of ANOTHER dir of the root fs onto /srv/other */
		"80 22 254:0 /elsewhere /srv/other rw - ext4 /dev/vda rw\n"
		/* a filesystem whose mount point has a space */
		"81 22 254:0 /srv/with\\040space /srv/with\\040space rw - ext4 /dev/vda rw\n";
	struct mountinfo_entry top, parent;
	assert_int_equal(mountinfo_lookup(text, "/srv/app", &top), 0);
	assert_int_equal(top.mount_id, 61);
	assert_int_equal(top.parent_id, 60);
	assert_int_equal(top.dev_major, 254);
	assert_string_equal(top.root, "/srv/app");
	assert_int_equal(mountinfo_by_id(text, top.parent_id, &parent), 0);
	assert_int_equal(parent.mount_id, 60);
	assert_true(mountinfo_is_self_bind(&top, &parent, "/srv/app"));
	assert_int_equal(mountinfo_by_id(text, 60, &top), 0);
	assert_int_equal(mountinfo_by_id(text, 22, &parent), 0);
	assert_true(mountinfo_is_self_bind(&top, &parent, "/srv/app"));
	/* The tmpfs is a filesystem of its own: not a self-bind. */
	assert_int_equal(mountinfo_lookup(text, "/srv/nas", &top), 0);
	assert_int_equal(mountinfo_by_id(text, top.parent_id, &parent), 0);
	assert_false(mountinfo_is_self_bind(&top, &parent, "/srv/nas"));
	/* A self-bind inside it: relative to the tmpfs's mount point. */
	assert_int_equal(mountinfo_lookup(text, "/srv/nas/app", &top), 0);
	assert_int_equal(mountinfo_by_id(text, top.parent_id, &parent), 0);
	assert_true(mountinfo_is_self_bind(&top, &parent, "/srv/nas/app"));
	/* A bind of another directory hides what is there: not ours. */
	assert_int_equal(mountinfo_lookup(text, "/srv/other", &top), 0);
	assert_int_equal(mountinfo_by_id(text, top.parent_id, &parent), 0);
	assert_false(mountinfo_is_self_bind(&top, &parent, "/srv/other"));
	assert_int_equal(mountinfo_lookup(text, "/srv/with space", &top), 0);
	assert_string_equal(top.root, "/srv/with space");
	assert_true(mountinfo_is_self_bind(&top, &parent, "/srv/with space"));
	/* Nothing there. */
	assert_int_equal(mountinfo_lookup(text, "/srv", &top), 0);
	assert_false(top.found);
	assert_false(mountinfo_is_self_bind(&top, &parent, "/srv"));
	assert_int_equal(mountinfo_by_id(text, 999, &top), 0);
	assert_false(top.found);
	assert_int_equal(mountinfo_lookup("22 1 x:y / / rw - ext4 /dev/vda rw\n", "/", &top), -EBADMSG);
}

static void test_parse_size(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(parse_size_bytes("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(parse_size_bytes("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_size_bytes("512k", &v), 0);
	assert_true(v == 512 * 1024);
	assert_int_equal(parse_size_bytes("256M", &v), 0);
	assert_true(v == 256LL * 1024 * 1024);
	assert_int_equal(parse_size_bytes("1GiB", &v), 0);
	assert_true(v == 1024LL * 1024 * 1024);
	assert_int_equal(parse_size_bytes("-1", &v), -EINVAL);
	assert_int_equal(parse_size_bytes("", &v), -EINVAL);
	assert_int_equal(parse_size_bytes("12X", &v), -EINVAL);
	assert_int_equal(parse_size_bytes("99999999999999T", &v), -EINVAL);
}

/* ---- the spec from a real database and keys file ------------------------ */

static void test_spec_load_from_store(void **state)
{
	(void)state;
	char dir[] = "/tmp/boxd-test-services-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct boxd_config cfg;
	char err[512] = "";
	assert_int_equal(config_load(&cfg, NULL, dir, err, sizeof(err)), 0);
	struct store *s = NULL;
	if (store_open_config(&cfg, 0, &s, err, sizeof(err)) < 0)
		fail_msg("store: %s", err);

	/* No keys file yet: no keys, not an error. */
	struct service_spec spec;
	assert_int_equal(sftp_spec_load(&cfg, s, &spec, err, sizeof(err)), 0);
	assert_int_equal(spec.n_mounts, 2);
	assert_string_equal(env_of(&spec, "SFTP_AUTHORIZED_KEYS"), "");
	char h0[SERVICE_HASH_MAX], h[SERVICE_HASH_MAX];
	assert_int_equal(service_spec_hash(&spec, h0), 0);
	service_spec_release(&spec);

	/* Apps under the root: same spec. */
	assert_int_equal(app_insert(s, "wiki", "img", "{}", NULL, NULL), 0);
	char under[600];
	snprintf(under, sizeof(under), "%s/blog", cfg.appsdata_root);
	assert_int_equal(app_insert(s, "blog", "img", "{}", under, NULL), 0);
	char vin[600];
	snprintf(vin, sizeof(vin), "%s/media", cfg.volumes_root);
	assert_int_equal(volume_insert(s, "media", "Media", vin, "dir", NULL, NULL), 0);
	assert_int_equal(sftp_spec_load(&cfg, s, &spec, err, sizeof(err)), 0);
	assert_int_equal(spec.n_mounts, 2);
	assert_int_equal(service_spec_hash(&spec, h), 0);
	assert_string_equal(h, h0);
	service_spec_release(&spec);

	/* A custom dir and a volume outside: two more mounts, once the app's
	 * install is past creating its dir (before that it has none to show). */
	assert_int_equal(app_insert(s, "nas-app", "img", "{}", "/srv/nas-app", NULL), 0);
	assert_int_equal(volume_insert(s, "usb", "USB", "/media/usb", "mountpoint", NULL, NULL), 0);
	assert_int_equal(sftp_spec_load(&cfg, s, &spec, err, sizeof(err)), 0);
	assert_int_equal(spec.n_mounts, 3);
	assert_null(mount_at(&spec, "/mnt/custom/apps/nas-app"));
	service_spec_release(&spec);
	assert_int_equal(app_set(s, "nas-app", "install_state", "installed"), 0);
	assert_int_equal(sftp_spec_load(&cfg, s, &spec, err, sizeof(err)), 0);
	assert_int_equal(spec.n_mounts, 4);
	assert_non_null(mount_at(&spec, "/mnt/custom/apps/nas-app"));
	assert_non_null(mount_at(&spec, "/mnt/custom/volumes/usb"));
	service_spec_release(&spec);

	/* The keys file: comments do not count. */
	FILE *f = fopen(cfg.sftp_authorized_keys_file, "we");
	assert_non_null(f);
	fputs("# the operator\n" KEY1 "\n", f);
	fclose(f);
	assert_int_equal(sftp_spec_load(&cfg, s, &spec, err, sizeof(err)), 0);
	assert_string_equal(env_of(&spec, "SFTP_AUTHORIZED_KEYS"), KEY1);
	assert_int_equal(service_spec_hash(&spec, h0), 0);
	service_spec_release(&spec);
	f = fopen(cfg.sftp_authorized_keys_file, "we");
	fputs(KEY1 "\n# a new comment\n\n", f);
	fclose(f);
	assert_int_equal(sftp_spec_load(&cfg, s, &spec, err, sizeof(err)), 0);
	assert_int_equal(service_spec_hash(&spec, h), 0);
	assert_string_equal(h, h0);
	service_spec_release(&spec);

	/* The status without an engine still says what the spec is. */
	json_t *st = service_status(NULL, "engine down for the test", &sftp_service, &cfg, s);
	assert_non_null(st);
	assert_false(json_is_true(json_object_get(st, "running")));
	assert_string_equal(json_string_value(json_object_get(st, "error")), "engine down for the test");
	assert_string_equal(json_string_value(json_object_get(st, "currentSpecHash")), h0);
	assert_string_equal(json_string_value(json_object_get(st, "containerName")), "boxd-sftp");
	json_decref(st);

	store_close(s);
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roots_give_two_mounts),
		cmocka_unit_test(test_apps_under_root_add_nothing),
		cmocka_unit_test(test_custom_app_dir_outside_gets_a_mount),
		cmocka_unit_test(test_volumes),
		cmocka_unit_test(test_prefix_is_not_under),
		cmocka_unit_test(test_bad_ids_refused),
		cmocka_unit_test(test_hash_stable),
		cmocka_unit_test(test_hash_changes_exactly_when_the_spec_does),
		cmocka_unit_test(test_spec_json_hides_env),
		cmocka_unit_test(test_keys_normalize),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_mountinfo_lookup),
		cmocka_unit_test(test_mountinfo_parse),
		cmocka_unit_test(test_mountinfo_self_bind),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_spec_load_from_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
