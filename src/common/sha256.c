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

static void hex_of(const unsigned char *d, unsigned n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int sha256_final_hex(EVP_MD_CTX *md, char ret_hex[SHA256_HEX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!EVP_DigestFinal_ex(md, d, &n) || n != 32)
		return -EIO;
	hex_of(d, n, ret_hex);
	return 0;
}

int sha256_fd(int fd, char ret_hex[SHA256_HEX], char *err, size_t errlen)
{
	int r = 0;
	unsigned char *buf = malloc(READ_CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "cannot set up SHA-256");
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot read the file: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
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
	free(buf);
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
