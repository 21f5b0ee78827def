/* store_db_key.c — a name for the database a DSN reaches, without secrets;
 * see store_db_key() in store.h. */
#include "store-internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../common/sha256.h"
#include "mysql_dsn.h"
#include "pq_lib.h"

/* Append "name=value\n" (value may be NULL) to buf. */
static void add(char *buf, size_t len, const char *name, const char *value)
{
	size_t used = strlen(buf);
	if (used < len)
		snprintf(buf + used, len - used, "%s=%s\n", name, value ? value : "");
}

/* The DSN's parts that say where the database is (host or hosts, port,
 * socket, database name), never the user or the password: the key is
 * visible as a file name. */
static int where_of(enum store_backend backend, const char *dsn, char *buf, size_t len)
{
	buf[0] = '\0';
	if (backend == STORE_BACKEND_MYSQL) {
		/* A Galera cluster's DSN list names one database: every node. */
		struct mysql_dsn_list l = { 0 };
		char err[256];
		int r = mysql_dsn_list_parse(dsn, &l, err, sizeof(err));
		if (r < 0)
			return r;
		add(buf, len, "mysql", "");
		for (size_t i = 0; i < l.n; i++) {
			const struct mysql_dsn *d = &l.v[i];
			char port[16];
			snprintf(port, sizeof(port), "%u", d->port);
			add(buf, len, "host", d->host);
			add(buf, len, "port", port);
			add(buf, len, "socket", d->socket);
			add(buf, len, "db", d->db);
		}
		mysql_dsn_list_release(&l);
		return 0;
	}
	if (backend == STORE_BACKEND_POSTGRES) {
		if (pq_lib_load() < 0)
			return -ELIBACC;
		PQconninfoOption *opts = sym_PQconninfoParse(dsn, NULL);
		if (!opts)
			return -EINVAL;
		add(buf, len, "postgres", "");
		static const char *const keys[] = { "host", "hostaddr", "port", "dbname" };
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			for (PQconninfoOption *o = opts; o->keyword; o++)
				if (strcmp(o->keyword, keys[k]) == 0)
					add(buf, len, keys[k], o->val);
		sym_PQconninfoFree(opts);
		return 0;
	}
	return -EOPNOTSUPP;
}

int store_db_key_of(const struct store_options *opts, char ret[65])
{
	char where[2048];
	int r = opts->dsn ? where_of(opts->backend, opts->dsn, where, sizeof(where)) : -EOPNOTSUPP;
	if (r < 0)
		return r;
	return sha256_hex(where, strlen(where), ret);
}

const char *store_db_key(const struct store *s)
{
	return s && s->db_key[0] ? s->db_key : NULL;
}
