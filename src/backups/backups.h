/* backups.h — full and app backups, restore and retention.
 *
 * A backup is a tar archive (zstd by default, or gzip: config [backups]
 * format) in the backup directory (config [backups] dir), written to a temp
 * file, fsynced, renamed into place and the directory fsynced. Its SHA-256
 * and size, computed while writing, go into a JSON file beside it
 * (<archive>.json, written the same way) and into a row of the store's
 * `backups` table (backup_store.h).
 *
 * Kinds:
 *   box   the box state: a consistent dump of the store (SQLite: the online
 *         backup API; MariaDB/PostgreSQL: a logical JSON-lines export of
 *         boxd's tables), made as the first step of a full backup;
 *   app   one app's data directory (an app `backup` task, or one step of a
 *         full backup: then full_backup_id names the full backup);
 *   full  the record of a full backup; its box state and app archives point
 *         at it through full_backup_id.
 *
 * Task types (registered by backups_register_task_types()):
 *   fullbackup  locks type:fullbackup exclusive + platform shared; takes
 *               app:<id> exclusive for one app at a time, only while that
 *               app is archived (live: the container keeps running).
 *   backup      app task: archives the app's data dir.
 *   restore     app task, args {"backupId": N}: opens the archive once and
 *               verifies it from that descriptor: boxd's own file, its
 *               size and SHA-256 (error code `backup_corrupt` otherwise;
 *               nothing is touched); extracts from the same descriptor
 *               into a private temp sibling of the data dir, hashing
 *               again; stops the container, swaps the two dirs, deletes
 *               the old one, starts the container. Setuid/setgid bits,
 *               device nodes and fifos are not restored, nor the owners of
 *               an archive that is not authenticated as this box's own
 *               (backup_key.h), unless [backups] says so. For an app
 *               that does not exist (uninstalled since), the app is
 *               installed again from the record in the archive first
 *               (app_record.h, backups_reinstall.c).
 *
 * Every app archive carries the app's record as its first entry
 * (app_record.h); with [backups] encryption_* every archive is sealed
 * (backup_crypt.h: format, names). Progress is by bytes over the data
 * measured first. The uninstall task's final backup is an app backup made
 * through app_set_final_backup(), installed by
 * backups_register_task_types().
 */
#pragma once

#include <stdint.h>

struct task_ctx;

/* Register the fullbackup, backup and restore task types. Idempotent. */
void backups_register_task_types(void);

/* Do the work of a full backup inside the running task `ctx` (the
 * fullbackup handler, and the update task before it applies):
 *
 *   1. the box state archive;
 *   2. each installed app in turn: take app:<id> exclusive (waiting, and
 *      showing "Waiting for app:<id> ..." in the task's message while it
 *      waits), archive the data dir, release app:<id> at once;
 *   3. record the full backup (state ok) and apply retention.
 *
 * Progress goes to the task as percentages scaled into
 * [percent_from, percent_to], with messages like
 * "Backing up app 3 of 12: wiki". The caller must already hold whatever
 * task-level locks it needs (fullbackup: type:fullbackup + platform shared;
 * it must NOT hold any app:<id> lock, or that app's step waits for itself).
 *
 * Returns 0 and sets *ret_backup_id (optional) to the id of the `full`
 * backup row. On failure returns a negative errno after task_ctx_fail()
 * recorded an error code and message (-ECANCELED when the task was
 * stopped); the full backup's row, if one was created, is marked failed
 * and no app lock is left held.
 */
int backups_run_full(struct task_ctx *ctx, int percent_from, int percent_to, int64_t *ret_backup_id);
