/* cmd_token.c — `boxd token create NAME`: make an API token for TCP clients.
 * Only its SHA-256 is stored (in the tokens file); the token itself is
 * printed once. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "locks/lock_doc.h"

int cmd_token(const struct boxd_config *cfg, int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "create") != 0 || !lock_name_valid(argv[2])) {
		fprintf(stderr, "usage: boxd token create NAME   (NAME: letters, digits and ._-)\n");
		return 2;
	}
	unsigned char raw[24];
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		fprintf(stderr, "boxd token: no randomness available\n");
		return 1;
	}
	char token[64];
	strcpy(token, "boxd_");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(token + 5 + 2 * i, 3, "%02x", raw[i]);
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen;
	EVP_Digest(token, strlen(token), digest, &dlen, EVP_sha256(), NULL);
	char line[160];
	int n = 0;
	for (unsigned i = 0; i < 32; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", digest[i]);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " %s\n", argv[2]);
	int fd = open(cfg->tokens_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0) {
		fprintf(stderr, "boxd token: cannot write %s: %s\n", cfg->tokens_file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	printf("%s\n", token);
	fprintf(stderr, "token '%s' created; it is shown only now. Use: boxctl --url http://HOST:PORT --token TOKEN ...\n",
		argv[2]);
	return 0;
}
