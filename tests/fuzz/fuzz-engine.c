/* fuzz-engine.c — replies of the container engine (input from outside):
 * every parser of engine_reply.c and engine_wire.c, through
 * engine_fuzz_one(); the progress stream of an image pull (engine_pull.c)
 * and the demultiplexer of a followed log (engine_logstream.c), both fed
 * in two pieces cut where the first byte says, as they arrive from the
 * network. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_pull_stream(const char *data, size_t size, size_t cut)
{
	struct engine_pull_stream s = { 0 };
	struct engine_pull_progress p;
	if (engine_pull_stream_feed(&s, data, cut) == 0 && engine_pull_stream_feed(&s, data + cut, size - cut) == 0)
		(void)engine_pull_stream_finish(&s);
	engine_pull_stream_progress(&s, &p);
	if (p.layers_done > p.layers || (s.failed && !memchr(s.error, '\0', sizeof(s.error))))
		abort();
	engine_pull_stream_release(&s);
}

static void fuzz_log_demux(const char *data, size_t size, size_t cut)
{
	char *out = malloc(size + 1), *whole;
	size_t n1 = 0, n2 = 0, whole_len;
	if (!out)
		return;
	struct engine_log_demux d = { 0 };
	int r = engine_log_demux_feed(&d, data, cut, out, &n1);
	if (r == 0)
		r = engine_log_demux_feed(&d, data + cut, size - cut, out + n1, &n2);
	/* In pieces or whole, the same bytes (or the same refusal). */
	if (engine_demux_logs(data, size, 0, &whole, &whole_len) == 0) {
		if (r != 0 || n1 + n2 != whole_len || memcmp(out, whole, whole_len) != 0)
			abort();
		free(whole);
	} else if (r == 0) {
		abort();
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	engine_fuzz_one(data, size);
	size_t cut = size ? data[0] % (size + 1) : 0;
	fuzz_pull_stream((const char *)data, size, cut);
	fuzz_log_demux((const char *)data, size, cut);
	return 0;
}
