/* hex.h — bytes as hex digits and back: digests, keys, MACs, percent
 * escapes. Pure. */
#pragma once

#include <stddef.h>

/* `len` bytes as 2 * len lowercase hex digits and a NUL. */
void hex_encode(const void *data, size_t len, char *out);

/* The value of one hex digit (either case), or -1. */
int hex_value(int c);

/* The 2 * len hex digits (either case) at `hex` into `len` bytes at out.
 * 0, or -EINVAL at the first character that is not a hex digit (out is
 * then partly written). */
int hex_decode(const char *hex, size_t len, void *out);
