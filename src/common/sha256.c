/* sha256.c — see sha256.h. */
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)

int sha256_final_hex(EVP_MD_CTX *md, char ret_hex[SHA256_HEX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!EVP_DigestFinal_ex(md, d, &n) || n != 32)
		return -EIO;
	hex_encode(d, n, ret_hex);
	return 0;
}

int sha256_update_fd(EVP_MD_CTX *md, int fd, int64_t *ret_bytes)
{
	unsigned char *buf = malloc(READ_CHUNK);
	if (!buf)
		return -ENOMEM;
	int r = 0;
	for (;;) {
		ssize_t n = read(fd, buf, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else if (n > 0 && !EVP_DigestUpdate(md, buf, (size_t)n))
			r = -EIO;
		if (n <= 0 || r < 0)
			break;
		if (ret_bytes)
			*ret_bytes += n;
	}
	free(buf);
	return r;
}

int sha256_fd(int fd, char ret_hex[SHA256_HEX], char *err, size_t errlen)
{
	int r = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "cannot set up SHA-256");
		r = -ENOMEM;
		goto out;
	}
	if ((r = sha256_update_fd(md, fd, NULL)) < 0) {
		snprintf(err, errlen, r == -ENOMEM ? "cannot set up SHA-256" : "cannot read the file: %s", strerror(-r));
		goto out;
	}
	char hex[SHA256_HEX];
	if (sha256_final_hex(md, hex) < 0) {
		snprintf(err, errlen, "SHA-256 failed");
		r = -EIO;
		goto out;
	}
	memcpy(ret_hex, hex, sizeof(hex));
out:
	EVP_MD_CTX_free(md);
	return r;
}

int sha256_file(const char *path, char ret_hex[SHA256_HEX], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	int r = sha256_fd(fd, ret_hex, err, errlen);
	close(fd);
	return r;
}

bool sha256_hex_equal(const char *a, const char *b)
{
	if (!a || !b || strlen(a) != 64 || strlen(b) != 64)
		return false;
	char la[64], lb[64];
	for (int i = 0; i < 64; i++) {
		la[i] = (char)((a[i] >= 'A' && a[i] <= 'F') ? a[i] + 32 : a[i]);
		lb[i] = (char)((b[i] >= 'A' && b[i] <= 'F') ? b[i] + 32 : b[i]);
	}
	return CRYPTO_memcmp(la, lb, 64) == 0;
}

int sha256_init(struct sha256 *h)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		return -EIO;
	}
	h->ctx = md;
	return 0;
}

int sha256_update(struct sha256 *h, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	return EVP_DigestUpdate(h->ctx, data, len) ? 0 : -EIO;
}

int sha256_final(struct sha256 *h, uint8_t ret[SHA256_BYTES])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int r = EVP_DigestFinal_ex(h->ctx, d, &n) && n == SHA256_BYTES ? 0 : -EIO;
	sha256_release(h);
	if (r == 0)
		memcpy(ret, d, SHA256_BYTES);
	return r;
}

void sha256_release(struct sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int sha256_digest(const void *data, size_t len, uint8_t ret[SHA256_BYTES])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, d, &n, EVP_sha256(), NULL) || n != SHA256_BYTES)
		return -EIO;
	memcpy(ret, d, SHA256_BYTES);
	return 0;
}

int sha256_hex(const void *data, size_t len, char ret[SHA256_HEX])
{
	uint8_t d[SHA256_BYTES];
	int r = sha256_digest(data, len, d);
	if (r == 0)
		hex_encode(d, sizeof(d), ret);
	return r;
}
