/* log.h — leveled logging for the daemon, the worker and the tools.
 *
 * Library code (store, locks, engine, ...) never logs: it returns a negative
 * errno and, where useful, a message. Only programs (boxd serve, the worker,
 * boxctl) call these. Output goes to stderr, one line per call, prefixed with
 * an ISO-8601 UTC timestamp, the level and the pid, so that a worker's task
 * log and the daemon's journal read the same way.
 *
 * One call is one line, whatever the arguments hold: log_msg() passes the
 * formatted message through log_escape(), so a user string (a URL with a
 * decoded %0a, an app id, an engine's error text) can neither start a
 * forged line nor send escape sequences to an operator's terminal.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Parse "error", "warn", "info", "debug". Returns the level or -EINVAL. */
int log_level_from_string(const char *s);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Copy `s` into buf (always NUL-terminated; cut at len - 1 bytes, never in
 * the middle of an escape) with every byte that could break or fake a log
 * line made visible: \n, \r and \t as such, other control characters,
 * DEL, the C1 controls (U+0080-U+009F) and bytes that are not well-formed
 * UTF-8 as \xHH. Valid UTF-8 text is copied as it is. Returns buf. */
char *log_escape(const char *s, char *buf, size_t len);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The prefix log_msg() starts each line with (timestamp, level, pid), for
 * a line written to a log by other means (task_outcome.c appends a record
 * to a task log). Returns its length, or -1 when buf is too small. */
int log_line_prefix(char *buf, size_t len, enum log_level level);

/* A line that cannot be written (a full disk under the task log) is kept
 * in memory (64 KiB at most; beyond that lines are counted) and written
 * before the next one once writing works again, followed by a count of the
 * lines lost, if any. log_flush() tries that without a new line: 0 when
 * nothing is left, else negative errno. */
int log_flush(void);

/* ---- the journal (log_journal.c) -------------------------------------------
 *
 * When stderr is the journal (systemd's JOURNAL_STREAM names it), every line
 * becomes a journal entry with its priority and the fields TASK_ID=,
 * APP_ID= and LOCK= instead of a text line; a worker of such a daemon
 * (BOXD_LOG_JOURNAL=1) writes its task log as before and copies each line
 * to the journal with the same fields. Otherwise nothing changes. */

/* Whether this process's lines go to the journal instead of stderr. */
bool log_to_journal(void);

/* The task this process works for (a worker): its journal entries carry
 * TASK_ID= and APP_ID= (app_id may be NULL). Messages of other processes
 * that start with "task N" carry TASK_ID=N. */
void log_context_task(long long task_id, const char *app_id);

/* For log_msg(): send the (escaped) message to the journal if this
 * process logs there; true when stderr must not get it as well. */
bool log_journal_line(enum log_level level, const char *message);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
