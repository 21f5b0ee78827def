/* mysql_lib.c — see mysql_lib.h. */
#include "mysql_lib.h"

MYSQL_SYMBOLS(DLIB_DEFINE)

static const struct dlib_symbol symbols[] = { MYSQL_SYMBOLS(DLIB_SYMBOL) };
static struct dlib lib = DLIB_INIT("libmariadb.so.3", symbols);

int mysql_lib_load(void) { return dlib_load(&lib); }
const char *mysql_lib_error(void) { return dlib_error(&lib); }
