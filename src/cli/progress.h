/* progress.h — the live view of one task while boxctl waits for it.
 *
 * On a terminal it is one line redrawn in place with "\r" (cut to the
 * terminal's width so that it never wraps):
 *
 *	task 5 hold  [##########..........]  50%  running  Holding locks for 30.0s
 *
 * Elsewhere (a pipe, a log file) it prints a plain line only when the state
 * or the text changes, so that a log stays short:
 *
 *	task 5: waiting: waiting for app:x (held by task 4)
 *	task 5: running 0%: Holding locks for 30.0s
 *
 *	struct progress p;
 *	progress_init(&p, stdout, 5);
 *	progress_update(&p, "hold", "running", 50, "Holding locks for 30.0s");  // repeatedly
 *	progress_end(&p);   // ends the line on a terminal
 *	progress_release(&p);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct progress {
	FILE *out;
	bool tty;
	int64_t task_id;
	bool drawn;       /* a TTY line is on screen and not ended */
	char *last_state; /* for plain output: what was printed last */
	char *last_text;
	char *last_line;  /* for a TTY: the line on screen, not redrawn if the same */
};

void progress_init(struct progress *p, FILE *out, int64_t task_id);
void progress_update(struct progress *p, const char *type, const char *state, int percent, const char *text);

/* End the redrawn line (a no-op for plain output or if nothing is drawn);
 * call before printing anything else. */
void progress_end(struct progress *p);
void progress_release(struct progress *p);

/* Render the terminal line into buf, at most `width` characters (exposed for
 * tests and reuse). */
void progress_render(char *buf, size_t len, size_t width, int64_t task_id, const char *type, const char *state,
		     int percent, const char *text);
