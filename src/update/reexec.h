/* reexec.h — how an update hands the daemon over to a new release.
 *
 * The update task runs in a worker; the daemon it must replace is another
 * process. They talk through three small files in the state dir, each
 * written with the temp/fsync/rename sequence:
 *
 *	boxd.pid                  "PID STARTTIME\n" of the serving daemon
 *	                          (written at every start, after the SIGUSR2
 *	                          handler is in place)
 *	update-reexec.json        the worker's request {"task", "version"}
 *	update-reexec-result.json the daemon's answer {"task", "ok", "version",
 *	                          "pid", "error"}
 *
 * The sequence (docs/ARCHITECTURE.md "Update"):
 *
 *	worker  update_reexec_request(): write the request, SIGUSR2 → daemon
 *	daemon  update_reexec_pending() in the signal callback: a request is
 *	        there → stop the loop and the API (workers keep running), close
 *	        the stores, then update_reexec_exec(): execv() of
 *	        <install_root>/current/bin/boxd with the original argv. Same
 *	        pid, so the workers stay its children.
 *	new     starts like after a restart (re-adopts the workers, the update
 *	        worker among them), serves the API, then
 *	        update_reexec_finish(): answer the request with its version
 *	worker  update_reexec_wait() sees the answer and the task ends
 *	        succeeded (recorded by the worker itself, after the new daemon
 *	        is up).
 *
 * If execv() of the new release fails, the daemon records the failure and
 * execs its own binary again (the old release); the worker then restores
 * `current` and fails the task. If no answer comes (the daemon died), the
 * worker restores `current` too, so that the next start runs the old
 * release.
 *
 * Functions return 0 or a negative errno with a message in err.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "release.h"

/* ---- the daemon ---------------------------------------------------------------- */

/* Record this process as the serving daemon in <state>/boxd.pid. */
int update_pidfile_write(const struct boxd_config *cfg, char *err, size_t errlen);

/* On SIGUSR2: is an update waiting for a re-exec? 0 with the task id and
 * the program to exec (<install_root>/current/bin/boxd, which must be
 * executable); -ENOENT when there is no request (a stray signal), other
 * errors with a message. */
int update_reexec_pending(const struct boxd_config *cfg, int64_t *ret_task, char *ret_exe, size_t exe_len, char *err,
			  size_t errlen);

/* After the loop, the API and the stores are closed: execv(exe, argv).
 * When that fails, record the failure for the worker and execv the
 * fallback (the binary this daemon runs). Returns only when both failed;
 * the caller then exits. */
int update_reexec_exec(const struct boxd_config *cfg, int64_t task_id, const char *exe, char *const argv[],
		       const char *fallback_exe, char *err, size_t errlen);

/* Once the API serves: answer a pending request with the version this
 * daemon runs (update_running_version()). No request: nothing to do.
 * Returns 1 when a request was answered (and sets *ret_task), 0 when there
 * was none. */
int update_reexec_finish(const struct boxd_config *cfg, int64_t *ret_task, char *err, size_t errlen);

/* ---- the update worker ---------------------------------------------------------- */

/* Ask the daemon named in boxd.pid to re-exec for task `task_id` (which
 * installed `version`). -ESRCH when no daemon runs. */
int update_reexec_request(const struct boxd_config *cfg, int64_t task_id, const char *version, char *err,
			  size_t errlen);

/* Wait up to timeout_ms for the daemon's answer to task `task_id`'s
 * request. 0: the daemon runs again and reports *ret_version; -EIO: it
 * could not exec the new release (err says why; it runs the old one);
 * -ETIMEDOUT: no answer. The answer file is removed once read. */
int update_reexec_wait(const struct boxd_config *cfg, int64_t task_id, int64_t timeout_ms,
		       char ret_version[UPDATE_VERSION_MAX], int *ret_pid, char *err, size_t errlen);

/* Remove a request that will not be answered (the worker gives up). */
void update_reexec_cancel(const struct boxd_config *cfg, int64_t task_id);
