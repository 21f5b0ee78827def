/* argv_secrets.c — see argv_secrets.h. */
#include "argv_secrets.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The value if argv[i] is `flag` (value in argv[i + 1]) or `flag=VALUE`;
 * *words gets 2 or 1. */
static const char *match(int argc, char **argv, int i, const char *flag, int *words)
{
	size_t n = strlen(flag);
	if (strcmp(argv[i], flag) == 0 && i + 1 < argc) {
		*words = 2;
		return argv[i + 1];
	}
	if (strncmp(argv[i], flag, n) == 0 && argv[i][n] == '=') {
		*words = 1;
		return argv[i] + n + 1;
	}
	return NULL;
}

/* Are the strings argv[0..argc-1] laid out back to back, as the kernel
 * puts them? Then they can be rewritten as one block. */
static bool contiguous(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (argv[i] != argv[i - 1] + strlen(argv[i - 1]) + 1)
			return false;
	return true;
}

int argv_hide_secrets(int *argc, char **argv, const struct argv_secret *secrets)
{
	int n = *argc;
	bool *drop = calloc((size_t)n + 1, sizeof(*drop));
	if (!drop)
		return -ENOMEM;
	int moved = 0;
	for (int i = 1; i < n; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		for (const struct argv_secret *s = secrets; s->flag; s++) {
			int words = 0;
			const char *value = match(n, argv, i, s->flag, &words);
			if (!value)
				continue;
			if (setenv(s->env, value, 1) < 0) {
				free(drop);
				return -errno;
			}
			for (int w = 0; w < words; w++)
				drop[i + w] = true;
			i += words - 1;
			moved++;
			break;
		}
	}
	if (moved == 0) {
		free(drop);
		return 0;
	}

	if (contiguous(n, argv)) {
		/* Copy what stays to the front of the block and zero the
		 * rest: the secrets are overwritten and /proc/self/cmdline
		 * reads the remaining words. */
		char *block = argv[0];
		size_t size = (size_t)(argv[n - 1] + strlen(argv[n - 1]) + 1 - block);
		char *copy = malloc(size);
		size_t *offsets = calloc((size_t)n, sizeof(*offsets));
		if (!copy || !offsets) {
			/* Still overwrite the secrets below, word by word. */
			free(copy);
			free(offsets);
			goto wipe;
		}
		size_t o = 0;
		int kept = 0;
		for (int i = 0; i < n; i++) {
			if (drop[i])
				continue;
			size_t len = strlen(argv[i]) + 1;
			memcpy(copy + o, argv[i], len);
			offsets[kept++] = o;
			o += len;
		}
		memcpy(block, copy, o);
		memset(block + o, 0, size - o);
		explicit_bzero(copy, size);
		free(copy);
		for (int i = 0; i < kept; i++)
			argv[i] = block + offsets[i];
		free(offsets);
		argv[kept] = NULL;
		*argc = kept;
		free(drop);
		return moved;
	}
wipe:
	{
		int kept = 0;
		for (int i = 0; i < n; i++) {
			if (drop[i])
				explicit_bzero(argv[i], strlen(argv[i]));
			else
				argv[kept++] = argv[i];
		}
		argv[kept] = NULL;
		*argc = kept;
	}
	free(drop);
	return moved;
}
