/* systemd_lib.h — libsystemd, loaded when first needed (dlib.h).
 *
 * A daemon not started by systemd (make run, the tests, the benchmarks)
 * never loads it: there is nothing to notify and no journal to write to.
 * Under systemd the daemon loads it at its first notification or journal
 * line. */
#pragma once

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "dlib.h"

#define SYSTEMD_SYMBOLS(X) X(sd_notify) X(sd_watchdog_enabled) X(sd_journal_sendv)
SYSTEMD_SYMBOLS(DLIB_DECLARE)

/* 0, or -ELIBACC (systemd_lib_error() says why). */
int systemd_lib_load(void);
const char *systemd_lib_error(void);
