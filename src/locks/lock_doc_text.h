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

/* ---- format 3: a big document split over two rows ----------------------------
 *
 * A document of many entries is stored as a base (a format 2 text in a row of
 * its own, written again only now and then) and, in the lock row, format 3:
 * what changed against that base. A change then writes a few lines, not the
 * whole document (issue 18's K sweep: with one row, writing 1,000 held locks
 * for every acquire was most of a pair's cost on every store).
 *
 *	boxd-locks 3 NEXT_TICKET SLOT NONCE BASE_HOLDERS BASE_TICKETS
 *	@HOST                      hosts of the lines below, as in format 2
 *	-H IDX                     base holder IDX is gone
 *	=H IDX NAME MODE TASK ...  base holder IDX is now this (format 2 fields)
 *	-T IDX / =T IDX TICKET ... the same for base tickets
 *	H ... / T ...              entries after the base's, as in format 2
 *
 * The document is: the base's holders in order (less the gone, with the
 * replaced ones changed in place), then the H lines; the same for tickets.
 * The base row is (id SLOT, version NONCE): NONCE, random, names one base
 * for ever, so a reader that finds another nonce in the slot knows the base
 * was rewritten since it read the lock row. -/= lines come in ascending IDX,
 * so the text is canonical for a given base. */
#define LOCK_DOC_SPLIT_MAGIC "boxd-locks 3 "

/* The base a format 3 text names: 0, or -EBADMSG if the header is bad. */
int lock_doc_split_ref(const char *text, int *ret_slot, int64_t *ret_nonce);

/* `doc` as format 3 against `base` (stored as slot/nonce); *ret is
 * malloc'ed; *ret_changes (optional) counts its -, = and H/T lines. -ENOMEM. */
int lock_doc_split_format(const struct lock_doc *doc, const struct lock_doc *base, int slot, int64_t nonce, char **ret,
			  size_t *ret_changes);

/* Parse a format 3 text against its base (the one lock_doc_split_ref()
 * names) and verify the result. -EBADMSG with "line N: ..." in errbuf. */
int lock_doc_split_parse(const char *text, const struct lock_doc *base, struct lock_doc *ret, char *errbuf,
			 size_t errlen);

/* Per-thread cache of the last base read or written, by (slot, nonce):
 * NULL when that is not the one kept. */
const struct lock_doc *lock_doc_base_cached(int slot, int64_t nonce);
/* Keep a copy of `base` as (slot, nonce); returns the kept copy, or NULL
 * without memory (the caller then uses its own). */
const struct lock_doc *lock_doc_base_keep(int slot, int64_t nonce, const struct lock_doc *base);

/* The document of a format 3 text, kept per thread by the change that
 * wrote the text: a change that reads back its own text (a process alone
 * on the document, or the only one changing it) takes it instead of
 * building it from the base again (copies of every entry, a malloc per
 * ticket). lock_doc_split_take() moves it into *ret: 0, or -ENOENT when
 * `text` is not the one kept. lock_doc_split_keep() moves `doc` in (it is
 * left empty, or released without memory). lock_doc_cache_drop() forgets
 * it. */
int lock_doc_split_take(const char *text, struct lock_doc *ret);
void lock_doc_split_keep(const char *text, struct lock_doc *doc);
