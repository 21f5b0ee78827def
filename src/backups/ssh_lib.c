/* ssh_lib.c — see ssh_lib.h. */
#include "ssh_lib.h"

SSH_SYMBOLS(DLIB_DEFINE)

static const struct dlib_symbol symbols[] = { SSH_SYMBOLS(DLIB_SYMBOL) };
static struct dlib lib = DLIB_INIT("libssh.so.4", symbols);

int ssh_lib_load(void) { return dlib_load(&lib); }
const char *ssh_lib_error(void) { return dlib_error(&lib); }
