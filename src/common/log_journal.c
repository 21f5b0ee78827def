/* log_journal.c — log lines as journal entries with fields (see log.h).
 *
 * systemd connects a service's stderr to the journal and says so in
 * JOURNAL_STREAM ("DEV:INODE" of that stream). When stderr is that stream,
 * a line sent as text would arrive as one string at priority 6; sent with
 * sd_journal_sendv() it keeps its priority and gets fields that journalctl
 * can select on:
 *
 *	PRIORITY     3 error, 4 warn, 6 info, 7 debug
 *	MESSAGE      the message (escaped as on stderr; no timestamp, level or
 *	             pid prefix: the journal records those itself)
 *	SYSLOG_IDENTIFIER=boxd
 *	TASK_ID      the worker's own task (log_context_task()), else the N of
 *	             a message that starts with "task N" or "update task N" —
 *	             the form every message about a task takes
 *	APP_ID       the worker's task's app
 *	LOCK         the NAME of "Waiting for NAME (held by ...)"
 *
 * Workers write their task log (their stderr is the log file) and, when
 * their daemon logs to the journal (it sets BOXD_LOG_JOURNAL=1 for them),
 * copy every line to the journal too, so that `journalctl -u boxd
 * TASK_ID=42` shows the daemon's and the worker's lines about task 42.
 * A journal that cannot be reached (sd_journal_sendv() fails) costs
 * nothing: the daemon's line then goes to stderr as text.
 */
#include "log.h"
#include "systemd_lib.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum mode { MODE_OFF, MODE_ONLY, MODE_COPY };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static enum mode mode;
static pthread_mutex_t ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static char ctx_task[32], ctx_app[160];

static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void detect(void)
{
	if (stderr_is_journal())
		mode = MODE_ONLY;
	else if (getenv("BOXD_LOG_JOURNAL") && strcmp(getenv("BOXD_LOG_JOURNAL"), "1") == 0)
		mode = MODE_COPY;
	else
		mode = MODE_OFF;
	/* Without libsystemd the lines stay text on stderr, which systemd
	 * still puts in the journal. */
	if (mode != MODE_OFF && systemd_lib_load() < 0) {
		fprintf(stderr, "boxd: journal fields are off: %s\n", systemd_lib_error());
		mode = MODE_OFF;
	}
}

bool log_to_journal(void)
{
	pthread_once(&once, detect);
	return mode == MODE_ONLY;
}

void log_context_task(long long task_id, const char *app_id)
{
	pthread_mutex_lock(&ctx_mu);
	snprintf(ctx_task, sizeof(ctx_task), "%lld", task_id);
	snprintf(ctx_app, sizeof(ctx_app), "%s", app_id ? app_id : "");
	pthread_mutex_unlock(&ctx_mu);
}

/* The N of a leading "task N" or "update task N", or "" . */
static void task_of_message(const char *m, char *out, size_t len)
{
	out[0] = '\0';
	if (strncmp(m, "update ", 7) == 0)
		m += 7;
	if (strncmp(m, "task ", 5) != 0)
		return;
	m += 5;
	size_t n = strspn(m, "0123456789");
	if (n == 0 || n >= len || (m[n] && m[n] != ':' && m[n] != ' ' && m[n] != ','))
		return;
	memcpy(out, m, n);
	out[n] = '\0';
}

/* The NAME of "Waiting for NAME (", or "". */
static void lock_of_message(const char *m, char *out, size_t len)
{
	out[0] = '\0';
	const char *p = strstr(m, "Waiting for ");
	if (!p)
		return;
	p += 12;
	size_t n = strcspn(p, " ");
	if (n == 0 || n >= len || strncmp(p + n, " (", 2) != 0)
		return;
	memcpy(out, p, n);
	out[n] = '\0';
}

bool log_journal_line(enum log_level level, const char *message)
{
	pthread_once(&once, detect);
	if (mode == MODE_OFF)
		return false;
	static const char *const prio[] = { "PRIORITY=3", "PRIORITY=4", "PRIORITY=6", "PRIORITY=7" };
	char task[32], app[160], lock[160];
	pthread_mutex_lock(&ctx_mu);
	snprintf(task, sizeof(task), "%s", ctx_task);
	snprintf(app, sizeof(app), "%s", ctx_app);
	pthread_mutex_unlock(&ctx_mu);
	if (!*task)
		task_of_message(message, task, sizeof(task));
	lock_of_message(message, lock, sizeof(lock));

	char f_msg[4200], f_task[48], f_app[180], f_lock[180];
	struct iovec iov[7];
	int n = 0;
	snprintf(f_msg, sizeof(f_msg), "MESSAGE=%s", message);
	iov[n++] = (struct iovec){ f_msg, strlen(f_msg) };
	iov[n++] = (struct iovec){ (void *)prio[level], strlen(prio[level]) };
	iov[n++] = (struct iovec){ "SYSLOG_IDENTIFIER=boxd", 22 };
	if (*task) {
		snprintf(f_task, sizeof(f_task), "TASK_ID=%s", task);
		iov[n++] = (struct iovec){ f_task, strlen(f_task) };
	}
	if (*app) {
		snprintf(f_app, sizeof(f_app), "APP_ID=%s", app);
		iov[n++] = (struct iovec){ f_app, strlen(f_app) };
	}
	if (*lock) {
		snprintf(f_lock, sizeof(f_lock), "LOCK=%s", lock);
		iov[n++] = (struct iovec){ f_lock, strlen(f_lock) };
	}
	int r = sym_sd_journal_sendv(iov, n);
	/* Only the daemon whose stderr is the journal skips the text line, and
	 * only when the entry went out. */
	return mode == MODE_ONLY && r >= 0;
}
