/* fuzz-engine.c — replies of the container engine (input from outside):
 * every parser of engine_reply.c and engine_wire.c, through engine_fuzz_one(). */
#include <stdint.h>

#include "engine/engine-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	engine_fuzz_one(data, size);
	return 0;
}
