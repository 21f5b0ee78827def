/* taskbench.c — task benchmarks against a running daemon, through its API
 * on the unix socket (one keep-alive connection). Used by scripts/bench.sh.
 *
 *	taskbench --socket PATH start N
 *		N `hold` tasks of 0 s on distinct locks, posted one at a time
 *		(each waits for the previous to end, so every start is the start
 *		of an idle daemon). Start latency = startedAt - createdAt of the
 *		task (API POST → worker running, both stamped by boxd).
 *	taskbench --socket PATH rate N
 *		N `hold` tasks of 0 s on distinct locks posted as fast as
 *		possible, then waits until none is active. Rate = N / (last
 *		finishedAt - first createdAt).
 *	taskbench --socket PATH --pid PID rss N SECONDS
 *		daemon VmRSS idle, then with N `hold` tasks of SECONDS on
 *		distinct locks running; stops them afterwards.
 *
 * Output: one line of JSON per mode.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"

static CURL *curl;
static const char *run_tag;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "taskbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

struct buf {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	size_t len = size * n;
	char *grown = realloc(b->data, b->len + len + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, p, len);
	b->data = grown;
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* One request; returns the parsed JSON body (NULL for an empty one) and the
 * status in *ret_status. */
static json_t *request(const char *method, const char *path, const char *body, long *ret_status)
{
	char url[512];
	snprintf(url, sizeof(url), "http://boxd%s", path);
	struct buf b = { 0 };
	struct curl_slist *hdr = NULL;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	CURLcode rc = curl_easy_perform(curl);
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK)
		die("%s %s: %s", method, path, curl_easy_strerror(rc));
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	*ret_status = status;
	json_t *j = NULL;
	if (b.len) {
		json_error_t e;
		j = json_loads(b.data, 0, &e);
		if (!j)
			die("%s %s: response is not JSON: %.200s", method, path, b.data);
	}
	free(b.data);
	return j;
}

static json_t *get(const char *path)
{
	long st;
	json_t *j = request("GET", path, NULL, &st);
	if (st != 200)
		die("GET %s: HTTP %ld", path, st);
	return j;
}

static int64_t post_hold(const char *lock, double seconds)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"type\":\"hold\",\"args\":{\"locks\":[{\"name\":\"%s\"}],\"seconds\":%g}}", lock,
		 seconds);
	long st;
	json_t *j = request("POST", "/api/v1/tasks", body, &st);
	if (st != 201 && st != 200 && st != 202)
		die("POST /api/v1/tasks: HTTP %ld: %s", st, j ? json_dumps(j, JSON_COMPACT) : "");
	json_t *id = json_object_get(j, "taskId");
	if (!json_is_integer(id))
		die("POST /api/v1/tasks: no id in the answer");
	int64_t v = json_integer_value(id);
	json_decref(j);
	return v;
}

/* RFC 3339 with milliseconds ("2026-11-28T00:28:20.123Z") → ms; -1 if null. */
static int64_t time_ms(json_t *v)
{
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	struct tm tm = { 0 };
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		die("bad time '%s'", s);
	int64_t ms = (int64_t)timegm(&tm) * 1000;
	if (*rest == '.') {
		int64_t frac = 0, scale = 1000;
		for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
			scale /= 10;
			frac += (*rest - '0') * scale;
			if (scale == 0)
				scale = 1; /* ignore digits past ms */
		}
		ms += frac;
	}
	return ms;
}

static bool final_state(const char *s)
{
	return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

static int64_t count_tasks(const char *state)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/tasks?state=%s&per_page=1", state);
	json_t *j = get(path);
	int64_t n = json_integer_value(json_object_get(j, "total"));
	json_decref(j);
	return n;
}

static void wait_count(const char *state, int64_t want_at_least, int64_t want_at_most, int timeout_s)
{
	int64_t deadline = now_mono_ms() + timeout_s * 1000LL;
	for (;;) {
		int64_t n = count_tasks(state);
		if (n >= want_at_least && n <= want_at_most)
			return;
		if (now_mono_ms() > deadline)
			die("waited %ds for %s tasks in [%" PRId64 ", %" PRId64 "], have %" PRId64, timeout_s, state,
			    want_at_least, want_at_most, n);
		sleep_us(20000);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

/* ---- start latency ------------------------------------------------------- */

static void bench_start(long n)
{
	int64_t *lat = calloc((size_t)n, sizeof(int64_t));
	size_t got = 0;
	long failed = 0;
	for (long i = 0; i < n; i++) {
		char lock[64];
		snprintf(lock, sizeof(lock), "bench:%s:start:%ld", run_tag, i);
		int64_t id = post_hold(lock, 0);
		char path[64];
		snprintf(path, sizeof(path), "/api/v1/tasks/%" PRId64, id);
		int64_t deadline = now_mono_ms() + 60000;
		for (;;) {
			sleep_us(5000);
			json_t *t = get(path);
			const char *state = json_string_value(json_object_get(t, "state"));
			if (state && final_state(state)) {
				int64_t c = time_ms(json_object_get(t, "createdAt"));
				int64_t s = time_ms(json_object_get(t, "startedAt"));
				if (strcmp(state, "succeeded") == 0 && c > 0 && s > 0)
					lat[got++] = s - c;
				else
					failed++;
				json_decref(t);
				break;
			}
			json_decref(t);
			if (now_mono_ms() > deadline)
				die("task %" PRId64 " did not end within 60 s", id);
		}
	}
	qsort(lat, got, sizeof(int64_t), cmp_i64);
	printf("{\"bench\": \"task-start\", \"tasks\": %zu, \"failed\": %ld, \"p50_ms\": %" PRId64 ", \"p99_ms\": %" PRId64
	       ", \"max_ms\": %" PRId64 "}\n",
	       got, failed, got ? pct(lat, got, 0.5) : -1, got ? pct(lat, got, 0.99) : -1, got ? lat[got - 1] : -1);
	free(lat);
}

/* ---- rate ---------------------------------------------------------------- */

static void bench_rate(long n)
{
	int64_t t0 = now_mono_us();
	int64_t first = 0, last = 0;
	for (long i = 0; i < n; i++) {
		char lock[64];
		snprintf(lock, sizeof(lock), "bench:%s:rate:%ld", run_tag, i);
		int64_t id = post_hold(lock, 0);
		if (i == 0)
			first = id;
		last = id;
	}
	double post_s = (double)(now_mono_us() - t0) / 1e6;
	wait_count("active", 0, 0, 600);
	double client_s = (double)(now_mono_us() - t0) / 1e6;

	int64_t created_min = INT64_MAX, finished_max = 0;
	long seen = 0, ok = 0;
	for (int page = 1;; page++) {
		char path[128];
		snprintf(path, sizeof(path), "/api/v1/tasks?type=hold&per_page=1000&page=%d", page);
		json_t *j = get(path);
		json_t *tasks = json_object_get(j, "tasks");
		size_t k = json_array_size(tasks);
		for (size_t i = 0; i < k; i++) {
			json_t *t = json_array_get(tasks, i);
			int64_t id = json_integer_value(json_object_get(t, "id"));
			if (id < first || id > last)
				continue;
			seen++;
			if (strcmp(json_string_value(json_object_get(t, "state")), "succeeded") == 0)
				ok++;
			int64_t c = time_ms(json_object_get(t, "createdAt"));
			int64_t f = time_ms(json_object_get(t, "finishedAt"));
			if (c > 0 && c < created_min)
				created_min = c;
			if (f > finished_max)
				finished_max = f;
		}
		json_decref(j);
		if (k < 1000)
			break;
	}
	double secs = (double)(finished_max - created_min) / 1000.0;
	printf("{\"bench\": \"task-rate\", \"tasks\": %ld, \"seen\": %ld, \"succeeded\": %ld, \"seconds\": %.3f, "
	       "\"tasks_per_s\": %.1f, \"post_seconds\": %.3f, \"posts_per_s\": %.1f, \"client_seconds\": %.3f}\n",
	       n, seen, ok, secs, secs > 0 ? (double)n / secs : 0.0, post_s, (double)n / post_s, client_s);
}

/* ---- RSS ----------------------------------------------------------------- */

/* A "Name:   N kB" line of /proc/PID/<file> (status: VmRSS, RssAnon,
 * RssFile; smaps_rollup: Pss); -1 when missing. */
static long proc_kb(pid_t pid, const char *file, const char *name)
{
	char path[64], line[256], fmt[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	snprintf(fmt, sizeof(fmt), "%s: %%ld kB", name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static long vmrss_kb(pid_t pid)
{
	long kb = proc_kb(pid, "status", "VmRSS");
	if (kb < 0)
		die("no VmRSS for pid %d", (int)pid);
	return kb;
}

/* The worker process of task `id` (0 when it has none now). */
static pid_t task_pid(int64_t id)
{
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tasks/%" PRId64, id);
	long st;
	json_t *j = request("GET", path, NULL, &st);
	pid_t pid = st == 200 ? (pid_t)json_integer_value(json_object_get(j, "pid")) : 0;
	json_decref(j);
	return pid;
}

static void bench_rss(pid_t pid, long n, double seconds)
{
	/* Idle: RSS counts every shared-library page the daemon touched;
	 * PSS shares them out among the processes that map them; anon is
	 * the heap, stacks and arenas (docs/ARCHITECTURE.md, "Memory"). */
	long idle = vmrss_kb(pid), idle_anon = proc_kb(pid, "status", "RssAnon"),
	     idle_file = proc_kb(pid, "status", "RssFile"), idle_pss = proc_kb(pid, "smaps_rollup", "Pss");
	int64_t before = count_tasks("active");
	int64_t *ids = calloc((size_t)n, sizeof(int64_t));
	for (long i = 0; i < n; i++) {
		char lock[64];
		snprintf(lock, sizeof(lock), "bench:%s:rss:%ld", run_tag, i);
		ids[i] = post_hold(lock, seconds);
	}
	wait_count("running", before + n, INT64_MAX, 120);
	sleep_us(500000);
	long busy = vmrss_kb(pid);
	int64_t running = count_tasks("running");
	/* The workers of the running tasks: mean RSS and PSS. */
	long w_n = 0, w_rss = 0, w_pss = 0;
	for (long i = 0; i < n; i++) {
		pid_t wp = task_pid(ids[i]);
		long r = wp > 0 ? proc_kb(wp, "status", "VmRSS") : -1, q = wp > 0 ? proc_kb(wp, "smaps_rollup", "Pss") : -1;
		if (r > 0 && q > 0) {
			w_n++;
			w_rss += r;
			w_pss += q;
		}
	}
	for (long i = 0; i < n; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/api/v1/tasks/%" PRId64 "/stop", ids[i]);
		long st;
		json_t *j = request("POST", path, "", &st);
		json_decref(j);
		if (st != 204 && st != 409)
			die("POST %s: HTTP %ld", path, st);
	}
	wait_count("active", 0, before, 120);
	sleep_us(500000);
	long after = vmrss_kb(pid);
	printf("{\"bench\": \"rss\", \"idle_kb\": %ld, \"idle_anon_kb\": %ld, \"idle_file_kb\": %ld, \"idle_pss_kb\": %ld, "
	       "\"tasks\": %ld, \"running\": %" PRId64 ", \"with_tasks_kb\": %ld, \"after_stop_kb\": %ld, "
	       "\"workers_measured\": %ld, \"worker_rss_kb\": %ld, \"worker_pss_kb\": %ld}\n",
	       idle, idle_anon, idle_file, idle_pss, n, running, busy, after, w_n, w_n ? w_rss / w_n : -1,
	       w_n ? w_pss / w_n : -1);
	free(ids);
}

static void usage(void)
{
	fprintf(stderr, "usage: taskbench --socket PATH [--tag T] start N\n"
			"       taskbench --socket PATH [--tag T] rate N\n"
			"       taskbench --socket PATH [--tag T] --pid PID rss N SECONDS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "tag", required_argument, NULL, 't' },
		{ 0 },
	};
	const char *sock = NULL;
	pid_t pid = 0;
	char tag[32];
	snprintf(tag, sizeof(tag), "%d", (int)getpid());
	run_tag = tag;
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'p': pid = (pid_t)atoi(optarg); break;
		case 't': run_tag = optarg; break;
		default: usage();
		}
	}
	if (!sock || optind >= argc)
		usage();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
	const char *mode = argv[optind];
	if (strcmp(mode, "start") == 0 && argc - optind == 2)
		bench_start(atol(argv[optind + 1]));
	else if (strcmp(mode, "rate") == 0 && argc - optind == 2)
		bench_rate(atol(argv[optind + 1]));
	else if (strcmp(mode, "rss") == 0 && argc - optind == 3 && pid > 0)
		bench_rss(pid, atol(argv[optind + 1]), atof(argv[optind + 2]));
	else
		usage();
	fflush(stdout);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	return 0;
}
