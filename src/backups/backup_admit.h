/* backup_admit.h — may a backup or a restore be queued now? Admission
 * hooks for task_enqueue() (tasks/task_enqueue.h), run inside its write
 * transaction.
 */
#pragma once

#include "store/store.h"
#include "tasks/task_enqueue.h"

/* A full backup: one at a time. -EEXIST naming the active one (ret->id)
 * while one is queued, waiting or running. */
int backups_admit_full(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret);

/* An app `restore` (args {"backupId": N}): the app's rules (apps_admit();
 * an app that does not exist is no refusal: the restore installs it again
 * from the record in its backup), then the backup must exist (-ENOENT), be
 * an app backup of this app (-EPERM, code wrong_backup) and be complete
 * (-EPERM, code bad_backup). */
int backups_admit_restore(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret);
/* Its `created` hook: the task becomes the app's current one, if the app
 * has a row. */
int backups_restore_created(struct store *s, const struct task_enqueue *e, int64_t id);
