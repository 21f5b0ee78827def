/* app_move.h — moving an app to another host (issue 16, placement).
 *
 * `POST /api/v1/apps/:id/move {"host": H}` queues a `move` task. It runs
 * on the app's host (the source), holding `app:<id>` for the whole move,
 * and drives a `move.restore` task that runs on the target:
 *
 *   source (move)                          target (move.restore)
 *   1. stop the container, back the data
 *      up (the app backup: an archive in
 *      the backups dir both hosts share)
 *   2. apps: install_state pending_move,
 *      host = target; queue move.restore  → 3. restore the archive into the
 *      (run_on = target), release              target's data dir (which must
 *      `platform`, wait for it                 be free), then COMMIT:
 *                                              pending_move → installed
 *                                           4. create and start the container
 *   5. it succeeded: remove the source's
 *      container (by its id) and data dir
 *
 * Before step 2 the source queues `move.cleanup` on itself
 * (app_move_cleanup.c): it waits for `app:<id>` behind the move and, once
 * the app is installed on another host, removes the same container and
 * data dir. Normally the move did that already; it matters when the
 * source's worker died after the target's commit.
 *
 * Who wins is decided by one conditional UPDATE of the app's row: the
 * target's commit (pending_move → installed) or the source's abort
 * (pending_move → installed with host = source); exactly one of them
 * changes the row. The source aborts when the target step fails before
 * committing, when the target host's heartbeat is gone, or when the move
 * is stopped; it then starts its container again. The app never runs on
 * both: the source's container is stopped before the backup and started
 * again only after an abort won, and the target starts its container only
 * after its commit won. A target that fails after its commit (its
 * container does not start) removes what it made and un-commits (installed
 * → pending_move), so the source's abort wins after all.
 *
 * `run_on` (tasks.run_on, migration 13): the host id whose scheduler may
 * claim the task (NULL: any). The move runs on the source, move.restore on
 * the target.
 */
#pragma once

#include "common/config.h"
#include "tasks/task_enqueue.h"

/* Register the move and move.restore task types. */
void app_move_register_task_types(void);

/* What a move request brings (e->userdata of app_move_enqueue_init). */
struct app_move_admission {
	const char *target;     /* the target host id (checked: known, alive) */
	const char *self_host;  /* the host id taking the request: the source
				 * of an app without a host (apps.host NULL) */
	char source[64];        /* out: the app's host, once admitted */
};

/* A task_enqueue of a move of app `app_id` (args_json: {"host": H}).
 * Its admission, in the queueing transaction: -ENOENT (no app), -EBUSY
 * (app not installed, or any task of it active: code app_busy), -EEXIST
 * (already on that host: code same_host). The created hook makes the task
 * the app's current one and sets its run_on to the source. */
void app_move_enqueue_init(struct task_enqueue *e, const char *app_id, const char *args_json,
			   struct app_move_admission *adm);
