/* backup_key.c — see backup_key.h. */
#include "backup_key.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hex.h"

#define KEY_BYTES 32

static void key_path(const struct boxd_config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/backup.key", cfg->state_dir);
}

/* Read the key: a regular file of KEY_BYTES, ours, readable by us only. */
static int read_key(const char *path, unsigned char key[KEY_BYTES], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) ||
	    st.st_size != KEY_BYTES) {
		snprintf(err, errlen, "%s is not boxd's key (a %d-byte file of uid %u, mode 0600)", path, KEY_BYTES,
			 (unsigned)geteuid());
		r = -EPERM;
	} else if (read(fd, key, KEY_BYTES) != KEY_BYTES) {
		snprintf(err, errlen, "cannot read %s", path);
		r = -EIO;
	}
	close(fd);
	return r;
}

/* Make the key: write a temp file, then link it into place, so that two
 * workers racing here both end up with the one that won. */
static int make_key(const char *path, char *err, size_t errlen)
{
	unsigned char key[KEY_BYTES];
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		snprintf(err, errlen, "getrandom failed: %s", strerror(errno));
		return -EIO;
	}
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
		return -e;
	}
	int r = 0;
	if (fchmod(fd, 0600) < 0 || write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
	} else if (link(tmp, path) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
	}
	close(fd);
	unlink(tmp);
	OPENSSL_cleanse(key, sizeof(key));
	return r;
}

static int compute(const unsigned char key[KEY_BYTES], const char *kind, const char *app_id, const char *sha256,
		   int64_t size, char ret_hex[BACKUP_MAC_HEX])
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "boxd-backup-v1%c%s%c%s%c%s%c%lld", 0, kind ? kind : "", 0,
			 app_id ? app_id : "", 0, sha256 ? sha256 : "", 0, (long long)size);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -EINVAL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	if (!HMAC(EVP_sha256(), key, KEY_BYTES, (const unsigned char *)msg, (size_t)n, md, &md_len) || md_len != 32)
		return -EIO;
	hex_encode(md, md_len, ret_hex);
	return 0;
}

int backup_mac(const struct boxd_config *cfg, const char *kind, const char *app_id, const char *sha256, int64_t size,
	       char ret_hex[BACKUP_MAC_HEX], char *err, size_t errlen)
{
	char path[PATH_MAX];
	key_path(cfg, path, sizeof(path));
	unsigned char key[KEY_BYTES];
	int r = read_key(path, key, err, errlen);
	if (r == -ENOENT) {
		r = make_key(path, err, errlen);
		if (r == 0)
			r = read_key(path, key, err, errlen);
	}
	if (r == 0 && (r = compute(key, kind, app_id, sha256, size, ret_hex)) < 0)
		snprintf(err, errlen, "cannot compute the archive's MAC");
	OPENSSL_cleanse(key, sizeof(key));
	return r;
}

bool backup_mac_ok(const struct boxd_config *cfg, const char *kind, const char *app_id, const char *sha256,
		   int64_t size, const char *mac)
{
	if (!mac || strlen(mac) != BACKUP_MAC_HEX - 1)
		return false;
	char path[PATH_MAX], err[256], want[BACKUP_MAC_HEX];
	key_path(cfg, path, sizeof(path));
	unsigned char key[KEY_BYTES];
	bool ok = read_key(path, key, err, sizeof(err)) == 0 && compute(key, kind, app_id, sha256, size, want) == 0 &&
		  CRYPTO_memcmp(want, mac, BACKUP_MAC_HEX - 1) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	return ok;
}
