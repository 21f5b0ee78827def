/* systemd_lib.c — see systemd_lib.h. */
#include "systemd_lib.h"

SYSTEMD_SYMBOLS(DLIB_DEFINE)

static const struct dlib_symbol symbols[] = { SYSTEMD_SYMBOLS(DLIB_SYMBOL) };
static struct dlib lib = DLIB_INIT("libsystemd.so.0", symbols);

int systemd_lib_load(void) { return dlib_load(&lib); }
const char *systemd_lib_error(void) { return dlib_error(&lib); }
