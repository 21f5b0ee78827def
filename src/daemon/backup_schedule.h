/* backup_schedule.h — [backups] schedule: the daemon queues a full backup
 * (an ordinary `fullbackup` task, as POST /api/v1/backups/create does) at
 * each time the calendar names (common/calendar.h, UTC), plus a random
 * delay of up to [backups] random_delay.
 *
 * The store remembers the last scheduled run: the task's args carry
 * {"scheduledFor": <UTC seconds of its calendar slot>}. At start, when the
 * latest slot at or before now is later than the last one recorded, runs
 * were missed while boxd was down: one full backup is queued at once (for
 * that latest slot; not one per missed slot). A box that never ran one
 * (no task with scheduledFor) starts with the next slot. A slot that comes
 * while a full backup is still running is skipped (logged): one full
 * backup at a time. A reload (SIGHUP) that changes the schedule takes
 * effect from the next tick.
 *
 * Loop thread only; ticked by the daemon's housekeeping timer (1 s).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/calendar.h"
#include "common/config.h"
#include "store/store.h"

struct backup_schedule {
	char *text;       /* the schedule in use; NULL: none */
	struct calendar cal;
	time_t slot;      /* the calendar slot the next run is for */
	int64_t due_ms;   /* wall ms: slot plus its random delay */
	bool started;     /* the missed-run check at start is done */
};

/* Look at the config and the clock: queue a full backup if one is due.
 * Returns the id of a task it queued (> 0), 0 if none, or a negative
 * errno (logged). */
int64_t backup_schedule_tick(struct backup_schedule *bs, struct store *s, const struct boxd_config *cfg);
void backup_schedule_release(struct backup_schedule *bs);
