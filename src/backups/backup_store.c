/* backup_store.c — see backup_store.h. */
#include "backup_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "tasks/task.h"

#define BACKUP_COLS \
	"id, kind, app_id, task_id, path, format, sha256, size, created_at, state, full_backup_id, mac"

void backup_release(struct backup *b)
{
	if (!b)
		return;
	free(b->kind);
	free(b->app_id);
	free(b->path);
	free(b->format);
	free(b->sha256);
	free(b->state);
	free(b->mac);
	memset(b, 0, sizeof(*b));
}

void backup_list_free(struct backup *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		backup_release(&list[i]);
	free(list);
}

static void row_to_backup(struct store_stmt *st, struct backup *b)
{
	*b = (struct backup){
		.id = store_col_int64(st, 0), .kind = store_col_strdup(st, 1), .app_id = store_col_strdup(st, 2),
		.task_id = store_col_int64(st, 3), .path = store_col_strdup(st, 4), .format = store_col_strdup(st, 5),
		.sha256 = store_col_strdup(st, 6), .size = store_col_int64(st, 7), .created_at = store_col_int64(st, 8),
		.state = store_col_strdup(st, 9), .full_backup_id = store_col_int64(st, 10), .mac = store_col_strdup(st, 11),
	};
}

int backup_insert(struct store *s, const struct backup *b, int64_t *ret_id)
{
	/* full_backup_id 0 is stored as NULL ("none"). Not NULLIF(?, 0): on
	 * PostgreSQL that types the parameter as a 32-bit integer. */
	int64_t id, created = b->created_at ? b->created_at : now_wall_ms();
	int r = b->full_backup_id > 0
			? store_query_int64(s, &id,
					    "INSERT INTO backups (kind, app_id, task_id, path, format, sha256, size, created_at, "
					    "state, full_backup_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
					    "ssisssiisis", b->kind, b->app_id, b->task_id, b->path, b->format, b->sha256,
					    b->size, created, b->state, b->full_backup_id, b->mac)
			: store_query_int64(s, &id,
					    "INSERT INTO backups (kind, app_id, task_id, path, format, sha256, size, created_at, "
					    "state, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
					    "ssisssiiss", b->kind, b->app_id, b->task_id, b->path, b->format, b->sha256, b->size,
					    created, b->state, b->mac);
	if (r < 0)
		return r;
	*ret_id = id;
	return 0;
}

int backup_get(struct store *s, int64_t id, struct backup *ret)
{
	struct store_stmt *st;
	int r = store_query(s, &st, "SELECT " BACKUP_COLS " FROM backups WHERE id = ?", "i", id);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		row_to_backup(st, ret);
		r = 0;
	} else if (r == 0) {
		r = -ENOENT;
	}
	store_finalize(st);
	return r;
}

int backup_list(struct store *s, const struct backup_filter *f, struct backup **ret, size_t *ret_n)
{
	static const struct backup_filter none = { 0 };
	if (!f)
		f = &none;
	struct store_stmt *st;
	/* An unset filter binds '' (or 0) and matches everything: one
	 * statement, cached, and the literal gives PostgreSQL the type. */
	const char *app = f->app_id ? f->app_id : "", *kind = f->kind ? f->kind : "";
	int r = store_query(s, &st,
			    "SELECT " BACKUP_COLS " FROM backups WHERE (? = '' OR app_id = ?) AND (? = '' OR kind = ?) "
			    "AND (? = 0 OR full_backup_id = ?) ORDER BY created_at DESC, id DESC",
			    "ssssii", app, app, kind, kind, f->full_backup_id, f->full_backup_id);
	if (r < 0)
		return r;
	struct backup *list = NULL;
	size_t n = 0;
	while ((r = store_step(st)) == 1) {
		struct backup *grown = realloc(list, (n + 1) * sizeof(*list));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		list = grown;
		row_to_backup(st, &list[n++]);
	}
	store_finalize(st);
	if (r < 0) {
		backup_list_free(list, n);
		return r;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

int backup_finish_full(struct store *s, int64_t id, const char *state, const char *path, const char *sha256,
		       int64_t size)
{
	int64_t n = store_run(s,
			      "UPDATE backups SET state = ?, path = COALESCE(?, path), sha256 = COALESCE(?, sha256), "
			      "size = ? WHERE id = ?",
			      "sssii", state, path, sha256, size, id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int backup_mark_stale_failed(struct store *s, int *ret_n)
{
	int64_t n = store_run(s,
			      "UPDATE backups SET state = 'failed' WHERE state = 'creating' AND NOT EXISTS "
			      "(SELECT 1 FROM tasks WHERE tasks.id = backups.task_id AND tasks.state IN "
			      TASK_ACTIVE_STATES_SQL ")",
			      NULL);
	if (n < 0)
		return (int)n;
	if (ret_n)
		*ret_n = (int)n;
	return 0;
}

int backup_delete(struct store *s, int64_t id)
{
	int64_t n = store_run(s, "DELETE FROM backups WHERE id = ?", "i", id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

int backup_detach(struct store *s, int64_t id)
{
	int64_t n = store_run(s, "UPDATE backups SET full_backup_id = NULL WHERE id = ?", "i", id);
	return n < 0 ? (int)n : n == 0 ? -ENOENT : 0;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }
static json_t *id_or_null(int64_t v) { return v > 0 ? json_integer(v) : json_null(); }

json_t *backup_to_json(const struct backup *b)
{
	char created[40];
	format_rfc3339_ms(b->created_at, created, sizeof(created));
	const char *slash = b->path ? strrchr(b->path, '/') : NULL;
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:s, s:s, s:o}", "id", (json_int_t)b->id,
			 "kind", b->kind ? b->kind : "", "appId", str_or_null(b->app_id), "taskId", id_or_null(b->task_id),
			 "path", str_or_null(b->path), "fileName", str_or_null(slash ? slash + 1 : b->path), "format",
			 str_or_null(b->format), "sha256", str_or_null(b->sha256), "size", (json_int_t)b->size,
			 "createdAt", created, "state", b->state ? b->state : "", "fullBackupId",
			 id_or_null(b->full_backup_id));
}

/* ---- retention --------------------------------------------------------------------- */

static bool is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

/* Newer: later created_at, then higher id. */
static bool newer(const struct backup *a, const struct backup *b)
{
	return a->created_at != b->created_at ? a->created_at > b->created_at : a->id > b->id;
}

static int push(int64_t **arr, size_t *n, int64_t v)
{
	int64_t *grown = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!grown)
		return -ENOMEM;
	grown[(*n)++] = v;
	*arr = grown;
	return 0;
}

void retention_plan_release(struct retention_plan *p)
{
	if (!p)
		return;
	free(p->delete_ids);
	free(p->detach_ids);
	memset(p, 0, sizeof(*p));
}

int backup_retention_plan(const struct backup *all, size_t n, int keep, struct retention_plan *ret)
{
	struct retention_plan plan = { 0 };
	bool *protected = calloc(n ? n : 1, sizeof(bool)), *doomed_full = calloc(n ? n : 1, sizeof(bool));
	int r = 0;
	if (!protected || !doomed_full) {
		r = -ENOMEM;
		goto out;
	}
	if (keep < 0)
		keep = 0;
	/* The newest ok app archive of each app. */
	for (size_t i = 0; i < n; i++) {
		if (!is(all[i].kind, "app") || !is(all[i].state, "ok") || !all[i].app_id)
			continue;
		bool newest = true;
		for (size_t j = 0; j < n && newest; j++)
			if (j != i && is(all[j].kind, "app") && is(all[j].state, "ok") && is(all[j].app_id, all[i].app_id) &&
			    newer(&all[j], &all[i]))
				newest = false;
		protected[i] = newest;
	}
	/* Full backups beyond the newest `keep` good ones, and failed ones. */
	for (size_t i = 0; i < n; i++) {
		if (!is(all[i].kind, "full") || is(all[i].state, "creating"))
			continue;
		if (!is(all[i].state, "ok")) {
			doomed_full[i] = true;
			continue;
		}
		int rank = 0; /* how many good full backups are newer */
		for (size_t j = 0; j < n; j++)
			if (j != i && is(all[j].kind, "full") && is(all[j].state, "ok") && newer(&all[j], &all[i]))
				rank++;
		doomed_full[i] = rank >= keep;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!doomed_full[i])
			continue;
		for (size_t j = 0; j < n && r == 0; j++) {
			if (all[j].full_backup_id != all[i].id || is(all[j].kind, "full"))
				continue;
			r = protected[j] ? push(&plan.detach_ids, &plan.n_detach, all[j].id)
					 : push(&plan.delete_ids, &plan.n_delete, all[j].id);
		}
		if (r == 0)
			r = push(&plan.delete_ids, &plan.n_delete, all[i].id);
	}
out:
	free(protected);
	free(doomed_full);
	if (r < 0) {
		retention_plan_release(&plan);
		return r;
	}
	*ret = plan;
	return 0;
}
