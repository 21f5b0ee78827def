/* task_enqueue.c — see task_enqueue.h. */
#include "task_enqueue.h"

#include <errno.h>
#include <string.h>

/* One enqueue at a time. On SQLite, BEGIN IMMEDIATE (store_begin(s,
 * true)) already admits one writer at a time. MariaDB and PostgreSQL take
 * row locks only as statements run, so two admissions that read the tasks
 * at the same time would both miss the other's insert and both pass (two
 * full backups at once: test-tasks on mysql and postgres). So every
 * enqueue first locks the same row — schema_version has exactly one — and
 * the next waits for it until the first commits. Its reads come after the
 * wait: PostgreSQL (read committed) and InnoDB (whose repeatable-read
 * snapshot is taken by the first plain read, not by the locking one) then
 * see what the first committed. */
static int serialize(struct store *s)
{
	if (store_get_backend(s) == STORE_BACKEND_SQLITE)
		return 0;
	int64_t version;
	return store_query_int64(s, &version, "SELECT version FROM schema_version FOR UPDATE", NULL);
}

int task_admit_join(struct store *s, const struct task_match *m, struct task_enqueued *ret)
{
	struct task t;
	int r = task_find_active(s, m, &t);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	ret->id = t.id;
	task_release(&t);
	return TASK_ADMIT_JOIN;
}

int task_enqueue(struct store *s, const struct boxd_config *cfg, const struct task_enqueue *e,
		 struct task_enqueued *ret)
{
	memset(ret, 0, sizeof(*ret));
	int r = store_begin(s, true);
	if (r < 0)
		return r;
	r = serialize(s);
	int admitted = r < 0 ? r : e->admit ? e->admit(s, e, ret) : 0;
	r = admitted < 0 ? admitted : 0;
	if (r == 0 && admitted == TASK_ADMIT_JOIN) {
		ret->joined = true;
	} else if (r == 0) {
		ret->id = 0;
		r = task_create_idempotent(s, e->type, e->app_id, e->args_json, config_task_timeout_ms(cfg, e->type),
					   e->idem, &ret->id);
		if (r >= 0 && e->run_on) {
			int64_t n = store_run(s, "UPDATE tasks SET run_on = ? WHERE id = ?", "si", e->run_on, ret->id);
			r = n < 0 ? (int)n : 0;
		}
		if (r >= 0 && e->claim_host)
			r = task_claim(s, ret->id, e->claim_host) == 1 ? 0 : -EIO;
		if (r >= 0 && e->created)
			r = e->created(s, e, ret->id);
	}
	if (r >= 0)
		r = store_commit(s);
	else
		store_rollback(s);
	if (r >= 0 || !ret->message[0]) { /* only a refusal has a message */
		ret->code = NULL;
		ret->message[0] = '\0';
	}
	return r;
}
