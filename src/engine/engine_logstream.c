/* engine_logstream.c — the pure half of following a container's log: the
 * frame demultiplexer fed in pieces (engine-internal.h). No I/O; the
 * transport is in engine_follow.c.
 */
#include "engine/engine-internal.h"

#include <errno.h>
#include <string.h>

int engine_log_demux_feed(struct engine_log_demux *d, const char *in, size_t n, char *out, size_t *out_len)
{
	size_t o = 0;

	*out_len = 0;
	if (d->raw) {
		if (n)
			memcpy(out, in, n);
		*out_len = n;
		return 0;
	}
	unsigned streams = d->streams & (ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR);
	if (!streams)
		streams = ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR;
	while (n > 0) {
		if (d->left > 0) {
			size_t take = n < d->left ? n : d->left;
			if (d->keep) {
				memcpy(out + o, in, take);
				o += take;
			}
			in += take;
			n -= take;
			d->left -= take;
			continue;
		}
		size_t want = sizeof(d->hdr) - d->hdr_len, take = n < want ? n : want;
		memcpy(d->hdr + d->hdr_len, in, take);
		d->hdr_len += take;
		in += take;
		n -= take;
		if (d->hdr_len < sizeof(d->hdr))
			break;
		d->hdr_len = 0;
		unsigned type = d->hdr[0];
		/* Same rule as engine_demux_logs(): stream 0-3, three zero bytes. */
		if (type > 3 || d->hdr[1] || d->hdr[2] || d->hdr[3]) {
			*out_len = o;
			return -EBADMSG;
		}
		d->left = (size_t)d->hdr[4] << 24 | (size_t)d->hdr[5] << 16 | (size_t)d->hdr[6] << 8 | d->hdr[7];
		d->keep = (type == 1 && (streams & ENGINE_LOGS_STDOUT)) || (type >= 2 && (streams & ENGINE_LOGS_STDERR));
	}
	*out_len = o;
	return 0;
}
