#!/usr/bin/env bash
# t0550-backup-target.sh — full backups uploaded to an SFTP target (issue
# 15): a real OpenSSH server of this test's own (scripts/test-env.sh
# sshd-start: 127.0.0.1, its own host key, key auth), real sessions killed.
#
#   - a full backup uploads every archive, its metadata and the manifest
#     (last); the real `sftp` client lists them, and each file on the
#     target has the local file's SHA-256; the task's result says so;
#   - a host key that is not pinned is refused (target_refused, naming the
#     fingerprint) and nothing on the target changes;
#   - the SSH session killed mid-upload: the worker reconnects and resumes
#     from the bytes the target has ("resumed at byte N", N > 0), and the
#     file on the target is still exact;
#   - a target that fills up (a 3 MiB tmpfs mounted as the target dir)
#     fails the backup with target_full, the full backup's row is failed,
#     and the backups already on the first target are untouched;
#   - the server gone for good mid-upload (all of sshd killed) fails the
#     backup with target_unreachable; the earlier backups stay as they were.
#
# TAP. Needs root (the tmpfs) and the test env (engine, app image). The
# trap stops the sshd, unmounts the tmpfs, removes the containers.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF
[ "$(id -u)" = 0 ] || skip_all "needs root (tmpfs)"
command -v sftp >/dev/null && [ -x /usr/sbin/sshd ] || skip_all "openssh is missing"

TESTENV=$(cd "$(dirname "$0")/../.." && pwd)/scripts/test-env.sh
BIG_MB=${T0550_BIG_MB:-48}

plan 21

SSHD=$E2E_TMP/sshd
mkdir -p "$SSHD"
on_exit "'$TESTENV' sshd-stop '$SSHD'"
start_sshd() {
	local out
	out=$("$TESTENV" sshd-start "$SSHD") || bail "cannot start sshd"
	eval "$out"
}
start_sshd
TARGET_DIR=$SSH_ROOT/t1
FULL_DIR=$SSH_ROOT/full
mkdir -p "$FULL_DIR"
on_exit "umount -l '$FULL_DIR'"

target_conf() { # URL KNOWN_HOSTS
	printf '[backups]\ntarget = %s\nssh_key_file = %s\nknown_hosts = %s\nkeep = 10\n' "$1" "$SSH_KEY" "$2"
}
apps_setup "$(target_conf "sftp://$SSH_USER@127.0.0.1:$SSH_PORT$TARGET_DIR" "$SSH_KNOWN_HOSTS")"
BASE_CONF=$(grep -v -e '^\[backups\]' -e '^target' -e '^ssh_key_file' -e '^known_hosts' -e '^keep' "$APPS_CONF")
set_target() { # URL [KNOWN_HOSTS]
	{
		printf '%s\n' "$BASE_CONF"
		target_conf "$1" "${2:-$SSH_KNOWN_HOSTS}"
	} >"$APPS_CONF"
}
daemon_start --config "$APPS_CONF"
BK=$STATE/backups

A1=$APP_PREFIX-small
A2=$APP_PREFIX-big
install_wait() { local t; t=$(install_app "$1" "$BOXD_TEST_APP_IMAGE") && wait_task "$t" 120; }
check "two apps installed" eval "install_wait $A1 && install_wait $A2"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$STATE/appsdata/$A1/small.bin"
head -c $((BIG_MB * 1024 * 1024)) /dev/urandom >"$STATE/appsdata/$A2/big.bin"

# full_backup: POST /backups/create and wait; TASK_ID, TASK.
full_backup() {
	TASK_ID= TASK=
	req POST /backups/create
	[ "$STATUS" = 202 ] || { diag "POST /backups/create: $STATUS $BODY"; return 1; }
	TASK_ID=$(jq -r .taskId <<<"$BODY")
	wait_for 300 is_final "$TASK_ID" || { diag "task $TASK_ID did not end"; return 1; }
	TASK=$(task "$TASK_ID")
}
# listing DIR: name and SHA-256 of every file in a target dir (host side).
listing() { (cd "$1" && find . -maxdepth 1 -type f -name '[!.]*' -printf '%P\n' | LC_ALL=C sort | xargs -r sha256sum); }
# same_as_local DIR: every file in the target dir is in the backup dir with
# the same bytes (a failed backup's archives stay local only).
same_as_local() {
	local f
	for f in $(cd "$1" && find . -maxdepth 1 -type f -printf '%P\n'); do
		cmp -s "$1/$f" "$BK/$f" || { diag "$f differs from the local copy"; return 1; }
	done
}
on_target() { test -f "$TARGET_DIR/$1"; }
manifest_of() { basename "$(api GET /backups | jq -r --argjson t "$1" '.backups[] | select(.kind == "full" and .taskId == $t) | .path')"; }
sftp_ls() {
	sftp -q -i "$SSH_KEY" -P "$SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$SSH_KNOWN_HOSTS" -o LogLevel=ERROR -b - "$SSH_USER@127.0.0.1" <<<"ls -1 $1" 2>&1 |
		grep -v '^sftp>' | sed 's|.*/||' | LC_ALL=C sort
}

# 1. A full backup goes to the target, verified.
full_backup
check "the full backup succeeded" test "$(jq -r .state <<<"$TASK")" = succeeded
MANIFEST=$(jq -r '.result.backupId' <<<"$TASK")
equal "the result counts 7 files sent to the target (box, 2 apps, their metadata, the manifest)" \
	"$(jq -r '.result.target.files' <<<"$TASK")" 7
local_files=$(cd "$BK" && ls -1 | LC_ALL=C sort)
equal "the real sftp client lists the same files on the target as in the backup dir" "$(sftp_ls "$TARGET_DIR")" "$local_files"
check "every file on the target has the local file's SHA-256" \
	test "$(listing "$TARGET_DIR")" = "$(listing "$BK")"
check "no part file is left on the target" test -z "$(find "$TARGET_DIR" -name '.*.part')"
FIRST=$(listing "$TARGET_DIR")
diag "upload: $(jq -c '.result.target' <<<"$TASK")"

# 2. A host key not pinned: refused, nothing sent.
: >"$E2E_TMP/empty_known_hosts"
set_target "sftp://$SSH_USER@127.0.0.1:$SSH_PORT$TARGET_DIR" "$E2E_TMP/empty_known_hosts"
full_backup
equal "an unknown host key fails the backup with target_refused" "$(jq -r '.error.code' <<<"$TASK")" target_refused
check "the message names the unpinned key's fingerprint" grep -q "SHA256:.*is not pinned in" <<<"$(jq -r '.error.message' <<<"$TASK")"
check "nothing on the target changed" test "$(listing "$TARGET_DIR")" = "$FIRST"
set_target "sftp://$SSH_USER@127.0.0.1:$SSH_PORT$TARGET_DIR"

# 3. The session killed mid-upload: resumed.
# session_pids: the per-connection sshd processes (children of the listener).
session_pids() { pgrep -P "$SSH_PGID"; }
part_grown() { # the big archive's part file has more than 8 MiB
	local f
	f=$(find "$TARGET_DIR" -maxdepth 1 -name ".app-$A2-*.part" -size +8M | head -n1)
	[ -n "$f" ]
}
req POST /backups/create
TASK_ID=$(jq -r .taskId <<<"$BODY")
if wait_for 120 part_grown; then
	kill -KILL $(session_pids) 2>/dev/null
	ok "the upload of the big archive is under way; its SSH session killed"
else
	not_ok "the upload of the big archive is under way; its SSH session killed"
fi
wait_for 300 is_final "$TASK_ID"
TASK=$(task "$TASK_ID")
check "the backup succeeded all the same" test "$(jq -r .state <<<"$TASK")" = succeeded
log=$(curl -s --max-time 10 --unix-socket "$SOCK" "http://boxd/api/v1/tasks/$TASK_ID/logs")
resumed_at=$(grep -o 'resumed at byte [0-9]*' <<<"$log" | head -n1 | awk '{ print $4 }')
check "it reconnected and resumed at a byte > 0 (at ${resumed_at:-?})" test "${resumed_at:-0}" -gt 0
check "its manifest is on the target, and every file there has the local file's bytes" \
	eval 'on_target "$(manifest_of "$TASK_ID")" && same_as_local "$TARGET_DIR"'
SECOND=$(listing "$TARGET_DIR")

# 4. A target that fills up.
mount -t tmpfs -o size=3m boxd-t0550 "$FULL_DIR" || bail "cannot mount a tmpfs"
set_target "sftp://$SSH_USER@127.0.0.1:$SSH_PORT$FULL_DIR"
full_backup
equal "a full target fails the backup with target_full" "$(jq -r '.error.code' <<<"$TASK")" target_full
check "the message says the target is full" grep -q "is full" <<<"$(jq -r '.error.message' <<<"$TASK")"
equal "the full backup's row is failed" \
	"$(api GET /backups | jq -r --argjson t "$TASK_ID" '.backups[] | select(.kind == "full" and .taskId == $t) | .state')" failed
check "the backups on the first target are untouched" test "$(listing "$TARGET_DIR")" = "$SECOND"
umount "$FULL_DIR"

# 5. The server gone for good mid-upload.
set_target "sftp://$SSH_USER@127.0.0.1:$SSH_PORT$TARGET_DIR"
rm -f "$TARGET_DIR"/.*.part
req POST /backups/create
TASK_ID=$(jq -r .taskId <<<"$BODY")
if wait_for 120 part_grown; then
	"$TESTENV" sshd-stop "$SSHD"
	ok "sshd stopped (listener and sessions) during the upload"
else
	not_ok "sshd stopped (listener and sessions) during the upload"
fi
wait_for 300 is_final "$TASK_ID"
TASK=$(task "$TASK_ID")
equal "the backup fails with target_unreachable" "$(jq -r '.error.code' <<<"$TASK")" target_unreachable
# kept OLD NEW: every file of listing OLD is in listing NEW, same bytes.
kept() { [ -z "$(comm -23 <(printf '%s\n' "$1" | LC_ALL=C sort) <(printf '%s\n' "$2" | LC_ALL=C sort))" ]; }
check "the earlier backups on the target are intact (every file, same bytes)" kept "$SECOND" "$(listing "$TARGET_DIR")"
manifests() { grep -c ' full-.*\.json$' <<<"$1"; }
equal "no manifest of the failed backup on the target" "$(manifests "$(listing "$TARGET_DIR")")" "$(manifests "$SECOND")"

done_testing
