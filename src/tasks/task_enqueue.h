/* task_enqueue.h — how a task comes to exist.
 *
 * Whoever asks for work (an API route, the scheduler, the daemon at start)
 * calls task_enqueue(). In one write transaction it runs the request's
 * admission hook — the rules of the module the task belongs to: may such a
 * task be queued now, or is there one already that this request joins? —
 * inserts the row (queued, with the type's timeout from the config and the
 * request's idempotency key), runs the `created` hook (rows that point at
 * the new task), and commits. Two requests can therefore never both pass a
 * check, and a refused request leaves nothing behind.
 *
 * Waking the scheduler is the caller's job: the API does it in
 * api_reply_enqueued(), the scheduler kicks itself.
 *
 *	struct task_enqueue e = { .type = "fullbackup", .admit = backups_admit_full };
 *	struct task_enqueued out;
 *	int r = task_enqueue(store, cfg, &e, &out);
 *	// r == 0: out.id is the new task (or, out.joined, the one joined)
 *	// r < 0 and out.message[0]: refused by the admission (out.code, out.id)
 *	// r < 0 otherwise: a store error (store_errmsg())
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "store/store.h"
#include "task.h"

/* What task_enqueue() tells its caller, and what an admission hook fills
 * in when it refuses or joins. */
struct task_enqueued {
	int64_t id;          /* the new task, the task joined, or (refused)
			      * the active task in the way; 0: none */
	bool joined;         /* no new task: the request joined task `id` */
	/* Refused by the admission: why, for the operator (never empty on a
	 * refusal, always empty otherwise), and an error code for the API
	 * (NULL: the errno says it: not_found, conflict, bad_request,
	 * unprocessable). */
	char message[512];
	const char *code;
};

struct task_enqueue;

/* An admission hook. Runs inside the write transaction, before the
 * insert. Returns 0 to go on, TASK_ADMIT_JOIN after setting ret->id to the
 * active task the request joins (nothing is inserted), or a negative errno
 * after writing ret->message: -ENOENT (what the task needs does not
 * exist), -EEXIST or -EBUSY (a conflict with what exists or is queued),
 * -EINVAL (a malformed request), -EPERM (a well-formed request that cannot
 * be carried out; say which in ret->code): what makes it a refusal is the
 * message. A store error is returned as it is, with ret->message left
 * empty. It may write rows: they are committed with the task or rolled
 * back with it. */
typedef int (*task_admit_fn)(struct store *s, const struct task_enqueue *e, struct task_enqueued *ret);
#define TASK_ADMIT_JOIN 1

struct task_enqueue {
	const char *type;
	const char *app_id;                   /* NULL: not an app task */
	const char *args_json;                /* a JSON object text; NULL: {} */
	const struct task_idempotency *idem;  /* NULL: none */
	const char *claim_host;               /* claim it for this host in the
					       * same transaction (platformstart) */
	const char *run_on;                   /* only this host id's scheduler
					       * may claim it (tasks.run_on); NULL: any */
	task_admit_fn admit;                  /* NULL: always admitted */
	/* After the insert, in the same transaction. 0 or negative errno. */
	int (*created)(struct store *s, const struct task_enqueue *e, int64_t id);
	void *userdata;                       /* for the hooks */
};

/* For an admission hook that joins an active task rather than queue a
 * second one (a rebuild, a host's platformstart): the newest active task
 * that `m` matches becomes the answer (TASK_ADMIT_JOIN, its id in ret->id);
 * 0 when there is none, or the store's negative errno. */
int task_admit_join(struct store *s, const struct task_match *m, struct task_enqueued *ret);

/* See above. 0 on success (ret->id); negative errno on a refusal
 * (ret->message set) or a store error. *ret is always written. */
int task_enqueue(struct store *s, const struct boxd_config *cfg, const struct task_enqueue *e,
		 struct task_enqueued *ret);
