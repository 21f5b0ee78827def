/* sha256.h — SHA-256 (OpenSSL's EVP) of files and streams, as lowercase
 * hex, and the comparison of two hex digests. Used by the update (package
 * checks), boxctl (the digest it sends with a package) and whoever else
 * hashes a file. */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

/* 64 hex digits and the NUL. */
#define SHA256_HEX 65

/* SHA-256 of the file at `path` (or of what is left to read on `fd`) as 64
 * lowercase hex digits. -ENOENT when the file does not exist; other
 * negative errno with a message in err. */
int sha256_file(const char *path, char ret_hex[SHA256_HEX], char *err, size_t errlen);
int sha256_fd(int fd, char ret_hex[SHA256_HEX], char *err, size_t errlen);

/* Finish a SHA-256 digest fed by the caller into ret_hex. -EIO if OpenSSL
 * fails or the digest is not SHA-256. */
int sha256_final_hex(EVP_MD_CTX *md, char ret_hex[SHA256_HEX]);

/* Whether two hex digests are equal (case-insensitive; constant time). */
bool sha256_hex_equal(const char *a, const char *b);
