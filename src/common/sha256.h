/* sha256.h — SHA-256 (OpenSSL's EVP) of memory, files and streams, as
 * bytes or lowercase hex, and the comparison of two hex digests. Used by
 * the update (package checks), boxctl (the digest it sends with a
 * package), the API (tokens, sessions, idempotency fingerprints) and
 * whoever else hashes something.
 *
 * In memory, one shot:
 *
 *	char hex[SHA256_HEX];
 *	r = sha256_hex(data, len, hex);            // 64 digits and a NUL
 *
 * In pieces (a request's parts):
 *
 *	struct sha256 h;
 *	r = sha256_init(&h);                       // 0 or -ENOMEM
 *	r = sha256_update(&h, buf, n);             // as often as needed
 *	r = sha256_final(&h, digest);              // also frees h's context
 *	sha256_release(&h);                        // on an early exit; after final a no-op
 *
 * Functions return 0 or a negative errno (-ENOMEM, -EIO when OpenSSL
 * fails); outputs are written only on success. */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hex.h" /* hex_encode() for the digests */

/* 64 hex digits and the NUL. */
#define SHA256_HEX 65
#define SHA256_BYTES 32

/* SHA-256 of the file at `path` (or of what is left to read on `fd`) as 64
 * lowercase hex digits. -ENOENT when the file does not exist; other
 * negative errno with a message in err. */
int sha256_file(const char *path, char ret_hex[SHA256_HEX], char *err, size_t errlen);
int sha256_fd(int fd, char ret_hex[SHA256_HEX], char *err, size_t errlen);

/* Feed what is left to read on `fd` into the digest `md` (a stream hashed
 * as it is read: the rest of a package, a file whose head was parsed).
 * *ret_bytes (optional) grows by the bytes read. 0, -ENOMEM, -EIO when
 * OpenSSL fails, or read()'s negative errno. */
int sha256_update_fd(EVP_MD_CTX *md, int fd, int64_t *ret_bytes);

/* Finish a SHA-256 digest fed by the caller into ret_hex. -EIO if OpenSSL
 * fails or the digest is not SHA-256. */
int sha256_final_hex(EVP_MD_CTX *md, char ret_hex[SHA256_HEX]);

/* Whether two hex digests are equal (case-insensitive; constant time). */
bool sha256_hex_equal(const char *a, const char *b);

struct sha256 {
	EVP_MD_CTX *ctx;
};

int sha256_init(struct sha256 *h);
int sha256_update(struct sha256 *h, const void *data, size_t len);
int sha256_final(struct sha256 *h, uint8_t ret[SHA256_BYTES]);
void sha256_release(struct sha256 *h);

int sha256_digest(const void *data, size_t len, uint8_t ret[SHA256_BYTES]);
int sha256_hex(const void *data, size_t len, char ret[SHA256_HEX]);
