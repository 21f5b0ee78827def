/* release.h — update packages and the releases under the install root.
 *
 * An update package is a tarball (tar + gzip or tar + zstd, read with
 * libarchive) whose root is one release of boxd:
 *
 *	manifest.json     {"version": "1.2.3", ...}  (other keys are kept, not read)
 *	bin/boxd          the daemon and worker
 *	bin/boxctl        the CLI
 *	...               anything else the release needs (regular files and
 *	                  directories only)
 *
 * Entry names may start with "./". Absolute names, ".." components, and
 * entries other than regular files and directories (symlinks, hard links,
 * devices) are refused: a package cannot write outside its release dir.
 *
 * The install root (config [update] install_root, default /var/lib/boxd):
 *
 *	<root>/releases/<version>/   one unpacked package each
 *	<root>/current -> releases/<version>   the release boxd runs from
 *
 * `current` is only ever replaced by rename(2) of a fresh symlink over it,
 * so it always names one complete release; an unpacked release appears under
 * releases/ by rename(2) of a fully written and fsynced temp dir.
 *
 * Functions return 0 or a negative errno with a message for the operator in
 * err; ret_* outputs are written only on success. Nothing here logs.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/sha256.h"

/* A version names a directory: 1..64 of [A-Za-z0-9._+-], starting with a
 * letter or digit (so never "." or ".."). Plus the NUL. */
#define UPDATE_VERSION_MAX 65
/* Package digests are common/sha256.h's: sha256_file(), sha256_fd(),
 * sha256_hex_equal(). */
#define UPDATE_SHA256_HEX SHA256_HEX

bool update_version_valid(const char *version);

struct update_manifest {
	char version[UPDATE_VERSION_MAX];
	size_t entries;          /* entries in the package */
	long long bytes;         /* bytes of file data */
};

/* The package functions read the open package file `fd` from its start
 * (they seek to 0): the update task opens the package once, so the
 * checksum, the check and the unpack all read the same file even if its
 * path is replaced meanwhile. */

/* Read the whole package (every byte is decompressed, so a truncated or
 * corrupt archive fails here, before anything changes) and check it: the
 * manifest parses and names a valid version, bin/boxd and bin/boxctl are
 * regular files, every entry is safe (see above). -EBADMSG with the reason
 * when it is not a valid package. */
int update_package_check(int fd, struct update_manifest *ret, char *err, size_t errlen);

/* Unpack the package into <root>/releases/<version>: extract into a temp
 * dir beside it, make bin/boxd and bin/boxctl executable, fsync every file
 * and directory, rename into place, fsync releases/. The bytes unpacked are
 * hashed as they are read: unless their SHA-256 is `want_sha256` (the one
 * verified before; the file may have been rewritten in place since), the
 * temp dir is discarded and -EBADMSG returned. An existing
 * releases/<version> directory (a release not in use) is swapped out
 * atomically and removed; anything else there is an error (-ENOTDIR). On
 * failure nothing is left behind. */
int update_release_unpack(int fd, const char *want_sha256, const char *root, const char *version,
			  const volatile sig_atomic_t *cancel, char *err, size_t errlen);

/* Remove <root>/releases/<version> (a release unpacked by a failed update). */
int update_release_remove(const char *root, const char *version, char *err, size_t errlen);

/* The target of <root>/current as stored ("releases/1.2.3"); "" when there
 * is no `current` yet (0 is returned). */
int update_current_read(const char *root, char *ret_target, size_t len, char *err, size_t errlen);

/* Point <root>/current at `target` (relative to root, "releases/1.2.3"):
 * a temp symlink renamed over `current`, then an fsync of root. An empty
 * target removes `current` (restoring "there was none"). */
int update_current_switch(const char *root, const char *target, char *err, size_t errlen);

/* The version of a release dir: its manifest's version. */
int update_release_version(const char *release_dir, char ret_version[UPDATE_VERSION_MAX], char *err,
			   size_t errlen);

/* The version of the release this process runs: when its executable
 * (/proc/self/exe, which the kernel resolves through `current`) is
 * <root>/releases/<X>/bin/boxd, the version in that release's manifest (X
 * when the manifest cannot be read); otherwise BOXD_VERSION, the version
 * the binary was built as. Computed once per process; thread-safe. */
const char *update_running_version(const struct boxd_config *cfg);

/* The version of the release <root>/current points at: its manifest's
 * version (the directory name when the manifest cannot be read). "" when
 * there is no `current` (0 is returned). */
int update_current_version(const char *root, char ret_version[UPDATE_VERSION_MAX], char *err, size_t errlen);

/* Remove every release under <root>/releases except those whose directory
 * names are in keep[0..n_keep) (names, "1.2.3"; NULL or "" entries are
 * ignored), and except the one `current` points at, whatever keep says.
 * Hidden entries (an unpack in progress) are left alone. The update task
 * calls it once the new release serves, keeping that one and the one it
 * replaced, so that a rollback by hand stays possible and releases do not
 * pile up. Returns how many it removed, or the first error (it goes on
 * after one). */
int update_releases_prune(const char *root, const char *const *keep, size_t n_keep, char *err, size_t errlen);

/* Run `<release_dir>/bin/boxd version` (at most 10 s, output discarded)
 * and check that it exits 0: the new binary loads and runs on this host
 * (libraries, architecture) before boxd is asked to exec it. */
int update_release_preflight(const char *release_dir, char *err, size_t errlen);
