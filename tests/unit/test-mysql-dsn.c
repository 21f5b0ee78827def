/* test-mysql-dsn.c — the MariaDB DSN parser (store/mysql_dsn.h): every
 * part, percent-decoding, IPv6 literals, empty and absent parts, and what
 * it refuses (with a message that does not contain the password). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/mysql_dsn.h"

static struct mysql_dsn parse_ok(const char *text)
{
	struct mysql_dsn d;
	char err[256] = "";
	int r = mysql_dsn_parse(text, &d, err, sizeof(err));
	if (r != 0)
		fail_msg("%s: %d %s", text, r, err);
	return d;
}

static void assert_refused(const char *text, const char *why)
{
	struct mysql_dsn d = { .port = 4242 };
	char err[256] = "";
	assert_int_equal(mysql_dsn_parse(text, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, why));
	assert_null(strstr(err, "secret"));
	assert_int_equal(d.port, 4242); /* untouched */
	assert_null(d.user);
}

#define assert_str_or_null(a, b) ((b) ? assert_string_equal(a, b) : assert_null(a))

static void test_every_part(void **state)
{
	(void)state;
	struct mysql_dsn d = parse_ok("mysql://boxd:secret@db.example:3307/boxd?socket=/run/mysqld/mysqld.sock");
	assert_string_equal(d.user, "boxd");
	assert_string_equal(d.pass, "secret");
	assert_string_equal(d.host, "db.example");
	assert_int_equal(d.port, 3307);
	assert_string_equal(d.db, "boxd");
	assert_string_equal(d.socket, "/run/mysqld/mysqld.sock");
	mysql_dsn_release(&d);
	mysql_dsn_release(&d); /* a released struct is a zeroed one */
}

static void test_absent_and_empty_parts(void **state)
{
	(void)state;
	static const struct {
		const char *dsn, *user, *pass, *host, *db, *socket;
		unsigned port;
	} cases[] = {
		{ "mysql://", NULL, NULL, NULL, NULL, NULL, 0 },
		{ "mariadb://localhost", NULL, NULL, "localhost", NULL, NULL, 0 },
		{ "mysql://root@localhost/?socket=/tmp/s", "root", NULL, "localhost", NULL, "/tmp/s", 0 },
		{ "mysql://u:@h/d", "u", "", "h", "d", NULL, 0 },          /* empty password */
		{ "mysql://u@h/d", "u", NULL, "h", "d", NULL, 0 },         /* no password */
		{ "mysql://:3306/d", NULL, NULL, NULL, "d", NULL, 3306 },
		{ "mysql://[::1]:3306/d", NULL, NULL, "::1", "d", NULL, 3306 },
		{ "mysql://[fe80::1%25eth0]", NULL, NULL, "fe80::1%eth0", NULL, NULL, 0 },
		{ "mysql://h/d?", NULL, NULL, "h", "d", NULL, 0 },
		{ "mysql://h?socket=/a&socket=/b", NULL, NULL, "h", NULL, "/b", 0 }, /* the last one */
		/* Percent-encoding; the last '@' ends the user info. */
		{ "mysql://b%6Fxd:p%40ss%2Fw%3Ard@h/my%20db", "boxd", "p@ss/w:rd", "h", "my db", NULL, 0 },
		{ "mysql://u:p@ss@h", "u", "p@ss", "h", NULL, NULL, 0 },
		{ "mysql://h:65535", NULL, NULL, "h", NULL, NULL, 65535 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mysql_dsn d = parse_ok(cases[i].dsn);
		print_message("%s\n", cases[i].dsn);
		assert_str_or_null(d.user, cases[i].user);
		assert_str_or_null(d.pass, cases[i].pass);
		assert_str_or_null(d.host, cases[i].host);
		assert_str_or_null(d.db, cases[i].db);
		assert_str_or_null(d.socket, cases[i].socket);
		assert_int_equal(d.port, cases[i].port);
		mysql_dsn_release(&d);
	}
}

static void test_refused(void **state)
{
	(void)state;
	assert_refused("", "no DSN given");
	assert_refused(NULL, "no DSN given");
	assert_refused("postgresql://h/d", "must start with mysql://");
	assert_refused("MYSQL://h/d", "must start with mysql://");
	assert_refused("mysql://boxd:secret@h:0/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@h:65536/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@h:+80/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@h: 80/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@h:/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@h:80x/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@[::1/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@[::1]x/d", "malformed DSN");
	assert_refused("mysql://boxd:sec%2ret@h/d", "malformed DSN");
	assert_refused("mysql://boxd:secret@h/d%4", "malformed DSN");
	/* A NUL would cut the value short: "boxd%00evil" is not "boxd". */
	assert_refused("mysql://boxd%00evil:secret@h/d", "malformed DSN");
	assert_refused("mysql://h/d?socket=%zz", "malformed socket=");
	assert_refused("mysql://boxd:secret@h/d?sslmode=require", "unknown DSN parameter \"sslmode\"");
	assert_refused("mysql://h/d?socket", "unknown DSN parameter \"socket\"");
}

/* A list: the nodes of a Galera cluster, tried in order. */
static void test_list(void **state)
{
	(void)state;
	struct mysql_dsn_list l;
	char err[256] = "";
	assert_int_equal(mysql_dsn_list_parse("mysql://u:secret@db1:3306/boxd,mysql://u:secret@db2/boxd, \n"
					      "  mariadb://u@localhost/boxd?socket=/run/n3.sock  ",
					      &l, err, sizeof(err)),
			 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].host, "db1");
	assert_int_equal(l.v[0].port, 3306);
	assert_string_equal(l.v[0].pass, "secret");
	assert_string_equal(l.v[1].host, "db2");
	assert_int_equal(l.v[1].port, 0);
	assert_string_equal(l.v[1].db, "boxd");
	assert_null(l.v[2].pass);
	assert_string_equal(l.v[2].socket, "/run/n3.sock");
	mysql_dsn_list_release(&l);
	mysql_dsn_list_release(&l); /* zeroed */

	/* One DSN is a list of one; a comma that no scheme follows stays in
	 * the DSN (a password "a,b" needs no encoding). */
	assert_int_equal(mysql_dsn_list_parse("mysql://u:a,b@h/d", &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].pass, "a,b");
	mysql_dsn_list_release(&l);
	assert_int_equal(mysql_dsn_list_parse("mysql://u:x,mysql%3A%2F%2F@h/d", &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].pass, "x,mysql://");
	mysql_dsn_list_release(&l);
}

static void assert_list_refused(const char *text, const char *why)
{
	struct mysql_dsn_list l = { .n = 42 };
	char err[256] = "";
	assert_int_equal(mysql_dsn_list_parse(text, &l, err, sizeof(err)), -EINVAL);
	print_message("%s -> %s\n", text, err);
	assert_non_null(strstr(err, why));
	assert_null(strstr(err, "secret"));
	assert_int_equal(l.n, 42); /* untouched */
	assert_null(l.v);
}

static void test_list_refused(void **state)
{
	(void)state;
	assert_list_refused(NULL, "no DSN given");
	assert_list_refused("", "no DSN given");
	/* Which entry is wrong, without its password. */
	assert_list_refused("mysql://u:secret@h1/d,mysql://u:secret@h2:99999/d", "malformed DSN");
	assert_list_refused("mysql://u:secret@h1/d,mysql://u:secret@h2:99999/d", "(DSN 2 of 2)");
	assert_list_refused("mysql://u:secret@h1/d?ssl=1, mysql://h2/d", "(DSN 1 of 2)");
	assert_list_refused("mysql://h1/d, mysql://h2/d, mysql://h3/d?x=y", "unknown DSN parameter \"x\"");
	/* A separator needs an entry on both sides. */
	assert_list_refused(",mysql://h2/d", "no DSN given (e.g. mysql://user:pass@host/dbname?socket=/path) (DSN 1 of 2)");
	char many[2048] = "";
	for (int i = 0; i <= MYSQL_DSN_LIST_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%smysql://h%d/d", i ? "," : "", i);
	assert_list_refused(many, "at most 16");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_part),
		cmocka_unit_test(test_absent_and_empty_parts),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
