/* host_liveness.c — alive, gone or unknown by the hosts table (see
 * host_liveness.h). */
#include "host_liveness.h"

#include <errno.h>

int host_liveness(struct store *s, const char *host_id, enum host_state *ret, int64_t *ret_age_ms)
{
	int64_t now, beat = 0;
	int r = store_now_ms(s, &now);
	if (r < 0)
		return r;
	r = store_query_int64(s, &beat, "SELECT heartbeat_at FROM hosts WHERE id = ?", "s", host_id);
	if (r == -ENOENT) {
		*ret = HOST_UNKNOWN;
		return 0;
	}
	if (r < 0)
		return r;
	int64_t age = now - beat;
	*ret = host_age_alive(age) ? HOST_ALIVE : HOST_GONE;
	if (ret_age_ms)
		*ret_age_ms = age;
	return 0;
}
