/* backup_crypt.h — encrypted backup archives (optional; [backups]
 * encryption_passphrase_file or encryption_key_file).
 *
 * An encrypted archive is the plain archive (the .tar.zst/.tar.gz bytes)
 * cut into chunks of 64 KiB, each sealed with AES-256-GCM, behind a header.
 * Its name ends in ".enc". Format, version 1 (all integers big-endian):
 *
 *   header, 64 bytes:
 *     0   8  magic "BOXDENC1"
 *     8   1  version, 1
 *     9   1  key kind: 1 = passphrase (scrypt), 2 = key file
 *     10  1  log2 of the chunk size: 16 (65536 bytes of plaintext)
 *     11  1  scrypt log2(N) (15), 0 for a key file
 *     12  4  scrypt r (8), 0 for a key file
 *     16  4  scrypt p (1), 0 for a key file
 *     20  16 salt, random for every archive
 *     36  16 key check: HMAC-SHA256(file key, "boxd backup key check v1"), first 16 bytes
 *     52  12 zero
 *   then records, one per chunk: ciphertext (chunk size bytes; the last
 *   record 0..chunk size) followed by its 16-byte GCM tag.
 *
 *   file key   passphrase: scrypt(passphrase, salt, N, r, p) → 32 bytes;
 *              key file:   HMAC-SHA256(key, "boxd backup file key v1" || salt).
 *              So every archive has a key of its own, and the nonces can
 *              be counters.
 *   nonce      12 bytes: the record's index (0, 1, ...) as 8 bytes, three
 *              zero bytes, then 1 for the last record and 0 for the others.
 *   AAD        the 64-byte header.
 *
 * What that detects: a wrong passphrase or key (the key check, before any
 * record is read: -EKEYREJECTED); any changed byte (that record's tag, or
 * the header's, since every record authenticates it); records swapped,
 * dropped or repeated (the index in the nonce); a file cut short, even at
 * a record boundary (the last record must carry the final flag, and
 * nothing may follow it). The last record is always written, empty for an
 * empty plaintext.
 *
 * A passphrase file holds the passphrase (one trailing newline is not part
 * of it); a key file holds 32 bytes, raw or as 64 hex digits (a trailing
 * newline allowed). Either must be a regular file not readable by group or
 * others (EACCES otherwise: a key others can read is no key).
 *
 * File names. An encrypted app archive does not carry the app's id in its
 * name: "app-<N>-..." where N is the first 24 hex digits of HMAC-SHA256(name
 * key, app id); name key: scrypt(passphrase, "boxd backup names v1", N, r,
 * p), or HMAC-SHA256(key, "boxd backup names v1"). The same app gets the
 * same name under the same secret, so the archives of one app can be found
 * by whoever has the key, and by no one else.
 *
 * Functions return 0 or a negative errno with a message in err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"

#define BACKUP_CRYPT_MAGIC "BOXDENC1"
#define BACKUP_CRYPT_HEADER 64
#define BACKUP_CRYPT_TAG 16
#define BACKUP_CRYPT_CHUNK_LOG2 16
#define BACKUP_CRYPT_CHUNK (1u << BACKUP_CRYPT_CHUNK_LOG2)
#define BACKUP_CRYPT_EXT ".enc"
#define BACKUP_CRYPT_NAME_HEX 25 /* 24 hex digits and the NUL */

enum backup_key_kind {
	BACKUP_KEY_NONE = 0,
	BACKUP_KEY_PASSPHRASE = 1,
	BACKUP_KEY_FILE = 2,
};

/* The secret archives are sealed with. */
struct backup_secret {
	enum backup_key_kind kind;
	unsigned char *bytes; /* the passphrase, or the 32-byte key */
	size_t len;
	int scrypt_log2n;     /* 15; tests use less */
	/* For names: derived once (backup_crypt_name). */
	bool has_name_key;
	unsigned char name_key[32];
	/* The last file key scrypt derived, by salt: a restore opens an
	 * archive twice (verify, then extract) and pays scrypt once. Not for
	 * threads sharing one secret. */
	bool has_cached;
	unsigned char cached_salt[16], cached_key[32];
};

/* From the config: kind NONE (no encryption) when neither
 * encryption_passphrase_file nor encryption_key_file is set. */
int backup_secret_load(const struct boxd_config *cfg, struct backup_secret *ret, char *err, size_t errlen);
/* From a file, as the config would name it. */
int backup_secret_load_file(enum backup_key_kind kind, const char *path, struct backup_secret *ret, char *err,
			    size_t errlen);
/* From memory (tests, and callers that read the secret themselves). */
int backup_secret_set(enum backup_key_kind kind, const void *bytes, size_t len, struct backup_secret *ret, char *err,
		      size_t errlen);
void backup_secret_release(struct backup_secret *s);

/* The name part that stands for `app_id` in an encrypted archive's name:
 * 24 hex digits (see above). */
int backup_crypt_name(struct backup_secret *s, const char *app_id, char ret[BACKUP_CRYPT_NAME_HEX], char *err,
		      size_t errlen);

/* Is `buf` (at least len bytes of a file's start) an encrypted archive's
 * header? */
bool backup_crypt_is_encrypted(const void *buf, size_t len);

/* ---- sealing ------------------------------------------------------------------
 * backup_enc_new() draws the salt, derives the file key and gives the
 * header; backup_enc_update() takes plaintext in any pieces and hands whole
 * records to `out`; backup_enc_final() seals the last one. `out` returns 0
 * or a negative errno, which is passed back. */
struct backup_enc;
typedef int (*backup_crypt_out_fn)(void *userdata, const void *buf, size_t len);

int backup_enc_new(const struct backup_secret *s, struct backup_enc **ret, unsigned char header[BACKUP_CRYPT_HEADER],
		   char *err, size_t errlen);
int backup_enc_update(struct backup_enc *e, const void *buf, size_t len, backup_crypt_out_fn out, void *userdata);
int backup_enc_final(struct backup_enc *e, backup_crypt_out_fn out, void *userdata);
void backup_enc_free(struct backup_enc *e);

/* ---- opening ------------------------------------------------------------------
 * A reader pulls the file through `in` (which returns bytes read, 0 at
 * the end, or a negative errno; the caller may hash what passes) and
 * hands out plaintext one record at a time. backup_dec_new() reads and
 * checks the header: -EBADMSG not an archive of this format (or a version
 * it does not know), -ENOKEY no secret configured, -EKEYREJECTED the
 * secret is of the other kind or wrong. backup_dec_next() gives the next
 * record's plaintext (valid until the next call): its length, 0 after the
 * last record, or -EBADMSG (with a message) when a record does not
 * authenticate or the file ends early. */
struct backup_dec;
typedef ssize_t (*backup_crypt_in_fn)(void *userdata, void *buf, size_t len);

int backup_dec_new(const struct backup_secret *s, backup_crypt_in_fn in, void *userdata, struct backup_dec **ret,
		   char *err, size_t errlen);
ssize_t backup_dec_next(struct backup_dec *d, const void **ret_buf, char *err, size_t errlen);
/* Plaintext bytes handed out so far. */
int64_t backup_dec_plain_bytes(const struct backup_dec *d);
void backup_dec_free(struct backup_dec *d);
