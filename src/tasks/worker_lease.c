/* worker_lease.c — see worker_lease.h. */
#include "worker_lease.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "locks/locks.h"
#include "store/store_retry.h"
#include "task_outcome.h"
#include "tasks/store_open.h"
#include "worker.h"

struct worker_lease {
	const struct boxd_config *cfg;
	struct lock_owner owner;
	int64_t task_id;
	int64_t lease_ms;
	int64_t period_ms;           /* renew holdings this often */
	int64_t margin_ms;           /* stop this long before the deadline */
	pthread_t thread;
	pthread_mutex_t mu;          /* guards stop and kick, with wake */
	pthread_cond_t wake;
	bool stop;
	bool kick;                   /* holding changed: look now */
	atomic_bool holding;         /* written by the main thread */
	atomic_llong deadline_ms;    /* mono ms; INT64_MAX: nothing known to expire */
};

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The other processes of our process group: what the handler started. */
static void kill_group_but_self(void)
{
	pid_t self = getpid(), pgrp = getpgrp();
	for (int round = 0; round < 3; round++) {
		DIR *d = opendir("/proc");
		if (!d)
			return;
		struct dirent *de;
		while ((de = readdir(d))) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);
			if (*end || pid <= 0 || pid == self)
				continue;
			char path[64], buf[512];
			snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
			FILE *f = fopen(path, "re");
			if (!f)
				continue;
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			/* pid (comm) state ppid pgrp: comm may hold anything, so
			 * parse from the last ')'. */
			char *p = strrchr(buf, ')');
			int ppid = 0, pg = 0;
			char state;
			if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pg) == 3 && pg == pgrp)
				kill((pid_t)pid, SIGKILL);
		}
		closedir(d);
	}
}

/* Stop acting now: the locks may be someone else's already. */
static void lease_lost(struct worker_lease *l, const char *why)
{
	kill_group_but_self();
	struct task_outcome o = { .state = TASK_FAILED };
	snprintf(o.error_code, sizeof(o.error_code), "lease_lost");
	snprintf(o.error_message, sizeof(o.error_message),
		 "the worker stopped acting: %s (lease %lld ms); other hosts may have taken its locks", why,
		 (long long)l->lease_ms);
	int r = task_outcome_write(l->cfg->state_dir, l->task_id, &o);
	log_error("task %lld: lease lost: %s; stopped%s", (long long)l->task_id, why,
		  r < 0 ? " (and its outcome could not be written to its log)" : "");
	log_flush();
	_exit(WORKER_EXIT_LEASE_LOST);
}

static void *renew_thread(void *arg)
{
	struct worker_lease *l = arg;
	struct store *s = NULL;
	struct store_retry rt;
	store_retry_init(&rt, 0);
	/* Only holdings are renewed here: a waiter renews its ticket's lease
	 * itself while it polls (locks.h). So a worker that holds nothing
	 * sleeps until it does. */
	int64_t next = INT64_MAX;
	for (;;) {
		pthread_mutex_lock(&l->mu);
		while (!l->stop) {
			if (l->kick) {
				l->kick = false;
				next = atomic_load(&l->holding) ? now_mono_ms() : INT64_MAX;
			}
			int64_t now = now_mono_ms();
			if (now >= next)
				break;
			if (next == INT64_MAX) {
				pthread_cond_wait(&l->wake, &l->mu);
				continue;
			}
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t wait = next - now;
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&l->wake, &l->mu, &ts);
		}
		bool stop = l->stop;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;

		int64_t sent = now_mono_ms();
		bool holding = atomic_load(&l->holding);
		if (holding && sent >= atomic_load(&l->deadline_ms) - l->margin_ms)
			lease_lost(l, "it could not renew its lock lease before it could expire");
		int r = 0;
		char err[512] = "";
		if (!s)
			r = store_open_config(l->cfg, STORE_OPEN_NO_MIGRATE | STORE_OPEN_RELAXED, &s, err, sizeof(err));
		struct locks_renewal st;
		if (r >= 0)
			r = locks_renew_owner(s, &l->owner, l->lease_ms, l->lease_ms - l->period_ms, 0, &st);
		if (r < 0) {
			if (s)
				snprintf(err, sizeof(err), "%s", store_errmsg(s));
			store_retry_failed(&rt, store_error_is_transient(r) ? r : -EAGAIN);
			if (store_retry_first(&rt))
				log_warn("task %lld: cannot renew its lock lease (%s); retrying until %lld ms before it "
					 "could expire", (long long)l->task_id, err, (long long)l->margin_ms);
			next = sent + clamp(store_retry_delay_ms(&rt), 20, 250);
			continue;
		}
		if (rt.since_mono_ms)
			log_info("task %lld: lock lease renewed again after %lld ms", (long long)l->task_id,
				 (long long)store_retry_done(&rt));
		if (atomic_load(&l->holding) && st.holders == 0)
			lease_lost(l, "its locks are gone from the lock document (another host freed them once their "
				      "lease had expired, or a database failover lost its grant)");
		int64_t left = st.first_expiry_ms > 0 ? st.first_expiry_ms - st.now_ms : l->lease_ms;
		atomic_store(&l->deadline_ms, sent + (left < l->lease_ms ? left : l->lease_ms));
		next = atomic_load(&l->holding) ? sent + l->period_ms : INT64_MAX;
	}
	store_close(s);
	return NULL;
}

int worker_lease_start(const struct boxd_config *cfg, const struct lock_owner *owner, int64_t task_id,
		       struct worker_lease **ret)
{
	int64_t lease = config_lease_ms(cfg);
	if (lease <= 0)
		return -EINVAL;
	struct worker_lease *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cfg = cfg;
	l->owner = *owner;
	l->task_id = task_id;
	l->lease_ms = lease;
	/* Holdings are renewed once a period is used up, so that an outage
	 * of up to lease - period - margin is ridden out (8.5 s of the
	 * default 10 s); the margin covers stopping the handler's processes.
	 * One write per holding worker per period. */
	l->period_ms = clamp(lease / 10, 200, 10000);
	l->margin_ms = clamp(lease / 20, 100, 5000);
	atomic_init(&l->holding, false);
	atomic_init(&l->deadline_ms, INT64_MAX);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->wake, NULL);
	/* Signals go to the main thread (SIGTERM: a stop request). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = pthread_create(&l->thread, NULL, renew_thread, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->wake);
		free(l);
		return -r;
	}
	*ret = l;
	return 0;
}

void worker_lease_set_holding(struct worker_lease *l, bool holding)
{
	if (!l)
		return;
	if (holding) {
		/* The grant's own lease runs from before it was sent: at least
		 * as long as this from now. */
		int64_t d = now_mono_ms() + l->lease_ms - l->period_ms;
		if (d < atomic_load(&l->deadline_ms))
			atomic_store(&l->deadline_ms, d);
	}
	atomic_store(&l->holding, holding);
	pthread_mutex_lock(&l->mu);
	l->kick = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
}

int64_t worker_lease_left_ms(struct worker_lease *l)
{
	if (!l)
		return INT64_MAX;
	int64_t d = atomic_load(&l->deadline_ms);
	return d == INT64_MAX ? INT64_MAX : d - now_mono_ms();
}

void worker_lease_stop(struct worker_lease *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->wake);
	free(l);
}
