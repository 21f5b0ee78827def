/* service-internal.h — what service_ops.c and service_status.c share. */
#pragma once

/* The first health probe's timeout: a rebuild's wait starts with it (and
 * doubles it), the status asks once with it. */
#define SERVICE_PROBE_TIMEOUT_MS 500
