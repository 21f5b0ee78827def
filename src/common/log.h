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

/* A line that cannot be written (a full disk under the task log) is kept
 * in memory (64 KiB at most; beyond that lines are counted) and written
 * before the next one once writing works again, followed by a count of the
 * lines lost, if any. log_flush() tries that without a new line: 0 when
 * nothing is left, else negative errno. */
int log_flush(void);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
