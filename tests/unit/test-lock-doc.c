/* test-lock-doc.c — the pure lock document (src/locks/lock_doc.h): modes,
 * all-or-none, FIFO tickets, expiry, unlock, reap, parse/format, the
 * invariants (lock_doc_verify), allocation failures in format, a randomized
 * model check, and a bounded exhaustive search (3 owners, 2 names, every
 * sequence of 6 operations). No I/O, no clock: time is a
 * number passed in, liveness a predicate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "locks/lock_doc.h"
#include "locks/lock_doc_text.h"

#define HOST "host-a"
#define OTHER_HOST "host-b"
#define T0 1000000 /* a "database time" to start from */
#define TTL 300

/* ---- helpers ------------------------------------------------------------- */

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

static char *fmt(const struct lock_doc *d)
{
	char *t = NULL;
	assert_int_equal(lock_doc_format(d, &t), 0);
	assert_non_null(t);
	return t;
}

/* Asserts that the document formats to `before` (and frees nothing). */
static void assert_doc_text(const struct lock_doc *d, const char *before)
{
	char *now = fmt(d);
	assert_string_equal(now, before);
	free(now);
}

static int try1(struct lock_doc *d, const struct lock_owner *o, const char *name, enum lock_mode m, int64_t now,
		struct lock_blocker *b)
{
	struct lock_req r = mk_req(name, m);
	return lock_doc_acquire(d, o, &r, 1, NULL, now, TTL, b);
}

static int wait1(struct lock_doc *d, const struct lock_owner *o, const char *name, enum lock_mode m, int64_t *ticket,
		 int64_t now, struct lock_blocker *b)
{
	struct lock_req r = mk_req(name, m);
	return lock_doc_acquire(d, o, &r, 1, ticket, now, TTL, b);
}

static const struct lock_holder *find_holder(const struct lock_doc *d, const struct lock_owner *o, const char *name)
{
	for (size_t i = 0; i < d->n_holders; i++)
		if (strcmp(d->holders[i].lock.name, name) == 0 && lock_owner_same(&d->holders[i].owner, o))
			return &d->holders[i];
	return NULL;
}

static size_t count_holders_of(const struct lock_doc *d, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n_holders; i++)
		n += strcmp(d->holders[i].lock.name, name) == 0;
	return n;
}

static const struct lock_waiter *find_waiter(const struct lock_doc *d, int64_t ticket)
{
	for (size_t i = 0; i < d->n_waiters; i++)
		if (d->waiters[i].ticket == ticket)
			return &d->waiters[i];
	return NULL;
}

static void assert_blocker(const struct lock_blocker *b, const char *lock, enum lock_mode mode, bool queued,
			   const struct lock_owner *who)
{
	assert_string_equal(b->lock, lock);
	assert_int_equal(b->mode, mode);
	assert_int_equal(b->queued, queued);
	assert_int_equal(b->task_id, who->task_id);
	assert_int_equal(b->pid, who->pid);
	assert_string_equal(b->host, who->host);
}

/* The document invariants, as lock_doc_verify() (lock_doc.h) states them;
 * its checks are tested one by one below. */
static void check_invariants(const struct lock_doc *d)
{
	char why[256] = "";
	if (lock_doc_verify(d, why, sizeof(why)) != 0)
		fail_msg("invariant broken: %s", why);
}

/* format → parse → format gives the same text and the same counts. */
static void assert_roundtrip(const struct lock_doc *d)
{
	char *a = fmt(d);
	struct lock_doc p;
	char err[256] = "";
	int r = lock_doc_parse(a, &p, err, sizeof(err));
	if (r != 0)
		fail_msg("formatted document does not parse (%s): %s", err, a);
	assert_int_equal(p.n_holders, d->n_holders);
	assert_int_equal(p.n_waiters, d->n_waiters);
	assert_int_equal(p.next_ticket, d->next_ticket);
	char *b = fmt(&p);
	assert_string_equal(a, b);
	/* The same without the per-thread cache: a full parse and a full
	 * format give what the cached ways gave. */
	lock_doc_release(&p);
	lock_doc_cache_drop();
	r = lock_doc_parse(a, &p, err, sizeof(err));
	if (r != 0)
		fail_msg("formatted document does not parse without the cache (%s): %s", err, a);
	free(b);
	lock_doc_cache_drop();
	b = fmt(&p);
	assert_string_equal(a, b);
	free(a);
	free(b);
	lock_doc_release(&p);
}

static int doc_setup(void **state)
{
	struct lock_doc *d = malloc(sizeof(*d));
	if (!d)
		return -1;
	lock_doc_init(d);
	*state = d;
	return 0;
}

static int doc_teardown(void **state)
{
	struct lock_doc *d = *state;
	lock_doc_release(d);
	free(d);
	return 0;
}

/* ---- small helpers of the API ------------------------------------------- */

static void test_mode_helpers(void **state)
{
	(void)state;
	enum lock_mode m = LOCK_EXCLUSIVE;
	assert_string_equal(lock_mode_name(LOCK_SHARED), "shared");
	assert_string_equal(lock_mode_name(LOCK_EXCLUSIVE), "exclusive");
	assert_int_equal(lock_mode_from_string("shared", &m), 0);
	assert_int_equal(m, LOCK_SHARED);
	assert_int_equal(lock_mode_from_string("exclusive", &m), 0);
	assert_int_equal(m, LOCK_EXCLUSIVE);
	m = LOCK_SHARED;
	assert_int_equal(lock_mode_from_string("Exclusive", &m), -EINVAL);
	assert_int_equal(lock_mode_from_string("", &m), -EINVAL);
	assert_int_equal(lock_mode_from_string("shared ", &m), -EINVAL);
	assert_int_equal(m, LOCK_SHARED); /* untouched on error */

	assert_true(lock_modes_compatible(LOCK_SHARED, LOCK_SHARED));
	assert_false(lock_modes_compatible(LOCK_SHARED, LOCK_EXCLUSIVE));
	assert_false(lock_modes_compatible(LOCK_EXCLUSIVE, LOCK_SHARED));
	assert_false(lock_modes_compatible(LOCK_EXCLUSIVE, LOCK_EXCLUSIVE));
}

static void test_lock_name_valid(void **state)
{
	(void)state;
	assert_true(lock_name_valid("a"));
	assert_true(lock_name_valid("app:wordpress"));
	assert_true(lock_name_valid("service:sftp"));
	assert_true(lock_name_valid("volume/data_1.2-x@host"));
	assert_true(lock_name_valid("A-Z.a_z:0/9@"));
	assert_true(lock_name_valid(":"));

	assert_false(lock_name_valid(""));
	assert_false(lock_name_valid("app x"));
	assert_false(lock_name_valid("app:x\n"));
	assert_false(lock_name_valid("app*"));
	assert_false(lock_name_valid("app\"x"));
	assert_false(lock_name_valid("app\\x"));
	assert_false(lock_name_valid("caf\xc3\xa9")); /* non-ASCII */

	char name[LOCK_NAME_MAX + 1];
	memset(name, 'n', LOCK_NAME_MAX - 1);
	name[LOCK_NAME_MAX - 1] = '\0';
	assert_true(lock_name_valid(name)); /* 127 characters */
	name[LOCK_NAME_MAX - 1] = 'n';
	name[LOCK_NAME_MAX] = '\0';
	assert_false(lock_name_valid(name)); /* 128 */
}

static void test_lock_req_parse(void **state)
{
	(void)state;
	struct lock_req r;

	assert_int_equal(lock_req_parse("app:x", &r), 0);
	assert_string_equal(r.name, "app:x");
	assert_int_equal(r.mode, LOCK_EXCLUSIVE);

	assert_int_equal(lock_req_parse("app:x:shared", &r), 0);
	assert_string_equal(r.name, "app:x");
	assert_int_equal(r.mode, LOCK_SHARED);

	assert_int_equal(lock_req_parse("app:x:exclusive", &r), 0);
	assert_string_equal(r.name, "app:x");
	assert_int_equal(r.mode, LOCK_EXCLUSIVE);

	/* Names may contain ':' themselves; only the last suffix is a mode. */
	assert_int_equal(lock_req_parse("a:b:c:d", &r), 0);
	assert_string_equal(r.name, "a:b:c:d");
	assert_int_equal(r.mode, LOCK_EXCLUSIVE);
	assert_int_equal(lock_req_parse("x:shared:exclusive", &r), 0);
	assert_string_equal(r.name, "x:shared");
	assert_int_equal(r.mode, LOCK_EXCLUSIVE);
	assert_int_equal(lock_req_parse("plain", &r), 0);
	assert_string_equal(r.name, "plain");
	assert_int_equal(r.mode, LOCK_EXCLUSIVE);
	/* A suffix with nothing before it is a name, not a mode. */
	assert_int_equal(lock_req_parse(":shared", &r), 0);
	assert_string_equal(r.name, ":shared");
	assert_int_equal(r.mode, LOCK_EXCLUSIVE);
	/* Mode words are case sensitive: this is a name. */
	assert_int_equal(lock_req_parse("app:x:SHARED", &r), 0);
	assert_string_equal(r.name, "app:x:SHARED");
	assert_int_equal(r.mode, LOCK_EXCLUSIVE);

	/* Bad: empty, bad characters, too long. *ret untouched. */
	struct lock_req keep = mk_req("keep", LOCK_SHARED);
	r = keep;
	assert_int_equal(lock_req_parse("", &r), -EINVAL);
	assert_int_equal(lock_req_parse("app x", &r), -EINVAL);
	assert_int_equal(lock_req_parse("app x:shared", &r), -EINVAL);
	assert_int_equal(lock_req_parse("app:x;rm", &r), -EINVAL);
	assert_int_equal(lock_req_parse("app:\x01", &r), -EINVAL);
	assert_memory_equal(&r, &keep, sizeof(r));

	char spec[LOCK_NAME_MAX + 32];
	memset(spec, 'n', LOCK_NAME_MAX - 1);
	strcpy(spec + LOCK_NAME_MAX - 1, ":shared");
	assert_int_equal(lock_req_parse(spec, &r), 0); /* 127-character name + mode */
	assert_int_equal(strlen(r.name), LOCK_NAME_MAX - 1);
	assert_int_equal(r.mode, LOCK_SHARED);
	r = keep;
	memset(spec, 'n', LOCK_NAME_MAX);
	strcpy(spec + LOCK_NAME_MAX, ":shared");
	assert_int_equal(lock_req_parse(spec, &r), -EINVAL); /* 128-character name */
	spec[LOCK_NAME_MAX] = '\0';
	assert_int_equal(lock_req_parse(spec, &r), -EINVAL);
	memset(spec, 'n', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	assert_int_equal(lock_req_parse(spec, &r), -EINVAL);
	assert_memory_equal(&r, &keep, sizeof(r));
}

static void test_owner_identity(void **state)
{
	(void)state;
	struct lock_owner a = mk_owner(1, 100), b = a;
	b.acquired_at_ms = 77;
	b.lease_expires_ms = 99;
	assert_true(lock_owner_same(&a, &b)); /* facts of a holding, not identity */
	b = a;
	b.task_id = 2;
	assert_false(lock_owner_same(&a, &b));
	b = a;
	b.pid = 101;
	assert_false(lock_owner_same(&a, &b));
	b = a;
	b.start_time++;
	assert_false(lock_owner_same(&a, &b));
	b = a;
	strcpy(b.host, OTHER_HOST);
	assert_false(lock_owner_same(&a, &b));
}

/* ---- the compatibility matrix ------------------------------------------ */

static void check_pair(struct lock_doc *d, enum lock_mode held, enum lock_mode wanted)
{
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	assert_int_equal(try1(d, &a, "app:x", held, T0, NULL), 1);
	char *before = fmt(d);
	struct lock_blocker bl;
	memset(&bl, 0, sizeof(bl));
	int r = try1(d, &b, "app:x", wanted, T0 + 1, &bl);
	if (held == LOCK_SHARED && wanted == LOCK_SHARED) {
		assert_int_equal(r, 1);
		assert_int_equal(d->n_holders, 2);
		const struct lock_holder *h = find_holder(d, &b, "app:x");
		assert_non_null(h);
		assert_int_equal(h->lock.mode, LOCK_SHARED);
		assert_int_equal(h->owner.acquired_at_ms, T0 + 1);
		assert_non_null(find_holder(d, &a, "app:x"));
	} else {
		assert_int_equal(r, 0);
		assert_blocker(&bl, "app:x", held, false, &a);
		assert_doc_text(d, before);
		/* A try never takes a ticket. */
		assert_int_equal(d->n_waiters, 0);
		assert_int_equal(d->next_ticket, 1);
	}
	free(before);
	check_invariants(d);
	assert_roundtrip(d);
}

static void test_compat_shared_shared(void **state) { check_pair(*state, LOCK_SHARED, LOCK_SHARED); }
static void test_compat_shared_exclusive(void **state) { check_pair(*state, LOCK_SHARED, LOCK_EXCLUSIVE); }
static void test_compat_exclusive_shared(void **state) { check_pair(*state, LOCK_EXCLUSIVE, LOCK_SHARED); }
static void test_compat_exclusive_exclusive(void **state) { check_pair(*state, LOCK_EXCLUSIVE, LOCK_EXCLUSIVE); }

/* ---- an owner's own holdings ------------------------------------------- */

static void test_repeat_is_idempotent(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100);
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(try1(d, &a, "app:s", LOCK_SHARED, T0, NULL), 1);
	char *before = fmt(d);

	/* Same request again, later: granted, nothing changes (not even the
	 * acquired-at time). */
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0 + 50, NULL), 1);
	assert_int_equal(try1(d, &a, "app:s", LOCK_SHARED, T0 + 50, NULL), 1);
	assert_doc_text(d, before);
	/* A weaker request on an exclusive holding keeps the exclusive mode. */
	assert_int_equal(try1(d, &a, "app:x", LOCK_SHARED, T0 + 60, NULL), 1);
	assert_doc_text(d, before);
	assert_int_equal(find_holder(d, &a, "app:x")->lock.mode, LOCK_EXCLUSIVE);
	/* A waiting acquire of something held takes no ticket. */
	int64_t ticket = 0;
	assert_int_equal(wait1(d, &a, "app:x", LOCK_EXCLUSIVE, &ticket, T0 + 70, NULL), 1);
	assert_doc_text(d, before);
	assert_int_equal(d->n_waiters, 0);
	assert_int_equal(d->next_ticket, 1);
	assert_int_equal(d->n_holders, 2);
	free(before);
	check_invariants(d);
}

/* Regression: a repeat used to be refused when someone was queued for the
 * name, although the owner already holds it (a self-deadlock for a nested
 * waiting acquire). */
static void test_repeat_is_idempotent_while_others_wait(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200), c = mk_owner(3, 300);
	int64_t tb = 0, tc = 0;
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(try1(d, &a, "app:s", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(wait1(d, &b, "app:x", LOCK_SHARED, &tb, T0, NULL), 0);
	assert_int_equal(wait1(d, &c, "app:s", LOCK_EXCLUSIVE, &tc, T0, NULL), 0);
	assert_int_equal(d->n_waiters, 2);
	char *before = fmt(d);

	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0 + 1, NULL), 1);
	assert_int_equal(try1(d, &a, "app:x", LOCK_SHARED, T0 + 1, NULL), 1);
	assert_int_equal(try1(d, &a, "app:s", LOCK_SHARED, T0 + 1, NULL), 1);
	int64_t ta = 0;
	struct lock_req both[] = { mk_req("app:s", LOCK_SHARED), mk_req("app:x", LOCK_EXCLUSIVE) };
	assert_int_equal(lock_doc_acquire(d, &a, both, 2, &ta, T0 + 1, TTL, NULL), 1);
	assert_doc_text(d, before);
	free(before);
	check_invariants(d);
}

static void test_upgrade_when_alone(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	assert_int_equal(try1(d, &a, "app:x", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0 + 5, NULL), 1);
	assert_int_equal(d->n_holders, 1); /* one entry, upgraded in place */
	assert_int_equal(d->holders[0].lock.mode, LOCK_EXCLUSIVE);
	assert_int_equal(d->holders[0].owner.acquired_at_ms, T0);
	struct lock_blocker bl;
	assert_int_equal(try1(d, &b, "app:x", LOCK_SHARED, T0 + 6, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, false, &a);
	check_invariants(d);
}

static void test_upgrade_refused_with_other_shared_holder(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	assert_int_equal(try1(d, &a, "app:x", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &b, "app:x", LOCK_SHARED, T0, NULL), 1);
	char *before = fmt(d);
	struct lock_blocker bl;
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0 + 1, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_SHARED, false, &b);
	assert_doc_text(d, before);
	free(before);
	/* Once the other holder is gone the upgrade goes through. */
	const char *names[] = { "app:x" };
	assert_int_equal(lock_doc_unlock(d, &b, names, 1), 1);
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0 + 2, NULL), 1);
	assert_int_equal(d->n_holders, 1);
	assert_int_equal(d->holders[0].lock.mode, LOCK_EXCLUSIVE);
	check_invariants(d);
}

/* An owner that holds something waits only for holders, not behind the
 * queue: its upgrade goes through ahead of an earlier ticket. */
static void test_upgrade_waits_behind_earlier_ticket(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), w = mk_owner(2, 200);
	int64_t tw = 0;
	assert_int_equal(try1(d, &a, "app:x", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &tw, T0, NULL), 0);
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0 + 1, NULL), 1);
	assert_int_equal(d->holders[0].lock.mode, LOCK_EXCLUSIVE);
	check_invariants(d);
}

/* The cycle the queue could close: a full backup holds `platform` shared
 * and takes app:x; an app task of x is queued behind an update that wants
 * `platform` exclusive. The backup, a holder, does not wait behind the app
 * task's ticket, so nobody waits for ever. */
static void test_holder_is_not_blocked_by_queue_cycle(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner backup = mk_owner(1, 100), update = mk_owner(2, 200), app_task = mk_owner(3, 300);
	assert_int_equal(try1(d, &backup, "platform", LOCK_SHARED, T0, NULL), 1);
	int64_t tu = 0, ta = 0;
	assert_int_equal(wait1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0, NULL), 0);
	struct lock_req app_reqs[] = { { "app:x", LOCK_EXCLUSIVE }, { "platform", LOCK_SHARED } };
	assert_int_equal(lock_doc_acquire(d, &app_task, app_reqs, 2, &ta, T0, 10000, NULL), 0);
	assert_int_equal(try1(d, &backup, "app:x", LOCK_EXCLUSIVE, T0 + 1, NULL), 1);
	check_invariants(d);
}

/* ---- all or none -------------------------------------------------------- */

static void test_all_or_none_conflict_grants_nothing(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	assert_int_equal(try1(d, &a, "app:b", LOCK_EXCLUSIVE, T0, NULL), 1);
	char *before = fmt(d);
	struct lock_req reqs[] = { mk_req("app:a", LOCK_EXCLUSIVE), mk_req("app:b", LOCK_SHARED),
				   mk_req("app:c", LOCK_SHARED) };
	struct lock_blocker bl;
	assert_int_equal(lock_doc_acquire(d, &b, reqs, 3, NULL, T0 + 1, TTL, &bl), 0);
	assert_blocker(&bl, "app:b", LOCK_EXCLUSIVE, false, &a);
	assert_doc_text(d, before);
	assert_null(find_holder(d, &b, "app:a"));
	assert_null(find_holder(d, &b, "app:c"));

	/* The conflicting one last, then first: same result. */
	struct lock_req last[] = { mk_req("app:a", LOCK_SHARED), mk_req("app:b", LOCK_EXCLUSIVE) };
	assert_int_equal(lock_doc_acquire(d, &b, last, 2, NULL, T0 + 1, TTL, NULL), 0);
	assert_doc_text(d, before);
	/* Waiting: refused, one ticket for the whole request, no holder. */
	int64_t t = 0;
	assert_int_equal(lock_doc_acquire(d, &b, reqs, 3, &t, T0 + 1, TTL, NULL), 0);
	assert_int_equal(d->n_holders, 1);
	assert_int_equal(d->n_waiters, 1);
	assert_int_equal(d->waiters[0].n_locks, 3);
	assert_string_equal(d->waiters[0].locks[1].name, "app:b");
	assert_int_equal(d->waiters[0].locks[1].mode, LOCK_SHARED);
	free(before);
	check_invariants(d);
	assert_roundtrip(d);
}

static void test_all_or_none_compatible_grants_all(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	assert_int_equal(try1(d, &a, "app:b", LOCK_SHARED, T0, NULL), 1);
	struct lock_req reqs[] = { mk_req("app:a", LOCK_EXCLUSIVE), mk_req("app:b", LOCK_SHARED),
				   mk_req("service:sftp", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &b, reqs, 3, NULL, T0 + 7, TTL, NULL), 1);
	assert_int_equal(d->n_holders, 4);
	for (size_t i = 0; i < 3; i++) {
		const struct lock_holder *h = find_holder(d, &b, reqs[i].name);
		assert_non_null(h);
		assert_int_equal(h->lock.mode, reqs[i].mode);
		assert_int_equal(h->owner.acquired_at_ms, T0 + 7);
	}
	assert_int_equal(count_holders_of(d, "app:b"), 2);
	check_invariants(d);
	assert_roundtrip(d);
}

static void test_invalid_requests_change_nothing(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	int64_t tb = 0;
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &b, "app:x", LOCK_EXCLUSIVE, &tb, T0, NULL), 0);
	char *before = fmt(d);

	struct lock_req ok = mk_req("app:y", LOCK_SHARED);
	int64_t t = 0;
	assert_int_equal(lock_doc_acquire(d, &a, &ok, 0, NULL, T0, TTL, NULL), -EINVAL);
	assert_int_equal(lock_doc_acquire(d, &a, &ok, 0, &t, T0, TTL, NULL), -EINVAL);

	struct lock_req dup[] = { mk_req("app:y", LOCK_SHARED), mk_req("app:z", LOCK_SHARED),
				  mk_req("app:y", LOCK_EXCLUSIVE) };
	assert_int_equal(lock_doc_acquire(d, &a, dup, 3, NULL, T0, TTL, NULL), -EINVAL);
	assert_int_equal(lock_doc_acquire(d, &a, dup, 3, &t, T0, TTL, NULL), -EINVAL);

	const char *bad_names[] = { "", "app y", "app:y\n", "ü" };
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		struct lock_req bad[] = { mk_req("app:y", LOCK_SHARED), mk_req(bad_names[i], LOCK_SHARED) };
		assert_int_equal(lock_doc_acquire(d, &a, bad, 2, NULL, T0, TTL, NULL), -EINVAL);
		assert_int_equal(lock_doc_acquire(d, &b, bad, 2, &t, T0, TTL, NULL), -EINVAL);
	}
	struct lock_req badmode = mk_req("app:y", (enum lock_mode)7);
	assert_int_equal(lock_doc_acquire(d, &a, &badmode, 1, NULL, T0, TTL, NULL), -EINVAL);
	assert_int_equal(lock_doc_acquire(d, &b, &badmode, 1, &t, T0, TTL, NULL), -EINVAL);

	/* Nothing changed, no ticket issued, the caller's ticket untouched. */
	assert_int_equal(t, 0);
	assert_doc_text(d, before);
	assert_int_equal(d->next_ticket, 2);
	free(before);
}

/* ---- FIFO --------------------------------------------------------------- */

static void test_fifo_handoff(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w1 = mk_owner(2, 200), w2 = mk_owner(3, 300);
	int64_t t1 = 0, t2 = 0;
	struct lock_blocker bl;
	assert_int_equal(try1(d, &h, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);

	assert_int_equal(wait1(d, &w1, "app:x", LOCK_EXCLUSIVE, &t1, T0 + 1, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, false, &h);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + 2, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, false, &h);
	assert_int_equal(t1, 1);
	assert_int_equal(t2, 2);
	assert_int_equal(d->next_ticket, 3);
	assert_int_equal(d->n_waiters, 2);
	assert_int_equal(d->waiters[0].ticket, t1);
	assert_true(lock_owner_same(&d->waiters[0].owner, &w1));
	assert_int_equal(d->waiters[0].expires_ms, T0 + 1 + TTL);
	assert_int_equal(d->waiters[1].ticket, t2);
	check_invariants(d);
	assert_roundtrip(d);

	assert_int_equal(lock_doc_unlock(d, &h, NULL, 0), 1);

	/* W2 polls first: still refused, because W1 is ahead of it. */
	char *before = fmt(d);
	memset(&bl, 0, sizeof(bl));
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + 3, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, true, &w1);
	assert_int_equal(bl.ticket, t1);
	assert_int_equal(t2, 2);
	assert_doc_text(d, before); /* nothing to refresh yet */
	free(before);
	/* A try by W2 is refused the same way (no ticket taken). */
	assert_int_equal(try1(d, &w2, "app:x", LOCK_EXCLUSIVE, T0 + 3, &bl), 0);
	assert_true(bl.queued);
	assert_int_equal(bl.task_id, w1.task_id);

	/* W1 is granted and its ticket goes away. */
	assert_int_equal(wait1(d, &w1, "app:x", LOCK_EXCLUSIVE, &t1, T0 + 4, NULL), 1);
	assert_non_null(find_holder(d, &w1, "app:x"));
	assert_null(find_waiter(d, t1));
	assert_int_equal(d->n_waiters, 1);
	assert_int_equal(d->waiters[0].ticket, t2);

	/* W2 now waits for W1 the holder. */
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + 5, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, false, &w1);
	assert_int_equal(lock_doc_unlock(d, &w1, NULL, 0), 1);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + 6, NULL), 1);
	assert_int_equal(d->n_waiters, 0);
	assert_int_equal(d->n_holders, 1);
	assert_non_null(find_holder(d, &w2, "app:x"));
	assert_int_equal(d->next_ticket, 3);
	check_invariants(d);
}

static void test_no_writer_starvation(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner r1 = mk_owner(1, 100), w = mk_owner(2, 200), r2 = mk_owner(3, 300), r3 = mk_owner(4, 400);
	int64_t tw = 0, t2 = 0;
	struct lock_blocker bl;
	assert_int_equal(try1(d, &r1, "app:x", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &tw, T0, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_SHARED, false, &r1);

	/* A shared newcomer is compatible with the shared holder but must not
	 * overtake the exclusive waiter queued before it. */
	char *before = fmt(d);
	assert_int_equal(try1(d, &r2, "app:x", LOCK_SHARED, T0 + 1, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, true, &w);
	assert_int_equal(bl.ticket, tw);
	assert_doc_text(d, before);
	free(before);
	assert_int_equal(wait1(d, &r2, "app:x", LOCK_SHARED, &t2, T0 + 1, &bl), 0);
	assert_true(bl.queued);
	assert_true(t2 > tw);
	/* A stream of further shared readers: all refused. */
	assert_int_equal(try1(d, &r3, "app:x", LOCK_SHARED, T0 + 2, &bl), 0);
	assert_true(bl.queued);
	assert_int_equal(bl.task_id, w.task_id);

	assert_int_equal(lock_doc_unlock(d, &r1, NULL, 0), 1);
	assert_int_equal(wait1(d, &r2, "app:x", LOCK_SHARED, &t2, T0 + 3, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, true, &w);
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &tw, T0 + 3, NULL), 1);
	assert_int_equal(wait1(d, &r2, "app:x", LOCK_SHARED, &t2, T0 + 4, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, false, &w);
	assert_int_equal(lock_doc_unlock(d, &w, NULL, 0), 1);
	assert_int_equal(wait1(d, &r2, "app:x", LOCK_SHARED, &t2, T0 + 5, NULL), 1);
	assert_int_equal(try1(d, &r3, "app:x", LOCK_SHARED, T0 + 5, NULL), 1);
	assert_int_equal(d->n_waiters, 0);
	assert_int_equal(count_holders_of(d, "app:x"), 2);
	check_invariants(d);
}

/* ---- deferring to a long holder (issue 20) ------------------------------- */

static int defer1(struct lock_doc *d, const struct lock_owner *o, const char *name, enum lock_mode m,
		  int64_t *ticket, int64_t now, struct lock_blocker *b)
{
	struct lock_req r = mk_req(name, m);
	return lock_doc_acquire_ex(d, o, &r, 1, ticket, now, TTL, LOCK_ACQ_DEFER, b);
}

/* A full backup: type:fullbackup exclusive and platform shared. */
static void start_backup(struct lock_doc *d, const struct lock_owner *b, int64_t now)
{
	struct lock_req reqs[] = { mk_req(LOCK_LONG_MARKER, LOCK_EXCLUSIVE), mk_req("platform", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, b, reqs, 2, NULL, now, TTL, NULL), 1);
}

/* Issue 16: each host's full backup holds its own marker,
 * type:fullbackup:<host>; it marks that owner's shared holdings as long
 * like the box-wide name does, and a name that merely starts alike does
 * not. */
static void test_long_marker_per_host(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner backup = mk_owner(1, 100), other = mk_owner(2, 200);
	assert_true(lock_name_is_long_marker(LOCK_LONG_MARKER));
	assert_true(lock_name_is_long_marker("type:fullbackup:host-a"));
	assert_false(lock_name_is_long_marker("type:fullbackups"));
	assert_false(lock_name_is_long_marker("type:fullbackup-host-a"));
	assert_false(lock_name_is_long_marker("platform:host-a"));
	struct lock_req reqs[] = { mk_req("type:fullbackup:host-a", LOCK_EXCLUSIVE),
				   mk_req("platform:host-a", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &backup, reqs, 2, NULL, T0, TTL, NULL), 1);
	assert_true(lock_doc_is_long_holder(d, find_holder(d, &backup, "platform:host-a")));
	struct lock_req look_alike[] = { mk_req("type:fullbackups", LOCK_EXCLUSIVE), mk_req("platform:host-b", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &other, look_alike, 2, NULL, T0, TTL, NULL), 1);
	assert_false(lock_doc_is_long_holder(d, find_holder(d, &other, "platform:host-b")));
	check_invariants(d);
}

/* The case of issue 20: while a full backup holds `platform` shared, an
 * update wanting it exclusive waits outside the queue, so an app task
 * (platform shared) arriving after it is granted at once; without the flag
 * the app task queues behind the update for the rest of the backup. */
static void test_defer_lets_shared_pass_during_backup(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner backup = mk_owner(1, 100), update = mk_owner(2, 200), app = mk_owner(3, 300);
	struct lock_blocker bl = { 0 };
	start_backup(d, &backup, T0);
	assert_true(lock_doc_is_long_holder(d, find_holder(d, &backup, "platform")));
	assert_false(lock_doc_is_long_holder(d, find_holder(d, &backup, LOCK_LONG_MARKER))); /* exclusive */

	char *before = fmt(d);
	int64_t tu = 0;
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0 + 1, &bl), 0);
	assert_int_equal(tu, 0);
	assert_true(bl.deferred);
	assert_blocker(&bl, "platform", LOCK_SHARED, false, &backup);
	assert_doc_text(d, before); /* no ticket: nothing written */
	free(before);

	/* An app task submitted after the update: granted at once. */
	struct lock_req app_reqs[] = { mk_req("app:wiki", LOCK_EXCLUSIVE), mk_req("platform", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &app, app_reqs, 2, NULL, T0 + 2, TTL, NULL), 1);
	check_invariants(d);

	/* The same update without the flag queues, and the next app task
	 * waits behind it: the behaviour the flag exists to avoid. */
	struct lock_doc plain;
	lock_doc_init(&plain);
	start_backup(&plain, &backup, T0);
	int64_t tp = 0;
	struct lock_owner app2 = mk_owner(4, 400);
	struct lock_req app2_reqs[] = { mk_req("app:blog", LOCK_EXCLUSIVE), mk_req("platform", LOCK_SHARED) };
	assert_int_equal(wait1(&plain, &update, "platform", LOCK_EXCLUSIVE, &tp, T0 + 1, NULL), 0);
	assert_true(tp > 0);
	assert_int_equal(lock_doc_acquire(&plain, &app2, app2_reqs, 2, NULL, T0 + 2, TTL, &bl), 0);
	assert_blocker(&bl, "platform", LOCK_EXCLUSIVE, true, &update);
	lock_doc_release(&plain);
}

/* Once the backup is over the update queues as usual; from then on new
 * shared requests wait behind it (it is not starved by app tasks), and it
 * is granted when the app tasks already running end. */
static void test_defer_ends_with_the_backup(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner backup = mk_owner(1, 100), update = mk_owner(2, 200), app = mk_owner(3, 300),
			  late = mk_owner(4, 400);
	struct lock_blocker bl = { 0 };
	start_backup(d, &backup, T0);
	int64_t tu = 0;
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0 + 1, &bl), 0);
	assert_true(bl.deferred);
	assert_int_equal(try1(d, &app, "platform", LOCK_SHARED, T0 + 2, NULL), 1);

	/* Backup done; the app task still runs. */
	assert_int_equal(lock_doc_unlock(d, &backup, NULL, 0), 2);
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0 + 3, &bl), 0);
	assert_false(bl.deferred);
	assert_true(tu > 0); /* queued now */
	assert_blocker(&bl, "platform", LOCK_SHARED, false, &app);
	assert_int_equal(try1(d, &late, "platform", LOCK_SHARED, T0 + 4, &bl), 0);
	assert_blocker(&bl, "platform", LOCK_EXCLUSIVE, true, &update);

	assert_int_equal(lock_doc_unlock(d, &app, NULL, 0), 1);
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0 + 5, NULL), 1);
	assert_int_equal(d->n_waiters, 0);
	check_invariants(d);
}

/* What never defers: a request that already has a ticket (it keeps its
 * place), a request blocked only by ordinary holders, an exclusive long
 * holder. And an owner holding something does defer. */
static void test_defer_only_when_it_should(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner backup = mk_owner(1, 100), update = mk_owner(2, 200), app = mk_owner(3, 300),
			  holder = mk_owner(5, 500);
	struct lock_blocker bl = { 0 };

	/* Only an ordinary shared holder: queue as always. */
	assert_int_equal(try1(d, &app, "platform", LOCK_SHARED, T0, NULL), 1);
	int64_t tu = 0;
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0, &bl), 0);
	assert_false(bl.deferred);
	assert_true(tu > 0);
	/* With its ticket, it does not give its place up when a backup holds
	 * platform too (taken before the ticket, here by cancelling it for a
	 * moment; the waiter then queued again without the flag). */
	lock_doc_cancel_ticket(d, tu);
	start_backup(d, &backup, T0 + 1);
	tu = 0;
	assert_int_equal(wait1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0 + 1, NULL), 0);
	int64_t kept = tu;
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0 + 2, &bl), 0);
	assert_int_equal(tu, kept);
	assert_false(bl.deferred);
	assert_non_null(find_waiter(d, kept));
	lock_doc_cancel_ticket(d, kept);
	lock_doc_unlock(d, &app, NULL, 0);

	/* An owner that holds something (an update holds type:update when it
	 * asks for platform) defers too: its ticket would block newcomers as
	 * much as anyone's. */
	assert_int_equal(try1(d, &holder, "type:update", LOCK_EXCLUSIVE, T0 + 3, NULL), 1);
	int64_t th = 0;
	assert_int_equal(defer1(d, &holder, "platform", LOCK_EXCLUSIVE, &th, T0 + 3, &bl), 0);
	assert_true(bl.deferred);
	assert_int_equal(th, 0);
	assert_int_equal(try1(d, &app, "platform", LOCK_SHARED, T0 + 3, NULL), 1);
	lock_doc_unlock(d, &app, NULL, 0);
	lock_doc_unlock(d, &holder, NULL, 0);

	/* Shared requests are compatible with the backup: granted. */
	int64_t ts = 0;
	assert_int_equal(defer1(d, &app, "platform", LOCK_SHARED, &ts, T0 + 4, NULL), 1);
	lock_doc_unlock(d, &app, NULL, 0);

	/* An exclusive holder of platform that holds the marker is not
	 * "long shared": queue. */
	lock_doc_unlock(d, &backup, NULL, 0);
	struct lock_req excl[] = { mk_req(LOCK_LONG_MARKER, LOCK_EXCLUSIVE), mk_req("platform", LOCK_EXCLUSIVE) };
	assert_int_equal(lock_doc_acquire(d, &backup, excl, 2, NULL, T0 + 5, TTL, NULL), 1);
	tu = 0;
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, T0 + 6, &bl), 0);
	assert_false(bl.deferred);
	assert_true(tu > 0);
	check_invariants(d);
}

/* Starvation, both ways, over a long run of one backup and a stream of app
 * tasks: (1) while the backup runs, no app task ever waits for the update;
 * (2) once the backup ends, the update is granted after the app tasks that
 * were running at that moment, not after an endless stream of new ones. */
static void test_defer_no_starvation_either_way(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner backup = mk_owner(1, 100), update = mk_owner(2, 200);
	int64_t tu = 0, now = T0;
	struct lock_blocker bl;
	start_backup(d, &backup, now);
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, now, &bl), 0);
	/* 200 app tasks come and go while the backup runs; each holds
	 * platform shared for a while (up to 3 at once). */
	struct lock_owner running[3];
	size_t n_running = 0;
	for (int i = 0; i < 200; i++) {
		now++;
		if (n_running == 3) {
			assert_int_equal(lock_doc_unlock(d, &running[0], NULL, 0), 1);
			memmove(&running[0], &running[1], 2 * sizeof(running[0]));
			n_running--;
		}
		running[n_running] = mk_owner(1000 + i, 1000 + i);
		assert_int_equal(try1(d, &running[n_running], "platform", LOCK_SHARED, now, &bl), 1);
		n_running++;
		/* The update polls, deferring, and takes no ticket. */
		assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, now, &bl), 0);
		assert_true(bl.deferred);
		assert_int_equal(tu, 0);
	}
	/* The backup ends; the update queues; new app tasks queue behind it. */
	assert_int_equal(lock_doc_unlock(d, &backup, NULL, 0), 2);
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, ++now, &bl), 0);
	assert_true(tu > 0);
	for (int i = 0; i < 50; i++) {
		struct lock_owner newcomer = mk_owner(5000 + i, 5000 + i);
		assert_int_equal(try1(d, &newcomer, "platform", LOCK_SHARED, ++now, &bl), 0);
		assert_true(bl.queued);
	}
	/* The running ones end: the update is granted. */
	for (size_t k = 0; k < n_running; k++)
		assert_int_equal(lock_doc_unlock(d, &running[k], NULL, 0), 1);
	assert_int_equal(defer1(d, &update, "platform", LOCK_EXCLUSIVE, &tu, ++now, NULL), 1);
	check_invariants(d);
}

static void test_queue_does_not_block_unrelated_names(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w = mk_owner(2, 200), n = mk_owner(3, 300);
	int64_t tw = 0, tn = 0;
	assert_int_equal(try1(d, &h, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &tw, T0, NULL), 0);
	assert_int_equal(try1(d, &n, "app:y", LOCK_EXCLUSIVE, T0 + 1, NULL), 1);
	struct lock_req two[] = { mk_req("app:z", LOCK_SHARED), mk_req("app:w", LOCK_EXCLUSIVE) };
	assert_int_equal(lock_doc_acquire(d, &n, two, 2, &tn, T0 + 1, TTL, NULL), 1);
	assert_int_equal(tn, 0); /* granted at once: no ticket */
	assert_int_equal(d->n_waiters, 1);
	check_invariants(d);
}

/* A queued waiter wanting a compatible mode on a name does not block it. */
static void test_compatible_waiter_does_not_block(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w = mk_owner(2, 200), n = mk_owner(3, 300);
	int64_t tw = 0;
	struct lock_blocker bl;
	assert_int_equal(try1(d, &h, "app:y", LOCK_EXCLUSIVE, T0, NULL), 1);
	struct lock_req wreq[] = { mk_req("app:x", LOCK_SHARED), mk_req("app:y", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &w, wreq, 2, &tw, T0, TTL, &bl), 0);
	assert_blocker(&bl, "app:y", LOCK_EXCLUSIVE, false, &h);
	assert_int_equal(try1(d, &n, "app:x", LOCK_SHARED, T0 + 1, NULL), 1);
	/* An exclusive newcomer on app:x: first it meets the holder n... */
	struct lock_owner m = mk_owner(4, 400);
	assert_int_equal(try1(d, &m, "app:x", LOCK_EXCLUSIVE, T0 + 1, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_SHARED, false, &n);
	/* ...and once n is gone, the shared ticket queued before it. */
	assert_int_equal(lock_doc_unlock(d, &n, NULL, 0), 1);
	assert_int_equal(try1(d, &m, "app:x", LOCK_EXCLUSIVE, T0 + 2, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_SHARED, true, &w);
	assert_int_equal(bl.ticket, tw);
	check_invariants(d);
}

/* ---- ticket expiry ------------------------------------------------------ */

static void test_abandoned_ticket_is_pruned(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w1 = mk_owner(2, 200), w2 = mk_owner(3, 300);
	int64_t t1 = 0, t2 = 0;
	struct lock_blocker bl;
	assert_int_equal(try1(d, &h, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &w1, "app:x", LOCK_EXCLUSIVE, &t1, T0, NULL), 0);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + 10, NULL), 0);
	assert_int_equal(lock_doc_unlock(d, &h, NULL, 0), 1);

	/* W1 went away and never polls again. W2 keeps polling: refused
	 * behind W1, and refreshes its own ticket. */
	int64_t now = T0 + 10;
	for (; now <= T0 + TTL; now += 50) {
		assert_int_equal(lock_doc_prune_tickets(d, now), 0);
		assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, now, &bl), 0);
		assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, true, &w1);
	}
	/* At W1's expiry exactly it is still there; just after, pruned. */
	assert_int_equal(find_waiter(d, t1)->expires_ms, T0 + TTL);
	assert_int_equal(lock_doc_prune_tickets(d, T0 + TTL), 0);
	assert_int_equal(lock_doc_prune_tickets(d, T0 + TTL + 1), 1);
	assert_null(find_waiter(d, t1));
	assert_non_null(find_waiter(d, t2)); /* refreshed: survives */
	assert_true(find_waiter(d, t2)->expires_ms > T0 + TTL + 1);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + TTL + 1, NULL), 1);
	assert_int_equal(d->n_waiters, 0);
	check_invariants(d);
}

static void test_refreshed_ticket_survives_prune(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w = mk_owner(2, 200);
	int64_t t = 0;
	assert_int_equal(try1(d, &h, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &t, T0, NULL), 0);
	/* Poll every TTL/2 for many TTLs, pruning at each step. */
	for (int64_t now = T0; now < T0 + 20 * TTL; now += TTL / 2) {
		assert_int_equal(lock_doc_prune_tickets(d, now), 0);
		int64_t before = t;
		assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &t, now, NULL), 0);
		assert_int_equal(t, before);
		assert_true(find_waiter(d, t)->expires_ms >= now + TTL * 2 / 3);
	}
	assert_int_equal(d->n_waiters, 1);
	assert_int_equal(d->next_ticket, 2);
}

static void test_poll_refreshes_only_when_due(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w = mk_owner(2, 200);
	int64_t t = 0;
	assert_int_equal(try1(d, &h, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &t, T0, NULL), 0);
	assert_int_equal(find_waiter(d, t)->expires_ms, T0 + TTL);
	char *before = fmt(d);

	/* While at least 2/3 of the ttl is left the poll changes nothing. */
	const int64_t polls[] = { T0, T0 + 1, T0 + TTL / 6, T0 + TTL / 3 };
	for (size_t i = 0; i < sizeof(polls) / sizeof(polls[0]); i++) {
		assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &t, polls[i], NULL), 0);
		assert_doc_text(d, before);
		assert_int_equal(t, 1);
	}
	/* Less than 2/3 left: pushed to now + ttl; only the expiry moved. */
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &t, T0 + TTL / 3 + 1, NULL), 0);
	char *after = fmt(d);
	assert_string_not_equal(after, before);
	assert_int_equal(t, 1);
	assert_int_equal(d->n_waiters, 1);
	assert_int_equal(d->next_ticket, 2);
	assert_int_equal(find_waiter(d, t)->expires_ms, T0 + TTL / 3 + 1 + TTL);
	/* And the next poll right after is a no-op again. */
	assert_int_equal(wait1(d, &w, "app:x", LOCK_EXCLUSIVE, &t, T0 + TTL / 3 + 2, NULL), 0);
	assert_doc_text(d, after);
	free(before);
	free(after);
}

static void test_pruned_ticket_requeues_at_back(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w1 = mk_owner(2, 200), w2 = mk_owner(3, 300);
	int64_t t1 = 0, t2 = 0;
	struct lock_blocker bl;
	assert_int_equal(try1(d, &h, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &w1, "app:x", LOCK_EXCLUSIVE, &t1, T0, NULL), 0);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + 150, NULL), 0);
	/* W1 stalls past its expiry; W2's ticket is still valid. */
	assert_int_equal(lock_doc_prune_tickets(d, T0 + TTL + 100), 1);
	assert_null(find_waiter(d, t1));
	int64_t old_t1 = t1;
	assert_int_equal(wait1(d, &w1, "app:x", LOCK_EXCLUSIVE, &t1, T0 + TTL + 100, NULL), 0);
	assert_true(t1 != old_t1);
	assert_true(t1 > t2);
	assert_int_equal(t1, 3);
	assert_int_equal(d->n_waiters, 2);
	assert_int_equal(d->waiters[0].ticket, t2);
	assert_int_equal(d->waiters[1].ticket, t1);
	assert_int_equal(d->waiters[1].expires_ms, T0 + TTL + 100 + TTL);
	check_invariants(d);

	/* On release, W2 (now first) goes before W1. */
	assert_int_equal(lock_doc_unlock(d, &h, NULL, 0), 1);
	assert_int_equal(wait1(d, &w1, "app:x", LOCK_EXCLUSIVE, &t1, T0 + TTL + 101, &bl), 0);
	assert_blocker(&bl, "app:x", LOCK_EXCLUSIVE, true, &w2);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0 + TTL + 101, NULL), 1);

	/* Someone else's ticket number is not ours: a stale/foreign ticket
	 * number also queues at the back. */
	struct lock_owner w3 = mk_owner(4, 400);
	int64_t t3 = t1; /* W1's live ticket, but we are not W1 */
	assert_int_equal(wait1(d, &w3, "app:x", LOCK_EXCLUSIVE, &t3, T0 + TTL + 102, &bl), 0);
	assert_true(t3 > t1);
	assert_int_equal(d->n_waiters, 2);
	check_invariants(d);
}

static void test_cancel_ticket(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner h = mk_owner(1, 100), w1 = mk_owner(2, 200), w2 = mk_owner(3, 300);
	int64_t t1 = 0, t2 = 0;
	assert_int_equal(try1(d, &h, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &w1, "app:x", LOCK_EXCLUSIVE, &t1, T0, NULL), 0);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0, NULL), 0);
	assert_int_equal(lock_doc_cancel_ticket(d, t1), 1);
	assert_int_equal(lock_doc_cancel_ticket(d, t1), 0);
	assert_int_equal(lock_doc_cancel_ticket(d, 999), 0);
	assert_int_equal(d->n_waiters, 1);
	assert_int_equal(d->waiters[0].ticket, t2);
	assert_int_equal(d->next_ticket, 3); /* never reissued */
	assert_int_equal(lock_doc_unlock(d, &h, NULL, 0), 1);
	assert_int_equal(wait1(d, &w2, "app:x", LOCK_EXCLUSIVE, &t2, T0, NULL), 1);
	check_invariants(d);
}

/* ---- unlock ------------------------------------------------------------- */

static void test_unlock_named(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	struct lock_req areqs[] = { mk_req("app:a", LOCK_EXCLUSIVE), mk_req("app:b", LOCK_EXCLUSIVE),
				    mk_req("app:c", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &a, areqs, 3, NULL, T0, TTL, NULL), 1);
	assert_int_equal(try1(d, &b, "app:c", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &b, "app:d", LOCK_SHARED, T0, NULL), 1);

	const char *some[] = { "app:a", "app:c", "app:zzz" };
	assert_int_equal(lock_doc_unlock(d, &a, some, 3), 2);
	assert_null(find_holder(d, &a, "app:a"));
	assert_null(find_holder(d, &a, "app:c"));
	assert_non_null(find_holder(d, &a, "app:b"));
	assert_non_null(find_holder(d, &b, "app:c")); /* b's shared c untouched */
	assert_non_null(find_holder(d, &b, "app:d"));
	/* Names it does not hold: nothing, byte-identical. */
	char *before = fmt(d);
	const char *none[] = { "app:d", "app:a" };
	assert_int_equal(lock_doc_unlock(d, &a, none, 2), 0);
	/* Another process of the same task is another owner. */
	struct lock_owner a2 = mk_owner(1, 101);
	const char *b_only[] = { "app:b" };
	assert_int_equal(lock_doc_unlock(d, &a2, b_only, 1), 0);
	assert_doc_text(d, before);
	free(before);
	assert_int_equal(d->n_holders, 3);
	check_invariants(d);
}

static void test_unlock_all_of_owner(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200), w = mk_owner(3, 300);
	int64_t tw = 0;
	struct lock_req areqs[] = { mk_req("app:a", LOCK_EXCLUSIVE), mk_req("app:b", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &a, areqs, 2, NULL, T0, TTL, NULL), 1);
	assert_int_equal(try1(d, &b, "app:b", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:a", LOCK_EXCLUSIVE, &tw, T0, NULL), 0);
	assert_int_equal(lock_doc_unlock(d, &a, NULL, 0), 2);
	assert_int_equal(d->n_holders, 1);
	assert_non_null(find_holder(d, &b, "app:b"));
	assert_int_equal(d->n_waiters, 1); /* unlock does not touch tickets */
	assert_int_equal(lock_doc_unlock(d, &a, NULL, 0), 0);
	assert_int_equal(wait1(d, &w, "app:a", LOCK_EXCLUSIVE, &tw, T0, NULL), 1);
	check_invariants(d);
}

static void test_unlock_task(void **state)
{
	struct lock_doc *d = *state;
	/* Task 7 runs as two processes; task 8 and a non-task owner too. */
	struct lock_owner t7a = mk_owner(7, 100), t7b = mk_owner(7, 101), t8 = mk_owner(8, 200),
			  t0 = mk_owner(0, 300), t9 = mk_owner(9, 400);
	int64_t k7 = 0, k8 = 0, k0 = 0;
	assert_int_equal(try1(d, &t7a, "app:a", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(try1(d, &t7b, "app:b", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &t8, "app:b", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &t0, "app:z", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &t9, "app:c", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &t8, "app:c", LOCK_SHARED, &k8, T0, NULL), 0);
	assert_int_equal(wait1(d, &t7a, "app:c", LOCK_EXCLUSIVE, &k7, T0, NULL), 0);
	assert_int_equal(wait1(d, &t0, "app:c", LOCK_EXCLUSIVE, &k0, T0, NULL), 0);
	assert_int_equal(d->n_waiters, 3);

	assert_int_equal(lock_doc_unlock_task(d, 7), 2);
	assert_null(find_holder(d, &t7a, "app:a"));
	assert_null(find_holder(d, &t7b, "app:b"));
	assert_non_null(find_holder(d, &t8, "app:b"));
	assert_non_null(find_holder(d, &t0, "app:z"));
	assert_non_null(find_holder(d, &t9, "app:c"));
	assert_int_equal(d->n_waiters, 2);
	assert_null(find_waiter(d, k7));
	assert_non_null(find_waiter(d, k8));
	assert_non_null(find_waiter(d, k0));

	/* Task ids <= 0 are not tasks: nothing removed, byte-identical. */
	char *before = fmt(d);
	assert_int_equal(lock_doc_unlock_task(d, 0), 0);
	assert_int_equal(lock_doc_unlock_task(d, -1), 0);
	assert_int_equal(lock_doc_unlock_task(d, 7), 0);
	assert_int_equal(lock_doc_unlock_task(d, 12345), 0);
	assert_doc_text(d, before);
	free(before);
	check_invariants(d);
}

/* ---- reap --------------------------------------------------------------- */

/* A predicate with the rules of locks.c's owner_is_dead, over a fake
 * process table instead of /proc. */
struct fake_proc {
	int32_t pid;
	uint64_t start_time;
};

struct reap_env {
	const char *my_host;
	int64_t now_ms;
	const struct fake_proc *procs;
	size_t n_procs;
	int calls;
};

static bool fake_owner_is_dead(const struct lock_owner *o, void *userdata)
{
	struct reap_env *e = userdata;
	e->calls++;
	if (strcmp(o->host, e->my_host) == 0) {
		for (size_t i = 0; i < e->n_procs; i++)
			if (e->procs[i].pid == o->pid)
				return e->procs[i].start_time != o->start_time; /* reused */
		return true; /* gone */
	}
	return o->lease_expires_ms > 0 && o->lease_expires_ms < e->now_ms;
}

static void test_reap_dead_pid(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner live = mk_owner(1, 100), dead = mk_owner(2, 200), dead_waiter = mk_owner(3, 300),
			  live_waiter = mk_owner(4, 400);
	int64_t tdw = 0, tlw = 0;
	assert_int_equal(try1(d, &live, "app:a", LOCK_SHARED, T0, NULL), 1);
	struct lock_req dreqs[] = { mk_req("app:a", LOCK_SHARED), mk_req("app:b", LOCK_EXCLUSIVE) };
	assert_int_equal(lock_doc_acquire(d, &dead, dreqs, 2, NULL, T0, TTL, NULL), 1);
	assert_int_equal(wait1(d, &dead_waiter, "app:b", LOCK_EXCLUSIVE, &tdw, T0, NULL), 0);
	assert_int_equal(wait1(d, &live_waiter, "app:b", LOCK_EXCLUSIVE, &tlw, T0, NULL), 0);

	const struct fake_proc procs[] = { { 100, 5100 }, { 400, 5400 } };
	struct reap_env env = { HOST, T0, procs, 2, 0 };
	assert_int_equal(lock_doc_reap(d, fake_owner_is_dead, &env), 2);
	assert_true(env.calls >= 5); /* every holder and ticket was asked about */
	assert_int_equal(d->n_holders, 1);
	assert_non_null(find_holder(d, &live, "app:a"));
	assert_int_equal(d->n_waiters, 1);
	assert_non_null(find_waiter(d, tlw));
	assert_null(find_waiter(d, tdw));
	/* Nothing more to reap: byte-identical. */
	char *before = fmt(d);
	assert_int_equal(lock_doc_reap(d, fake_owner_is_dead, &env), 0);
	assert_doc_text(d, before);
	free(before);
	/* The live waiter proceeds. */
	assert_int_equal(wait1(d, &live_waiter, "app:b", LOCK_EXCLUSIVE, &tlw, T0, NULL), 1);
	check_invariants(d);
}

static void test_reap_pid_reuse(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner old = mk_owner(1, 100), live = mk_owner(2, 200);
	assert_int_equal(try1(d, &old, "app:a", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(try1(d, &live, "app:b", LOCK_EXCLUSIVE, T0, NULL), 1);
	/* pid 100 exists again, but as a process started later. */
	const struct fake_proc procs[] = { { 100, old.start_time + 1 }, { 200, live.start_time } };
	struct reap_env env = { HOST, T0, procs, 2, 0 };
	assert_int_equal(lock_doc_reap(d, fake_owner_is_dead, &env), 1);
	assert_null(find_holder(d, &old, "app:a"));
	assert_non_null(find_holder(d, &live, "app:b"));
	/* The new process with the same pid and the same task id is another
	 * owner and may take the lock. */
	struct lock_owner reborn = old;
	reborn.start_time = old.start_time + 1;
	assert_int_equal(try1(d, &reborn, "app:a", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(lock_doc_reap(d, fake_owner_is_dead, &env), 0);
	check_invariants(d);
}

static void test_reap_other_host_lease(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner expired = mk_owner(1, 100), leased = mk_owner(2, 200), nolease = mk_owner(3, 300),
			  waiter = mk_owner(4, 400);
	strcpy(expired.host, OTHER_HOST);
	strcpy(leased.host, OTHER_HOST);
	strcpy(nolease.host, OTHER_HOST);
	strcpy(waiter.host, OTHER_HOST);
	expired.lease_expires_ms = T0 + 100;
	leased.lease_expires_ms = T0 + 10000;
	nolease.lease_expires_ms = 0;
	waiter.lease_expires_ms = T0 + 50;
	int64_t tw = 0;
	assert_int_equal(try1(d, &expired, "app:a", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(try1(d, &leased, "app:b", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(try1(d, &nolease, "app:c", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &waiter, "app:a", LOCK_EXCLUSIVE, &tw, T0, NULL), 0);
	assert_int_equal(find_holder(d, &expired, "app:a")->owner.lease_expires_ms, T0 + 100);

	/* None of those pids exists on this host: that must not matter for
	 * another host's owners. Before the lease runs out: nothing. */
	struct reap_env env = { HOST, T0 + 100, NULL, 0, 0 };
	assert_int_equal(lock_doc_reap(d, fake_owner_is_dead, &env), 0);
	assert_int_equal(d->n_waiters, 0); /* the waiter's lease (T0+50) ran out */
	env.now_ms = T0 + 101;
	assert_int_equal(lock_doc_reap(d, fake_owner_is_dead, &env), 1);
	assert_null(find_holder(d, &expired, "app:a"));
	assert_non_null(find_holder(d, &leased, "app:b"));
	assert_non_null(find_holder(d, &nolease, "app:c"));
	/* Far in the future: the live lease expires, the lease-less owner is
	 * never reaped from another host. */
	env.now_ms = T0 + 1000000;
	assert_int_equal(lock_doc_reap(d, fake_owner_is_dead, &env), 1);
	assert_int_equal(d->n_holders, 1);
	assert_non_null(find_holder(d, &nolease, "app:c"));
	check_invariants(d);
}

static void test_renew_leases(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200), c = mk_owner(3, 300);
	strcpy(c.host, OTHER_HOST);
	c.lease_expires_ms = 5;
	assert_int_equal(try1(d, &a, "app:a", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &b, "app:a", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &c, "app:c", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(lock_doc_renew_leases(d, HOST, T0 + 500), 2);
	assert_int_equal(find_holder(d, &a, "app:a")->owner.lease_expires_ms, T0 + 500);
	assert_int_equal(find_holder(d, &b, "app:a")->owner.lease_expires_ms, T0 + 500);
	assert_int_equal(find_holder(d, &c, "app:c")->owner.lease_expires_ms, 5);
	char *before = fmt(d);
	assert_int_equal(lock_doc_renew_leases(d, HOST, T0 + 500), 0); /* same value: no change */
	assert_int_equal(lock_doc_renew_leases(d, "no-such-host", T0 + 900), 0);
	assert_doc_text(d, before);
	free(before);
}

static void test_renew_leases_of_tickets(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), w = mk_owner(2, 200), x = mk_owner(3, 300);
	strcpy(x.host, OTHER_HOST);
	w.lease_expires_ms = T0 + 10;
	x.lease_expires_ms = T0 + 20;
	int64_t tw = 0, tx = 0;
	assert_int_equal(try1(d, &a, "app:a", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:a", LOCK_EXCLUSIVE, &tw, T0, NULL), 0);
	assert_int_equal(wait1(d, &x, "app:a", LOCK_EXCLUSIVE, &tx, T0, NULL), 0);
	/* A waiter's ticket carries its host's lease, renewed with the holders'. */
	assert_int_equal(lock_doc_renew_leases(d, HOST, T0 + 700), 2);
	assert_int_equal(find_holder(d, &a, "app:a")->owner.lease_expires_ms, T0 + 700);
	assert_int_equal(find_waiter(d, tw)->owner.lease_expires_ms, T0 + 700);
	assert_int_equal(find_waiter(d, tx)->owner.lease_expires_ms, T0 + 20); /* another host's */
	assert_int_equal(lock_doc_renew_leases(d, HOST, T0 + 700), 0);
	check_invariants(d);
}

/* A worker renews its own lease: only its own holdings (another owner of
 * the same host, e.g. a frozen worker, is not kept alive by it), and only
 * when due, so that a renewal that is not due writes nothing. */
/* A request made again without its ticket (its answer was lost: a
 * connection lost during COMMIT, a broker's round retried after a
 * failover) keeps the ticket it has: no second one stands in the queue. */
static void test_request_again_keeps_its_ticket(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 101), b = mk_owner(2, 102), c = mk_owner(3, 103);
	assert_int_equal(try1(d, &a, "x", LOCK_EXCLUSIVE, T0, NULL), 1);
	int64_t tb = 0, again = 0, tc = 0;
	assert_int_equal(wait1(d, &b, "x", LOCK_EXCLUSIVE, &tb, T0, NULL), 0);
	assert_true(tb > 0);
	assert_int_equal(wait1(d, &c, "x", LOCK_EXCLUSIVE, &tc, T0, NULL), 0);
	assert_int_equal(wait1(d, &b, "x", LOCK_EXCLUSIVE, &again, T0 + 1, NULL), 0);
	assert_int_equal(again, tb);
	assert_int_equal(d->n_waiters, 2);
	/* Other locks (or another mode) are another request. */
	int64_t other = 0;
	assert_int_equal(wait1(d, &b, "x", LOCK_SHARED, &other, T0 + 1, NULL), 0);
	assert_true(other != tb);
	assert_int_equal(d->n_waiters, 3);
	/* The granted request takes its ticket out of the queue, still first. */
	assert_int_equal(lock_doc_unlock(d, &a, NULL, 0), 1);
	int64_t ticket = 0;
	assert_int_equal(wait1(d, &b, "x", LOCK_EXCLUSIVE, &ticket, T0 + 2, NULL), 1);
	assert_int_equal(d->n_waiters, 2);
	for (size_t i = 0; i < d->n_waiters; i++)
		assert_true(d->waiters[i].ticket != tb);
}

static void test_renew_owner(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200), w = mk_owner(3, 300);
	a.lease_expires_ms = T0 + 100;
	b.lease_expires_ms = T0 + 100;
	w.lease_expires_ms = T0 + 100;
	int64_t tw = 0;
	assert_int_equal(try1(d, &a, "app:a", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(try1(d, &a, "app:b", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(try1(d, &b, "app:a", LOCK_SHARED, T0, NULL), 1);
	assert_int_equal(wait1(d, &w, "app:b", LOCK_EXCLUSIVE, &tw, T0, NULL), 0);
	size_t holders = 9, tickets = 9;
	int64_t first = 0;
	lock_doc_owner_summary(d, &a, &holders, &tickets, &first);
	assert_int_equal(holders, 2);
	assert_int_equal(tickets, 0);
	assert_int_equal(first, T0 + 100);
	/* Not due (ends after T0 + 50): nothing changes. */
	char *before = fmt(d);
	assert_int_equal(lock_doc_renew_owner(d, &a, T0 + 1000, T0 + 50, 0), 0);
	assert_doc_text(d, before);
	free(before);
	/* Due: a's two holdings, and nobody else's. */
	assert_int_equal(lock_doc_renew_owner(d, &a, T0 + 1000, T0 + 200, 0), 2);
	assert_int_equal(find_holder(d, &a, "app:a")->owner.lease_expires_ms, T0 + 1000);
	assert_int_equal(find_holder(d, &a, "app:b")->owner.lease_expires_ms, T0 + 1000);
	assert_int_equal(find_holder(d, &b, "app:a")->owner.lease_expires_ms, T0 + 100);
	assert_int_equal(find_waiter(d, tw)->owner.lease_expires_ms, T0 + 100);
	int64_t lease = 0;
	assert_true(lock_doc_holds(d, &a, "app:b", &lease));
	assert_int_equal(lease, T0 + 1000);
	assert_false(lock_doc_holds(d, &b, "app:b", NULL));
	assert_false(lock_doc_holds(d, &w, "app:b", NULL));
	/* A ticket's lease only when asked for tickets. */
	assert_int_equal(lock_doc_renew_owner(d, &w, T0 + 900, T0 + 200, T0 + 200), 1);
	assert_int_equal(find_waiter(d, tw)->owner.lease_expires_ms, T0 + 900);
	lock_doc_owner_summary(d, &w, &holders, &tickets, &first);
	assert_int_equal(holders, 0);
	assert_int_equal(tickets, 1);
	assert_int_equal(first, 0);
	check_invariants(d);
}

/* A waiter keeps its ticket's lease alive itself: a poll refreshes it once
 * a tenth of the lease has passed (and only then), as a holder's is. */
static void test_poll_refreshes_ticket_lease(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), w = mk_owner(2, 200);
	const int64_t lease = 30; /* shorter than TTL: the lease is what is due */
	assert_int_equal(try1(d, &a, "app:a", LOCK_EXCLUSIVE, T0, NULL), 1);
	int64_t tw = 0;
	w.lease_expires_ms = T0 + lease;
	assert_int_equal(wait1(d, &w, "app:a", LOCK_EXCLUSIVE, &tw, T0, NULL), 0);
	assert_int_equal(find_waiter(d, tw)->owner.lease_expires_ms, T0 + lease);
	/* 2 ms later: 28 of 30 left, not due. */
	w.lease_expires_ms = T0 + 2 + lease;
	char *before = fmt(d);
	assert_int_equal(wait1(d, &w, "app:a", LOCK_EXCLUSIVE, &tw, T0 + 2, NULL), 0);
	assert_doc_text(d, before);
	free(before);
	/* 4 ms later: 26 of 30 left, due. */
	w.lease_expires_ms = T0 + 4 + lease;
	assert_int_equal(wait1(d, &w, "app:a", LOCK_EXCLUSIVE, &tw, T0 + 4, NULL), 0);
	assert_int_equal(find_waiter(d, tw)->owner.lease_expires_ms, T0 + 4 + lease);
	check_invariants(d);
}

/* ---- parse and format --------------------------------------------------- */

static void test_format_empty_is_canonical(void **state)
{
	struct lock_doc *d = *state;
	char *t = fmt(d);
	assert_string_equal(t, "boxd-locks 2 1\n");
	free(t);
	/* As JSON: the text the schema migration inserts, with sorted keys. */
	assert_int_equal(lock_doc_format_json(d, &t), 0);
	assert_string_equal(t, "{\"holders\":[],\"nextTicket\":1,\"queue\":[]}");
	free(t);
	struct lock_doc p;
	char err[128];
	assert_int_equal(lock_doc_parse("{\"holders\":[],\"queue\":[],\"nextTicket\":1}", &p, err, sizeof(err)), 0);
	assert_int_equal(p.n_holders, 0);
	assert_int_equal(p.n_waiters, 0);
	assert_int_equal(p.next_ticket, 1);
	lock_doc_release(&p);
	lock_doc_release(NULL); /* accepted */
}

static void test_parse_format_roundtrip(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(11, 100), b = mk_owner(0, 200), c = mk_owner(13, 300);
	strcpy(c.host, OTHER_HOST);
	c.lease_expires_ms = T0 + 999;
	c.start_time = UINT64_C(1) << 40;
	int64_t tb = 0, tc = 0;
	struct lock_req areqs[] = { mk_req("app:wiki", LOCK_EXCLUSIVE), mk_req("service:sftp", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &a, areqs, 2, NULL, T0, TTL, NULL), 1);
	assert_int_equal(try1(d, &c, "service:sftp", LOCK_SHARED, T0 + 3, NULL), 1);
	struct lock_req breqs[] = { mk_req("volume/x", LOCK_SHARED), mk_req("app:wiki", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &b, breqs, 2, &tb, T0 + 4, TTL, NULL), 0);
	assert_int_equal(wait1(d, &c, "service:sftp", LOCK_EXCLUSIVE, &tc, T0 + 5, NULL), 0);
	assert_roundtrip(d);

	/* Field by field. */
	char *text = fmt(d);
	struct lock_doc p;
	char err[256];
	assert_int_equal(lock_doc_parse(text, &p, err, sizeof(err)), 0);
	assert_int_equal(p.n_holders, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(&p.holders[i].lock, &d->holders[i].lock, sizeof(struct lock_req));
		assert_true(lock_owner_same(&p.holders[i].owner, &d->holders[i].owner));
		assert_int_equal(p.holders[i].owner.acquired_at_ms, d->holders[i].owner.acquired_at_ms);
		assert_int_equal(p.holders[i].owner.lease_expires_ms, d->holders[i].owner.lease_expires_ms);
	}
	assert_int_equal(p.holders[2].owner.start_time, UINT64_C(1) << 40);
	assert_int_equal(p.holders[2].owner.lease_expires_ms, T0 + 999);
	assert_int_equal(p.holders[2].owner.acquired_at_ms, T0 + 3);
	assert_int_equal(p.n_waiters, 2);
	assert_int_equal(p.waiters[0].ticket, tb);
	assert_int_equal(p.waiters[0].expires_ms, T0 + 4 + TTL);
	assert_int_equal(p.waiters[0].n_locks, 2);
	assert_string_equal(p.waiters[0].locks[0].name, "volume/x");
	assert_int_equal(p.waiters[0].locks[1].mode, LOCK_SHARED);
	assert_int_equal(p.waiters[1].ticket, tc);
	assert_true(lock_owner_same(&p.waiters[1].owner, &c));
	assert_int_equal(p.next_ticket, 3);
	lock_doc_release(&p);
	free(text);

	/* Any key order and whitespace parses to the canonical text. */
	const char *loose = "{ \"nextTicket\": 4, \"queue\": [ { \"locks\": [ {\"mode\": \"shared\", \"name\": \"a\"} ],"
			    " \"expires\": 9, \"ticket\": 3, \"start\": 2, \"pid\": 1, \"host\": \"h\", \"task\": 0 } ],"
			    " \"holders\": [ {\"task\":5,\"start\":6,\"pid\":7,\"mode\":\"exclusive\",\"name\":\"a\","
			    "\"host\":\"h\"} ] }";
	assert_int_equal(lock_doc_parse(loose, &p, err, sizeof(err)), 0);
	char *canon = NULL;
	assert_int_equal(lock_doc_format_json(&p, &canon), 0);
	assert_string_equal(canon, "{\"holders\":[{\"at\":0,\"host\":\"h\",\"lease\":0,\"mode\":\"exclusive\",\"name\":"
				   "\"a\",\"pid\":7,\"start\":6,\"task\":5}],\"nextTicket\":4,\"queue\":[{\"at\":0,"
				   "\"expires\":9,\"host\":\"h\",\"lease\":0,\"locks\":[{\"mode\":\"shared\",\"name\":"
				   "\"a\"}],\"pid\":1,\"start\":2,\"task\":0,\"ticket\":3}]}");
	/* Stored (format 2): hosts once, then a line per holder and ticket. */
	char *stored = fmt(&p);
	assert_string_equal(stored, "boxd-locks 2 4\n@h\nH a x 5 0 7 6 0 0\nT 3 9 0 0 1 2 0 0 1 a s\n");
	lock_doc_release(&p);
	assert_int_equal(lock_doc_parse(canon, &p, err, sizeof(err)), 0);
	char *again = NULL;
	assert_int_equal(lock_doc_format_json(&p, &again), 0);
	assert_string_equal(again, canon);
	free(again);
	lock_doc_release(&p);
	/* The stored text parses to the same document. */
	assert_int_equal(lock_doc_parse(stored, &p, err, sizeof(err)), 0);
	assert_int_equal(lock_doc_format_json(&p, &again), 0);
	assert_string_equal(again, canon);
	free(again);
	free(stored);
	free(canon);
	lock_doc_release(&p);
}

/* Upgrade: a document boxd wrote as JSON (before format 2) is read, and the
 * next change writes it in format 2 with every field kept. */
static void test_json_document_upgrades(void **state)
{
	(void)state;
	const char *old = "{\"holders\":[{\"at\":1700000000000,\"host\":\"3f1c0b7e-aaaa-bbbb-cccc-0123456789ab\","
			  "\"lease\":1700000060000,\"mode\":\"shared\",\"name\":\"platform\",\"pid\":4242,"
			  "\"start\":987654,\"task\":17},{\"at\":1700000000001,\"host\":\"other host%\",\"lease\":0,"
			  "\"mode\":\"exclusive\",\"name\":\"app:wiki\",\"pid\":1,\"start\":2,\"task\":-3}],"
			  "\"nextTicket\":8,\"queue\":[{\"at\":0,\"expires\":1700000010000,\"host\":\"other host%\","
			  "\"lease\":5,\"locks\":[{\"mode\":\"exclusive\",\"name\":\"platform\"},{\"mode\":"
			  "\"shared\",\"name\":\"app:wiki\"}],\"pid\":9,\"start\":10,\"task\":11,\"ticket\":7}]}";
	struct lock_doc p, q;
	char err[256], *stored = NULL, *json = NULL;
	assert_int_equal(lock_doc_parse(old, &p, err, sizeof(err)), 0);
	assert_int_equal(lock_doc_format(&p, &stored), 0);
	assert_string_equal(stored, "boxd-locks 2 8\n"
				    "@3f1c0b7e-aaaa-bbbb-cccc-0123456789ab\n"
				    "@other%20host%25\n"
				    "H platform s 17 0 4242 987654 1700000000000 1700000060000\n"
				    "H app:wiki x -3 1 1 2 1700000000001 0\n"
				    "T 7 1700000010000 11 1 9 10 0 5 2 platform x app:wiki s\n");
	assert_int_equal(lock_doc_parse(stored, &q, err, sizeof(err)), 0);
	assert_int_equal(lock_doc_format_json(&q, &json), 0);
	assert_string_equal(json, old);
	assert_string_equal(q.waiters[0].owner.host, "other host%");
	free(stored);
	free(json);
	lock_doc_release(&p);
	lock_doc_release(&q);
}

/* Format 2 text that is not well formed is refused with the line. */
static void test_text_format_refuses_bad_lines(void **state)
{
	(void)state;
	static const struct { const char *text, *why; } cases[] = {
		{ "boxd-locks 2 1", "line 1: expected the end of the line" },
		{ "boxd-locks 2 0\n", "nextTicket 0 is below 1" },
		{ "boxd-locks 4 1\n", "line 1: expected \"boxd-locks 2 NEXT_TICKET\"" },
		/* format 3 is split over rows: only locks.c reads it, with its base */
		{ "boxd-locks 3 1 2 7 0 0\n", "a format 3 document is read with its base row" },
		{ "boxd-locks 2 1\nH a x 1 0 1 1 0 0\n", "line 2: host index 0 is not in the host table" },
		{ "boxd-locks 2 1\n@h\nH a q 1 0 1 1 0 0\n", "line 3: mode must be s or x" },
		{ "boxd-locks 2 1\n@h\nH a x 1 0 1 1 0\n", "line 3: expected a space" },
		{ "boxd-locks 2 1\n@h\nH a x 1 0 1 1 0 0 \n", "line 3: expected the end of the line" },
		{ "boxd-locks 2 1\n@h\nH a x 1 0 99999999999 1 0 0\n", "line 3: pid out of range" },
		{ "boxd-locks 2 1\n@h\nH a x 99999999999999999999 0 1 1 0 0\n", "line 3: task out of range" },
		{ "boxd-locks 2 1\n@h\nH a b x 1 0 1 1 0 0\n", "line 3: mode must be s or x" },
		{ "boxd-locks 2 1\n@h\nH bad! x 1 0 1 1 0 0\n", "line 3: missing or invalid lock name" },
		{ "boxd-locks 2 1\n@h%zz\n", "line 2: bad %-escape in a host" },
		{ "boxd-locks 2 1\n@h\nH a x 1 0 1 1 0 0\nH a x 2 0 1 1 0 0\n",
		  "holders[1]: a held exclusive by task 2 while task 1 holds it exclusive" },
		{ "boxd-locks 2 5\n@h\nT 1 9 1 0 1 1 0 0 0\n", "line 3: a ticket needs 1 or more locks" },
		{ "boxd-locks 2 5\n@h\nT 1 9 1 0 1 1 0 0 9 a s\n", "line 3: a ticket needs 1 or more locks" },
		{ "boxd-locks 2 5\n@h\nT 1 9 1 0 1 1 0 0 2 a s\n", "line 3: a ticket needs 1 or more locks" },
		{ "boxd-locks 2 5\n@h\nT 1 9 1 0 1 1 0 0 2 a s b x c s\n", "line 3: expected the end of the line" },
		{ "boxd-locks 2 5\n@h\nT 1 9 1 0 1 1 0 0 2 a s a x\n", "queue[0]: a named twice" },
		{ "boxd-locks 2 5\n@h\nT 1 9 1 0 1 1 0 0 1 a s\nH a x 1 0 1 1 0 0\n",
		  "line 4: expected a host (@), holder (H) or ticket (T) line, in that order" },
		{ "boxd-locks 2 5\n@h\nT 7 9 1 0 1 1 0 0 1 a s\n", "queue[0]: ticket 7 is not below nextTicket 5" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lock_doc p;
		char err[256] = "";
		int r = lock_doc_parse(cases[i].text, &p, err, sizeof(err));
		if (r != -EBADMSG || strncmp(err, cases[i].why, strlen(cases[i].why)) != 0)
			fail_msg("case %zu: %d \"%s\", expected \"%s\"", i, r, err, cases[i].why);
	}
}

/* The invariant check is linear: a document of 20,000 holders (shared
 * holders of one name, distinct names) is verified, and a conflict at its
 * end is found with the message the pairwise rule gives. */
static void test_verify_large_document(void **state)
{
	struct lock_doc *d = *state;
	size_t n = 20000;
	d->holders = calloc(n + 1, sizeof(*d->holders));
	assert_non_null(d->holders);
	for (size_t i = 0; i < n; i++) {
		struct lock_holder *h = &d->holders[d->n_holders++];
		h->owner = mk_owner((int64_t)i + 1, (int32_t)i + 1);
		if (i % 2)
			snprintf(h->lock.name, sizeof(h->lock.name), "app:%zu", i);
		else
			snprintf(h->lock.name, sizeof(h->lock.name), "platform");
		h->lock.mode = i % 2 ? LOCK_EXCLUSIVE : LOCK_SHARED;
	}
	char why[256];
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), 0);
	/* The same owner twice on a shared name. */
	d->holders[d->n_holders] = d->holders[0];
	d->n_holders++;
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "holders[20000]: platform held twice by task 1 (pid 1)");
	/* An exclusive holder of a name held shared. */
	d->holders[n].owner = mk_owner(99999, 99999);
	d->holders[n].lock.mode = LOCK_EXCLUSIVE;
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "holders[20000]: platform held exclusive by task 99999 while task 1 holds it shared");
	/* An earlier invalid name is reported first; a later one after. */
	strcpy(d->holders[5].lock.name, "bad!");
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "holders[5]: invalid lock name or mode");
	strcpy(d->holders[5].lock.name, "app:5");
	d->holders[n].lock.mode = LOCK_SHARED;
	d->holders[n].owner = mk_owner(99999, 99999);
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), 0);
	char *text = fmt(d);
	struct lock_doc p;
	assert_int_equal(lock_doc_parse(text, &p, why, sizeof(why)), 0);
	assert_int_equal(p.n_holders, n + 1);
	lock_doc_release(&p);
	free(text);
}

/* ---- corrupted documents ------------------------------------------------ */

#define OWN "\"task\":7,\"host\":\"h\",\"pid\":10,\"start\":99,\"at\":5,\"lease\":0"
#define HOLDER "{\"name\":\"app:x\",\"mode\":\"shared\"," OWN "}"
#define WAITER(t) "{\"ticket\":" #t ",\"expires\":100,\"locks\":[{\"name\":\"app:y\",\"mode\":\"exclusive\"}]," OWN "}"
#define DOC(h, q, n) "{\"holders\":[" h "],\"queue\":[" q "],\"nextTicket\":" n "}"
/* A holder of `name` in `mode` by task t, pid p (distinct owners per task). */
#define HOLD(name, mode, t, p)                                                                                   \
	"{\"name\":\"" name "\",\"mode\":\"" mode "\",\"task\":" #t ",\"host\":\"h\",\"pid\":" #p ",\"start\":99}"

/* Parse must fail with -EBADMSG, a message containing `needle`, and leave
 * the out-parameter exactly as it was. */
static void expect_bad_at(const char *text, const char *needle, const char *file, int line)
{
	struct lock_doc out, copy;
	memset(&out, 0x5a, sizeof(out));
	memcpy(&copy, &out, sizeof(out));
	char err[256];
	memset(err, 0, sizeof(err));
	int r = lock_doc_parse(text, &out, err, sizeof(err));
	if (r != -EBADMSG)
		fail_msg("%s:%d: parse returned %d, want -EBADMSG, for: %.200s", file, line, r, text);
	if (err[0] == '\0')
		fail_msg("%s:%d: no message for: %.200s", file, line, text);
	if (needle && !strstr(err, needle))
		fail_msg("%s:%d: message \"%s\" lacks \"%s\"", file, line, err, needle);
	if (memcmp(&out, &copy, sizeof(out)) != 0)
		fail_msg("%s:%d: out-parameter was written on failure", file, line);
}
#define expect_bad(text, needle) expect_bad_at(text, needle, __FILE__, __LINE__)

static void expect_good(const char *text)
{
	struct lock_doc p;
	char err[256] = "";
	int r = lock_doc_parse(text, &p, err, sizeof(err));
	if (r != 0)
		fail_msg("valid document refused (%s): %s", err, text);
	lock_doc_release(&p);
}

static void test_parse_base_documents_are_valid(void **state)
{
	(void)state;
	/* Each corrupt case below differs from one of these in one defect. */
	expect_good(DOC(HOLDER, WAITER(1), "2"));
	expect_good(DOC(HOLDER "," HOLD("app:x", "shared", 8, 11), WAITER(1) "," WAITER(5), "6"));
	expect_good(DOC("", "", "1"));
	expect_good(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":10,\"start\":99}",
			"", "1")); /* at and lease are optional */
}

static void test_parse_rejects_non_json(void **state)
{
	(void)state;
	expect_bad("", "invalid JSON");
	expect_bad("{broken", "invalid JSON");
	expect_bad("not json", "invalid JSON");
	expect_bad(DOC(HOLDER, "", "1") "x", "invalid JSON");
	expect_bad("{\"holders\":[],\"queue\":[],\"nextTicket\":1", "line 1");
	expect_bad(NULL, "invalid JSON");
	/* Duplicate keys are refused, not silently resolved. */
	expect_bad("{\"holders\":[],\"holders\":[" HOLDER "],\"queue\":[],\"nextTicket\":1}", "invalid JSON");
	/* JSON that is not an object: scalars are refused by the decoder
	 * itself, an array by the shape check. */
	expect_bad("null", "invalid JSON");
	expect_bad("42", "invalid JSON");
	expect_bad("\"holders\"", "invalid JSON");
	expect_bad("[]", "expected an object");
	expect_bad("[" DOC("", "", "1") "]", "expected an object");
}

static void test_parse_rejects_wrong_types(void **state)
{
	(void)state;
	expect_bad("{\"holders\":{},\"queue\":[],\"nextTicket\":1}", "expected an object");
	expect_bad("{\"holders\":[],\"queue\":\"x\",\"nextTicket\":1}", "expected an object");
	expect_bad("{\"holders\":[],\"queue\":[],\"nextTicket\":\"1\"}", "nextTicket");
	expect_bad("{\"holders\":[],\"queue\":[],\"nextTicket\":1.0}", "nextTicket");
	expect_bad("{\"holders\":[],\"queue\":[],\"nextTicket\":0}", "nextTicket");
	expect_bad("{\"holders\":[],\"queue\":[],\"nextTicket\":-3}", "nextTicket");
	expect_bad(DOC("5", "", "1"), "holders[0]: not an object");
	expect_bad(DOC(HOLDER ",[]", "", "1"), "holders[1]: not an object");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":\"7\",\"host\":\"h\",\"pid\":10,\"start\":99}",
		       "", "1"),
		   "holders[0]: owner needs");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":5,\"pid\":10,\"start\":99}", "", "1"),
		   "holders[0]: owner needs");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":1.5,\"start\":99}",
		       "", "1"),
		   "owner needs");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":10,\"start\":true}",
		       "", "1"),
		   "owner needs");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":10,\"start\":9,"
		       "\"at\":\"now\"}",
		       "", "1"),
		   "at/lease");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":10,\"start\":9,"
		       "\"lease\":null}",
		       "", "1"),
		   "at/lease");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":4294967306,"
		       "\"start\":9}",
		       "", "1"),
		   "pid out of range");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":-1,\"start\":9}", "",
		       "1"),
		   "pid out of range");
	expect_bad(DOC("{\"name\":7,\"mode\":\"shared\"," OWN "}", "", "1"), "invalid lock name");
	expect_bad(DOC("", "7", "2"), "queue[0]");
	expect_bad(DOC("", "{\"ticket\":\"1\",\"expires\":100,\"locks\":[{\"name\":\"a\",\"mode\":\"shared\"}]," OWN "}",
		       "2"),
		   "queue[0]: needs integer ticket");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":1e3,\"locks\":[{\"name\":\"a\",\"mode\":\"shared\"}]," OWN "}",
		       "2"),
		   "queue[0]: needs");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":{\"name\":\"a\",\"mode\":\"shared\"}," OWN "}", "2"),
		   "queue[0]: needs");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":[\"a\"]," OWN "}", "2"), "queue[0]");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":[{\"name\":\"a\",\"mode\":\"shared\"}],"
			   "\"task\":7,\"host\":\"h\",\"pid\":\"10\",\"start\":99}",
		       "2"),
		   "queue[0]: owner needs");
}

static void test_parse_rejects_missing_fields(void **state)
{
	(void)state;
	expect_bad("{\"queue\":[],\"nextTicket\":1}", "\"holders\"");
	expect_bad("{\"holders\":[],\"nextTicket\":1}", "\"queue\"");
	expect_bad("{\"holders\":[],\"queue\":[]}", "nextTicket");
	expect_bad("{}", "expected an object");
	expect_bad(DOC("{\"mode\":\"shared\"," OWN "}", "", "1"), "holders[0]: missing or invalid lock name");
	expect_bad(DOC("{\"name\":\"app:x\"," OWN "}", "", "1"), "holders[0]: mode must be");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"host\":\"h\",\"pid\":10,\"start\":99}", "", "1"),
		   "holders[0]: owner needs");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"pid\":10,\"start\":99}", "", "1"),
		   "owner needs");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"start\":99}", "", "1"),
		   "owner needs");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,\"host\":\"h\",\"pid\":10}", "", "1"),
		   "owner needs");
	expect_bad(DOC(HOLDER "," HOLDER ",{}", "", "1"), "holders[2]");
	expect_bad(DOC("", "{\"expires\":100,\"locks\":[{\"name\":\"a\",\"mode\":\"shared\"}]," OWN "}", "2"),
		   "queue[0]: needs integer ticket");
	expect_bad(DOC("", "{\"ticket\":1,\"locks\":[{\"name\":\"a\",\"mode\":\"shared\"}]," OWN "}", "2"),
		   "queue[0]: needs");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100," OWN "}", "2"), "queue[0]: needs");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":[]," OWN "}", "2"), "non-empty locks");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":[{\"name\":\"a\",\"mode\":\"shared\"}]}", "2"),
		   "queue[0]: owner needs");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":[{\"name\":\"a\"}]," OWN "}", "2"),
		   "queue[0]: mode must be");
	expect_bad(DOC("", WAITER(1) ",{\"ticket\":2,\"expires\":100,\"locks\":[{\"mode\":\"shared\"}]," OWN "}", "3"),
		   "queue[1]: missing or invalid lock name");
}

static void test_parse_rejects_bad_tickets(void **state)
{
	(void)state;
	expect_bad(DOC("", WAITER(2) "," WAITER(1), "5"), "queue[1]: tickets must ascend");
	expect_bad(DOC("", WAITER(1) "," WAITER(1), "5"), "queue[1]: tickets must ascend");
	expect_bad(DOC("", WAITER(1) "," WAITER(3) "," WAITER(2), "5"), "queue[2]: tickets must ascend");
	expect_bad(DOC("", WAITER(0), "5"), "queue[0]: tickets must ascend");
	expect_bad(DOC("", WAITER(-4), "5"), "queue[0]");
	expect_bad(DOC("", WAITER(5), "5"), "below nextTicket");
	expect_bad(DOC("", WAITER(1) "," WAITER(9), "5"), "queue[1]");
	expect_good(DOC("", WAITER(1) "," WAITER(4), "5"));
}

static void test_parse_rejects_huge_host(void **state)
{
	(void)state;
	static const char fmt_holder[] = "{\"holders\":[{\"name\":\"app:x\",\"mode\":\"shared\",\"task\":7,"
					 "\"host\":\"%s\",\"pid\":10,\"start\":99}],\"queue\":[],\"nextTicket\":1}";
	static const char fmt_waiter[] = "{\"holders\":[],\"queue\":[{\"ticket\":1,\"expires\":5,\"locks\":[{\"name\":"
					 "\"a\",\"mode\":\"shared\"}],\"task\":7,\"host\":\"%s\",\"pid\":10,"
					 "\"start\":99}],\"nextTicket\":2}";
	const size_t lens[] = { LOCK_HOST_MAX - 1, LOCK_HOST_MAX, LOCK_HOST_MAX + 1, 100000 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *host = malloc(lens[i] + 1);
		assert_non_null(host);
		memset(host, 'h', lens[i]);
		host[lens[i]] = '\0';
		char *a = NULL, *b = NULL;
		assert_true(asprintf(&a, fmt_holder, host) > 0);
		assert_true(asprintf(&b, fmt_waiter, host) > 0);
		if (lens[i] < LOCK_HOST_MAX) {
			expect_good(a);
			expect_good(b);
		} else {
			expect_bad(a, "holders[0]: host id too long");
			expect_bad(b, "queue[0]: host id too long");
		}
		free(a);
		free(b);
		free(host);
	}
}

static void test_parse_rejects_bad_mode_and_name(void **state)
{
	(void)state;
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"write\"," OWN "}", "", "1"), "holders[0]: mode must be");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"Shared\"," OWN "}", "", "1"), "mode must be");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":\"\"," OWN "}", "", "1"), "mode must be");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":1," OWN "}", "", "1"), "mode must be");
	expect_bad(DOC("{\"name\":\"app:x\",\"mode\":null," OWN "}", "", "1"), "mode must be");
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":[{\"name\":\"a\",\"mode\":\"excl\"}]," OWN "}",
		       "2"),
		   "queue[0]: mode must be");
	expect_bad(DOC("{\"name\":\"app x\",\"mode\":\"shared\"," OWN "}", "", "1"), "holders[0]: missing or invalid");
	expect_bad(DOC("{\"name\":\"\",\"mode\":\"shared\"," OWN "}", "", "1"), "invalid lock name");
	char *long_name = NULL;
	char name[LOCK_NAME_MAX + 1];
	memset(name, 'n', LOCK_NAME_MAX);
	name[LOCK_NAME_MAX] = '\0';
	assert_true(asprintf(&long_name, DOC("{\"name\":\"%s\",\"mode\":\"shared\"," OWN "}", "", "1"), name) > 0);
	expect_bad(long_name, "invalid lock name");
	free(long_name);
	expect_bad(DOC("", "{\"ticket\":1,\"expires\":100,\"locks\":[{\"name\":\"a b\",\"mode\":\"shared\"}]," OWN "}",
		       "2"),
		   "queue[0]: missing or invalid lock name");
}

/* ---- invariants a parsed document must keep ----------------------------- */

static void test_parse_rejects_two_exclusive_holders(void **state)
{
	(void)state;
	expect_bad(DOC(HOLD("app:x", "exclusive", 1, 10) "," HOLD("app:x", "exclusive", 2, 20), "", "1"),
		   "holders[1]: app:x held exclusive by task 2 while task 1 holds it exclusive");
	/* Two processes of one task are two owners too. */
	expect_bad(DOC(HOLD("app:x", "exclusive", 1, 10) "," HOLD("app:x", "exclusive", 1, 11), "", "1"),
		   "holders[1]: app:x held exclusive");
	/* Different names, or two shared holders: fine. */
	expect_good(DOC(HOLD("app:x", "exclusive", 1, 10) "," HOLD("app:y", "exclusive", 2, 20), "", "1"));
	expect_good(DOC(HOLD("app:x", "shared", 1, 10) "," HOLD("app:x", "shared", 2, 20), "", "1"));
}

static void test_parse_rejects_exclusive_shared_mix(void **state)
{
	(void)state;
	expect_bad(DOC(HOLD("app:x", "shared", 1, 10) "," HOLD("app:x", "shared", 2, 20) "," HOLD(
			       "app:x", "exclusive", 3, 30),
		       "", "1"),
		   "holders[2]: app:x held exclusive by task 3 while task 1 holds it shared");
	expect_bad(DOC(HOLD("app:x", "exclusive", 1, 10) "," HOLD("app:x", "shared", 2, 20), "", "1"),
		   "holders[1]: app:x held shared by task 2 while task 1 holds it exclusive");
}

static void test_parse_rejects_a_name_held_twice_by_one_owner(void **state)
{
	(void)state;
	/* The document keeps one entry per owner and name (an upgrade changes
	 * the mode in place). */
	expect_bad(DOC(HOLD("app:x", "shared", 1, 10) "," HOLD("app:x", "shared", 1, 10), "", "1"),
		   "holders[1]: app:x held twice by task 1");
	expect_bad(DOC(HOLD("app:x", "shared", 1, 10) "," HOLD("app:x", "exclusive", 1, 10), "", "1"),
		   "holders[1]: app:x held twice by task 1");
}

static void test_parse_rejects_duplicate_tickets(void **state)
{
	(void)state;
	expect_bad(DOC("", WAITER(3) "," WAITER(3), "5"), "queue[1]: tickets must ascend (ticket 3 twice)");
	expect_bad(DOC("", WAITER(1) "," WAITER(2) "," WAITER(2), "5"), "queue[2]: tickets must ascend");
}

static void test_parse_rejects_ticket_at_or_past_next(void **state)
{
	(void)state;
	expect_bad(DOC("", WAITER(5), "5"), "queue[0]: ticket 5 is not below nextTicket 5");
	expect_bad(DOC("", WAITER(1) "," WAITER(7), "5"), "queue[1]: ticket 7 is not below nextTicket 5");
	expect_good(DOC("", WAITER(4), "5"));
}

static void test_parse_rejects_a_name_twice_in_one_request(void **state)
{
	(void)state;
	/* An acquire refuses a request naming a lock twice (-EINVAL), so no
	 * ticket can carry one. */
	expect_bad(DOC("",
		       "{\"ticket\":1,\"expires\":100,\"locks\":[{\"name\":\"app:y\",\"mode\":\"shared\"},"
		       "{\"name\":\"app:y\",\"mode\":\"exclusive\"}]," OWN "}",
		       "2"),
		   "queue[0]: app:y named twice");
}

/* lock_doc_verify() on documents built in memory: what parse cannot
 * produce (a mode out of range, a ticket without locks) is caught too. */
static void test_verify_in_memory(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200);
	int64_t tb = 0;
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	assert_int_equal(wait1(d, &b, "app:x", LOCK_SHARED, &tb, T0, NULL), 0);
	char why[256];
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), 0);
	assert_int_equal(lock_doc_verify(d, NULL, 0), 0);

	d->holders[0].lock.mode = (enum lock_mode)7;
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "holders[0]: invalid lock name or mode");
	assert_int_equal(lock_doc_verify(d, NULL, 0), -EBADMSG);
	d->holders[0].lock.mode = LOCK_EXCLUSIVE;

	size_t n = d->waiters[0].n_locks;
	d->waiters[0].n_locks = 0;
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "queue[0]: a ticket without locks");
	d->waiters[0].n_locks = n;

	int64_t next = d->next_ticket;
	d->next_ticket = 0;
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "nextTicket 0 is below 1");
	d->next_ticket = 1; /* the ticket 1 is now at nextTicket */
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "queue[0]: ticket 1 is not below nextTicket 1");
	d->next_ticket = next;
	assert_int_equal(lock_doc_verify(d, why, sizeof(why)), 0);
}

/* In debug builds every change verifies its result: a function of
 * lock_doc.c handed a broken document (or breaking one) aborts instead of
 * returning something that would be written back. */
static void test_debug_check_after_change(void **state)
{
	(void)state;
#ifdef NDEBUG
	skip();
#else
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Two exclusive holders made by hand, then any change. */
		struct lock_doc d;
		lock_doc_init(&d);
		struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200), c = mk_owner(3, 300);
		struct lock_req x = mk_req("app:x", LOCK_EXCLUSIVE), y = mk_req("app:y", LOCK_EXCLUSIVE);
		if (lock_doc_acquire(&d, &a, &x, 1, NULL, T0, TTL, NULL) != 1 ||
		    lock_doc_acquire(&d, &b, &y, 1, NULL, T0, TTL, NULL) != 1)
			_exit(2);
		strcpy(d.holders[1].lock.name, "app:x");
		(void)!freopen("/dev/null", "w", stderr);
		lock_doc_unlock(&d, &c, NULL, 0); /* removes nothing, still verifies */
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
#endif
}

/* ---- lease rules, next in line, a task in line ---------------------------- */

static void test_lease_expired_rule(void **state)
{
	(void)state;
	struct lock_owner o = mk_owner(1, 100);
	o.lease_expires_ms = 0; /* no lease: never by this rule */
	assert_false(lock_owner_lease_expired(&o, T0));
	assert_false(lock_owner_lease_expired(&o, INT64_MAX));
	o.lease_expires_ms = T0;
	assert_false(lock_owner_lease_expired(&o, T0 - 1));
	assert_false(lock_owner_lease_expired(&o, T0)); /* ends at T0: still held at T0 */
	assert_true(lock_owner_lease_expired(&o, T0 + 1));
}

static void test_owner_leased(void **state)
{
	(void)state;
	struct lock_owner o = mk_owner(1, 100);
	o.lease_expires_ms = 77;
	o.acquired_at_ms = 5;
	struct lock_owner l = lock_owner_leased(&o, T0, 3000);
	assert_true(lock_owner_same(&l, &o));
	assert_int_equal(l.lease_expires_ms, T0 + 3000);
	assert_int_equal(l.acquired_at_ms, 5);
	assert_int_equal(o.lease_expires_ms, 77); /* the input is not changed */
	assert_int_equal(lock_owner_leased(&o, T0, 0).lease_expires_ms, 0);
	assert_int_equal(lock_owner_leased(&o, T0, -5).lease_expires_ms, 0);
}

static void test_next_in_line(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(1, 100), b = mk_owner(2, 200), c = mk_owner(3, 300), e = mk_owner(4, 400);
	struct lock_req x = mk_req("app:x", LOCK_EXCLUSIVE), xs = mk_req("app:x", LOCK_SHARED),
			y = mk_req("app:y", LOCK_EXCLUSIVE);
	int64_t tb = 0, tc = 0;
	assert_int_equal(try1(d, &a, "app:x", LOCK_EXCLUSIVE, T0, NULL), 1);
	/* Only a holder in front: next in line, with or without a ticket. */
	assert_true(lock_doc_next_in_line(d, &b, &x, 1, 0));
	assert_int_equal(wait1(d, &b, "app:x", LOCK_SHARED, &tb, T0, NULL), 0);
	assert_true(lock_doc_next_in_line(d, &b, &xs, 1, tb));
	/* c behind b: b's shared ticket does not conflict with shared... */
	assert_true(lock_doc_next_in_line(d, &c, &xs, 1, 0));
	/* ...but with exclusive it does. */
	assert_false(lock_doc_next_in_line(d, &c, &x, 1, 0));
	assert_int_equal(wait1(d, &c, "app:x", LOCK_EXCLUSIVE, &tc, T0, NULL), 0);
	assert_false(lock_doc_next_in_line(d, &c, &x, 1, tc));
	/* A later ticket never stands in front: b stays next in line even
	 * for exclusive. */
	assert_true(lock_doc_next_in_line(d, &b, &x, 1, tb));
	/* Another name: the queue for app:x does not matter. */
	assert_true(lock_doc_next_in_line(d, &e, &y, 1, 0));
	struct lock_req both[] = { y, xs };
	assert_false(lock_doc_next_in_line(d, &e, both, 2, 0)); /* c's exclusive ticket */
	/* An owner's own ticket does not stand in front of it (c's exclusive
	 * one is skipped; b's shared one is compatible). */
	assert_true(lock_doc_next_in_line(d, &c, &xs, 1, 0));
	check_invariants(d);
}

static void test_task_in_line(void **state)
{
	struct lock_doc *d = *state;
	struct lock_owner a = mk_owner(7, 100), b2 = mk_owner(8, 201);
	assert_false(lock_doc_task_in_line(d, 7, "platform"));
	assert_int_equal(try1(d, &a, "platform", LOCK_SHARED, T0, NULL), 1);
	assert_true(lock_doc_task_in_line(d, 7, "platform"));
	assert_false(lock_doc_task_in_line(d, 7, "app:x"));
	assert_false(lock_doc_task_in_line(d, 8, "platform"));
	/* Task 8 queues (from another of its processes) for platform and app:x. */
	int64_t t = 0;
	struct lock_req reqs[] = { mk_req("app:x", LOCK_SHARED), mk_req("platform", LOCK_EXCLUSIVE) };
	assert_int_equal(lock_doc_acquire(d, &b2, reqs, 2, &t, T0, TTL, NULL), 0);
	assert_true(lock_doc_task_in_line(d, 8, "platform"));
	assert_true(lock_doc_task_in_line(d, 8, "app:x"));
	assert_false(lock_doc_task_in_line(d, 8, "app:y"));
	/* Once the ticket is gone, it is not in line any more. */
	assert_int_equal(lock_doc_cancel_ticket(d, t), 1);
	assert_false(lock_doc_task_in_line(d, 8, "platform"));
}

/* ---- salvage (the rule of `boxd locks repair`) ---------------------------- */

static void test_salvage(void **state)
{
	(void)state;
	struct lock_doc p;
	int kept = -1, dropped = -1;

	/* Not JSON: nothing to keep, nextTicket as asked. */
	assert_int_equal(lock_doc_salvage("{broken", 9, &p, &kept, &dropped), 0);
	assert_int_equal(p.n_holders + p.n_waiters, 0);
	assert_int_equal(p.next_ticket, 9);
	assert_int_equal(kept, 0);
	assert_int_equal(dropped, 0);
	lock_doc_release(&p);
	assert_int_equal(lock_doc_salvage(NULL, 0, &p, NULL, NULL), 0);
	assert_int_equal(p.next_ticket, 1);
	lock_doc_release(&p);

	/* Holders: fine, bad mode, not an object, conflicting with the first,
	 * fine again, held twice by one owner. Tickets: one past nextTicket. */
	const char *text = DOC(HOLD("app:x", "exclusive", 1, 10) ","
			       "{\"name\":\"app:y\",\"mode\":\"write\",\"task\":2,\"host\":\"h\",\"pid\":20,\"start\":9},"
			       "5," HOLD("app:x", "shared", 3, 30) "," HOLD("app:z", "shared", 3, 30) "," HOLD(
				       "app:z", "exclusive", 3, 30),
			       WAITER(41), "40");
	assert_int_equal(lock_doc_salvage(text, 7, &p, &kept, &dropped), 0);
	check_invariants(&p);
	assert_int_equal(kept, 2);
	assert_int_equal(dropped, 5); /* four holders, one ticket */
	assert_int_equal(p.n_holders, 2);
	assert_string_equal(p.holders[0].lock.name, "app:x");
	assert_int_equal(p.holders[0].owner.task_id, 1);
	assert_int_equal(p.holders[0].lock.mode, LOCK_EXCLUSIVE);
	assert_string_equal(p.holders[1].lock.name, "app:z");
	assert_int_equal(p.holders[1].lock.mode, LOCK_SHARED);
	assert_int_equal(p.n_waiters, 0);
	assert_int_equal(p.next_ticket, 42); /* past ticket 41, which was past nextTicket 40 */
	lock_doc_release(&p);

	/* What it gives parses. */
	assert_int_equal(lock_doc_salvage(text, 100, &p, NULL, NULL), 0);
	assert_int_equal(p.next_ticket, 100);
	assert_roundtrip(&p);
	lock_doc_release(&p);
}

/* ---- guarded arithmetic on doctored documents -------------------------- */

static void test_doctored_numbers(void **state)
{
	(void)state;
	struct lock_doc p;
	char err[256];
	struct lock_owner w = mk_owner(2, 200), x = mk_owner(3, 300);
	/* nextTicket at the top: a new ticket cannot be issued. */
	char *text = NULL;
	assert_true(asprintf(&text, DOC("{\"name\":\"app:y\",\"mode\":\"exclusive\"," OWN "}", "", "%" PRId64),
			     (int64_t)INT64_MAX) > 0);
	assert_int_equal(lock_doc_parse(text, &p, err, sizeof(err)), 0);
	free(text);
	char *before = fmt(&p);
	int64_t t = 0;
	assert_int_equal(wait1(&p, &w, "app:y", LOCK_EXCLUSIVE, &t, T0, NULL), -EOVERFLOW);
	assert_int_equal(t, 0);
	assert_doc_text(&p, before);
	free(before);
	lock_doc_release(&p);

	/* A ticket whose expiry is INT64_MIN: refreshing must not overflow. */
	assert_true(asprintf(&text, DOC(HOLDER ",{\"name\":\"app:y\",\"mode\":\"exclusive\"," OWN "}",
					"{\"ticket\":1,\"expires\":%" PRId64 ",\"locks\":[{\"name\":\"app:y\","
					"\"mode\":\"exclusive\"}],\"task\":3,\"host\":\"" HOST "\",\"pid\":300,"
					"\"start\":5300}",
					"2"),
			     (int64_t)INT64_MIN) > 0);
	assert_int_equal(lock_doc_parse(text, &p, err, sizeof(err)), 0);
	free(text);
	t = 1;
	assert_int_equal(wait1(&p, &x, "app:y", LOCK_EXCLUSIVE, &t, T0, NULL), 0);
	assert_int_equal(t, 1);
	assert_int_equal(p.waiters[0].expires_ms, T0 + TTL);
	lock_doc_release(&p);
}

/* ---- allocation failures in lock_doc_format ----------------------------- */

/* Jansson's allocator, failing the Nth allocation (a fault that cannot be
 * produced for real: the fake is named so). fa_fail_at == 0: never fail. */
static size_t fa_count, fa_fail_at;

static void *fa_malloc(size_t size)
{
	if (fa_fail_at && ++fa_count == fa_fail_at)
		return NULL;
	return malloc(size);
}

/* The document of test_parse_format_roundtrip: holders of three owners, a
 * waiter with two locks, one on another host with a lease. */
static void fa_build(struct lock_doc *d)
{
	struct lock_owner a = mk_owner(11, 100), b = mk_owner(0, 200), c = mk_owner(13, 300);
	strcpy(c.host, OTHER_HOST);
	c.lease_expires_ms = T0 + 999;
	int64_t tb = 0, tc = 0;
	struct lock_req areqs[] = { mk_req("app:wiki", LOCK_EXCLUSIVE), mk_req("service:sftp", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &a, areqs, 2, NULL, T0, TTL, NULL), 1);
	assert_int_equal(try1(d, &c, "service:sftp", LOCK_SHARED, T0 + 3, NULL), 1);
	struct lock_req breqs[] = { mk_req("volume/x", LOCK_SHARED), mk_req("app:wiki", LOCK_SHARED) };
	assert_int_equal(lock_doc_acquire(d, &b, breqs, 2, &tb, T0 + 4, TTL, NULL), 0);
	assert_int_equal(wait1(d, &c, "service:sftp", LOCK_EXCLUSIVE, &tc, T0 + 5, NULL), 0);
}

/* Fail the 1st, 2nd, ... allocation of one lock_doc_format() call until a
 * call sees no failure. At each: -ENOMEM with *ret untouched, or success
 * with exactly the expected text. A wrong document written to the database
 * could lose a holder (a lock granted twice). */
static void test_format_allocation_failures(void **state)
{
	struct lock_doc *d = *state;
	fa_build(d);
	char *expected = NULL;
	assert_int_equal(lock_doc_format_json(d, &expected), 0);
	size_t points = 0, wrong = 0, enomem = 0;
	for (size_t n = 1;; n++) {
		fa_count = 0;
		fa_fail_at = n;
		json_set_alloc_funcs(fa_malloc, free);
		char sentinel = 0, *text = &sentinel;
		int r = lock_doc_format_json(d, &text);
		bool injected = fa_count >= n;
		json_set_alloc_funcs(malloc, free);
		fa_fail_at = 0;
		if (!injected) { /* every allocation succeeded: the end */
			assert_int_equal(r, 0);
			assert_string_equal(text, expected);
			free(text);
			break;
		}
		points++;
		if (r == -ENOMEM) {
			enomem++;
			assert_ptr_equal(text, &sentinel);
		} else if (r == 0) {
			if (strcmp(text, expected) != 0) {
				wrong++;
				print_message("allocation %zu failed: wrong document %s\n", n, text);
			}
			free(text);
		} else {
			fail_msg("allocation %zu failed: lock_doc_format returned %d", n, r);
		}
	}
	print_message("lock_doc_format: %zu wrong documents out of %zu injection points (%zu -ENOMEM)\n", wrong,
		      points, enomem);
	assert_true(points > 20);
	assert_int_equal(wrong, 0);
	free(expected);
}

/* ---- randomized model check --------------------------------------------- */

#define M_OWNERS 6
#define M_NAMES 4
#define M_STEPS 5000

static const char *const m_names[M_NAMES] = { "app:a", "app:b", "service:sftp", "vol/1" };

struct m_owner {
	struct lock_owner id;
	bool waiting;
	int64_t ticket;
	struct lock_req want[M_NAMES];
	size_t n_want;
};

static uint64_t m_rng;

static uint32_t m_rand(uint32_t n)
{
	/* xorshift64*: deterministic across platforms, unlike rand(). */
	m_rng ^= m_rng >> 12;
	m_rng ^= m_rng << 25;
	m_rng ^= m_rng >> 27;
	return (uint32_t)((m_rng * UINT64_C(2685821657736338717)) >> 33) % n;
}

static size_t m_random_request(struct lock_req *out)
{
	size_t n = 1 + m_rand(3), k = 0;
	uint32_t start = m_rand(M_NAMES);
	for (size_t i = 0; i < n; i++) {
		/* distinct names: consecutive ones from a random start */
		out[k++] = mk_req(m_names[(start + i) % M_NAMES], m_rand(3) == 0 ? LOCK_EXCLUSIVE : LOCK_SHARED);
	}
	return k;
}

static bool m_holds_enough(const struct lock_doc *d, const struct lock_owner *o, const struct lock_req *r)
{
	const struct lock_holder *h = find_holder(d, o, r->name);
	return h && (h->lock.mode == LOCK_EXCLUSIVE || r->mode == LOCK_SHARED);
}

/* The rules of lock_doc.h, written independently of lock_doc.c. */
static bool m_expect_grant(const struct lock_doc *d, const struct lock_owner *o, const struct lock_req *reqs,
			   size_t n, int64_t my_ticket)
{
	/* An owner that holds anything waits for holders only. */
	bool holds_any = false;
	for (size_t k = 0; k < d->n_holders; k++)
		holds_any |= lock_owner_same(&d->holders[k].owner, o);
	for (size_t i = 0; i < n; i++) {
		if (m_holds_enough(d, o, &reqs[i]))
			continue;
		bool excl = reqs[i].mode == LOCK_EXCLUSIVE;
		for (size_t k = 0; k < d->n_holders; k++) {
			const struct lock_holder *h = &d->holders[k];
			if (strcmp(h->lock.name, reqs[i].name) == 0 && !lock_owner_same(&h->owner, o) &&
			    (excl || h->lock.mode == LOCK_EXCLUSIVE))
				return false;
		}
		for (size_t k = 0; k < d->n_waiters && !holds_any; k++) {
			const struct lock_waiter *w = &d->waiters[k];
			if (my_ticket != 0 && w->ticket >= my_ticket)
				continue;
			if (lock_owner_same(&w->owner, o))
				continue;
			for (size_t j = 0; j < w->n_locks; j++)
				if (strcmp(w->locks[j].name, reqs[i].name) == 0 &&
				    (excl || w->locks[j].mode == LOCK_EXCLUSIVE))
					return false;
		}
	}
	return true;
}

/* A refusal's blocker names one of the requested locks and a real
 * conflicting holder or earlier ticket of another owner. */
static void m_check_blocker(const struct lock_doc *d, const struct lock_owner *o, const struct lock_req *reqs,
			    size_t n, const struct lock_blocker *b)
{
	const struct lock_req *r = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(reqs[i].name, b->lock) == 0)
			r = &reqs[i];
	assert_non_null(r);
	bool found = false;
	if (!b->queued) {
		for (size_t k = 0; k < d->n_holders && !found; k++) {
			const struct lock_holder *h = &d->holders[k];
			found = strcmp(h->lock.name, b->lock) == 0 && h->owner.task_id == b->task_id &&
				h->owner.pid == b->pid && h->lock.mode == b->mode && !lock_owner_same(&h->owner, o) &&
				!lock_modes_compatible(h->lock.mode, r->mode);
		}
	} else {
		const struct lock_waiter *w = find_waiter(d, b->ticket);
		assert_non_null(w);
		assert_int_equal(w->owner.task_id, b->task_id);
		assert_false(lock_owner_same(&w->owner, o));
		for (size_t j = 0; j < w->n_locks && !found; j++)
			found = strcmp(w->locks[j].name, b->lock) == 0 && w->locks[j].mode == b->mode &&
				!lock_modes_compatible(w->locks[j].mode, r->mode);
	}
	if (!found)
		fail_msg("blocker %s (%s, queued %d, task %" PRId64 ") is not a real conflict", b->lock,
			 lock_mode_name(b->mode), b->queued, b->task_id);
}

static void m_check_granted(const struct lock_doc *d, const struct lock_owner *o, const struct lock_req *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!m_holds_enough(d, o, &reqs[i]))
			fail_msg("granted but task %" PRId64 " does not hold %s", o->task_id, reqs[i].name);
}

struct m_dead {
	const struct lock_owner *victim;
};

static bool m_is_dead(const struct lock_owner *o, void *userdata)
{
	const struct m_dead *dd = userdata;
	return dd->victim && lock_owner_same(o, dd->victim);
}

static void test_model_check(void **state)
{
	struct lock_doc *d = *state;
	const char *seed_env = getenv("LOCK_DOC_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : UINT64_C(0x5eed1234abcd);
	m_rng = seed ? seed : 1;
	print_message("model check seed %" PRIu64 " (set LOCK_DOC_SEED to vary)\n", seed);

	struct m_owner own[M_OWNERS];
	for (int i = 0; i < M_OWNERS; i++) {
		/* Owners 4 and 5 are two processes of one task. */
		own[i] = (struct m_owner){ .id = mk_owner(i < 5 ? i + 1 : 5, 100 + i) };
	}
	int64_t now = T0;
	const int64_t ttl = 400;
	size_t grants = 0, refusals = 0, prunes = 0, reaps = 0;

	for (int step = 0; step < M_STEPS; step++) {
		struct m_owner *o = &own[m_rand(M_OWNERS)];
		char *before = fmt(d);
		int64_t next_before = d->next_ticket;
		uint32_t op = m_rand(10);
		struct lock_blocker bl;

		if (op <= 2) { /* try acquire */
			struct lock_req reqs[M_NAMES];
			size_t n = m_random_request(reqs);
			bool expect = m_expect_grant(d, &o->id, reqs, n, 0);
			int r = lock_doc_acquire(d, &o->id, reqs, n, NULL, now, ttl, &bl);
			assert_int_equal(r, expect ? 1 : 0);
			if (r == 1) {
				grants++;
				m_check_granted(d, &o->id, reqs, n);
			} else {
				refusals++;
				assert_doc_text(d, before);
				m_check_blocker(d, &o->id, reqs, n, &bl);
			}
			assert_int_equal(d->next_ticket, next_before);
		} else if (op <= 5) { /* waiting acquire: start, or poll again */
			if (!o->waiting) {
				o->n_want = m_random_request(o->want);
				o->ticket = 0;
				o->waiting = true;
			}
			const struct lock_waiter *mine = o->ticket ? find_waiter(d, o->ticket) : NULL;
			if (mine && !lock_owner_same(&mine->owner, &o->id))
				mine = NULL;
			bool expect = m_expect_grant(d, &o->id, o->want, o->n_want, mine ? o->ticket : 0);
			int64_t old_ticket = o->ticket;
			int r = lock_doc_acquire(d, &o->id, o->want, o->n_want, &o->ticket, now, ttl, &bl);
			assert_int_equal(r, expect ? 1 : 0);
			if (r == 1) {
				grants++;
				m_check_granted(d, &o->id, o->want, o->n_want);
				if (mine)
					assert_null(find_waiter(d, old_ticket));
				o->waiting = false;
				o->ticket = 0;
			} else {
				refusals++;
				m_check_blocker(d, &o->id, o->want, o->n_want, &bl);
				const struct lock_waiter *w = find_waiter(d, o->ticket);
				assert_non_null(w);
				assert_true(lock_owner_same(&w->owner, &o->id));
				if (mine) {
					assert_int_equal(o->ticket, old_ticket);
				} else {
					/* new ticket, at the back */
					assert_int_equal(o->ticket, next_before);
					assert_int_equal(d->next_ticket, next_before + 1);
					assert_ptr_equal(w, &d->waiters[d->n_waiters - 1]);
				}
				assert_true(w->expires_ms >= now + ttl * 2 / 3);
			}
		} else if (op == 6) { /* unlock some or all */
			int expect = 0;
			const char *names[M_NAMES];
			size_t n = m_rand(3);
			for (size_t i = 0; i < n; i++)
				names[i] = m_names[(i * 2 + m_rand(M_NAMES)) % M_NAMES];
			for (size_t k = 0; k < d->n_holders; k++) {
				if (!lock_owner_same(&d->holders[k].owner, &o->id))
					continue;
				bool match = n == 0;
				for (size_t i = 0; i < n; i++)
					match = match || strcmp(d->holders[k].lock.name, names[i]) == 0;
				expect += match;
			}
			size_t waiters_before = d->n_waiters;
			assert_int_equal(lock_doc_unlock(d, &o->id, n ? names : NULL, n), expect);
			assert_int_equal(d->n_waiters, waiters_before); /* tickets untouched */
		} else if (op == 7) { /* time passes, tickets expire */
			now += m_rand(ttl / 2);
			int expect = 0;
			for (size_t k = 0; k < d->n_waiters; k++)
				expect += d->waiters[k].expires_ms < now;
			assert_int_equal(lock_doc_prune_tickets(d, now), expect);
			prunes += (size_t)expect;
		} else if (op == 8) { /* a process dies and is reaped */
			struct m_dead dd = { m_rand(4) == 0 ? NULL : &o->id };
			int expect = 0;
			size_t waiters_left = 0;
			for (size_t k = 0; k < d->n_holders; k++)
				expect += dd.victim && lock_owner_same(&d->holders[k].owner, dd.victim);
			for (size_t k = 0; k < d->n_waiters; k++)
				waiters_left += !(dd.victim && lock_owner_same(&d->waiters[k].owner, dd.victim));
			assert_int_equal(lock_doc_reap(d, m_is_dead, &dd), expect);
			assert_int_equal(d->n_waiters, waiters_left);
			reaps += (size_t)expect;
			if (dd.victim) {
				/* It restarts as a new process (new start time). */
				o->id.start_time += 1000;
				o->waiting = false;
				o->ticket = 0;
			}
		} else { /* the supervisor releases a whole task, or a waiter gives up */
			if (m_rand(2) == 0) {
				int64_t task = o->id.task_id;
				int expect = 0;
				for (size_t k = 0; k < d->n_holders; k++)
					expect += d->holders[k].owner.task_id == task;
				assert_int_equal(lock_doc_unlock_task(d, task), expect);
				for (size_t k = 0; k < d->n_waiters; k++)
					assert_true(d->waiters[k].owner.task_id != task);
				for (int i = 0; i < M_OWNERS; i++)
					if (own[i].id.task_id == task)
						own[i].waiting = false, own[i].ticket = 0;
			} else if (o->waiting) {
				int expect = find_waiter(d, o->ticket) != NULL;
				assert_int_equal(lock_doc_cancel_ticket(d, o->ticket), expect);
				o->waiting = false;
				o->ticket = 0;
			}
		}
		free(before);
		check_invariants(d);
		assert_roundtrip(d);
		if (step % 1000 == 999)
			now += 10 * ttl; /* now and then, let everything expire */
	}
	print_message("model check: %zu grants, %zu refusals, %zu tickets pruned, %zu holders reaped\n", grants,
		      refusals, prunes, reaps);
	/* The walk must actually have exercised both outcomes. */
	assert_true(grants > 100);
	assert_true(refusals > 100);
	assert_true(prunes > 0);
	assert_true(reaps > 0);
}

/* ---- bounded exhaustive search ------------------------------------------ */

/* Beside the random walk: every sequence of up to X_DEPTH operations by
 * X_OWNERS owners on X_NAMES names, from the empty document. Each reached
 * state is checked as in the walk (grants as the rules say, blockers real,
 * invariants, format/parse round trip), plus progress: with no holder left,
 * the first waiter in the queue is granted when it polls. States are
 * deduplicated on (document text, owners' states, time): the outcome of an
 * operation depends on nothing else, so exploring each distinct state once
 * per remaining depth covers every interleaving. */
#define X_OWNERS 3
#define X_NAMES 2
#define X_DEPTH 6
#define X_TTL 400

struct x_owner {
	struct lock_owner id;
	int want;        /* index into x_reqs while waiting, else -1 */
	int64_t ticket;  /* while waiting; 0 before the first poll */
};

struct x_state {
	struct lock_doc doc;
	struct x_owner own[X_OWNERS];
	int64_t now;
};

/* The requests: each name shared or exclusive, and both names exclusive. */
static const struct {
	size_t n;
	struct {
		int name;
		enum lock_mode mode;
	} r[X_NAMES];
} x_reqs[] = {
	{ 1, { { 0, LOCK_SHARED } } }, { 1, { { 0, LOCK_EXCLUSIVE } } },
	{ 1, { { 1, LOCK_SHARED } } }, { 1, { { 1, LOCK_EXCLUSIVE } } },
	{ 2, { { 0, LOCK_EXCLUSIVE }, { 1, LOCK_EXCLUSIVE } } },
};
#define X_NREQS (sizeof(x_reqs) / sizeof(x_reqs[0]))
/* Per owner: try each request, start waiting for each (or poll again),
 * unlock all, unlock the first name, give up its ticket, die. */
enum { X_TRY = 0, X_WAIT = X_TRY + (int)X_NREQS, X_UNLOCK_ALL = X_WAIT + (int)X_NREQS, X_UNLOCK_ONE,
       X_CANCEL, X_DIE, X_PER_OWNER };
/* And for everyone: time passes, so that tickets not refreshed expire. */
#define X_ACTIONS (X_OWNERS * X_PER_OWNER + 1)

static size_t x_request(int idx, struct lock_req *out)
{
	for (size_t i = 0; i < x_reqs[idx].n; i++)
		out[i] = mk_req(m_names[x_reqs[idx].r[i].name], x_reqs[idx].r[i].mode);
	return x_reqs[idx].n;
}

static void x_copy(struct x_state *dst, const struct x_state *src)
{
	*dst = *src;
	struct lock_doc *d = &dst->doc;
	d->holders = malloc((src->doc.n_holders + 1) * sizeof(*d->holders));
	d->waiters = malloc((src->doc.n_waiters + 1) * sizeof(*d->waiters));
	assert_true(d->holders && d->waiters);
	if (src->doc.n_holders > 0) /* memcpy from NULL is undefined even for 0 bytes */
		memcpy(d->holders, src->doc.holders, src->doc.n_holders * sizeof(*d->holders));
	for (size_t i = 0; i < src->doc.n_waiters; i++) {
		d->waiters[i] = src->doc.waiters[i];
		d->waiters[i].locks = malloc(d->waiters[i].n_locks * sizeof(struct lock_req));
		assert_non_null(d->waiters[i].locks);
		memcpy(d->waiters[i].locks, src->doc.waiters[i].locks, d->waiters[i].n_locks * sizeof(struct lock_req));
	}
}

/* FNV-1a. */
static uint64_t x_mix(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(1099511628211);
	return h;
}

static uint64_t x_mix_req(uint64_t h, const struct lock_req *r)
{
	h = x_mix(h, r->name, strlen(r->name) + 1);
	return x_mix(h, &r->mode, sizeof(r->mode));
}

/* The document's content, field by field (no padding). With `canonical`,
 * only what decides the outcome of later operations: owners by task and
 * pid (a dead owner's entries are all reaped, so its start time never
 * matters again), tickets by their rank (only their order matters: ticket
 * numbers are never reused), expiry relative to now, and no acquired-at
 * times or nextTicket. Two states equal so behave alike, which makes the
 * search finite across time steps. */
static uint64_t x_doc_hash(const struct lock_doc *d, bool canonical, int64_t now)
{
	uint64_t h = UINT64_C(14695981039346656037);
	int64_t counts[3] = { (int64_t)d->n_holders, (int64_t)d->n_waiters, canonical ? 0 : d->next_ticket };
	h = x_mix(h, counts, sizeof(counts));
	for (size_t i = 0; i < d->n_holders; i++) {
		const struct lock_owner *o = &d->holders[i].owner;
		int64_t v[5] = { o->task_id, o->pid, canonical ? 0 : (int64_t)o->start_time,
				 canonical ? 0 : o->acquired_at_ms, o->lease_expires_ms };
		h = x_mix(x_mix_req(h, &d->holders[i].lock), v, sizeof(v));
	}
	for (size_t i = 0; i < d->n_waiters; i++) {
		const struct lock_waiter *w = &d->waiters[i];
		const struct lock_owner *o = &w->owner;
		int64_t v[6] = { canonical ? (int64_t)i : w->ticket, canonical ? w->expires_ms - now : w->expires_ms,
				 (int64_t)w->n_locks, o->task_id, o->pid,
				 canonical ? 0 : (int64_t)o->start_time };
		h = x_mix(h, v, sizeof(v));
		for (size_t j = 0; j < w->n_locks; j++)
			h = x_mix_req(h, &w->locks[j]);
	}
	return h;
}

static uint64_t x_hash(const struct x_state *st)
{
	uint64_t h = x_doc_hash(&st->doc, true, st->now);
	int64_t rest[2 * X_OWNERS];
	for (int i = 0; i < X_OWNERS; i++) {
		/* The owner's ticket as the rank of its entry (+1), or 0. */
		int64_t rank = 0;
		for (size_t k = 0; st->own[i].ticket && k < st->doc.n_waiters; k++)
			if (st->doc.waiters[k].ticket == st->own[i].ticket)
				rank = (int64_t)k + 1;
		rest[2 * i] = st->own[i].want;
		rest[2 * i + 1] = rank;
	}
	return x_mix(h, rest, sizeof(rest));
}

/* States seen, with the most depth left when seen: open addressing. */
struct x_seen {
	uint64_t *keys;
	uint8_t *left;
	size_t cap, n;
};

/* True when `h` was already explored with at least `left` steps to go. */
static bool x_seen_check(struct x_seen *s, uint64_t h, int left)
{
	if ((s->n + 1) * 2 > s->cap) {
		struct x_seen g = { calloc(s->cap * 2, sizeof(uint64_t)), calloc(s->cap * 2, 1), s->cap * 2, 0 };
		assert_true(g.keys && g.left);
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->keys[i])
				continue;
			size_t j = s->keys[i] & (g.cap - 1);
			while (g.keys[j])
				j = (j + 1) & (g.cap - 1);
			g.keys[j] = s->keys[i];
			g.left[j] = s->left[i];
			g.n++;
		}
		free(s->keys);
		free(s->left);
		*s = g;
	}
	h |= 1; /* 0 marks an empty slot */
	size_t j = h & (s->cap - 1);
	while (s->keys[j] && s->keys[j] != h)
		j = (j + 1) & (s->cap - 1);
	if (s->keys[j] && s->left[j] >= left)
		return true;
	if (!s->keys[j])
		s->n++;
	s->keys[j] = h;
	s->left[j] = (uint8_t)left;
	return false;
}

struct x_stats {
	size_t states, transitions, grants, refusals;
};

/* Apply one action to `st` (a private copy) with the checks of the walk.
 * Returns false when the action does not apply in this state. */
static bool x_apply(struct x_state *st, int action, struct x_stats *xs)
{
	struct lock_doc *d = &st->doc;
	if (action == X_ACTIONS - 1) { /* time passes: every ticket not refreshed since expires */
		st->now += X_TTL + 1;
		lock_doc_prune_tickets(d, st->now);
		return true;
	}
	struct x_owner *o = &st->own[action / X_PER_OWNER];
	int a = action % X_PER_OWNER;
	struct lock_req reqs[X_NAMES];
	struct lock_blocker bl;
	if (a < X_WAIT) {
		size_t n = x_request(a - X_TRY, reqs);
		uint64_t before = x_doc_hash(d, false, 0);
		bool expect = m_expect_grant(d, &o->id, reqs, n, 0);
		int r = lock_doc_acquire(d, &o->id, reqs, n, NULL, st->now, X_TTL, &bl);
		assert_int_equal(r, expect ? 1 : 0);
		if (r == 1) {
			xs->grants++;
			m_check_granted(d, &o->id, reqs, n);
		} else {
			xs->refusals++;
			assert_true(x_doc_hash(d, false, 0) == before); /* a refused try changes nothing */
			m_check_blocker(d, &o->id, reqs, n, &bl);
		}
	} else if (a < X_UNLOCK_ALL) {
		if (o->want >= 0 && a != X_WAIT) /* waiting: only the first wait action polls */
			return false;
		if (o->want < 0) {
			o->want = a - X_WAIT;
			o->ticket = 0;
		}
		size_t n = x_request(o->want, reqs);
		const struct lock_waiter *mine = o->ticket ? find_waiter(d, o->ticket) : NULL;
		bool expect = m_expect_grant(d, &o->id, reqs, n, mine ? o->ticket : 0);
		int64_t next_before = d->next_ticket, old_ticket = o->ticket;
		int r = lock_doc_acquire(d, &o->id, reqs, n, &o->ticket, st->now, X_TTL, &bl);
		assert_int_equal(r, expect ? 1 : 0);
		if (r == 1) {
			xs->grants++;
			m_check_granted(d, &o->id, reqs, n);
			if (old_ticket)
				assert_null(find_waiter(d, old_ticket)); /* granted: its ticket is gone */
			o->want = -1;
			o->ticket = 0;
		} else {
			xs->refusals++;
			m_check_blocker(d, &o->id, reqs, n, &bl);
			const struct lock_waiter *w = find_waiter(d, o->ticket);
			assert_non_null(w);
			if (!mine)
				assert_int_equal(o->ticket, next_before); /* a new ticket, at the back */
		}
	} else if (a == X_UNLOCK_ALL) {
		lock_doc_unlock(d, &o->id, NULL, 0);
		for (size_t i = 0; i < d->n_holders; i++)
			assert_false(lock_owner_same(&d->holders[i].owner, &o->id));
	} else if (a == X_UNLOCK_ONE) {
		const char *name = m_names[0];
		lock_doc_unlock(d, &o->id, &name, 1);
		assert_false(lock_doc_holds(d, &o->id, name, NULL));
	} else if (a == X_CANCEL) {
		if (o->want < 0)
			return false;
		lock_doc_cancel_ticket(d, o->ticket);
		assert_null(find_waiter(d, o->ticket));
		o->want = -1;
		o->ticket = 0;
	} else { /* X_DIE: reaped, and back as a new process */
		struct m_dead dd = { &o->id };
		lock_doc_reap(d, m_is_dead, &dd);
		size_t h = 0, t = 0;
		lock_doc_owner_summary(d, &o->id, &h, &t, NULL);
		assert_int_equal(h + t, 0);
		o->id.start_time += 1000;
		o->want = -1;
		o->ticket = 0;
	}
	return true;
}

/* Progress: with no holder, the first ticket's owner is granted when it
 * polls (on a copy; the state itself is not changed). */
static void x_check_progress(const struct x_state *st)
{
	if (st->doc.n_holders > 0 || st->doc.n_waiters == 0)
		return;
	const struct lock_waiter *first = &st->doc.waiters[0];
	if (first->expires_ms < st->now)
		return; /* pruned by the poll; its owner re-queues */
	struct x_state c;
	x_copy(&c, st);
	int64_t ticket = first->ticket;
	int r = lock_doc_acquire(&c.doc, &first->owner, first->locks, first->n_locks, &ticket, st->now, X_TTL, NULL);
	if (r != 1)
		fail_msg("no holder, yet the first waiter (ticket %" PRId64 ") is refused", first->ticket);
	lock_doc_release(&c.doc);
}

/* Every ticket in the queue is the live ticket of an owner that waits:
 * none is left behind by a grant, a cancel or a death. */
static void x_check_tickets(const struct x_state *st)
{
	for (size_t k = 0; k < st->doc.n_waiters; k++) {
		const struct lock_waiter *w = &st->doc.waiters[k];
		bool owned = false;
		for (int i = 0; i < X_OWNERS; i++)
			owned |= st->own[i].want >= 0 && st->own[i].ticket == w->ticket &&
				 lock_owner_same(&st->own[i].id, &w->owner);
		if (!owned)
			fail_msg("ticket %" PRId64 " of task %" PRId64 " belongs to no waiting owner", w->ticket,
				 w->owner.task_id);
	}
}

static void x_explore(const struct x_state *st, int left, struct x_seen *seen, struct x_stats *xs)
{
	if (x_seen_check(seen, x_hash(st), left))
		return;
	xs->states++;
	check_invariants(&st->doc); /* the round trip is the random walk's */
	x_check_tickets(st);
	x_check_progress(st);
	if (left == 0)
		return;
	for (int action = 0; action < X_ACTIONS; action++) {
		const struct x_owner *o = &st->own[action / X_PER_OWNER];
		int a = action % X_PER_OWNER;
		if (action < X_ACTIONS - 1 && ((o->want >= 0 && a > X_WAIT && a < X_UNLOCK_ALL) ||
					       (o->want < 0 && a == X_CANCEL)))
			continue; /* does not apply: saves the copy */
		struct x_state next;
		x_copy(&next, st);
		if (x_apply(&next, action, xs)) {
			xs->transitions++;
			x_explore(&next, left - 1, seen, xs);
		}
		lock_doc_release(&next.doc);
	}
}

static void test_exhaustive_search(void **state)
{
	(void)state;
	struct x_state start = { .now = T0 };
	lock_doc_init(&start.doc);
	for (int i = 0; i < X_OWNERS; i++)
		start.own[i] = (struct x_owner){ .id = mk_owner(i + 1, 100 + i), .want = -1 };
	struct x_seen seen = { calloc(1024, sizeof(uint64_t)), calloc(1024, 1), 1024, 0 };
	assert_true(seen.keys && seen.left);
	struct x_stats xs = { 0 };
	const char *depth_env = getenv("LOCK_DOC_DEPTH");
	int depth = depth_env ? atoi(depth_env) : X_DEPTH;
#ifdef __SANITIZE_ADDRESS__
	/* Under ASan depth 6 takes minutes (depth 5 about 40 s): depth 4
	 * runs the same code under the sanitizers; the normal build
	 * searches depth 6. */
	if (!depth_env)
		depth = X_DEPTH - 2;
#endif
	x_explore(&start, depth, &seen, &xs);
	print_message("exhaustive search (%d owners, %d names, depth %d): %zu states, %zu transitions, %zu grants, "
		      "%zu refusals\n",
		      X_OWNERS, X_NAMES, depth, xs.states, xs.transitions, xs.grants, xs.refusals);
	assert_true(xs.grants > 0 && xs.refusals > 0);
	free(seen.keys);
	free(seen.left);
	lock_doc_release(&start.doc);
}

/* ---- main --------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, doc_setup, doc_teardown)

/* Format 3: a document as the lines that differ from its base (a holder
 * gone, one changed in place, one new; a ticket gone, one new) reads back,
 * against that base, to the same document, in the same order. */
static void test_split_format_reads_back(void **state)
{
	(void)state;
	static const char base_text[] = "boxd-locks 2 9\n@h\n"
					"H a x 1 0 1 1 0 0\nH b x 2 0 1 1 0 0\nH c s 3 0 1 1 0 0\n"
					"T 5 9 4 0 1 1 0 0 1 a s\nT 6 9 5 0 1 1 0 0 1 b s\n";
	static const char doc_text[] = "boxd-locks 2 10\n@h\n@g\n"
				       "H a x 1 0 1 1 0 0\nH c s 3 0 1 1 0 77\nH d x 7 1 1 1 0 0\n"
				       "T 6 9 5 0 1 1 0 0 1 b s\nT 9 9 8 0 1 1 0 0 1 a s\n";
	char err[256], *split = NULL, *again = NULL;
	struct lock_doc base, doc, back;
	assert_int_equal(lock_doc_parse(base_text, &base, err, sizeof(err)), 0);
	assert_int_equal(lock_doc_parse(doc_text, &doc, err, sizeof(err)), 0);
	size_t changes = 0;
	assert_int_equal(lock_doc_split_format(&doc, &base, 2, 77, &split, &changes), 0);
	assert_string_equal(split, "boxd-locks 3 10 2 77 3 2\n@h\n@g\n"
				   "-H 1\n=H 2 c s 3 0 1 1 0 77\n-T 0\n"
				   "H d x 7 1 1 1 0 0\nT 9 9 8 0 1 1 0 0 1 a s\n");
	assert_int_equal(changes, 5);
	int slot = 0;
	int64_t nonce = 0;
	assert_int_equal(lock_doc_split_ref(split, &slot, &nonce), 0);
	assert_int_equal(slot, 2);
	assert_int_equal(nonce, 77);
	lock_doc_cache_drop();
	assert_int_equal(lock_doc_split_parse(split, &base, &back, err, sizeof(err)), 0);
	assert_int_equal(lock_doc_format(&back, &again), 0);
	assert_string_equal(again, doc_text);
	lock_doc_release(&back);
	/* The same document as its own base: nothing but the header. */
	free(split);
	assert_int_equal(lock_doc_split_format(&doc, &doc, 3, 8, &split, &changes), 0);
	assert_string_equal(split, "boxd-locks 3 10 3 8 3 2\n");
	assert_int_equal(changes, 0);
	/* Against another base (its counts differ) it is refused. */
	struct lock_doc empty;
	lock_doc_init(&empty);
	assert_int_equal(lock_doc_split_parse(split, &empty, &back, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "the base has 0 holders and 0 tickets"));
	free(split);
	free(again);
	lock_doc_release(&base);
	lock_doc_release(&doc);
}

/* A format 3 text that breaks an invariant against its base (a new holder
 * of a name the base holds exclusively) is refused like format 2. */
static void test_split_parse_verifies(void **state)
{
	(void)state;
	char err[256];
	struct lock_doc base, doc;
	assert_int_equal(lock_doc_parse("boxd-locks 2 1\n@h\nH a x 1 0 1 1 0 0\n", &base, err, sizeof(err)), 0);
	lock_doc_cache_drop();
	assert_int_equal(lock_doc_split_parse("boxd-locks 3 1 2 7 1 0\n@h\nH a x 2 0 1 1 0 0\n", &base, &doc, err,
					      sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "holders[1]: a held exclusive by task 2"));
	assert_int_equal(lock_doc_split_parse("boxd-locks 3 1 2 7 1 0\n-H 1\n", &base, &doc, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "base index 1 is past"));
	assert_int_equal(lock_doc_split_parse("boxd-locks 3 1 2 7 1 0\n-H 0\n", &base, &doc, err, sizeof(err)), 0);
	assert_int_equal(doc.n_holders, 0);
	lock_doc_release(&doc);
	lock_doc_release(&base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_mode_helpers),
		T(test_split_format_reads_back),
		T(test_split_parse_verifies),
		T(test_lock_name_valid),
		T(test_lock_req_parse),
		T(test_owner_identity),
		T(test_compat_shared_shared),
		T(test_compat_shared_exclusive),
		T(test_compat_exclusive_shared),
		T(test_compat_exclusive_exclusive),
		T(test_repeat_is_idempotent),
		T(test_repeat_is_idempotent_while_others_wait),
		T(test_upgrade_when_alone),
		T(test_upgrade_refused_with_other_shared_holder),
		T(test_upgrade_waits_behind_earlier_ticket),
		T(test_holder_is_not_blocked_by_queue_cycle),
		T(test_all_or_none_conflict_grants_nothing),
		T(test_all_or_none_compatible_grants_all),
		T(test_invalid_requests_change_nothing),
		T(test_fifo_handoff),
		T(test_no_writer_starvation),
		T(test_queue_does_not_block_unrelated_names),
		T(test_compatible_waiter_does_not_block),
		T(test_abandoned_ticket_is_pruned),
		T(test_refreshed_ticket_survives_prune),
		T(test_poll_refreshes_only_when_due),
		T(test_pruned_ticket_requeues_at_back),
		T(test_cancel_ticket),
		T(test_unlock_named),
		T(test_unlock_all_of_owner),
		T(test_unlock_task),
		T(test_reap_dead_pid),
		T(test_reap_pid_reuse),
		T(test_reap_other_host_lease),
		T(test_renew_leases),
		T(test_renew_leases_of_tickets),
		T(test_request_again_keeps_its_ticket), T(test_renew_owner),
		T(test_poll_refreshes_ticket_lease),
		T(test_format_empty_is_canonical),
		T(test_parse_format_roundtrip),
		T(test_json_document_upgrades),
		T(test_text_format_refuses_bad_lines),
		T(test_verify_large_document),
		T(test_parse_base_documents_are_valid),
		T(test_parse_rejects_non_json),
		T(test_parse_rejects_wrong_types),
		T(test_parse_rejects_missing_fields),
		T(test_parse_rejects_bad_tickets),
		T(test_parse_rejects_huge_host),
		T(test_parse_rejects_bad_mode_and_name),
		T(test_parse_rejects_two_exclusive_holders),
		T(test_parse_rejects_exclusive_shared_mix),
		T(test_parse_rejects_a_name_held_twice_by_one_owner),
		T(test_parse_rejects_duplicate_tickets),
		T(test_parse_rejects_ticket_at_or_past_next),
		T(test_parse_rejects_a_name_twice_in_one_request),
		T(test_verify_in_memory),
		T(test_debug_check_after_change),
		T(test_lease_expired_rule),
		T(test_owner_leased),
		T(test_next_in_line),
		T(test_task_in_line),
		T(test_salvage),
		T(test_doctored_numbers),
		T(test_format_allocation_failures),
		T(test_model_check),
		T(test_exhaustive_search),
		T(test_long_marker_per_host),
		T(test_defer_lets_shared_pass_during_backup),
		T(test_defer_ends_with_the_backup),
		T(test_defer_only_when_it_should),
		T(test_defer_no_starvation_either_way),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
