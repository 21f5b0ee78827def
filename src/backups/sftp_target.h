/* sftp_target.h — a remote backup target over SFTP (libssh), key auth
 * only, the server's host key pinned.
 *
 * A target is named by a URL `sftp://user@host[:port]/path` (config
 * [backups] target): the backups go into the directory `path` on that
 * server, under the same file names as in the local backup dir.
 *
 * Trust: the server must present a host key listed for it in the
 * known_hosts file given ([backups] known_hosts, OpenSSH's format, entries
 * "[host]:port" for a port other than 22). An unknown or changed key is
 * refused with its SHA256 fingerprint in the message — never accepted
 * silently, never added. Neither ~/.ssh/config nor /etc/ssh is read: only
 * what the config names counts. Authentication is by the private key file
 * only ([backups] ssh_key_file; OpenSSH or PEM format, no passphrase).
 *
 * Transfers (put and get) are resumable per file and verified:
 *   put  writes ".NAME.part" on the target, continuing from its size when it
 *        exists (a previous attempt that was cut), then reads the whole
 *        file back over SFTP and compares its size and SHA-256 with the
 *        local file's (the caller's expected values), and only then renames
 *        it to NAME. A NAME already there with the right size and SHA-256
 *        is not sent again. A part file whose bytes turn out wrong is
 *        removed (-EBADMSG), so the next attempt starts from zero.
 *   get  the same in the other direction into a local directory.
 * A failed transfer leaves every other file on the target as it was.
 *
 * Errors (negative errno with a message for the operator in err):
 *   -EINVAL     a bad URL;
 *   -EPERM      host key unknown or changed, or the key was refused;
 *   -ECONNREFUSED / -EHOSTUNREACH / -ETIMEDOUT  cannot connect;
 *   -ECONNRESET the connection broke during a transfer (the session was
 *               killed, the network went away): reconnect and put again to
 *               resume (sftp_target_reopen());
 *   -ENOSPC     the target refused a write and has no room left (checked
 *               with statvfs@openssh.com after a failed write);
 *   -EBADMSG    the file read back differs from the expected size/SHA-256;
 *   -ENOENT     no such remote file;
 *   -ECANCELED  *cancel became non-zero (checked every chunk);
 *   -EIO        any other SFTP failure (the server's status in err).
 * Library code: no logging. Not thread-safe: one thread per target.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sftp_target_url {
	char user[64];
	char host[256];
	int port;        /* 22 when not given */
	char path[1024]; /* absolute, normalized, no trailing '/' (except "/") */
};

/* Parse `sftp://user@host[:port]/path`. No password in the URL (key auth
 * only), no query, no "." or ".." components. 0 or -EINVAL. */
int sftp_target_url_parse(const char *url, struct sftp_target_url *ret, char *err, size_t errlen);

/* Whether `s` names an SFTP target (starts with "sftp://"). */
bool sftp_target_is_url(const char *s);

struct sftp_target_opts {
	const char *url;         /* as above */
	const char *key_file;    /* private key */
	const char *known_hosts; /* pinned host keys */
	int timeout_s;           /* connect and each blocking wait; 0: 30 */
	const volatile sig_atomic_t *cancel; /* may be NULL */
};

struct sftp_target;

/* Connect, check the host key, authenticate, start SFTP, and make the
 * target directory if it is missing (mkdir -p, mode 0700). */
int sftp_target_open(const struct sftp_target_opts *o, struct sftp_target **ret, char *err, size_t errlen);
/* Drop the connection (if any) and connect again with the same options:
 * after -ECONNRESET. */
int sftp_target_reopen(struct sftp_target *t, char *err, size_t errlen);
void sftp_target_close(struct sftp_target *t);
/* "user@host:port/path" for messages (no secrets in it). */
const char *sftp_target_name(const struct sftp_target *t);

/* Called every chunk with the bytes done of the file and its total. */
typedef void (*sftp_target_progress_fn)(void *userdata, int64_t done, int64_t total);

struct sftp_transfer_info {
	int64_t sent;         /* bytes moved in this call (resume: only the rest) */
	int64_t resumed_from; /* bytes already there from an earlier attempt */
	bool already_there;   /* put: NAME was complete already, nothing sent */
	int64_t verify_ms;    /* reading back and hashing */
};

/* Put the local file `local_path` as `name` (a plain file name) into the
 * target dir. `sha256` (hex) and `size` are the local file's as recorded
 * when it was made; the local file is checked against them as it is sent
 * (-EBADMSG when it changed) and the remote copy after. */
int sftp_target_put(struct sftp_target *t, const char *local_path, const char *name, const char *sha256, int64_t size,
		    sftp_target_progress_fn progress, void *userdata, struct sftp_transfer_info *ret, char *err,
		    size_t errlen);

/* Get `name` from the target dir into `local_dir`/`name` (through
 * `local_dir`/.NAME.part, resumed from its size). With `sha256` non-NULL,
 * the file must have that SHA-256 and `size` bytes, else -EBADMSG and the
 * part file is removed; with NULL, `size` < 0 means any size, and
 * `max_size` > 0 caps it (-EFBIG). */
int sftp_target_get(struct sftp_target *t, const char *name, const char *local_dir, const char *sha256, int64_t size,
		    int64_t max_size, sftp_target_progress_fn progress, void *userdata, struct sftp_transfer_info *ret,
		    char *err, size_t errlen);

/* Size of `name` in the target dir: 0 and *ret_size, or -ENOENT. */
int sftp_target_stat(struct sftp_target *t, const char *name, int64_t *ret_size, char *err, size_t errlen);

/* The regular files of the target dir (no dot files), sorted by name;
 * free with sftp_target_names_free(). */
int sftp_target_list(struct sftp_target *t, char ***ret_names, size_t *ret_n, char *err, size_t errlen);
void sftp_target_names_free(char **names, size_t n);

/* Remove `name` from the target dir (-ENOENT when missing). */
int sftp_target_remove(struct sftp_target *t, const char *name, char *err, size_t errlen);
