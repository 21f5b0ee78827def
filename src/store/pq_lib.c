/* pq_lib.c — see pq_lib.h. */
#include "pq_lib.h"

PQ_SYMBOLS(DLIB_DEFINE)

static const struct dlib_symbol symbols[] = { PQ_SYMBOLS(DLIB_SYMBOL) };
static struct dlib lib = DLIB_INIT("libpq.so.5", symbols);

int pq_lib_load(void) { return dlib_load(&lib); }
const char *pq_lib_error(void) { return dlib_error(&lib); }
