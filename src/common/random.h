/* random.h — bytes from the kernel's CSPRNG (getrandom(2)), for tokens,
 * session ids and the event stream's epoch.
 *
 * Why not OpenSSL's RAND_bytes(): its first call initialises the library
 * (configuration, providers, its DRBG), about 2 MiB of pages in a daemon
 * that otherwise never needs them while idle (issue 18, daemon RSS). The
 * DRBG seeds from this same source; the kernel's is as good for keys. The
 * backup encryption, which runs in workers and uses OpenSSL anyway, keeps
 * RAND_bytes(). */
#pragma once

#include <stddef.h>

/* Fill buf with len random bytes. Blocks only until the kernel's pool is
 * first initialised (early boot). 0, or a negative errno (buf is then
 * undefined). */
int random_bytes(void *buf, size_t len);
