#!/usr/bin/env bash
# t0420-untrusted-paths.sh — paths boxd acts on are checked where they are
# used, not only where they came in (issue 10, findings 2 and 7).
#
# Finding 7: a data dir is never one of boxd's own dirs: the database file,
# the task logs, the install root, a parent of the backup dir → 422, and
# nothing is created or deleted.
#
# Finding 2 (path half): whoever can write the store (the audit's chain: a
# DSN password read from `ps`) must not steer the root worker. Rows are
# written straight into the SQLite file, as that attacker would:
#   - the audit's chain: an app row with a ".." data dir aimed at a
#     directory elsewhere, a backup row naming the attacker's own archive
#     (with its right SHA-256), and a queued restore task: the task fails
#     and no setuid file lands anywhere;
#   - a sane app with a backup row outside the backup dir, restored
#     through the API: bad_backup, the data dir unchanged;
#   - retention never unlinks a file a row names outside the backup dir;
#   - an installed app whose data_dir is the database itself: its
#     uninstall fails bad_path and boxd.db stays (the old worker unlinked
#     it: fs_remove_tree took a file as a tree root).
#
# TAP. SQLite only (rows are written with the sqlite3 CLI). Needs the test
# env (the app tasks open the engine): BOXD_TEST_ENGINE_SOCKET. The trap
# kills the daemon and its workers and removes the temp dirs.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF
if [ "$TEST_STORE" != sqlite ]; then
	skip_all "writes rows with the sqlite3 CLI"
fi
command -v sqlite3 >/dev/null || bail "sqlite3 is needed"

IMG=$BOXD_TEST_APP_IMAGE
T=30
plan 17
outside_dir /srv || bail "cannot make a temp dir under /srv"
OUT=$OUTSIDE
INSTALL=$E2E_TMP/install
BK=$OUT/bk/backups
apps_setup "$(printf '[update]\ninstall_root = %s\n[backups]\ndir = %s\nkeep = 1\n' "$INSTALL" "$BK")"
mkdir -p "$INSTALL/releases" "$BK"
daemon_start --config "$APPS_CONF"
DB=$STATE/boxd.db

db() { sqlite3 -cmd '.timeout 10000' "$DB" "$@"; }
now() { now_ms; }
# insert_app ID DATA_DIR_SQL: an installed app row (DATA_DIR_SQL: 'text' or NULL).
insert_app() {
	db "INSERT INTO apps (id, image, env, data_dir, install_state, run_state, health, created_at, updated_at)
	    VALUES ('$1', '$IMG', '{}', $2, 'installed', 'stopped', 'unknown', $(now), $(now))"
}
# insert_backup APP PATH: an ok app backup row for PATH with its real hash; prints the id.
insert_backup() {
	local sha size
	sha=$(sha256sum "$2" | cut -d' ' -f1)
	size=$(stat -c %s "$2")
	db "INSERT INTO backups (kind, app_id, task_id, path, format, sha256, size, created_at, state)
	    VALUES ('app', '$1', 0, '$2', 'gzip', '$sha', $size, $(now), 'ok') RETURNING id"
}
# task_error ID: "state code" of a finished task.
task_error() { task "$1" '[.state, (.error.code // "")] | join(" ")'; }
refused_422() {
	[ "$STATUS" = 422 ] && grep -q bad_path <<<"$BODY" && return 0
	diag "got $STATUS $BODY"
	return 1
}

# ---- finding 7: boxd's own dirs are never data dirs ------------------------------

try_install() {
	req POST /apps "$(jq -nc --arg id "$APP_PREFIX-$1" --arg i "$IMG" --arg d "$2" '{id: $id, image: $i, dataDir: $d}')"
}
try_install db "$DB"
check "install with dataDir = the database file: 422 bad_path" refused_422
try_install logs "$STATE/logs"
check "install with dataDir = the task logs dir: 422" refused_422
try_install bin "$INSTALL/releases/x"
check "install with dataDir inside the install root: 422" refused_422
try_install bk "$OUT/bk"
check "install with dataDir = a parent of the backup dir: 422" refused_422
equal "none of them left an app row" "$(db "SELECT count(*) FROM apps")" 0

# ---- finding 2: rows written straight into the store --------------------------------

# The audit's chain: a ".." data dir, the attacker's archive (here even in
# the backup dir, so that the data dir alone is what refuses it), a queued
# restore. VICTIM stands for a directory on root's PATH.
VICTIM=$OUT/victim
mkdir -p "$VICTIM" "$OUT/p2" "$E2E_TMP/evil"
printf '#!/bin/sh\nid\n' >"$E2E_TMP/evil/rootshell"
chmod 4755 "$E2E_TMP/evil/rootshell"
tar --format=pax --numeric-owner -czf "$E2E_TMP/evil.tar.gz" -C "$E2E_TMP/evil" .
P2=$APP_PREFIX-p2
insert_app "$P2" "'$OUT/p2/../victim'"
cp "$E2E_TMP/evil.tar.gz" "$BK/app-evil.tar.gz"
bid=$(insert_backup "$P2" "$BK/app-evil.tar.gz")
tid=$(db "INSERT INTO tasks (type, app_id, args, state, percent, message, created_at)
	  VALUES ('restore', '$P2', '{\"backupId\":$bid}', 'queued', 0, '', $(now)) RETURNING id")
check "the queued restore (inserted as a row) is picked up and ends" wait_for $T is_final "$tid"
equal "... failed with bad_path (the data dir has '..')" "$(task_error "$tid")" "failed bad_path"
equal "... and nothing landed in the victim dir" "$(find "$VICTIM" -mindepth 1 | wc -l)" 0

# A sane app, but its backup row names a file outside the backup dir.
P3=$APP_PREFIX-p3
insert_app "$P3" NULL
mkdir -p "$STATE/appsdata/$P3"
echo mine >"$STATE/appsdata/$P3/data.txt"
bid=$(insert_backup "$P3" "$E2E_TMP/evil.tar.gz")
tid=$(app_task "$P3" restore "{\"backupId\":$bid}") || tid=
check "restore from a backup row outside the backup dir: the task ends" wait_for $T is_final "$tid"
equal "... failed with bad_backup" "$(task_error "$tid")" "failed bad_backup"
equal "... and the data dir is as it was" "$(ls -A "$STATE/appsdata/$P3")" data.txt

# Retention deletes failed full backups with their files: never a file
# outside the backup dir.
echo precious >"$E2E_TMP/precious.txt"
db "INSERT INTO backups (kind, task_id, path, format, size, created_at, state)
    VALUES ('full', 0, '$E2E_TMP/precious.txt', 'zstd', 0, $(now), 'failed')" >/dev/null
db "DELETE FROM apps WHERE id != '$P3'"
tid=$(api POST /backups/create '{}' | jq -r .taskId) || tid=
check "a full backup (retention runs after it) succeeds" wait_task "$tid" 60
check "... and the file the failed row named outside the backup dir is still there" test -f "$E2E_TMP/precious.txt"

# Last, as the old code deleted the database here.
P1=$APP_PREFIX-p1
insert_app "$P1" "'$DB'"
tid=$(app_task "$P1" uninstall) || tid=
check "uninstall of an app whose data_dir row is the database: the task ends" wait_for $T is_final "$tid"
equal "... failed with bad_path" "$(task_error "$tid")" "failed bad_path"
check "... and boxd.db is still there, a file" test -f "$DB"
check "... and the daemon still answers" daemon_answers


done_testing
