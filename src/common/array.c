/* array.c — see array.h. */
#include "array.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define ARRAY_FIRST_CAP 8

int array_grow(void **v, size_t *cap, size_t need, size_t elem_size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : ARRAY_FIRST_CAP;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (elem_size && n > SIZE_MAX / elem_size)
		return -ENOMEM;
	void *grown = realloc(*v, n * elem_size);
	if (!grown)
		return -ENOMEM;
	*v = grown;
	*cap = n;
	return 0;
}
