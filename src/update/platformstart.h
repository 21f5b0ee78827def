/* platformstart.h — what the daemon does with the `platformstart` task at
 * start (the task type itself: update.h).
 *
 * The daemon queues the task right after re-adopting workers, lets the
 * scheduler spawn it, and waits (briefly) until its worker has taken
 * `platform` or at least its ticket in the lock queue, before the API starts
 * serving: every app task created through the API after that queues behind
 * it (the lock queue is FIFO), so it waits visibly for `platform` instead of
 * racing the platform start.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "store/store.h"
#include "tasks/supervisor.h"

/* Create a platformstart task claimed by this host (so no other host's
 * scheduler runs it: it is about this host's mounts and engine), unless
 * this host has one active already (re-adopted after a restart). 0 with
 * *ret_id (the new task, or the active one) and *ret_created. */
int platformstart_queue(struct store *s, const struct boxd_config *cfg, const char *host, int64_t *ret_id,
			bool *ret_created);

/* Spawn the task platformstart_queue() created (the scheduler never does:
 * it is claimed). Not through a scheduler pass, which would also start
 * other queued tasks, among them app tasks created through the API
 * meanwhile. 0 or a negative errno (the task is then failed). */
int platformstart_spawn(struct store *s, struct supervisor *sv, int64_t id);

/* Wait at most timeout_ms until task `id` holds this host's `platform`, has a ticket
 * for it, or has ended. 0 then; -ETIMEDOUT; other negative errno from the
 * store. */
int platformstart_wait_queued(struct store *lock_store, struct store *store, int64_t id, int64_t timeout_ms);

/* Register the task type (update_register_task_types() calls it). */
void platformstart_register(void);
