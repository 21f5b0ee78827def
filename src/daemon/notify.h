/* notify.h — the daemon's side of systemd's service protocol, through
 * libsystemd's sd_notify(3): the unit is Type=notify.
 *
 *	READY=1      once the API answers and the platformstart task is in line
 *	             (notify_ready()), and again after a reload or a re-exec;
 *	STATUS=...   what the daemon does: "3 tasks running, 1 waiting" while
 *	             it serves (notify_task_counts(), once a second, only when
 *	             the text changed), "reloading the configuration", ...;
 *	RELOADING=1  while SIGHUP re-reads the config (ExecReload=);
 *	STOPPING=1   on SIGTERM/SIGINT;
 *	WATCHDOG=1   from the loop thread every half WatchdogSec, when the unit
 *	             sets it (notify_watchdog_interval_ms() > 0): a loop that
 *	             stops turning gets the daemon restarted.
 *
 * Outside systemd (no NOTIFY_SOCKET) every call does nothing. The
 * environment is left as it is: after an update's re-exec the new image
 * finds NOTIFY_SOCKET and WATCHDOG_USEC again (same pid).
 */
#pragma once

#include <stdint.h>

#include "store/store.h"

void notify_ready(const char *status);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_reloading(void);
void notify_stopping(const char *status);

/* Half of the watchdog timeout systemd asked for (WATCHDOG_USEC, for this
 * pid), in ms; 0 when there is no watchdog. */
uint64_t notify_watchdog_interval_ms(void);
void notify_watchdog(void);

/* STATUS= with the tasks that are running, waiting for locks and queued
 * (every host's, as GET /api/v1/status counts them), sent only when the
 * text differs from the last one sent. Loop thread only. */
void notify_task_counts(struct store *s);
