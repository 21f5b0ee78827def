/* cmd_token.c — `boxd token create|list|revoke`: API tokens for TCP clients
 * (the tokens file: api/tokens.h). A token is printed once, at creation;
 * only its SHA-256 is stored. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/tokens.h"
#include "cli_common.h"

static int usage(void)
{
	fprintf(stderr, "usage: boxd token create NAME | list | revoke NAME\n"
			"       (NAME: 1 to %d of letters, digits and ._-, starting with a letter or digit)\n",
		TOKEN_NAME_MAX);
	return 2;
}

int cmd_token(const struct boxd_config *cfg, int argc, char **argv)
{
	char err[600];
	if (argc == 3 && strcmp(argv[1], "create") == 0) {
		char token[TOKEN_LEN + 1];
		int r = tokens_create(cfg->tokens_file, argv[2], token, err, sizeof(err));
		if (r == -EINVAL) {
			fprintf(stderr, "boxd token: %s\n", err);
			return 2;
		}
		if (r < 0) {
			fprintf(stderr, "boxd token: %s\n", err);
			return 1;
		}
		printf("%s\n", token);
		fprintf(stderr,
			"token '%s' created; it is shown only now. Use: boxctl --url http://HOST:PORT --token TOKEN ...\n",
			argv[2]);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		struct token_list l;
		if (tokens_list(cfg->tokens_file, &l, err, sizeof(err)) < 0) {
			fprintf(stderr, "boxd token: %s\n", err);
			return 1;
		}
		printf("%-40s %s\n", "NAME", "CREATED");
		for (size_t i = 0; i < l.n; i++)
			printf("%-40s %s\n", l.v[i].name, *l.v[i].created ? l.v[i].created : "-");
		token_list_release(&l);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "revoke") == 0) {
		if (tokens_revoke(cfg->tokens_file, argv[2], err, sizeof(err)) < 0) {
			fprintf(stderr, "boxd token: %s\n", err);
			return 1;
		}
		fprintf(stderr, "token '%s' revoked\n", argv[2]);
		return 0;
	}
	return usage();
}
