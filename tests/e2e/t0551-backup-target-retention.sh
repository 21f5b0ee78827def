#!/usr/bin/env bash
# t0551-backup-target-retention.sh — retention on the SFTP target (issue
# 15, target_prune.h), against the test env's real OpenSSH server:
#
#   - with [backups] keep = 2, five full backups: afterwards the real `sftp`
#     client lists on the target exactly the files of the backups kept
#     (their rows), plus the files someone else put there, untouched;
#   - an app uninstalled after the first backup: its newest archive (in a
#     pruned full backup) stays on the target, with its metadata;
#   - a removal the server refuses (a manifest replaced by a non-empty
#     directory of that name) is reported in the task's result
#     (target.pruneErrors) and the backup succeeds; the next backup
#     removes it (target.pruned).
#
# TAP. The trap removes this test's target dir and its containers.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF BOXD_TEST_SSH_PORT BOXD_TEST_SSH_ROOT
command -v sftp >/dev/null || skip_all "the sftp client is missing"

plan 15

SSH_PORT=$BOXD_TEST_SSH_PORT SSH_USER=$BOXD_TEST_SSH_USER SSH_KEY=$BOXD_TEST_SSH_KEY
SSH_KNOWN_HOSTS=$BOXD_TEST_SSH_KNOWN_HOSTS
TARGET_DIR=$(mktemp -d "$BOXD_TEST_SSH_ROOT/t0551.XXXXXX")
on_exit "rm -rf '$TARGET_DIR'"
apps_setup "$(printf '[backups]\ntarget = sftp://%s@127.0.0.1:%s%s\nssh_key_file = %s\nknown_hosts = %s\nkeep = 2\n' \
	"$SSH_USER" "$SSH_PORT" "$TARGET_DIR" "$SSH_KEY" "$SSH_KNOWN_HOSTS")"
daemon_start --config "$APPS_CONF"

A1=$APP_PREFIX-stays
A2=$APP_PREFIX-goes
install_wait() { local t; t=$(install_app "$1" "$BOXD_TEST_APP_IMAGE") && wait_task "$t" 120; }
check "two apps installed" eval "install_wait $A1 && install_wait $A2"
echo one >"$STATE/appsdata/$A1/a.txt"
echo two >"$STATE/appsdata/$A2/b.txt"

# Someone else's files on the target, one named like a boxd archive.
echo "not boxd's" >"$TARGET_DIR/README.txt"
echo "not boxd's either" >"$TARGET_DIR/app-$A1-19990101T000000Z-t1.tar.zst"
STRAY=$(cd "$TARGET_DIR" && sha256sum README.txt app-*)

# full_backup: POST /backups/create, wait; TASK_ID, TASK; fails unless it succeeded.
full_backup() {
	req POST /backups/create
	[ "$STATUS" = 202 ] || { diag "POST /backups/create: $STATUS $BODY"; return 1; }
	TASK_ID=$(jq -r .taskId <<<"$BODY")
	wait_task "$TASK_ID" 300 || return 1
	TASK=$(task "$TASK_ID")
}
sftp_ls() {
	sftp -q -i "$SSH_KEY" -P "$SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$SSH_KNOWN_HOSTS" -o LogLevel=ERROR -b - "$SSH_USER@127.0.0.1" <<<"ls -1 $TARGET_DIR" 2>&1 |
		grep -v '^sftp>' | sed 's|.*/||' | LC_ALL=C sort
}
# The files boxd's rows name (archives with their metadata, manifests),
# and the stray files.
expected() {
	{
		api GET /backups | jq -r '.backups[] | select(.state == "ok") | .fileName, (select(.kind != "full") | .fileName + ".json")'
		echo README.txt
		echo "app-$A1-19990101T000000Z-t1.tar.zst"
	} | LC_ALL=C sort
}
newest_of() { api GET /backups | jq -r --arg a "$1" '[.backups[] | select(.kind == "app" and .appId == $a and .state == "ok")][0].fileName'; }
manifest_of() { api GET /backups | jq -r --argjson t "$1" '.backups[] | select(.kind == "full" and .taskId == $t) | .fileName'; }

check "full backup 1 succeeded" full_backup
M1=$(manifest_of "$TASK_ID")
A2_NEWEST=$(newest_of "$A2")
check "$A2 uninstalled (no final backup)" eval 't=$(app_task "$A2" uninstall "{\"noBackup\":true}") && wait_task "$t" 120'
check "full backups 2 and 3 succeeded" eval 'full_backup && T2=$TASK_ID && full_backup'
equal "backup 1's manifest is gone from the target (keep = 2)" "$(test -e "$TARGET_DIR/$M1" && echo there || echo gone)" gone

# Backup 4 prunes backup 2; its manifest on the target cannot be removed.
M2=$(manifest_of "$T2")
mv "$TARGET_DIR/$M2" "$E2E_TMP/m2"
mkdir "$TARGET_DIR/$M2" && touch "$TARGET_DIR/$M2/keep"
check "full backup 4 succeeded although a removal on the target failed" full_backup
equal "its result names the file it could not remove (target.pruneErrors)" \
	"$(jq -r '[.result.target.pruneErrors[]?.file] | join(",")' <<<"$TASK")" "$M2"
rm -r "${TARGET_DIR:?}/$M2" && mv "$E2E_TMP/m2" "$TARGET_DIR/$M2"
check "full backup 5 succeeded" full_backup
check "it removed the file left over (target.pruned >= 1, no errors)" \
	eval '[ "$(jq -r ".result.target.pruned" <<<"$TASK")" -ge 1 ] && [ "$(jq -r ".result.target.pruneErrors | length" <<<"$TASK")" = 0 ]'
check "the left-over manifest is gone from the target" test ! -e "$TARGET_DIR/$M2"

equal "2 full backups are kept" "$(api GET /backups | jq '[.backups[] | select(.kind == "full")] | length')" 2
equal "the real sftp client lists exactly the kept backups' files and the stray files on the target" \
	"$(sftp_ls)" "$(expected)"
check "the newest archive of the uninstalled $A2 is on the target, with its metadata" \
	eval 'test -n "$A2_NEWEST" && test -f "$TARGET_DIR/$A2_NEWEST" && test -f "$TARGET_DIR/$A2_NEWEST.json"'
check "the newest archive of $A1 is on the target" test -f "$TARGET_DIR/$(newest_of "$A1")"
equal "the files someone else put there are untouched" "$(cd "$TARGET_DIR" && sha256sum README.txt "app-$A1-19990101T000000Z-t1.tar.zst")" "$STRAY"

done_testing
