/* backup_upload.h — a finished full backup goes to the off-box target
 * ([backups] target, sftp_target.h) before it is recorded ok.
 *
 * Order: the box state archive, each app archive, each followed by its
 * metadata file (<archive>.json), and the manifest last: a manifest on
 * the target means every file it lists is there, complete and verified
 * (sftp_target_put() reads each one back and compares size and SHA-256
 * before it renames it into place). A restore picks only manifests.
 *
 * A connection that breaks mid-file is opened again and the file resumed
 * from the bytes the target already has, up to UPLOAD_RECONNECTS times
 * (waiting 1, 2, 4 s); a target that stays away, refuses the host key or
 * the login, or runs full fails the task with the reason (error codes
 * target_unreachable, target_refused, target_full, target_verify_failed,
 * target_failed). Nothing is deleted on the target here, so the backups
 * already there stay as they were; retention removes old ones from the
 * target after a backup is ok (target_prune.h).
 */
#pragma once

#include <jansson.h>

struct task_ctx;

#define UPLOAD_RECONNECTS 3

/* Upload the full backup whose manifest is at `manifest_path` (in the
 * backup dir) and the files it lists, reporting progress in
 * [pct_from, pct_to]. No-op (0, *ret_result NULL) without a target.
 * Returns 0 and *ret_result = {target, files, bytes, sent, resumedFiles,
 * reconnects, ms, mbPerS}; or a negative errno after task_ctx_fail(). */
int backup_upload_full(struct task_ctx *ctx, const char *manifest_path, int pct_from, int pct_to,
		       json_t **ret_result);
