/* lock_doc_text.h — the stored form of the lock document (format 2), for
 * lock_doc.c; see lock_doc_text.c for the layout. */
#pragma once

#include "lock_doc.h"

/* A text that starts with the prefix is one of ours (another format
 * version is refused, not read as JSON); format 2 starts with the magic. */
#define LOCK_DOC_TEXT_PREFIX "boxd-locks "
#define LOCK_DOC_TEXT_MAGIC "boxd-locks 2 "

/* Canonical text of `doc`; *ret is malloc'ed. -ENOMEM. */
int lock_doc_text_format(const struct lock_doc *doc, char **ret);

/* Parse format 2 text (it starts with LOCK_DOC_TEXT_MAGIC) and verify the
 * invariants. -EBADMSG with "line N: ..." in errbuf. */
int lock_doc_text_parse(const char *text, struct lock_doc *ret, char *errbuf, size_t errlen);

/* lock_doc_salvage() for format 2 text: into `doc` (initialized, empty
 * but for next_ticket), every holder line that parses and can stand with
 * those kept before it; next_ticket past the header's and every ticket
 * still readable. *ret_dropped: entries dropped. 0 or -ENOMEM. */
int lock_doc_text_salvage(const char *text, struct lock_doc *doc, int *ret_dropped);
