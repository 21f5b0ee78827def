/* box_restore_status.h — the box restore that a running daemon performs
 * (POST /api/v1/box/restore): what the API, the daemon and the `boxd
 * restore` child it runs share, as files in <state_dir>/box-restore/.
 *
 * The restore is not a task: the store it would be recorded in is the
 * thing being replaced. Its record lives beside the store instead, and
 * survives the daemon's re-exec that follows a successful restore:
 *
 *	status.json  the daemon's record: {"state": "running"|"failed"|
 *	             "succeeded", "from", "backup", "startedAt", "endedAt",
 *	             "pid", "restarted", "error": {"code","message"},
 *	             "result": {...}, "token"} (temp/fsync/rename)
 *	log          the child's stdout and stderr, line by line
 *	result.json  the child's own answer: {"ok", "code", "message",
 *	             "result"} (written by `boxd restore` under the daemon)
 *
 * The token (random, in status.json, never shown by the API) is handed to
 * the child in the environment (BOXD_RESTORE_TOKEN): only a `boxd restore`
 * started by the daemon for this restore skips the "a daemon is running"
 * refusal (box_restore.h); an operator's `boxd restore` still gets it.
 *
 * Functions return 0 or a negative errno with a message in err.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

#define BOX_RESTORE_TOKEN_ENV "BOXD_RESTORE_TOKEN"

struct box_restore_result;

/* <state_dir>/box-restore/NAME into buf; false when it does not fit. */
bool box_restore_status_path(const struct boxd_config *cfg, const char *name, char *buf, size_t len);

/* The record, or -ENOENT when no restore was ever asked for. */
int box_restore_status_load(const struct boxd_config *cfg, json_t **ret);
/* Write the record (the dir is made if needed). */
int box_restore_status_save(const struct boxd_config *cfg, json_t *status, char *err, size_t errlen);

/* The record as the API shows it: without the token, plus from the log
 * "lines" (the last 200), "step" (the last line), "changed" (the remap
 * lines, "changed: " cut off) and "percent" (archives fetched, then apps
 * restored). -ENOENT: none. */
int box_restore_status_view(const struct boxd_config *cfg, json_t **ret);

/* Is `token` the one of the restore in progress? */
bool box_restore_token_ok(const struct boxd_config *cfg, const char *token);

/* The child's answer (result.json): r = box_restore_run()'s return. */
int box_restore_result_save(const struct boxd_config *cfg, int r, const char *message,
			    const struct box_restore_result *res);

/* The error code of the API for box_restore_run()'s errno: wrong_key,
 * no_key, backup_corrupt (a damaged archive or manifest), backup_missing,
 * box_not_empty, restore_unfinished, daemon_running, bad_request,
 * stopped, restore_failed. */
const char *box_restore_error_code(int r);
