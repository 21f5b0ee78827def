/* lock_doc.c — pure lock document logic; see lock_doc.h for the rules. */
#include "lock_doc.h"
#include "lock_doc_text.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lock_mode_name(enum lock_mode m) { return m == LOCK_SHARED ? "shared" : "exclusive"; }

int lock_mode_from_string(const char *s, enum lock_mode *ret)
{
	if (strcmp(s, "shared") == 0)
		*ret = LOCK_SHARED;
	else if (strcmp(s, "exclusive") == 0)
		*ret = LOCK_EXCLUSIVE;
	else
		return -EINVAL;
	return 0;
}

bool lock_modes_compatible(enum lock_mode a, enum lock_mode b) { return a == LOCK_SHARED && b == LOCK_SHARED; }

bool lock_name_valid(const char *name) { return lock_spec_name_valid(name); }

int lock_req_parse(const char *spec, struct lock_req *ret)
{
	struct lock_req r;
	bool shared;
	int e = lock_spec_parse(spec, r.name, &shared);
	if (e < 0)
		return e;
	r.mode = shared ? LOCK_SHARED : LOCK_EXCLUSIVE;
	*ret = r;
	return 0;
}

bool lock_owner_same(const struct lock_owner *a, const struct lock_owner *b)
{
	return a->task_id == b->task_id && a->pid == b->pid && a->start_time == b->start_time &&
	       strcmp(a->host, b->host) == 0;
}

bool lock_blocker_same(const struct lock_blocker *a, const struct lock_blocker *b)
{
	return strcmp(a->lock, b->lock) == 0 && a->task_id == b->task_id && a->pid == b->pid &&
	       a->queued == b->queued && a->deferred == b->deferred && strcmp(a->host, b->host) == 0;
}

void lock_doc_init(struct lock_doc *doc)
{
	*doc = (struct lock_doc){ .next_ticket = 1 };
}

static void waiter_release(struct lock_waiter *w)
{
	free(w->locks);
	w->locks = NULL;
	w->n_locks = 0;
}

void lock_doc_release(struct lock_doc *doc)
{
	if (!doc)
		return;
	for (size_t i = 0; i < doc->n_waiters; i++)
		waiter_release(&doc->waiters[i]);
	free(doc->waiters);
	free(doc->holders);
	lock_doc_init(doc);
}

/* ---- parsing ------------------------------------------------------------ */

static int bad(char *errbuf, size_t errlen, const char *fmt, const char *what, size_t idx)
{
	snprintf(errbuf, errlen, fmt, what, idx);
	return -EBADMSG;
}

static int parse_owner(json_t *o, struct lock_owner *ret, const char *what, size_t idx, char *errbuf, size_t errlen)
{
	json_t *task = json_object_get(o, "task"), *host = json_object_get(o, "host"),
	       *pid = json_object_get(o, "pid"), *start = json_object_get(o, "start"),
	       *at = json_object_get(o, "at"), *lease = json_object_get(o, "lease");
	if (!json_is_integer(task) || !json_is_string(host) || !json_is_integer(pid) || !json_is_integer(start))
		return bad(errbuf, errlen, "%s[%zu]: owner needs integer task, pid, start and string host", what, idx);
	if ((at && !json_is_integer(at)) || (lease && !json_is_integer(lease)))
		return bad(errbuf, errlen, "%s[%zu]: at/lease must be integers", what, idx);
	if (json_integer_value(pid) < 0 || json_integer_value(pid) > INT32_MAX)
		return bad(errbuf, errlen, "%s[%zu]: pid out of range", what, idx);
	if (strlen(json_string_value(host)) >= LOCK_HOST_MAX)
		return bad(errbuf, errlen, "%s[%zu]: host id too long", what, idx);
	*ret = (struct lock_owner){
		.task_id = json_integer_value(task),
		.pid = (int32_t)json_integer_value(pid),
		.start_time = (uint64_t)json_integer_value(start),
		.acquired_at_ms = at ? json_integer_value(at) : 0,
		.lease_expires_ms = lease ? json_integer_value(lease) : 0,
	};
	strcpy(ret->host, json_string_value(host));
	return 0;
}

static int parse_req(json_t *o, struct lock_req *ret, const char *what, size_t idx, char *errbuf, size_t errlen)
{
	json_t *name = json_object_get(o, "name"), *mode = json_object_get(o, "mode");
	if (!json_is_string(name) || !lock_name_valid(json_string_value(name)))
		return bad(errbuf, errlen, "%s[%zu]: missing or invalid lock name", what, idx);
	if (!json_is_string(mode) || lock_mode_from_string(json_string_value(mode), &ret->mode) < 0)
		return bad(errbuf, errlen, "%s[%zu]: mode must be \"shared\" or \"exclusive\"", what, idx);
	strcpy(ret->name, json_string_value(name));
	return 0;
}

static int parse_json(const char *text, struct lock_doc *ret, char *errbuf, size_t errlen);

int lock_doc_parse(const char *text, struct lock_doc *ret, char *errbuf, size_t errlen)
{
	/* Format 2 (lock_doc_text.c) is what lock_doc_format() writes; a
	 * JSON document is what boxd wrote before (and the empty document of
	 * schema migration 1): read both. */
	if (text && strncmp(text, LOCK_DOC_SPLIT_MAGIC, strlen(LOCK_DOC_SPLIT_MAGIC)) == 0) {
		snprintf(errbuf, errlen, "a format 3 document is read with its base row (locks.c)");
		return -EBADMSG;
	}
	if (text && strncmp(text, LOCK_DOC_TEXT_PREFIX, strlen(LOCK_DOC_TEXT_PREFIX)) == 0)
		return lock_doc_text_parse(text, ret, errbuf, errlen);
	return parse_json(text, ret, errbuf, errlen);
}

static int parse_json(const char *text, struct lock_doc *ret, char *errbuf, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(text ? text : "", JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(errbuf, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return -EBADMSG;
	}
	struct lock_doc doc;
	lock_doc_init(&doc);
	int r = -EBADMSG;
	json_t *holders = json_object_get(root, "holders"), *queue = json_object_get(root, "queue"),
	       *next = json_object_get(root, "nextTicket");
	if (!json_is_object(root) || !json_is_array(holders) || !json_is_array(queue) || !json_is_integer(next) ||
	    json_integer_value(next) < 1) {
		snprintf(errbuf, errlen, "expected an object with arrays \"holders\", \"queue\" and integer \"nextTicket\"");
		goto out;
	}
	doc.next_ticket = json_integer_value(next);

	size_t nh = json_array_size(holders), nq = json_array_size(queue);
	doc.holders = calloc(nh ? nh : 1, sizeof(*doc.holders));
	doc.waiters = calloc(nq ? nq : 1, sizeof(*doc.waiters));
	if (!doc.holders || !doc.waiters) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nh; i++) {
		json_t *h = json_array_get(holders, i);
		struct lock_holder *dst = &doc.holders[i];
		if (!json_is_object(h)) {
			bad(errbuf, errlen, "%s[%zu]: not an object", "holders", i);
			goto out;
		}
		if (parse_req(h, &dst->lock, "holders", i, errbuf, errlen) < 0 ||
		    parse_owner(h, &dst->owner, "holders", i, errbuf, errlen) < 0)
			goto out;
		doc.n_holders++;
	}
	for (size_t i = 0; i < nq; i++) {
		json_t *w = json_array_get(queue, i);
		struct lock_waiter *dst = &doc.waiters[i];
		json_t *ticket = json_object_get(w, "ticket"), *expires = json_object_get(w, "expires"),
		       *locks = json_object_get(w, "locks");
		if (!json_is_object(w) || !json_is_integer(ticket) || !json_is_integer(expires) ||
		    !json_is_array(locks) || json_array_size(locks) == 0) {
			bad(errbuf, errlen, "%s[%zu]: needs integer ticket, expires and a non-empty locks array", "queue", i);
			goto out;
		}
		dst->ticket = json_integer_value(ticket);
		dst->expires_ms = json_integer_value(expires);
		if (parse_owner(w, &dst->owner, "queue", i, errbuf, errlen) < 0)
			goto out;
		dst->n_locks = json_array_size(locks);
		dst->locks = calloc(dst->n_locks, sizeof(*dst->locks));
		doc.n_waiters++; /* counted now so lock_doc_release frees it */
		if (!dst->locks) {
			r = -ENOMEM;
			snprintf(errbuf, errlen, "out of memory");
			goto out;
		}
		for (size_t j = 0; j < dst->n_locks; j++)
			if (parse_req(json_array_get(locks, j), &dst->locks[j], "queue", i, errbuf, errlen) < 0)
				goto out;
	}
	r = lock_doc_verify(&doc, errbuf, errlen);
	if (r < 0)
		goto out;
	*ret = doc;
	lock_doc_init(&doc);
	r = 0;
out:
	lock_doc_release(&doc);
	json_decref(root);
	return r;
}

/* ---- invariants --------------------------------------------------------- */

static int broken(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int broken(char *errbuf, size_t errlen, const char *fmt, ...)
{
	if (errbuf && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static bool mode_valid(enum lock_mode m) { return m == LOCK_SHARED || m == LOCK_EXCLUSIVE; }

/* Holder i against every earlier entry, so the message names the later
 * one, which a grant in document order would have refused. O(i): only for
 * the message, or when the index below could not be built. */
static int verify_holder_slow(const struct lock_doc *doc, size_t i, char *errbuf, size_t errlen)
{
	const struct lock_holder *b = &doc->holders[i];
	for (size_t j = 0; j < i; j++) {
			const struct lock_holder *a = &doc->holders[j];
			if (strcmp(a->lock.name, b->lock.name) != 0)
				continue;
			if (lock_owner_same(&a->owner, &b->owner))
				return broken(errbuf, errlen, "holders[%zu]: %s held twice by task %" PRId64 " (pid %d)", i,
					      b->lock.name, b->owner.task_id, (int)b->owner.pid);
			if (!lock_modes_compatible(a->lock.mode, b->lock.mode))
				return broken(errbuf, errlen,
					      "holders[%zu]: %s held %s by task %" PRId64 " while task %" PRId64
					      " holds it %s",
					      i, b->lock.name, lock_mode_name(b->lock.mode), b->owner.task_id,
					      a->owner.task_id, lock_mode_name(a->lock.mode));
	}
	return 0;
}

static uint64_t hash_name(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static uint64_t hash_owner(const struct lock_owner *o, uint64_t h)
{
	uint64_t v[3] = { (uint64_t)o->task_id, (uint64_t)o->pid, o->start_time };
	for (size_t i = 0; i < 3; i++)
		h = (h ^ v[i]) * 1099511628211u;
	return hash_name(o->host, h);
}

/* Two open-addressing indexes of the holders, slot = index + 1 (0: empty):
 * by name (the first holder of each name) and by name and owner. One pass
 * finds the first holder that breaks an invariant in O(n): a later holder
 * of a name breaks one when it or the name's first holder is exclusive
 * (then they conflict: a grant in document order refused it), or when the
 * same owner already holds the name. The message comes from the plain
 * loop, for that one holder. */
static int verify_holders(const struct lock_doc *doc, char *errbuf, size_t errlen)
{
	size_t n = doc->n_holders, cap = 16, invalid = SIZE_MAX, bad = SIZE_MAX;
	for (size_t i = 0; i < n && invalid == SIZE_MAX; i++)
		if (!lock_name_valid(doc->holders[i].lock.name) || !mode_valid(doc->holders[i].lock.mode))
			invalid = i;
	while (cap < 2 * n)
		cap *= 2;
	size_t *by_name = n >= 16 ? calloc(2 * cap, sizeof(*by_name)) : NULL, *by_owner = by_name ? by_name + cap : NULL;
	for (size_t i = 1; !by_name && i < n && i < invalid && bad == SIZE_MAX; i++)
		if (verify_holder_slow(doc, i, NULL, 0) < 0) /* small, or no memory: the plain loop */
			bad = i;
	for (size_t i = 0; by_name && i < n && i < invalid && bad == SIZE_MAX; i++) {
		const struct lock_holder *b = &doc->holders[i];
		uint64_t h = hash_name(b->lock.name, 14695981039346656037u);
		size_t k = (size_t)h & (cap - 1);
		while (by_name[k] && strcmp(doc->holders[by_name[k] - 1].lock.name, b->lock.name) != 0)
			k = (k + 1) & (cap - 1);
		if (by_name[k] && (b->lock.mode == LOCK_EXCLUSIVE ||
				   doc->holders[by_name[k] - 1].lock.mode == LOCK_EXCLUSIVE)) {
			bad = i;
			break;
		}
		if (!by_name[k])
			by_name[k] = i + 1;
		k = (size_t)hash_owner(&b->owner, h) & (cap - 1);
		for (; by_owner[k]; k = (k + 1) & (cap - 1)) {
			const struct lock_holder *a = &doc->holders[by_owner[k] - 1];
			if (strcmp(a->lock.name, b->lock.name) == 0 && lock_owner_same(&a->owner, &b->owner))
				break;
		}
		if (by_owner[k])
			bad = i;
		else
			by_owner[k] = i + 1;
	}
	free(by_name);
	if (bad != SIZE_MAX)
		return verify_holder_slow(doc, bad, errbuf, errlen);
	if (invalid != SIZE_MAX)
		return broken(errbuf, errlen, "holders[%zu]: invalid lock name or mode", invalid);
	return 0;
}

static int verify_queue(const struct lock_doc *doc, char *errbuf, size_t errlen)
{
	int64_t prev = 0;
	for (size_t i = 0; i < doc->n_waiters; i++) {
		const struct lock_waiter *w = &doc->waiters[i];
		if (w->ticket < 1)
			return broken(errbuf, errlen, "queue[%zu]: tickets must ascend from 1 (ticket %" PRId64 ")", i,
				      w->ticket);
		if (w->ticket == prev)
			return broken(errbuf, errlen, "queue[%zu]: tickets must ascend (ticket %" PRId64 " twice)", i,
				      w->ticket);
		if (w->ticket < prev)
			return broken(errbuf, errlen,
				      "queue[%zu]: tickets must ascend (ticket %" PRId64 " after %" PRId64 ")", i,
				      w->ticket, prev);
		if (w->ticket >= doc->next_ticket)
			return broken(errbuf, errlen,
				      "queue[%zu]: ticket %" PRId64 " is not below nextTicket %" PRId64, i, w->ticket,
				      doc->next_ticket);
		prev = w->ticket;
		if (w->n_locks == 0 || !w->locks)
			return broken(errbuf, errlen, "queue[%zu]: a ticket without locks", i);
		for (size_t j = 0; j < w->n_locks; j++) {
			if (!lock_name_valid(w->locks[j].name) || !mode_valid(w->locks[j].mode))
				return broken(errbuf, errlen, "queue[%zu]: invalid lock name or mode", i);
			for (size_t k = 0; k < j; k++)
				if (strcmp(w->locks[k].name, w->locks[j].name) == 0)
					return broken(errbuf, errlen, "queue[%zu]: %s named twice", i,
						      w->locks[j].name);
		}
	}
	return 0;
}

int lock_doc_verify(const struct lock_doc *doc, char *errbuf, size_t errlen)
{
	if (doc->next_ticket < 1)
		return broken(errbuf, errlen, "nextTicket %" PRId64 " is below 1", doc->next_ticket);
	int r = verify_holders(doc, errbuf, errlen);
	return r < 0 ? r : verify_queue(doc, errbuf, errlen);
}

/* After every change, in debug builds: a change that breaks an invariant is
 * a bug in this file, and writing its result back would spread it to every
 * host. Like assert(), compiled out with NDEBUG. */
#ifndef NDEBUG
static void debug_verify(const struct lock_doc *doc)
{
	char why[256];
	if (lock_doc_verify(doc, why, sizeof(why)) < 0) {
		fprintf(stderr, "lock_doc: invariant broken after a change: %s\n", why);
		abort();
	}
}
#else
static void debug_verify(const struct lock_doc *doc) { (void)doc; }
#endif

/* ---- salvage ------------------------------------------------------------ */

int lock_doc_salvage(const char *text, int64_t min_next_ticket, struct lock_doc *ret, int *ret_kept,
		     int *ret_dropped)
{
	if (text && strncmp(text, LOCK_DOC_TEXT_PREFIX, strlen(LOCK_DOC_TEXT_PREFIX)) == 0) {
		struct lock_doc doc;
		lock_doc_init(&doc);
		doc.next_ticket = min_next_ticket > 1 ? min_next_ticket : 1;
		int dropped = 0, r = lock_doc_text_salvage(text, &doc, &dropped);
		if (r < 0) {
			lock_doc_release(&doc);
			return r;
		}
		*ret = doc;
		if (ret_kept)
			*ret_kept = (int)doc.n_holders;
		if (ret_dropped)
			*ret_dropped = dropped;
		return 0;
	}
	json_t *root = json_loads(text ? text : "", 0, NULL);
	json_t *holders = json_object_get(root, "holders"), *queue = json_object_get(root, "queue");
	struct lock_doc doc;
	lock_doc_init(&doc);
	doc.next_ticket = min_next_ticket > 1 ? min_next_ticket : 1;
	int dropped = (int)json_array_size(queue);
	/* A document edited by hand (the usual reason for a repair) may carry
	 * larger numbers than the caller knows of: stay past every ticket
	 * still readable in it too. */
	json_t *next = json_object_get(root, "nextTicket");
	if (json_is_integer(next) && json_integer_value(next) > doc.next_ticket && json_integer_value(next) < INT64_MAX)
		doc.next_ticket = json_integer_value(next);
	for (size_t i = 0; i < json_array_size(queue); i++) {
		json_t *t = json_object_get(json_array_get(queue, i), "ticket");
		if (json_is_integer(t) && json_integer_value(t) >= doc.next_ticket &&
		    json_integer_value(t) < INT64_MAX - 1)
			doc.next_ticket = json_integer_value(t) + 1;
	}
	size_t nh = json_array_size(holders);
	doc.holders = calloc(nh ? nh : 1, sizeof(*doc.holders));
	if (!doc.holders) {
		json_decref(root);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nh; i++) {
		json_t *h = json_array_get(holders, i);
		struct lock_holder *dst = &doc.holders[doc.n_holders];
		char err[16];
		if (!json_is_object(h) || parse_req(h, &dst->lock, "holders", i, err, sizeof(err)) < 0 ||
		    parse_owner(h, &dst->owner, "holders", i, err, sizeof(err)) < 0) {
			dropped++;
			continue;
		}
		/* Kept only if it can stand with those kept before it. */
		doc.n_holders++;
		if (lock_doc_verify(&doc, NULL, 0) < 0) {
			doc.n_holders--;
			dropped++;
		}
	}
	json_decref(root);
	*ret = doc;
	if (ret_kept)
		*ret_kept = (int)doc.n_holders;
	if (ret_dropped)
		*ret_dropped = dropped;
	return 0;
}

/* ---- formatting --------------------------------------------------------- */

/* Every jansson call can fail for want of memory; each one is checked, so
 * a failure gives -ENOMEM and never a document that lost a holder (a lock
 * granted twice once it is written back). json_object_set_new() and
 * json_array_append_new() take a NULL value (and free the value on
 * failure), so a failed constructor shows up as a failed set. */
static int owner_to_json(json_t *o, const struct lock_owner *ow)
{
	if (json_object_set_new(o, "task", json_integer(ow->task_id)) < 0 ||
	    json_object_set_new(o, "host", json_string(ow->host)) < 0 ||
	    json_object_set_new(o, "pid", json_integer(ow->pid)) < 0 ||
	    json_object_set_new(o, "start", json_integer((json_int_t)ow->start_time)) < 0 ||
	    json_object_set_new(o, "at", json_integer(ow->acquired_at_ms)) < 0 ||
	    json_object_set_new(o, "lease", json_integer(ow->lease_expires_ms)) < 0)
		return -ENOMEM;
	return 0;
}

static json_t *req_to_json(const struct lock_req *r)
{
	return json_pack("{s:s, s:s}", "name", r->name, "mode", lock_mode_name(r->mode));
}

static json_t *holder_to_json(const struct lock_holder *h)
{
	json_t *o = req_to_json(&h->lock);
	if (!o || owner_to_json(o, &h->owner) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *waiter_to_json(const struct lock_waiter *w)
{
	json_t *o = json_object(), *locks = json_array();
	if (json_object_set_new(o, "locks", locks) < 0)
		goto fail;
	for (size_t j = 0; j < w->n_locks; j++)
		if (json_array_append_new(locks, req_to_json(&w->locks[j])) < 0)
			goto fail;
	if (json_object_set_new(o, "ticket", json_integer(w->ticket)) < 0 ||
	    json_object_set_new(o, "expires", json_integer(w->expires_ms)) < 0 || owner_to_json(o, &w->owner) < 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *doc_to_json(const struct lock_doc *doc)
{
	/* Our own references to the arrays until the end (json_object_set
	 * does not steal), so none leaks whichever call fails. */
	json_t *root = json_object(), *holders = json_array(), *queue = json_array();
	if (!root || !holders || !queue || json_object_set(root, "holders", holders) < 0 ||
	    json_object_set(root, "queue", queue) < 0 ||
	    json_object_set_new(root, "nextTicket", json_integer(doc->next_ticket)) < 0)
		goto fail;
	for (size_t i = 0; i < doc->n_holders; i++)
		if (json_array_append_new(holders, holder_to_json(&doc->holders[i])) < 0)
			goto fail;
	for (size_t i = 0; i < doc->n_waiters; i++)
		if (json_array_append_new(queue, waiter_to_json(&doc->waiters[i])) < 0)
			goto fail;
	json_decref(holders);
	json_decref(queue);
	return root;
fail:
	json_decref(holders);
	json_decref(queue);
	json_decref(root);
	return NULL;
}

/* The text is collected by our own callback rather than json_dumps():
 * jansson 2.14 ignores a failed write of an object key (dump_string's
 * result is not checked), so json_dumps() can return success with a key
 * missing. A failed append here is latched and reported. The buffer comes
 * from jansson's allocator, like json_dumps()'s result (free() it). */
struct text_buf {
	char *data;
	size_t len, cap;
	bool failed;
};

static int text_append(const char *bytes, size_t size, void *userdata)
{
	struct text_buf *b = userdata;
	if (b->failed)
		return -1;
	if (b->cap - b->len <= size) {
		json_malloc_t alloc;
		json_free_t release;
		json_get_alloc_funcs(&alloc, &release);
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len <= size) {
			if (cap > SIZE_MAX / 2)
				goto fail;
			cap *= 2;
		}
		char *grown = alloc(cap);
		if (!grown)
			goto fail;
		if (b->len)
			memcpy(grown, b->data, b->len);
		release(b->data);
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, bytes, size);
	b->len += size;
	b->data[b->len] = '\0';
	return 0;
fail:
	b->failed = true;
	return -1;
}

int lock_doc_format(const struct lock_doc *doc, char **ret) { return lock_doc_text_format(doc, ret); }

int lock_doc_text_as_json(const char *text, char **ret, char *errbuf, size_t errlen)
{
	struct lock_doc doc;
	int r = lock_doc_parse(text, &doc, errbuf, errlen);
	if (r < 0)
		return r;
	r = lock_doc_format_json(&doc, ret);
	lock_doc_release(&doc);
	return r;
}

int lock_doc_format_json(const struct lock_doc *doc, char **ret)
{
	json_t *root = doc_to_json(doc);
	if (!root)
		return -ENOMEM;
	struct text_buf b = { 0 };
	int r = json_dump_callback(root, text_append, &b, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (r < 0 || b.failed || !b.data) {
		json_free_t release;
		json_get_alloc_funcs(NULL, &release);
		release(b.data);
		return -ENOMEM;
	}
	*ret = b.data;
	return 0;
}

/* ---- acquiring ---------------------------------------------------------- */

static struct lock_waiter *find_ticket(struct lock_doc *doc, int64_t ticket, const struct lock_owner *owner)
{
	for (size_t i = 0; i < doc->n_waiters; i++)
		if (doc->waiters[i].ticket == ticket && lock_owner_same(&doc->waiters[i].owner, owner))
			return &doc->waiters[i];
	return NULL;
}

/* The owner's ticket for exactly these locks: a request made again
 * without its ticket, because the answer to the change that queued it was
 * lost (a connection lost during COMMIT, a broker's round retried). One
 * owner waits for one request at a time; a second ticket would stand in
 * the queue, unused, until it expired. */
static struct lock_waiter *find_same_request(struct lock_doc *doc, const struct lock_owner *owner,
					     const struct lock_req *reqs, size_t n)
{
	for (size_t i = 0; i < doc->n_waiters; i++) {
		struct lock_waiter *w = &doc->waiters[i];
		if (w->n_locks != n || !lock_owner_same(&w->owner, owner))
			continue;
		bool same = true;
		for (size_t k = 0; k < n && same; k++)
			same = strcmp(w->locks[k].name, reqs[k].name) == 0 && w->locks[k].mode == reqs[k].mode;
		if (same)
			return w;
	}
	return NULL;
}

static void remove_waiter_at(struct lock_doc *doc, size_t i)
{
	waiter_release(&doc->waiters[i]);
	memmove(&doc->waiters[i], &doc->waiters[i + 1], (doc->n_waiters - i - 1) * sizeof(*doc->waiters));
	doc->n_waiters--;
}

static void blocker_from(struct lock_blocker *b, const char *name, enum lock_mode mode, const struct lock_owner *o,
			 bool queued, int64_t ticket)
{
	if (!b)
		return;
	*b = (struct lock_blocker){ .mode = mode, .queued = queued, .task_id = o->task_id, .pid = o->pid,
				    .ticket = ticket };
	snprintf(b->lock, sizeof(b->lock), "%s", name);
	snprintf(b->host, sizeof(b->host), "%s", o->host);
}

/* Whether `req` of `owner` conflicts with a holder; fills the blocker. */
static bool conflicts_with_holder(const struct lock_doc *doc, const struct lock_owner *owner,
				  const struct lock_req *req, struct lock_blocker *b)
{
	for (size_t i = 0; i < doc->n_holders; i++) {
		const struct lock_holder *h = &doc->holders[i];
		if (strcmp(h->lock.name, req->name) != 0 || lock_owner_same(&h->owner, owner))
			continue;
		if (!lock_modes_compatible(h->lock.mode, req->mode)) {
			blocker_from(b, h->lock.name, h->lock.mode, &h->owner, false, 0);
			return true;
		}
	}
	return false;
}

/* Whether `req` conflicts with a ticket earlier than `my_ticket` (all
 * tickets when my_ticket is 0: a newcomer is behind everyone). */
static bool conflicts_with_queue(const struct lock_doc *doc, const struct lock_owner *owner,
				 const struct lock_req *req, int64_t my_ticket, struct lock_blocker *b)
{
	for (size_t i = 0; i < doc->n_waiters; i++) {
		const struct lock_waiter *w = &doc->waiters[i];
		if (my_ticket && w->ticket >= my_ticket)
			break;
		if (lock_owner_same(&w->owner, owner))
			continue;
		for (size_t j = 0; j < w->n_locks; j++) {
			if (strcmp(w->locks[j].name, req->name) == 0 &&
			    !lock_modes_compatible(w->locks[j].mode, req->mode)) {
				blocker_from(b, req->name, w->locks[j].mode, &w->owner, true, w->ticket);
				return true;
			}
		}
	}
	return false;
}

/* Whether `owner` already holds `req->name` in `req->mode` or a stronger
 * mode. Such a request is already satisfied: it is granted without looking
 * at the queue, so a repeated request stays idempotent even while others
 * wait for the name (they wait for this owner anyway). */
static bool already_held(const struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *req)
{
	for (size_t i = 0; i < doc->n_holders; i++) {
		const struct lock_holder *h = &doc->holders[i];
		if (strcmp(h->lock.name, req->name) == 0 && lock_owner_same(&h->owner, owner))
			return h->lock.mode == LOCK_EXCLUSIVE || req->mode == LOCK_SHARED;
	}
	return false;
}

static int validate_reqs(const struct lock_req *reqs, size_t n)
{
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!lock_name_valid(reqs[i].name) || (reqs[i].mode != LOCK_SHARED && reqs[i].mode != LOCK_EXCLUSIVE))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(reqs[i].name, reqs[j].name) == 0)
				return -EINVAL;
	}
	return 0;
}

static int grant(struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
		 int64_t now_ms)
{
	struct lock_holder *grown = realloc(doc->holders, (doc->n_holders + n) * sizeof(*doc->holders));
	if (!grown)
		return -ENOMEM;
	doc->holders = grown;
	for (size_t i = 0; i < n; i++) {
		/* Already held by this owner: keep one entry, with the stronger mode. */
		struct lock_holder *mine = NULL;
		for (size_t k = 0; k < doc->n_holders; k++)
			if (strcmp(doc->holders[k].lock.name, reqs[i].name) == 0 &&
			    lock_owner_same(&doc->holders[k].owner, owner))
				mine = &doc->holders[k];
		if (mine) {
			if (reqs[i].mode == LOCK_EXCLUSIVE)
				mine->lock.mode = LOCK_EXCLUSIVE;
			continue;
		}
		struct lock_holder *h = &doc->holders[doc->n_holders++];
		h->lock = reqs[i];
		h->owner = *owner;
		h->owner.acquired_at_ms = now_ms;
	}
	return 0;
}

static int enqueue(struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
		   int64_t expires_ms, int64_t *ret_ticket)
{
	if (doc->next_ticket == INT64_MAX) /* only a doctored document gets here */
		return -EOVERFLOW;
	struct lock_waiter *grown = realloc(doc->waiters, (doc->n_waiters + 1) * sizeof(*doc->waiters));
	if (!grown)
		return -ENOMEM;
	doc->waiters = grown;
	struct lock_req *copy = malloc(n * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, reqs, n * sizeof(*copy));
	struct lock_waiter *w = &doc->waiters[doc->n_waiters++];
	*w = (struct lock_waiter){ .ticket = doc->next_ticket++, .owner = *owner, .expires_ms = expires_ms,
				   .locks = copy, .n_locks = n };
	*ret_ticket = w->ticket;
	return 0;
}

static bool owner_holds_any(const struct lock_doc *doc, const struct lock_owner *owner)
{
	for (size_t i = 0; i < doc->n_holders; i++)
		if (lock_owner_same(&doc->holders[i].owner, owner))
			return true;
	return false;
}

bool lock_name_is_long_marker(const char *name)
{
	size_t len = strlen(LOCK_LONG_MARKER);
	return strncmp(name, LOCK_LONG_MARKER, len) == 0 && (name[len] == '\0' || name[len] == ':');
}

bool lock_doc_is_long_holder(const struct lock_doc *doc, const struct lock_holder *h)
{
	if (h->lock.mode != LOCK_SHARED)
		return false;
	for (size_t i = 0; i < doc->n_holders; i++)
		if (lock_name_is_long_marker(doc->holders[i].lock.name) &&
		    lock_owner_same(&doc->holders[i].owner, &h->owner))
			return true;
	return false;
}

/* A long-running shared holder that conflicts with one of `reqs`, or NULL. */
static const struct lock_holder *long_blocker(const struct lock_doc *doc, const struct lock_owner *owner,
					      const struct lock_req *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < doc->n_holders; k++) {
			const struct lock_holder *h = &doc->holders[k];
			if (strcmp(h->lock.name, reqs[i].name) != 0 || lock_owner_same(&h->owner, owner) ||
			    lock_modes_compatible(h->lock.mode, reqs[i].mode))
				continue;
			if (lock_doc_is_long_holder(doc, h))
				return h;
		}
	}
	return NULL;
}

static int acquire(struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
		   int64_t *ticket, int64_t now_ms, int64_t ttl_ms, unsigned flags, struct lock_blocker *ret_blocker)
{
	int r = validate_reqs(reqs, n);
	if (r < 0)
		return r;

	struct lock_waiter *mine = ticket && *ticket ? find_ticket(doc, *ticket, owner) : NULL;
	if (ticket && !*ticket && !(flags & LOCK_ACQ_DEFER))
		mine = find_same_request(doc, owner, reqs, n);
	int64_t my_ticket = mine ? mine->ticket : 0;

	/* An owner that already holds locks (a full backup holding `platform`
	 * while it takes `app:X` for one app after another) waits only for
	 * holders, never behind the queue. Otherwise the queue could close a
	 * cycle: the backup queued behind an app task for app:X, the app task
	 * queued behind an update wanting `platform` exclusive, the update
	 * waiting for the backup's shared `platform`. Holders never wait for
	 * tickets, so no such cycle can form. */
	bool holds_something = owner_holds_any(doc, owner);
	bool blocked = false;
	for (size_t i = 0; i < n && !blocked; i++)
		blocked = !already_held(doc, owner, &reqs[i]) &&
			  (conflicts_with_holder(doc, owner, &reqs[i], ret_blocker) ||
			   (!holds_something && conflicts_with_queue(doc, owner, &reqs[i], my_ticket, ret_blocker)));

	if (!blocked) {
		r = grant(doc, owner, reqs, n, now_ms);
		if (r < 0)
			return r;
		if (mine)
			remove_waiter_at(doc, (size_t)(mine - doc->waiters));
		return 1;
	}
	if (!ticket)
		return 0;
	const struct lock_holder *lh;
	if ((flags & LOCK_ACQ_DEFER) && !mine && (lh = long_blocker(doc, owner, reqs, n))) {
		/* Wait outside the queue: nobody queues behind us. */
		blocker_from(ret_blocker, lh->lock.name, lh->lock.mode, &lh->owner, false, 0);
		if (ret_blocker)
			ret_blocker->deferred = true;
		*ticket = 0;
		return 0;
	}
	if (mine) {
		*ticket = mine->ticket;
		/* Compared without subtracting: expires_ms comes from the stored
		 * document and may be anything. The ticket's lease (another
		 * host's reason to reap it) is refreshed once a tenth of it has
		 * passed, as a holder's renewal thread does: a commit stall
		 * that a holder rides out must not get a waiter reaped. */
		int64_t lease = owner->lease_expires_ms > now_ms ? owner->lease_expires_ms - now_ms : 0;
		if (mine->expires_ms < now_ms + ttl_ms * 2 / 3 ||
		    (lease > 0 && mine->owner.lease_expires_ms < now_ms + lease - lease / 10)) {
			mine->expires_ms = now_ms + ttl_ms;
			if (lease > 0)
				mine->owner.lease_expires_ms = owner->lease_expires_ms;
		}
		return 0;
	}
	r = enqueue(doc, owner, reqs, n, now_ms + ttl_ms, ticket);
	return r < 0 ? r : 0;
}

int lock_doc_acquire(struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs, size_t n,
		     int64_t *ticket, int64_t now_ms, int64_t ttl_ms, struct lock_blocker *ret_blocker)
{
	int r = acquire(doc, owner, reqs, n, ticket, now_ms, ttl_ms, 0, ret_blocker);
	debug_verify(doc);
	return r;
}

int lock_doc_acquire_ex(struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs,
			size_t n, int64_t *ticket, int64_t now_ms, int64_t ttl_ms, unsigned flags,
			struct lock_blocker *ret_blocker)
{
	int r = acquire(doc, owner, reqs, n, ticket, now_ms, ttl_ms, flags, ret_blocker);
	debug_verify(doc);
	return r;
}

/* ---- releasing and reaping ---------------------------------------------- */

typedef bool (*holder_pred)(const struct lock_holder *h, const void *ctx);
typedef bool (*waiter_pred)(const struct lock_waiter *w, const void *ctx);

static int remove_holders_if(struct lock_doc *doc, holder_pred pred, const void *ctx)
{
	size_t kept = 0;
	for (size_t i = 0; i < doc->n_holders; i++)
		if (!pred(&doc->holders[i], ctx))
			doc->holders[kept++] = doc->holders[i];
	int removed = (int)(doc->n_holders - kept);
	doc->n_holders = kept;
	debug_verify(doc);
	return removed;
}

static int remove_waiters_if(struct lock_doc *doc, waiter_pred pred, const void *ctx)
{
	size_t kept = 0;
	for (size_t i = 0; i < doc->n_waiters; i++) {
		if (pred(&doc->waiters[i], ctx))
			waiter_release(&doc->waiters[i]);
		else
			doc->waiters[kept++] = doc->waiters[i];
	}
	int removed = (int)(doc->n_waiters - kept);
	doc->n_waiters = kept;
	debug_verify(doc);
	return removed;
}

struct release_ctx {
	const struct lock_owner *owner;
	const char *const *names;
	size_t n;
};

static bool holder_matches_release(const struct lock_holder *h, const void *vctx)
{
	const struct release_ctx *ctx = vctx;
	if (!lock_owner_same(&h->owner, ctx->owner))
		return false;
	if (ctx->n == 0)
		return true;
	for (size_t i = 0; i < ctx->n; i++)
		if (strcmp(h->lock.name, ctx->names[i]) == 0)
			return true;
	return false;
}

int lock_doc_unlock(struct lock_doc *doc, const struct lock_owner *owner, const char *const *names, size_t n)
{
	struct release_ctx ctx = { owner, names, n };
	return remove_holders_if(doc, holder_matches_release, &ctx);
}

static bool holder_of_task(const struct lock_holder *h, const void *ctx)
{
	return h->owner.task_id == *(const int64_t *)ctx;
}

static bool waiter_of_task(const struct lock_waiter *w, const void *ctx)
{
	return w->owner.task_id == *(const int64_t *)ctx;
}

int lock_doc_unlock_task(struct lock_doc *doc, int64_t task_id)
{
	if (task_id <= 0)
		return 0;
	remove_waiters_if(doc, waiter_of_task, &task_id);
	return remove_holders_if(doc, holder_of_task, &task_id);
}

static bool waiter_has_ticket(const struct lock_waiter *w, const void *ctx)
{
	return w->ticket == *(const int64_t *)ctx;
}

int lock_doc_cancel_ticket(struct lock_doc *doc, int64_t ticket)
{
	return remove_waiters_if(doc, waiter_has_ticket, &ticket);
}

static bool waiter_expired(const struct lock_waiter *w, const void *ctx)
{
	return w->expires_ms < *(const int64_t *)ctx;
}

int lock_doc_prune_tickets(struct lock_doc *doc, int64_t now_ms)
{
	return remove_waiters_if(doc, waiter_expired, &now_ms);
}

struct reap_ctx {
	lock_owner_dead_fn is_dead;
	void *userdata;
};

static bool holder_dead(const struct lock_holder *h, const void *vctx)
{
	const struct reap_ctx *ctx = vctx;
	return ctx->is_dead(&h->owner, ctx->userdata);
}

static bool waiter_dead(const struct lock_waiter *w, const void *vctx)
{
	const struct reap_ctx *ctx = vctx;
	return ctx->is_dead(&w->owner, ctx->userdata);
}

int lock_doc_reap(struct lock_doc *doc, lock_owner_dead_fn is_dead, void *userdata)
{
	struct reap_ctx ctx = { is_dead, userdata };
	remove_waiters_if(doc, waiter_dead, &ctx);
	return remove_holders_if(doc, holder_dead, &ctx);
}

int lock_doc_renew_leases(struct lock_doc *doc, const char *host, int64_t expires_ms)
{
	int n = 0;
	for (size_t i = 0; i < doc->n_holders; i++) {
		if (strcmp(doc->holders[i].owner.host, host) == 0 && doc->holders[i].owner.lease_expires_ms != expires_ms) {
			doc->holders[i].owner.lease_expires_ms = expires_ms;
			n++;
		}
	}
	/* A waiter's ticket carries its host's lease too: another host reaps
	 * it (and may fail its task) only once the host stopped renewing. */
	for (size_t i = 0; i < doc->n_waiters; i++) {
		if (strcmp(doc->waiters[i].owner.host, host) == 0 && doc->waiters[i].owner.lease_expires_ms != expires_ms) {
			doc->waiters[i].owner.lease_expires_ms = expires_ms;
			n++;
		}
	}
	debug_verify(doc);
	return n;
}

int lock_doc_renew_owner(struct lock_doc *doc, const struct lock_owner *owner, int64_t expires_ms,
			 int64_t holders_before_ms, int64_t tickets_before_ms)
{
	int n = 0;
	for (size_t i = 0; i < doc->n_holders; i++) {
		struct lock_owner *o = &doc->holders[i].owner;
		if (lock_owner_same(o, owner) && o->lease_expires_ms < holders_before_ms) {
			o->lease_expires_ms = expires_ms;
			n++;
		}
	}
	for (size_t i = 0; i < doc->n_waiters; i++) {
		struct lock_owner *o = &doc->waiters[i].owner;
		if (lock_owner_same(o, owner) && o->lease_expires_ms < tickets_before_ms) {
			o->lease_expires_ms = expires_ms;
			n++;
		}
	}
	debug_verify(doc);
	return n;
}

void lock_doc_owner_summary(const struct lock_doc *doc, const struct lock_owner *owner, size_t *ret_holders,
			    size_t *ret_tickets, int64_t *ret_first_expiry)
{
	size_t holders = 0, tickets = 0;
	int64_t first = 0;
	for (size_t i = 0; i < doc->n_holders; i++) {
		const struct lock_owner *o = &doc->holders[i].owner;
		if (!lock_owner_same(o, owner))
			continue;
		holders++;
		if (o->lease_expires_ms > 0 && (first == 0 || o->lease_expires_ms < first))
			first = o->lease_expires_ms;
	}
	for (size_t i = 0; i < doc->n_waiters; i++)
		tickets += lock_owner_same(&doc->waiters[i].owner, owner);
	if (ret_holders)
		*ret_holders = holders;
	if (ret_tickets)
		*ret_tickets = tickets;
	if (ret_first_expiry)
		*ret_first_expiry = first;
}

bool lock_doc_holds(const struct lock_doc *doc, const struct lock_owner *owner, const char *name, int64_t *ret_lease)
{
	for (size_t i = 0; i < doc->n_holders; i++) {
		const struct lock_holder *h = &doc->holders[i];
		if (strcmp(h->lock.name, name) == 0 && lock_owner_same(&h->owner, owner)) {
			if (ret_lease)
				*ret_lease = h->owner.lease_expires_ms;
			return true;
		}
	}
	return false;
}

bool lock_owner_lease_expired(const struct lock_owner *owner, int64_t now_ms)
{
	return owner->lease_expires_ms > 0 && owner->lease_expires_ms < now_ms;
}

struct lock_owner lock_owner_leased(const struct lock_owner *owner, int64_t now_ms, int64_t lease_ms)
{
	struct lock_owner o = *owner;
	o.lease_expires_ms = lease_ms > 0 ? now_ms + lease_ms : 0;
	return o;
}

bool lock_doc_next_in_line(const struct lock_doc *doc, const struct lock_owner *owner, const struct lock_req *reqs,
			   size_t n, int64_t ticket)
{
	for (size_t k = 0; k < n; k++)
		if (conflicts_with_queue(doc, owner, &reqs[k], ticket, NULL))
			return false;
	return true;
}

bool lock_doc_task_in_line(const struct lock_doc *doc, int64_t task_id, const char *name)
{
	for (size_t i = 0; i < doc->n_holders; i++)
		if (doc->holders[i].owner.task_id == task_id && strcmp(doc->holders[i].lock.name, name) == 0)
			return true;
	for (size_t i = 0; i < doc->n_waiters; i++) {
		const struct lock_waiter *w = &doc->waiters[i];
		for (size_t k = 0; w->owner.task_id == task_id && k < w->n_locks; k++)
			if (strcmp(w->locks[k].name, name) == 0)
				return true;
	}
	return false;
}
