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
