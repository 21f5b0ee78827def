/* random.c — see random.h. */
#include "random.h"

#include <errno.h>
#include <sys/random.h>

int random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len > 0) {
		/* Reads of up to 256 bytes are never cut short; longer ones can
		 * be (a signal), hence the loop. */
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
