/* target_prune.h — retention on the off-box target ([backups] target).
 *
 * The local retention rule (backup_store.h) decides which rows go; the
 * files of those rows were uploaded under the same names (backup_upload.h),
 * so the same names are removed from the target: an archive and its
 * `.json` metadata, a full backup's manifest. Only names taken from
 * boxd's own rows are ever removed (never a listing of the target), so a
 * file someone else put there is never touched, and the newest good
 * backup of each app is kept there as it is locally (its row is kept).
 *
 * The names still to remove are remembered in
 * <state_dir>/backup-target-prune.json ({"target": URL, "files": [...]}),
 * written before the target is contacted and rewritten after: a name
 * whose removal failed (the target unreachable, the server refusing) stays
 * there and is tried again at the next full backup. A name already gone
 * (-ENOENT) counts as removed. When the target URL changes, the names of
 * the old target are dropped (logged): they are not the new target's.
 * A crash between a row's deletion and the list's write leaves that file
 * on the target (litter, never a wrong removal).
 *
 * Pruning never fails the backup: errors go to the task log and to the
 * upload result as "pruned" (count) and "pruneErrors" ([{file, message}]).
 */
#pragma once

#include <jansson.h>

struct task_ctx;

/* Add `names` (array of plain file names) to the list, then try to remove
 * every name on the list from the target. Sets "pruned" and "pruneErrors"
 * in `result` (the upload's result object; may be NULL). No-op without a
 * target. */
void backup_target_prune(struct task_ctx *ctx, json_t *names, json_t *result);
