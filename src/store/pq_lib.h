/* pq_lib.h — libpq, loaded when a PostgreSQL store is opened
 * (common/dlib.h).
 *
 * libpq brings Kerberos, LDAP, SASL and OpenSSL's TLS into a process; a
 * box on SQLite or MariaDB never needs them. store_open() and
 * store_db_key_of() call pq_lib_load() first (with a clear error when it
 * fails), and every other call takes a connection or result that exists
 * only after that. */
#pragma once

#include <libpq-fe.h>

#include "common/dlib.h"

/* clang-format off */
#define PQ_SYMBOLS(X) \
	X(PQclear) \
	X(PQcmdStatus) \
	X(PQcmdTuples) \
	X(PQconnectdbParams) \
	X(PQconninfoFree) \
	X(PQconninfoParse) \
	X(PQconsumeInput) \
	X(PQerrorMessage) \
	X(PQexec) \
	X(PQfinish) \
	X(PQfreemem) \
	X(PQftype) \
	X(PQgetResult) \
	X(PQgetisnull) \
	X(PQgetvalue) \
	X(PQhost) \
	X(PQhostaddr) \
	X(PQisBusy) \
	X(PQnfields) \
	X(PQnotifies) \
	X(PQntuples) \
	X(PQpingParams) \
	X(PQport) \
	X(PQreset) \
	X(PQresultErrorField) \
	X(PQresultStatus) \
	X(PQsendPrepare) \
	X(PQsendQuery) \
	X(PQsendQueryParams) \
	X(PQsendQueryPrepared) \
	X(PQsetClientEncoding) \
	X(PQsetNoticeReceiver) \
	X(PQsocket) \
	X(PQstatus)
/* clang-format on */
PQ_SYMBOLS(DLIB_DECLARE)

/* 0, or -ELIBACC (pq_lib_error() says why). */
int pq_lib_load(void);
const char *pq_lib_error(void);
