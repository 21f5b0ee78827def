/* backup_store.h — rows of the `backups` table, their JSON form, and the
 * retention rule.
 *
 * A row per archive (kind app or box) and per full backup (kind full). An
 * app or box archive made as part of a full backup names it in
 * full_backup_id. States:
 *   creating  a full backup in progress (only kind full; app and box rows
 *             are inserted once their archive is complete);
 *   ok        complete: the archive (or, for a full backup, its manifest and
 *             every archive it lists) is on disk with the recorded SHA-256;
 *   failed    a full backup that did not complete (its app archives that
 *             did complete stay `ok` and restorable).
 * A `creating` row whose task has ended (the worker was killed) is stale;
 * backup_mark_stale_failed() turns such rows into `failed`.
 *
 * All functions take the caller's store connection and return 0 or a
 * negative errno (-ENOENT for an unknown id) with store_errmsg() saying why.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct backup {
	int64_t id;
	char *kind;            /* "app", "box" or "full" */
	char *app_id;          /* kind app only */
	int64_t task_id;       /* the task that made it */
	char *path;            /* the archive (full: its manifest JSON) */
	char *format;          /* "zstd" or "gzip" */
	char *sha256;          /* of the file at path; NULL while creating */
	int64_t size;          /* bytes of the file (full: of all its archives) */
	int64_t created_at;    /* wall ms */
	char *state;           /* creating | ok | failed */
	int64_t full_backup_id; /* 0: none */
	char *mac;             /* app and box archives: backup_key.h; NULL for older rows */
};

void backup_release(struct backup *b);
void backup_list_free(struct backup *list, size_t n);

/* Insert a row; *ret_id gets its id. b->id is ignored; b->created_at 0
 * means now. */
int backup_insert(struct store *s, const struct backup *b, int64_t *ret_id);
int backup_get(struct store *s, int64_t id, struct backup *ret);

struct backup_filter {
	const char *app_id;   /* NULL: any */
	const char *kind;     /* NULL: any */
	int64_t full_backup_id; /* > 0: only the archives of that full backup */
};
/* Newest first (created_at, then id). */
int backup_list(struct store *s, const struct backup_filter *f, struct backup **ret, size_t *ret_n);

/* Complete a full backup's row: state, and (for ok) path, sha256, size. */
int backup_finish_full(struct store *s, int64_t id, const char *state, const char *path, const char *sha256,
		       int64_t size);
/* Full backups in state creating whose task is no longer active. */
int backup_mark_stale_failed(struct store *s, int *ret_n);
int backup_delete(struct store *s, int64_t id);
/* Keep an archive whose full backup is deleted: it becomes standalone. */
int backup_detach(struct store *s, int64_t id);

/* The API's form: {id, kind, appId, taskId, path, fileName, format, sha256,
 * size, createdAt, state, fullBackupId}. */
json_t *backup_to_json(const struct backup *b);

/* ---- retention (pure) ----------------------------------------------------------
 *
 * Keep the newest `keep` full backups in state ok; every other full backup
 * that is not `creating` (older ok ones, failed ones) is deleted with its
 * archives — except that the newest ok app archive of each app (counting
 * standalone app backups and those inside full backups alike, by
 * created_at then id) is never deleted: it is detached from its full backup
 * and kept. Standalone app backups are not touched. */
struct retention_plan {
	int64_t *delete_ids;   /* rows (and their files) to delete: archives first, then their full backups */
	size_t n_delete;
	int64_t *detach_ids;   /* archives to keep as standalone backups */
	size_t n_detach;
};

int backup_retention_plan(const struct backup *all, size_t n, int keep, struct retention_plan *ret);
void retention_plan_release(struct retention_plan *p);
