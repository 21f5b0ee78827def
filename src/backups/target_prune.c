/* target_prune.c — see target_prune.h. */
#include "target_prune.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sftp_target.h"
#include "tarball.h"
#include "tasks/task_type.h"

static void list_path(const struct task_ctx *ctx, char *buf, size_t len)
{
	snprintf(buf, len, "%s/backup-target-prune.json", ctx->config->state_dir);
}

/* The pending names for this target (an empty array when there is no
 * list, it is unreadable, or it names another target). */
static json_t *load_pending(struct task_ctx *ctx, const char *path)
{
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je);
	json_t *files = json_array();
	if (!doc)
		return files;
	const char *target = json_string_value(json_object_get(doc, "target"));
	json_t *old = json_object_get(doc, "files");
	if (!target || strcmp(target, ctx->config->backups_target) != 0) {
		if (json_array_size(old) > 0)
			printf("backup target: dropping %zu file(s) still to remove from the former target %s\n",
			       json_array_size(old), target ? target : "?");
	} else {
		size_t i;
		json_t *v;
		json_array_foreach (old, i, v)
			if (json_is_string(v))
				json_array_append(files, v);
	}
	json_decref(doc);
	return files;
}

static bool has(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

static int save_pending(struct task_ctx *ctx, const char *path, json_t *files)
{
	char err[512];
	json_t *doc = json_pack("{s:s, s:O}", "target", ctx->config->backups_target, "files", files);
	char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	json_decref(doc);
	int r = text ? tarball_write_file(path, text, strlen(text), err, sizeof(err)) : -ENOMEM;
	if (r < 0)
		printf("backup target: cannot write %s: %s\n", path, text ? err : "out of memory");
	free(text);
	return r;
}

void backup_target_prune(struct task_ctx *ctx, json_t *names, json_t *result)
{
	if (!ctx->config->backups_target)
		return;
	char path[PATH_MAX], err[1024];
	list_path(ctx, path, sizeof(path));
	json_t *pending = load_pending(ctx, path), *errors = json_array();
	size_t i;
	json_t *v;
	json_array_foreach (names, i, v)
		if (json_is_string(v) && !has(pending, json_string_value(v)))
			json_array_append(pending, v);
	int pruned = 0;
	if (json_array_size(pending) == 0)
		goto out;
	/* Remembered before the target is contacted: a crash from here on
	 * retries next time. */
	save_pending(ctx, path, pending);
	struct sftp_target_opts o = { .url = ctx->config->backups_target, .key_file = ctx->config->backups_ssh_key_file,
				      .known_hosts = ctx->config->backups_known_hosts, .cancel = ctx->cancel };
	struct sftp_target *t = NULL;
	int r = sftp_target_open(&o, &t, err, sizeof(err));
	json_t *left = json_array();
	json_array_foreach (pending, i, v) {
		const char *name = json_string_value(v);
		int rr = r < 0 ? r : sftp_target_remove(t, name, err, sizeof(err));
		if (rr == 0 || rr == -ENOENT) {
			pruned += rr == 0;
			continue;
		}
		printf("backup target: cannot remove %s (tried again at the next full backup): %s\n", name, err);
		json_array_append(left, v);
		json_array_append_new(errors, json_pack("{s:s, s:s}", "file", name, "message", err));
	}
	sftp_target_close(t);
	save_pending(ctx, path, left);
	json_decref(left);
	if (pruned)
		printf("backup target: removed %d file(s) of pruned backups\n", pruned);
out:
	fflush(stdout);
	if (result) {
		json_object_set_new(result, "pruned", json_integer(pruned));
		json_object_set_new(result, "pruneErrors", errors);
	} else
		json_decref(errors);
	json_decref(pending);
}
