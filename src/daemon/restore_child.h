/* restore_child.h — the daemon's side of POST /api/v1/box/restore: the
 * `boxd restore` child process and the record of how it ended
 * (backups/box_restore_status.h; docs/ARCHITECTURE.md "Box restore
 * through the API").
 *
 * An API thread hands the arguments over (restore_child_request()) and
 * wakes the loop; the loop thread spawns the child with libuv (argv, no
 * shell; stdout and stderr into <state>/box-restore/log; the token in its
 * environment) and, when it exits, records the outcome from the child's
 * result.json and calls on_end: ok → the daemon re-executes itself (its
 * store was replaced under it); not ok → nothing changed, restore mode
 * ends.
 */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "cli_common.h"

struct restore_child {
	uv_loop_t *loop;
	const struct boxd_config *cfg;
	const struct boxd_globals *g;
	const char *self_exe;
	void (*on_end)(void *userdata, bool ok);
	void *userdata;
	/* Set by the API thread, taken by the loop. */
	pthread_mutex_t mu;
	char **argv;  /* the whole command line, or NULL */
	char token[64];
	/* Restore mode: from the request until the child ended. */
	atomic_bool active;
	uv_process_t proc;
	bool spawned;
};

/* Once, before the API serves. */
void restore_child_init(struct restore_child *rc, uv_loop_t *loop, const struct boxd_config *cfg,
			const struct boxd_globals *g, const char *self_exe, void (*on_end)(void *, bool), void *userdata);

/* API thread: keep the arguments; the caller then wakes the loop. */
int restore_child_request(struct restore_child *rc, json_t *args, const char *token, char *err, size_t errlen);

/* Loop thread (on a wake): start a requested child. */
void restore_child_poll(struct restore_child *rc);

/* At the daemon's start: a record left "running" (the daemon stopped
 * while its child ran) takes the child's result.json, or becomes failed
 * `interrupted` without one; a success not yet
 * followed by a start is marked restarted. */
void restore_child_at_start(const struct boxd_config *cfg);
