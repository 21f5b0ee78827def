/* cmd_task.c — `boxd task run ID`: the worker process the daemon spawns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "common/log.h"
#include "tasks/worker.h"

int cmd_task(const struct boxd_config *cfg, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "standby") == 0) {
		log_set_level((enum log_level)cfg->log_level);
		return worker_standby(cfg, 3);
	}
	if ((argc != 3 && argc != 4) || strcmp(argv[1], "run") != 0) {
		fprintf(stderr, "usage: boxd task run ID [CLAIM]\n");
		return 2;
	}
	char *end;
	long long id = strtoll(argv[2], &end, 10);
	if (*end || id <= 0) {
		fprintf(stderr, "boxd task run: '%s' is not a task id\n", argv[2]);
		return 2;
	}
	/* CLAIM: the token of the claim the daemon spawned this worker for
	 * (tasks/task.h); without it (by hand) the worker takes the task as is. */
	long long claim = 0;
	if (argc == 4) {
		claim = strtoll(argv[3], &end, 10);
		if (*end || claim < 0) {
			fprintf(stderr, "boxd task run: '%s' is not a claim token\n", argv[3]);
			return 2;
		}
	}
	log_set_level((enum log_level)cfg->log_level);
	return worker_main(cfg, id, claim);
}
