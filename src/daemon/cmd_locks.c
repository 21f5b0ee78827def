/* cmd_locks.c — `boxd locks list|hold|reap|repair`: see and exercise the lock
 * store from a shell, without the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "locks/locks.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void format_age(int64_t ms, char *buf, size_t len)
{
	if (ms < 0)
		ms = 0;
	if (ms < 10000)
		snprintf(buf, len, "%.1fs", ms / 1000.0);
	else if (ms < 3600 * 1000)
		snprintf(buf, len, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
	else
		snprintf(buf, len, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
}

static void owner_label(const struct lock_owner *o, char *buf, size_t len)
{
	if (o->task_id > 0)
		snprintf(buf, len, "task %lld", (long long)o->task_id);
	else
		snprintf(buf, len, "pid %d", o->pid);
}

static int locks_list(const struct boxd_config *g, int argc, char **argv)
{
	bool as_json = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else {
			fprintf(stderr, "boxd locks list: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	struct store *s;
	if (boxd_open_store(g, true, &s) < 0)
		return 1;
	struct lock_doc doc;
	int64_t version;
	char *text;
	int r = locks_read(s, &doc, &version, &text);
	if (r < 0) {
		fprintf(stderr, "boxd locks list: %s\n", store_errmsg(s));
		store_close(s);
		return 1;
	}
	int64_t now = 0;
	store_now_ms(s, &now);
	if (as_json) {
		json_t *root = json_loads(text, 0, NULL);
		json_object_set_new(root, "version", json_integer(version));
		char *out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("%s\n", out);
		free(out);
		json_decref(root);
	} else {
		printf("lock document version %lld: %zu held, %zu waiting\n", (long long)version, doc.n_holders,
		       doc.n_waiters);
		if (doc.n_holders) {
			printf("\n%-32s %-9s %-12s %-8s %s\n", "LOCK", "MODE", "OWNER", "PID", "HELD FOR");
			for (size_t i = 0; i < doc.n_holders; i++) {
				const struct lock_holder *h = &doc.holders[i];
				char who[32], age[32];
				owner_label(&h->owner, who, sizeof(who));
				format_age(now - h->owner.acquired_at_ms, age, sizeof(age));
				printf("%-32s %-9s %-12s %-8d %s\n", h->lock.name, lock_mode_name(h->lock.mode), who,
				       h->owner.pid, age);
			}
		}
		if (doc.n_waiters) {
			printf("\n%-7s %-12s %-8s %s\n", "TICKET", "OWNER", "PID", "WANTS");
			for (size_t i = 0; i < doc.n_waiters; i++) {
				const struct lock_waiter *w = &doc.waiters[i];
				char who[32];
				owner_label(&w->owner, who, sizeof(who));
				printf("%-7lld %-12s %-8d ", (long long)w->ticket, who, w->owner.pid);
				for (size_t j = 0; j < w->n_locks; j++)
					printf("%s%s:%s", j ? " " : "", w->locks[j].name, lock_mode_name(w->locks[j].mode));
				printf("\n");
			}
		}
	}
	free(text);
	lock_doc_release(&doc);
	store_close(s);
	return 0;
}

static void print_blocker(const struct lock_blocker *b, void *userdata)
{
	(void)userdata;
	char who[48];
	if (b->task_id > 0)
		snprintf(who, sizeof(who), "task %lld", (long long)b->task_id);
	else
		snprintf(who, sizeof(who), "pid %d", b->pid);
	fprintf(stderr, "waiting for %s (%s %s, %s)\n", b->lock, b->queued ? "queued behind" : "held by", who,
		lock_mode_name(b->mode));
}

static int locks_hold(const struct boxd_config *g, int argc, char **argv)
{
	static const struct option options[] = {
		{ "for", required_argument, NULL, 'f' },
		{ "wait", required_argument, NULL, 'w' },
		{ 0 },
	};
	int64_t hold_ms = -1, wait_ms = -1;
	int c;
	while ((c = getopt_long(argc, argv, "f:w:", options, NULL)) != -1) {
		int64_t *dst = c == 'f' ? &hold_ms : c == 'w' ? &wait_ms : NULL;
		if (!dst || parse_duration_ms(optarg, dst) < 0) {
			fprintf(stderr, "boxd locks hold: --for and --wait take a duration in seconds (e.g. 30, 1.5, 500ms)\n");
			return 2;
		}
	}
	size_t n = (size_t)(argc - optind);
	if (n == 0 || hold_ms < 0) {
		fprintf(stderr, "usage: boxd locks hold NAME[:shared|:exclusive]... --for SECONDS [--wait SECONDS]\n");
		return 2;
	}
	struct lock_req *reqs = calloc(n, sizeof(*reqs));
	for (size_t i = 0; i < n; i++) {
		if (lock_req_parse(argv[optind + (int)i], &reqs[i]) < 0) {
			fprintf(stderr, "boxd locks hold: invalid lock '%s' (names are letters, digits and :._-@/; "
					"append :shared or :exclusive)\n", argv[optind + (int)i]);
			free(reqs);
			return 2;
		}
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct store *s;
	if (boxd_open_store(g, true, &s) < 0) {
		free(reqs);
		return 1;
	}
	struct lock_owner me;
	int r = lock_owner_self(&me, 0);
	if (r < 0) {
		fprintf(stderr, "boxd locks hold: cannot identify this process: %s\n", strerror(-r));
		goto out;
	}
	struct locks_acquire_opts opts = { .timeout_ms = wait_ms, .on_wait = print_blocker, .cancel = &interrupted };
	int64_t token;
	struct lock_blocker blocker;
	r = locks_acquire(s, &me, reqs, n, &opts, &token, &blocker);
	if (r == -ETIMEDOUT || r == -EAGAIN) {
		fprintf(stderr, "boxd locks hold: gave up after %.1fs: %s is %s task %lld (pid %d)\n",
			wait_ms / 1000.0, blocker.lock, blocker.queued ? "queued for by" : "held by",
			(long long)blocker.task_id, blocker.pid);
		goto out;
	}
	if (r == -ECANCELED) {
		fprintf(stderr, "boxd locks hold: interrupted while waiting\n");
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "boxd locks hold: %s\n", store_errmsg(s));
		goto out;
	}
	printf("acquired (fencing token %lld), holding for %.1fs\n", (long long)token, hold_ms / 1000.0);
	fflush(stdout);
	int64_t until = now_mono_ms() + hold_ms;
	while (!interrupted && now_mono_ms() < until) {
		int64_t left = until - now_mono_ms();
		sleep_us((left > 100 ? 100 : left) * 1000);
	}
	r = locks_unlock(s, &me, NULL, 0, NULL);
	if (r < 0) {
		fprintf(stderr, "boxd locks hold: release failed: %s\n", store_errmsg(s));
		goto out;
	}
	printf("released\n");
out:
	free(reqs);
	store_close(s);
	return r < 0 ? 1 : 0;
}

static int locks_reap_cmd(const struct boxd_config *g)
{
	struct store *s;
	if (boxd_open_store(g, true, &s) < 0)
		return 1;
	char host[LOCK_HOST_MAX];
	int reaped = 0;
	int r = host_owner_id_get(host, sizeof(host));
	if (r >= 0)
		r = locks_reap(s, host, &reaped);
	if (r < 0)
		fprintf(stderr, "boxd locks reap: %s\n", r == -EBADMSG ? store_errmsg(s) : strerror(-r));
	else
		printf("reaped %d lock(s) of dead owners\n", reaped);
	store_close(s);
	return r < 0 ? 1 : 0;
}

static int locks_repair_cmd(const struct boxd_config *g)
{
	struct store *s;
	if (boxd_open_store(g, true, &s) < 0)
		return 1;
	struct locks_repair_report rep;
	int r = locks_repair(s, &rep);
	if (r < 0) {
		fprintf(stderr, "boxd locks repair: %s\n", store_errmsg(s));
		store_close(s);
		return 1;
	}
	if (rep.was_valid) {
		printf("the lock document (version %lld) is valid; nothing to repair\n", (long long)rep.old_version);
	} else {
		/* Keep the old document for the record, durably. */
		char path[4096];
		snprintf(path, sizeof(path), "%s/locks-corrupt-v%lld-%lld.json", g->state_dir,
			 (long long)rep.old_version, (long long)now_wall_ms());
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			(void)!write(fd, rep.old_text, strlen(rep.old_text));
			fsync(fd);
			close(fd);
		}
		printf("repaired the lock document: it did not parse (%s)\n"
		       "  kept %d holder(s), dropped %d entr%s; version %lld -> %lld\n"
		       "  the old document was saved to %s\n",
		       rep.problem, rep.holders_kept, rep.entries_dropped, rep.entries_dropped == 1 ? "y" : "ies",
		       (long long)rep.old_version, (long long)rep.new_version, fd >= 0 ? path : "(could not save)");
	}
	locks_repair_report_release(&rep);
	store_close(s);
	return 0;
}

int cmd_locks(const struct boxd_config *g, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: boxd locks list|hold|reap|repair ...\n");
		return 2;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "list") == 0)
		return locks_list(g, argc - 1, argv + 1);
	if (strcmp(sub, "hold") == 0)
		return locks_hold(g, argc - 1, argv + 1);
	if (strcmp(sub, "reap") == 0)
		return locks_reap_cmd(g);
	if (strcmp(sub, "repair") == 0)
		return locks_repair_cmd(g);
	fprintf(stderr, "boxd locks: unknown subcommand '%s'\n", sub);
	return 2;
}
