/* mysql_dsn.c — the MariaDB/MySQL DSN parser; see mysql_dsn.h. */
#include "mysql_dsn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"

#define EXPECTED "expected mysql://user:pass@host:port/dbname?socket=/path"

void mysql_dsn_release(struct mysql_dsn *d)
{
	free(d->user);
	free(d->pass);
	free(d->host);
	free(d->db);
	free(d->socket);
	*d = (struct mysql_dsn){ 0 };
}

/* Percent-decode [p, p+n) into a new string. NULL for an empty part, and
 * also when *err (the first failure: -EINVAL malformed, -ENOMEM) is set.
 * "%00" is malformed: a NUL would silently cut the value short. */
static char *decode(const char *p, size_t n, int *err)
{
	if (n == 0 || *err)
		return NULL;
	char *out = malloc(n + 1), *o = out;
	if (!out) {
		*err = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '%') {
			*o++ = p[i];
			continue;
		}
		int hi = i + 2 < n ? hex_value((unsigned char)p[i + 1]) : -1;
		int lo = i + 2 < n ? hex_value((unsigned char)p[i + 2]) : -1;
		if (hi < 0 || lo < 0 || hi + lo == 0) {
			free(out);
			*err = -EINVAL;
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = 0;
	return out;
}

/* A port: 1..65535, decimal digits only. */
static int parse_port(const char *p, const char *end, unsigned *ret)
{
	unsigned v = 0;
	if (p == end)
		return -EINVAL;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > 65535)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* user[:pass]@host[:port] or [v6]:port, up to `end`. */
static void parse_authority(const char *p, const char *end, struct mysql_dsn *d, int *err)
{
	const char *at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q; /* the last one: an unencoded '@' in a password still works */
	const char *hp = p;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			d->user = decode(p, (size_t)(colon - p), err);
			d->pass = decode(colon + 1, (size_t)(at - colon - 1), err);
			if (!d->pass && !*err && !(d->pass = strdup("")))
				*err = -ENOMEM; /* "user:@host": an empty password */
		} else {
			d->user = decode(p, (size_t)(at - p), err);
		}
		hp = at + 1;
	}
	const char *port = NULL;
	if (hp < end && *hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));
		if (!rb) {
			*err = *err ? *err : -EINVAL;
			return;
		}
		d->host = decode(hp + 1, (size_t)(rb - hp - 1), err);
		if (rb + 1 < end) {
			if (rb[1] != ':') {
				*err = *err ? *err : -EINVAL;
				return;
			}
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(hp, ':', (size_t)(end - hp));
		d->host = decode(hp, (size_t)((colon ? colon : end) - hp), err);
		if (colon)
			port = colon + 1;
	}
	if (port && !*err && parse_port(port, end, &d->port) < 0)
		*err = -EINVAL;
}

int mysql_dsn_parse(const char *dsn, struct mysql_dsn *ret, char *errbuf, size_t errlen)
{
	struct mysql_dsn d = { 0 };
	int err = 0;
	const char *p;
	if (!dsn || !*dsn) {
		snprintf(errbuf, errlen, "mysql: no DSN given (e.g. mysql://user:pass@host/dbname?socket=/path)");
		return -EINVAL;
	}
	if (strncmp(dsn, "mysql://", 8) == 0)
		p = dsn + 8;
	else if (strncmp(dsn, "mariadb://", 10) == 0)
		p = dsn + 10;
	else {
		snprintf(errbuf, errlen, "mysql: DSN must start with mysql:// or mariadb://");
		return -EINVAL;
	}
	const char *q = p + strcspn(p, "/?");
	parse_authority(p, q, &d, &err);
	if (*q == '/') {
		size_t n = strcspn(q + 1, "?");
		d.db = decode(q + 1, n, &err);
		q += 1 + n;
	}
	if (err) {
		if (err == -EINVAL)
			snprintf(errbuf, errlen, "mysql: malformed DSN (" EXPECTED ")");
		else
			snprintf(errbuf, errlen, "mysql: out of memory");
		mysql_dsn_release(&d);
		return err;
	}
	if (*q == '?') {
		q++;
		while (*q) {
			size_t n = strcspn(q, "&");
			const char *eq = memchr(q, '=', n);
			if (eq && eq - q == 6 && strncmp(q, "socket", 6) == 0) {
				free(d.socket);
				d.socket = decode(eq + 1, n - 7, &err);
			} else if (n > 0) {
				snprintf(errbuf, errlen, "mysql: unknown DSN parameter \"%.*s\" (only socket= is known)",
					 (int)(eq ? (size_t)(eq - q) : n), q);
				mysql_dsn_release(&d);
				return -EINVAL;
			}
			q += n;
			if (*q == '&')
				q++;
		}
		if (err) {
			if (err == -EINVAL)
				snprintf(errbuf, errlen, "mysql: malformed socket= parameter in DSN");
			else
				snprintf(errbuf, errlen, "mysql: out of memory");
			mysql_dsn_release(&d);
			return err;
		}
	}
	*ret = d;
	return 0;
}

void mysql_dsn_list_release(struct mysql_dsn_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		mysql_dsn_release(&l->v[i]);
	free(l->v);
	*l = (struct mysql_dsn_list){ 0 };
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* The scheme of a DSN starts at p. */
static bool scheme_at(const char *p) { return strncmp(p, "mysql://", 8) == 0 || strncmp(p, "mariadb://", 10) == 0; }

/* The end of the entry that starts at p: the next comma followed (after
 * blanks) by a scheme, or the end of the string. */
static const char *entry_end(const char *p)
{
	for (const char *c = strchr(p, ','); c; c = strchr(c + 1, ',')) {
		const char *n = c + 1;
		while (is_blank(*n))
			n++;
		if (scheme_at(n))
			return c;
	}
	return p + strlen(p);
}

int mysql_dsn_list_parse(const char *dsn, struct mysql_dsn_list *ret, char *errbuf, size_t errlen)
{
	if (!dsn)
		return mysql_dsn_parse(dsn, NULL, errbuf, errlen); /* its message */
	size_t total = 0;
	for (const char *p = dsn;; p++) {
		p = entry_end(p);
		total++;
		if (!*p)
			break;
	}
	if (total > MYSQL_DSN_LIST_MAX) {
		snprintf(errbuf, errlen, "mysql: %zu DSNs in the list, at most %d", total, MYSQL_DSN_LIST_MAX);
		return -EINVAL;
	}
	struct mysql_dsn_list l = { .v = calloc(total, sizeof(*l.v)) };
	if (!l.v) {
		snprintf(errbuf, errlen, "mysql: out of memory");
		return -ENOMEM;
	}
	const char *p = dsn;
	for (size_t i = 0; i < total; i++) {
		while (is_blank(*p))
			p++;
		const char *end = entry_end(p), *trim = end;
		while (trim > p && is_blank(trim[-1]))
			trim--;
		char *one = strndup(p, (size_t)(trim - p));
		char err[256];
		int r = one ? mysql_dsn_parse(one, &l.v[i], err, sizeof(err)) : -ENOMEM;
		free(one);
		if (r < 0) {
			if (r == -ENOMEM)
				snprintf(errbuf, errlen, "mysql: out of memory");
			else if (total > 1)
				snprintf(errbuf, errlen, "%s (DSN %zu of %zu)", err, i + 1, total);
			else
				snprintf(errbuf, errlen, "%s", err);
			mysql_dsn_list_release(&l);
			return r;
		}
		l.n = i + 1;
		p = *end ? end + 1 : end;
	}
	*ret = l;
	return 0;
}
