/* box_state.h — a consistent dump of boxd's store, the first archive of a
 * full backup.
 *
 *   SQLite: the online backup API (sqlite3_backup_*) copies the database
 *     page by page into `boxd.db` in one read transaction; the copy is a
 *     complete SQLite database that can replace the original as it is.
 *     Other connections keep reading and writing meanwhile (WAL).
 *   MariaDB/MySQL, PostgreSQL: a logical export through the store API into
 *     `boxd-state.jsonl`, inside one REPEATABLE READ read-only transaction
 *     (a single snapshot): a header line
 *       {"boxdStateExport":1,"backend":"mysql","schemaVersion":4}
 *     then per table (boxd's tables as information_schema lists them, by
 *     name) a line {"table":"apps","columns":["id",...]} and one line per
 *     row {"table":"apps","row":{"id":"wiki",...}}; integer columns are
 *     JSON numbers, the rest strings, SQL NULL is null.
 *
 * Both write with the temp/fsync/rename sequence (common/tempfile.h). The dump
 * opens its own store connection from the config, so the caller's
 * connection stays free for progress updates.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

/* Write the dump into the existing directory `dir`. *ret_name (optional,
 * static) gets the file name written. 0 or negative errno with a message. */
int box_state_dump(const struct boxd_config *cfg, const char *dir, const char **ret_name, char *err, size_t errlen);

/* Whether `s` may be spelled into SQL as a table or column name: 1 to 63
 * of [a-z0-9_], as boxd's schema names are. The export writes only such
 * names, and the restore (box_restore.c) imports only such. */
bool box_state_ident_ok(const char *s);
