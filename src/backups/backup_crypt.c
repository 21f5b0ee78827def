/* backup_crypt.c — see backup_crypt.h. OpenSSL does the cryptography:
 * EVP_PBE_scrypt, HMAC-SHA256, AES-256-GCM through EVP_CIPHER_CTX. */
#include "backup_crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hex.h"

#define KEY_LEN 32
#define SALT_LEN 16
#define CHECK_LEN 16
#define SCRYPT_LOG2N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAXMEM (256u * 1024 * 1024)
#define RECORD_MAX (BACKUP_CRYPT_CHUNK + BACKUP_CRYPT_TAG)
#define SECRET_MAX 4096

static const char file_key_label[] = "boxd backup file key v1";
static const char check_label[] = "boxd backup key check v1";
static const char names_label[] = "boxd backup names v1";

static int say(char *err, size_t errlen, int r, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg);
	return r;
}

/* ---- the secret ------------------------------------------------------------------ */

void backup_secret_release(struct backup_secret *s)
{
	if (s->bytes) {
		OPENSSL_cleanse(s->bytes, s->len);
		free(s->bytes);
	}
	OPENSSL_cleanse(s->name_key, sizeof(s->name_key));
	OPENSSL_cleanse(s->cached_key, sizeof(s->cached_key));
	*s = (struct backup_secret){ 0 };
}

int backup_secret_set(enum backup_key_kind kind, const void *bytes, size_t len, struct backup_secret *ret, char *err,
		      size_t errlen)
{
	*ret = (struct backup_secret){ .kind = kind, .scrypt_log2n = SCRYPT_LOG2N };
	if (kind == BACKUP_KEY_NONE)
		return 0;
	if (kind == BACKUP_KEY_FILE && len != KEY_LEN)
		return say(err, errlen, -EINVAL, "a backup key must be 32 bytes%s", "");
	if (kind == BACKUP_KEY_PASSPHRASE && len == 0)
		return say(err, errlen, -EINVAL, "the backup passphrase is empty%s", "");
	if (!(ret->bytes = malloc(len)))
		return say(err, errlen, -ENOMEM, "out of memory%s", "");
	memcpy(ret->bytes, bytes, len);
	ret->len = len;
	return 0;
}

int backup_secret_load_file(enum backup_key_kind kind, const char *path, struct backup_secret *ret, char *err,
			    size_t errlen)
{
	unsigned char buf[SECRET_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 044)) {
		close(fd);
		snprintf(err, errlen, "%s must be a regular file that only its owner can read (chmod 600)", path);
		return -EACCES;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_MAX) {
			close(fd);
			OPENSSL_cleanse(buf, sizeof(buf));
			snprintf(err, errlen, "%s is longer than %d bytes", path, SECRET_MAX);
			return -EINVAL;
		}
	}
	close(fd);
	int r;
	if (kind == BACKUP_KEY_PASSPHRASE) {
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		r = backup_secret_set(kind, buf, len, ret, err, errlen);
	} else {
		unsigned char key[KEY_LEN];
		size_t hexlen = len;
		while (hexlen > 0 && (buf[hexlen - 1] == '\n' || buf[hexlen - 1] == '\r'))
			hexlen--;
		r = 0;
		if (len == KEY_LEN) {
			memcpy(key, buf, KEY_LEN);
		} else if (hexlen == 2 * KEY_LEN) {
			r = hex_decode((const char *)buf, KEY_LEN, key);
		} else {
			r = -EINVAL;
		}
		if (r < 0)
			snprintf(err, errlen, "%s must hold a 32-byte key: 32 raw bytes or 64 hex digits (e.g. openssl rand "
				 "-hex 32)", path);
		else
			r = backup_secret_set(kind, key, KEY_LEN, ret, err, errlen);
		OPENSSL_cleanse(key, sizeof(key));
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (r == -EINVAL && kind == BACKUP_KEY_PASSPHRASE)
		snprintf(err, errlen, "%s: the backup passphrase is empty", path);
	return r;
}

int backup_secret_load(const struct boxd_config *cfg, struct backup_secret *ret, char *err, size_t errlen)
{
	*ret = (struct backup_secret){ .scrypt_log2n = SCRYPT_LOG2N };
	const char *pass = cfg->backups_passphrase_file, *key = cfg->backups_key_file;
	if (pass && key)
		return say(err, errlen, -EINVAL,
			   "[backups] encryption_passphrase_file and encryption_key_file are both set; use one%s", "");
	if (pass)
		return backup_secret_load_file(BACKUP_KEY_PASSPHRASE, pass, ret, err, errlen);
	if (key)
		return backup_secret_load_file(BACKUP_KEY_FILE, key, ret, err, errlen);
	return 0;
}

static int hmac(const unsigned char *key, size_t keylen, const void *a, size_t alen, const void *b, size_t blen,
		unsigned char out[32])
{
	unsigned char msg[256];
	if (alen + blen > sizeof(msg))
		return -EINVAL;
	memcpy(msg, a, alen);
	if (blen)
		memcpy(msg + alen, b, blen);
	unsigned len = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, alen + blen, out, &len) || len != 32)
		return -EIO;
	return 0;
}

/* The file key of an archive, from the secret and the header's fields. */
static int derive(const struct backup_secret *s, const unsigned char *salt, size_t saltlen, int log2n, uint32_t r,
		  uint32_t p, unsigned char out[KEY_LEN])
{
	if (s->kind == BACKUP_KEY_PASSPHRASE) {
		if (log2n < 1 || log2n > 22 || r < 1 || r > 32 || p < 1 || p > 16)
			return -EINVAL;
		/* The cache holds keys of the header's standard parameters only
		 * (what this boxd writes), by salt. */
		struct backup_secret *m = (struct backup_secret *)s;
		bool cacheable = saltlen == SALT_LEN && log2n == s->scrypt_log2n && r == SCRYPT_R && p == SCRYPT_P;
		if (cacheable && m->has_cached && CRYPTO_memcmp(m->cached_salt, salt, SALT_LEN) == 0) {
			memcpy(out, m->cached_key, KEY_LEN);
			return 0;
		}
		if (!EVP_PBE_scrypt((const char *)s->bytes, s->len, salt, saltlen, 1ULL << log2n, r, p, SCRYPT_MAXMEM,
				    out, KEY_LEN))
			return -ENOMEM;
		if (cacheable) {
			memcpy(m->cached_salt, salt, SALT_LEN);
			memcpy(m->cached_key, out, KEY_LEN);
			m->has_cached = true;
		}
		return 0;
	}
	return hmac(s->bytes, s->len, file_key_label, sizeof(file_key_label) - 1, salt, saltlen, out);
}

int backup_crypt_name(struct backup_secret *s, const char *app_id, char ret[BACKUP_CRYPT_NAME_HEX], char *err,
		      size_t errlen)
{
	if (s->kind == BACKUP_KEY_NONE)
		return say(err, errlen, -ENOKEY, "no backup key is configured%s", "");
	if (!s->has_name_key) {
		int r = s->kind == BACKUP_KEY_PASSPHRASE
				? derive(s, (const unsigned char *)names_label, sizeof(names_label) - 1, s->scrypt_log2n,
					 SCRYPT_R, SCRYPT_P, s->name_key)
				: hmac(s->bytes, s->len, names_label, sizeof(names_label) - 1, NULL, 0, s->name_key);
		if (r < 0)
			return say(err, errlen, r, "cannot derive the name key%s", "");
		s->has_name_key = true;
	}
	unsigned char mac[32];
	if (hmac(s->name_key, sizeof(s->name_key), app_id, strlen(app_id), NULL, 0, mac) < 0)
		return say(err, errlen, -EINVAL, "cannot hash app id %s", app_id);
	hex_encode(mac, 12, ret); /* 24 digits */
	return 0;
}

bool backup_crypt_is_encrypted(const void *buf, size_t len)
{
	return len >= 8 && memcmp(buf, BACKUP_CRYPT_MAGIC, 8) == 0;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void nonce_of(uint64_t index, bool final, unsigned char nonce[12])
{
	for (int i = 0; i < 8; i++)
		nonce[i] = (unsigned char)(index >> (56 - 8 * i));
	nonce[8] = nonce[9] = nonce[10] = 0;
	nonce[11] = final ? 1 : 0;
}

/* ---- sealing ------------------------------------------------------------------- */

struct backup_enc {
	EVP_CIPHER_CTX *c;
	unsigned char key[KEY_LEN];
	unsigned char header[BACKUP_CRYPT_HEADER];
	unsigned char *plain; /* one chunk being filled */
	size_t fill;
	unsigned char *record;
	uint64_t index;
};

void backup_enc_free(struct backup_enc *e)
{
	if (!e)
		return;
	EVP_CIPHER_CTX_free(e->c);
	OPENSSL_cleanse(e->key, sizeof(e->key));
	if (e->plain)
		OPENSSL_cleanse(e->plain, BACKUP_CRYPT_CHUNK);
	free(e->plain);
	free(e->record);
	free(e);
}

int backup_enc_new(const struct backup_secret *s, struct backup_enc **ret, unsigned char header[BACKUP_CRYPT_HEADER],
		   char *err, size_t errlen)
{
	if (s->kind == BACKUP_KEY_NONE)
		return say(err, errlen, -ENOKEY, "no backup key is configured%s", "");
	struct backup_enc *e = calloc(1, sizeof(*e));
	if (!e || !(e->c = EVP_CIPHER_CTX_new()) || !(e->plain = malloc(BACKUP_CRYPT_CHUNK)) ||
	    !(e->record = malloc(RECORD_MAX))) {
		backup_enc_free(e);
		return say(err, errlen, -ENOMEM, "out of memory%s", "");
	}
	unsigned char *h = e->header;
	memcpy(h, BACKUP_CRYPT_MAGIC, 8);
	h[8] = 1;
	h[9] = (unsigned char)s->kind;
	h[10] = BACKUP_CRYPT_CHUNK_LOG2;
	bool pass = s->kind == BACKUP_KEY_PASSPHRASE;
	h[11] = pass ? (unsigned char)s->scrypt_log2n : 0;
	put32(h + 12, pass ? SCRYPT_R : 0);
	put32(h + 16, pass ? SCRYPT_P : 0);
	if (RAND_bytes(h + 20, SALT_LEN) != 1) {
		backup_enc_free(e);
		return say(err, errlen, -EIO, "cannot draw a random salt%s", "");
	}
	unsigned char check[32];
	int r = derive(s, h + 20, SALT_LEN, h[11], get32(h + 12), get32(h + 16), e->key);
	if (r == 0)
		r = hmac(e->key, KEY_LEN, check_label, sizeof(check_label) - 1, NULL, 0, check);
	if (r < 0) {
		backup_enc_free(e);
		return say(err, errlen, r, "cannot derive the archive's key%s", "");
	}
	memcpy(h + 36, check, CHECK_LEN);
	if (EVP_EncryptInit_ex(e->c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(e->c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_EncryptInit_ex(e->c, NULL, NULL, e->key, NULL) != 1) {
		backup_enc_free(e);
		return say(err, errlen, -EIO, "cannot set up AES-256-GCM%s", "");
	}
	memcpy(header, h, BACKUP_CRYPT_HEADER);
	*ret = e;
	return 0;
}

/* Seal e->plain[0..fill) as record e->index and hand it on. */
static int seal(struct backup_enc *e, bool final, backup_crypt_out_fn out, void *userdata)
{
	unsigned char nonce[12];
	nonce_of(e->index, final, nonce);
	int len = 0, tail = 0;
	if (EVP_EncryptInit_ex(e->c, NULL, NULL, NULL, nonce) != 1 || /* cipher and key: set once */
	    EVP_EncryptUpdate(e->c, NULL, &len, e->header, BACKUP_CRYPT_HEADER) != 1 ||
	    (e->fill && EVP_EncryptUpdate(e->c, e->record, &len, e->plain, (int)e->fill) != 1) ||
	    EVP_EncryptFinal_ex(e->c, e->record + (e->fill ? len : 0), &tail) != 1 ||
	    EVP_CIPHER_CTX_ctrl(e->c, EVP_CTRL_GCM_GET_TAG, BACKUP_CRYPT_TAG, e->record + e->fill) != 1)
		return -EIO;
	e->index++;
	size_t n = e->fill + BACKUP_CRYPT_TAG;
	e->fill = 0;
	return out(userdata, e->record, n);
}

int backup_enc_update(struct backup_enc *e, const void *buf, size_t len, backup_crypt_out_fn out, void *userdata)
{
	const unsigned char *p = buf;
	while (len > 0) {
		/* A full chunk is sealed only when more data follows: the last
		 * record must carry the final flag. */
		if (e->fill == BACKUP_CRYPT_CHUNK) {
			int r = seal(e, false, out, userdata);
			if (r < 0)
				return r;
		}
		size_t n = BACKUP_CRYPT_CHUNK - e->fill;
		if (n > len)
			n = len;
		memcpy(e->plain + e->fill, p, n);
		e->fill += n;
		p += n;
		len -= n;
	}
	return 0;
}

int backup_enc_final(struct backup_enc *e, backup_crypt_out_fn out, void *userdata)
{
	return seal(e, true, out, userdata);
}

/* ---- opening ------------------------------------------------------------------- */

struct backup_dec {
	EVP_CIPHER_CTX *c;
	backup_crypt_in_fn in;
	void *userdata;
	unsigned char key[KEY_LEN];
	unsigned char header[BACKUP_CRYPT_HEADER];
	size_t record_max;
	unsigned char *buf;  /* read ahead: up to record_max + 1 bytes */
	size_t have;
	unsigned char *plain;
	uint64_t index;
	bool eof, done;
	int64_t plain_bytes;
};

void backup_dec_free(struct backup_dec *d)
{
	if (!d)
		return;
	EVP_CIPHER_CTX_free(d->c);
	OPENSSL_cleanse(d->key, sizeof(d->key));
	if (d->plain)
		OPENSSL_cleanse(d->plain, d->record_max);
	free(d->plain);
	free(d->buf);
	free(d);
}

/* Read until `want` bytes are buffered or the input ends. */
static int fill_to(struct backup_dec *d, size_t want)
{
	while (d->have < want && !d->eof) {
		ssize_t n = d->in(d->userdata, d->buf + d->have, want - d->have);
		if (n < 0)
			return (int)n;
		if (n == 0)
			d->eof = true;
		d->have += (size_t)n;
	}
	return 0;
}

int backup_dec_new(const struct backup_secret *s, backup_crypt_in_fn in, void *userdata, struct backup_dec **ret,
		   char *err, size_t errlen)
{
	struct backup_dec *d = calloc(1, sizeof(*d));
	if (!d || !(d->c = EVP_CIPHER_CTX_new())) {
		backup_dec_free(d);
		return say(err, errlen, -ENOMEM, "out of memory%s", "");
	}
	d->in = in;
	d->userdata = userdata;
	unsigned char *h = d->header;
	size_t got = 0;
	int r = 0;
	while (got < BACKUP_CRYPT_HEADER) {
		ssize_t n = in(userdata, h + got, BACKUP_CRYPT_HEADER - got);
		if (n < 0) {
			r = say(err, errlen, (int)n, "cannot read the archive's header%s", "");
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got < BACKUP_CRYPT_HEADER || !backup_crypt_is_encrypted(h, got)) {
		r = say(err, errlen, -EBADMSG, "not an encrypted boxd archive (no BOXDENC1 header)%s", "");
		goto fail;
	}
	if (h[8] != 1 || (h[9] != BACKUP_KEY_PASSPHRASE && h[9] != BACKUP_KEY_FILE) || h[10] < 12 || h[10] > 24) {
		snprintf(err, errlen, "encrypted archive of an unknown version (%u) or kind (%u)", h[8], h[9]);
		r = -EBADMSG;
		goto fail;
	}
	if (s->kind == BACKUP_KEY_NONE) {
		snprintf(err, errlen, "the archive is encrypted with a %s and no [backups] encryption_%s_file is configured",
			 h[9] == BACKUP_KEY_PASSPHRASE ? "passphrase" : "key file",
			 h[9] == BACKUP_KEY_PASSPHRASE ? "passphrase" : "key");
		r = -ENOKEY;
		goto fail;
	}
	if (h[9] != (unsigned char)s->kind) {
		snprintf(err, errlen, "the archive is encrypted with a %s, but a %s is configured",
			 h[9] == BACKUP_KEY_PASSPHRASE ? "passphrase" : "key file",
			 s->kind == BACKUP_KEY_PASSPHRASE ? "passphrase" : "key file");
		r = -EKEYREJECTED;
		goto fail;
	}
	unsigned char check[32];
	r = derive(s, h + 20, SALT_LEN, h[11], get32(h + 12), get32(h + 16), d->key);
	if (r == 0)
		r = hmac(d->key, KEY_LEN, check_label, sizeof(check_label) - 1, NULL, 0, check);
	if (r < 0) {
		r = say(err, errlen, r == -EINVAL ? -EBADMSG : r, "cannot derive the archive's key (bad scrypt parameters in "
			"its header?)%s", "");
		goto fail;
	}
	if (CRYPTO_memcmp(check, h + 36, CHECK_LEN) != 0) {
		r = say(err, errlen, -EKEYREJECTED,
			"wrong backup %s: the archive was encrypted with another one (or its header is damaged)",
			s->kind == BACKUP_KEY_PASSPHRASE ? "passphrase" : "key");
		goto fail;
	}
	if (EVP_DecryptInit_ex(d->c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(d->c, NULL, NULL, d->key, NULL) != 1) {
		r = say(err, errlen, -EIO, "cannot set up AES-256-GCM%s", "");
		goto fail;
	}
	d->record_max = ((size_t)1 << h[10]) + BACKUP_CRYPT_TAG;
	if (!(d->buf = malloc(d->record_max + 1)) || !(d->plain = malloc(d->record_max))) {
		r = say(err, errlen, -ENOMEM, "out of memory%s", "");
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	backup_dec_free(d);
	return r;
}

ssize_t backup_dec_next(struct backup_dec *d, const void **ret_buf, char *err, size_t errlen)
{
	if (d->done)
		return 0;
	/* One byte beyond a full record tells whether this one is the last. */
	int r = fill_to(d, d->record_max + 1);
	if (r < 0)
		return say(err, errlen, r, "cannot read the archive%s", "");
	bool final = d->have <= d->record_max;
	size_t n = final ? d->have : d->record_max;
	if (n < BACKUP_CRYPT_TAG) {
		snprintf(err, errlen, "the encrypted archive ends early (record %llu is cut short or missing)",
			 (unsigned long long)d->index);
		return -EBADMSG;
	}
	size_t clen = n - BACKUP_CRYPT_TAG;
	unsigned char nonce[12];
	nonce_of(d->index, final, nonce);
	int len = 0, tail = 0;
	bool ok = EVP_DecryptInit_ex(d->c, NULL, NULL, NULL, nonce) == 1 && /* cipher and key: set once */
		  EVP_DecryptUpdate(d->c, NULL, &len, d->header, BACKUP_CRYPT_HEADER) == 1 &&
		  (clen == 0 || EVP_DecryptUpdate(d->c, d->plain, &len, d->buf, (int)clen) == 1) &&
		  EVP_CIPHER_CTX_ctrl(d->c, EVP_CTRL_GCM_SET_TAG, BACKUP_CRYPT_TAG, d->buf + clen) == 1 &&
		  EVP_DecryptFinal_ex(d->c, d->plain + (clen ? len : 0), &tail) == 1;
	if (!ok) {
		snprintf(err, errlen,
			 "the encrypted archive is damaged: record %llu (bytes %llu-%llu) does not authenticate%s",
			 (unsigned long long)d->index,
			 (unsigned long long)(BACKUP_CRYPT_HEADER + d->index * d->record_max),
			 (unsigned long long)(BACKUP_CRYPT_HEADER + d->index * d->record_max + n - 1),
			 final ? " (changed, reordered, or the file was cut short)" : " (changed or reordered)");
		return -EBADMSG;
	}
	d->index++;
	memmove(d->buf, d->buf + n, d->have - n);
	d->have -= n;
	if (final)
		d->done = true;
	d->plain_bytes += (int64_t)clen;
	*ret_buf = d->plain;
	if (final && clen == 0)
		return 0;
	return (ssize_t)clen;
}

int64_t backup_dec_plain_bytes(const struct backup_dec *d) { return d->plain_bytes; }
