/* tokens.h — API tokens of the TCP listener: the tokens file.
 *
 * A token is "boxd_" followed by 48 hex digits (24 random bytes); it is
 * shown once, when it is created, and never stored. The tokens file
 * (`[api] tokens_file`, default <state>/api-tokens, mode 0600) holds one
 * line per token:
 *
 *	<SHA-256 of the token, 64 hex digits> <name> <created, RFC 3339>\n
 *
 * (lines written by older versions lack the creation time). Names are 1 to
 * TOKEN_NAME_MAX of [A-Za-z0-9._-], starting with a letter or a digit, and
 * unique in the file.
 *
 * Every change holds an exclusive flock on "<file>.lock" from the read to
 * the rename, and rewrites the whole file (temp file 0600, fsync, rename,
 * fsync of the dir): a reader never sees half a file, two changes never
 * lose one another, and the server, which reads the file at each request,
 * refuses a revoked token from the next request on.
 *
 * Functions return 0 or a negative errno with a message in err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_NAME_MAX 128
#define TOKEN_LEN 53 /* "boxd_" + 48 hex digits */

struct token_entry {
	char name[TOKEN_NAME_MAX + 1];
	char created[40]; /* "" when the line has none */
};

struct token_list {
	struct token_entry *v;
	size_t n;
};

bool token_name_valid(const char *name);

/* Make a token named `name` and record its hash. -EINVAL: a bad name;
 * -EEXIST: the name is taken. Nothing is written on failure. */
int tokens_create(const char *path, const char *name, char ret_token[TOKEN_LEN + 1], char *err, size_t errlen);

/* Remove the token named `name`. -ENOENT: there is none. */
int tokens_revoke(const char *path, const char *name, char *err, size_t errlen);

/* The tokens in file order (oldest first). A missing file is an empty
 * list. Release with token_list_release(). */
int tokens_list(const char *path, struct token_list *ret, char *err, size_t errlen);
void token_list_release(struct token_list *l);

/* Does `token` (the part after "Bearer ") match a line of the file? Every
 * line's hash is compared, in constant time; a missing or unreadable file
 * matches nothing. */
bool tokens_check(const char *path, const char *token);

/* The same for a token known by its SHA-256 (64 lowercase hex digits): a
 * dashboard session remembers the hash of the token it was made with, so
 * that revoking the token ends the session too. */
bool tokens_check_hash(const char *path, const char *hash_hex);

/* The SHA-256 of a token as 64 lowercase hex digits. 0 or -EIO. */
int tokens_hash(const char *token, char ret_hex[65]);
