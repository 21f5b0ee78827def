/* task_outage.c — see task_outage.h. */
#include "task_outage.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "task.h"

/* How often an outage is written into the task's message. */
#define OUTAGE_MESSAGE_EVERY_MS 5000

void task_outage_note(struct task_outage *o, const struct store_retry *rt, int err, const char *msg,
		      const char *what)
{
	char since[32];
	store_retry_since(rt, since, sizeof(since));
	bool busy = err == -EBUSY;
	if (store_retry_first(rt))
		log_warn("task %lld: %s since %s (%s: %s), %s", (long long)o->task_id,
			 busy ? "store busy" : "store unavailable", since, what, msg, busy ? "waiting" : "retrying");
	int64_t now = now_mono_ms();
	if (o->s && now - o->last_message_ms >= OUTAGE_MESSAGE_EVERY_MS) {
		o->last_message_ms = now;
		char text[160];
		snprintf(text, sizeof(text), "%s since %s, %s", busy ? "store busy" : "store unavailable", since,
			 busy ? "waiting" : "retrying");
		(void)task_set_message(o->s, o->task_id, text); /* it may well fail: advisory */
	}
	log_flush();
}

void task_outage_over(struct task_outage *o, struct store_retry *rt, const char *what)
{
	if (!rt->since_mono_ms)
		return;
	char since[32];
	store_retry_since(rt, since, sizeof(since));
	int64_t ms = store_retry_done(rt);
	log_info("task %lld: store available again (%s): the outage since %s lasted %lld ms", (long long)o->task_id,
		 what, since, (long long)ms);
}
