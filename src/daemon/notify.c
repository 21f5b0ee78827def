/* notify.c — sd_notify(3) for the daemon; see notify.h. */
#include "notify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/systemd_lib.h"
#include "tasks/task.h"

static char last_status[256];

/* Whether there is a systemd to tell: sd_notify() does nothing without
 * NOTIFY_SOCKET, so a daemon not under systemd never loads libsystemd. */
static bool notify_loaded(void)
{
	static bool warned;
	if (!getenv("NOTIFY_SOCKET"))
		return false;
	if (systemd_lib_load() == 0)
		return true;
	if (!warned)
		log_warn("cannot tell systemd the daemon's state: %s", systemd_lib_error());
	warned = true;
	return false;
}

static void send_status(const char *extra, const char *status)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "%s%s%s", extra ? extra : "", extra && status ? "\n" : "",
		 status ? "STATUS=" : "");
	if (status) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, "%s", status);
		snprintf(last_status, sizeof(last_status), "%s", status);
	}
	if (notify_loaded())
		sym_sd_notify(0, msg);
}

void notify_ready(const char *status) { send_status("READY=1", status); }
void notify_reloading(void) { send_status("RELOADING=1", "reloading the configuration"); }
void notify_stopping(const char *status) { send_status("STOPPING=1", status); }

void notify_status(const char *fmt, ...)
{
	char status[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	send_status(NULL, status);
}

uint64_t notify_watchdog_interval_ms(void)
{
	uint64_t usec = 0;
	if (!notify_loaded() || sym_sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	uint64_t ms = usec / 2000;
	return ms > 0 ? ms : 1;
}

void notify_watchdog(void)
{
	if (notify_loaded())
		sym_sd_notify(0, "WATCHDOG=1");
}

static const char *plural(int64_t n, const char *one, const char *many) { return n == 1 ? one : many; }

void notify_task_counts(struct store *s)
{
	if (!getenv("NOTIFY_SOCKET"))
		return; /* not under systemd: spare the query */
	int64_t counts[6] = { 0 };
	for (enum task_state state = TASK_QUEUED; state <= TASK_RUNNING; state++)
		if (task_count_active(s, &(struct task_match){ .only_state = true, .state = state }, &counts[state]) < 0)
			return;
	char status[256];
	int n = snprintf(status, sizeof(status), "%lld %s running, %lld waiting", (long long)counts[TASK_RUNNING],
			 plural(counts[TASK_RUNNING], "task", "tasks"), (long long)counts[TASK_WAITING]);
	if (counts[TASK_QUEUED] > 0 && n > 0 && (size_t)n < sizeof(status))
		snprintf(status + n, sizeof(status) - (size_t)n, ", %lld queued", (long long)counts[TASK_QUEUED]);
	if (strcmp(status, last_status) != 0)
		send_status(NULL, status);
}
