/* sftp_target.c — see sftp_target.h.
 *
 * libssh in blocking mode with a timeout. One session and one SFTP
 * channel per target; a broken connection is reported as -ECONNRESET and
 * the caller decides whether to reopen (resume) or give up. */
#include "sftp_target.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ssh_lib.h"

#define CHUNK (240 * 1024) /* one request, under sftp-server's 256 KiB cap: a round trip each */

struct sftp_target {
	struct sftp_target_url url;
	char *key_file, *known_hosts;
	int timeout_s;
	const volatile sig_atomic_t *cancel;
	char name[1500];
	ssh_session ssh;
	sftp_session sftp;
};

bool sftp_target_is_url(const char *s) { return s && strncmp(s, "sftp://", 7) == 0; }

int sftp_target_url_parse(const char *url, struct sftp_target_url *ret, char *err, size_t errlen)
{
	struct sftp_target_url u = { .port = 22 };
	if (!sftp_target_is_url(url)) {
		snprintf(err, errlen, "a backup target is sftp://user@host[:port]/path, not \"%s\"", url ? url : "");
		return -EINVAL;
	}
	const char *p = url + 7, *at = strchr(p, '@'), *slash = strchr(p, '/');
	if (!at || !slash || at > slash || at == p) {
		snprintf(err, errlen, "%s: the user is missing (sftp://user@host[:port]/path)", url);
		return -EINVAL;
	}
	if ((size_t)(at - p) >= sizeof(u.user) || memchr(p, ':', (size_t)(at - p))) {
		snprintf(err, errlen, "%s: a bad user (no password in the URL: the target uses a key)", url);
		return -EINVAL;
	}
	memcpy(u.user, p, (size_t)(at - p));
	const char *h = at + 1, *colon = memchr(h, ':', (size_t)(slash - h));
	const char *hend = colon ? colon : slash;
	if (hend == h || (size_t)(hend - h) >= sizeof(u.host)) {
		snprintf(err, errlen, "%s: the host is missing", url);
		return -EINVAL;
	}
	memcpy(u.host, h, (size_t)(hend - h));
	for (const char *c = u.host; *c; c++)
		if (!(*c == '.' || *c == '-' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= 'A' && *c <= 'Z'))) {
			snprintf(err, errlen, "%s: a bad host name", url);
			return -EINVAL;
		}
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (end != slash || port < 1 || port > 65535) {
			snprintf(err, errlen, "%s: a bad port", url);
			return -EINVAL;
		}
		u.port = (int)port;
	}
	if (strlen(slash) >= sizeof(u.path) || strpbrk(slash, "?#\\")) {
		snprintf(err, errlen, "%s: a bad path", url);
		return -EINVAL;
	}
	snprintf(u.path, sizeof(u.path), "%s", slash);
	size_t len = strlen(u.path);
	while (len > 1 && u.path[len - 1] == '/')
		u.path[--len] = '\0';
	/* No empty, "." or ".." components: the path says where the files go. */
	for (const char *c = u.path + 1; len > 1 && *c;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
			snprintf(err, errlen, "%s: the path has an empty, \".\" or \"..\" component", url);
			return -EINVAL;
		}
		c += n + (e ? 1 : 0);
	}
	*ret = u;
	return 0;
}

/* ---- errors ----------------------------------------------------------------- */

static bool connection_lost(struct sftp_target *t)
{
	return !t->ssh || !sym_ssh_is_connected(t->ssh) ||
	       (t->sftp && sym_sftp_get_error(t->sftp) == SSH_FX_CONNECTION_LOST);
}

static const char *fx_name(int code)
{
	switch (code) {
	case SSH_FX_OK: return "ok";
	case SSH_FX_EOF: return "end of file";
	case SSH_FX_NO_SUCH_FILE: return "no such file";
	case SSH_FX_PERMISSION_DENIED: return "permission denied";
	case SSH_FX_FAILURE: return "failure";
	case SSH_FX_BAD_MESSAGE: return "bad message";
	case SSH_FX_NO_CONNECTION: return "no connection";
	case SSH_FX_CONNECTION_LOST: return "connection lost";
	case SSH_FX_OP_UNSUPPORTED: return "operation unsupported";
	case SSH_FX_FILE_ALREADY_EXISTS: return "file already exists";
	default: return "error";
	}
}

/* Translate the state after a failed SFTP call on `what`. */
static int sftp_fail(struct sftp_target *t, const char *what, char *err, size_t errlen)
{
	if (connection_lost(t)) {
		snprintf(err, errlen, "%s: the connection to %s was lost (%s)", what, t->name,
			 t->ssh ? sym_ssh_get_error(t->ssh) : "closed");
		return -ECONNRESET;
	}
	int code = sym_sftp_get_error(t->sftp);
	snprintf(err, errlen, "%s on %s: %s (%s)", what, t->name, fx_name(code), sym_ssh_get_error(t->ssh));
	switch (code) {
	case SSH_FX_NO_SUCH_FILE: return -ENOENT;
	case SSH_FX_PERMISSION_DENIED: return -EACCES;
	case SSH_FX_FILE_ALREADY_EXISTS: return -EEXIST;
	default: return -EIO;
	}
}

/* ---- connection -------------------------------------------------------------- */

static void disconnect(struct sftp_target *t)
{
	if (t->sftp)
		sym_sftp_free(t->sftp);
	t->sftp = NULL;
	if (t->ssh) {
		sym_ssh_disconnect(t->ssh);
		sym_ssh_free(t->ssh);
	}
	t->ssh = NULL;
}

static int check_host_key(struct sftp_target *t, char *err, size_t errlen)
{
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;
	if (sym_ssh_get_server_publickey(t->ssh, &key) == SSH_OK &&
	    sym_ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0)
		fp = sym_ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	enum ssh_known_hosts_e k = sym_ssh_session_is_known_server(t->ssh);
	int r = 0;
	switch (k) {
	case SSH_KNOWN_HOSTS_OK:
		break;
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER:
		snprintf(err, errlen,
			 "the host key of %s:%d (%s) is not the one pinned in %s: refusing the target (if the server's "
			 "key was really changed, replace its line there)",
			 t->url.host, t->url.port, fp ? fp : "?", t->known_hosts);
		r = -EPERM;
		break;
	case SSH_KNOWN_HOSTS_NOT_FOUND:
	case SSH_KNOWN_HOSTS_UNKNOWN:
	default:
		snprintf(err, errlen,
			 "the host key of %s:%d (%s) is not pinned in %s: refusing an unknown server (check the "
			 "fingerprint, then add the key there, e.g. from ssh-keyscan -p %d %s)",
			 t->url.host, t->url.port, fp ? fp : "?", t->known_hosts, t->url.port, t->url.host);
		r = -EPERM;
		break;
	}
	sym_ssh_string_free_char(fp);
	sym_ssh_clean_pubkey_hash(&hash);
	sym_ssh_key_free(key);
	return r;
}

/* mkdir -p of the target dir, one component at a time. */
static int make_target_dir(struct sftp_target *t, char *err, size_t errlen)
{
	char path[sizeof(t->url.path)];
	snprintf(path, sizeof(path), "%s", t->url.path);
	for (char *c = path + 1;; c++) {
		bool end = *c == '\0';
		if (*c == '/' || end) {
			*c = '\0';
			sftp_attributes a = sym_sftp_stat(t->sftp, path);
			if (a) {
				bool dir = a->type == SSH_FILEXFER_TYPE_DIRECTORY;
				sym_sftp_attributes_free(a);
				if (!dir) {
					snprintf(err, errlen, "%s on %s is not a directory", path, t->name);
					return -ENOTDIR;
				}
			} else if (sym_sftp_get_error(t->sftp) == SSH_FX_NO_SUCH_FILE) {
				if (sym_sftp_mkdir(t->sftp, path, 0700) < 0 && sym_sftp_get_error(t->sftp) != SSH_FX_FILE_ALREADY_EXISTS)
					return sftp_fail(t, "cannot create the target dir", err, errlen);
			} else {
				return sftp_fail(t, "cannot look at the target dir", err, errlen);
			}
			if (end)
				break;
			*c = '/';
		}
	}
	return 0;
}

static int connect_target(struct sftp_target *t, char *err, size_t errlen)
{
	disconnect(t);
	t->ssh = sym_ssh_new();
	if (!t->ssh) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	long timeout = t->timeout_s;
	int no = 0;
	unsigned int port = (unsigned int)t->url.port;
	/* Only what the config names: no ~/.ssh/config, no system files. */
	if (sym_ssh_options_set(t->ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
	    sym_ssh_options_set(t->ssh, SSH_OPTIONS_HOST, t->url.host) < 0 ||
	    sym_ssh_options_set(t->ssh, SSH_OPTIONS_PORT, &port) < 0 ||
	    sym_ssh_options_set(t->ssh, SSH_OPTIONS_USER, t->url.user) < 0 ||
	    sym_ssh_options_set(t->ssh, SSH_OPTIONS_KNOWNHOSTS, t->known_hosts) < 0 ||
	    sym_ssh_options_set(t->ssh, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
	    sym_ssh_options_set(t->ssh, SSH_OPTIONS_TIMEOUT, &timeout) < 0) {
		snprintf(err, errlen, "cannot set the SSH options for %s: %s", t->name, sym_ssh_get_error(t->ssh));
		disconnect(t);
		return -EINVAL;
	}
	if (sym_ssh_connect(t->ssh) != SSH_OK) {
		const char *m = sym_ssh_get_error(t->ssh);
		snprintf(err, errlen, "cannot connect to %s: %s", t->name, m);
		int r = strcasestr(m, "refused") ? -ECONNREFUSED : strcasestr(m, "timeout") || strcasestr(m, "timed out")
								     ? -ETIMEDOUT
								     : -EHOSTUNREACH;
		disconnect(t);
		return r;
	}
	int r = check_host_key(t, err, errlen);
	if (r < 0) {
		disconnect(t);
		return r;
	}
	ssh_key key = NULL;
	if (sym_ssh_pki_import_privkey_file(t->key_file, NULL, NULL, NULL, &key) != SSH_OK) {
		snprintf(err, errlen, "cannot read the SSH key %s (a private key without passphrase)", t->key_file);
		disconnect(t);
		return -EINVAL;
	}
	int a = sym_ssh_userauth_publickey(t->ssh, NULL, key);
	sym_ssh_key_free(key);
	if (a != SSH_AUTH_SUCCESS) {
		snprintf(err, errlen, "%s refused the key %s for user %s: %s", t->name, t->key_file, t->url.user,
			 sym_ssh_get_error(t->ssh));
		disconnect(t);
		return -EPERM;
	}
	t->sftp = sym_sftp_new(t->ssh);
	if (!t->sftp || sym_sftp_init(t->sftp) != SSH_OK) {
		snprintf(err, errlen, "cannot start SFTP on %s: %s", t->name, sym_ssh_get_error(t->ssh));
		disconnect(t);
		return -EIO;
	}
	if ((r = make_target_dir(t, err, errlen)) < 0) {
		disconnect(t);
		return r;
	}
	return 0;
}

int sftp_target_open(const struct sftp_target_opts *o, struct sftp_target **ret, char *err, size_t errlen)
{
	if (!o->key_file || !*o->key_file) {
		snprintf(err, errlen, "no SSH key for the target ([backups] ssh_key_file)");
		return -EINVAL;
	}
	if (!o->known_hosts || !*o->known_hosts) {
		snprintf(err, errlen, "no known_hosts file for the target ([backups] known_hosts)");
		return -EINVAL;
	}
	/* libssh is loaded here, by the first target of a process. */
	if (ssh_lib_load() < 0) {
		snprintf(err, errlen, "cannot load libssh: %s", ssh_lib_error());
		return -ELIBACC;
	}
	struct sftp_target *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = sftp_target_url_parse(o->url, &t->url, err, errlen);
	if (r < 0) {
		free(t);
		return r;
	}
	t->key_file = strdup(o->key_file);
	t->known_hosts = strdup(o->known_hosts);
	t->timeout_s = o->timeout_s > 0 ? o->timeout_s : 30;
	t->cancel = o->cancel;
	snprintf(t->name, sizeof(t->name), "%s@%s:%d%s", t->url.user, t->url.host, t->url.port, t->url.path);
	if (!t->key_file || !t->known_hosts) {
		sftp_target_close(t);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sym_ssh_init();
	if ((r = connect_target(t, err, errlen)) < 0) {
		sftp_target_close(t);
		return r;
	}
	*ret = t;
	return 0;
}

int sftp_target_reopen(struct sftp_target *t, char *err, size_t errlen) { return connect_target(t, err, errlen); }

void sftp_target_close(struct sftp_target *t)
{
	if (!t)
		return;
	disconnect(t);
	free(t->key_file);
	free(t->known_hosts);
	free(t);
}

const char *sftp_target_name(const struct sftp_target *t) { return t->name; }

/* ---- files ---------------------------------------------------------------------- */

static bool plain_name(const char *name)
{
	return name && *name && name[0] != '.' && !strchr(name, '/') && strlen(name) < NAME_MAX - 8;
}

static void remote_path(const struct sftp_target *t, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", t->url.path, strcmp(t->url.path, "/") == 0 ? "" : "/", name);
}

static bool cancelled(const struct sftp_target *t) { return t->cancel && *t->cancel; }

static void hex(const unsigned char *md, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int sftp_target_stat(struct sftp_target *t, const char *name, int64_t *ret_size, char *err, size_t errlen)
{
	if (!t->sftp)
		return sftp_fail(t, "stat", err, errlen);
	char path[PATH_MAX];
	remote_path(t, name, path, sizeof(path));
	sftp_attributes a = sym_sftp_stat(t->sftp, path);
	if (!a)
		return sftp_fail(t, path, err, errlen);
	*ret_size = (int64_t)a->size;
	sym_sftp_attributes_free(a);
	return 0;
}


/* Read [from, to) of an open remote file with up to READ_AHEAD requests in
 * flight (one request per round trip would make the link's latency the
 * limit), handing each piece to `sink` in order. A piece shorter than
 * asked (the file shrank) is an error: the caller knows the size. */
#define READ_PIECE (64 * 1024)
#define READ_AHEAD 16
typedef int (*read_sink_fn)(void *userdata, const void *buf, size_t len);

static int read_pipelined(struct sftp_target *t, sftp_file f, int64_t from, int64_t to, read_sink_fn sink,
			  void *userdata, char *err, size_t errlen)
{
	static char buf[READ_PIECE];
	struct {
		int id;
		uint32_t len;
	} q[READ_AHEAD];
	int head = 0, n = 0, r = 0;
	int64_t asked = from;
	if (from > 0 && sym_sftp_seek64(f, (uint64_t)from) < 0)
		return sftp_fail(t, "cannot seek", err, errlen);
	for (;;) {
		while (r == 0 && n < READ_AHEAD && asked < to) {
			uint32_t len = (uint32_t)(to - asked < READ_PIECE ? to - asked : READ_PIECE);
			int id = sym_sftp_async_read_begin(f, len);
			if (id < 0) {
				r = sftp_fail(t, "cannot read", err, errlen);
				break;
			}
			q[(head + n) % READ_AHEAD].id = id;
			q[(head + n) % READ_AHEAD].len = len;
			n++;
			asked += len;
		}
		if (n == 0)
			break;
		/* Every request sent gets its answer read, also after a
		 * failure: libssh keeps unread answers otherwise. */
		int got = sym_sftp_async_read(f, buf, q[head].len, (uint32_t)q[head].id);
		uint32_t want = q[head].len;
		head = (head + 1) % READ_AHEAD;
		n--;
		if (r < 0)
			continue;
		if (got < 0) {
			r = sftp_fail(t, "cannot read", err, errlen);
			if (r == -ECONNRESET)
				break; /* nothing more will come */
			continue;
		}
		if ((uint32_t)got != want) {
			snprintf(err, errlen, "a short read from %s (the file changed while it was read)", t->name);
			r = -EBADMSG;
			continue;
		}
		if (cancelled(t))
			r = -ECANCELED;
		else
			r = sink(userdata, buf, (size_t)got);
	}
	return r;
}

struct hash_sink {
	EVP_MD_CTX *md;
	int64_t total;
	int fd;          /* >= 0: also write here, at `total` */
	int64_t max_size;
	sftp_target_progress_fn progress;
	void *userdata;
	int64_t of;
};

static int hash_sink(void *userdata, const void *buf, size_t len)
{
	struct hash_sink *h = userdata;
	if (h->fd >= 0 && pwrite(h->fd, buf, len, h->total) != (ssize_t)len)
		return -errno;
	EVP_DigestUpdate(h->md, buf, len);
	h->total += (int64_t)len;
	if (h->progress)
		h->progress(h->userdata, h->total, h->of);
	return 0;
}

/* SHA-256 and size of a remote file, read over SFTP from the start. */
static int remote_sha256(struct sftp_target *t, const char *path, char out[65], int64_t *ret_size, char *err,
			 size_t errlen)
{
	sftp_attributes a = sym_sftp_stat(t->sftp, path);
	if (!a)
		return sftp_fail(t, "cannot look at the uploaded file to verify it", err, errlen);
	int64_t size = (int64_t)a->size;
	sym_sftp_attributes_free(a);
	sftp_file f = sym_sftp_open(t->sftp, path, O_RDONLY, 0);
	if (!f)
		return sftp_fail(t, "cannot open the uploaded file to verify it", err, errlen);
	struct hash_sink h = { .md = EVP_MD_CTX_new(), .fd = -1 };
	EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
	int r = read_pipelined(t, f, 0, size, hash_sink, &h, err, errlen);
	unsigned char d[32];
	EVP_DigestFinal_ex(h.md, d, NULL);
	EVP_MD_CTX_free(h.md);
	sym_sftp_close(f);
	if (r < 0)
		return r;
	hex(d, out);
	*ret_size = h.total;
	return 0;
}

/* After a failed write: the server only says "failure" (SFTP v3 has no
 * "disk full"), so ask it how much room is left. */
static int write_failed(struct sftp_target *t, const char *path, int64_t at, int64_t need, char *err, size_t errlen)
{
	int r = sftp_fail(t, "cannot write", err, errlen);
	if (r == -ECONNRESET) {
		snprintf(err + strlen(err), errlen - strlen(err), " after %lld bytes of %s", (long long)at, path);
		return r;
	}
	if (sym_sftp_extension_supported(t->sftp, "statvfs@openssh.com", "2")) {
		sftp_statvfs_t v = sym_sftp_statvfs(t->sftp, t->url.path);
		if (v) {
			uint64_t avail = v->f_bavail * v->f_frsize;
			sym_sftp_statvfs_free(v);
			if (avail < (uint64_t)(need > 0 ? need : 1) || avail < 64 * 1024) {
				snprintf(err, errlen, "the target %s is full: %llu bytes free, %lld more needed for %s",
					 t->name, (unsigned long long)avail, (long long)need, path);
				return -ENOSPC;
			}
		}
	}
	return r;
}

int sftp_target_put(struct sftp_target *t, const char *local_path, const char *name, const char *sha256, int64_t size,
		    sftp_target_progress_fn progress, void *userdata, struct sftp_transfer_info *ret, char *err,
		    size_t errlen)
{
	struct sftp_transfer_info info = { 0 };
	char path[PATH_MAX], part[PATH_MAX], pname[NAME_MAX + 1], got[65];
	int64_t got_size;
	if (!plain_name(name) || !sha256) {
		snprintf(err, errlen, "bad file name \"%s\"", name ? name : "");
		return -EINVAL;
	}
	if (!t->sftp)
		return sftp_fail(t, "put", err, errlen);
	remote_path(t, name, path, sizeof(path));
	snprintf(pname, sizeof(pname), ".%s.part", name);
	remote_path(t, pname, part, sizeof(part));

	/* Already complete there (an earlier attempt got as far as the
	 * rename): verify, and send nothing. */
	sftp_attributes a = sym_sftp_stat(t->sftp, path);
	if (a) {
		bool same_size = (int64_t)a->size == size;
		sym_sftp_attributes_free(a);
		int r = same_size ? remote_sha256(t, path, got, &got_size, err, errlen) : 0;
		if (r < 0)
			return r;
		if (same_size && got_size == size && strcasecmp(got, sha256) == 0) {
			info.already_there = true;
			info.resumed_from = size;
			if (ret)
				*ret = info;
			return 0;
		}
	} else if (connection_lost(t)) {
		return sftp_fail(t, "stat", err, errlen);
	}

	int fd = open(local_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", local_path, strerror(errno));
		return -errno;
	}
	int64_t offset = 0;
	a = sym_sftp_stat(t->sftp, part);
	if (a) {
		offset = (int64_t)a->size;
		sym_sftp_attributes_free(a);
		if (offset > size)
			offset = 0; /* not ours: start over */
	} else if (connection_lost(t)) {
		close(fd);
		return sftp_fail(t, "stat", err, errlen);
	}
	/* The local file is hashed whole (the prefix too) while sending, so
	 * a file that changed since it was recorded is caught here. */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	static char buf[CHUNK];
	int r = 0;
	int64_t pos = 0;
	while (pos < offset) {
		ssize_t n = pread(fd, buf, (size_t)(offset - pos < CHUNK ? offset - pos : CHUNK), pos);
		if (n <= 0) {
			r = n < 0 ? -errno : -EBADMSG;
			snprintf(err, errlen, "cannot read %s: %s", local_path, n < 0 ? strerror(errno) : "short file");
			goto out_md;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		pos += n;
	}
	int flags = O_WRONLY | O_CREAT | (offset == 0 ? O_TRUNC : 0);
	sftp_file f = sym_sftp_open(t->sftp, part, flags, 0600);
	if (!f) {
		r = sftp_fail(t, "cannot create the upload file", err, errlen);
		goto out_md;
	}
	if (offset > 0 && sym_sftp_seek64(f, (uint64_t)offset) < 0) {
		r = sftp_fail(t, "cannot seek in the upload file", err, errlen);
		sym_sftp_close(f);
		goto out_md;
	}
	info.resumed_from = offset;
	while (pos < size) {
		if (cancelled(t)) {
			r = -ECANCELED;
			break;
		}
		ssize_t n = pread(fd, buf, (size_t)(size - pos < CHUNK ? size - pos : CHUNK), pos);
		if (n <= 0) {
			r = n < 0 ? -errno : -EBADMSG;
			snprintf(err, errlen, "cannot read %s: %s", local_path, n < 0 ? strerror(errno) : "shorter than recorded");
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		ssize_t w = sym_sftp_write(f, buf, (size_t)n);
		if (w != n) {
			r = write_failed(t, path, pos, size - pos, err, errlen);
			break;
		}
		pos += n;
		info.sent += n;
		if (progress)
			progress(userdata, pos, size);
	}
	if (r == 0 && sym_sftp_extension_supported(t->sftp, "fsync@openssh.com", "1") && sym_sftp_fsync(f) < 0)
		r = write_failed(t, path, pos, 0, err, errlen);
	/* A close that fails may mean the last writes did not land. */
	if (sym_sftp_close(f) < 0 && r == 0)
		r = write_failed(t, path, pos, 0, err, errlen);
	unsigned char d[32];
	EVP_DigestFinal_ex(md, d, NULL);
	if (r < 0)
		goto out_md;
	char local_hex[65];
	hex(d, local_hex);
	if (strcasecmp(local_hex, sha256) != 0) {
		snprintf(err, errlen, "%s changed since it was recorded (SHA-256 %s, recorded %s)", local_path, local_hex,
			 sha256);
		r = -EBADMSG;
		goto out_md;
	}

	/* Read it back: what counts is what the target has. */
	struct timespec ts0, ts1;
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	if ((r = remote_sha256(t, part, got, &got_size, err, errlen)) < 0)
		goto out_md;
	clock_gettime(CLOCK_MONOTONIC, &ts1);
	info.verify_ms = (ts1.tv_sec - ts0.tv_sec) * 1000 + (ts1.tv_nsec - ts0.tv_nsec) / 1000000;
	if (got_size != size || strcasecmp(got, sha256) != 0) {
		snprintf(err, errlen,
			 "%s on %s differs after the upload (%lld bytes, SHA-256 %s; expected %lld bytes, %s): removed, "
			 "the next attempt starts over",
			 name, t->name, (long long)got_size, got, (long long)size, sha256);
		sym_sftp_unlink(t->sftp, part);
		r = -EBADMSG;
		goto out_md;
	}
	/* posix-rename@openssh.com when the server has it (libssh uses it),
	 * so an old NAME (a damaged copy) is replaced. */
	if (sym_sftp_rename(t->sftp, part, path) < 0) {
		r = sftp_fail(t, "cannot rename the uploaded file", err, errlen);
		goto out_md;
	}
out_md:
	EVP_MD_CTX_free(md);
	close(fd);
	if (r == 0 && ret)
		*ret = info;
	return r;
}

int sftp_target_get(struct sftp_target *t, const char *name, const char *local_dir, const char *sha256, int64_t size,
		    int64_t max_size, sftp_target_progress_fn progress, void *userdata, struct sftp_transfer_info *ret,
		    char *err, size_t errlen)
{
	struct sftp_transfer_info info = { 0 };
	char path[PATH_MAX], lpath[PATH_MAX], lpart[PATH_MAX];
	if (!plain_name(name)) {
		snprintf(err, errlen, "bad file name \"%s\"", name ? name : "");
		return -EINVAL;
	}
	if (!t->sftp)
		return sftp_fail(t, "get", err, errlen);
	remote_path(t, name, path, sizeof(path));
	snprintf(lpath, sizeof(lpath), "%s/%s", local_dir, name);
	snprintf(lpart, sizeof(lpart), "%s/.%s.part", local_dir, name);
	sftp_attributes a = sym_sftp_stat(t->sftp, path);
	if (!a)
		return sftp_fail(t, name, err, errlen);
	int64_t rsize = (int64_t)a->size;
	sym_sftp_attributes_free(a);
	if (sha256 && rsize != size) {
		snprintf(err, errlen, "%s on %s is damaged: it has %lld bytes, the manifest says %lld", name, t->name,
			 (long long)rsize, (long long)size);
		return -EBADMSG;
	}
	if (max_size > 0 && rsize > max_size) {
		snprintf(err, errlen, "%s on %s is larger than %lld bytes", name, t->name, (long long)max_size);
		return -EFBIG;
	}
	int fd = open(lpart, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", lpart, strerror(errno));
		return -errno;
	}
	struct stat st;
	int64_t offset = fstat(fd, &st) == 0 && st.st_size <= rsize ? st.st_size : 0;
	if (offset == 0 && ftruncate(fd, 0) < 0) {
		close(fd);
		return -errno;
	}
	info.resumed_from = offset;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	static char buf[CHUNK];
	int r = 0;
	int64_t pos = 0;
	while (pos < offset) { /* the part already here, hashed again */
		ssize_t n = pread(fd, buf, (size_t)(offset - pos < CHUNK ? offset - pos : CHUNK), pos);
		if (n <= 0) {
			r = -EIO;
			snprintf(err, errlen, "cannot read %s", lpart);
			goto out;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		pos += n;
	}
	sftp_file f = sym_sftp_open(t->sftp, path, O_RDONLY, 0);
	if (!f) {
		r = sftp_fail(t, name, err, errlen);
		goto out;
	}
	struct hash_sink h = { .md = md, .total = offset, .fd = fd, .progress = progress, .userdata = userdata,
			       .of = rsize };
	r = read_pipelined(t, f, offset, rsize, hash_sink, &h, err, errlen);
	sym_sftp_close(f);
	if (r < 0)
		goto out;
	pos = h.total;
	info.sent = pos - offset;
	unsigned char d[32];
	char got[65];
	EVP_DigestFinal_ex(md, d, NULL);
	hex(d, got);
	if (sha256 && (pos != size || strcasecmp(got, sha256) != 0)) {
		snprintf(err, errlen, "%s from %s is damaged (%lld bytes, SHA-256 %s; the manifest says %lld bytes, %s)",
			 name, t->name, (long long)pos, got, (long long)size, sha256);
		unlink(lpart);
		r = -EBADMSG;
		goto out;
	}
	if (fsync(fd) < 0 || rename(lpart, lpath) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot keep %s: %s", lpath, strerror(errno));
		goto out;
	}
out:
	EVP_MD_CTX_free(md);
	close(fd);
	if (r == 0 && ret)
		*ret = info;
	return r;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int sftp_target_list(struct sftp_target *t, char ***ret_names, size_t *ret_n, char *err, size_t errlen)
{
	if (!t->sftp)
		return sftp_fail(t, "list", err, errlen);
	sftp_dir d = sym_sftp_opendir(t->sftp, t->url.path);
	if (!d)
		return sftp_fail(t, "cannot list the target dir", err, errlen);
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	sftp_attributes a;
	while ((a = sym_sftp_readdir(t->sftp, d))) {
		if (a->name && a->name[0] != '.' && a->type == SSH_FILEXFER_TYPE_REGULAR) {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				char **nn = realloc(names, cap * sizeof(*nn));
				if (!nn) {
					sym_sftp_attributes_free(a);
					r = -ENOMEM;
					break;
				}
				names = nn;
			}
			if (!(names[n] = strdup(a->name))) {
				sym_sftp_attributes_free(a);
				r = -ENOMEM;
				break;
			}
			n++;
		}
		sym_sftp_attributes_free(a);
	}
	if (r == 0 && !sym_sftp_dir_eof(d))
		r = sftp_fail(t, "cannot list the target dir", err, errlen);
	sym_sftp_closedir(d);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		sftp_target_names_free(names, n);
		return r;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*ret_names = names;
	*ret_n = n;
	return 0;
}

void sftp_target_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int sftp_target_remove(struct sftp_target *t, const char *name, char *err, size_t errlen)
{
	if (!plain_name(name)) {
		snprintf(err, errlen, "bad file name \"%s\"", name ? name : "");
		return -EINVAL;
	}
	if (!t->sftp)
		return sftp_fail(t, "remove", err, errlen);
	char path[PATH_MAX];
	remote_path(t, name, path, sizeof(path));
	return sym_sftp_unlink(t->sftp, path) < 0 ? sftp_fail(t, "cannot remove", err, errlen) : 0;
}
