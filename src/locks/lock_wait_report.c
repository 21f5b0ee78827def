/* lock_wait_report.c — see lock_wait_report.h. */
#include "lock_wait_report.h"

#include <string.h>

#include "../common/timeutil.h"

/* What the operator must see at once: the first wait, another lock, or
 * the end of waiting outside the queue. */
static bool urgent(const struct lock_wait_report *wr, const struct lock_blocker *b)
{
	return !wr->shown_mono_ms || strcmp(wr->shown.lock, b->lock) != 0 || wr->shown.deferred != b->deferred;
}

static int64_t interval(const struct lock_wait_report *wr)
{
	return wr->interval_ms > 0 ? wr->interval_ms : LOCK_WAIT_REPORT_MS;
}

static bool tell(struct lock_wait_report *wr, const struct locks_acquire_opts *opts)
{
	wr->shown = wr->latest;
	wr->shown_mono_ms = now_mono_ms();
	wr->pending = false;
	if (!opts->on_wait)
		return false;
	opts->on_wait(&wr->shown, opts->userdata);
	return true;
}

bool lock_wait_report_seen(struct lock_wait_report *wr, const struct lock_blocker *b,
			   const struct locks_acquire_opts *opts)
{
	if (wr->shown_mono_ms && lock_blocker_same(&wr->shown, b)) {
		wr->pending = false; /* back to what is shown */
		return false;
	}
	wr->latest = *b;
	if (!wr->shown_mono_ms && now_mono_ms() - wr->since_mono_ms < wr->first_after_ms) {
		wr->pending = true; /* a wait too short so far to tell */
		return false;
	}
	if (urgent(wr, b) || now_mono_ms() - wr->shown_mono_ms >= interval(wr))
		return tell(wr, opts);
	wr->pending = true;
	return false;
}

bool lock_wait_report_flush(struct lock_wait_report *wr, const struct locks_acquire_opts *opts)
{
	if (!wr->pending || lock_wait_report_due_in_ms(wr) > 0)
		return false;
	return tell(wr, opts);
}

int64_t lock_wait_report_due_in_ms(const struct lock_wait_report *wr)
{
	if (!wr->pending)
		return INT64_MAX;
	int64_t left = wr->shown_mono_ms ? wr->shown_mono_ms + interval(wr) - now_mono_ms()
					 : wr->since_mono_ms + wr->first_after_ms - now_mono_ms();
	return left > 0 ? left : 0;
}

const struct lock_blocker *lock_wait_report_current(const struct lock_wait_report *wr)
{
	if (wr->pending)
		return &wr->latest;
	return wr->shown_mono_ms ? &wr->shown : NULL;
}
