/* box_state.c — see box_state.h.
 *
 * The SQLite path talks to libsqlite3 directly: the online backup API has no
 * equivalent in the backend-neutral store API (store.h), and it needs only
 * the database file's path from the config, not a store connection. */
#include "box_state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tempfile.h"
#include "store/store.h"
#include "tarball.h"
#include "tasks/store_open.h"

#define SQLITE_NAME "boxd.db"
#define JSONL_NAME "boxd-state.jsonl"
#define MAX_TABLES 64
#define MAX_COLUMNS 64

/* ---- SQLite ------------------------------------------------------------------------ */

static int sqlite_dump(const char *db_path, const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX], dest[PATH_MAX];
	snprintf(dest, sizeof(dest), "%s/" SQLITE_NAME, dir);
	snprintf(tmp, sizeof(tmp), "%s/." SQLITE_NAME ".tmp", dir);
	unlink(tmp);
	sqlite3 *src = NULL, *dst = NULL;
	int r = 0, rc = sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READWRITE, NULL); /* WAL readers need the -shm */
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(src, 10000);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open the database %s: %s", db_path, src ? sqlite3_errmsg(src) : "out of memory");
		r = -EIO;
		goto out;
	}
	rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, dst ? sqlite3_errmsg(dst) : "out of memory");
		r = -EIO;
		goto out;
	}
	/* All pages in one step: one read transaction on the source, so the
	 * copy is one consistent snapshot however busy the daemon is. */
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		snprintf(err, errlen, "cannot start the SQLite backup: %s", sqlite3_errmsg(dst));
		r = -EIO;
		goto out;
	}
	rc = sqlite3_backup_step(b, -1);
	int fin = sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE || fin != SQLITE_OK) {
		snprintf(err, errlen, "the SQLite backup of %s failed: %s", db_path,
			 sqlite3_errstr(rc != SQLITE_DONE ? rc : fin));
		r = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY : -EIO;
		goto out;
	}
	/* The copy keeps the source's journal mode in its header (WAL); make it
	 * a self-contained rollback-journal file, then close it before the
	 * rename, so that no -wal file belongs to it. */
	sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
	sqlite3_close(dst);
	dst = NULL;
	r = tempfile_commit(-1, tmp, dest, err, errlen);
out:
	if (dst)
		sqlite3_close(dst);
	if (src)
		sqlite3_close(src);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* ---- MariaDB/MySQL and PostgreSQL ----------------------------------------------------- */

bool box_state_ident_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 63)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

static bool is_integer_type(const char *t)
{
	static const char *const ints[] = { "integer", "int", "bigint", "smallint", "tinyint", "mediumint" };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (t && strcasecmp(t, ints[i]) == 0)
			return true;
	return false;
}

struct column {
	char name[64];
	bool integer;
};

static int emit(FILE *f, json_t *line, char *err, size_t errlen)
{
	char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (!text) {
		snprintf(err, errlen, "cannot encode a row as JSON (text that is not UTF-8?)");
		return -EILSEQ;
	}
	int r = fputs(text, f) == EOF || fputc('\n', f) == EOF ? -EIO : 0;
	free(text);
	if (r < 0)
		snprintf(err, errlen, "cannot write the state export: %s", strerror(errno));
	return r;
}

static int export_table(struct store *s, bool mysql, const char *table, FILE *f, char *err, size_t errlen)
{
	struct column cols[MAX_COLUMNS];
	size_t n = 0;
	struct store_stmt *st;
	int r = store_query(s, &st,
			    mysql ? "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
				    "DATABASE() AND table_name = ? ORDER BY ordinal_position"
				  : "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
				    "current_schema() AND table_name = ? ORDER BY ordinal_position",
			    "s", table);
	if (r < 0)
		goto fail;
	while ((r = store_step(st)) == 1) {
		const char *name = store_col_text(st, 0);
		if (n == MAX_COLUMNS || !box_state_ident_ok(name)) {
			store_finalize(st);
			snprintf(err, errlen, "table %s: unexpected column \"%s\"", table, name ? name : "");
			return -EINVAL;
		}
		snprintf(cols[n].name, sizeof(cols[n].name), "%s", name);
		cols[n].integer = is_integer_type(store_col_text(st, 1));
		n++;
	}
	store_finalize(st);
	if (r < 0)
		goto fail;

	json_t *names = json_array();
	char sql[4096];
	size_t used = (size_t)snprintf(sql, sizeof(sql), "SELECT ");
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(names, json_string(cols[i].name));
		used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s\"%s\"", i ? ", " : "", cols[i].name);
	}
	/* Identifiers come from information_schema and passed box_state_ident_ok(); they
	 * are quoted ("x" is an identifier on all three, see store.h). */
	snprintf(sql + used, sizeof(sql) - used, " FROM \"%s\" ORDER BY 1", table);
	r = emit(f, json_pack("{s:s, s:o}", "table", table, "columns", names), err, errlen);
	if (r < 0)
		return r;
	r = store_query(s, &st, sql, NULL);
	if (r < 0)
		goto fail;
	while ((r = store_step(st)) == 1) {
		json_t *row = json_object();
		for (size_t i = 0; i < n; i++) {
			json_t *v;
			if (store_col_is_null(st, (int)i))
				v = json_null();
			else if (cols[i].integer)
				v = json_integer(store_col_int64(st, (int)i));
			else
				v = json_string(store_col_text(st, (int)i));
			if (!v) {
				json_decref(row);
				store_finalize(st);
				snprintf(err, errlen, "table %s, column %s: a value that is not UTF-8", table, cols[i].name);
				return -EILSEQ;
			}
			json_object_set_new(row, cols[i].name, v);
		}
		r = emit(f, json_pack("{s:s, s:o}", "table", table, "row", row), err, errlen);
		if (r < 0) {
			store_finalize(st);
			return r;
		}
	}
	store_finalize(st);
	if (r < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot export table %s: %s", table, store_errmsg(s));
	return r;
}

static int logical_dump(const struct boxd_config *cfg, const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX], dest[PATH_MAX];
	snprintf(dest, sizeof(dest), "%s/" JSONL_NAME, dir);
	snprintf(tmp, sizeof(tmp), "%s/." JSONL_NAME ".tmp", dir);
	struct store *s = NULL;
	FILE *f = NULL;
	char *tables[MAX_TABLES];
	size_t n_tables = 0;
	int r = store_open_config(cfg, STORE_OPEN_NO_MIGRATE, &s, err, errlen);
	if (r < 0)
		return r;
	bool mysql = store_get_backend(s) == STORE_BACKEND_MYSQL;
	/* One snapshot for every table. MySQL: the level applies to the next
	 * transaction (InnoDB's default, said out loud); PostgreSQL: it must be
	 * the transaction's first statement. */
	if (mysql && (r = (int)store_run(s, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL)) < 0)
		goto store_fail;
	if ((r = store_begin(s, false)) < 0)
		goto store_fail;
	if (!mysql && (r = (int)store_run(s, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL)) < 0)
		goto store_fail;
	int64_t version = 0;
	if ((r = store_query_int64(s, &version, "SELECT version FROM schema_version", NULL)) < 0)
		goto store_fail;
	struct store_stmt *st;
	r = store_query(s, &st,
			mysql ? "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND "
				"table_type = 'BASE TABLE' ORDER BY table_name"
			      : "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
				"AND table_type = 'BASE TABLE' ORDER BY table_name",
			NULL);
	if (r < 0)
		goto store_fail;
	while ((r = store_step(st)) == 1) {
		const char *t = store_col_text(st, 0);
		if (box_state_ident_ok(t) && n_tables < MAX_TABLES)
			tables[n_tables++] = strdup(t);
	}
	store_finalize(st);
	if (r < 0)
		goto store_fail;

	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(-r));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	r = emit(f,
		 json_pack("{s:i, s:s, s:I}", "boxdStateExport", 1, "backend", store_backend_name(store_get_backend(s)),
			   "schemaVersion", (json_int_t)version),
		 err, errlen);
	for (size_t i = 0; i < n_tables && r == 0; i++)
		if (tables[i])
			r = export_table(s, mysql, tables[i], f, err, errlen);
	if (r < 0)
		goto out;
	if (fflush(f) == EOF) {
		r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
		goto out;
	}
	r = tempfile_commit(fileno(f), tmp, dest, err, errlen);
	goto out;
store_fail:
	snprintf(err, errlen, "cannot export the store: %s", store_errmsg(s));
out:
	if (f)
		fclose(f);
	if (r < 0)
		unlink(tmp);
	for (size_t i = 0; i < n_tables; i++)
		free(tables[i]);
	store_rollback(s);
	store_close(s);
	return r;
}

int box_state_dump(const struct boxd_config *cfg, const char *dir, const char **ret_name, char *err, size_t errlen)
{
	enum store_backend b;
	if (store_backend_from_string(cfg->store_backend, &b) < 0) {
		snprintf(err, errlen, "unknown store backend '%s'", cfg->store_backend);
		return -EINVAL;
	}
	int r = b == STORE_BACKEND_SQLITE ? sqlite_dump(cfg->sqlite_path, dir, err, errlen)
					  : logical_dump(cfg, dir, err, errlen);
	if (r == 0 && ret_name)
		*ret_name = b == STORE_BACKEND_SQLITE ? SQLITE_NAME : JSONL_NAME;
	return r;
}
