/* progress.c — see progress.h. */
#include "progress.h"

#include <stdlib.h>
#include <string.h>

#include "table.h"

#define BAR_WIDTH 20

void progress_init(struct progress *p, FILE *out, int64_t task_id)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	p->tty = term_is_tty(out);
	p->task_id = task_id;
}

void progress_render(char *buf, size_t len, size_t width, int64_t task_id, const char *type, const char *state,
		     int percent, const char *text)
{
	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	char bar[BAR_WIDTH + 1];
	int filled = percent * BAR_WIDTH / 100;
	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	char line[1024];
	snprintf(line, sizeof(line), "task %lld %s  [%s] %3d%%  %s%s%s", (long long)task_id, type, bar, percent, state,
		 text && *text ? "  " : "", text ? text : "");
	utf8_fit(line, width, buf, len);
}

void progress_update(struct progress *p, const char *type, const char *state, int percent, const char *text)
{
	if (!text)
		text = "";
	if (p->tty) {
		char line[1024];
		/* One column less than the terminal: writing the last column
		 * wraps on some terminals, and "\r" then redraws the wrong line. */
		size_t width = term_width(p->out);
		progress_render(line, sizeof(line), width > 1 ? width - 1 : 1, p->task_id, type, state, percent, text);
		if (p->drawn && p->last_line && strcmp(p->last_line, line) == 0)
			return;
		free(p->last_line);
		p->last_line = strdup(line);
		fprintf(p->out, "\r%s\033[K", line);
		fflush(p->out);
		p->drawn = true;
		return;
	}
	if (p->last_state && strcmp(p->last_state, state) == 0 && p->last_text && strcmp(p->last_text, text) == 0)
		return;
	free(p->last_state);
	free(p->last_text);
	p->last_state = strdup(state);
	p->last_text = strdup(text);
	if (strcmp(state, "running") == 0)
		fprintf(p->out, "task %lld: %s %d%%%s%s\n", (long long)p->task_id, state, percent, *text ? ": " : "", text);
	else
		fprintf(p->out, "task %lld: %s%s%s\n", (long long)p->task_id, state, *text ? ": " : "", text);
	fflush(p->out);
}

void progress_end(struct progress *p)
{
	if (p->tty && p->drawn) {
		fputc('\n', p->out);
		fflush(p->out);
	}
	p->drawn = false;
}

void progress_release(struct progress *p)
{
	if (!p)
		return;
	free(p->last_state);
	free(p->last_text);
	free(p->last_line);
	p->last_state = p->last_text = p->last_line = NULL;
}
