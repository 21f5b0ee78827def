/* fixture-supervisor.c — see fixture-supervisor.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fixture-supervisor.h"

#include <string.h>

#include "common/timeutil.h"
#include "tasks/task.h"

static int open_store(const char *path, bool relaxed, struct store **ret)
{
	struct store_options o = { .backend = STORE_BACKEND_SQLITE, .sqlite_path = path,
				   .relaxed_durability = relaxed };
	char err[512] = "";
	int r = store_open(&o, ret, err, sizeof(err));
	if (r < 0)
		print_error("store_open(%s): %s\n", path, err);
	return r;
}

static void on_tick(uv_timer_t *h) { (void)h; }

int fixture_sv_open(struct fixture_sv *w, const char *prefix, supervisor_exit_fn on_exit, void *userdata)
{
	memset(w, 0, sizeof(*w));
	if (fake_spawn_reset() < 0 || fixture_db_create(&w->db, STORE_BACKEND_SQLITE, "", prefix) < 0)
		return -1;
	if (open_store(w->db.path, false, &w->s) < 0 || open_store(w->db.path, true, &w->ls) < 0)
		return -1;
	w->cfg.state_dir = w->db.dir;
	w->cfg.stop_grace_ms = 10000;
	w->cfg.app_task_concurrency = 5;
	w->cfg.sftp_quiet_ms = 1000;
	uv_loop_init(&w->loop);
	uv_timer_init(&w->loop, &w->tick);
	uv_timer_start(&w->tick, on_tick, 10, 10);
	struct supervisor_opts so = { .loop = &w->loop, .store = w->s, .lock_store = w->ls, .config = &w->cfg,
				      .self_exe = "/nonexistent/boxd", .host = FIXTURE_SV_HOST, .on_exit = on_exit,
				      .userdata = userdata, .spawn = fake_spawn };
	return supervisor_new(&so, &w->sv) < 0 ? -1 : 0;
}

void fixture_sv_close(struct fixture_sv *w)
{
	supervisor_close(w->sv);
	uv_close((uv_handle_t *)&w->tick, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	supervisor_free(w->sv);
	uv_loop_close(&w->loop);
	fake_spawn_kill_all();
	store_close(w->s);
	store_close(w->ls);
	fixture_db_drop(&w->db);
}

bool fixture_sv_run_until(struct fixture_sv *w, bool (*cond)(struct fixture_sv *, int64_t), int64_t arg)
{
	int64_t until = now_mono_ms() + 10000;
	while (!cond(w, arg)) {
		if (now_mono_ms() > until)
			return false;
		uv_run(&w->loop, UV_RUN_ONCE);
	}
	return true;
}

enum task_state fixture_sv_state(struct fixture_sv *w, int64_t id)
{
	struct task t;
	assert_int_equal(task_get(w->s, id, &t), 0);
	enum task_state st = t.state;
	task_release(&t);
	return st;
}

pid_t fixture_sv_worker(struct fixture_sv *w, int64_t id)
{
	struct task t;
	assert_int_equal(task_get(w->s, id, &t), 0);
	pid_t pid = t.pid;
	task_release(&t);
	return pid;
}

bool fixture_sv_is_final(struct fixture_sv *w, int64_t id) { return task_state_is_final(fixture_sv_state(w, id)); }
