/* fixture-store.c — see fixture-store.h. */
#include "fixture-store.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "locks/lock_wake.h"

static int db_counter;

const char *fixture_env_dsn(enum store_backend backend)
{
	const char *v = NULL;
	switch (backend) {
	case STORE_BACKEND_SQLITE:
		return "";
	case STORE_BACKEND_MYSQL:
		v = getenv("BOXD_TEST_MYSQL_DSN");
		break;
	case STORE_BACKEND_POSTGRES:
		v = getenv("BOXD_TEST_PG_DSN");
		break;
	}
	return v && *v ? v : NULL;
}

void fixture_dsn_for(const char *admin, const char *db, char *out, size_t len)
{
	const char *sep = strstr(admin, "://");
	if (!sep) {
		snprintf(out, len, "%s dbname=%s", admin, db);
		return;
	}
	const char *auth = sep + 3;
	size_t auth_len = strcspn(auth, "/?");
	const char *rest = auth + auth_len;
	if (*rest == '/')
		rest += strcspn(rest, "?");
	snprintf(out, len, "%.*s/%s%s", (int)(auth + auth_len - admin), admin, db, rest);
}

/* Run one statement on the server without selecting a database. */
static int admin_run(const struct fixture_db *db, const char *sql)
{
	struct store_options o = { .backend = db->backend, .dsn = db->admin_dsn, .no_migrate = true };
	struct store *admin;
	char err[512];
	if (store_open(&o, &admin, err, sizeof(err)) < 0) {
		fprintf(stderr, "cannot connect to %s: %s\n", db->admin_dsn, err);
		return -1;
	}
	int r = store_run(admin, sql, NULL) < 0 ? -1 : 0;
	if (r < 0)
		fprintf(stderr, "%s: %s\n", sql, store_errmsg(admin));
	store_close(admin);
	return r;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
}

int fixture_db_create(struct fixture_db *db, enum store_backend backend, const char *admin_dsn, const char *prefix)
{
	*db = (struct fixture_db){ .backend = backend, .admin_dsn = admin_dsn };
	const char *tmp = getenv("TMPDIR");
	snprintf(db->dir, sizeof(db->dir), "%s/boxd-test-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (!mkdtemp(db->dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(db->path, sizeof(db->path), "%s/boxd.db", db->dir);
	if (backend == STORE_BACKEND_SQLITE)
		return 0;
	char sql[256];
	snprintf(db->dbname, sizeof(db->dbname), "boxd_test_%s_%d_%d", prefix, (int)getpid(), ++db_counter);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s%s", db->dbname,
		 backend == STORE_BACKEND_MYSQL ? " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" : "");
	if (admin_run(db, sql) < 0) {
		db->dbname[0] = '\0';
		remove_dir(db->dir);
		return -1;
	}
	fixture_dsn_for(admin_dsn, db->dbname, db->dsn, sizeof(db->dsn));
	return 0;
}

void fixture_db_drop(struct fixture_db *db)
{
	if (db->dbname[0]) {
		/* The database's lock wake-up word (lock_wake.h) goes with it. */
		struct store_options o = { .backend = db->backend, .dsn = db->dsn };
		char wake[PATH_MAX];
		if (lock_wake_file_of(&o, wake, sizeof(wake)) == 0)
			unlink(wake);
		char sql[256];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s%s", db->dbname,
			 db->backend == STORE_BACKEND_POSTGRES ? " WITH (FORCE)" : "");
		admin_run(db, sql);
		db->dbname[0] = '\0';
	}
	if (db->dir[0])
		remove_dir(db->dir);
	db->dir[0] = '\0';
}

const char *fixture_db_target(const struct fixture_db *db)
{
	return db->backend == STORE_BACKEND_SQLITE ? db->path : db->dsn;
}
