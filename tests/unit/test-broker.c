/* test-broker.c — the per-host lock broker.
 *
 * Part 1, the pure group commit (src/locks/locks_batch.h): what one batch
 * of requests and releases does to a lock document — the hand-off of a
 * released lock to a waiter in the same change, FIFO between the items of
 * one batch, an item's error not stopping the others, and a randomized
 * check that a batch equals the same operations applied one by one in the
 * batch's order. No I/O, no clock.
 *
 * Part 2, the broker and its client over a real unix socket on a real
 * SQLite file: the broker runs in a child process (broker_main_child, the
 * code of the daemon's broker thread), the clients are this process and
 * forked children. A grant and a hand-off through the broker, the peer
 * check (SO_PEERCRED: another process's owner is refused), no broker
 * (direct), a broker SIGKILLed while a child waits (it goes on directly
 * with its ticket), and — with a FAKE broker, because a crash exactly
 * between commit and reply cannot be timed for real — a reply lost after
 * the commit (the client re-reads and holds) and after the queueing (it
 * waits on its ticket, no second ticket).
 *
 * Fork discipline as in test-locks.c: no SQLite connection crosses a
 * fork; children end with _exit(). Every wait has a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/timeutil.h"
#include "locks/broker.h"
#include "locks/broker_client.h"
#include "locks/broker_proto.h"
#include "locks/lock_doc.h"
#include "locks/locks.h"
#include "locks/locks_batch.h"
#include "store/store.h"

#include "fixture-store.h"

#define HOST "host-a"
#define T0 1000000
#define TTL 30000

static struct lock_owner mk_owner(int64_t task, int32_t pid)
{
	struct lock_owner o = { .task_id = task, .pid = pid, .start_time = 5000 + (uint64_t)pid };
	snprintf(o.host, sizeof(o.host), "%s", HOST);
	return o;
}

static struct lock_req mk_req(const char *name, enum lock_mode mode)
{
	struct lock_req r = { .mode = mode };
	snprintf(r.name, sizeof(r.name), "%s", name);
	return r;
}

static struct lock_batch_item acq(const struct lock_owner *o, const struct lock_req *reqs, size_t n, int64_t ticket)
{
	return (struct lock_batch_item){ .op = LOCK_BATCH_ACQUIRE, .owner = *o, .reqs = reqs, .n = n, .queue = true,
					 .ticket = ticket, .ttl_ms = TTL };
}

static struct lock_batch_item unl(const struct lock_owner *o, const char *const *names, size_t n)
{
	return (struct lock_batch_item){ .op = LOCK_BATCH_UNLOCK, .owner = *o, .names = names, .n_names = n };
}

static char *fmt(const struct lock_doc *d)
{
	char *t = NULL;
	assert_int_equal(lock_doc_format(d, &t), 0);
	return t;
}

/* A holds x; B waits for x with a ticket. One batch with A's release and
 * B's retry hands x to B: the document of that one change shows B holding
 * and no ticket — the grant is in the write that released it. */
static void test_release_hands_off_in_the_same_change(void **state)
{
	(void)state;
	struct lock_doc d;
	lock_doc_init(&d);
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	struct lock_req x = mk_req("x", LOCK_EXCLUSIVE);
	int64_t tb = 0;
	assert_int_equal(lock_doc_acquire(&d, &a, &x, 1, NULL, T0, TTL, NULL), 1);
	assert_int_equal(lock_doc_acquire(&d, &b, &x, 1, &tb, T0, TTL, NULL), 0);
	assert_true(tb > 0);

	/* The waiter first in the batch, the release after: releases go first
	 * whatever the order given. */
	const char *names[] = { "x" };
	struct lock_batch_item items[] = { acq(&b, &x, 1, tb), unl(&a, names, 1) };
	assert_int_equal(lock_doc_apply_batch(&d, items, 2, T0 + 1), 2);
	assert_int_equal(items[1].result, 1);
	assert_int_equal(items[0].result, 1);
	assert_int_equal(items[0].attempt_ticket, tb); /* granted: its ticket is gone from the doc */
	assert_true(lock_doc_holds(&d, &b, "x", NULL));
	assert_false(lock_doc_holds(&d, &a, "x", NULL));
	assert_int_equal(d.n_waiters, 0);
	assert_int_equal(lock_doc_verify(&d, NULL, 0), 0);
	lock_doc_release(&d);
}

/* Three waiters for x in ticket order 1, 2, 3 given to the batch in
 * reverse, and a newcomer: the first ticket gets x, the others keep their
 * tickets, the newcomer queues behind them. */
static void test_batch_keeps_fifo_between_its_items(void **state)
{
	(void)state;
	struct lock_doc d;
	lock_doc_init(&d);
	struct lock_owner h = mk_owner(9, 900), w[3] = { mk_owner(1, 100), mk_owner(2, 200), mk_owner(3, 300) };
	struct lock_owner late = mk_owner(4, 400);
	struct lock_req x = mk_req("x", LOCK_EXCLUSIVE);
	int64_t t[3] = { 0 };
	assert_int_equal(lock_doc_acquire(&d, &h, &x, 1, NULL, T0, TTL, NULL), 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(lock_doc_acquire(&d, &w[i], &x, 1, &t[i], T0, TTL, NULL), 0);
	const char *names[] = { "x" };
	struct lock_batch_item items[] = { acq(&late, &x, 1, 0), acq(&w[2], &x, 1, t[2]), acq(&w[1], &x, 1, t[1]),
					   acq(&w[0], &x, 1, t[0]), unl(&h, names, 1) };
	lock_doc_apply_batch(&d, items, 5, T0 + 1);
	assert_int_equal(items[3].result, 1); /* ticket 1 */
	assert_int_equal(items[2].result, 0);
	assert_int_equal(items[1].result, 0);
	assert_int_equal(items[0].result, 0);
	assert_int_equal(items[2].attempt_ticket, t[1]);
	assert_int_equal(items[1].attempt_ticket, t[2]);
	assert_true(items[0].attempt_ticket > t[2]); /* the newcomer queued last */
	assert_true(items[2].blocker.task_id == 1 && !items[2].blocker.queued);
	assert_true(items[2].next_in_line);
	assert_false(items[1].next_in_line);
	assert_true(lock_doc_holds(&d, &w[0], "x", NULL));
	assert_int_equal(d.n_waiters, 3);
	lock_doc_release(&d);
}

/* Shared waiters behind an exclusive holder all get in with its release. */
static void test_shared_waiters_all_granted_in_one_batch(void **state)
{
	(void)state;
	struct lock_doc d;
	lock_doc_init(&d);
	struct lock_owner h = mk_owner(9, 900), w[4];
	struct lock_req xe = mk_req("x", LOCK_EXCLUSIVE), xs = mk_req("x", LOCK_SHARED);
	int64_t t[4] = { 0 };
	assert_int_equal(lock_doc_acquire(&d, &h, &xe, 1, NULL, T0, TTL, NULL), 1);
	struct lock_batch_item items[5];
	for (int i = 0; i < 4; i++) {
		w[i] = mk_owner(i + 1, 100 * (i + 1));
		assert_int_equal(lock_doc_acquire(&d, &w[i], &xs, 1, &t[i], T0, TTL, NULL), 0);
		items[i] = acq(&w[i], &xs, 1, t[i]);
	}
	items[4] = unl(&h, NULL, 0); /* all of h's holdings */
	assert_int_equal(lock_doc_apply_batch(&d, items, 5, T0 + 1), 5);
	for (int i = 0; i < 4; i++)
		assert_int_equal(items[i].result, 1);
	assert_int_equal(d.n_holders, 4);
	assert_int_equal(d.n_waiters, 0);
	lock_doc_release(&d);
}

/* A bad request fails alone; a cancelled ticket lets the one behind it in;
 * a grant carries the lease in the change's clock; a try (no queue) takes
 * no ticket. */
static void test_items_fail_alone_cancel_and_lease(void **state)
{
	(void)state;
	struct lock_doc d;
	lock_doc_init(&d);
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200), c = mk_owner(3, 300), e = mk_owner(5, 500);
	struct lock_req ys = mk_req("y", LOCK_SHARED), ye = mk_req("y", LOCK_EXCLUSIVE);
	struct lock_req bad = mk_req("no spaces allowed", LOCK_EXCLUSIVE);
	int64_t tb = 0;
	assert_int_equal(lock_doc_acquire(&d, &a, &ys, 1, NULL, T0, TTL, NULL), 1);
	assert_int_equal(lock_doc_acquire(&d, &b, &ye, 1, &tb, T0, TTL, NULL), 0); /* b queues for y exclusive */
	struct lock_batch_item items[] = {
		acq(&e, &bad, 1, 0),
		acq(&c, &ys, 1, 0),                                       /* behind b's ticket */
		{ .op = LOCK_BATCH_CANCEL, .owner = b, .ticket = tb },    /* b gives up */
		acq(&e, &ye, 1, 0),                                       /* a try */
	};
	items[1].lease_ms = 10000;
	items[3].queue = false;
	assert_int_equal(lock_doc_apply_batch(&d, items, 4, T0 + 5), 3);
	assert_int_equal(items[0].result, -EINVAL);
	assert_int_equal(items[2].result, 1);
	assert_int_equal(items[1].result, 1); /* shared beside a, once b's ticket is gone */
	assert_int_equal(items[3].result, 0);
	assert_int_equal(items[3].attempt_ticket, 0);
	int64_t lease = 0;
	assert_true(lock_doc_holds(&d, &c, "y", &lease));
	assert_int_equal(lease, T0 + 5 + 10000);
	assert_int_equal(d.n_waiters, 0);
	lock_doc_release(&d);
}

/* ---- a batch is the same as its items one by one ------------------------ */

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

#define OWNERS 5
#define NAMES 3
static const char *const name_of[NAMES] = { "n0", "n1", "n2" };

/* Random batches over 5 owners and 3 names; each applied to one copy of
 * the document as a batch and to another copy one item at a time in the
 * order the batch promises (releases, prune, acquires by ticket then
 * newcomers). Same results, same text. Every owner has at most one
 * outstanding request, as a broker connection does. */
static void test_batch_equals_sequential(void **state)
{
	(void)state;
	struct lock_doc d;
	lock_doc_init(&d);
	struct lock_owner o[OWNERS];
	int64_t ticket[OWNERS] = { 0 };
	struct lock_req want[OWNERS][2];
	size_t n_want[OWNERS] = { 0 };
	for (int i = 0; i < OWNERS; i++)
		o[i] = mk_owner(i + 1, 100 * (i + 1));
	int64_t now = T0;
	for (int round = 0; round < 3000; round++) {
		now += (int64_t)rnd(TTL / 4);
		struct lock_batch_item items[OWNERS * 2];
		size_t n = 0;
		for (int i = 0; i < OWNERS; i++) {
			int what = (int)rnd(4);
			if (what == 0)
				continue;
			if (what == 1 && ticket[i] == 0) { /* release one or all */
				if (rnd(2)) {
					items[n++] = unl(&o[i], NULL, 0);
				} else {
					items[n] = unl(&o[i], &name_of[rnd(NAMES)], 1);
					n++;
				}
				continue;
			}
			if (what == 2 && ticket[i] != 0) { /* give up */
				items[n++] = (struct lock_batch_item){ .op = LOCK_BATCH_CANCEL, .owner = o[i],
								       .ticket = ticket[i] };
				ticket[i] = 0;
				n_want[i] = 0;
				continue;
			}
			if (ticket[i] == 0 && n_want[i] == 0) { /* a new request */
				n_want[i] = 1 + rnd(2);
				int first = (int)rnd(NAMES);
				for (size_t k = 0; k < n_want[i]; k++)
					want[i][k] = mk_req(name_of[(first + (int)k) % NAMES],
							    rnd(2) ? LOCK_SHARED : LOCK_EXCLUSIVE);
			}
			if (n_want[i] > 0)
				items[n++] = acq(&o[i], want[i], n_want[i], ticket[i]);
		}
		struct lock_doc seq;
		char *text = fmt(&d), err[128];
		assert_int_equal(lock_doc_parse(text, &seq, err, sizeof(err)), 0);
		free(text);

		struct lock_batch_item copy[OWNERS * 2];
		memcpy(copy, items, sizeof(items[0]) * n);
		lock_doc_apply_batch(&d, items, n, now);

		/* One by one, in the promised order. */
		for (size_t k = 0; k < n; k++)
			if (copy[k].op == LOCK_BATCH_UNLOCK)
				copy[k].result = lock_doc_unlock(&seq, &copy[k].owner, copy[k].names, copy[k].n_names);
			else if (copy[k].op == LOCK_BATCH_CANCEL)
				copy[k].result = lock_doc_cancel_ticket(&seq, copy[k].ticket);
		lock_doc_prune_tickets(&seq, now);
		for (int pass = 0; pass < 2; pass++)
			for (size_t k = 0; k < n; k++) {
				struct lock_batch_item *it = NULL;
				/* pass 0: tickets ascending; pass 1: newcomers in order */
				if (pass == 1) {
					if (copy[k].op != LOCK_BATCH_ACQUIRE || copy[k].ticket != 0)
						continue;
					it = &copy[k];
				} else {
					int64_t best = 0;
					for (size_t j = 0; j < n; j++)
						if (copy[j].op == LOCK_BATCH_ACQUIRE && copy[j].ticket > 0 &&
						    (best == 0 || copy[j].ticket < best)) {
							best = copy[j].ticket;
							it = &copy[j];
						}
					if (!it)
						break;
				}
				it->attempt_ticket = it->ticket;
				it->result = lock_doc_acquire(&seq, &it->owner, it->reqs, it->n, &it->attempt_ticket, now,
							      TTL, NULL);
				if (pass == 0)
					it->ticket = -it->ticket; /* served: out of the ticket pass */
			}
		char *a = fmt(&d), *b = fmt(&seq);
		assert_string_equal(a, b);
		free(a);
		free(b);
		lock_doc_release(&seq);
		assert_int_equal(lock_doc_verify(&d, NULL, 0), 0);

		for (size_t k = 0; k < n; k++) {
			if (items[k].op != LOCK_BATCH_ACQUIRE)
				continue;
			int i = (int)(items[k].owner.task_id - 1);
			assert_int_equal(items[k].result, copy[k].result);
			assert_int_equal(items[k].attempt_ticket, copy[k].attempt_ticket);
			if (items[k].result == 1) {
				ticket[i] = 0;
				n_want[i] = 0;
			} else {
				ticket[i] = items[k].attempt_ticket;
			}
		}
	}
	lock_doc_release(&d);
}


/* ---- part 2: over a real socket ------------------------------------------ */

/* SQLite unless BOXD_TEST_STORE names a server database (then only the
 * tests that are about the server stores run). */
static enum store_backend test_backend = STORE_BACKEND_SQLITE;
/* The broker's and the waiter's timers (0: their defaults), set by a test
 * before start_broker() / spawn_waiter(). */
static int broker_safety_poll_ms, broker_reap_interval_ms, broker_ticket_defer_ms, broker_prepare_max_us;
static int64_t waiter_ttl_ms;
static const struct lock_req *waiter_req; /* what spawn_waiter()'s child asks for; NULL: x */
static bool waiter_releases; /* spawn_waiter()'s child releases x through the broker once granted */

struct fx {
	struct fixture_db db;
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pid_t broker;
	pid_t child;
	struct store *s;
};

static int open_db(const char *path, struct store **ret)
{
	struct store_options o = { .backend = test_backend, .sqlite_path = path, .dsn = path, .relaxed_durability = true };
	char err[512] = "";
	int r = store_open(&o, ret, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "store_open(%s): %s\n", path, err);
	return r;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *admin = fixture_env_dsn(test_backend);
	if (!f || !admin || fixture_db_create(&f->db, test_backend, admin, "broker") < 0)
		return -1;
	broker_safety_poll_ms = broker_reap_interval_ms = broker_ticket_defer_ms = broker_prepare_max_us = 0;
	waiter_ttl_ms = 0;
	waiter_req = NULL;
	waiter_releases = false;
	if (lock_broker_socket_path(f->db.dir, f->sock, sizeof(f->sock)) < 0)
		return -1;
	/* Create the schema once, then close: no connection crosses a fork. */
	if (open_db(fixture_db_target(&f->db), &f->s) < 0)
		return -1;
	store_close(f->s);
	f->s = NULL;
	lock_broker_client_close();
	*state = f;
	return 0;
}

static void kill_wait(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	kill_wait(&f->broker);
	kill_wait(&f->child);
	lock_broker_client_close();
	store_close(f->s);
	fixture_db_drop(&f->db);
	free(f);
	return 0;
}

static void wait_readable(int fd, int64_t ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, (int)ms), 1);
}

/* The broker in a child, as the daemon's thread runs it; returns once it
 * listens. */
static void start_broker(struct fx *f)
{
	assert_null(f->s);
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s, *ls = NULL;
		char host[LOCK_HOST_MAX], err[256];
		struct lock_broker *b;
		if (open_db(fixture_db_target(&f->db), &s) < 0 || host_owner_id_get(host, sizeof(host)) < 0)
			_exit(1);
		/* PostgreSQL: the LISTEN connection, as serve_broker.c opens it. */
		if (test_backend == STORE_BACKEND_POSTGRES && open_db(fixture_db_target(&f->db), &ls) < 0)
			_exit(1);
		struct lock_broker_opts o = { .socket_path = f->sock, .store = s, .host = host, .extra_uid = (uid_t)-1,
					      .listen_store = ls, .safety_poll_ms = broker_safety_poll_ms,
					      .reap_interval_ms = broker_reap_interval_ms,
					      .ticket_defer_ms = broker_ticket_defer_ms,
					      .prepare_max_us = broker_prepare_max_us };
		if (lock_broker_start(&o, &b, err, sizeof(err)) < 0)
			_exit(2);
		if (write(fds[1], "R", 1) != 1)
			_exit(3);
		for (;;)
			pause(); /* until killed */
	}
	close(fds[1]);
	f->broker = pid;
	wait_readable(fds[0], 10000);
	close(fds[0]);
}

static void reopen(struct fx *f)
{
	if (!f->s)
		assert_int_equal(open_db(fixture_db_target(&f->db), &f->s), 0);
}

static void close_for_fork(struct fx *f)
{
	store_close(f->s);
	f->s = NULL;
	lock_broker_client_close();
}

static struct lock_req X = { .name = "x", .mode = LOCK_EXCLUSIVE };

/* (holders, tickets) of the document. */
static void doc_counts(struct fx *f, size_t *h, size_t *t, int64_t *next_ticket)
{
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	*h = d.n_holders;
	*t = d.n_waiters;
	if (next_ticket)
		*next_ticket = d.next_ticket;
	lock_doc_release(&d);
}

static bool owner_holds(struct fx *f, const struct lock_owner *o, const char *name)
{
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	bool r = lock_doc_holds(&d, o, name, NULL);
	lock_doc_release(&d);
	return r;
}

static void test_broker_serves_its_peer_only(void **state)
{
	struct fx *f = *state;
	start_broker(f);
	reopen(f);
	struct lock_owner me, other;
	assert_int_equal(lock_owner_self(&me, 7), 0);
	struct lock_broker_client_stats st0, st;
	lock_broker_client_stats_get(&st0);

	int64_t fence = 0;
	struct locks_acquire_opts o = { .timeout_ms = 5000 };
	assert_int_equal(locks_acquire_brokered(f->sock, f->s, &me, &X, 1, &o, &fence, NULL), 0);
	assert_true(fence > 0);
	assert_true(owner_holds(f, &me, "x"));
	lock_broker_client_stats_get(&st);
	assert_int_equal(st.brokered - st0.brokered, 1);
	assert_int_equal(st.direct - st0.direct, 0);

	/* Another live process of this host (the broker itself) as owner:
	 * refused, and nothing changes. So is our pid with another start time. */
	other = me;
	other.pid = f->broker;
	assert_int_equal(proc_start_time(f->broker, &other.start_time), 0);
	struct lock_req y = { .name = "y", .mode = LOCK_EXCLUSIVE };
	assert_int_equal(locks_acquire_brokered(f->sock, f->s, &other, &y, 1, &o, &fence, NULL), -EPERM);
	const char *names[] = { "x" };
	int unlocked = -1;
	assert_int_equal(locks_unlock_brokered(f->sock, f->s, &other, names, 1, &unlocked), -0);
	other = me;
	other.start_time++;
	assert_int_equal(locks_acquire_brokered(f->sock, f->s, &other, &y, 1, &o, &fence, NULL), -EPERM);
	size_t h, t;
	doc_counts(f, &h, &t, NULL);
	assert_int_equal(h, 1);
	assert_int_equal(t, 0);
	assert_true(owner_holds(f, &me, "x"));

	unlocked = 0;
	assert_int_equal(locks_unlock_brokered(f->sock, f->s, &me, names, 1, &unlocked), 0);
	assert_int_equal(unlocked, 1);
	doc_counts(f, &h, &t, NULL);
	assert_int_equal(h, 0);
}

/* A child waits for x through the broker. Reports its result, its fence
 * and its client stats on `fd`. */
struct waiter_report {
	int r;
	int64_t fence;
	struct lock_broker_client_stats st;
	int64_t held_ticket_seen;
	int after_grant; /* a statement after the grant (store_now_ms()) */
};

static pid_t spawn_waiter(struct fx *f, int *ret_fd)
{
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s;
		struct lock_owner me;
		struct waiter_report rep = { 0 };
		if (open_db(fixture_db_target(&f->db), &s) < 0 || lock_owner_self(&me, 8) < 0)
			_exit(1);
		static volatile sig_atomic_t cancel; /* as a worker's, never raised here */
		struct locks_acquire_opts o = { .timeout_ms = 20000, .ticket_ttl_ms = waiter_ttl_ms, .cancel = &cancel };
		struct lock_broker_client_stats st0; /* the parent's, copied by fork */
		lock_broker_client_stats_get(&st0);
		const struct lock_req *want = waiter_req ? waiter_req : &X;
		rep.r = locks_acquire_brokered(f->sock, s, &me, want, 1, &o, &rep.fence, NULL);
		const char *names[] = { want->name };
		int unlocked = 0;
		if (rep.r == 0 && waiter_releases && locks_unlock_brokered(f->sock, s, &me, names, 1, &unlocked) < 0)
			_exit(4);
		lock_broker_client_stats_get(&rep.st);
		int64_t now;
		rep.after_grant = store_now_ms(s, &now);
		rep.st.brokered -= st0.brokered;
		rep.st.direct -= st0.direct;
		rep.st.fallbacks -= st0.fallbacks;
		rep.st.held_on_reread -= st0.held_on_reread;
		rep.st.wakeups -= st0.wakeups;
		rep.st.waiting_messages -= st0.waiting_messages;
		rep.st.prepares -= st0.prepares;
		if (write(fds[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	*ret_fd = fds[0];
	f->child = pid;
	return pid;
}

static void read_report(int fd, struct waiter_report *rep)
{
	wait_readable(fd, 20000);
	assert_int_equal(read(fd, rep, sizeof(*rep)), sizeof(*rep));
	close(fd);
}

static bool wait_tickets(struct fx *f, size_t want)
{
	int64_t end = now_mono_ms() + 10000;
	while (now_mono_ms() < end) {
		size_t h, t;
		doc_counts(f, &h, &t, NULL);
		if (t >= want)
			return true;
		sleep_us(2000);
	}
	return false;
}

/* The broker started, and x held by this process (task 7) through it. */
static void hold_x(struct fx *f, struct lock_owner *me, int64_t *fence)
{
	start_broker(f);
	reopen(f);
	assert_int_equal(lock_owner_self(me, 7), 0);
	struct locks_acquire_opts o = { .timeout_ms = 5000 };
	assert_int_equal(locks_acquire_brokered(f->sock, f->s, me, &X, 1, &o, fence, NULL), 0);
}

/* A child waiting for x (spawn_waiter()), once its ticket is in the
 * document; its report comes on *ret_fd. */
static void spawn_queued_waiter(struct fx *f, int *ret_fd)
{
	close_for_fork(f);
	spawn_waiter(f, ret_fd);
	reopen(f);
	assert_true(wait_tickets(f, 1));
}

/* Release x (held by `me`) through the broker, and take the report of
 * the child that waited for it (spawn_queued_waiter()). */
static void release_x_to_waiter(struct fx *f, const struct lock_owner *me, int fd, struct waiter_report *rep)
{
	const char *names[] = { "x" };
	int unlocked = 0;
	struct lock_broker_client_stats st0, st1;
	lock_broker_client_stats_get(&st0);
	assert_int_equal(locks_unlock_brokered(f->sock, f->s, me, names, 1, &unlocked), 0);
	assert_int_equal(unlocked, 1);
	/* A live broker answered the release in time (it sends that answer
	 * late, but before it sleeps: broker.c, ack_later()); no fallback
	 * after a wait for it. Without a broker the release is direct. */
	lock_broker_client_stats_get(&st1);
	assert_int_equal((st1.brokered - st0.brokered) + (st1.direct - st0.direct), 1);
	assert_int_equal(st1.fallbacks - st0.fallbacks, 0);
	read_report(fd, rep);
	kill_wait(&f->child);
}

/* The parent holds x; a child waits through the broker; the release
 * through the broker hands x to the child in the broker's round. */
static void hand_x_to_a_waiter(struct fx *f, struct waiter_report *rep)
{
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	int fd;
	spawn_queued_waiter(f, &fd);
	release_x_to_waiter(f, &me, fd, rep);
	assert_int_equal(rep->r, 0);
	assert_true(rep->fence > fence);
	assert_int_equal(rep->st.brokered, 1);
	assert_int_equal(rep->st.direct + rep->st.fallbacks, 0);
}

static void test_broker_hands_off_to_a_waiting_process(void **state)
{
	struct waiter_report rep;
	hand_x_to_a_waiter(*state, &rep);
}

/* The waiter next in line for x is told before the round that releases x
 * commits (PREPARE), so that it polls for the grant instead of sleeping.
 * The threshold is set out of reach of a slow machine's commits. */
static void test_next_in_line_is_told_before_the_commit(void **state)
{
	broker_prepare_max_us = 60 * 1000 * 1000;
	struct waiter_report rep;
	hand_x_to_a_waiter(*state, &rep);
	assert_int_equal(rep.st.prepares, 1);
}

/* A client of protocol version 1 (a worker started before the daemon was
 * updated) is answered in version 1 and gets no PREPARE, which it would
 * not know: its first message after queueing is its grant. */
static void test_version_1_client_gets_no_prepare(void **state)
{
	struct fx *f = *state;
	broker_prepare_max_us = 60 * 1000 * 1000;
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(sock >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	assert_int_equal(connect(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct broker_msg m = { .version = 1, .type = BROKER_ACQUIRE, .n = 1, .timeout_ms = 20000 };
	assert_int_equal(lock_owner_self(&m.owner, 9), 0);
	m.reqs[0] = X;
	assert_int_equal(send(sock, &m, sizeof(m), MSG_NOSIGNAL), sizeof(m));
	assert_true(wait_tickets(f, 1));
	const char *names[] = { "x" };
	int unlocked = 0;
	assert_int_equal(locks_unlock_brokered(f->sock, f->s, &me, names, 1, &unlocked), 0);
	assert_int_equal(unlocked, 1);
	struct broker_msg rep;
	wait_readable(sock, 20000);
	assert_true(recv(sock, &rep, sizeof(rep), 0) >= (ssize_t)offsetof(struct broker_msg, reqs));
	assert_int_equal(rep.version, 1);
	assert_int_equal(rep.type, BROKER_GRANTED);
	assert_true(rep.fence > fence);
	close(sock);
}

/* A process waiting through the broker sleeps until the broker answers:
 * it does not wake to look at its cancel flag every second (50 waiting
 * workers did, and that was ~1% of a core; make bench, "CPU of 50 tasks
 * waiting"). The parent holds x for 2.5 s while the child waits. */
static void test_waiter_through_broker_sleeps(void **state)
{
	struct fx *f = *state;
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	int fd;
	spawn_queued_waiter(f, &fd);
	sleep_us(2500000); /* the wait measured, not a synchronization */
	struct waiter_report rep;
	release_x_to_waiter(f, &me, fd, &rep);
	assert_int_equal(rep.r, 0);
	assert_int_equal(rep.st.brokered, 1);
	print_message("woken %llu times in its wait\n", (unsigned long long)rep.st.wakeups);
	assert_int_equal(rep.st.wakeups, 0);
}

/* A hand-off tells only the next holder. The other waiters of the lock
 * are not sent a message, and woken, at each change of its holder: each
 * hears once that it waits (once it has waited FIRST_WAITING_MS), and of a
 * new holder at most every second (broker.c, WAITING_UPDATE_MS). Before,
 * four waiters draining were sent 4 + 3 + 2 + 1 messages, the last one 4. */
static void test_hand_off_wakes_no_other_waiter(void **state)
{
	struct fx *f = *state;
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	waiter_releases = true;
	enum { N = 4 };
	int fds[N];
	pid_t pids[N];
	for (size_t i = 0; i < N; i++) {
		close_for_fork(f);
		pids[i] = spawn_waiter(f, &fds[i]);
		reopen(f);
		assert_true(wait_tickets(f, i + 1));
	}
	f->child = 0; /* each killed below */
	/* Long enough a wait for each to be told that it waits (a duration
	 * measured, not a synchronization). */
	sleep_us(200000);
	int64_t start = now_mono_ms();
	const char *names[] = { "x" };
	int unlocked = 0;
	assert_int_equal(locks_unlock_brokered(f->sock, f->s, &me, names, 1, &unlocked), 0);
	uint64_t total = 0, most = 0;
	for (size_t i = 0; i < N; i++) {
		struct waiter_report rep;
		read_report(fds[i], &rep);
		kill_wait(&pids[i]);
		assert_int_equal(rep.r, 0);
		assert_int_equal(rep.st.brokered, 2); /* its acquire and its release */
		total += rep.st.waiting_messages;
		if (rep.st.waiting_messages > most)
			most = rep.st.waiting_messages;
	}
	int64_t took = now_mono_ms() - start;
	print_message("%d hand-offs in %lld ms; WAITING messages: %llu in all, at most %llu to one waiter\n", N,
		      (long long)took, (unsigned long long)total, (unsigned long long)most);
	/* Each was told once that it waits; none again for the hand-offs in
	 * front of it, but one more per second the drain took (a slow machine). */
	assert_true(total >= N);
	assert_true(most <= 1 + (uint64_t)(took / 1000));
}

/* Is `pid` asleep in poll(2) (/proc/PID/syscall)? A waiting client
 * sleeps there once its request is sent. */
static bool in_poll(pid_t pid)
{
	char path[64], buf[128] = "";
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return false;
	bool got = fgets(buf, sizeof(buf), fp) != NULL;
	fclose(fp);
	long nr = got ? strtol(buf, NULL, 10) : -1;
#ifdef SYS_poll
	if (nr == SYS_poll)
		return true;
#endif
	return nr == SYS_ppoll;
}

/* spawn_waiter() without close_for_fork(): this process keeps its
 * connection to the broker, which forgets what a client that closes it
 * held (the child makes its own). */
static pid_t spawn_waiter_staying_connected(struct fx *f, int *ret_fd)
{
	store_close(f->s);
	f->s = NULL;
	pid_t pid = spawn_waiter(f, ret_fd);
	reopen(f);
	return pid;
}

/* A request that can only queue behind a lock another client of the
 * broker holds gets no round of its own (TICKET_DEFER_MS, set to a minute
 * here): its ticket would be a commit that lets nobody through. The
 * release's round takes it, and grants it x in the same change. */
static void test_request_behind_a_local_holder_waits_for_its_release(void **state)
{
	struct fx *f = *state;
	broker_ticket_defer_ms = 60000;
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	int64_t v0 = -1;
	assert_int_equal(locks_read(f->s, NULL, &v0, NULL), 0);
	int fd;
	pid_t w = spawn_waiter_staying_connected(f, &fd);
	/* Its request is sent once it sleeps in poll(). */
	int64_t end = now_mono_ms() + 10000;
	while (!in_poll(w)) {
		if (now_mono_ms() >= end)
			fail_msg("the waiter did not reach its poll() within 10 s");
		sleep_us(1000);
	}
	const char *names[] = { "x" };
	int unlocked = 0;
	assert_int_equal(locks_unlock_brokered(f->sock, f->s, &me, names, 1, &unlocked), 0);
	assert_int_equal(unlocked, 1);
	struct waiter_report rep;
	read_report(fd, &rep);
	kill_wait(&f->child);
	assert_int_equal(rep.r, 0);
	assert_int_equal(rep.st.brokered, 1);
	/* One change: the release and the grant. A round of its own would
	 * have written the ticket first (v0 + 1), the grant after (v0 + 2). */
	assert_int_equal(rep.fence, v0 + 1);
	int64_t v1 = -1;
	assert_int_equal(locks_read(f->s, NULL, &v1, NULL), 0);
	assert_int_equal(v1, v0 + 1);
}

/* ... and only such a request: one for a lock nobody here holds is served
 * at once, whatever else waits (a minute's deferral would outlast the
 * waiter's 20 s timeout). */
static void test_unrelated_request_is_not_deferred(void **state)
{
	struct fx *f = *state;
	broker_ticket_defer_ms = 60000;
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	static const struct lock_req y = { .name = "y", .mode = LOCK_EXCLUSIVE };
	waiter_req = &y;
	int fd;
	spawn_waiter_staying_connected(f, &fd); /* the broker still knows that we hold x */
	struct waiter_report rep;
	read_report(fd, &rep);
	kill_wait(&f->child);
	assert_int_equal(rep.r, 0);
	assert_int_equal(rep.st.brokered, 1);
	assert_true(owner_holds(f, &me, "x"));
}

/* Sessions of the test database on its server. */
static int64_t sessions(struct fx *f)
{
	int64_t n = -1;
	assert_int_equal(store_query_int64(f->s, &n,
					   test_backend == STORE_BACKEND_MYSQL
						   ? "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE()"
						   : "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()",
					   NULL),
			 0);
	return n;
}

/* A waiter on a server store gives up its connection once it has waited
 * through the broker for a second (broker_client.c, RELEASE_AFTER_MS): 3
 * hosts x 200 queued workers held 600 PostgreSQL sessions. Its first
 * statement after the grant connects again. */
static void test_waiter_gives_up_its_connection(void **state)
{
	struct fx *f = *state;
	if (test_backend == STORE_BACKEND_SQLITE)
		skip(); /* no server session to give up */
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	int64_t base = sessions(f); /* ours and the broker's */
	int fd;
	spawn_queued_waiter(f, &fd);
	int64_t end = now_mono_ms() + 10000, n;
	while ((n = sessions(f)) != base && now_mono_ms() < end)
		sleep_us(20000);
	print_message("%lld sessions while the child waits, %lld without it\n", (long long)n, (long long)base);
	assert_int_equal(n, base);
	struct waiter_report rep;
	release_x_to_waiter(f, &me, fd, &rep);
	assert_int_equal(rep.r, 0);
	assert_true(rep.fence > fence);
	assert_int_equal(rep.after_grant, 0);
	assert_int_equal(rep.st.brokered, 1);
}

/* PostgreSQL: no new connection to the test's database, and its sessions
 * ended (the broker's, the waiter's, ours): an outage that every
 * reconnect meets until connections are allowed again. */
static void pg_outage(struct fx *f, bool on)
{
	struct store *admin;
	struct store_options o = { .backend = STORE_BACKEND_POSTGRES, .dsn = f->db.admin_dsn };
	char err[512] = "", sql[160];
	assert_int_equal(store_open(&o, &admin, err, sizeof(err)), 0);
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s WITH ALLOW_CONNECTIONS %s", f->db.dbname, on ? "false" : "true");
	assert_true(store_run(admin, sql, NULL) >= 0);
	if (on)
		assert_true(store_run(admin,
				      "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = ?",
				      "s", f->db.dbname) >= 0);
	store_close(admin);
}

/* The broker rides out a store outage with its waiters kept (before, the
 * first failed round handed every waiter back, and a host's hundreds of
 * waiters went to the database at once as a new primary came up): the
 * child, queued through the broker, is granted through it after the
 * outage, with no fallback to the direct path and one ticket only. */
static void test_broker_rides_out_an_outage(void **state)
{
	struct fx *f = *state;
	if (test_backend != STORE_BACKEND_POSTGRES)
		skip(); /* the outage is made with ALLOW_CONNECTIONS */
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	int fd;
	spawn_queued_waiter(f, &fd);
	int64_t next_before;
	size_t h, t;
	doc_counts(f, &h, &t, &next_before);

	pg_outage(f, true);
	/* A round now (a release of a name we do not hold) fails in the
	 * broker; so does the direct release it falls back to. */
	const char *none[] = { "nothing" };
	assert_true(locks_unlock_brokered(f->sock, f->s, &me, none, 1, NULL) < 0);
	pg_outage(f, false);

	const char *names[] = { "x" };
	int unlocked = 0;
	assert_int_equal(locks_unlock(f->s, &me, names, 1, &unlocked), 0);
	assert_int_equal(unlocked, 1);
	struct waiter_report rep;
	read_report(fd, &rep);
	kill_wait(&f->child);
	assert_int_equal(rep.r, 0);
	assert_int_equal(rep.st.fallbacks, 0);
	assert_int_equal(rep.st.brokered, 1);
	int64_t next_after;
	doc_counts(f, &h, &t, &next_after);
	assert_int_equal(next_after, next_before); /* no second ticket */
	assert_int_equal(t, 0);
}

/* Another host's release does not bump this host's wake-up word
 * (lock_wake.h): the broker must see it by itself while the document has
 * other hosts' owners, polling (MariaDB) or LISTENing (PostgreSQL), not at
 * its safety poll (60 s here), its next reap (10 min here) or the round
 * that refreshes the tickets (10 s). The release is a plain UPDATE, as another host's would be. */
static void test_broker_sees_other_hosts_release(void **state)
{
	struct fx *f = *state;
	if (test_backend == STORE_BACKEND_SQLITE)
		skip(); /* every writer of an SQLite file is on this host */
	broker_safety_poll_ms = 60000;
	broker_reap_interval_ms = 600000;
	waiter_ttl_ms = 600000;
	start_broker(f);
	reopen(f);
	struct lock_owner far = { .task_id = 95, .pid = 1, .start_time = 1 };
	strcpy(far.host, "other-host");
	int64_t fence;
	struct locks_acquire_opts o = { .timeout_ms = 0 };
	assert_int_equal(locks_acquire(f->s, &far, &X, 1, &o, &fence, NULL), 0);
	int fd;
	spawn_queued_waiter(f, &fd);
	/* Past the broker's first 500 ms of 2 ms polls (and, on PostgreSQL,
	 * until its LISTEN is made): the slow path is the one tested. Not a
	 * synchronization: the test passes without it too. */
	sleep_us(700000);
	struct lock_doc d;
	assert_int_equal(locks_read(f->s, &d, NULL, NULL), 0);
	assert_int_equal(lock_doc_unlock(&d, &far, NULL, 0), 1);
	char *text = NULL;
	assert_int_equal(lock_doc_format(&d, &text), 0);
	lock_doc_release(&d);
	int64_t t0 = now_mono_ms();
	assert_int_equal(store_run(f->s, "UPDATE locks SET data = ?, version = version + 1 WHERE id = 1", "s", text), 1);
	free(text);
	struct waiter_report rep;
	read_report(fd, &rep);
	int64_t took = now_mono_ms() - t0;
	kill_wait(&f->child);
	print_message("granted %lld ms after the other host's release\n", (long long)took);
	assert_int_equal(rep.r, 0);
	assert_int_equal(rep.st.brokered, 1);
	/* Without the other-host rule it comes with the round that refreshes
	 * the tickets, 10 s after the last one (9.3 s seen). */
	assert_true(took < 5000);
}

/* The broker is SIGKILLed while the child waits behind the parent: the
 * child goes on directly with the ticket it has (none is added) and gets
 * x once the parent (no broker now: directly) releases it. */
static void test_killed_broker_leaves_waiter_on_its_ticket(void **state)
{
	struct fx *f = *state;
	struct lock_owner me;
	int64_t fence;
	hold_x(f, &me, &fence);
	int fd;
	spawn_queued_waiter(f, &fd);
	size_t h, t;
	int64_t next_before, next_after;
	doc_counts(f, &h, &t, &next_before);
	kill_wait(&f->broker);
	/* The child notices and re-reads; its ticket stays the only one. */
	sleep_us(0);
	struct waiter_report rep;
	release_x_to_waiter(f, &me, fd, &rep);
	assert_int_equal(rep.r, 0);
	assert_true(rep.fence > fence);
	assert_int_equal(rep.st.fallbacks, 1);
	assert_int_equal(rep.st.brokered, 0);
	doc_counts(f, &h, &t, &next_after);
	assert_int_equal(next_after, next_before); /* it kept its ticket: no second one */
	assert_int_equal(t, 0);
}

/* No broker: a socket file nobody listens on (a killed daemon's). */
static void test_no_broker_goes_direct(void **state)
{
	struct fx *f = *state;
	int sfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	assert_int_equal(bind(sfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(sfd);
	reopen(f);
	struct lock_owner me;
	assert_int_equal(lock_owner_self(&me, 7), 0);
	struct lock_broker_client_stats st0, st;
	lock_broker_client_stats_get(&st0);
	int64_t fence;
	struct locks_acquire_opts o = { .timeout_ms = 5000 };
	assert_int_equal(locks_acquire_brokered(f->sock, f->s, &me, &X, 1, &o, &fence, NULL), 0);
	assert_true(owner_holds(f, &me, "x"));
	lock_broker_client_stats_get(&st);
	assert_int_equal(st.direct - st0.direct, 1);
	assert_int_equal(st.brokered - st0.brokered, 0);
}

/* A FAKE broker (a crash between commit and reply cannot be timed for
 * real): it takes the request, commits what the real one would (the
 * grant, or the ticket while the parent... another owner holds x), and
 * goes away without a word. */
static pid_t fake_broker_commit_then_vanish(struct fx *f, int64_t *ret_ticket_fd)
{
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	(void)ret_ticket_fd;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c = accept(lfd, NULL, NULL);
		struct broker_msg m;
		struct store *s;
		if (c < 0 || recv(c, &m, sizeof(m), 0) != sizeof(m) || open_db(fixture_db_target(&f->db), &s) < 0)
			_exit(1);
		/* The real broker's commit: a try if nobody holds x (granted),
		 * else a ticket (one attempt of a waiting acquire that times
		 * out at once would cancel it: queue it through a batch). */
		struct lock_batch_item it = { .op = LOCK_BATCH_ACQUIRE, .owner = m.owner, .reqs = m.reqs, .n = m.n,
					      .queue = true, .ttl_ms = 30000 };
		int64_t v;
		if (locks_commit_batch(s, &it, 1, NULL, NULL, NULL, &v, NULL) < 0)
			_exit(2);
		_exit(0); /* no reply */
	}
	close(lfd);
	f->broker = pid;
	return pid;
}

static void test_lost_reply_after_grant_rereads_and_holds(void **state)
{
	struct fx *f = *state;
	reopen(f);
	close_for_fork(f);
	fake_broker_commit_then_vanish(f, NULL);
	reopen(f);
	struct lock_owner me;
	assert_int_equal(lock_owner_self(&me, 7), 0);
	struct lock_broker_client_stats st0, st;
	lock_broker_client_stats_get(&st0);
	int64_t fence = 0;
	struct locks_acquire_opts o = { .timeout_ms = 5000 };
	assert_int_equal(locks_acquire_brokered(f->sock, f->s, &me, &X, 1, &o, &fence, NULL), 0);
	lock_broker_client_stats_get(&st);
	assert_int_equal(st.held_on_reread - st0.held_on_reread, 1);
	size_t h, t;
	doc_counts(f, &h, &t, NULL);
	assert_int_equal(h, 1);
	assert_int_equal(t, 0);
	assert_true(fence > 0);
}

static void test_lost_reply_after_queueing_waits_on_that_ticket(void **state)
{
	struct fx *f = *state;
	reopen(f);
	/* Another owner (task 99, this process) holds x. */
	struct lock_owner holder, me;
	assert_int_equal(lock_owner_self(&holder, 99), 0);
	assert_int_equal(lock_owner_self(&me, 7), 0);
	int64_t fence;
	struct locks_acquire_opts o = { .timeout_ms = 0 };
	assert_int_equal(locks_acquire(f->s, &holder, &X, 1, &o, &fence, NULL), 0);
	close_for_fork(f);
	fake_broker_commit_then_vanish(f, NULL);
	/* The waiting child, whose reply will be lost. */
	int fd;
	spawn_waiter(f, &fd);
	reopen(f);
	assert_true(wait_tickets(f, 1));
	int64_t next_before, next_after;
	size_t h, t;
	doc_counts(f, &h, &t, &next_before);
	kill_wait(&f->broker); /* reaped, so the child sees the connection end */
	assert_int_equal(locks_unlock(f->s, &holder, NULL, 0, NULL), 0);
	struct waiter_report rep;
	read_report(fd, &rep);
	kill_wait(&f->child);
	assert_int_equal(rep.r, 0);
	assert_int_equal(rep.st.fallbacks, 1);
	assert_int_equal(rep.st.held_on_reread, 0);
	doc_counts(f, &h, &t, &next_after);
	assert_int_equal(next_after, next_before); /* its ticket kept, none added */
	assert_int_equal(t, 0);
	assert_int_equal(h, 1);
}

int main(void)
{
	const char *backend = getenv("BOXD_TEST_STORE");
	if (backend && *backend && store_backend_from_string(backend, &test_backend) < 0) {
		fprintf(stderr, "BOXD_TEST_STORE=%s: use sqlite, mysql or postgres\n", backend);
		return 1;
	}
	if (test_backend != STORE_BACKEND_SQLITE) {
		if (!fixture_env_dsn(test_backend)) {
			printf("SKIP: the test env is not started (run make check)\n");
			return 77;
		}
		const struct CMUnitTest server_tests[] = {
			cmocka_unit_test_setup_teardown(test_broker_hands_off_to_a_waiting_process, fx_setup,
							fx_teardown),
			cmocka_unit_test_setup_teardown(test_next_in_line_is_told_before_the_commit, fx_setup,
							fx_teardown),
			cmocka_unit_test_setup_teardown(test_broker_sees_other_hosts_release, fx_setup, fx_teardown),
			cmocka_unit_test_setup_teardown(test_waiter_gives_up_its_connection, fx_setup, fx_teardown),
			cmocka_unit_test_setup_teardown(test_broker_rides_out_an_outage, fx_setup, fx_teardown),
		};
		return cmocka_run_group_tests(server_tests, NULL, NULL);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_hands_off_in_the_same_change),
		cmocka_unit_test(test_batch_keeps_fifo_between_its_items),
		cmocka_unit_test(test_shared_waiters_all_granted_in_one_batch),
		cmocka_unit_test(test_items_fail_alone_cancel_and_lease),
		cmocka_unit_test(test_batch_equals_sequential),
		cmocka_unit_test_setup_teardown(test_broker_serves_its_peer_only, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_broker_hands_off_to_a_waiting_process, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_next_in_line_is_told_before_the_commit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_version_1_client_gets_no_prepare, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_waiter_through_broker_sleeps, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hand_off_wakes_no_other_waiter, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_request_behind_a_local_holder_waits_for_its_release, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_unrelated_request_is_not_deferred, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_killed_broker_leaves_waiter_on_its_ticket, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_broker_goes_direct, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lost_reply_after_grant_rereads_and_holds, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lost_reply_after_queueing_waits_on_that_ticket, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_broker_sees_other_hosts_release, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
