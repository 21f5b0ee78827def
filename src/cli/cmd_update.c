/* cmd_update.c — `boxctl update apply FILE`: start a platform update. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "common/sha256.h"

int cmd_update_apply(struct cli *cli, int argc, char **argv)
{
	enum { OPT_SKIP = 256, OPT_SHA, OPT_WAIT };
	static const struct option options[] = {
		{ "skip-backup", no_argument, NULL, OPT_SKIP },
		{ "sha256", required_argument, NULL, OPT_SHA },
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ 0 },
	};
	bool skip = false, wait = false;
	const char *sha = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case OPT_SKIP: skip = true; break;
		case OPT_SHA: sha = optarg; break;
		case OPT_WAIT: wait = true; break;
		default: return cli_bad_option(cli, c, argv);
		}
	}
	int r = cli_positionals(cli, argc, argv, 1, 1);
	if (r)
		return r;
	const char *file = argv[optind];
	/* boxd opens the package itself: send an absolute path. */
	char abs[PATH_MAX];
	if (!realpath(file, abs)) {
		fprintf(stderr, "boxctl: %s: %s\n", file, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	char hex[SHA256_HEX], err[512];
	if (!sha) {
		if (sha256_file(abs, hex, err, sizeof(err)) < 0) {
			fprintf(stderr, "boxctl: %s\n", err);
			return CLI_EXIT_USAGE;
		}
		sha = hex;
	}
	json_t *body = json_pack("{s:s, s:s, s:b}", "package", abs, "sha256", sha, "skipBackup", skip);
	struct api_answer a;
	r = api_call(cli, "POST", "/api/v1/updater/update", body, &a);
	json_decref(body);
	if (r)
		return r;
	char line[8192];
	snprintf(line, sizeof(line), "update: task %lld (package %s, SHA-256 %s)", (long long)cli_answer_task_id(&a),
		 abs, sha);
	/* The wait survives the daemon's re-exec: it reconnects for a while. */
	return cli_task_started(cli, &a, wait, line);
}
