/* test-lock-matrix.c — the locks of every task type, as boxd registers them
 * (boxd_register_task_types()), rendered as a markdown table and compared
 * with the table in docs/ARCHITECTURE.md ("Task types and their locks",
 * after the line `<!-- lock-matrix -->`). The table in the doc is the
 * design people read; the templates in the code are what workers take.
 * When they differ the test prints both: the one rendered from the code
 * can be pasted into the doc once it is the intended change.
 *
 * Each type is shown with sample arguments (app id `<app>` for app tasks,
 * `<name>` for a name given in args, `<host>` for the id of the host that
 * runs the task); types whose locks depend on their
 * args get one row per case (samples[] below). A type without a sample
 * gets one row with no args, and must be able to compute its locks so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cli_common.h"
#include "tasks/task.h"
#include "tasks/task_type.h"

#ifndef BOXD_ARCHITECTURE_MD
#error "tests/meson.build defines BOXD_ARCHITECTURE_MD, the path of docs/ARCHITECTURE.md"
#endif

#define MARKER "<!-- lock-matrix -->"
#define SAMPLE_APP "sample-app"
#define SAMPLE_NAME "sample-name"
#define SAMPLE_HOST "sample-host"

/* Types whose locks depend on their args: one row per case. */
static const struct sample {
	const char *type;
	const char *label; /* the "args" cell */
	const char *args;
} samples[] = {
	{ "hold", "`locks`: `<name>` exclusive", "{\"locks\":[{\"name\":\"" SAMPLE_NAME "\",\"mode\":\"exclusive\"}]}" },
	{ "service.rebuild", "`name`", "{\"name\":\"" SAMPLE_NAME "\"}" },
	{ "service.restart", "`name`", "{\"name\":\"" SAMPLE_NAME "\"}" },
	{ "configure", "", "{}" },
	{ "configure", "`dataDir`", "{\"dataDir\":\"/srv/elsewhere\"}" },
	{ "move.cleanup", "`appId`", "{\"appId\":\"" SAMPLE_APP "\",\"containerId\":\"\",\"dataDir\":\"/x\"}" },
};

#define COLS 4
static const char *const header[COLS] = { "task type", "args", "locks taken before it runs",
					  "locks its handler may take while it runs" };

struct row {
	char cell[COLS][512];
};

struct table {
	struct row rows[128];
	size_t n;
};

/* Append to a cell, "" if it does not fit (the comparison then fails). */
static void cell_add(char *cell, const char *s)
{
	size_t len = strlen(cell);
	if (len + strlen(s) < 512)
		memcpy(cell + len, s, strlen(s) + 1);
}

/* A lock as the doc shows it: `name` mode, the samples named by their
 * placeholders. */
static void render_lock(char *cell, const char *name, enum lock_mode mode)
{
	if (cell[0])
		cell_add(cell, ", ");
	cell_add(cell, "`");
	for (const char *p = name; *p;) {
		if (strncmp(p, SAMPLE_APP, strlen(SAMPLE_APP)) == 0) {
			cell_add(cell, "<app>");
			p += strlen(SAMPLE_APP);
		} else if (strncmp(p, SAMPLE_NAME, strlen(SAMPLE_NAME)) == 0) {
			cell_add(cell, "<name>");
			p += strlen(SAMPLE_NAME);
		} else if (strncmp(p, SAMPLE_HOST, strlen(SAMPLE_HOST)) == 0) {
			cell_add(cell, "<host>");
			p += strlen(SAMPLE_HOST);
		} else if (strncmp(p, "%s", 2) == 0) {
			cell_add(cell, "*");
			p += 2;
		} else if (strncmp(p, "%h", 2) == 0) {
			cell_add(cell, "<host>");
			p += 2;
		} else {
			char c[2] = { *p++, 0 };
			cell_add(cell, c);
		}
	}
	cell_add(cell, "` ");
	cell_add(cell, mode == LOCK_EXCLUSIVE ? "exclusive" : "shared");
}

static void render_row(struct table *tb, const struct task_type *type, const char *label, const char *args_text)
{
	assert_true(tb->n < sizeof(tb->rows) / sizeof(tb->rows[0]));
	struct row *row = &tb->rows[tb->n++];
	memset(row, 0, sizeof(*row));
	snprintf(row->cell[0], sizeof(row->cell[0]), "%s", type->name);
	snprintf(row->cell[1], sizeof(row->cell[1]), "%s", label);

	json_t *args = json_loads(args_text, 0, NULL);
	assert_non_null(args);
	struct task t = { .type = (char *)type->name, .app_id = type->app_task ? SAMPLE_APP : NULL };
	struct lock_req *reqs = NULL;
	size_t n = 0;
	int r = task_type_locks(type, &t, args, &reqs, &n);
	if (r < 0)
		fail_msg("task type %s: cannot compute its locks with args %s (%s): add a case to samples[]", type->name,
			 args_text, strerror(-r));
	for (size_t i = 0; i < n; i++)
		render_lock(row->cell[2], reqs[i].name, reqs[i].mode);
	free(reqs);
	json_decref(args);
	for (size_t i = 0; i < TASK_LOCKS_MAX && type->locks[i].name; i++)
		if (type->locks[i].later)
			render_lock(row->cell[3], type->locks[i].name, type->locks[i].mode);
}

static void render_matrix(struct table *tb)
{
	tb->n = 0;
	for (size_t i = 0; task_type_at(i); i++) {
		const struct task_type *type = task_type_at(i);
		bool sampled = false;
		for (size_t j = 0; j < sizeof(samples) / sizeof(samples[0]); j++) {
			if (strcmp(samples[j].type, type->name) == 0) {
				render_row(tb, type, samples[j].label, samples[j].args);
				sampled = true;
			}
		}
		if (!sampled)
			render_row(tb, type, "", "{}");
	}
}

/* ---- the table in the doc ---------------------------------------------------------- */

static void trim_into(char *dst, size_t size, const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	snprintf(dst, size, "%.*s", (int)len, s);
}

/* "| a | b |" into cells; false unless it has COLS of them. */
static bool parse_line(const char *line, struct row *row)
{
	memset(row, 0, sizeof(*row));
	const char *p = strchr(line, '|');
	size_t n = 0;
	while (p) {
		const char *next = strchr(p + 1, '|');
		if (!next)
			break;
		if (n == COLS)
			return false;
		trim_into(row->cell[n], sizeof(row->cell[n]), p + 1, (size_t)(next - p - 1));
		n++;
		p = next;
	}
	return n == COLS;
}

static bool is_separator(const struct row *row)
{
	for (size_t i = 0; i < COLS; i++)
		if (!row->cell[i][0] || strspn(row->cell[i], "-: ") != strlen(row->cell[i]))
			return false;
	return true;
}

/* The rows of the table after MARKER (header first, separator left out). */
static void parse_doc(struct table *tb, char *lines_text, size_t size)
{
	FILE *f = fopen(BOXD_ARCHITECTURE_MD, "r");
	if (!f)
		fail_msg("cannot open %s: %s", BOXD_ARCHITECTURE_MD, strerror(errno));
	char line[2048];
	bool found = false;
	tb->n = 0;
	lines_text[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!found) {
			found = strstr(line, MARKER) != NULL;
			continue;
		}
		const char *p = line + strspn(line, " \t");
		if (*p != '|')
			break;
		if (strlen(lines_text) + strlen(line) < size)
			strcat(lines_text, line);
		struct row row;
		if (!parse_line(p, &row)) {
			strcat(lines_text, "(the line above has not 4 cells)\n");
			tb->rows[tb->n++] = (struct row){ .cell = { "?" } };
			continue;
		}
		if (!is_separator(&row) && tb->n < sizeof(tb->rows) / sizeof(tb->rows[0]))
			tb->rows[tb->n++] = row;
	}
	fclose(f);
	if (!found)
		fail_msg("%s has no line %s before the lock matrix", BOXD_ARCHITECTURE_MD, MARKER);
}

/* The rendered table, columns padded, as it would be pasted into the doc
 * (indented by two spaces: it sits in a list item there). */
static void print_table(const struct table *tb)
{
	size_t w[COLS];
	for (size_t c = 0; c < COLS; c++) {
		w[c] = strlen(header[c]);
		for (size_t i = 0; i < tb->n; i++)
			if (strlen(tb->rows[i].cell[c]) > w[c])
				w[c] = strlen(tb->rows[i].cell[c]);
	}
	printf("  |");
	for (size_t c = 0; c < COLS; c++)
		printf(" %-*s |", (int)w[c], header[c]);
	printf("\n  |");
	for (size_t c = 0; c < COLS; c++) {
		for (size_t k = 0; k < w[c] + 2; k++)
			putchar('-');
		putchar('|');
	}
	putchar('\n');
	for (size_t i = 0; i < tb->n; i++) {
		printf("  |");
		for (size_t c = 0; c < COLS; c++)
			printf(" %-*s |", (int)w[c], tb->rows[i].cell[c]);
		putchar('\n');
	}
}

static bool rows_equal(const struct row *a, const struct row *b)
{
	for (size_t c = 0; c < COLS; c++)
		if (strcmp(a->cell[c], b->cell[c]) != 0)
			return false;
	return true;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_matrix_matches_doc(void **state)
{
	(void)state;
	static struct table code, doc;
	static char doc_text[65536];
	render_matrix(&code);
	parse_doc(&doc, doc_text, sizeof(doc_text));

	struct row head = { 0 };
	for (size_t c = 0; c < COLS; c++)
		snprintf(head.cell[c], sizeof(head.cell[c]), "%s", header[c]);
	static const struct row none = { .cell = { "(no row)" } };
#define DOC_CELLS(r) (r)->cell[0], (r)->cell[1], (r)->cell[2], (r)->cell[3]
	bool same = doc.n == code.n + 1 && rows_equal(&doc.rows[0], &head);
	for (size_t i = 0; same && i < code.n; i++)
		same = rows_equal(&doc.rows[i + 1], &code.rows[i]);
	if (!same) {
		printf("# the lock matrix in %s:\n%s", BOXD_ARCHITECTURE_MD, doc_text);
		printf("# the lock matrix of the task types (boxd_register_task_types()):\n");
		print_table(&code);
		for (size_t i = 0; i < code.n || i + 1 < doc.n; i++) {
			if (i >= code.n || i + 1 >= doc.n || !rows_equal(&doc.rows[i + 1], &code.rows[i])) {
				printf("# first difference, row %zu:\n#   doc:  %s | %s | %s | %s\n#   code: %s | %s | %s | %s\n",
				       i + 1, DOC_CELLS(i + 1 < doc.n ? &doc.rows[i + 1] : &none),
				       DOC_CELLS(i < code.n ? &code.rows[i] : &none));
				break;
			}
		}
		fflush(stdout);
		fail_msg("the lock matrix in docs/ARCHITECTURE.md is not the one the task types declare");
	}
}

/* Every registered type shows up, under its own name, at least once. */
static void test_every_type_is_in_the_matrix(void **state)
{
	(void)state;
	static struct table code;
	render_matrix(&code);
	size_t n_types = 0;
	for (; task_type_at(n_types); n_types++) {
		bool found = false;
		for (size_t i = 0; i < code.n && !found; i++)
			found = strcmp(code.rows[i].cell[0], task_type_at(n_types)->name) == 0;
		assert_true(found);
	}
	/* hold + 2 services + 7 app types + 3 backup types + update + platformstart */
	assert_true(n_types >= 15);
}

/* What a template needs and does not get is refused, not guessed. */
static void test_template_refuses_what_it_cannot_fill(void **state)
{
	(void)state;
	struct lock_req *reqs = (struct lock_req *)1;
	size_t n = 7;
	json_t *none = json_object();
	const struct task_type *install = task_type_find("install"), *rebuild = task_type_find("service.rebuild");
	assert_non_null(install);
	assert_non_null(rebuild);
	struct task no_app = { .type = "install" };
	assert_int_equal(task_type_locks(install, &no_app, none, &reqs, &n), -EINVAL);
	assert_null(reqs);
	assert_int_equal(n, 0);
	struct task bad_app = { .type = "install", .app_id = "a b" };
	assert_int_equal(task_type_locks(install, &bad_app, none, &reqs, &n), -EINVAL);
	struct task svc = { .type = "service.rebuild" };
	assert_int_equal(task_type_locks(rebuild, &svc, none, &reqs, &n), -EINVAL); /* no "name" */
	json_t *num = json_pack("{s:i}", "name", 3);
	assert_int_equal(task_type_locks(rebuild, &svc, num, &reqs, &n), -EINVAL);
	json_decref(num);
	json_decref(none);
}

/* Later locks: the pattern's %s stands for any non-empty value, the mode
 * must be the declared one. */
static void test_later_locks_are_declared(void **state)
{
	(void)state;
	const struct task_type *full = task_type_find("fullbackup"), *upd = task_type_find("platformupdate"),
			       *restart = task_type_find("restart");
	assert_non_null(full);
	assert_non_null(upd);
	assert_non_null(restart);
	struct lock_req app_x = { .name = "app:wiki", .mode = LOCK_EXCLUSIVE };
	struct lock_req app_shared = { .name = "app:wiki", .mode = LOCK_SHARED };
	struct lock_req app_empty = { .name = "app:", .mode = LOCK_EXCLUSIVE };
	struct lock_req platform_x = { .name = "platform:" SAMPLE_HOST, .mode = LOCK_EXCLUSIVE };
	struct lock_req platform_s = { .name = "platform:" SAMPLE_HOST, .mode = LOCK_SHARED };
	/* Another host's platform, or the old box-wide name: not this task's. */
	struct lock_req other_x = { .name = "platform:other-host", .mode = LOCK_EXCLUSIVE };
	struct lock_req global_x = { .name = "platform", .mode = LOCK_EXCLUSIVE };
	assert_true(task_type_declares_later(full, &app_x));
	assert_false(task_type_declares_later(full, &app_shared));
	assert_false(task_type_declares_later(full, &app_empty));
	assert_false(task_type_declares_later(full, &platform_x));
	assert_false(task_type_declares_later(full, &platform_s)); /* taken before run(): not later */
	assert_true(task_type_declares_later(upd, &app_x));
	assert_true(task_type_declares_later(upd, &platform_x));
	assert_false(task_type_declares_later(upd, &platform_s));
	assert_false(task_type_declares_later(upd, &other_x));
	assert_false(task_type_declares_later(upd, &global_x));
	assert_false(task_type_declares_later(restart, &app_x));
}

/* The locks of `type` (app id "wiki", args `args_text`) on host `host`,
 * as "name mode,name mode,...". */
static void locks_on(const char *host, const char *type_name, const char *args_text, char *out, size_t len)
{
	assert_int_equal(setenv("BOXD_HOST_ID", host, 1), 0);
	const struct task_type *type = task_type_find(type_name);
	assert_non_null(type);
	json_t *args = json_loads(args_text, 0, NULL);
	struct task t = { .type = (char *)type->name, .app_id = type->app_task ? "wiki" : NULL };
	struct lock_req *reqs = NULL;
	size_t n = 0;
	assert_int_equal(task_type_locks(type, &t, args, &reqs, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s %s", i ? "," : "", reqs[i].name,
			 lock_mode_name(reqs[i].mode));
	free(reqs);
	json_decref(args);
	assert_int_equal(setenv("BOXD_HOST_ID", SAMPLE_HOST, 1), 0);
}

/* Issue 16: what each host has its own of is named per host, so a
 * platformstart or a service rebuild on one host does not wait for, nor
 * hold up, the other hosts; app ids and the rolled update stay global. */
static void test_per_host_names(void **state)
{
	(void)state;
	char a[512], b[512];
	locks_on("host-a", "platformstart", "{}", a, sizeof(a));
	locks_on("host-b", "platformstart", "{}", b, sizeof(b));
	assert_string_equal(a, "type:platformstart:host-a exclusive,platform:host-a exclusive,"
			       "service:sftp:host-a exclusive,service:proxy:host-a exclusive");
	assert_string_equal(b, "type:platformstart:host-b exclusive,platform:host-b exclusive,"
			       "service:sftp:host-b exclusive,service:proxy:host-b exclusive");
	locks_on("host-a", "install", "{}", a, sizeof(a));
	assert_string_equal(a, "app:wiki exclusive,platform:host-a shared,service:sftp:host-a shared");
	locks_on("host-b", "configure", "{\"dataDir\":\"/srv/x\"}", b, sizeof(b));
	assert_string_equal(b, "app:wiki exclusive,platform:host-b shared,service:sftp:host-b shared");
	locks_on("host-b", "service.rebuild", "{\"name\":\"sftp\"}", b, sizeof(b));
	assert_string_equal(b, "service:sftp:host-b exclusive");
	locks_on("host-a", "platformupdate", "{}", a, sizeof(a));
	assert_string_equal(a, "type:update exclusive");

	char name[LOCK_NAME_MAX];
	assert_int_equal(setenv("BOXD_HOST_ID", "host-a", 1), 0);
	assert_int_equal(task_host_lock_name("platform", name, sizeof(name)), 0);
	assert_string_equal(name, "platform:host-a");
	assert_int_equal(task_host_lock_name("platform", name, 12), -ENAMETOOLONG);
	assert_int_equal(setenv("BOXD_HOST_ID", SAMPLE_HOST, 1), 0);
}

int main(void)
{
	/* The host that runs the tasks, rendered as <host>. */
	if (setenv("BOXD_HOST_ID", SAMPLE_HOST, 1) < 0)
		return 1;
	boxd_register_task_types();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix_matches_doc),
		cmocka_unit_test(test_every_type_is_in_the_matrix),
		cmocka_unit_test(test_template_refuses_what_it_cannot_fill),
		cmocka_unit_test(test_later_locks_are_declared),
		cmocka_unit_test(test_per_host_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
