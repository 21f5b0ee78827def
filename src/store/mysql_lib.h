/* mysql_lib.h — the MariaDB client library, loaded when a MariaDB store is
 * opened (common/dlib.h).
 *
 * A box on SQLite or PostgreSQL never needs it. store_open() calls
 * mysql_lib_load() first (with a clear error when it fails), and every
 * other call takes a connection, statement or result that exists only
 * after that. */
#pragma once

#include <mysql.h>

#include "common/dlib.h"

/* clang-format off */
#define MYSQL_SYMBOLS(X) \
	X(mysql_close) \
	X(mysql_errno) \
	X(mysql_error) \
	X(mysql_fetch_row) \
	X(mysql_free_result) \
	X(mysql_get_socket) \
	X(mysql_get_ssl_cipher) \
	X(mysql_init) \
	X(mysql_options) \
	X(mysql_real_connect) \
	X(mysql_real_query) \
	X(mysql_stmt_affected_rows) \
	X(mysql_stmt_bind_param) \
	X(mysql_stmt_bind_result) \
	X(mysql_stmt_close) \
	X(mysql_stmt_errno) \
	X(mysql_stmt_error) \
	X(mysql_stmt_execute) \
	X(mysql_stmt_fetch) \
	X(mysql_stmt_fetch_column) \
	X(mysql_stmt_field_count) \
	X(mysql_stmt_free_result) \
	X(mysql_stmt_init) \
	X(mysql_stmt_num_rows) \
	X(mysql_stmt_param_count) \
	X(mysql_stmt_prepare) \
	X(mysql_stmt_reset) \
	X(mysql_stmt_store_result) \
	X(mysql_store_result) \
	X(mysql_server_init)
/* clang-format on */
MYSQL_SYMBOLS(DLIB_DECLARE)

/* 0, or -ELIBACC (mysql_lib_error() says why). */
int mysql_lib_load(void);
const char *mysql_lib_error(void);
