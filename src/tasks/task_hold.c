/* task_hold.c — the `hold` task: take the named locks and keep them for N
 * seconds or until stopped. An operator's maintenance window ("nobody touch
 * app:wiki for 10 minutes"), and the workhorse of the lock tests and
 * benchmarks.
 *
 * args: {"locks": [{"name": "app:x", "mode": "exclusive"}, ...], "seconds": N,
 *        "spawnChild": false}
 *
 * "spawnChild": true makes the worker start `/bin/sleep 100000` as its own
 * child (so in its process group) once it holds the locks: the end-to-end
 * tests use it to check that a stop or a crash of the worker leaves no
 * process of the task behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "task_type.h"

#define HOLD_MAX_SECONDS (7 * 24 * 3600)

static int hold_validate(json_t *args, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v) {
		if (strcmp(key, "locks") != 0 && strcmp(key, "seconds") != 0 && strcmp(key, "spawnChild") != 0) {
			snprintf(err, errlen,
				 "hold: unknown argument \"%s\" (expected \"locks\", \"seconds\" and \"spawnChild\")", key);
			return -EINVAL;
		}
	}
	json_t *spawn = json_object_get(args, "spawnChild");
	if (spawn && !json_is_boolean(spawn)) {
		snprintf(err, errlen, "hold: \"spawnChild\" must be true or false");
		return -EINVAL;
	}
	json_t *secs = json_object_get(args, "seconds");
	if (!json_is_number(secs) || json_number_value(secs) < 0 || json_number_value(secs) > HOLD_MAX_SECONDS) {
		snprintf(err, errlen, "hold: \"seconds\" must be a number from 0 to %d", HOLD_MAX_SECONDS);
		return -EINVAL;
	}
	struct lock_req *reqs;
	size_t n;
	int r = task_parse_lock_list(json_object_get(args, "locks"), &reqs, &n, err, errlen);
	if (r < 0)
		return r;
	free(reqs);
	return 0;
}

static int hold_locks(const struct task *t, json_t *args, struct lock_req **ret, size_t *ret_n)
{
	(void)t;
	char err[256];
	return task_parse_lock_list(json_object_get(args, "locks"), ret, ret_n, err, sizeof(err));
}

static int hold_run(struct task_ctx *ctx)
{
	double secs = json_number_value(json_object_get(ctx->args, "seconds"));
	if (json_is_true(json_object_get(ctx->args, "spawnChild"))) {
		pid_t child = fork();
		if (child < 0) {
			int e = errno;
			return task_ctx_fail(ctx, -e, "spawn_failed", "cannot fork the child: %s", strerror(e));
		}
		if (child == 0) {
			execl("/bin/sleep", "sleep", "100000", (char *)NULL);
			_exit(127);
		}
		printf("hold: started child process %d\n", (int)child);
		fflush(stdout);
	}
	/* Report progress about once a second, so a maintenance window shows
	 * how much of it is left. */
	int64_t total = (int64_t)(secs * 1000), done = 0;
	int64_t from = now_wall_ms();
	while (done < total) {
		int64_t left = total - done;
		task_ctx_progress(ctx, (int)(done * 100 / total), "Holding locks, %.0fs left", (double)left / 1000);
		int64_t step = left < 1000 ? left : 1000;
		int r = task_ctx_sleep(ctx, step);
		if (r < 0)
			return r;
		done += step;
	}
	/* The window in which this worker acted on its locks, by its own
	 * clock: tests check that exclusive windows never overlap. */
	printf("hold: held from %lld to %lld\n", (long long)from, (long long)now_wall_ms());
	fflush(stdout);
	ctx->result = json_pack("{s:f}", "heldSeconds", secs);
	return 0;
}

static const struct task_type hold_type = {
	.name = "hold",
	.generic = true,
	.validate = hold_validate,
	.dynamic_locks = hold_locks,
	.run = hold_run,
};

void task_types_register_builtin(void)
{
	task_type_register(&hold_type);
}
