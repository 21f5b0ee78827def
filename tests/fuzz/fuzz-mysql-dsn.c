/* fuzz-mysql-dsn.c — the MariaDB DSN parser (store/mysql_dsn.h): any text
 * is parsed or refused with a message, never a crash or a leak; and what
 * parses, written out again with every part percent-encoded, parses to the
 * same parts (the parser decodes exactly what a URI encoder writes). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/mysql_dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_encoded(char **o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		    c == '_' || c == '-' || c == '~') {
			*(*o)++ = (char)c;
		} else {
			*(*o)++ = '%';
			*(*o)++ = hex[c >> 4];
			*(*o)++ = hex[c & 15];
		}
	}
}

static size_t len0(const char *s) { return s ? strlen(s) : 0; }

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct mysql_dsn d, again;
	char err[256];
	/* The list parser: any text is parsed or refused with a reason. */
	struct mysql_dsn_list l;
	err[0] = '\0';
	if (mysql_dsn_list_parse(text, &l, err, sizeof(err)) == 0) {
		if (l.n < 1 || l.n > MYSQL_DSN_LIST_MAX)
			abort();
		mysql_dsn_list_release(&l);
	} else if (!err[0]) {
		abort();
	}
	if (mysql_dsn_parse(text, &d, err, sizeof(err)) != 0) {
		if (!err[0])
			abort(); /* refused without saying why */
		free(text);
		return 0;
	}
	size_t cap = 64 + 3 * (len0(d.user) + len0(d.pass) + len0(d.host) + len0(d.db) + len0(d.socket));
	char *dsn = malloc(cap), *o = dsn;
	if (!dsn)
		abort();
	o += sprintf(o, "mysql://");
	if (d.user || d.pass) {
		put_encoded(&o, d.user);
		if (d.pass) {
			*o++ = ':';
			put_encoded(&o, d.pass);
		}
		*o++ = '@';
	}
	put_encoded(&o, d.host);
	if (d.port)
		o += sprintf(o, ":%u", d.port);
	if (d.db) {
		*o++ = '/';
		put_encoded(&o, d.db);
	}
	if (d.socket) {
		o += sprintf(o, "?socket=");
		put_encoded(&o, d.socket);
	}
	*o = '\0';
	if (mysql_dsn_parse(dsn, &again, err, sizeof(err)) != 0)
		abort(); /* what it parsed, written out, does not parse */
	if (!same(d.user, again.user) || !same(d.pass, again.pass) || !same(d.host, again.host) ||
	    !same(d.db, again.db) || !same(d.socket, again.socket) || d.port != again.port)
		abort();
	mysql_dsn_release(&again);
	mysql_dsn_release(&d);
	free(dsn);
	free(text);
	return 0;
}
