/* array.h — growing a malloc'ed array, the one way (git's ALLOC_GROW,
 * systemd's GREEDY_REALLOC):
 *
 *	struct item *v = NULL;
 *	size_t n = 0, cap = 0;
 *	...
 *	if (ARRAY_GROW(v, n + 1, cap) < 0)
 *		return -ENOMEM;         // v, n and cap as they were
 *	v[n++] = item;
 *	...
 *	free(v);
 *
 * ARRAY_GROW makes room for at least `need` elements: nothing to do when
 * cap already is enough; else the capacity doubles (from 8 for an empty
 * array) until it holds `need`. A size that would overflow is -ENOMEM,
 * like a failed allocation; on failure the array is untouched.
 */
#pragma once

#include <stddef.h>

int array_grow(void **v, size_t *cap, size_t need, size_t elem_size);

#define ARRAY_GROW(v, need, cap) array_grow((void **)&(v), &(cap), (need), sizeof(*(v)))
