#include "log.h"

#include <errno.h>
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

void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	if (level > current_level)
		return;

	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	/* Build the whole line first so concurrent writers (API threads) do not
	 * interleave halves of lines. */
	char msg[2048], line[4096];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	int n = snprintf(line, sizeof(line), "%s.%03ldZ %-5s [%d] ", stamp, (long)(tv.tv_usec / 1000), tags[level],
			 (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		return;
	log_escape(msg, line + n, sizeof(line) - 1 - (size_t)n);
	n += (int)strlen(line + n);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
