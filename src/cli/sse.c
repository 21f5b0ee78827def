/* sse.c — see sse.h. */
#include "sse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"

void sse_init(struct sse_parser *p, sse_data_fn on_data, void *userdata)
{
	memset(p, 0, sizeof(*p));
	p->on_data = on_data;
	p->userdata = userdata;
}

void sse_release(struct sse_parser *p)
{
	if (!p)
		return;
	free(p->line);
	p->line = NULL;
	p->len = p->cap = 0;
}

/* One complete line, without its line ending. */
static int handle_line(struct sse_parser *p, char *line, size_t n)
{
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0) {
		p->event[0] = '\0'; /* the event ends */
		return 0;
	}
	if (line[0] == ':')
		return 0;
	char *colon = memchr(line, ':', n);
	const char *value = "";
	if (colon) {
		*colon = '\0';
		value = colon + 1;
		if (*value == ' ')
			value++; /* one space after the colon is not part of the value */
	}
	if (strcmp(line, "event") == 0) {
		snprintf(p->event, sizeof(p->event), "%s", value);
		return 0;
	}
	if (strcmp(line, "data") == 0)
		return p->on_data(p->event, value, p->userdata);
	return 0;
}

int sse_feed(struct sse_parser *p, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ARRAY_GROW(p->line, p->len + 2, p->cap) < 0)
			return -ENOMEM;
		if (data[i] != '\n') {
			p->line[p->len++] = data[i];
			continue;
		}
		p->line[p->len] = '\0';
		size_t len = p->len;
		p->len = 0;
		int r = handle_line(p, p->line, len);
		if (r < 0)
			return r;
	}
	return 0;
}
