/* table.h — column tables for people, and the terminal facts they need.
 *
 *	struct table t;
 *	table_init(&t, 3, (const char *[]){ "ID", "STATE", "MESSAGE" });
 *	table_add(&t, (const char *[]){ "5", "running", "Holding locks" });
 *	table_print(&t, stdout, 60);   // the last column cut to 60 columns
 *	table_release(&t);
 *
 * Cells are copied. Columns are left-aligned and separated by two spaces; the
 * last one is not padded. Widths count characters (UTF-8 aware), not bytes.
 * On allocation failure a row is dropped (tables are for display only).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct table {
	size_t n_cols;
	char **cells; /* n_rows+1 rows (the header first) of n_cols */
	size_t n_rows;
};

void table_init(struct table *t, size_t n_cols, const char *const *header);
void table_add(struct table *t, const char *const *row);
size_t table_rows(const struct table *t); /* without the header */

/* Width of columns 0..n_cols-2 with their separators: what the last column
 * starts after. */
size_t table_prefix_width(const struct table *t);

/* Print; the last column is cut to last_max characters (0: no limit). */
void table_print(const struct table *t, FILE *f, size_t last_max);

/* Print for a reader: on a terminal the last column is cut to what is left
 * of its width (at least 10), elsewhere to `last_max` characters. */
void table_print_fit(const struct table *t, FILE *f, size_t last_max);
void table_release(struct table *t);

/* Whether `f` is a terminal, and its width in columns ($COLUMNS, else 80,
 * when it cannot be asked). */
bool term_is_tty(FILE *f);
size_t term_width(FILE *f);

/* Characters (not bytes) in a UTF-8 string. */
size_t utf8_len(const char *s);

/* Copy `s` into buf, cut to at most `max` characters; a cut string ends in
 * "…". Control characters (a newline in a message) become spaces. */
void utf8_fit(const char *s, size_t max, char *buf, size_t len);
