#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_LVL_INFO;

int log_level_from_string(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

/* Length of the well-formed UTF-8 sequence at p (2-4), or 0 when the bytes
 * there are not one (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

char *log_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	if (len == 0)
		return buf;
	while (*p) {
		char esc[16];
		size_t n = 0, take = 1;
		size_t seq = *p >= 0x80 ? utf8_seq_len(p) : 0;
		/* U+0080-U+009F (C2 80-C2 9F): C1 controls, e.g. CSI. */
		bool c1 = seq == 2 && p[0] == 0xc2 && p[1] <= 0x9f;
		if (*p == '\n' || *p == '\r' || *p == '\t') {
			esc[n++] = '\\';
			esc[n++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
		} else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && (seq == 0 || c1))) {
			esc[n++] = '\\';
			esc[n++] = 'x';
			esc[n++] = hex[*p >> 4];
			esc[n++] = hex[*p & 15];
		} else {
			take = seq ? seq : 1;
			memcpy(esc, p, take);
			n = take;
		}
		if (o + n >= len)
			break;
		memcpy(buf + o, esc, n);
		o += n;
		p += take;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- output --------------------------------------------------------------
 *
 * A worker's stderr is its task log, in the state dir; when that disk is
 * full a write fails and the line would be lost without a trace. Lines that
 * cannot be written are kept (up to PENDING_MAX bytes) and written before
 * the next line once writing works again; lines beyond that are counted,
 * and the count is written then. log_flush() tries again without a new
 * line (the worker does before it exits). */

#define PENDING_MAX (64 * 1024)

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER; /* guards the four below */
static char pending[PENDING_MAX];
static size_t pending_len;
static unsigned long dropped;
static int dropped_errno;

/* Write all of buf; on failure the unwritten rest stays in *len (and
 * errno says why). */
static bool write_all(const char *buf, size_t *len)
{
	size_t off = 0;
	while (off < *len) {
		ssize_t n = write(STDERR_FILENO, buf + off, *len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			memmove((char *)buf, buf + off, *len - off);
			*len -= off;
			return false;
		}
		off += (size_t)n;
	}
	*len = 0;
	return true;
}

static int prefix(char *buf, size_t len, const char *tag)
{
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(buf, len, "%s.%03ldZ %-5s [%d] ", stamp, (long)(tv.tv_usec / 1000), tag, (int)getpid());
}

int log_line_prefix(char *buf, size_t len, enum log_level level)
{
	static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	if ((unsigned)level > LOG_LVL_DEBUG)
		level = LOG_LVL_INFO;
	int n = prefix(buf, len, tags[level]);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* Called with out_mu held. */
static bool flush_locked(void)
{
	if (pending_len && !write_all(pending, &pending_len))
		return false;
	if (dropped) {
		char note[256];
		int n = prefix(note, sizeof(note), "WARN");
		n += snprintf(note + n, sizeof(note) - (size_t)n,
			      "%lu log line(s) could not be written here (%s) and are lost\n", dropped,
			      strerror(dropped_errno));
		size_t len = (size_t)n < sizeof(note) ? (size_t)n : sizeof(note) - 1;
		if (!write_all(note, &len))
			return false;
		dropped = 0;
	}
	return true;
}

static void emit(const char *line, size_t n)
{
	pthread_mutex_lock(&out_mu);
	char copy[4096];
	size_t len = n < sizeof(copy) ? n : sizeof(copy);
	memcpy(copy, line, len);
	if (!flush_locked() || !write_all(copy, &len)) {
		if (pending_len + len <= sizeof(pending)) {
			memcpy(pending + pending_len, copy, len);
			pending_len += len;
		} else {
			dropped++;
			dropped_errno = errno;
		}
	}
	pthread_mutex_unlock(&out_mu);
}

int log_flush(void)
{
	pthread_mutex_lock(&out_mu);
	int r = flush_locked() ? 0 : -(errno ? errno : EIO);
	pthread_mutex_unlock(&out_mu);
	return r;
}

/* Atomic: a reload (SIGHUP) changes it while API threads log. */
void log_set_level(enum log_level level) { __atomic_store_n(&current_level, level, __ATOMIC_RELAXED); }
enum log_level log_get_level(void) { return __atomic_load_n(&current_level, __ATOMIC_RELAXED); }

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	if (level > log_get_level())
		return;

	/* Build the whole line first so concurrent writers (API threads) do not
	 * interleave halves of lines. */
	char msg[2048], line[4096];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	int n = prefix(line, sizeof(line), tags[level]);
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		return;
	log_escape(msg, line + n, sizeof(line) - 1 - (size_t)n);
	if (log_journal_line(level, line + n))
		return;
	n += (int)strlen(line + n);
	line[n++] = '\n';
	emit(line, (size_t)n);
}
