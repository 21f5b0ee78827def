/* fuzz-lock-doc.c — the lock document parser: whatever the row holds, parse
 * never crashes, and what parses formats back to text that parses to the
 * same document; also as format 3, against bases it differs from in every
 * way (none, all of it, reversed, every entry changed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "locks/lock_doc.h"
#include "locks/lock_doc_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Format 3 of `doc` against `base` reads back to `doc`. */
static void split_round_trip(const struct lock_doc *doc, const struct lock_doc *base)
{
	char *split = NULL, *want = NULL, *got = NULL, err[256];
	struct lock_doc back;
	if (lock_doc_split_format(doc, base, 2, 7, &split, NULL) != 0)
		return;
	lock_doc_cache_drop();
	if (lock_doc_split_parse(split, base, &back, err, sizeof(err)) != 0)
		abort(); /* our own output does not parse */
	if (lock_doc_format(doc, &want) == 0 && lock_doc_format(&back, &got) == 0 && strcmp(want, got) != 0)
		abort(); /* not the same document */
	free(split);
	free(want);
	free(got);
	lock_doc_release(&back);
}

static void split_checks(const struct lock_doc *doc)
{
	struct lock_doc empty, changed;
	lock_doc_init(&empty);
	split_round_trip(doc, &empty);
	split_round_trip(doc, doc);
	/* The same entries in reverse order, and each one changed: a base
	 * need not be valid to format against, only to hold entries. */
	changed = *doc;
	changed.holders = malloc((doc->n_holders + 1) * sizeof(*changed.holders));
	changed.waiters = malloc((doc->n_waiters + 1) * sizeof(*changed.waiters));
	if (changed.holders && changed.waiters) {
		for (size_t i = 0; i < doc->n_holders; i++)
			changed.holders[i] = doc->holders[doc->n_holders - 1 - i];
		changed.n_waiters = 0;
		split_round_trip(doc, &changed);
		for (size_t i = 0; i < doc->n_holders; i++) {
			changed.holders[i] = doc->holders[i];
			changed.holders[i].owner.lease_expires_ms++;
		}
		for (size_t i = 0; i < doc->n_waiters; i++) {
			changed.waiters[i] = doc->waiters[i];
			changed.waiters[i].expires_ms++;
		}
		changed.n_waiters = doc->n_waiters;
		split_round_trip(doc, &changed);
	}
	free(changed.holders);
	free(changed.waiters);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct lock_doc doc;
	char err[256];
	if (strncmp(text, LOCK_DOC_SPLIT_MAGIC, strlen(LOCK_DOC_SPLIT_MAGIC)) == 0) {
		/* Format 3 against a base of one holder and one ticket. */
		static const char base_text[] = "boxd-locks 2 9\n@h\nH a x 1 0 1 1 0 0\nT 3 9 2 0 1 1 0 0 1 a s\n";
		struct lock_doc base, split;
		if (lock_doc_parse(base_text, &base, err, sizeof(err)) != 0)
			abort();
		lock_doc_cache_drop();
		if (lock_doc_split_parse(text, &base, &split, err, sizeof(err)) == 0) {
			split_checks(&split);
			lock_doc_release(&split);
		}
		lock_doc_release(&base);
	}
	if (lock_doc_parse(text, &doc, err, sizeof(err)) == 0) {
		split_checks(&doc);
		char *once = NULL, *twice = NULL;
		struct lock_doc again;
		/* Without the per-thread cache, so the parser reads our output. */
		lock_doc_cache_drop();
		if (lock_doc_format(&doc, &once) == 0 && (lock_doc_cache_drop(), 1) &&
		    lock_doc_parse(once, &again, err, sizeof(err)) == 0) {
			if (lock_doc_format(&again, &twice) == 0 && strcmp(once, twice) != 0)
				abort(); /* formatting is not canonical */
			/* The JSON form reads back to the same document. */
			char *json = NULL, *thrice = NULL;
			struct lock_doc from_json;
			if (lock_doc_format_json(&again, &json) == 0) {
				if (lock_doc_parse(json, &from_json, err, sizeof(err)) != 0)
					abort();
				lock_doc_cache_drop();
				if (lock_doc_format(&from_json, &thrice) == 0 && strcmp(once, thrice) != 0)
					abort();
				lock_doc_release(&from_json);
			}
			free(json);
			free(thrice);
			lock_doc_release(&again);
		} else if (once) {
			abort(); /* our own output does not parse */
		}
		free(once);
		free(twice);
		lock_doc_release(&doc);
	}
	free(text);
	return 0;
}
