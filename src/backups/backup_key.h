/* backup_key.h — telling boxd's own app archives from anyone else's.
 *
 * Whoever can write the store can write a backup row for an archive of
 * their making, with its right SHA-256: the row proves nothing about where
 * the archive came from. So each archive boxd writes gets a MAC, an
 * HMAC-SHA256 under a key that only boxd's user can read
 * (<state_dir>/backup.key, 32 random bytes, mode 0600, made at the first
 * backup), over the archive's kind, app and SHA-256 and size; it is stored
 * in the row (`mac`). A restore restores the owners recorded in an archive
 * only when its MAC checks out ([backups] restore_foreign_owners lifts
 * that), so a planted archive cannot hand files to another user.
 *
 * The key belongs to the host's state dir: archives made by another host
 * (or before the key existed) do not authenticate here; copy the key to
 * share it. Functions return 0 or a negative errno with a message in err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define BACKUP_MAC_HEX 65

/* The MAC of an archive, as 64 hex digits; makes the key if there is none. */
int backup_mac(const struct boxd_config *cfg, const char *kind, const char *app_id, const char *sha256, int64_t size,
	       char ret_hex[BACKUP_MAC_HEX], char *err, size_t errlen);

/* Whether `mac` (may be NULL) is the MAC of that archive under this host's
 * key. No key, or a key that is not boxd's own file: false. */
bool backup_mac_ok(const struct boxd_config *cfg, const char *kind, const char *app_id, const char *sha256,
		   int64_t size, const char *mac);
