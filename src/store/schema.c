/* schema.c — versioned schema migrations, one list of statements per backend.
 *
 * Migrations run at store_open() inside one write transaction that first
 * reads schema_version, so several processes opening a fresh database at
 * once apply each migration exactly once (on SQLite the BEGIN IMMEDIATE
 * serializes them; the other backends take their own lock, see below).
 * A migration is never edited once it has shipped: add a new one.
 */
#include "store-internal.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define EMPTY_LOCK_DOC "{\"holders\":[],\"queue\":[],\"nextTicket\":1}"

/* Every MySQL table: InnoDB (row locks, transactions) and a binary UTF-8
 * collation, so that text compares byte for byte as on SQLite and
 * PostgreSQL ('Running' != 'running'). */
#define MYSQL_TABLE " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

struct migration {
	int version;
	const char *const *sqlite;
	const char *const *mysql;
	const char *const *postgres;
};

/* --- 1: the lock document ------------------------------------------------ */
static const char *const m1_sqlite[] = {
	"CREATE TABLE locks (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL)",
	"INSERT INTO locks (id, version, data) VALUES (1, 0, '" EMPTY_LOCK_DOC "')",
	NULL,
};
static const char *const m1_mysql[] = {
	"CREATE TABLE locks (id INT PRIMARY KEY, version BIGINT NOT NULL, data LONGTEXT NOT NULL)" MYSQL_TABLE,
	"INSERT INTO locks (id, version, data) VALUES (1, 0, '" EMPTY_LOCK_DOC "')",
	NULL,
};
static const char *const m1_postgres[] = {
	"CREATE TABLE locks (id INT PRIMARY KEY, version BIGINT NOT NULL, data TEXT NOT NULL)",
	"INSERT INTO locks (id, version, data) VALUES (1, 0, '" EMPTY_LOCK_DOC "')",
	NULL,
};

/* --- 2: tasks -------------------------------------------------------------
 * Times are milliseconds since the epoch (UTC); JSON columns are TEXT. */
#define TASK_COLUMNS(ID, TEXT, BIG)                                                          \
	"CREATE TABLE tasks (" ID ", type " TEXT " NOT NULL, app_id " TEXT ", args " TEXT   \
	" NOT NULL, state " TEXT " NOT NULL, percent INT NOT NULL DEFAULT 0, message " TEXT \
	" NOT NULL, waiting_for " TEXT ", error_code " TEXT ", error_message " TEXT         \
	", result " TEXT ", pid INT, pid_start " BIG ", host " TEXT ", stop_reason " TEXT  \
	", created_at " BIG " NOT NULL, started_at " BIG ", finished_at " BIG               \
	", timeout_ms " BIG ")"
static const char *const m2_sqlite[] = {
	TASK_COLUMNS("id INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "INTEGER"),
	"CREATE INDEX tasks_state ON tasks (state)",
	"CREATE INDEX tasks_app ON tasks (app_id)",
	NULL,
};
static const char *const m2_mysql[] = {
	TASK_COLUMNS("id BIGINT AUTO_INCREMENT PRIMARY KEY", "VARCHAR(255)", "BIGINT") MYSQL_TABLE,
	"ALTER TABLE tasks MODIFY args LONGTEXT NOT NULL, MODIFY message TEXT NOT NULL, MODIFY waiting_for TEXT, "
	"MODIFY error_message TEXT, MODIFY result LONGTEXT",
	"CREATE INDEX tasks_state ON tasks (state)",
	"CREATE INDEX tasks_app ON tasks (app_id)",
	NULL,
};
static const char *const m2_postgres[] = {
	TASK_COLUMNS("id BIGSERIAL PRIMARY KEY", "TEXT", "BIGINT"),
	"CREATE INDEX tasks_state ON tasks (state)",
	"CREATE INDEX tasks_app ON tasks (app_id)",
	NULL,
};

/* --- 3: apps and volumes ---------------------------------------------------
 * data_dir NULL: the default <appsdata_root>/<id>. env is a JSON object. */
#define APPS_TABLE(TEXT, KEY, BIG)                                                                    \
	"CREATE TABLE apps (id " KEY " PRIMARY KEY, image " TEXT " NOT NULL, env " TEXT " NOT NULL, "     \
	"data_dir " TEXT ", install_state " TEXT " NOT NULL, run_state " TEXT " NOT NULL, health " TEXT \
	" NOT NULL, task_id " BIG ", container_id " TEXT ", created_at " BIG " NOT NULL, updated_at " BIG  \
	" NOT NULL)"
#define VOLUMES_TABLE(TEXT, KEY, BIG)                                                                  \
	"CREATE TABLE volumes (id " KEY " PRIMARY KEY, name " TEXT " NOT NULL, host_path " TEXT           \
	" NOT NULL, mount_type " TEXT " NOT NULL, created_at " BIG " NOT NULL)"
static const char *const m3_sqlite[] = {
	APPS_TABLE("TEXT", "TEXT", "INTEGER"),
	VOLUMES_TABLE("TEXT", "TEXT", "INTEGER"),
	NULL,
};
static const char *const m3_mysql[] = {
	APPS_TABLE("TEXT", "VARCHAR(128)", "BIGINT") MYSQL_TABLE,
	VOLUMES_TABLE("TEXT", "VARCHAR(128)", "BIGINT") MYSQL_TABLE,
	NULL,
};
static const char *const m3_postgres[] = {
	APPS_TABLE("TEXT", "TEXT", "BIGINT"),
	VOLUMES_TABLE("TEXT", "TEXT", "BIGINT"),
	NULL,
};

/* --- 4: backups ------------------------------------------------------------
 * One row per archive (kind app or box) and per full backup (kind full);
 * full_backup_id links the archives of a full backup to it. See
 * src/backups/backup_store.h. */
#define BACKUPS_TABLE(ID, TEXT, KEY, BIG)                                                                  \
	"CREATE TABLE backups (" ID ", kind " KEY " NOT NULL, app_id " KEY ", task_id " BIG ", path " TEXT   \
	", format " KEY " NOT NULL, sha256 " KEY ", size " BIG " NOT NULL DEFAULT 0, created_at " BIG          \
	" NOT NULL, state " KEY " NOT NULL, full_backup_id " BIG ")"
static const char *const m4_sqlite[] = {
	BACKUPS_TABLE("id INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "TEXT", "INTEGER"),
	"CREATE INDEX backups_app ON backups (app_id)",
	"CREATE INDEX backups_full ON backups (full_backup_id)",
	NULL,
};
static const char *const m4_mysql[] = {
	BACKUPS_TABLE("id BIGINT AUTO_INCREMENT PRIMARY KEY", "TEXT", "VARCHAR(128)", "BIGINT") MYSQL_TABLE,
	"CREATE INDEX backups_app ON backups (app_id)",
	"CREATE INDEX backups_full ON backups (full_backup_id)",
	NULL,
};
static const char *const m4_postgres[] = {
	BACKUPS_TABLE("id BIGSERIAL PRIMARY KEY", "TEXT", "TEXT", "BIGINT"),
	"CREATE INDEX backups_app ON backups (app_id)",
	"CREATE INDEX backups_full ON backups (full_backup_id)",
	NULL,
};

/* --- 5: idempotency keys and claim tokens on tasks -------------------------
 * idem_key/idem_fp: the Idempotency-Key a POST that created the task came
 * with and the SHA-256 of that request (method, path, body), so that a
 * retried request gets the same task (src/api/idempotency.c). Unique; NULL
 * for tasks created without one (every backend allows many NULLs).
 * claim/claimed_at: the token of the scheduler's claim (a random number
 * the worker proves itself with) and when it was made, in the database's
 * clock, so that a claim whose worker never started can be taken over
 * safely (tasks/task.h, task_claim()). */
static const char *const m5_sqlite[] = {
	"ALTER TABLE tasks ADD COLUMN idem_key TEXT",
	"ALTER TABLE tasks ADD COLUMN idem_fp TEXT",
	"ALTER TABLE tasks ADD COLUMN claim INTEGER",
	"ALTER TABLE tasks ADD COLUMN claimed_at INTEGER",
	"CREATE UNIQUE INDEX tasks_idem_key ON tasks (idem_key)",
	NULL,
};
static const char *const m5_mysql[] = {
	"ALTER TABLE tasks ADD COLUMN idem_key VARCHAR(255), ADD COLUMN idem_fp VARCHAR(64), "
	"ADD COLUMN claim BIGINT, ADD COLUMN claimed_at BIGINT",
	"CREATE UNIQUE INDEX tasks_idem_key ON tasks (idem_key)",
	NULL,
};
static const char *const m5_postgres[] = {
	"ALTER TABLE tasks ADD COLUMN idem_key TEXT, ADD COLUMN idem_fp TEXT, ADD COLUMN claim BIGINT, "
	"ADD COLUMN claimed_at BIGINT",
	"CREATE UNIQUE INDEX tasks_idem_key ON tasks (idem_key)",
	NULL,
};

/* --- 6: what the security checks compare against (issue 10) ----------------
 * backups.mac: the archive's HMAC under the host's backup key
 * (src/backups/backup_key.h). apps.data_dev/data_ino and
 * volumes.host_dev/host_ino: the identity (st_dev, st_ino, stored as
 * signed 64-bit) of the directory boxd created, which every bind source
 * must still be when it goes to the engine (the bind-source check, issue 10
 * finding 1); NULL for rows from before, recorded at their next check. */
#define M6(BIG, TEXT)                                                                         \
	"ALTER TABLE backups ADD COLUMN mac " TEXT, "ALTER TABLE apps ADD COLUMN data_dev " BIG, \
		"ALTER TABLE apps ADD COLUMN data_ino " BIG, "ALTER TABLE volumes ADD COLUMN host_dev " BIG, \
		"ALTER TABLE volumes ADD COLUMN host_ino " BIG
static const char *const m6_sqlite[] = { M6("INTEGER", "TEXT"), NULL };
static const char *const m6_mysql[] = { M6("BIGINT", "VARCHAR(128)"), NULL };
static const char *const m6_postgres[] = { M6("BIGINT", "TEXT"), NULL };

/* --- 7: volumes boxd mounts itself ---------------------------------------------
 * mount_source: what is mounted at host_path for the mount types boxd
 * manages (a host directory for "bind", a device, "//server/share" or
 * "host:/export" for a filesystem type); mount_options: extra mount(8)
 * options. NULL for "dir" and "mountpoint". */
static const char *const m7_sqlite[] = {
	"ALTER TABLE volumes ADD COLUMN mount_source TEXT",
	"ALTER TABLE volumes ADD COLUMN mount_options TEXT",
	NULL,
};
static const char *const m7_mysql[] = {
	"ALTER TABLE volumes ADD COLUMN mount_source TEXT, ADD COLUMN mount_options TEXT",
	NULL,
};
static const char *const m7_postgres[] = {
	"ALTER TABLE volumes ADD COLUMN mount_source TEXT, ADD COLUMN mount_options TEXT",
	NULL,
};

/* --- 8: ports and domains ------------------------------------------------------
 * apps.ports: JSON array of {"container","host","protocol"} the app publishes
 * on the host; apps.domains: JSON array of host names the proxy service
 * routes to the app's container port apps.http_port (NULL: 80). NULL ports
 * or domains: none. Written when the request is accepted, in the
 * transaction that checks them against every other app (app_publish.h). */
static const char *const m8_sqlite[] = {
	"ALTER TABLE apps ADD COLUMN ports TEXT",
	"ALTER TABLE apps ADD COLUMN domains TEXT",
	"ALTER TABLE apps ADD COLUMN http_port INTEGER",
	NULL,
};
static const char *const m8_mysql[] = {
	"ALTER TABLE apps ADD COLUMN ports TEXT, ADD COLUMN domains TEXT, ADD COLUMN http_port INTEGER",
	NULL,
};
static const char *const m8_postgres[] = {
	"ALTER TABLE apps ADD COLUMN ports TEXT, ADD COLUMN domains TEXT, ADD COLUMN http_port INTEGER",
	NULL,
};

/* --- 9: an app stopped by the operator ----------------------------------------
 * apps.stopped: 1 after `POST /apps/:id/stop`, NULL or 0 otherwise (cleared
 * by start). Not run_state, which says what the engine was last seen doing:
 * this says what the operator wants, and platformstart starts no app that
 * has it (app.h). */
static const char *const m9_all[] = {
	"ALTER TABLE apps ADD COLUMN stopped INTEGER",
	NULL,
};

/* --- 10: wake-ups for lock waiters on PostgreSQL -----------------------------
 * Every change of the lock row NOTIFYs STORE_LOCKS_CHANNEL (delivered at
 * commit, to every host), so a waiter LISTENs instead of polling the row
 * (locks.c). A trigger rather than a NOTIFY from the writer: it costs no
 * round trip, and every writer (`boxd locks repair`, an older boxd) sends
 * it. SQLite wakes its waiters through a futex (lock_wake.c); MariaDB has
 * nothing of the kind: its waiters poll. */
static const char *const m10_none[] = { NULL };
static const char *const m10_postgres[] = {
	"CREATE OR REPLACE FUNCTION boxd_locks_notify() RETURNS trigger LANGUAGE plpgsql AS "
	"$$ BEGIN PERFORM pg_notify('" STORE_LOCKS_CHANNEL "', ''); RETURN NULL; END $$",
	"CREATE TRIGGER locks_notify AFTER UPDATE ON locks FOR EACH ROW EXECUTE FUNCTION boxd_locks_notify()",
	NULL,
};

/* --- 11: hosts and placement ------------------------------------------------
 * hosts: one row per boxd host sharing the store (sched/hosts.h), its
 * heartbeat in the database's clock. apps.host: the host the app lives on;
 * NULL (every app of a box older than this) is "the host whose scheduler
 * claims it first", which on a single host is that host. */
#define HOSTS_TABLE(KEY, TEXT, BIG)                                                                   \
	"CREATE TABLE hosts (id " KEY " PRIMARY KEY, name " TEXT ", owner_id " TEXT ", api_url " TEXT \
	", version " TEXT ", started_at " BIG " NOT NULL, heartbeat_at " BIG " NOT NULL)"
static const char *const m11_sqlite[] = {
	HOSTS_TABLE("TEXT", "TEXT", "INTEGER"),
	"ALTER TABLE apps ADD COLUMN host TEXT",
	NULL,
};
static const char *const m11_mysql[] = {
	HOSTS_TABLE("VARCHAR(64)", "VARCHAR(255)", "BIGINT") MYSQL_TABLE,
	"ALTER TABLE apps ADD COLUMN host VARCHAR(64)",
	NULL,
};
static const char *const m11_postgres[] = {
	HOSTS_TABLE("TEXT", "TEXT", "BIGINT"),
	"ALTER TABLE apps ADD COLUMN host TEXT",
	NULL,
};

/* --- 13: where a task may run ------------------------------------------------
 * tasks.run_on: the host id whose scheduler alone may claim the task; NULL:
 * any host. A move's steps (backups/app_move.h) run on the source and on
 * the target host. */
static const char *const m13_sqlite[] = { "ALTER TABLE tasks ADD COLUMN run_on TEXT", NULL };
static const char *const m13_mysql[] = { "ALTER TABLE tasks ADD COLUMN run_on VARCHAR(64)", NULL };
static const char *const m13_postgres[] = { "ALTER TABLE tasks ADD COLUMN run_on TEXT", NULL };

static const struct migration migrations[] = {
	{ 1, m1_sqlite, m1_mysql, m1_postgres },
	{ 2, m2_sqlite, m2_mysql, m2_postgres },
	{ 3, m3_sqlite, m3_mysql, m3_postgres },
	{ 4, m4_sqlite, m4_mysql, m4_postgres },
	{ 5, m5_sqlite, m5_mysql, m5_postgres },
	{ 6, m6_sqlite, m6_mysql, m6_postgres },
	{ 7, m7_sqlite, m7_mysql, m7_postgres },
	{ 8, m8_sqlite, m8_mysql, m8_postgres },
	{ 9, m9_all, m9_all, m9_all },
	{ 10, m10_none, m10_none, m10_postgres },
	{ 11, m11_sqlite, m11_mysql, m11_postgres },
	{ 13, m13_sqlite, m13_mysql, m13_postgres },
};

static const char *const *statements_for(const struct migration *m, enum store_backend b)
{
	switch (b) {
	case STORE_BACKEND_SQLITE: return m->sqlite;
	case STORE_BACKEND_MYSQL: return m->mysql;
	case STORE_BACKEND_POSTGRES: return m->postgres;
	}
	return NULL;
}

static int ensure_version_table(struct store *s)
{
	/* CREATE TABLE IF NOT EXISTS is portable across all three. */
	int64_t r = store_run(s, "CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)", NULL);
	if (r < 0)
		return (int)r;
	return 0;
}

static int apply_pending(struct store *s)
{
	int64_t current = 0;
	int r = store_query_int64(s, &current, "SELECT version FROM schema_version", NULL);
	if (r == -ENOENT) {
		int64_t n = store_run(s, "INSERT INTO schema_version (version) VALUES (0)", NULL);
		if (n < 0)
			return (int)n;
		current = 0;
	} else if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
		const struct migration *m = &migrations[i];
		if (m->version <= current)
			continue;
		const char *const *stmts = statements_for(m, s->backend);
		for (; stmts && *stmts; stmts++) {
			int64_t n = store_run(s, *stmts, NULL);
			if (n < 0)
				return store_set_error(s, (int)n, "migration %d: %s (in: %.120s)", m->version,
						       store_errmsg(s), *stmts);
		}
		int64_t n = store_run(s, "UPDATE schema_version SET version = ?", "i", (int64_t)m->version);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

int store_migrate(struct store *s)
{
	int r;
	if (s->backend == STORE_BACKEND_MYSQL) {
		/* MySQL DDL commits implicitly, so a transaction cannot serialize
		 * concurrent migrators; a named server lock does. Named locks are
		 * server-wide, so the name includes the database. The lock lives
		 * in the session: pin it, so that a lost connection is an error
		 * rather than a silent reconnect without the lock. */
		int64_t got = 0;
		s->session_pinned = true;
		/* Up to 60 s for another migrator, in waits of 5 s: each is one
		 * reply, shorter than the reply timeout (store_options). */
		for (int i = 0; i < 12 && got != 1; i++) {
			r = store_query_int64(s, &got,
					      "SELECT GET_LOCK(CONCAT('boxd_migrate_', SHA1(COALESCE(DATABASE(), ''))), 5)",
					      NULL);
			if (r < 0)
				break;
		}
		if (r >= 0 && got != 1)
			r = store_set_error(s, -EBUSY, "timed out waiting for another process's migration");
		if (r >= 0) {
			r = ensure_version_table(s);
			if (r >= 0)
				r = apply_pending(s);
			int64_t ignored;
			store_query_int64(s, &ignored,
					  "SELECT RELEASE_LOCK(CONCAT('boxd_migrate_', SHA1(COALESCE(DATABASE(), ''))))", NULL);
		}
		s->session_pinned = false;
		return r;
	}

	if (s->backend == STORE_BACKEND_SQLITE) {
		/* The version table must exist before the transaction reads it; a
		 * racing creator is harmless with IF NOT EXISTS. */
		r = ensure_version_table(s);
		if (r < 0)
			return r;
	}
	r = store_begin(s, true);
	if (r < 0)
		return r;
	if (s->backend == STORE_BACKEND_POSTGRES) {
		/* Transactional DDL; the advisory xact lock (per database)
		 * serializes migrators and is released at commit. A migrator
		 * waits for another one longer than for a row lock. */
		int64_t n = store_run(s, "SET LOCAL lock_timeout = '60s'", NULL);
		if (n >= 0)
			n = store_run(s, "SELECT pg_advisory_xact_lock(4242)", NULL);
		r = n < 0 ? (int)n : 0;
		if (r >= 0)
			r = ensure_version_table(s);
	}
	if (r >= 0)
		r = apply_pending(s);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s);
}
