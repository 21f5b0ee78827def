/* backup_schedule.c — see backup_schedule.h. */
#include "backup_schedule.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backups/backup_admit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "tasks/task.h"
#include "tasks/task_enqueue.h"

void backup_schedule_release(struct backup_schedule *bs)
{
	free(bs->text);
	*bs = (struct backup_schedule){ 0 };
}

static void utc(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The slot of the newest scheduled full backup in the store; 0: none. */
static int last_slot(struct store *s, time_t *ret)
{
	struct store_stmt *st;
	*ret = 0;
	int r = store_query(s, &st,
			    "SELECT args FROM tasks WHERE type = 'fullbackup' AND args LIKE '%scheduledFor%' "
			    "ORDER BY id DESC LIMIT 1",
			    NULL);
	if (r < 0)
		return r;
	if ((r = store_step(st)) == 1) {
		json_t *args = json_loads(store_col_text(st, 0) ? store_col_text(st, 0) : "", 0, NULL);
		*ret = (time_t)json_integer_value(json_object_get(args, "scheduledFor"));
		json_decref(args);
	}
	store_finalize(st);
	return r < 0 ? r : 0;
}

static int64_t random_delay_ms(const struct boxd_config *cfg)
{
	uint64_t rnd = 0;
	if (cfg->backups_random_delay_ms <= 0 || getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return 0;
	return (int64_t)(rnd % (uint64_t)(cfg->backups_random_delay_ms + 1));
}

static void plan(struct backup_schedule *bs, const struct boxd_config *cfg, time_t after)
{
	bs->slot = calendar_next(&bs->cal, after);
	bs->due_ms = (int64_t)bs->slot * 1000 + random_delay_ms(cfg);
	char when[40];
	utc((time_t)(bs->due_ms / 1000), when, sizeof(when));
	log_info("backups: next scheduled full backup at %s (schedule \"%s\")", when, bs->text);
}

/* A fullbackup task for `slot`, unless one is active (backups_admit_full(),
 * as for POST /backups/create). */
static int64_t queue(struct store *s, const struct boxd_config *cfg, time_t slot, const char *why)
{
	char when[40], args[96];
	utc(slot, when, sizeof(when));
	snprintf(args, sizeof(args), "{\"scheduledFor\":%lld}", (long long)slot);
	/* This host's full backup: of the apps it runs (backups.h). */
	char host[HOST_ID_MAX + 1];
	int r = host_id_get(host, sizeof(host));
	if (r < 0) {
		log_error("backups: cannot queue the scheduled full backup for %s: this host has no valid id", when);
		return r;
	}
	struct task_enqueue e = { .type = "fullbackup", .args_json = args, .admit = backups_admit_full,
				  .run_on = host };
	struct task_enqueued out;
	r = task_enqueue(s, cfg, &e, &out);
	if (r == -EEXIST && out.message[0]) {
		log_warn("backups: scheduled full backup for %s skipped: full backup task %lld is still running", when,
			 (long long)out.id);
		return 0;
	}
	if (r < 0)
		goto fail;
	int64_t id = out.id;
	log_info("backups: full backup task %lld queued (%s, for %s)", (long long)id, why, when);
	return id;
fail:
	log_error("backups: cannot queue the scheduled full backup for %s: %s", when, store_errmsg(s));
	return r;
}

int64_t backup_schedule_tick(struct backup_schedule *bs, struct store *s, const struct boxd_config *cfg)
{
	const char *text = cfg->backups_schedule;
	time_t now = (time_t)(now_wall_ms() / 1000);
	if (!text || !*text) {
		if (bs->text)
			log_info("backups: no schedule any more");
		free(bs->text);
		bs->text = NULL;
		bs->started = true;
		return 0;
	}
	if (!bs->text || strcmp(bs->text, text) != 0) {
		char err[400];
		struct calendar cal;
		if (calendar_parse(text, &cal, err, sizeof(err)) < 0) {
			log_error("backups: %s", err); /* the config load checked it; kept for safety */
			return -EINVAL;
		}
		free(bs->text);
		if (!(bs->text = strdup(text)))
			return -ENOMEM;
		bs->cal = cal;
		plan(bs, cfg, now);
	}
	int64_t id = 0;
	if (!bs->started) {
		/* Runs missed while boxd was down: one now. */
		time_t last, prev = calendar_prev(&bs->cal, now);
		if (last_slot(s, &last) < 0)
			return -EIO; /* the store is away: again at the next tick */
		bs->started = true;
		if (last > 0 && prev > last)
			id = queue(s, cfg, prev, "missed while boxd was down");
	}
	if (now_wall_ms() >= bs->due_ms) {
		int64_t q = queue(s, cfg, bs->slot, "scheduled");
		if (q < 0)
			return q; /* the same slot again at the next tick */
		if (q > 0)
			id = q;
		plan(bs, cfg, bs->slot > now ? bs->slot : now);
	}
	return id;
}
