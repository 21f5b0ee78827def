/* lock_doc.h — the lock document and the pure functions that change it.
 *
 * boxd keeps every held lock, and the queue of waiters, in one document in
 * the lock row of the database (a big one split over that row and a base row,
 * lock_doc_text.h; see locks.h for the compare-and-swap loop that reads and
 * writes it). Everything here is pure: no I/O, no clock, no /proc. Time
 * comes in as `now_ms` (the database's clock) and liveness of owners as a
 * callback, so the rules can be tested exhaustively.
 *
 * The rules:
 *   - Modes: many `shared` holders of a name may coexist; an `exclusive`
 *     holder excludes every other holder of that name.
 *   - A request names one or more locks and is granted all or none.
 *   - An owner's own holdings never conflict with its own request. A request
 *     for a name the owner already holds in that mode or a stronger one is
 *     granted without a change, whoever waits in the queue (a repeated
 *     request is idempotent). shared → exclusive upgrades when nobody else
 *     holds the name (the owner is a holder, so it does not wait behind the
 *     queue, see below); two shared holders that both want to upgrade wait
 *     for each other until they time out — take the exclusive lock up front
 *     instead.
 *   - FIFO: a request that cannot be granted takes a ticket in the queue. A
 *     request is also refused while an *earlier* live ticket wants a
 *     conflicting mode on one of the same names, so a waiter never overtakes
 *     the waiter ahead of it, and a stream of shared holders cannot starve an
 *     exclusive waiter.
 *   - Except: an owner that already holds some lock waits only for holders,
 *     not behind the queue (it is mid-operation, e.g. a full backup taking
 *     app:X after app:W while holding `platform`). Queue-before-holder
 *     ordering could otherwise close a wait cycle through the queue.
 *   - A ticket carries an expiry; the waiter refreshes it while it polls. A
 *     ticket whose waiter went away expires and is pruned, so it cannot block
 *     the queue for ever.
 *   - Reap: holders and tickets whose owner is dead are removed.
 *   - Deferring to a long holder (lock_doc_acquire_ex, LOCK_ACQ_DEFER): a
 *     request refused because of a *long-running shared holder* — a shared
 *     holding whose owner also holds a lock named LOCK_LONG_MARKER, i.e. a
 *     running full backup holding `platform` shared — takes no ticket while
 *     it has none. It waits outside the queue, so it blocks nobody: app
 *     tasks (platform shared) go on beside the backup instead of queueing
 *     behind an update that waits for `platform` exclusive for the rest of
 *     the backup. Once no long holder blocks it, it queues as usual (FIFO:
 *     later shared requests wait behind it, so it is not starved by them).
 *     Its waiter bounds how long it defers (locks.h, defer_ms): after that
 *     it queues even behind a long holder, so back-to-back backups cannot
 *     starve it either. A request with a ticket never defers (it keeps its
 *     place). Its owner may hold other locks (an update holds type:update
 *     when it asks for platform): holders skip the queue, but a refused
 *     holder still takes a ticket that newcomers queue behind.
 *
 * The lock matrix that results (docs/ARCHITECTURE.md has it with the task
 * types): shared–shared is compatible; anything with exclusive conflicts;
 * a queued exclusive ticket blocks later shared requests, but an exclusive
 * request held up by a full backup is not queued yet while it defers.
 *
 * Memory: a struct lock_doc owns its arrays; lock_doc_init() gives an empty
 * document, lock_doc_release() frees the contents (the struct itself is the
 * caller's). Functions that fail return a negative errno and leave the
 * document as it was.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/lock_spec.h"

#define LOCK_NAME_MAX LOCK_SPEC_NAME_MAX
#define LOCK_HOST_MAX 64

enum lock_mode { LOCK_SHARED, LOCK_EXCLUSIVE };

/* Who holds or waits. Identity is (task_id, host, pid, start_time);
 * acquired_at_ms and lease_expires_ms are facts about one holding. */
struct lock_owner {
	int64_t task_id;           /* 0: not a task (e.g. `boxd locks hold`) */
	char host[LOCK_HOST_MAX];  /* boot id of the owner's host */
	int32_t pid;
	uint64_t start_time;       /* /proc/PID/stat field 22 */
	int64_t acquired_at_ms;    /* database clock */
	int64_t lease_expires_ms;  /* database clock; 0 = no lease */
};

struct lock_req {
	char name[LOCK_NAME_MAX];
	enum lock_mode mode;
};

struct lock_holder {
	struct lock_req lock;
	struct lock_owner owner;
};

struct lock_waiter {
	int64_t ticket;
	struct lock_owner owner;
	int64_t expires_ms;        /* database clock */
	struct lock_req *locks;
	size_t n_locks;
};

struct lock_doc {
	struct lock_holder *holders;
	size_t n_holders;
	struct lock_waiter *waiters;  /* ascending ticket order */
	size_t n_waiters;
	int64_t next_ticket;
};

/* The lock that marks its owner's shared holdings as long-running: a full
 * backup holds it (exclusive) and `platform` shared for hours. Each host's
 * full backup holds its own, "type:fullbackup:<host>" (docs/ARCHITECTURE.md
 * "Lock names and their scope"): the marker is this name, or it followed
 * by ':' and anything. */
#define LOCK_LONG_MARKER "type:fullbackup"

/* Flags of lock_doc_acquire_ex(). */
enum {
	LOCK_ACQ_DEFER = 1 << 0,    /* defer to long-running shared holders (above) */
};

/* What a refused request waits for: the first conflict found. */
struct lock_blocker {
	char lock[LOCK_NAME_MAX];
	enum lock_mode mode;        /* the mode the blocker holds or wants */
	bool queued;                /* true: an earlier waiter, not a holder */
	int64_t task_id;            /* 0 if the blocker is not a task */
	int32_t pid;
	char host[LOCK_HOST_MAX];
	int64_t ticket;             /* when queued */
	bool deferred;              /* LOCK_ACQ_DEFER: a long holder; no ticket taken */
};

const char *lock_mode_name(enum lock_mode m);
/* "shared" or "exclusive" → 0; else -EINVAL. */
int lock_mode_from_string(const char *s, enum lock_mode *ret);
bool lock_modes_compatible(enum lock_mode a, enum lock_mode b);

/* A name is 1..127 characters of [A-Za-z0-9] and ":._-@/"
 * (lock_spec_name_valid()). */
bool lock_name_valid(const char *name);

/* Parse "NAME", "NAME:shared" or "NAME:exclusive" (default exclusive;
 * lock_spec_parse()). The name itself may contain ':' (app:wiki). -EINVAL
 * on a bad name. */
int lock_req_parse(const char *spec, struct lock_req *ret);

bool lock_owner_same(const struct lock_owner *a, const struct lock_owner *b);

/* Whether two blockers name the same wait (lock, holder or earlier waiter,
 * queued or deferred): what a waiter is told again only when it changes. */
bool lock_blocker_same(const struct lock_blocker *a, const struct lock_blocker *b);

void lock_doc_init(struct lock_doc *doc);
void lock_doc_release(struct lock_doc *doc);

/* Parse the stored text (format 2, or JSON as boxd wrote before). On failure returns -EBADMSG and describes the problem
 * (with the position) in errbuf; *ret is untouched. A document that is
 * well-formed but breaks an invariant (see lock_doc_verify) is refused the
 * same way, with the invariant's reason. */
int lock_doc_parse(const char *json, struct lock_doc *ret, char *errbuf, size_t errlen);

/* The invariants every document keeps; 0 or -EBADMSG with the first broken
 * one described in errbuf (optional), naming the entry ("holders[2]: ..."):
 *   - nextTicket >= 1;
 *   - every lock name valid, every mode shared or exclusive;
 *   - one entry per owner and name (an upgrade changes the mode in place);
 *   - no name with an exclusive holder and any other holder (two exclusive
 *     holders, or exclusive and shared);
 *   - tickets >= 1, strictly ascending (so no ticket twice), below
 *     nextTicket;
 *   - every ticket asks for one lock or more, each name once.
 * lock_doc_parse() calls it; debug builds (no NDEBUG) also check it after
 * every change made by the functions below and abort() if one broke it,
 * like assert(). */
int lock_doc_verify(const struct lock_doc *doc, char *errbuf, size_t errlen);

/* What can be saved of a document that lock_doc_parse() refuses (the rule
 * of `boxd locks repair`): every holder entry that parses on its own and
 * can stand with those kept before it (of conflicting holders, e.g. two
 * exclusive holders of one name, the first in document order stays: the
 * order of the grants). The queue is dropped (waiters re-queue by
 * themselves). nextTicket is at least min_next_ticket and past every
 * nextTicket and ticket still readable in the text. Text that is not JSON
 * gives an empty document. *ret_kept and *ret_dropped (optional) count the
 * holders kept and the entries (holders and tickets) dropped. 0, or
 * -ENOMEM with *ret untouched. */
int lock_doc_salvage(const char *text, int64_t min_next_ticket, struct lock_doc *ret, int *ret_kept,
		     int *ret_dropped);

/* Serialize for the database row; *ret is malloc'ed. Output is canonical:
 * the same document always gives the same text. -ENOMEM if any allocation
 * fails (nothing is returned then, never a partial document). The text is
 * format 2 (lock_doc_text.c: a line per entry, no JSON), which costs a
 * small fraction of JSON's per entry; lock_doc_parse() reads it and the
 * JSON documents boxd wrote before. */
int lock_doc_format(const struct lock_doc *doc, char **ret);

/* lock_doc_parse() and lock_doc_format() keep, per thread, the last text
 * and document they saw: parsing that text again copies the document, and
 * formatting copies the lines of the leading entries that did not change,
 * so a change costs memory copies per entry rather than parsing and
 * printing (the document itself is read and written whole, as before).
 * This forgets it, and the base of a split document (lock_doc_text.h,
 * format 3) kept by this thread: the next parse and format do the whole
 * work, and the next read of a split document reads its base row (tests
 * compare the two ways). */
void lock_doc_cache_drop(void);

/* The document as canonical JSON, for people and the API (GET /locks,
 * events, `boxd locks`): {"holders":[...],"nextTicket":N,"queue":[...]},
 * keys sorted. lock_doc_parse() reads it too. Same errors as above. */
int lock_doc_format_json(const struct lock_doc *doc, char **ret);

/* A stored text (either format) as that JSON: lock_doc_parse() then
 * lock_doc_format_json(), with their errors. */
int lock_doc_text_as_json(const char *text, char **ret, char *errbuf, size_t errlen);

/* Try to grant `reqs` (n >= 1) to `owner` at `now_ms`.
 *
 * ticket == NULL: try only. Returns 1 and adds the holders if granted; 0 if
 * refused (the document is unchanged).
 * ticket != NULL: a waiting acquire. *ticket is 0 on the first call and is
 * set to the ticket taken; pass it back on each later call. If refused, the
 * ticket is created or kept (and its expiry pushed to now + ttl_ms when less
 * than two thirds of the ttl is left, so that a poll that changes nothing
 * leaves the document byte-identical; its lease is pushed to the owner's
 * lease_expires_ms once a tenth of the lease has passed, as holders' are). If granted, the ticket is removed. A
 * ticket that has expired and been pruned is replaced by a new one at the
 * back of the queue.
 *
 * On refusal, *ret_blocker (if not NULL) says what the request waits for.
 * Returns 1 granted, 0 refused, -EINVAL bad request (n == 0, invalid name,
 * invalid mode, the same name twice), -ENOMEM, -EOVERFLOW if nextTicket is
 * exhausted (only a doctored document). */
int lock_doc_acquire(struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs,
		     size_t n, int64_t *ticket, int64_t now_ms, int64_t ttl_ms,
		     struct lock_blocker *ret_blocker);

/* lock_doc_acquire() with flags (LOCK_ACQ_*). With LOCK_ACQ_DEFER, a
 * waiting request without a live ticket that a long-running shared holder
 * blocks is refused without a ticket:
 * 0 with *ticket set to 0 and the blocker naming that holder, `deferred`
 * true, and the document unchanged (but for pruned state the caller did).
 * lock_doc_acquire() is this with flags 0. */
int lock_doc_acquire_ex(struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs,
			size_t n, int64_t *ticket, int64_t now_ms, int64_t ttl_ms, unsigned flags,
			struct lock_blocker *ret_blocker);

/* Is `name` LOCK_LONG_MARKER, or a host's one ("type:fullbackup:<host>")? */
bool lock_name_is_long_marker(const char *name);

/* Is `h` a long-running shared holding: shared, and its owner holds a
 * lock named LOCK_LONG_MARKER (lock_name_is_long_marker())? */
bool lock_doc_is_long_holder(const struct lock_doc *doc, const struct lock_holder *h);

/* Remove the owner's holdings of `names` (all of its holdings if n == 0).
 * Returns the number of holders removed. */
int lock_doc_unlock(struct lock_doc *doc, const struct lock_owner *owner, const char *const *names, size_t n);

/* Remove every holding and ticket of task `task_id` (> 0), whichever process
 * took them. Returns the number of holders removed. */
int lock_doc_unlock_task(struct lock_doc *doc, int64_t task_id);

/* Remove the ticket `ticket` (a waiter that gives up). Returns 1 if removed. */
int lock_doc_cancel_ticket(struct lock_doc *doc, int64_t ticket);

/* Remove tickets whose expiry is before now_ms. Returns how many. */
int lock_doc_prune_tickets(struct lock_doc *doc, int64_t now_ms);

/* Remove every holder and ticket whose owner `is_dead` says is dead.
 * Returns the number of holders removed (tickets are removed too but not
 * counted). */
typedef bool (*lock_owner_dead_fn)(const struct lock_owner *owner, void *userdata);
int lock_doc_reap(struct lock_doc *doc, lock_owner_dead_fn is_dead, void *userdata);

/* Set lease_expires_ms of every holder and every ticket on `host` to
 * `expires_ms`. Returns the number of entries changed. */
int lock_doc_renew_leases(struct lock_doc *doc, const char *host, int64_t expires_ms);

/* The lease of one owner, renewed by that owner (a worker renews its own:
 * whoever acts on a lock holds its lease). Sets lease_expires_ms to
 * `expires_ms` on the owner's holders whose lease ends before
 * `holders_before_ms` and on its tickets whose lease ends before
 * `tickets_before_ms` (so that a renewal that is not due yet writes
 * nothing). Returns the number of entries changed. */
int lock_doc_renew_owner(struct lock_doc *doc, const struct lock_owner *owner, int64_t expires_ms,
			 int64_t holders_before_ms, int64_t tickets_before_ms);

/* What the document holds for `owner`: *ret_holders and *ret_tickets its
 * entries (optional), and the earliest lease_expires_ms among its holders
 * (0 when it holds nothing or none has a lease). */
void lock_doc_owner_summary(const struct lock_doc *doc, const struct lock_owner *owner, size_t *ret_holders,
			    size_t *ret_tickets, int64_t *ret_first_expiry);

/* The lease-expiry rule. An owner on another host cannot be looked up in
 * /proc from here; only its lease says it is gone: true once
 * lease_expires_ms (the database's clock) is before now_ms. A lease of 0
 * means none, and never expires this way. */
bool lock_owner_lease_expired(const struct lock_owner *owner, int64_t now_ms);

/* Lease stamping: `owner` as its holdings and tickets go into the document
 * at now_ms: lease_expires_ms = now_ms + lease_ms with lease_ms > 0, else 0
 * (no lease; the owner is only reaped by a look at its process). */
struct lock_owner lock_owner_leased(const struct lock_owner *owner, int64_t now_ms, int64_t lease_ms);

/* "Next in line": no ticket earlier than `ticket` (every ticket when 0: a
 * newcomer is behind all of them) of another owner wants a conflicting
 * mode of one of `reqs`. Then only holders stand between the request and
 * its grant, and a release hands it the locks (its waiter polls faster). */
bool lock_doc_next_in_line(const struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs,
			   size_t n, int64_t ticket);

/* Whether task `task_id` (any of its processes) holds `name` or has a
 * ticket that asks for it: it is in line for the lock (platformstart waits
 * for this before the daemon goes on, so no task queued later overtakes
 * it). */
bool lock_doc_task_in_line(const struct lock_doc *doc, int64_t task_id, const char *name);

/* Whether `owner` holds `name` (in any mode); *ret_lease (optional) gets
 * the holding's lease_expires_ms. */
bool lock_doc_holds(const struct lock_doc *doc, const struct lock_owner *owner, const char *name, int64_t *ret_lease);
