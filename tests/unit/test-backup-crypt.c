/* test-backup-crypt.c — encrypted archives (backups/backup_crypt.h) in
 * memory, on real OpenSSL:
 *   - round trips with a passphrase and with a key file, for plaintexts
 *     of 0, 1, a chunk less one, one chunk, one chunk and one byte, and
 *     several chunks, fed in odd pieces;
 *   - a wrong passphrase or key, and a secret of the other kind, are
 *     refused at the header (-EKEYREJECTED) with a clear message;
 *   - a flipped byte anywhere (magic, salt, key check, reserved bytes,
 *     first/middle/last record, a tag) is refused;
 *   - truncation (mid-record, at a record boundary, header only),
 *     records swapped, a record repeated, and bytes appended are refused;
 *   - secrets load from files (passphrase with a newline; a key as 64 hex
 *     digits or 32 raw bytes) and a file others can read is refused;
 *   - names: stable per app and secret, different across apps and
 *     secrets, and never containing the app id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backups/backup_crypt.h"

struct mem {
	unsigned char *p;
	size_t len, cap, pos;
	size_t max_read; /* > 0: hand out at most this much per read */
};

static int mem_out(void *ud, const void *buf, size_t len)
{
	struct mem *m = ud;
	if (m->len + len > m->cap) {
		m->cap = (m->len + len) * 2;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static ssize_t mem_in(void *ud, void *buf, size_t len)
{
	struct mem *m = ud;
	size_t n = m->len - m->pos;
	if (n > len)
		n = len;
	if (m->max_read && n > m->max_read)
		n = m->max_read;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static void secret(enum backup_key_kind kind, const char *text, struct backup_secret *s)
{
	char err[256];
	unsigned char key[32];
	if (kind == BACKUP_KEY_FILE) {
		for (int i = 0; i < 32; i++)
			key[i] = (unsigned char)(text[i % strlen(text)] + i);
		assert_int_equal(backup_secret_set(kind, key, 32, s, err, sizeof(err)), 0);
	} else {
		assert_int_equal(backup_secret_set(kind, text, strlen(text), s, err, sizeof(err)), 0);
	}
	s->scrypt_log2n = 10; /* fast: the format, not the cost, is under test */
}

/* Encrypt `len` bytes of a pattern into *out (header + records). */
static unsigned char *pattern(size_t len)
{
	unsigned char *p = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + (i >> 9));
	return p;
}

static void seal(const struct backup_secret *s, const unsigned char *plain, size_t len, struct mem *out)
{
	char err[256];
	struct backup_enc *e;
	unsigned char header[BACKUP_CRYPT_HEADER];
	*out = (struct mem){ 0 };
	assert_int_equal(backup_enc_new(s, &e, header, err, sizeof(err)), 0);
	mem_out(out, header, sizeof(header));
	/* Odd pieces: 1, 1000, 70000, then the rest. */
	size_t off = 0, pieces[] = { 1, 1000, 70000 };
	for (size_t i = 0; i < 3 && off < len; i++) {
		size_t n = pieces[i] < len - off ? pieces[i] : len - off;
		assert_int_equal(backup_enc_update(e, plain + off, n, mem_out, out), 0);
		off += n;
	}
	assert_int_equal(backup_enc_update(e, plain + off, len - off, mem_out, out), 0);
	assert_int_equal(backup_enc_final(e, mem_out, out), 0);
	backup_enc_free(e);
}

/* Decrypt all of `in`; 0 and the plaintext, or the first error. */
static int open_all(const struct backup_secret *s, struct mem *in, struct mem *plain, char *err, size_t errlen)
{
	struct backup_dec *d;
	*plain = (struct mem){ 0 };
	in->pos = 0;
	int r = backup_dec_new(s, mem_in, in, &d, err, errlen);
	if (r < 0)
		return r;
	for (;;) {
		const void *buf;
		ssize_t n = backup_dec_next(d, &buf, err, errlen);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		mem_out(plain, buf, (size_t)n);
	}
	backup_dec_free(d);
	return r;
}

static void round_trip(enum backup_key_kind kind)
{
	struct backup_secret s;
	secret(kind, "correct horse battery staple", &s);
	size_t sizes[] = { 0, 1, BACKUP_CRYPT_CHUNK - 1, BACKUP_CRYPT_CHUNK, BACKUP_CRYPT_CHUNK + 1, 5 * BACKUP_CRYPT_CHUNK + 123 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = pattern(sizes[i]);
		struct mem c, back;
		seal(&s, p, sizes[i], &c);
		size_t records = sizes[i] / BACKUP_CRYPT_CHUNK + (sizes[i] % BACKUP_CRYPT_CHUNK || !sizes[i] ? 1 : 0);
		assert_int_equal(c.len, BACKUP_CRYPT_HEADER + sizes[i] + records * BACKUP_CRYPT_TAG);
		assert_true(backup_crypt_is_encrypted(c.p, c.len));
		char err[256] = "";
		c.max_read = 777; /* short reads on the way in */
		int r = open_all(&s, &c, &back, err, sizeof(err));
		if (r != 0)
			fail_msg("size %zu: %s", sizes[i], err);
		assert_int_equal(back.len, sizes[i]);
		assert_true(sizes[i] == 0 || memcmp(back.p, p, sizes[i]) == 0);
		/* The plaintext is not in the file. */
		if (sizes[i] >= 64)
			assert_null(memmem(c.p, c.len, p + 16, 32));
		free(p);
		free(c.p);
		free(back.p);
	}
	backup_secret_release(&s);
}

static void test_round_trip_passphrase(void **state)
{
	(void)state;
	round_trip(BACKUP_KEY_PASSPHRASE);
}

static void test_round_trip_key(void **state)
{
	(void)state;
	round_trip(BACKUP_KEY_FILE);
}

static void test_wrong_key(void **state)
{
	(void)state;
	struct backup_secret s, wrong, wrong_key, key, none = { 0 };
	secret(BACKUP_KEY_PASSPHRASE, "right", &s);
	secret(BACKUP_KEY_PASSPHRASE, "wrong", &wrong);
	secret(BACKUP_KEY_FILE, "k1", &key);
	secret(BACKUP_KEY_FILE, "k2", &wrong_key);
	unsigned char *p = pattern(100000);
	struct mem c, kc, back = { 0 };
	seal(&s, p, 100000, &c);
	seal(&key, p, 100000, &kc);
	char err[256] = "";
	assert_int_equal(open_all(&wrong, &c, &back, err, sizeof(err)), -EKEYREJECTED);
	assert_non_null(strstr(err, "wrong backup passphrase"));
	assert_int_equal(open_all(&wrong_key, &kc, &back, err, sizeof(err)), -EKEYREJECTED);
	assert_non_null(strstr(err, "wrong backup key"));
	assert_int_equal(open_all(&key, &c, &back, err, sizeof(err)), -EKEYREJECTED);
	assert_non_null(strstr(err, "encrypted with a passphrase, but a key file is configured"));
	assert_int_equal(open_all(&none, &c, &back, err, sizeof(err)), -ENOKEY);
	assert_non_null(strstr(err, "encryption_passphrase_file"));
	/* A plain archive is not taken for an encrypted one. */
	struct mem plain = { .p = p, .len = 100000 };
	assert_int_equal(open_all(&s, &plain, &back, err, sizeof(err)), -EBADMSG);
	free(back.p);
	free(p);
	free(c.p);
	free(kc.p);
	backup_secret_release(&s);
	backup_secret_release(&wrong);
	backup_secret_release(&key);
	backup_secret_release(&wrong_key);
}

static void test_flipped_byte(void **state)
{
	(void)state;
	struct backup_secret s;
	secret(BACKUP_KEY_PASSPHRASE, "pass", &s);
	size_t len = 3 * BACKUP_CRYPT_CHUNK + 500;
	unsigned char *p = pattern(len);
	struct mem c;
	seal(&s, p, len, &c);
	const size_t rec = BACKUP_CRYPT_CHUNK + BACKUP_CRYPT_TAG, H = BACKUP_CRYPT_HEADER;
	size_t offsets[] = {
		0, 8, 9, 11, 21, 40, 60,          /* magic, version, kind, scrypt N, salt, key check, reserved */
		H, H + 1000, H + rec - 1,          /* first record: data, its tag */
		H + rec + 5, H + 2 * rec - 3,      /* second record */
		H + 3 * rec + 10, c.len - 1,       /* last record: data, tag */
	};
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		struct mem back = { 0 };
		char err[256] = "";
		c.p[offsets[i]] ^= 0x20;
		int r = open_all(&s, &c, &back, err, sizeof(err));
		c.p[offsets[i]] ^= 0x20;
		if (r != -EBADMSG && r != -EKEYREJECTED)
			fail_msg("a flipped byte at %zu: %d (%s)", offsets[i], r, err);
		free(back.p);
	}
	struct mem back;
	char err[256];
	assert_int_equal(open_all(&s, &c, &back, err, sizeof(err)), 0); /* and unflipped it is fine */
	free(back.p);
	free(c.p);
	free(p);
	backup_secret_release(&s);
}

static void test_truncated_reordered(void **state)
{
	(void)state;
	struct backup_secret s;
	secret(BACKUP_KEY_FILE, "key", &s);
	size_t len = 3 * BACKUP_CRYPT_CHUNK + 500;
	unsigned char *p = pattern(len);
	struct mem c, back = { 0 };
	seal(&s, p, len, &c);
	const size_t rec = BACKUP_CRYPT_CHUNK + BACKUP_CRYPT_TAG, H = BACKUP_CRYPT_HEADER;
	size_t full = c.len;
	char err[256];
	/* Cut: in the last record, at record boundaries, right after the header, in it. */
	size_t cuts[] = { full - 1, full - 400, H + 3 * rec, H + 2 * rec, H + rec, H + 10, H, 30 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		c.len = cuts[i];
		int r = open_all(&s, &c, &back, err, sizeof(err));
		if (r != -EBADMSG)
			fail_msg("cut at %zu of %zu: %d", cuts[i], full, r);
		free(back.p);
		back = (struct mem){ 0 };
	}
	c.len = full;
	/* Records 0 and 1 swapped. */
	unsigned char *tmp = malloc(rec);
	memcpy(tmp, c.p + H, rec);
	memmove(c.p + H, c.p + H + rec, rec);
	memcpy(c.p + H + rec, tmp, rec);
	assert_int_equal(open_all(&s, &c, &back, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "record 0"));
	free(back.p);
	free(c.p);
	/* Record 0 twice: 0, 0, 2, 3. */
	seal(&s, p, len, &c);
	memcpy(c.p + H + rec, c.p + H, rec);
	assert_int_equal(open_all(&s, &c, &back, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "record 1"));
	free(back.p);
	free(c.p);
	/* Bytes appended after the last record. */
	seal(&s, p, len, &c);
	mem_out(&c, "x", 1);
	assert_int_equal(open_all(&s, &c, &back, err, sizeof(err)), -EBADMSG);
	free(back.p);
	free(c.p);
	free(tmp);
	free(p);
	backup_secret_release(&s);
}

static void write_secret_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/boxd-test-crypt-XXXXXX", path[256], err[256];
	assert_non_null(mkdtemp(dir));
	struct backup_secret a, b;
	snprintf(path, sizeof(path), "%s/pass", dir);
	write_secret_file(path, "hunter2\n", 8, 0600);
	assert_int_equal(backup_secret_load_file(BACKUP_KEY_PASSPHRASE, path, &a, err, sizeof(err)), 0);
	assert_int_equal(a.len, 7);
	assert_memory_equal(a.bytes, "hunter2", 7);
	backup_secret_release(&a);
	chmod(path, 0644);
	assert_int_equal(backup_secret_load_file(BACKUP_KEY_PASSPHRASE, path, &a, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "chmod 600"));
	unlink(path);
	/* A key: hex with a newline, and the same 32 bytes raw. */
	unsigned char raw[32];
	char hex[66];
	for (int i = 0; i < 32; i++) {
		raw[i] = (unsigned char)(i * 9 + 1);
		snprintf(hex + 2 * i, 3, "%02X", raw[i]);
	}
	hex[64] = '\n';
	snprintf(path, sizeof(path), "%s/key.hex", dir);
	write_secret_file(path, hex, 65, 0400);
	assert_int_equal(backup_secret_load_file(BACKUP_KEY_FILE, path, &a, err, sizeof(err)), 0);
	unlink(path);
	snprintf(path, sizeof(path), "%s/key.raw", dir);
	write_secret_file(path, raw, 32, 0600);
	assert_int_equal(backup_secret_load_file(BACKUP_KEY_FILE, path, &b, err, sizeof(err)), 0);
	assert_int_equal(a.len, 32);
	assert_memory_equal(a.bytes, b.bytes, 32);
	backup_secret_release(&a);
	backup_secret_release(&b);
	write_secret_file(path, "short", 5, 0600);
	assert_int_equal(backup_secret_load_file(BACKUP_KEY_FILE, path, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "64 hex digits"));
	unlink(path);
	assert_int_equal(backup_secret_load_file(BACKUP_KEY_FILE, path, &a, err, sizeof(err)), -ENOENT);
	rmdir(dir);
}

static void test_names(void **state)
{
	(void)state;
	struct backup_secret s1, s2, k;
	secret(BACKUP_KEY_PASSPHRASE, "one", &s1);
	secret(BACKUP_KEY_PASSPHRASE, "two", &s2);
	secret(BACKUP_KEY_FILE, "key", &k);
	char a[BACKUP_CRYPT_NAME_HEX], a2[BACKUP_CRYPT_NAME_HEX], b[BACKUP_CRYPT_NAME_HEX], c[BACKUP_CRYPT_NAME_HEX],
		d[BACKUP_CRYPT_NAME_HEX], err[256];
	assert_int_equal(backup_crypt_name(&s1, "wiki", a, err, sizeof(err)), 0);
	assert_int_equal(backup_crypt_name(&s1, "wiki", a2, err, sizeof(err)), 0);
	assert_int_equal(backup_crypt_name(&s1, "blog", b, err, sizeof(err)), 0);
	assert_int_equal(backup_crypt_name(&s2, "wiki", c, err, sizeof(err)), 0);
	assert_int_equal(backup_crypt_name(&k, "wiki", d, err, sizeof(err)), 0);
	assert_int_equal(strlen(a), 24);
	assert_string_equal(a, a2);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_null(strstr(a, "wiki"));
	backup_secret_release(&s1);
	backup_secret_release(&s2);
	backup_secret_release(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_passphrase),
		cmocka_unit_test(test_round_trip_key),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_flipped_byte),
		cmocka_unit_test(test_truncated_reordered),
		cmocka_unit_test(test_load_files),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
