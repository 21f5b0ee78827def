/* fuzz-lock-doc.c — the lock document parser: whatever the row holds, parse
 * never crashes, and what parses formats back to text that parses to the
 * same document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "locks/lock_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct lock_doc doc;
	char err[256];
	if (lock_doc_parse(text, &doc, err, sizeof(err)) == 0) {
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
