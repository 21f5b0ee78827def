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

/* An archive written and recorded: its row id, file, hash and sizes. */
struct archived {
	int64_t id;
	char path[PATH_MAX];
	char sha256[TARBALL_SHA256_HEX];
	int64_t size;
	int64_t data_bytes;
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

/* Archive `src_dir` as a backup of `kind` (app: of app_id), record its row
 * and write its metadata file. On failure nothing is left behind: no file,
 * no row. */
int backups_make_archive(struct task_ctx *ctx, const char *kind, const char *app_id, const char *src_dir,
			 int64_t full_id, struct archived *ret);

/* The box state: dump into a temp dir in the backup dir, archive it. */
int backups_archive_box_state(struct task_ctx *ctx, int64_t full_id, struct archived *ret);

/* The task's app (not_found, store_error). */
int backups_load_app(struct task_ctx *ctx, struct app *a);

/* The task types' run callbacks. */
int backups_run_fullbackup(struct task_ctx *ctx);
int backups_run_backup(struct task_ctx *ctx);
int backups_run_restore(struct task_ctx *ctx);
