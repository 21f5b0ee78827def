/* table.c — see table.h. */
#include "table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void table_init(struct table *t, size_t n_cols, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->n_cols = n_cols;
	t->cells = calloc(n_cols, sizeof(char *));
	if (!t->cells)
		return;
	for (size_t i = 0; i < n_cols; i++)
		t->cells[i] = strdup(header[i] ? header[i] : "");
}

void table_add(struct table *t, const char *const *row)
{
	if (!t->cells)
		return;
	char **grown = realloc(t->cells, (t->n_rows + 2) * t->n_cols * sizeof(char *));
	if (!grown)
		return;
	t->cells = grown;
	char **dst = t->cells + (t->n_rows + 1) * t->n_cols;
	for (size_t i = 0; i < t->n_cols; i++)
		dst[i] = strdup(row[i] ? row[i] : "");
	t->n_rows++;
}

size_t table_rows(const struct table *t) { return t->n_rows; }

static size_t col_width(const struct table *t, size_t col)
{
	size_t w = 0;
	for (size_t r = 0; r <= t->n_rows && t->cells; r++) {
		const char *c = t->cells[r * t->n_cols + col];
		size_t n = c ? utf8_len(c) : 0;
		if (n > w)
			w = n;
	}
	return w;
}

size_t table_prefix_width(const struct table *t)
{
	size_t w = 0;
	for (size_t c = 0; c + 1 < t->n_cols; c++)
		w += col_width(t, c) + 2;
	return w;
}

void table_print(const struct table *t, FILE *f, size_t last_max)
{
	if (!t->cells)
		return;
	size_t widths[32] = { 0 };
	size_t n = t->n_cols < 32 ? t->n_cols : 32;
	for (size_t c = 0; c < n; c++)
		widths[c] = col_width(t, c);
	for (size_t r = 0; r <= t->n_rows; r++) {
		for (size_t c = 0; c < n; c++) {
			const char *cell = t->cells[r * t->n_cols + c];
			if (!cell)
				cell = "";
			if (c + 1 < n) {
				fputs(cell, f);
				for (size_t pad = utf8_len(cell); pad < widths[c] + 2; pad++)
					fputc(' ', f);
			} else {
				char buf[4096];
				utf8_fit(cell, last_max ? last_max : sizeof(buf), buf, sizeof(buf));
				fputs(buf, f);
			}
		}
		fputc('\n', f);
	}
}

void table_release(struct table *t)
{
	if (!t || !t->cells)
		return;
	for (size_t i = 0; i < (t->n_rows + 1) * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

void table_print_fit(const struct table *t, FILE *f, size_t last_max)
{
	if (term_is_tty(f)) {
		size_t width = term_width(f), prefix = table_prefix_width(t);
		last_max = width > prefix + 10 ? width - prefix - 1 : 10;
	}
	table_print(t, f, last_max);
}

bool term_is_tty(FILE *f) { return isatty(fileno(f)) == 1; }

size_t term_width(FILE *f)
{
	struct winsize ws;
	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *cols = getenv("COLUMNS");
	long n = cols ? strtol(cols, NULL, 10) : 0;
	return n > 0 && n < 10000 ? (size_t)n : 80;
}

size_t utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

void utf8_fit(const char *s, size_t max, char *buf, size_t len)
{
	static const char ellipsis[] = "…"; /* 3 bytes, 1 character */
	if (len < 8) { /* room for at least one character and the ellipsis */
		if (len)
			buf[0] = '\0';
		return;
	}
	size_t chars = utf8_len(s), keep = chars <= max ? chars : (max > 0 ? max - 1 : 0);
	size_t o = 0, seen = 0;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		bool starts_char = (ch & 0xC0) != 0x80;
		if (starts_char && seen++ == keep)
			break;
		if (o + 1 >= len - sizeof(ellipsis))
			break;
		buf[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	/* Do not leave half a character behind if buf ran out. */
	while (o > 0 && ((unsigned char)buf[o - 1] & 0x80)) {
		size_t start = o - 1;
		while (start > 0 && ((unsigned char)buf[start] & 0xC0) == 0x80)
			start--;
		unsigned char lead = (unsigned char)buf[start];
		size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
		if (o - start >= need)
			break;
		o = start;
	}
	if (chars > keep && max > 0) {
		memcpy(buf + o, ellipsis, sizeof(ellipsis) - 1);
		o += sizeof(ellipsis) - 1;
	}
	buf[o] = '\0';
}
