/* task_wait.c — follow one task until it ends: `task wait` and
 * `lock hold --wait`. See cli_task_wait() in boxctl.h.
 *
 * It polls GET /api/v1/tasks/:id every POLL_MS. Once boxd has answered, a
 * connection that breaks is retried for RECONNECT_MS: tasks outlive a restart
 * of the daemon, so a wait should too. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "boxctl.h"
#include "common/timeutil.h"
#include "format.h"
#include "progress.h"

#define POLL_MS 200
#define RECONNECT_MS 15000

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = sig;
}

/* Sleep up to ms, waking early on SIGINT/SIGTERM. */
static void nap(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (!interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool is_final(const char *state)
{
	return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0;
}

/* The task ended: say how. */
static int report_end(const struct cli *cli, int64_t id, json_t *task, const char *state)
{
	if (strcmp(state, "succeeded") == 0) {
		if (!cli->json)
			printf("task %lld succeeded\n", (long long)id);
		return CLI_EXIT_OK;
	}
	char why[1024];
	format_task_error(json_object_get(task, "error"), why, sizeof(why));
	fprintf(stderr, "boxctl: task %lld %s%s%s\n", (long long)id, state, *why ? ": " : "", why);
	return CLI_EXIT_API;
}

int cli_task_wait(struct cli *cli, int64_t id, int64_t timeout_ms)
{
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tasks/%lld", (long long)id);
	struct progress p;
	progress_init(&p, stdout, id);

	struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	int64_t start = now_mono_ms(), lost_since = -1;
	bool answered = false;
	char state[32] = "unknown";
	struct api_answer a = { 0 };
	int code;
	for (;;) {
		char err[512];
		api_answer_release(&a);
		int r = api_request(cli, "GET", path, NULL, &a, err, sizeof(err));
		int64_t now = now_mono_ms();
		if (r < 0) {
			if (lost_since < 0)
				lost_since = now;
			if (!answered || now - lost_since >= RECONNECT_MS) {
				progress_end(&p);
				code = api_report_transport(cli, r, err);
				break;
			}
			if (!cli->json)
				progress_update(&p, "", state, 0, "lost the connection to boxd; retrying");
		} else if (a.status != 200) {
			progress_end(&p);
			code = api_report(cli, &a);
			break;
		} else {
			answered = true;
			lost_since = -1;
			json_t *t = a.json;
			const char *st = json_string_value(json_object_get(t, "state"));
			const char *type = json_string_value(json_object_get(t, "type"));
			snprintf(state, sizeof(state), "%s", st ? st : "unknown");
			/* Plain output skips the last state: the end line says it. */
			if (!cli->json && (p.tty || !is_final(state))) {
				char text[1024];
				format_task_activity(t, text, sizeof(text));
				progress_update(&p, type ? type : "", state, (int)json_integer_value(json_object_get(t, "percent")),
						text);
			}
			if (is_final(state)) {
				progress_end(&p);
				if (cli->json)
					api_print_raw(&a);
				code = report_end(cli, id, t, state);
				break;
			}
		}
		if (timeout_ms >= 0 && now - start >= timeout_ms) {
			char limit[32];
			format_duration(timeout_ms, limit, sizeof(limit));
			progress_end(&p);
			if (cli->json && answered)
				api_print_raw(&a);
			fprintf(stderr, "boxctl: task %lld is still %s after %s; stopped waiting (the task goes on)\n",
				(long long)id, state, limit);
			code = CLI_EXIT_TIMEOUT;
			break;
		}
		nap(POLL_MS);
		if (interrupted) {
			progress_end(&p);
			fprintf(stderr, "boxctl: stopped waiting; task %lld goes on (`boxctl task stop %lld` stops it)\n",
				(long long)id, (long long)id);
			code = 128 + interrupted;
			break;
		}
	}
	api_answer_release(&a);
	progress_release(&p);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return code;
}

int64_t cli_answer_task_id(const struct api_answer *a)
{
	return json_integer_value(json_object_get(a->json, "taskId"));
}

int cli_task_started(struct cli *cli, struct api_answer *a, bool wait, const char *line)
{
	int64_t id = cli_answer_task_id(a);
	if (cli->json && !wait)
		api_print_raw(a);
	else if (!cli->json)
		printf("%s\n", line);
	api_answer_release(a);
	if (id <= 0) {
		fprintf(stderr, "boxctl: boxd did not say which task it created\n");
		return CLI_EXIT_API;
	}
	return wait ? cli_task_wait(cli, id, -1) : CLI_EXIT_OK;
}

int cli_task_started_as(struct cli *cli, struct api_answer *a, bool wait, const char *what)
{
	char line[160];
	snprintf(line, sizeof(line), "%s: task %lld", what, (long long)cli_answer_task_id(a));
	return cli_task_started(cli, a, wait, line);
}
