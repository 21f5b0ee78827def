/* box_restore.h — the whole box from a full backup onto a fresh machine
 * (`boxd restore --from`).
 *
 * Source: an SFTP target (sftp_target.h; the key and known_hosts from the
 * options or the config) or a local directory holding a backup dir's
 * files. The full backup is the manifest `full-*.json` whose id is
 * `backup_id`, or the newest one without failed apps.
 *
 * Steps, in this order; nothing on the box changes before step 3:
 *   1. fetch the manifest and every archive it lists into the staging dir
 *      <state_dir>/restore/ (resumed: a file already there is kept once it
 *      verifies), and verify each: size and SHA-256 as the manifest says.
 *      A missing, short, changed or unreadable archive: -EBADMSG/-ENOENT.
 *   2. plan: read the apps and volumes of the dumped store, compute where
 *      each data dir and volume goes on this box (remap, below), check
 *      every path with paths.h, and refuse (-ENOTEMPTY) a box that has
 *      apps or volumes in its store, a data dir that exists and is not
 *      empty, or an app container of the same name — unless `force`
 *      (then the store's rows are replaced, a non-empty data dir is moved
 *      aside to .<name>.before-restore-<stamp>, a container is removed).
 *   3. the store: SQLite — the dumped database file replaces the configured
 *      one (temp, fsync, rename); MariaDB/PostgreSQL — the JSON-lines
 *      export is imported into boxd's tables in one transaction (rows of
 *      the fresh store deleted first; `locks` and `schema_version` stay
 *      this store's own; PostgreSQL sequences moved past the ids).
 *      Then the rows are adapted to this box: remapped data dirs and volume
 *      paths, no container ids, no data-dir identities (of A's disks).
 *   4. each app's data dir: extracted (verified again while read) into a
 *      private temp dir beside it, renamed into place, its identity
 *      recorded; owners restored (the operator chose the source).
 *   5. each volume of type "dir": its directory made at its (new) path.
 * The containers and the sftp service are not touched here: the daemon's
 * platformstart recreates every installed app's container over its data
 * dir and brings sftp to its spec when boxd starts next (start it after
 * the restore). A running daemon on this state dir is refused (-EBUSY),
 * unless it is the daemon that runs this restore (`under_daemon`).
 *
 * Remap. The manifest records box A's roots. A default data dir
 * (<appsdata_root>/<id>) and a volume below A's volumes root land below
 * this box's roots (the config's). A custom data dir lands at
 * `appsdata_root`/<app id> when that option is set, else at its own path;
 * a volume outside A's volumes root at `volumes_root`/<volume id> when set,
 * else at its own path. Every change is reported through `say`.
 *
 * Resume. A journal <state_dir>/restore/journal.json (written atomically
 * after every step and every app) records what is done; a rerun after a
 * crash or kill -9 with the same source skips what is done and finishes
 * the rest: an app's rename either happened (its data dir is there and
 * the journal says it was absent before) or not (the temp dir is removed
 * and the app extracted again), so nothing is restored twice and nothing
 * is lost. A rerun does not refuse the box it half-restored itself.
 * After the last step the staging dir (journal included) is removed.
 *
 * Returns 0 or a negative errno with a message in err.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

struct box_restore_opts {
	const char *from;          /* sftp://... or a local directory */
	int64_t backup_id;         /* 0: the newest complete full backup */
	const char *ssh_key_file;  /* NULL: [backups] ssh_key_file */
	const char *known_hosts;   /* NULL: [backups] known_hosts */
	/* Encrypted archives (backup_crypt.h): a key file or a passphrase
	 * file; neither: the config's (encryption_key_file, ..._passphrase_file). */
	const char *key_file;
	const char *passphrase_file;
	const char *appsdata_root; /* NULL: custom data dirs keep their paths */
	const char *volumes_root;  /* NULL: volumes outside A's root keep theirs */
	bool force;
	/* Run by a daemon that is in restore mode (box_restore_status.h):
	 * the daemon on this state dir is not a refusal, and the SQLite store
	 * is copied into the daemon's open database, not renamed over it. */
	bool under_daemon;
	const volatile sig_atomic_t *cancel;
	/* A line for the operator (progress, what changed). */
	void (*say)(void *userdata, const char *line);
	void *userdata;
};

struct box_restore_result {
	int64_t backup_id;    /* A's full backup restored */
	int apps;             /* data dirs restored */
	int volumes;
	bool resumed;         /* a journal was found */
	int64_t fetch_bytes;  /* bytes fetched in this run */
	int64_t fetch_ms;
	int64_t archive_bytes; /* all the archives */
	int64_t data_bytes;   /* file data written into data dirs */
	int64_t total_ms;
};

int box_restore_run(const struct boxd_config *cfg, const struct box_restore_opts *o, struct box_restore_result *ret,
		    char *err, size_t errlen);
