/* backups-internal.h — what the files of the backup task types share
 * (backups.c the types, backups_archive.c one archive and the app backup,
 * backups_full.c the full backup, backups_restore.c the restore). Only they
 * include it. Every function that takes a task_ctx reports its failure
 * with task_ctx_fail() and returns its negative errno. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backups.h"
#include "tarball.h"
#include "tasks/task.h"
#include "tasks/task_type.h"

struct app;
struct backup_secret;

/* An archive written and recorded: its row id, file, hash and sizes. */
struct archived {
	int64_t id;
	char path[PATH_MAX];
	char sha256[TARBALL_SHA256_HEX];
	int64_t size;
	int64_t data_bytes;
	bool encrypted;
	char name_id[25]; /* encrypted app archives: the name part for the app (backup_crypt.h) */
};

static inline bool backups_cancelled(const struct task_ctx *ctx) { return ctx->cancel && *ctx->cancel; }

/* [backups] format as a tarball format; -EINVAL (bad_config) otherwise. */
int backups_config_format(struct task_ctx *ctx, enum tarball_format *ret);

/* Create the backup dir (0700) if it is missing. */
int backups_ensure_dir(struct task_ctx *ctx);

/* "<dir>/<prefix>-<stamp>-t<task><ext>", not yet taken. */
void backups_make_path(struct task_ctx *ctx, const char *prefix, const char *ext, char *buf, size_t len);

/* Write `meta` as indented JSON plus a newline, durably (tarball.h). */
int backups_write_metadata(const char *path, json_t *meta, char *err, size_t errlen);

/* Progress by bytes while archives are written: "Backing up wiki: 1.2 of
 * 4.0 GB, 38 MB/s" in the task's message (at most twice a second) and in
 * its log (every 10 s, and once per archive at its end). A full backup
 * sums the data of every app first (tarball_tree_size) and scales its
 * percentage over all of it. */
struct backups_progress {
	struct task_ctx *ctx;
	char label[128];       /* "wiki", or "app 3 of 12: wiki" */
	int from, to;          /* the task's percent range for `total` */
	int64_t total;         /* bytes of data in all (the whole task) */
	int64_t done_before;   /* of it, in archives already written */
	int64_t archive_total; /* bytes of this archive's data */
	int64_t t0_ms;         /* this archive's start (mono) */
	int64_t last_ms, last_log_ms;
};
void backups_progress_bytes(void *userdata, int64_t bytes);
/* "1.2 GB" / "38.0 MB" (10^6 bytes). */
void backups_format_bytes(int64_t bytes, char *buf, size_t len);
/* MB (10^6 bytes) per second; 0 for no time. */
double backups_mb_per_s(int64_t bytes, int64_t ms);

/* The [backups] encryption secret, loaded once per worker process
 * (backup_crypt.h): kind NONE when backups are not encrypted. */
int backups_secret(struct task_ctx *ctx, struct backup_secret **ret);

/* Archive `src_dir` as a backup of `kind` (app: of `a`, whose record goes
 * into the archive; box: a is NULL), record its row and write its
 * metadata file. `progress` may be NULL. On failure nothing is left
 * behind: no file, no row. */
int backups_make_archive(struct task_ctx *ctx, const char *kind, const struct app *a, const char *src_dir,
			 int64_t full_id, struct backups_progress *progress, struct archived *ret);

/* An app's data dir as an app backup (row without full backup), with
 * byte progress scaled into [from, to]; *ret_ms the time it took. */
int backups_archive_app(struct task_ctx *ctx, const struct app *a, const char *dir, int from, int to,
			struct archived *ret, int64_t *ret_ms);
/* Install the uninstall's final backup (app_tasks.h: app_set_final_backup). */
void backups_set_final_backup(void);

/* The box state: dump into a temp dir in the backup dir, archive it. */
int backups_archive_box_state(struct task_ctx *ctx, int64_t full_id, struct archived *ret);

/* The task's app (not_found, store_error). */
int backups_load_app(struct task_ctx *ctx, struct app *a);

/* A restore of an app that is not installed: install it again from the
 * record in backup `backup_id` (backups_reinstall.c). prepare: check the
 * backup, read its record, pull the image, insert the app (nothing changed
 * on failure); *a is the new app. finish: after its data is restored,
 * create and start its container; installed, or error. */
int backups_reinstall_prepare(struct task_ctx *ctx, int64_t backup_id, struct app *a);
struct engine;
int backups_reinstall_finish(struct task_ctx *ctx, struct engine *eng, struct app *a, const char *dir);

/* A backup archive that cannot be opened: task error by cause — no_key,
 * wrong_key (encryption), backup_corrupt (damaged, or not boxd's) — saying
 * that nothing was changed. Returns r. */
int backups_archive_fail(struct task_ctx *ctx, int r, int64_t backup_id, const char *err);

/* apps.host of app `id` into buf ("" for NULL). 0, -ENOENT, or a store
 * error (app_move.c). */
int backups_app_host_get(struct store *s, const char *id, char *buf, size_t len);

/* The task types' run callbacks. */
int backups_run_fullbackup(struct task_ctx *ctx);
int backups_run_backup(struct task_ctx *ctx);
int backups_run_restore(struct task_ctx *ctx);
int backups_run_move_restore(struct task_ctx *ctx); /* app_move_target.c */
int backups_run_move_cleanup(struct task_ctx *ctx); /* app_move_cleanup.c */

/* app_move_cleanup.c: what a move leaves on its source. */
struct engine;
/* Remove the source's container (by id; "" or NULL: none) and data dir
 * (below the configured roots; gone already is fine). 0, or a negative
 * errno with err saying what stayed. */
int backups_move_remove_leftovers(struct task_ctx *ctx, struct engine *eng, const char *container_id,
				  const char *dir, char *err, size_t errlen);
/* Queue move.cleanup on this host (`self`) for app_id's container and
 * data dir here. 0, or a negative errno after task_ctx_fail(). */
int backups_move_queue_cleanup(struct task_ctx *ctx, const char *app_id, const char *self,
			       const char *container_id, const char *dir);
