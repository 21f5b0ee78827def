/* fixture-store.h — one fresh database per test, on any backend, for the
 * unit tests that run against real databases (test-store.c, test-locks.c).
 *
 * SQLite: a file in a fresh mkdtemp directory. MariaDB/MySQL, PostgreSQL:
 * a database boxd_test_<prefix>_<pid>_<n> created through an admin
 * connection to the server the test env names (BOXD_TEST_MYSQL_DSN,
 * BOXD_TEST_PG_DSN: a server without a database selected), and dropped
 * again. Every backend also gets the directory, for files a test needs.
 *
 *	struct fixture_db db;
 *	if (fixture_db_create(&db, backend, fixture_env_dsn(backend), "locks") < 0)
 *		return -1;
 *	... store_open() with fixture_db_target(&db) as sqlite_path and dsn ...
 *	fixture_db_drop(&db);
 *
 * Failures are printed to stderr (cmocka's setup functions only return -1).
 */
#pragma once

#include <limits.h>

#include "store/store.h"

struct fixture_db {
	enum store_backend backend;
	const char *admin_dsn;    /* server: the test env's DSN */
	char dir[PATH_MAX];       /* a fresh directory (every backend) */
	char path[PATH_MAX + 16]; /* SQLite: dir/boxd.db */
	char dbname[64];          /* server: the test's database */
	char dsn[1024];           /* server: its DSN */
};

/* The test env's admin DSN of a server backend, NULL when it is not set
 * (the test env is not running: skip); "" for SQLite. */
const char *fixture_env_dsn(enum store_backend backend);

/* DSN of database `db` on the server of `admin`: a URI gets its path
 * replaced, a key=value conninfo gets dbname appended. */
void fixture_dsn_for(const char *admin, const char *db, char *out, size_t len);

int fixture_db_create(struct fixture_db *db, enum store_backend backend, const char *admin_dsn, const char *prefix);
void fixture_db_drop(struct fixture_db *db);

/* What to open: the SQLite file or the server DSN. */
const char *fixture_db_target(const struct fixture_db *db);
