/* broker_client.c — see broker_client.h. */
#include "broker_client.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/timeutil.h"
#include "broker_proto.h"
#include "lock_wait_report.h"

/* How long an unlock waits for the broker's answer before doing it
 * directly (a round is one commit). Short: a task's last release runs
 * after its worker stopped renewing its lease, so a frozen daemon (whose
 * broker thread is frozen with it) must not hold the release past the
 * lease (t0845: lease 3 s; at 5 s another host failed the task). A late
 * answer costs nothing: the direct release and the broker's are both
 * idempotent. */
#define UNLOCK_REPLY_MS 250
/* How long a waiter that cancels waits for the broker's last word. */
#define CANCEL_REPLY_MS 5000
/* A waiter looks at its cancel flag this often (and at its deadline when
 * that comes first). The SIGTERM that sets the flag interrupts the poll at
 * once (EINTR); the slice only bounds a signal that lands between the look
 * and the poll, as the direct path's 10 s safety poll does (locks.c,
 * WAKE_POLL_MAX_US). Every wake-up costs: 50 waiting workers took 7.5% of
 * a core at 50 ms, ~1% at 1 s (make bench, "CPU of 50 tasks waiting"). */
#define WAIT_SLICE_MS 10000
/* A waiter that has used its store for nothing this long gives up the
 * connection (store_release_connection()) until the grant, or until it
 * writes what it waits for: hundreds of queued workers on a host would
 * otherwise hold as many server sessions. Short waits keep theirs, so a
 * quick hand-off does not pay for a new connection. */
#define RELEASE_AFTER_MS 1000
/* The longest a PREPARE keeps a waiter polling (broker.c sends one only
 * when its rounds are that short). */
#define PREPARE_SPIN_MAX_US 400

static int conn_fd = -1;
static pid_t conn_pid;
static char conn_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct lock_broker_client_stats stats;

void lock_broker_client_stats_get(struct lock_broker_client_stats *ret) { *ret = stats; }

void lock_broker_client_close(void)
{
	if (conn_fd >= 0 && conn_pid == getpid())
		close(conn_fd);
	conn_fd = -1;
}

/* The connection, opened if need be; -errno when no broker answers. */
static int broker_fd(const char *path)
{
	if (conn_fd >= 0 && (conn_pid != getpid() || strcmp(conn_path, path) != 0)) {
		if (conn_pid == getpid())
			close(conn_fd);
		conn_fd = -1; /* a forked child does not share its parent's */
	}
	if (conn_fd >= 0)
		return conn_fd;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	conn_fd = fd;
	conn_pid = getpid();
	snprintf(conn_path, sizeof(conn_path), "%s", path);
	return fd;
}

static void broken(void)
{
	lock_broker_client_close();
}

/* Receive one message within timeout_ms (-1: block). 1 got one, 0 timed
 * out (or a signal), -errno the connection broke. */
static int recv_msg(int fd, struct broker_msg *m, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int pr = poll(&p, 1, timeout_ms);
	if (pr < 0)
		return errno == EINTR ? 0 : -errno;
	if (pr == 0)
		return 0;
	memset(m, 0, sizeof(*m));
	ssize_t len = recv(fd, m, sizeof(*m), 0);
	if (len < 0)
		return errno == EINTR ? 0 : -errno;
	if (len == 0)
		return -ECONNRESET;
	if ((size_t)len < offsetof(struct broker_msg, reqs) || m->version != BROKER_PROTO_VERSION)
		return -EPROTO;
	return 1;
}

/* A PREPARE: the answer is likely to follow within about `us`. Poll
 * without sleeping until it is there (at most twice that, and
 * PREPARE_SPIN_MAX_US): this process's CPU stays awake for it, where a
 * sleep would cost a wake-up (about 25 us across the vCPUs of a VM that
 * halts idle ones) on the hand-off's critical path. */
static void spin_for_reply(int fd, int64_t us)
{
	if (us <= 0)
		return;
	if (us > PREPARE_SPIN_MAX_US / 2)
		us = PREPARE_SPIN_MAX_US / 2;
	int64_t until = now_mono_us() + 2 * us;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (poll(&p, 1, 0) == 0 && now_mono_us() < until)
		;
}

static bool holds_all(const struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs,
		      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		for (size_t k = 0; k < doc->n_holders && !ok; k++) {
			const struct lock_holder *h = &doc->holders[k];
			ok = lock_owner_same(&h->owner, owner) && strcmp(h->lock.name, reqs[i].name) == 0 &&
			     (h->lock.mode == LOCK_EXCLUSIVE || reqs[i].mode == LOCK_SHARED);
		}
		if (!ok)
			return false;
	}
	return true;
}

/* The broker is gone or handed the request back: re-read the document,
 * never assume. */
static int go_on_directly(struct store *s, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
			  const struct locks_acquire_opts *opts, int64_t deadline, int64_t ticket,
			  int64_t *ret_version, struct lock_blocker *ret_blocker)
{
	stats.fallbacks++;
	struct locks_acquire_opts o = opts ? *opts : (struct locks_acquire_opts){ 0 };
	struct lock_doc doc;
	int64_t version;
	if (locks_read(s, &doc, &version, NULL) == 0) {
		bool held = holds_all(&doc, owner, reqs, n);
		int64_t mine = 0;
		for (size_t i = 0; i < doc.n_waiters && !mine; i++)
			if (lock_owner_same(&doc.waiters[i].owner, owner))
				mine = doc.waiters[i].ticket;
		lock_doc_release(&doc);
		if (held) {
			stats.held_on_reread++;
			*ret_version = version;
			return 0;
		}
		ticket = mine;
	}
	/* (A store that cannot be read: the direct loop rides it out with
	 * the ticket the broker last told of.) */
	o.resume_ticket = ticket;
	if (o.timeout_ms > 0) {
		int64_t left = deadline - now_mono_ms();
		o.timeout_ms = left > 0 ? left : 1; /* 1: one attempt that cancels its ticket */
	}
	return locks_acquire(s, owner, reqs, n, &o, ret_version, ret_blocker);
}

int locks_acquire_brokered(const char *socket_path, struct store *s, const struct lock_owner *owner,
			   const struct lock_req *reqs, size_t n, const struct locks_acquire_opts *opts,
			   int64_t *ret_version, struct lock_blocker *ret_blocker)
{
	static const struct locks_acquire_opts defaults = { 0 };
	if (!opts)
		opts = &defaults;
	int fd = socket_path && n > 0 && n <= BROKER_MAX_LOCKS ? broker_fd(socket_path) : -1;
	if (fd < 0) {
		stats.direct++;
		return locks_acquire(s, owner, reqs, n, opts, ret_version, ret_blocker);
	}
	struct broker_msg m = { .version = BROKER_PROTO_VERSION, .type = BROKER_ACQUIRE, .n = (uint32_t)n,
				.timeout_ms = opts->timeout_ms, .ttl_ms = opts->ticket_ttl_ms,
				.lease_ms = opts->lease_ms, .defer_ms = opts->defer_ms, .owner = *owner };
	memcpy(m.reqs, reqs, n * sizeof(*reqs));
	int64_t deadline = opts->timeout_ms < 0 ? INT64_MAX : now_mono_ms() + opts->timeout_ms;
	if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		/* Nothing reached a broker: plain direct. */
		broken();
		stats.direct++;
		return locks_acquire(s, owner, reqs, n, opts, ret_version, ret_blocker);
	}
	int64_t ticket = 0;
	int give_up = 0; /* -ECANCELED or -ETIMEDOUT once a cancel was sent */
	struct lock_wait_report report = { 0 };
	int64_t release_at = INT64_MAX; /* mono ms; INT64_MAX: released, or not waiting yet */
	bool armed = false;
	for (;;) {
		if (!give_up && ((opts->cancel && *opts->cancel) || now_mono_ms() >= deadline)) {
			give_up = opts->cancel && *opts->cancel ? -ECANCELED : -ETIMEDOUT;
			struct broker_msg c = { .version = BROKER_PROTO_VERSION, .type = BROKER_CANCEL };
			if (send(fd, &c, sizeof(c), MSG_NOSIGNAL) != (ssize_t)sizeof(c)) {
				broken();
				return go_on_directly(s, owner, reqs, n, opts, deadline, ticket, ret_version,
						      ret_blocker);
			}
		}
		int64_t left = deadline - now_mono_ms();
		int slice = left < WAIT_SLICE_MS ? (int)(left > 0 ? left : 0) : WAIT_SLICE_MS;
		if (give_up)
			slice = CANCEL_REPLY_MS;
		else if (!opts->cancel) /* only the deadline to look at */
			slice = left > INT_MAX ? INT_MAX : (int)(left > 0 ? left : 0);
		bool timer = false; /* the slice ends for a report or the release */
		if (!give_up) {
			int64_t now = now_mono_ms(), due = lock_wait_report_due_in_ms(&report);
			if (release_at != INT64_MAX && release_at - now < due)
				due = release_at - now > 0 ? release_at - now : 0;
			if (due < slice) {
				slice = (int)due;
				timer = true;
			}
		}
		struct broker_msg rep;
		int r = recv_msg(fd, &rep, slice);
		if (r == 0 && !give_up) {
			if (!timer)
				stats.wakeups++; /* the timers wake a waiter once per report, not in a loop */
			if (lock_wait_report_flush(&report, opts))
				release_at = now_mono_ms() + RELEASE_AFTER_MS; /* the report used the store */
			if (now_mono_ms() >= release_at) {
				store_release_connection(s);
				release_at = INT64_MAX;
			}
		}
		if (r == 0 && give_up) {
			/* No last word from the broker: read the document. */
			broken();
			return go_on_directly(s, owner, reqs, n, opts, deadline, ticket, ret_version, ret_blocker);
		}
		if (r == 0)
			continue;
		if (r < 0) {
			broken();
			return go_on_directly(s, owner, reqs, n, opts, deadline, ticket, ret_version, ret_blocker);
		}
		switch (rep.type) {
		case BROKER_GRANTED:
			stats.brokered++;
			*ret_version = rep.fence;
			if (give_up) {
				/* The grant crossed our cancel: the broker's answer
				 * to the cancel follows; take it off the wire. */
				struct broker_msg last;
				if (recv_msg(fd, &last, CANCEL_REPLY_MS) != 1 || last.type != BROKER_CANCELLED)
					broken();
			}
			return 0;
		case BROKER_REFUSED:
			stats.brokered++;
			if (ret_blocker)
				*ret_blocker = rep.blocker;
			return -EAGAIN;
		case BROKER_WAITING:
			stats.waiting_messages++;
			ticket = rep.ticket;
			if (ret_blocker)
				*ret_blocker = rep.blocker;
			/* The store was used just now (on_wait, or before the
			 * request for the first WAITING): give it up later. */
			if (lock_wait_report_seen(&report, &rep.blocker, opts) || !armed) {
				release_at = now_mono_ms() + RELEASE_AFTER_MS;
				armed = true;
			}
			continue;
		case BROKER_CANCELLED:
			if (!give_up)
				continue; /* not ours (cannot happen) */
			/* What it waited for, also when the wait was too short
			 * for a WAITING (broker.c, FIRST_WAITING_MS). */
			if (ret_blocker && rep.blocker.lock[0])
				*ret_blocker = rep.blocker;
			stats.brokered++;
			return give_up;
		case BROKER_PREPARE:
			stats.prepares++;
			spin_for_reply(fd, rep.timeout_ms);
			continue;
		case BROKER_FALLBACK:
			return go_on_directly(s, owner, reqs, n, opts, deadline, rep.ticket ? rep.ticket : ticket,
					      ret_version, ret_blocker);
		case BROKER_ERROR:
			stats.brokered++;
			if (rep.err == -EPERM || rep.err == -EINVAL)
				return store_set_error(s, rep.err, "lock broker refused the request: %s",
						       strerror(-rep.err));
			broken();
			return go_on_directly(s, owner, reqs, n, opts, deadline, ticket, ret_version, ret_blocker);
		default:
			broken();
			return go_on_directly(s, owner, reqs, n, opts, deadline, ticket, ret_version, ret_blocker);
		}
	}
}

int locks_unlock_brokered(const char *socket_path, struct store *s, const struct lock_owner *owner,
			  const char *const *names, size_t n, int *ret_unlocked)
{
	int fd = socket_path && n <= BROKER_MAX_LOCKS ? broker_fd(socket_path) : -1;
	if (fd < 0) {
		stats.direct++;
		return locks_unlock(s, owner, names, n, ret_unlocked);
	}
	struct broker_msg m = { .version = BROKER_PROTO_VERSION, .type = BROKER_UNLOCK, .n = (uint32_t)n,
				.owner = *owner };
	for (size_t i = 0; i < n; i++)
		if (snprintf(m.reqs[i].name, sizeof(m.reqs[i].name), "%s", names[i]) >= (int)sizeof(m.reqs[i].name))
			return locks_unlock(s, owner, names, n, ret_unlocked);
	if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		broken();
		stats.direct++;
		return locks_unlock(s, owner, names, n, ret_unlocked);
	}
	struct broker_msg rep;
	int r = recv_msg(fd, &rep, UNLOCK_REPLY_MS);
	if (r == 1 && rep.type == BROKER_UNLOCKED) {
		stats.brokered++;
		if (ret_unlocked)
			*ret_unlocked = rep.err;
		return 0;
	}
	/* No answer: the broker may have committed it before it went away.
	 * Re-read: what we still hold we release now; what is gone the broker
	 * released (a live owner's holdings are not reaped). */
	if (r != 1 || rep.type != BROKER_ERROR)
		broken();
	stats.fallbacks++;
	int before = 0;
	struct lock_doc doc;
	if (n > 0 && locks_read(s, &doc, NULL, NULL) == 0) {
		for (size_t i = 0; i < n; i++)
			before += !lock_doc_holds(&doc, owner, names[i], NULL);
		lock_doc_release(&doc);
	}
	if (r == 1 && rep.type == BROKER_ERROR)
		before = 0; /* the broker says its round failed: nothing of it committed */
	int unlocked = 0;
	r = locks_unlock(s, owner, names, n, &unlocked);
	if (r >= 0 && ret_unlocked)
		*ret_unlocked = unlocked + before;
	return r;
}
