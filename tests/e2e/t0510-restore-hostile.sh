#!/usr/bin/env bash
# t0510-restore-hostile.sh — what an app archive may put on the host, and
# that the archive restored is the archive verified (issue 10, findings 2,
# 3 and 9).
#
# One app on the test env's engine, its data dir holding a marker file, a
# 1 GiB sparse file (8 KiB of data), a setuid file of a foreign user (uid
# 4321) and a fifo. Then:
#   - finding 9: the app backup reads only the data of the sparse file
#     (the task's dataBytes, not a time), and the restore gives it back
#     sparse: the same size and bytes, < 1 MiB allocated (stat, not time);
#   - finding 2 (archive half), boxd's own archive: the owners come back
#     (the archive's MAC checks out), but the setuid bit is cleared and the
#     fifo left out ([backups] restore_special is off by default);
#   - finding 2, an archive boxd did not make (a row written into the
#     store, the file in the backup dir, the right SHA-256): setuid and
#     setgid bits cleared, no device node or fifo, no foreign owner (all
#     root's), and the task says ownersRestored false;
#   - finding 3: a process watching the archive renames another archive
#     over it the moment the restore opens it (tests/tools/swap-on-open,
#     inotify IN_OPEN): what is restored is the verified archive, not the
#     swapped-in one (the old worker verified one file and extracted the
#     other); an archive not owned by boxd's user is refused.
#
# TAP. SQLite only (a row is written with the sqlite3 CLI). Needs the test
# env: BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_APP_IMAGE. The trap kills the
# daemon and its workers and removes the containers and temp dirs.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF
: "${SWAP_ON_OPEN:?SWAP_ON_OPEN must point at tests/tools/swap-on-open}"
if [ "$TEST_STORE" != sqlite ]; then
	skip_all "writes a row with the sqlite3 CLI"
fi
command -v sqlite3 >/dev/null || bail "sqlite3 is needed"

IMG=$BOXD_TEST_APP_IMAGE
T=120
A=$APP_PREFIX-app
plan 21
apps_setup
daemon_start --config "$APPS_CONF"
ROOT=$STATE/appsdata
DIR=$ROOT/$A
BK=$STATE/backups
DB=$STATE/boxd.db
db() { sqlite3 -cmd '.timeout 10000' "$DB" "$@"; }

tid=$(install_app "$A" "$IMG") || tid=
check "app installed" wait_task "$tid" $T

# ---- the data ----------------------------------------------------------------------
echo "the original $$" >"$DIR/marker.txt"
truncate -s 1G "$DIR/sparse.img"
printf 'head of the sparse file' | dd of="$DIR/sparse.img" conv=notrunc status=none
printf 'tail of the sparse file' | dd of="$DIR/sparse.img" bs=4096 seek=$((262144 - 1)) conv=notrunc status=none
printf '#!/bin/sh\nid\n' >"$DIR/suid-foreign"
chown 4321:4321 "$DIR/suid-foreign"
chmod 4755 "$DIR/suid-foreign"
mkfifo "$DIR/fifo"
sparse_sum=$(dd if="$DIR/sparse.img" bs=4096 count=1 status=none | sha256sum)$(dd if="$DIR/sparse.img" bs=4096 skip=$((262144 - 1)) status=none | sha256sum)

# allocated_kib FILE
allocated_kib() { echo $(($(stat -c '%b * %B' "$1") / 1024)); }
sparse_same() {
	[ "$(stat -c %s "$DIR/sparse.img")" = 1073741824 ] &&
		[ "$(dd if="$DIR/sparse.img" bs=4096 count=1 status=none | sha256sum)$(dd if="$DIR/sparse.img" bs=4096 skip=$((262144 - 1)) status=none | sha256sum)" = "$sparse_sum" ]
}

# ---- finding 9: sparse files ------------------------------------------------------------
tid=$(app_task "$A" backup) || tid=
check "backup of the app succeeds" wait_task "$tid" $T
B1=$(task "$tid" .result.backupId)
data_bytes=$(task "$tid" .result.dataBytes)
diag "backup: dataBytes $data_bytes, archive $(task "$tid" .result.size) bytes, $(task "$tid" .result.ms) ms"
check "the backup read only the data of the sparse file (dataBytes $data_bytes < 1 MiB)" test "$data_bytes" -lt 1048576
rm -f "$DIR/sparse.img" "$DIR/marker.txt"
tid=$(app_task "$A" restore "{\"backupId\":$B1}") || tid=
check "restore of the app succeeds" wait_task "$tid" $T
diag "restore: $(task "$tid" '.result | tojson')"
check "the sparse file is back: 1 GiB, the same head and tail" sparse_same
kib=$(allocated_kib "$DIR/sparse.img")
check "... and still sparse ($kib KiB allocated < 1024)" test "$kib" -lt 1024
equal "the marker is back" "$(cat "$DIR/marker.txt" 2>&1)" "the original $$"

# ---- finding 2: boxd's own archive: owners yes, setuid and fifos no ----------------------
equal "boxd's archive: the owners came back (authenticated)" "$(stat -c %u:%g "$DIR/suid-foreign")" 4321:4321
equal "boxd's archive: the setuid bit is cleared" "$(stat -c %a "$DIR/suid-foreign")" 755
check "boxd's archive: the fifo was left out" test ! -e "$DIR/fifo"
equal "the task says so" "$(task "$tid" '[.result.ownersRestored, .result.skippedSpecial, .result.clearedSetid] | map(tostring) | join(" ")')" "true 1 1"

# ---- finding 2: an archive boxd did not make ---------------------------------------------
EV=$E2E_TMP/evil
mkdir -p "$EV/bin"
printf '#!/bin/sh\nid\n' >"$EV/bin/rootshell"
chmod 4755 "$EV/bin/rootshell"
printf 'x\n' >"$EV/bin/setgid"
chmod 2755 "$EV/bin/setgid"
mknod "$EV/disk" b 8 0
mknod "$EV/mem" c 1 1
mkfifo "$EV/pipe"
printf 'mine\n' >"$EV/foreign"
chown 4321:4321 "$EV/foreign" "$EV"
tar --format=pax --numeric-owner -czf "$BK/app-$A-planted.tar.gz" -C "$EV" .
chmod 0600 "$BK/app-$A-planted.tar.gz"
sha=$(sha256sum "$BK/app-$A-planted.tar.gz" | cut -d' ' -f1)
size=$(stat -c %s "$BK/app-$A-planted.tar.gz")
bid=$(db "INSERT INTO backups (kind, app_id, task_id, path, format, sha256, size, created_at, state)
	  VALUES ('app', '$A', 0, '$BK/app-$A-planted.tar.gz', 'gzip', '$sha', $size, $(now_ms), 'ok') RETURNING id")
tid=$(app_task "$A" restore "{\"backupId\":$bid}") || tid=
check "restore of the planted archive runs" wait_task "$tid" $T
equal "planted: no setuid or setgid file" "$(find "$DIR" -perm /6000 | wc -l)" 0
equal "planted: no device node or fifo" "$(find "$DIR" \( -type b -o -type c -o -type p \) | wc -l)" 0
equal "planted: nothing owned by the archive's foreign user" "$(find "$DIR" \( -uid 4321 -o -gid 4321 \) | wc -l)" 0
equal "planted: the task says the owners were not restored" "$(task "$tid" .result.ownersRestored)" false

# ---- finding 3: a swap between verify and extract -------------------------------------------
tid=$(app_task "$A" restore "{\"backupId\":$B1}") || tid=
check "back to boxd's backup" wait_task "$tid" $T
P1=$(api GET "/backups" | jq -r --argjson id "$B1" '.backups[] | select(.id == $id) | .path')
mkdir -p "$E2E_TMP/swap"
echo pwned >"$E2E_TMP/swap/pwned"
tar --format=pax --numeric-owner -czf "$BK/.swap-in" -C "$E2E_TMP/swap" .
chmod 0600 "$BK/.swap-in"
cp -p "$P1" "$E2E_TMP/b1-original"
"$SWAP_ON_OPEN" "$P1" "$BK/.swap-in" "$E2E_TMP/swapper-ready" >"$E2E_TMP/swapper.out" 2>&1 &
SWAPPER=$!
on_exit "kill $SWAPPER"
check "the swapper watches the archive" wait_for 10 test -e "$E2E_TMP/swapper-ready"
tid=$(app_task "$A" restore "{\"backupId\":$B1}") || tid=
wait_for $T is_final "$tid"
wait "$SWAPPER"
equal "the swapper swapped the archive when the restore opened it" "$(cat "$E2E_TMP/swapper.out")" swapped
check "what was restored is the verified archive, not the swapped-in one" \
	test ! -e "$DIR/pwned" -a "$(cat "$DIR/marker.txt" 2>&1)" = "the original $$"
# An archive that is not boxd's own file (here: handed to nobody) is refused.
cp -p "$E2E_TMP/b1-original" "$P1"
chown nobody "$P1"
tid=$(app_task "$A" restore "{\"backupId\":$B1}") || tid=
wait_for $T is_final "$tid"
equal "an archive owned by another user: refused, backup_corrupt" "$(task "$tid" '[.state, .error.code] | join(" ")')" "failed backup_corrupt"

done_testing
