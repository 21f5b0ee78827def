/* store_retry.c — see store_retry.h. */
#include "store_retry.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "../common/timeutil.h"

bool store_error_is_transient(int err)
{
	switch (err) {
	case -EBUSY:        /* busy, locked, lock wait timeout, deadlock */
	case -ECONNRESET:   /* connection lost */
	case -ENOTCONN:     /* lost, and reconnecting failed (for now) */
	case -ECONNREFUSED: /* the server is not listening (restarting) */
	case -EAGAIN:       /* too many connections, server resources */
	case -ENOSPC:       /* the disk is full */
	case -ETIMEDOUT:
	case -EINTR:
		return true;
	default:
		return false;
	}
}

void store_retry_init(struct store_retry *rt, int64_t grace_ms)
{
	*rt = (struct store_retry){ .grace_ms = grace_ms };
}

int store_retry_failed(struct store_retry *rt, int err)
{
	if (!store_error_is_transient(err))
		return err;
	if (rt->since_mono_ms == 0) {
		rt->since_mono_ms = now_mono_ms();
		if (rt->since_mono_ms == 0)
			rt->since_mono_ms = 1;
		rt->since_wall_ms = now_wall_ms();
		rt->attempts = 0;
	}
	rt->attempts++;
	rt->last_err = err;
	bool waiting = rt->busy_is_waiting && err == -EBUSY;
	if (!waiting && rt->grace_ms > 0 && now_mono_ms() - rt->since_mono_ms >= rt->grace_ms)
		return err;
	return 0;
}

bool store_retry_first(const struct store_retry *rt) { return rt->since_mono_ms && rt->attempts == 1; }

int64_t store_retry_delay_ms(const struct store_retry *rt)
{
	int64_t ms = STORE_RETRY_FIRST_MS;
	for (unsigned i = 1; i < rt->attempts && ms < STORE_RETRY_CAP_MS; i++)
		ms *= 2;
	return ms > STORE_RETRY_CAP_MS ? STORE_RETRY_CAP_MS : ms;
}

void store_retry_sleep(const struct store_retry *rt) { sleep_us(store_retry_delay_ms(rt) * 1000); }

int64_t store_retry_elapsed_ms(const struct store_retry *rt)
{
	return rt->since_mono_ms ? now_mono_ms() - rt->since_mono_ms : 0;
}

void store_retry_since(const struct store_retry *rt, char *buf, size_t len)
{
	time_t t = (time_t)(rt->since_wall_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char hms[16];
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	snprintf(buf, len, "%s UTC", hms);
}

int64_t store_retry_done(struct store_retry *rt)
{
	int64_t ms = store_retry_elapsed_ms(rt);
	rt->since_mono_ms = 0;
	rt->since_wall_ms = 0;
	rt->attempts = 0;
	rt->last_err = 0;
	return ms;
}
