/* lock_doc_text.c — the lock document's stored form, format 2: a fixed
 * layout written and read without a JSON tree (see lock_doc.h,
 * lock_doc_format()).
 *
 * Why: with jansson a change cost ~3 µs per entry of the document to parse
 * and format (objects, key hashing and sorting, one malloc per value), so a
 * box holding 1,000 locks paid milliseconds for every acquire of an
 * unrelated name (issue 18). This form is a line per entry, fields in a
 * fixed order, hosts (36-character boot ids) written once:
 *
 *	boxd-locks 2 NEXT_TICKET
 *	@HOST                      one per host, in order of first use: index 0, 1, ...
 *	H NAME MODE TASK HOST_INDEX PID START AT LEASE
 *	T TICKET EXPIRES TASK HOST_INDEX PID START AT LEASE N NAME MODE [NAME MODE ...]
 *
 * MODE is `s` (shared) or `x` (exclusive); numbers are decimal; every line
 * ends in '\n'. Lock names cannot hold a space (lock_name_valid); a host is
 * written with every byte outside '!'..'~' and '%' as %XX. Holders come in
 * document order, then tickets in queue order, so the text is canonical.
 */
#include "lock_doc_text.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the last document, per thread ---------------------------------------
 *
 * A change reads the row, parses it, changes an entry or two and formats
 * it again, so every entry was parsed and formatted once per change: the
 * cost grew with the document (issue 18's K sweep). Each thread keeps the
 * last text it parsed or formatted with its document and where each line
 * starts: a parse of that same text copies the document instead, and a
 * format copies the lines of the leading entries that did not change. A
 * process that is alone on the document (or the only one changing it
 * between two of its own changes) then pays memory copies per entry, not
 * parsing and printing; text another process wrote is parsed as before.
 * A copied document is not verified again: it is the one this thread
 * verified when it parsed the text, or the one it formatted (its own
 * change, checked by debug builds after every change).
 */
struct cache {
	char *text;
	size_t len;
	struct lock_doc doc;
	size_t *h_off, *t_off; /* start of each holder / ticket line, and one past the last */
	char (*hosts)[LOCK_HOST_MAX];
	size_t n_hosts;
	char *split_text; /* the last format 3 text parsed (and verified) or formatted */
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_ready;

static void cache_clear(struct cache *c)
{
	free(c->split_text);
	free(c->text);
	lock_doc_release(&c->doc);
	free(c->h_off);
	free(c->hosts);
	*c = (struct cache){ 0 };
	lock_doc_init(&c->doc);
}

static void cache_destroy(void *v)
{
	cache_clear(v);
	free(v);
}

static void cache_key_init(void) { cache_ready = pthread_key_create(&cache_key, cache_destroy) == 0; }

static struct cache *cache_get(void)
{
	pthread_once(&cache_once, cache_key_init);
	if (!cache_ready)
		return NULL;
	struct cache *c = pthread_getspecific(cache_key);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c && pthread_setspecific(cache_key, c) != 0) {
			free(c);
			c = NULL;
		}
		if (c)
			lock_doc_init(&c->doc);
	}
	return c;
}

static int doc_copy(const struct lock_doc *src, struct lock_doc *ret)
{
	struct lock_doc d;
	lock_doc_init(&d);
	d.next_ticket = src->next_ticket;
	d.holders = malloc((src->n_holders ? src->n_holders : 1) * sizeof(*d.holders));
	d.waiters = malloc((src->n_waiters ? src->n_waiters : 1) * sizeof(*d.waiters));
	if (!d.holders || !d.waiters)
		goto nomem;
	if (src->n_holders)
		memcpy(d.holders, src->holders, src->n_holders * sizeof(*d.holders));
	d.n_holders = src->n_holders;
	for (size_t i = 0; i < src->n_waiters; i++) {
		const struct lock_waiter *w = &src->waiters[i];
		d.waiters[i] = *w;
		d.waiters[i].locks = malloc(w->n_locks * sizeof(*w->locks));
		if (!d.waiters[i].locks)
			goto nomem;
		memcpy(d.waiters[i].locks, w->locks, w->n_locks * sizeof(*w->locks));
		d.n_waiters++;
	}
	*ret = d;
	return 0;
nomem:
	lock_doc_release(&d);
	return -ENOMEM;
}

static bool waiter_same(const struct lock_waiter *a, const struct lock_waiter *b)
{
	return a->ticket == b->ticket && a->expires_ms == b->expires_ms && a->n_locks == b->n_locks &&
	       memcmp(&a->owner, &b->owner, sizeof(a->owner)) == 0 &&
	       memcmp(a->locks, b->locks, a->n_locks * sizeof(*a->locks)) == 0;
}

/* Keep `text` (copied), `doc` (copied), its line offsets (taken: h_off has
 * n_holders + n_waiters + 2 entries, t_off = h_off + n_holders + 1) and
 * its hosts (taken). Without memory the cache is just empty. */
static void cache_fill(struct cache *c, const char *text, size_t len, const struct lock_doc *doc, size_t *h_off,
		       char (*hosts)[LOCK_HOST_MAX], size_t n_hosts)
{
	char *split_text = c->split_text;
	c->split_text = NULL;
	cache_clear(c);
	c->split_text = split_text;
	c->text = malloc(len + 1);
	if (!c->text || doc_copy(doc, &c->doc) < 0) {
		free(h_off);
		free(hosts);
		cache_clear(c);
		return;
	}
	memcpy(c->text, text, len + 1);
	c->len = len;
	c->h_off = h_off;
	c->t_off = h_off + doc->n_holders + 1;
	c->hosts = hosts;
	c->n_hosts = n_hosts;
}

/* The cache after a format that reused it: the text is copied, but of
 * the document only the entries after the `same_h` holders and `same_t`
 * tickets that did not change (the copies are what made a change cost
 * memory traffic per entry). Takes h_off and hosts. */
static void cache_update(struct cache *c, const char *text, size_t len, const struct lock_doc *doc, size_t same_h,
			 size_t same_t, size_t *h_off, char (*hosts)[LOCK_HOST_MAX])
{
	char *t = realloc(c->text, len + 1);
	struct lock_holder *hv = realloc(c->doc.holders, (doc->n_holders ? doc->n_holders : 1) * sizeof(*hv));
	if (t)
		c->text = t;
	if (hv)
		c->doc.holders = hv;
	for (size_t i = same_t; i < c->doc.n_waiters; i++)
		free(c->doc.waiters[i].locks);
	c->doc.n_waiters = same_t;
	struct lock_waiter *wv = realloc(c->doc.waiters, (doc->n_waiters ? doc->n_waiters : 1) * sizeof(*wv));
	if (wv)
		c->doc.waiters = wv;
	if (!t || !hv || !wv)
		goto drop;
	memcpy(c->text, text, len + 1);
	c->len = len;
	if (doc->n_holders > same_h)
		memcpy(c->doc.holders + same_h, doc->holders + same_h, (doc->n_holders - same_h) * sizeof(*hv));
	c->doc.n_holders = doc->n_holders;
	for (size_t i = same_t; i < doc->n_waiters; i++) {
		const struct lock_waiter *w = &doc->waiters[i];
		c->doc.waiters[i] = *w;
		c->doc.waiters[i].locks = malloc(w->n_locks * sizeof(*w->locks));
		if (!c->doc.waiters[i].locks)
			goto drop;
		memcpy(c->doc.waiters[i].locks, w->locks, w->n_locks * sizeof(*w->locks));
		c->doc.n_waiters++;
	}
	c->doc.next_ticket = doc->next_ticket;
	free(c->h_off);
	free(c->hosts);
	c->h_off = h_off;
	c->t_off = h_off + doc->n_holders + 1;
	c->hosts = hosts; /* the same hosts as before (the reuse's condition) */
	return;
drop:
	free(h_off);
	free(hosts);
	cache_clear(c);
}

static void base_drop(void);

void lock_doc_cache_drop(void)
{
	struct cache *c = cache_get();
	if (c)
		cache_clear(c);
	base_drop();
}

static void split_seen(struct cache *c, const char *text)
{
	if (!c)
		return;
	free(c->split_text);
	c->split_text = strdup(text);
}

/* ---- writing -------------------------------------------------------------- */

struct out {
	char *data;
	size_t len, cap;
	bool failed;
};

static bool out_reserve(struct out *o, size_t more)
{
	if (o->failed)
		return false;
	if (o->cap - o->len > more)
		return true;
	size_t cap = o->cap ? o->cap : 256;
	while (cap - o->len <= more) {
		if (cap > SIZE_MAX / 2) {
			o->failed = true;
			return false;
		}
		cap *= 2;
	}
	char *grown = realloc(o->data, cap);
	if (!grown) {
		o->failed = true;
		return false;
	}
	o->data = grown;
	o->cap = cap;
	return true;
}

static void out_bytes(struct out *o, const char *s, size_t n)
{
	if (!out_reserve(o, n))
		return;
	memcpy(o->data + o->len, s, n);
	o->len += n;
	o->data[o->len] = '\0';
}

static void out_str(struct out *o, const char *s) { out_bytes(o, s, strlen(s)); }

static void out_u64(struct out *o, uint64_t v)
{
	/* Two digits per division: most of a line is numbers. */
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				       "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				       "8081828384858687888990919293949596979899";
	char buf[24];
	size_t i = sizeof(buf);
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		buf[--i] = pairs[d + 1];
		buf[--i] = pairs[d];
	}
	if (v >= 10) {
		buf[--i] = pairs[v * 2 + 1];
		buf[--i] = pairs[v * 2];
	} else {
		buf[--i] = (char)('0' + v);
	}
	out_bytes(o, buf + i, sizeof(buf) - i);
}

static void out_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		out_bytes(o, "-", 1);
		out_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		out_u64(o, (uint64_t)v);
	}
}

static void out_sp_i64(struct out *o, int64_t v)
{
	out_bytes(o, " ", 1);
	out_i64(o, v);
}

static bool host_byte_plain(unsigned char c) { return c > ' ' && c <= '~' && c != '%'; }

static void out_host(struct out *o, const char *host)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
		if (host_byte_plain(*p)) {
			out_bytes(o, (const char *)p, 1);
		} else {
			char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			out_bytes(o, esc, 3);
		}
	}
}

/* The hosts of the document in order of first use (holders, then tickets). */
struct hosts {
	const char **v;
	size_t n;
	size_t last; /* the last one found: consecutive entries mostly share it */
};

static int hosts_index(struct hosts *h, const char *host, bool add, size_t *ret)
{
	if (h->n && strcmp(h->v[h->last], host) == 0) {
		*ret = h->last;
		return 0;
	}
	for (size_t i = 0; i < h->n; i++) {
		if (strcmp(h->v[i], host) == 0) {
			*ret = h->last = i;
			return 0;
		}
	}
	if (!add)
		return -ENOENT;
	if ((h->n & (h->n - 1)) == 0) { /* 0, 1, 2, 4, ...: grow to the next power of two */
		const char **grown = realloc(h->v, (h->n ? h->n * 2 : 1) * sizeof(*h->v));
		if (!grown)
			return -ENOMEM;
		h->v = grown;
	}
	h->v[h->n] = host;
	*ret = h->last = h->n++;
	return 0;
}

static void out_owner(struct out *o, const struct lock_owner *ow, size_t host_index)
{
	out_sp_i64(o, ow->task_id);
	out_bytes(o, " ", 1);
	out_u64(o, host_index);
	out_sp_i64(o, ow->pid);
	out_bytes(o, " ", 1);
	out_u64(o, ow->start_time);
	out_sp_i64(o, ow->acquired_at_ms);
	out_sp_i64(o, ow->lease_expires_ms);
}

static void out_req(struct out *o, const struct lock_req *r)
{
	out_bytes(o, " ", 1);
	out_str(o, r->name);
	out_bytes(o, r->mode == LOCK_SHARED ? " s" : " x", 2);
}

static void out_holder(struct out *o, const struct lock_holder *h, size_t host_index)
{
	out_bytes(o, "H", 1);
	out_req(o, &h->lock);
	out_owner(o, &h->owner, host_index);
	out_bytes(o, "\n", 1);
}

static void out_waiter(struct out *o, const struct lock_waiter *w, size_t host_index)
{
	out_bytes(o, "T", 1);
	out_sp_i64(o, w->ticket);
	out_sp_i64(o, w->expires_ms);
	out_owner(o, &w->owner, host_index);
	out_bytes(o, " ", 1);
	out_u64(o, w->n_locks);
	for (size_t j = 0; j < w->n_locks; j++)
		out_req(o, &w->locks[j]);
	out_bytes(o, "\n", 1);
}

/* Copy lines [from, to) of the cached text, recording where each starts. */
static void out_cached_lines(struct out *o, const struct cache *c, const size_t *c_off, size_t from, size_t to,
			     size_t *off)
{
	size_t base = o->len;
	out_bytes(o, c->text + c_off[from], c_off[to] - c_off[from]);
	for (size_t k = from; k < to; k++)
		off[k] = base + (c_off[k] - c_off[from]);
}

int lock_doc_text_format(const struct lock_doc *doc, char **ret)
{
	struct cache *c = cache_get();
	struct hosts hosts = { 0 };
	struct out o = { 0 };
	size_t idx, nh = doc->n_holders, nt = doc->n_waiters;
	int r = 0;
	for (size_t i = 0; i < nh && r >= 0; i++)
		r = hosts_index(&hosts, doc->holders[i].owner.host, true, &idx);
	for (size_t i = 0; i < nt && r >= 0; i++)
		r = hosts_index(&hosts, doc->waiters[i].owner.host, true, &idx);
	size_t *h_off = r >= 0 ? malloc((nh + nt + 2) * sizeof(*h_off)) : NULL, *t_off = h_off ? h_off + nh + 1 : NULL;
	char(*host_copy)[LOCK_HOST_MAX] = h_off ? calloc(hosts.n ? hosts.n : 1, sizeof(*host_copy)) : NULL;
	if (!host_copy) {
		free(hosts.v);
		free(h_off);
		return r < 0 ? r : -ENOMEM;
	}
	for (size_t i = 0; i < hosts.n; i++)
		snprintf(host_copy[i], LOCK_HOST_MAX, "%s", hosts.v[i]);
	/* Lines of the cached text are reused only under the same host table
	 * (a line names its host by index). */
	bool reuse = c && c->text && c->n_hosts == hosts.n;
	for (size_t i = 0; reuse && i < hosts.n; i++)
		reuse = strcmp(c->hosts[i], hosts.v[i]) == 0;
	/* About 60 bytes per entry: one allocation for most documents. */
	out_reserve(&o, 64 + 48 * hosts.n + 64 * (nh + nt));
	out_str(&o, LOCK_DOC_TEXT_MAGIC);
	out_i64(&o, doc->next_ticket);
	out_bytes(&o, "\n", 1);
	for (size_t i = 0; i < hosts.n; i++) {
		out_bytes(&o, "@", 1);
		out_host(&o, hosts.v[i]);
		out_bytes(&o, "\n", 1);
	}
	size_t same = 0;
	while (reuse && same < nh && same < c->doc.n_holders &&
	       memcmp(&doc->holders[same], &c->doc.holders[same], sizeof(*doc->holders)) == 0)
		same++;
	if (same)
		out_cached_lines(&o, c, c->h_off, 0, same, h_off);
	size_t same_h = same;
	for (size_t i = same; i < nh; i++) {
		h_off[i] = o.len;
		hosts_index(&hosts, doc->holders[i].owner.host, false, &idx);
		out_holder(&o, &doc->holders[i], idx);
	}
	h_off[nh] = o.len;
	same = 0;
	while (reuse && same < nt && same < c->doc.n_waiters && waiter_same(&doc->waiters[same], &c->doc.waiters[same]))
		same++;
	if (same)
		out_cached_lines(&o, c, c->t_off, 0, same, t_off);
	for (size_t i = same; i < nt; i++) {
		t_off[i] = o.len;
		hosts_index(&hosts, doc->waiters[i].owner.host, false, &idx);
		out_waiter(&o, &doc->waiters[i], idx);
	}
	t_off[nt] = o.len;
	free(hosts.v);
	if (o.failed || !o.data) {
		free(o.data);
		free(h_off);
		free(host_copy);
		return -ENOMEM;
	}
	if (c && reuse)
		cache_update(c, o.data, o.len, doc, same_h, same, h_off, host_copy);
	else if (c)
		cache_fill(c, o.data, o.len, doc, h_off, host_copy, hosts.n);
	else {
		free(h_off);
		free(host_copy);
	}
	*ret = o.data;
	return 0;
}

/* ---- reading -------------------------------------------------------------- */

struct in {
	const char *p;
	int line;
	char *errbuf;
	size_t errlen;
};

static int fail(struct in *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct in *in, const char *fmt, ...)
{
	if (in->errbuf && in->errlen) {
		int n = snprintf(in->errbuf, in->errlen, "line %d: ", in->line);
		if (n >= 0 && (size_t)n < in->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(in->errbuf + n, in->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EBADMSG;
}

static int expect(struct in *in, char c, const char *what)
{
	if (*in->p != c)
		return fail(in, "expected %s", what);
	in->p++;
	return 0;
}

static int read_u64(struct in *in, uint64_t *ret, const char *what)
{
	const char *p = in->p;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return fail(in, "expected a number (%s)", what);
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (unsigned)(*p - '0'), &v))
			return fail(in, "%s out of range", what);
	in->p = p;
	*ret = v;
	return 0;
}

static int read_i64(struct in *in, int64_t *ret, const char *what)
{
	bool neg = *in->p == '-';
	if (neg)
		in->p++;
	uint64_t u = 0;
	int r = read_u64(in, &u, what);
	if (r < 0)
		return r;
	if (u > (uint64_t)INT64_MAX + (neg ? 1 : 0))
		return fail(in, "%s out of range", what);
	*ret = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

/* " NUMBER" */
static int sp_i64(struct in *in, int64_t *ret, const char *what)
{
	int r = expect(in, ' ', "a space");
	return r < 0 ? r : read_i64(in, ret, what);
}

static int sp_u64(struct in *in, uint64_t *ret, const char *what)
{
	int r = expect(in, ' ', "a space");
	return r < 0 ? r : read_u64(in, ret, what);
}

/* " NAME MODE" */
static int sp_req(struct in *in, struct lock_req *ret)
{
	int r = expect(in, ' ', "a space");
	if (r < 0)
		return r;
	size_t len = strcspn(in->p, " \n");
	if (len == 0 || len >= LOCK_NAME_MAX)
		return fail(in, "missing or invalid lock name");
	memcpy(ret->name, in->p, len);
	ret->name[len] = '\0';
	if (!lock_name_valid(ret->name))
		return fail(in, "missing or invalid lock name");
	in->p += len;
	if (in->p[0] != ' ' || (in->p[1] != 's' && in->p[1] != 'x') || (in->p[2] != ' ' && in->p[2] != '\n'))
		return fail(in, "mode must be s or x");
	ret->mode = in->p[1] == 's' ? LOCK_SHARED : LOCK_EXCLUSIVE;
	in->p += 2;
	return 0;
}

struct host_table {
	char (*v)[LOCK_HOST_MAX];
	size_t n;
};

/* " TASK HOST_INDEX PID START AT LEASE" */
static int sp_owner(struct in *in, const struct host_table *hosts, struct lock_owner *ret)
{
	int64_t task = 0, pid = 0, at = 0, lease = 0;
	uint64_t host = 0, start = 0;
	int r;
	if ((r = sp_i64(in, &task, "task")) < 0 || (r = sp_u64(in, &host, "host index")) < 0)
		return r;
	if (host >= hosts->n)
		return fail(in, "host index %llu is not in the host table", (unsigned long long)host);
	if ((r = sp_i64(in, &pid, "pid")) < 0)
		return r;
	if (pid < 0 || pid > INT32_MAX)
		return fail(in, "pid out of range");
	if ((r = sp_u64(in, &start, "start")) < 0 || (r = sp_i64(in, &at, "at")) < 0 ||
	    (r = sp_i64(in, &lease, "lease")) < 0)
		return r;
	*ret = (struct lock_owner){ .task_id = task, .pid = (int32_t)pid, .start_time = start,
				    .acquired_at_ms = at, .lease_expires_ms = lease };
	memcpy(ret->host, hosts->v[host], LOCK_HOST_MAX);
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "@HOST\n" */
static int read_host(struct in *in, struct host_table *hosts)
{
	char host[LOCK_HOST_MAX];
	size_t len = 0;
	in->p++; /* '@' */
	for (; *in->p != '\n'; in->p++) {
		unsigned char c = (unsigned char)*in->p;
		if (c == '%') {
			int hi = hex_value(in->p[1]), lo = hi < 0 ? -1 : hex_value(in->p[2]);
			if (lo < 0 || (hi << 4 | lo) == 0)
				return fail(in, "bad %%-escape in a host");
			c = (unsigned char)(hi << 4 | lo);
			in->p += 2;
		} else if (!host_byte_plain(c)) {
			return fail(in, "bad byte in a host");
		}
		if (len + 1 >= LOCK_HOST_MAX)
			return fail(in, "host id too long");
		host[len++] = (char)c;
	}
	host[len] = '\0';
	in->p++;
	if ((hosts->n & (hosts->n - 1)) == 0) {
		char(*grown)[LOCK_HOST_MAX] = realloc(hosts->v, (hosts->n ? hosts->n * 2 : 1) * sizeof(*hosts->v));
		if (!grown)
			return fail(in, "out of memory");
		hosts->v = grown;
	}
	memcpy(hosts->v[hosts->n++], host, LOCK_HOST_MAX);
	return 0;
}

static int read_holder(struct in *in, const struct host_table *hosts, struct lock_holder *ret)
{
	in->p++; /* 'H' */
	*ret = (struct lock_holder){ 0 }; /* the bytes after the name too: documents compare with memcmp */
	int r = sp_req(in, &ret->lock);
	if (r >= 0)
		r = sp_owner(in, hosts, &ret->owner);
	if (r >= 0)
		r = expect(in, '\n', "the end of the line");
	return r;
}

/* *ret owns ret->locks afterwards, also on failure (free it). */
static int read_ticket(struct in *in, const struct host_table *hosts, struct lock_waiter *ret)
{
	*ret = (struct lock_waiter){ 0 };
	in->p++; /* 'T' */
	uint64_t n;
	int r;
	if ((r = sp_i64(in, &ret->ticket, "ticket")) < 0 || (r = sp_i64(in, &ret->expires_ms, "expires")) < 0 ||
	    (r = sp_owner(in, hosts, &ret->owner)) < 0 || (r = sp_u64(in, &n, "the number of locks")) < 0)
		return r;
	/* Each lock takes at least 4 bytes (" a s"): bounds the allocation by
	 * the text, whatever the count claims. */
	const char *eol = strchr(in->p, '\n');
	if (n == 0 || n > (size_t)(eol ? eol - in->p : 0) / 4)
		return fail(in, "a ticket needs 1 or more locks, as many as it names");
	ret->locks = calloc(n, sizeof(*ret->locks));
	if (!ret->locks)
		return fail(in, "out of memory");
	for (; ret->n_locks < n; ret->n_locks++)
		if ((r = sp_req(in, &ret->locks[ret->n_locks])) < 0)
			return r;
	return expect(in, '\n', "the end of the line");
}

static int grow(void **v, size_t n, size_t size)
{
	if (n & (n - 1)) /* not a power of two (or 0): room is left */
		return 0;
	void *grown = realloc(*v, (n ? n * 2 : 1) * size);
	if (!grown)
		return -ENOMEM;
	*v = grown;
	return 0;
}

int lock_doc_text_parse(const char *text, struct lock_doc *ret, char *errbuf, size_t errlen)
{
	struct in in = { .p = text, .line = 1, .errbuf = errbuf, .errlen = errlen };
	struct host_table hosts = { 0 };
	struct lock_doc doc;
	lock_doc_init(&doc);
	size_t *h_off = NULL;
	int r;
	size_t ml = strlen(LOCK_DOC_TEXT_MAGIC);
	struct cache *c = cache_get();
	if (c && c->text && strcmp(c->text, text) == 0)
		return doc_copy(&c->doc, ret);
	if (strncmp(text, LOCK_DOC_TEXT_MAGIC, ml) != 0) {
		r = fail(&in, "expected \"%s\"", LOCK_DOC_TEXT_MAGIC "NEXT_TICKET");
		goto out;
	}
	in.p += ml;
	if ((r = read_i64(&in, &doc.next_ticket, "nextTicket")) < 0 || (r = expect(&in, '\n', "the end of the line")) < 0)
		goto out;
	/* Arrays of the right size at once: growing them by doubling made a
	 * large document cost page faults on every parse (big blocks come and
	 * go with mmap). */
	size_t want_h = 0, want_t = 0;
	for (const char *nl = strchr(in.p, '\n'); nl; nl = strchr(nl + 1, '\n')) {
		want_h += nl[1] == 'H';
		want_t += nl[1] == 'T';
	}
	doc.holders = malloc((want_h ? want_h : 1) * sizeof(*doc.holders));
	doc.waiters = malloc((want_t ? want_t : 1) * sizeof(*doc.waiters));
	h_off = malloc((want_h + want_t + 2) * sizeof(*h_off));
	if (!doc.holders || !doc.waiters || !h_off) {
		r = fail(&in, "out of memory");
		goto out;
	}
	for (in.line = 2; *in.p == '@'; in.line++)
		if ((r = read_host(&in, &hosts)) < 0)
			goto out;
	for (; *in.p == 'H'; in.line++) {
		h_off[doc.n_holders] = (size_t)(in.p - text);
		if ((r = read_holder(&in, &hosts, &doc.holders[doc.n_holders])) < 0)
			goto out;
		doc.n_holders++;
	}
	h_off[doc.n_holders] = (size_t)(in.p - text);
	for (; *in.p == 'T'; in.line++) {
		h_off[doc.n_holders + 1 + doc.n_waiters] = (size_t)(in.p - text);
		r = read_ticket(&in, &hosts, &doc.waiters[doc.n_waiters]);
		doc.n_waiters++; /* counted now so lock_doc_release frees its locks */
		if (r < 0)
			goto out;
	}
	if (*in.p) {
		r = fail(&in, "expected a host (@), holder (H) or ticket (T) line, in that order");
		goto out;
	}
	h_off[doc.n_holders + 1 + doc.n_waiters] = (size_t)(in.p - text);
	r = lock_doc_verify(&doc, errbuf, errlen);
	if (r < 0)
		goto out;
	if (c) {
		cache_fill(c, text, (size_t)(in.p - text), &doc, h_off, hosts.v, hosts.n);
		h_off = NULL;
		hosts.v = NULL;
	}
	*ret = doc;
	lock_doc_init(&doc);
out:
	lock_doc_release(&doc);
	free(hosts.v);
	free(h_off);
	return r;
}

int lock_doc_text_salvage(const char *text, struct lock_doc *doc, int *ret_dropped)
{
	struct in in = { .p = text, .line = 1 };
	struct host_table hosts = { 0 };
	int dropped = 0;
	size_t ml = strlen(LOCK_DOC_TEXT_MAGIC);
	if (strncmp(text, LOCK_DOC_TEXT_MAGIC, ml) == 0 || strncmp(text, LOCK_DOC_SPLIT_MAGIC, ml) == 0) {
		int64_t next;
		in.p += ml;
		if (read_i64(&in, &next, "") == 0 && next > doc->next_ticket && next < INT64_MAX)
			doc->next_ticket = next;
	}
	/* Line by line: a line that does not parse is dropped, the rest kept
	 * (hosts must keep their places, so a bad host line is kept empty). */
	const char *end;
	for (const char *line = text; (end = strchr(line, '\n')); line = end + 1) { /* a cut last line is not trusted */
		in.p = line;
		if (*line == '@') {
			size_t before = hosts.n;
			if (read_host(&in, &hosts) < 0 && hosts.n == before) {
				if (grow((void **)&hosts.v, hosts.n, sizeof(*hosts.v)) < 0)
					goto nomem;
				hosts.v[hosts.n++][0] = '\0';
			}
		} else if (*line == 'H') {
			dropped++;
			if (grow((void **)&doc->holders, doc->n_holders, sizeof(*doc->holders)) < 0)
				goto nomem;
			if (read_holder(&in, &hosts, &doc->holders[doc->n_holders]) < 0)
				continue;
			/* Kept only if it can stand with those kept before it. */
			doc->n_holders++;
			if (lock_doc_verify(doc, NULL, 0) < 0)
				doc->n_holders--;
			else
				dropped--;
		} else if (*line == 'T') {
			dropped++;
			int64_t ticket;
			in.p = line + 1;
			if (sp_i64(&in, &ticket, "ticket") == 0 && ticket >= doc->next_ticket && ticket < INT64_MAX - 1)
				doc->next_ticket = ticket + 1;
		}
	}
	free(hosts.v);
	*ret_dropped = dropped;
	return 0;
nomem:
	free(hosts.v);
	return -ENOMEM;
}

/* ---- format 3 ------------------------------------------------------------------ */

static bool owner_equal(const struct lock_owner *a, const struct lock_owner *b)
{
	return lock_owner_same(a, b) && a->acquired_at_ms == b->acquired_at_ms &&
	       a->lease_expires_ms == b->lease_expires_ms;
}

static bool req_equal(const struct lock_req *a, const struct lock_req *b)
{
	return a->mode == b->mode && strcmp(a->name, b->name) == 0;
}

/* The same entry (it may have changed): one entry per owner and name. */
static bool holder_same_entry(const struct lock_holder *a, const struct lock_holder *b)
{
	return strcmp(a->lock.name, b->lock.name) == 0 && lock_owner_same(&a->owner, &b->owner);
}

static bool holder_equal(const struct lock_holder *a, const struct lock_holder *b)
{
	return req_equal(&a->lock, &b->lock) && owner_equal(&a->owner, &b->owner);
}

static bool waiter_equal(const struct lock_waiter *a, const struct lock_waiter *b)
{
	if (a->ticket == b->ticket && a->expires_ms == b->expires_ms && a->n_locks == b->n_locks &&
	    memcmp(&a->owner, &b->owner, sizeof(a->owner)) == 0 &&
	    memcmp(a->locks, b->locks, a->n_locks * sizeof(*a->locks)) == 0)
		return true; /* a copy, byte for byte */
	if (a->ticket != b->ticket || a->expires_ms != b->expires_ms || a->n_locks != b->n_locks ||
	    !owner_equal(&a->owner, &b->owner))
		return false;
	for (size_t i = 0; i < a->n_locks; i++)
		if (!req_equal(&a->locks[i], &b->locks[i]))
			return false;
	return true;
}

/* How the document's entries map onto the base's: for base entry j,
 * map[j] = -1 gone, -2 unchanged, else the document's index that replaces
 * it; the document's entries from *ret_tail on come after the base's.
 * Matching in order: the pure functions keep the order of entries (a grant
 * appends, a removal closes the gap, a change is in place), so this finds
 * the few lines that changed; any other order still gives a correct (only
 * longer) text, because every document entry not matched in order goes to
 * the tail, behind every base entry it matched. */
static void match_holders(const struct lock_doc *doc, const struct lock_doc *base, int64_t *map, size_t *ret_tail)
{
	size_t i = 0;
	for (size_t j = 0; j < base->n_holders; j++) {
		/* A copy of the base's entry (the usual case) is equal byte for
		 * byte: no need to compare field by field. */
		if (i < doc->n_holders && memcmp(&doc->holders[i], &base->holders[j], sizeof(*doc->holders)) == 0) {
			map[j] = -2;
			i++;
		} else if (i < doc->n_holders && holder_same_entry(&doc->holders[i], &base->holders[j])) {
			map[j] = holder_equal(&doc->holders[i], &base->holders[j]) ? -2 : (int64_t)i;
			i++;
		} else {
			map[j] = -1;
		}
	}
	*ret_tail = i;
}

static void match_waiters(const struct lock_doc *doc, const struct lock_doc *base, int64_t *map, size_t *ret_tail)
{
	size_t i = 0;
	for (size_t j = 0; j < base->n_waiters; j++) {
		if (i < doc->n_waiters && doc->waiters[i].ticket == base->waiters[j].ticket &&
		    lock_owner_same(&doc->waiters[i].owner, &base->waiters[j].owner)) {
			map[j] = waiter_equal(&doc->waiters[i], &base->waiters[j]) ? -2 : (int64_t)i;
			i++;
		} else {
			map[j] = -1;
		}
	}
	*ret_tail = i;
}

int lock_doc_split_format(const struct lock_doc *doc, const struct lock_doc *base, int slot, int64_t nonce, char **ret,
			  size_t *ret_changes)
{
	size_t nbh = base->n_holders, nbt = base->n_waiters, h_tail, t_tail, changes = 0, idx;
	int64_t *map = malloc((nbh + nbt + 1) * sizeof(*map));
	if (!map)
		return -ENOMEM;
	int64_t *hmap = map, *tmap = map + nbh;
	match_holders(doc, base, hmap, &h_tail);
	match_waiters(doc, base, tmap, &t_tail);
	/* Hosts in order of first use by the lines written. */
	struct hosts hosts = { 0 };
	int r = 0;
	for (size_t j = 0; j < nbh && r >= 0; j++)
		if (hmap[j] >= 0)
			r = hosts_index(&hosts, doc->holders[hmap[j]].owner.host, true, &idx);
	for (size_t j = 0; j < nbt && r >= 0; j++)
		if (tmap[j] >= 0)
			r = hosts_index(&hosts, doc->waiters[tmap[j]].owner.host, true, &idx);
	for (size_t i = h_tail; i < doc->n_holders && r >= 0; i++)
		r = hosts_index(&hosts, doc->holders[i].owner.host, true, &idx);
	for (size_t i = t_tail; i < doc->n_waiters && r >= 0; i++)
		r = hosts_index(&hosts, doc->waiters[i].owner.host, true, &idx);
	struct out o = { 0 };
	if (r < 0)
		goto out;
	out_reserve(&o, 128 + 48 * hosts.n);
	out_str(&o, LOCK_DOC_SPLIT_MAGIC);
	out_i64(&o, doc->next_ticket);
	out_sp_i64(&o, slot);
	out_sp_i64(&o, nonce);
	out_bytes(&o, " ", 1);
	out_u64(&o, nbh);
	out_bytes(&o, " ", 1);
	out_u64(&o, nbt);
	out_bytes(&o, "\n", 1);
	for (size_t i = 0; i < hosts.n; i++) {
		out_bytes(&o, "@", 1);
		out_host(&o, hosts.v[i]);
		out_bytes(&o, "\n", 1);
	}
	for (size_t j = 0; j < nbh; j++) {
		if (hmap[j] == -2)
			continue;
		changes++;
		out_bytes(&o, hmap[j] == -1 ? "-H " : "=H ", 3);
		out_u64(&o, j);
		if (hmap[j] >= 0) {
			const struct lock_holder *h = &doc->holders[hmap[j]];
			hosts_index(&hosts, h->owner.host, false, &idx);
			out_req(&o, &h->lock);
			out_owner(&o, &h->owner, idx);
		}
		out_bytes(&o, "\n", 1);
	}
	for (size_t j = 0; j < nbt; j++) {
		if (tmap[j] == -2)
			continue;
		changes++;
		out_bytes(&o, tmap[j] == -1 ? "-T " : "=T ", 3);
		out_u64(&o, j);
		if (tmap[j] >= 0) {
			const struct lock_waiter *w = &doc->waiters[tmap[j]];
			hosts_index(&hosts, w->owner.host, false, &idx);
			/* out_waiter() without its leading "T" */
			struct out line = { 0 };
			out_waiter(&line, w, idx);
			if (line.failed)
				o.failed = true;
			else
				out_bytes(&o, line.data + 1, line.len - 2);
			free(line.data);
		}
		out_bytes(&o, "\n", 1);
	}
	for (size_t i = h_tail; i < doc->n_holders; i++, changes++) {
		hosts_index(&hosts, doc->holders[i].owner.host, false, &idx);
		out_holder(&o, &doc->holders[i], idx);
	}
	for (size_t i = t_tail; i < doc->n_waiters; i++, changes++) {
		hosts_index(&hosts, doc->waiters[i].owner.host, false, &idx);
		out_waiter(&o, &doc->waiters[i], idx);
	}
	r = o.failed || !o.data ? -ENOMEM : 0;
out:
	free(hosts.v);
	free(map);
	if (r < 0) {
		free(o.data);
		return r;
	}
	split_seen(cache_get(), o.data);
	*ret = o.data;
	if (ret_changes)
		*ret_changes = changes;
	return 0;
}

static int read_split_header(struct in *in, int64_t *next, int64_t *slot, int64_t *nonce, uint64_t *nbh,
			     uint64_t *nbt)
{
	size_t ml = strlen(LOCK_DOC_SPLIT_MAGIC);
	if (strncmp(in->p, LOCK_DOC_SPLIT_MAGIC, ml) != 0)
		return fail(in, "expected \"%s\"", LOCK_DOC_SPLIT_MAGIC "NEXT_TICKET SLOT NONCE HOLDERS TICKETS");
	in->p += ml;
	int r;
	if ((r = read_i64(in, next, "nextTicket")) < 0 || (r = sp_i64(in, slot, "base slot")) < 0 ||
	    (r = sp_i64(in, nonce, "base nonce")) < 0 || (r = sp_u64(in, nbh, "base holders")) < 0 ||
	    (r = sp_u64(in, nbt, "base tickets")) < 0 || (r = expect(in, '\n', "the end of the line")) < 0)
		return r;
	if (*slot < 2 || *slot > INT32_MAX)
		return fail(in, "base slot out of range");
	return 0;
}

int lock_doc_split_ref(const char *text, int *ret_slot, int64_t *ret_nonce)
{
	struct in in = { .p = text, .line = 1 };
	int64_t next, slot, nonce;
	uint64_t nbh, nbt;
	int r = read_split_header(&in, &next, &slot, &nonce, &nbh, &nbt);
	if (r < 0)
		return r;
	*ret_slot = (int)slot;
	*ret_nonce = nonce;
	return 0;
}

/* "-X IDX" or "=X IDX": the index, ascending and below n. */
static int read_base_index(struct in *in, size_t n, int64_t prev, uint64_t *ret)
{
	in->p += 2;
	int r = sp_u64(in, ret, "base index");
	if (r < 0)
		return r;
	if (*ret >= n)
		return fail(in, "base index %llu is past the base's %zu entries", (unsigned long long)*ret, n);
	if ((int64_t)*ret <= prev)
		return fail(in, "base indexes must ascend");
	return 0;
}

int lock_doc_split_parse(const char *text, const struct lock_doc *base, struct lock_doc *ret, char *errbuf,
			 size_t errlen)
{
	struct in in = { .p = text, .line = 1, .errbuf = errbuf, .errlen = errlen };
	struct host_table hosts = { 0 };
	struct lock_doc doc, tail;
	lock_doc_init(&doc);
	lock_doc_init(&tail);
	int64_t next, slot, nonce, prev;
	uint64_t nbh, nbt, j;
	size_t nb = base->n_holders + base->n_waiters;
	/* Per base entry: -2 unchanged, -1 gone, else the replacement's index
	 * in `tail` (holders and waiters counted apart). */
	int64_t *map = NULL;
	int r = read_split_header(&in, &next, &slot, &nonce, &nbh, &nbt);
	if (r < 0)
		goto out;
	if (nbh != base->n_holders || nbt != base->n_waiters) {
		r = fail(&in, "the base has %zu holders and %zu tickets, not %llu and %llu", base->n_holders,
			 base->n_waiters, (unsigned long long)nbh, (unsigned long long)nbt);
		goto out;
	}
	map = malloc((nb + 1) * sizeof(*map));
	if (!map) {
		r = fail(&in, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < nb; k++)
		map[k] = -2;
	int64_t *hmap = map, *tmap = map + nbh;
	size_t want_h = 0, want_t = 0;
	for (const char *nl = strchr(in.p, '\n'); nl; nl = strchr(nl + 1, '\n')) {
		want_h += nl[1] == 'H' || (nl[1] == '=' && nl[2] == 'H');
		want_t += nl[1] == 'T' || (nl[1] == '=' && nl[2] == 'T');
	}
	tail.holders = malloc((want_h ? want_h : 1) * sizeof(*tail.holders));
	tail.waiters = malloc((want_t ? want_t : 1) * sizeof(*tail.waiters));
	if (!tail.holders || !tail.waiters) {
		r = fail(&in, "out of memory");
		goto out;
	}
	for (in.line = 2; *in.p == '@'; in.line++)
		if ((r = read_host(&in, &hosts)) < 0)
			goto out;
	for (prev = -1; in.p[0] == '-' || (in.p[0] == '=' && in.p[1] == 'H'); in.line++) {
		if (in.p[1] != 'H')
			break;
		bool gone = in.p[0] == '-';
		if ((r = read_base_index(&in, nbh, prev, &j)) < 0)
			goto out;
		prev = (int64_t)j;
		if (gone) {
			hmap[j] = -1;
		} else {
			in.p--; /* read_holder() skips one byte, the 'H' it expects */
			if ((r = read_holder(&in, &hosts, &tail.holders[tail.n_holders])) < 0)
				goto out;
			hmap[j] = (int64_t)tail.n_holders++;
			continue;
		}
		if ((r = expect(&in, '\n', "the end of the line")) < 0)
			goto out;
	}
	for (prev = -1; (in.p[0] == '-' || in.p[0] == '=') && in.p[1] == 'T'; in.line++) {
		bool gone = in.p[0] == '-';
		if ((r = read_base_index(&in, nbt, prev, &j)) < 0)
			goto out;
		prev = (int64_t)j;
		if (gone) {
			tmap[j] = -1;
			if ((r = expect(&in, '\n', "the end of the line")) < 0)
				goto out;
			continue;
		}
		in.p--;
		r = read_ticket(&in, &hosts, &tail.waiters[tail.n_waiters]);
		tail.n_waiters++;
		if (r < 0)
			goto out;
		tmap[j] = (int64_t)tail.n_waiters - 1;
	}
	size_t repl_h = tail.n_holders, repl_t = tail.n_waiters;
	for (; *in.p == 'H'; in.line++) {
		if ((r = read_holder(&in, &hosts, &tail.holders[tail.n_holders])) < 0)
			goto out;
		tail.n_holders++;
	}
	for (; *in.p == 'T'; in.line++) {
		r = read_ticket(&in, &hosts, &tail.waiters[tail.n_waiters]);
		tail.n_waiters++;
		if (r < 0)
			goto out;
	}
	if (*in.p) {
		r = fail(&in, "expected a host (@), base change (-/=), holder (H) or ticket (T) line, in that order");
		goto out;
	}
	/* The document: base entries in order, changed in place, then the tail. */
	doc.next_ticket = next;
	doc.holders = malloc((nbh + tail.n_holders - repl_h + 1) * sizeof(*doc.holders));
	doc.waiters = malloc((nbt + tail.n_waiters - repl_t + 1) * sizeof(*doc.waiters));
	if (!doc.holders || !doc.waiters) {
		r = fail(&in, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < nbh; k++) {
		if (hmap[k] == -2)
			doc.holders[doc.n_holders++] = base->holders[k];
		else if (hmap[k] >= 0)
			doc.holders[doc.n_holders++] = tail.holders[hmap[k]];
	}
	for (size_t k = repl_h; k < tail.n_holders; k++)
		doc.holders[doc.n_holders++] = tail.holders[k];
	for (size_t k = 0; k < nbt; k++) {
		struct lock_waiter *dst = &doc.waiters[doc.n_waiters];
		if (tmap[k] == -1)
			continue;
		if (tmap[k] >= 0) { /* taken from the tail: its locks move */
			*dst = tail.waiters[tmap[k]];
			tail.waiters[tmap[k]].locks = NULL;
			tail.waiters[tmap[k]].n_locks = 0;
		} else {
			*dst = base->waiters[k];
			dst->locks = malloc(dst->n_locks * sizeof(*dst->locks));
			if (!dst->locks) {
				r = fail(&in, "out of memory");
				goto out;
			}
			memcpy(dst->locks, base->waiters[k].locks, dst->n_locks * sizeof(*dst->locks));
		}
		doc.n_waiters++;
	}
	for (size_t k = repl_t; k < tail.n_waiters; k++) {
		doc.waiters[doc.n_waiters++] = tail.waiters[k];
		tail.waiters[k].locks = NULL;
		tail.waiters[k].n_locks = 0;
	}
	/* Verified once per text and thread, like format 2's cache: a text
	 * this thread parsed or formatted before names the same base (its
	 * nonce) and the same changes, so the same document. */
	struct cache *c = cache_get();
	if (!c || !c->split_text || strcmp(c->split_text, text) != 0) {
		r = lock_doc_verify(&doc, errbuf, errlen);
		if (r < 0)
			goto out;
		split_seen(c, text);
	}
	*ret = doc;
	lock_doc_init(&doc);
out:
	lock_doc_release(&doc);
	lock_doc_release(&tail);
	free(hosts.v);
	free(map);
	return r;
}

/* ---- the base, per thread ---------------------------------------------------- */

struct base_cache {
	int slot;
	int64_t nonce;
	bool valid;
	struct lock_doc doc;
	char *kept_text;       /* format 3 text that `kept` is the document of */
	struct lock_doc kept;
};

static pthread_key_t base_key;
static pthread_once_t base_once = PTHREAD_ONCE_INIT;
static bool base_ready;

static void base_destroy(void *v)
{
	struct base_cache *b = v;
	free(b->kept_text);
	lock_doc_release(&b->kept);
	lock_doc_release(&b->doc);
	free(b);
}

static void base_key_init(void) { base_ready = pthread_key_create(&base_key, base_destroy) == 0; }

static struct base_cache *base_get(void)
{
	pthread_once(&base_once, base_key_init);
	if (!base_ready)
		return NULL;
	struct base_cache *b = pthread_getspecific(base_key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (b && pthread_setspecific(base_key, b) != 0) {
			free(b);
			b = NULL;
		}
		if (b) {
			lock_doc_init(&b->doc);
			lock_doc_init(&b->kept);
		}
	}
	return b;
}

static void kept_drop(struct base_cache *b)
{
	free(b->kept_text);
	b->kept_text = NULL;
	lock_doc_release(&b->kept);
}

int lock_doc_split_take(const char *text, struct lock_doc *ret)
{
	struct base_cache *b = base_get();
	if (!b || !b->kept_text || strcmp(b->kept_text, text) != 0)
		return -ENOENT;
	*ret = b->kept;
	lock_doc_init(&b->kept);
	free(b->kept_text);
	b->kept_text = NULL;
	return 0;
}

void lock_doc_split_keep(const char *text, struct lock_doc *doc)
{
	struct base_cache *b = base_get();
	if (b) {
		kept_drop(b);
		b->kept_text = strdup(text);
		if (b->kept_text) {
			b->kept = *doc;
			lock_doc_init(doc);
			return;
		}
	}
	lock_doc_release(doc);
}

static void base_drop(void)
{
	struct base_cache *b = base_get();
	if (b) {
		lock_doc_release(&b->doc);
		b->valid = false;
		kept_drop(b);
	}
}

const struct lock_doc *lock_doc_base_cached(int slot, int64_t nonce)
{
	struct base_cache *b = base_get();
	return b && b->valid && b->slot == slot && b->nonce == nonce ? &b->doc : NULL;
}

const struct lock_doc *lock_doc_base_keep(int slot, int64_t nonce, const struct lock_doc *base)
{
	struct base_cache *b = base_get();
	if (!b)
		return NULL;
	lock_doc_release(&b->doc);
	b->valid = false;
	if (doc_copy(base, &b->doc) < 0)
		return NULL;
	b->slot = slot;
	b->nonce = nonce;
	b->valid = true;
	return &b->doc;
}
