/* test-box-restore-status.c — the record of a box restore run by the
 * daemon (backups/box_restore_status.h), on real files in a temp state dir:
 *   - no record: -ENOENT;
 *   - the view hides the token, and reads the child's log: its lines, the
 *     last one as the step, the "changed:" lines, a percent that grows
 *     from the fetch to the apps, 100 once succeeded; a line still being
 *     written (no newline yet) is not shown;
 *   - the token: only the running restore's, only whole;
 *   - the child's result file, and the error codes of the CLI's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backups/box_restore.h"
#include "backups/box_restore_status.h"

struct fx {
	char dir[64];
	struct boxd_config cfg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-brs.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg.state_dir = f->dir;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void write_log(struct fx *f, const char *text)
{
	char path[256];
	assert_true(box_restore_status_path(&f->cfg, "log", path, sizeof(path)));
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void save(struct fx *f, const char *state, const char *token)
{
	json_t *st = json_pack("{s:s, s:s, s:s}", "state", state, "from", "sftp://u@h/p", "token", token);
	char err[256];
	assert_int_equal(box_restore_status_save(&f->cfg, st, err, sizeof(err)), 0);
	json_decref(st);
}

static void no_record(void **state)
{
	struct fx *f = *state;
	json_t *v = NULL;
	assert_int_equal(box_restore_status_view(&f->cfg, &v), -ENOENT);
	assert_null(v);
	assert_false(box_restore_token_ok(&f->cfg, "0123456789abcdef0123456789abcdef"));
}

static int percent_of(struct fx *f)
{
	json_t *v;
	assert_int_equal(box_restore_status_view(&f->cfg, &v), 0);
	int p = (int)json_integer_value(json_object_get(v, "percent"));
	json_decref(v);
	return p;
}

static void view_reads_the_log(void **state)
{
	struct fx *f = *state;
	save(f, "running", "0123456789abcdef0123456789abcdef");
	write_log(f, "Full backup 7 (full-1.json, made 2026-12-05T21:00:00Z): 3 archives\n"
		     "Fetching and verifying box-1.tar.zst.enc (0.1 MB)\n");
	int p0 = percent_of(f);
	write_log(f, "Full backup 7 (full-1.json, made 2026-12-05T21:00:00Z): 3 archives\n"
		     "Fetching and verifying box-1.tar.zst.enc (0.1 MB)\n"
		     "Fetching and verifying app-a.tar.zst.enc (2.0 MB)\n"
		     "Fetching and verifying app-b.tar.zst.enc (2.0 MB)\n"
		     "changed: app a data dir /old/a -> /new/a\n"
		     "changed: volume v /old/v -> /new/v\n"
		     "Restoring the store: /x/boxd.db\n");
	int p1 = percent_of(f);
	write_log(f, "Full backup 7 (full-1.json, made 2026-12-05T21:00:00Z): 3 archives\n"
		     "Fetching and verifying box-1.tar.zst.enc (0.1 MB)\n"
		     "Fetching and verifying app-a.tar.zst.enc (2.0 MB)\n"
		     "Fetching and verifying app-b.tar.zst.enc (2.0 MB)\n"
		     "changed: app a data dir /old/a -> /new/a\n"
		     "changed: volume v /old/v -> /new/v\n"
		     "Restoring the store: /x/boxd.db\n"
		     "Restoring app a into /new/a\n"
		     "Restoring app b into /new/b\n"
		     "half a line");
	int p2 = percent_of(f);
	assert_true(p0 < p1 && p1 < p2 && p2 < 100);

	json_t *v;
	assert_int_equal(box_restore_status_view(&f->cfg, &v), 0);
	assert_null(json_object_get(v, "token"));
	assert_string_equal(json_string_value(json_object_get(v, "state")), "running");
	assert_string_equal(json_string_value(json_object_get(v, "step")), "Restoring app b into /new/b");
	assert_int_equal(json_array_size(json_object_get(v, "lines")), 9);
	json_t *ch = json_object_get(v, "changed");
	assert_int_equal(json_array_size(ch), 2);
	assert_string_equal(json_string_value(json_array_get(ch, 0)), "app a data dir /old/a -> /new/a");
	json_decref(v);

	save(f, "succeeded", "0123456789abcdef0123456789abcdef");
	assert_int_equal(percent_of(f), 100);
}

static void token(void **state)
{
	struct fx *f = *state;
	const char *t = "0123456789abcdef0123456789abcdef";
	save(f, "running", t);
	assert_true(box_restore_token_ok(&f->cfg, t));
	assert_false(box_restore_token_ok(&f->cfg, "0123456789abcdef0123456789abcdee"));
	assert_false(box_restore_token_ok(&f->cfg, "0123456789abcdef"));
	assert_false(box_restore_token_ok(&f->cfg, "0123456789abcdef0123456789abcdef0"));
	assert_false(box_restore_token_ok(&f->cfg, NULL));
	save(f, "failed", t);
	assert_false(box_restore_token_ok(&f->cfg, t)); /* only while it runs */
}

static void result_and_codes(void **state)
{
	struct fx *f = *state;
	struct box_restore_result res = { .backup_id = 7, .apps = 2, .volumes = 1 };
	assert_int_equal(box_restore_result_save(&f->cfg, 0, NULL, &res), 0);
	char path[256];
	assert_true(box_restore_status_path(&f->cfg, "result.json", path, sizeof(path)));
	json_t *j = json_load_file(path, 0, NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "result"), "apps")), 2);
	json_decref(j);
	assert_int_equal(box_restore_result_save(&f->cfg, -EKEYREJECTED, "the key does not open it", &res), 0);
	j = json_load_file(path, 0, NULL);
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "code")), "wrong_key");
	assert_string_equal(json_string_value(json_object_get(j, "message")), "the key does not open it");
	json_decref(j);
	assert_string_equal(box_restore_error_code(-EBADMSG), "backup_corrupt");
	assert_string_equal(box_restore_error_code(-ENOENT), "backup_missing");
	assert_string_equal(box_restore_error_code(-ENOTEMPTY), "box_not_empty");
	assert_string_equal(box_restore_error_code(-ENOKEY), "no_key");
	assert_string_equal(box_restore_error_code(-ECONNREFUSED), "target_unreachable");
	assert_string_equal(box_restore_error_code(-EIO), "restore_failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(no_record, setup, teardown),
		cmocka_unit_test_setup_teardown(view_reads_the_log, setup, teardown),
		cmocka_unit_test_setup_teardown(token, setup, teardown),
		cmocka_unit_test_setup_teardown(result_and_codes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
