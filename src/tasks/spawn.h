/* spawn.h — start a worker process, the one way boxd does it.
 *
 * Modelled on git's run-command.c and libuv's unix/process.c:
 *   - argv is built by the caller before fork; the child does only
 *     async-signal-safe work (signal reset, setsid, dup2, execv);
 *   - signals are blocked across fork so no handler of the daemon runs in
 *     the child, and the child resets every disposition to default;
 *   - the child gets its own session and process group (setsid), so a stop
 *     can signal the worker and everything it started with one killpg();
 *   - an exec failure travels back through a close-on-exec pipe: when
 *     spawn_process() returns 0 the program really started;
 *   - the process is returned as a proc_ref (pid, start time, pidfd), so
 *     the daemon can poll for its exit and never signals a recycled pid.
 * No PDEATHSIG: workers must outlive a restart of the daemon.
 */
#pragma once

#include <sys/types.h>

#include "common/proc.h"

struct spawn_opts {
	const char *path;         /* program to exec (absolute) */
	char *const *argv;        /* argv[0] included, NULL-terminated */
	int output_fd;            /* becomes stdout and stderr; -1 = /dev/null */
	int pass_fd;              /* becomes fd 3 in the child; -1 = none */
};

/* Returns 0 with *ret set (its pidfd is close-on-exec; proc_ref_close()
 * it), or a negative errno: the exec's own errno when the program could
 * not be started. */
int spawn_process(const struct spawn_opts *opts, struct proc_ref *ret);
