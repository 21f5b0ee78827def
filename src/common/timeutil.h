/* timeutil.h — clocks and time formatting.
 *
 * Durations and deadlines inside one process use the monotonic clock
 * (now_mono_ms). Times that are stored or compared across processes use wall
 * time in milliseconds since the epoch (now_wall_ms); across hosts only the
 * database's clock is trusted (see store_now_ms()).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

int64_t now_mono_ms(void);
int64_t now_mono_us(void);
int64_t now_wall_ms(void);

/* Sleep for at least `us` microseconds (restarts on EINTR). */
void sleep_us(int64_t us);

/* Format wall-clock milliseconds as RFC 3339 UTC with milliseconds,
 * e.g. 2026-11-28T00:28:20.123Z. `buf` must hold at least 32 bytes. */
void format_rfc3339_ms(int64_t wall_ms, char *buf, size_t len);

/* Parse a duration such as "30", "30s", "500ms", "5m", "2h" into
 * milliseconds. Returns 0 or -EINVAL. */
int parse_duration_ms(const char *s, int64_t *ret_ms);
