/* lock_spec.h — the text form of a lock request, "NAME", "NAME:shared" or
 * "NAME:exclusive": one parser for the lock core (lock_doc.h builds its
 * struct lock_req on it) and for the clients that only pass lock names on
 * to the daemon (boxctl, which does not link the lock core). Pure. */
#pragma once

#include <stdbool.h>

/* The size of a name with its NUL (lock_doc.h's LOCK_NAME_MAX). */
#define LOCK_SPEC_NAME_MAX 128

/* A name is 1..127 characters of [A-Za-z0-9] and ":._-@/". */
bool lock_spec_name_valid(const char *name);

/* Parse "NAME", "NAME:shared" or "NAME:exclusive" (default exclusive) into
 * `name` and *ret_shared. The name itself may contain ':' (app:wiki).
 * -EINVAL on a bad name; nothing is written then. */
int lock_spec_parse(const char *spec, char name[LOCK_SPEC_NAME_MAX], bool *ret_shared);
