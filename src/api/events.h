/* events.h — the live event feed behind GET /api/v1/events (src/api only).
 *
 * Workers write their task rows and the lock document straight into the
 * store, not through the API, so the feed cannot be told about changes: it
 * looks for them. Two watcher threads compare what the store (and the
 * engine) says now with what they saw last and publish the differences:
 *
 *   fast (every 200 ms, and at once when the API changed something):
 *     task     a task object (GET /tasks/:id) that is new or changed: the
 *              active tasks, the tasks that ended since, and new ids
 *     lock     the lock document as GET /locks gives it, when a holder or
 *              a waiter came or went (lease and ticket renewals alone are
 *              not a change)
 *     app      an app object that is new or changed; {"id","deleted":true}
 *     volumes  {"volumes": [...]} when the list changed
 *   slow (every 2 s, and soon after a task event):
 *     service  a service's status (GET /services/:name)
 *     backups  {"backups": [...]} when the list changed
 *
 * Every event has an id "EPOCH-SEQ" (EPOCH: random per daemon start, SEQ:
 * counting up), and the last 1,024 events are kept, so a client that lost
 * the stream resumes with Last-Event-ID without a gap. A client whose id is
 * from another epoch, too old, or from before the watchers last slept gets
 * a `resync` event: fetch everything again.
 *
 * Cheap when nobody listens: without subscribers the watchers block on a
 * condition variable and run no query; 30 s after the last subscriber left
 * they drop what they saw and close their store connections (the next
 * subscriber's first look publishes the current state of everything they
 * watch: active tasks, locks, apps, volumes, services, backups).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"

struct api_events;
struct api_events_sub;

int api_events_new(const struct boxd_config *cfg, struct api_events **ret);
/* Ends every stream (their reads return 0) and stops the watchers. */
void api_events_close(struct api_events *ev);
/* After api_events_close() and once no stream reads any more. Accepts NULL. */
void api_events_free(struct api_events *ev);

/* Something changed through the API: look now instead of at the next tick.
 * Thread-safe, cheap, accepts NULL. */
void api_events_nudge(struct api_events *ev);

/* A stream: `last_id` is the client's Last-Event-ID (NULL or "" for none);
 * a heartbeat event goes out after `heartbeat_ms` without any other. */
int api_events_subscribe(struct api_events *ev, const char *last_id, int64_t heartbeat_ms,
			 struct api_events_sub **ret);
/* Block until there is something to send; copy up to max bytes of SSE text
 * into buf. Returns the count, or 0 when the feed closed. */
size_t api_events_read(struct api_events_sub *sub, char *buf, size_t max);
void api_events_unsubscribe(struct api_events_sub *sub);
