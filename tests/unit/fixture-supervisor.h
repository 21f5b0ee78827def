/* fixture-supervisor.h — the real supervisor on a real SQLite store (a
 * fresh file, fixture-store.h) and a real libuv loop, with the FAKE
 * spawner of fake-spawn.h as its spawn seam: what test-supervisor.c and
 * test-sched.c start from.
 *
 *	struct fixture_sv w;
 *	fixture_sv_open(&w, "sched", on_exit, userdata);   in a setup
 *	... supervisor_spawn(w.sv, ...), fixture_sv_run_until(&w, cond, id) ...
 *	fixture_sv_close(&w);                               in the teardown
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "fake-spawn.h"
#include "fixture-store.h"
#include "tasks/supervisor.h"

/* The supervisor's owner id: host "host-a", boot tag 000000000001. */
#define FIXTURE_SV_HOST "host-a/000000000001"

struct fixture_sv {
	struct fixture_db db;
	struct store *s, *ls;   /* the loop's connection, its lock connection */
	struct boxd_config cfg; /* state_dir: db.dir; grace 10 s; 5 app tasks */
	uv_loop_t loop;
	uv_timer_t tick;        /* wakes UV_RUN_ONCE every 10 ms */
	struct supervisor *sv;  /* host FIXTURE_SV_HOST */
};

/* 0, or -1 with the reason on stderr (for a cmocka setup). */
int fixture_sv_open(struct fixture_sv *w, const char *prefix, supervisor_exit_fn on_exit, void *userdata);
/* Close the supervisor (handles of others on the loop must be closed
 * first), run the loop dry, kill the stand-ins left, drop the database. */
void fixture_sv_close(struct fixture_sv *w);

/* Run the loop until cond(w, arg) holds; false after 10 s. */
bool fixture_sv_run_until(struct fixture_sv *w, bool (*cond)(struct fixture_sv *, int64_t), int64_t arg);

/* Task id's state, worker pid (0: none yet) and whether it ended. */
enum task_state fixture_sv_state(struct fixture_sv *w, int64_t id);
pid_t fixture_sv_worker(struct fixture_sv *w, int64_t id);
bool fixture_sv_is_final(struct fixture_sv *w, int64_t id);
