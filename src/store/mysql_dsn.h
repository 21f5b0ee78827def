/* mysql_dsn.h — the MariaDB/MySQL DSN, parsed. Pure: no I/O, no library.
 *
 * The form (store.h, store_options.dsn):
 *
 *	mysql://[user[:pass]@][host[:port]][/[dbname]][?socket=/path]
 *
 * or mariadb://. Every part is optional and percent-encoded as in a URI
 * ("%40" for '@' in a password). The host may be an IPv6 literal in
 * brackets ("[::1]:3306"). "user:@host" is an empty password, "user@host"
 * none. socket= is the only parameter known; any other is refused, so a
 * typo does not connect somewhere unintended.
 *
 * A list of servers (the nodes of a Galera cluster) is several DSNs
 * separated by commas, each a whole DSN with its scheme:
 *
 *	mysql://boxd:pw@db1/boxd, mysql://boxd:pw@db2/boxd, mysql://boxd:pw@db3/boxd
 *
 * A comma separates only where (after optional blanks) "mysql://" or
 * "mariadb://" follows, so a single DSN with a comma in its password still
 * parses as before. The store connects to the first node that answers and
 * is ready, and after losing a connection tries the next ones
 * (store_mysql.c).
 *
 * Ownership: the strings of a parsed struct mysql_dsn are malloc'ed and
 * NULL for a part that is absent; mysql_dsn_release() frees them.
 */
#pragma once

#include <stddef.h>

struct mysql_dsn {
	char *user, *pass, *host, *db, *socket;
	unsigned port; /* 0: not given (the library's default) */
};

/* Parse `dsn`. 0 and *ret filled, or -EINVAL with what is wrong in errbuf
 * (never the password), or -ENOMEM; *ret is untouched on failure. */
int mysql_dsn_parse(const char *dsn, struct mysql_dsn *ret, char *errbuf, size_t errlen);

/* Free the strings; accepts a zeroed struct. */
void mysql_dsn_release(struct mysql_dsn *d);

#define MYSQL_DSN_LIST_MAX 16

struct mysql_dsn_list {
	struct mysql_dsn *v;
	size_t n; /* >= 1 after a successful parse */
};

/* Parse a comma-separated list of DSNs (one DSN is a list of one). 0 and
 * *ret filled, or -EINVAL with what is wrong (and in which entry, "DSN 2 of
 * 3", when there are several) in errbuf, or -ENOMEM; *ret is untouched on
 * failure. More than MYSQL_DSN_LIST_MAX entries are refused. */
int mysql_dsn_list_parse(const char *dsn, struct mysql_dsn_list *ret, char *errbuf, size_t errlen);

/* Free every entry; accepts a zeroed struct. */
void mysql_dsn_list_release(struct mysql_dsn_list *l);
