/* tokens.c — the tokens file; see tokens.h. */
#include "tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/random.h"
#include "common/sha256.h"
#include "common/tempfile.h"
#include "common/timeutil.h"

#define HASH_HEX 64

bool token_name_valid(const char *name)
{
	size_t len = 0;
	for (const char *p = name; *p; p++, len++) {
		char c = *p;
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (len == 0 || !strchr("._-", c)))
			return false;
	}
	return len > 0 && len <= TOKEN_NAME_MAX;
}

/* The whole file as lines (each without its newline). A missing file has
 * none. */
struct lines {
	char **v;
	size_t n;
};

static void lines_release(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct lines){ 0 };
}

static int lines_read(const char *path, struct lines *ret, char *err, size_t errlen)
{
	struct lines l = { 0 };
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT) {
			*ret = l;
			return 0;
		}
		int e = errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		char **grown = realloc(l.v, (l.n + 1) * sizeof(*l.v));
		char *copy = strdup(line);
		if (!grown || !copy) {
			free(copy);
			if (grown)
				l.v = grown;
			r = -ENOMEM;
			break;
		}
		l.v = grown;
		l.v[l.n++] = copy;
	}
	free(line);
	if (r == 0 && ferror(f))
		r = -EIO;
	fclose(f);
	if (r < 0) {
		lines_release(&l);
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	*ret = l;
	return 0;
}

/* The name field of a line ("HASH NAME [CREATED]") into buf; false when the
 * line has none that fits. */
static bool line_name(const char *line, char *buf, size_t len)
{
	if (strlen(line) < HASH_HEX + 2 || line[HASH_HEX] != ' ')
		return false;
	const char *name = line + HASH_HEX + 1;
	size_t n = strcspn(name, " ");
	if (n == 0 || n >= len)
		return false;
	memcpy(buf, name, n);
	buf[n] = '\0';
	return true;
}

/* Replace the file with `l`: temp file, fsync, rename, fsync the dir. */
static int lines_write(const char *path, const struct lines *l, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%s\n", l->v[i]);
	if (fclose(f) != 0) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = tempfile_write(path, text, len, 0600);
	free(text);
	if (r < 0)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
	return r;
}

/* The change lock; returns its fd (close to release). */
static int lock_file(const char *path, char *err, size_t errlen)
{
	char lock[PATH_MAX];
	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -ENAMETOOLONG;
	}
	int fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "cannot lock %s: %s", lock, strerror(e));
		return -e;
	}
	return fd;
}

static ssize_t find_name(const struct lines *l, const char *name)
{
	char buf[TOKEN_NAME_MAX + 1];
	for (size_t i = 0; i < l->n; i++)
		if (line_name(l->v[i], buf, sizeof(buf)) && strcmp(buf, name) == 0)
			return (ssize_t)i;
	return -1;
}

int tokens_create(const char *path, const char *name, char ret_token[TOKEN_LEN + 1], char *err, size_t errlen)
{
	if (!token_name_valid(name)) {
		snprintf(err, errlen, "a token name is 1 to %d of letters, digits and ._- starting with a letter or digit",
			 TOKEN_NAME_MAX);
		return -EINVAL;
	}
	unsigned char raw[24];
	if (random_bytes(raw, sizeof(raw)) < 0) {
		snprintf(err, errlen, "no randomness available");
		return -EIO;
	}
	char token[TOKEN_LEN + 1] = "boxd_";
	hex_encode(raw, sizeof(raw), token + 5);
	char hash[HASH_HEX + 1], created[40];
	if (sha256_hex(token, strlen(token), hash) < 0) {
		snprintf(err, errlen, "cannot hash the token");
		return -EIO;
	}
	format_rfc3339_ms(now_wall_ms(), created, sizeof(created));

	int lk = lock_file(path, err, errlen);
	if (lk < 0)
		return lk;
	struct lines l = { 0 };
	int r = lines_read(path, &l, err, errlen);
	if (r == 0 && find_name(&l, name) >= 0) {
		snprintf(err, errlen, "a token named '%s' already exists (boxd token revoke %s first)", name, name);
		r = -EEXIST;
	}
	char *line = NULL;
	if (r == 0 && asprintf(&line, "%s %s %s", hash, name, created) < 0) {
		line = NULL;
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
	}
	if (r == 0) {
		char **grown = realloc(l.v, (l.n + 1) * sizeof(*l.v));
		if (!grown) {
			free(line);
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
		} else {
			l.v = grown;
			l.v[l.n++] = line;
			r = lines_write(path, &l, err, errlen);
		}
	}
	lines_release(&l);
	close(lk);
	if (r == 0)
		memcpy(ret_token, token, sizeof(token));
	OPENSSL_cleanse(token, sizeof(token));
	return r;
}

int tokens_revoke(const char *path, const char *name, char *err, size_t errlen)
{
	int lk = lock_file(path, err, errlen);
	if (lk < 0)
		return lk;
	struct lines l = { 0 };
	int r = lines_read(path, &l, err, errlen);
	ssize_t i = r == 0 ? find_name(&l, name) : -1;
	if (r == 0 && i < 0) {
		snprintf(err, errlen, "no token named '%s'", name);
		r = -ENOENT;
	}
	if (r == 0) {
		free(l.v[i]);
		memmove(&l.v[i], &l.v[i + 1], (l.n - (size_t)i - 1) * sizeof(*l.v));
		l.n--;
		r = lines_write(path, &l, err, errlen);
	}
	lines_release(&l);
	close(lk);
	return r;
}

int tokens_list(const char *path, struct token_list *ret, char *err, size_t errlen)
{
	struct lines l = { 0 };
	int r = lines_read(path, &l, err, errlen);
	if (r < 0)
		return r;
	struct token_list out = { .v = calloc(l.n ? l.n : 1, sizeof(*out.v)) };
	if (!out.v) {
		lines_release(&l);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct token_entry *e = &out.v[out.n];
		if (!line_name(l.v[i], e->name, sizeof(e->name)))
			continue;
		const char *rest = l.v[i] + HASH_HEX + 1 + strlen(e->name);
		snprintf(e->created, sizeof(e->created), "%s", *rest == ' ' ? rest + 1 : "");
		out.n++;
	}
	lines_release(&l);
	*ret = out;
	return 0;
}

void token_list_release(struct token_list *l)
{
	if (!l)
		return;
	free(l->v);
	*l = (struct token_list){ 0 };
}

int tokens_hash(const char *token, char ret_hex[65])
{
	return sha256_hex(token, strlen(token), ret_hex);
}

bool tokens_check(const char *path, const char *token)
{
	char hex[HASH_HEX + 1];
	if (!token || sha256_hex(token, strlen(token), hex) < 0)
		return false;
	return tokens_check_hash(path, hex);
}

bool tokens_check_hash(const char *path, const char *hex)
{
	if (!hex || strlen(hex) != HASH_HEX)
		return false;
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool ok = false;
	while ((n = getline(&line, &cap, f)) >= 0) {
		/* Compare all 64 characters whatever the line holds, in
		 * constant time; a line without a full hash never matches. */
		char want[HASH_HEX + 1] = { 0 };
		memcpy(want, line, strnlen(line, HASH_HEX));
		bool whole = n == HASH_HEX || (n > HASH_HEX && (line[HASH_HEX] == ' ' || line[HASH_HEX] == '\n'));
		ok |= (CRYPTO_memcmp(want, hex, HASH_HEX) == 0) & whole;
	}
	free(line);
	fclose(f);
	return ok;
}
