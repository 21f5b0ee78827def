#!/usr/bin/env bash
# t0540-backup-encryption.sh — encrypted backups (issue 15): with [backups]
# encryption_passphrase_file every archive is sealed (backup_crypt.h).
#
#   - a full backup of one app: every archive starts with the BOXDENC1
#     header and ends in .enc; the app's id appears nowhere in the backup
#     dir (names, metadata, manifest, archives), nor does a line of its data;
#   - restore with the right passphrase brings the data dir back byte for
#     byte (tree hash);
#   - with another passphrase in the file the restore fails with wrong_key,
#     and with a flipped byte or a cut archive with backup_corrupt: the data
#     dir is untouched and the app keeps running each time.
#
# TAP. Needs the test env (BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_APP_IMAGE).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

IMG=$BOXD_TEST_APP_IMAGE
T=60
PASS=$E2E_TMP/backup.passphrase

plan 11
printf 'correct horse battery staple\n' >"$PASS"
chmod 600 "$PASS"
apps_setup "$(printf '[backups]\nencryption_passphrase_file = %s\n' "$PASS")"
daemon_start --config "$APPS_CONF"
ROOT=$STATE/appsdata
BK=$STATE/backups
A=$APP_PREFIX-vault

ti=$(install_app "$A" "$IMG") || ti=
check "app installed" wait_task "$ti" $T
head -c $((8 * 1024 * 1024)) /dev/urandom >"$ROOT/$A/blob.bin"
mkdir -p "$ROOT/$A/notes"
for i in $(seq 1 50); do echo "plain text line number $i of a private note" >"$ROOT/$A/notes/n$i.txt"; done
h=$(tree_hash "$ROOT/$A")

req POST /backups/create
FB=$(jq -r .taskId <<<"$BODY")
check "the full backup succeeds" wait_task "$FB" $T
equal "its result says encrypted" "$(task "$FB" .result.encrypted)" true
all_sealed() {
	local f n=0
	for f in "$BK"/*.tar.*; do
		case $f in *.json) continue ;; esac
		[ "${f%.enc}" != "$f" ] || return 1
		[ "$(head -c 8 "$f")" = BOXDENC1 ] || return 1
		n=$((n + 1))
	done
	[ "$n" = 2 ] # the box state and the app
}
check "both archives are sealed: .enc, BOXDENC1 header" all_sealed
check "the app's id appears nowhere in the backup dir (names, metadata, manifest, archives)" \
	test -z "$(find "$BK" -name "*$A*")" -a -z "$(grep -rl -- "$A" "$BK")"
check "nor does its data" test -z "$(grep -rl -- "of a private note" "$BK")"

BID=$(api GET "/backups?appId=$A" | jq -r '.backups[0].id')
ARC=$(api GET "/backups?appId=$A" | jq -r '.backups[0].path')
echo "changed" >"$ROOT/$A/notes/n1.txt"
rm "$ROOT/$A/blob.bin"
tr=$(app_task "$A" restore "{\"backupId\": $BID}") || tr=
check "restore with the right passphrase succeeds" wait_task "$tr" $T
equal "the data dir is back byte for byte" "$(tree_hash "$ROOT/$A")" "$h"

# refused TEXT CODE: the restore fails with CODE, the data and app untouched.
refused() {
	local t
	t=$(app_task "$A" restore "{\"backupId\": $BID}") || return 1
	wait_for $T is_final "$t" || return 1
	local code
	code=$(task "$t" .error.code)
	[ "$code" = "$2" ] || { diag "$1: $code: $(task "$t" .error.message)"; return 1; }
	[ "$(tree_hash "$ROOT/$A")" = "$h" ] || { diag "$1: the data dir changed"; return 1; }
	[ "$(container_state "app-$A")" = running ] || { diag "$1: the app is not running"; return 1; }
}
printf 'another passphrase\n' >"$PASS"
check "another passphrase: wrong_key, nothing changed" refused "wrong passphrase" wrong_key
printf 'correct horse battery staple\n' >"$PASS"
cp "$ARC" "$E2E_TMP/saved"
size=$(stat -c %s "$ARC")
printf '\xde\xad\xbe\xef' | dd of="$ARC" bs=1 seek=$((size / 2)) conv=notrunc status=none
check "a flipped byte: backup_corrupt, nothing changed" refused "flipped byte" backup_corrupt
cp "$E2E_TMP/saved" "$ARC"
truncate -s $((size - 100)) "$ARC"
check "a cut archive: backup_corrupt, nothing changed" refused "cut archive" backup_corrupt

done_testing
