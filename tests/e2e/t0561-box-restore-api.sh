#!/usr/bin/env bash
# t0561-box-restore-api.sh — the whole box restored through the API on a
# fresh, running daemon (issue 15): `boxctl box restore` (POST/GET
# /api/v1/box/restore), SQLite.
#
# Box A (two apps with data, a volume, finished tasks) makes an encrypted
# full backup to this test's own sshd (scripts/test-env.sh sshd-start) and
# is destroyed. Box B (fresh state dir, other roots) runs boxd, then:
#   - a wrong key: `boxctl box restore --wait` fails with the CLI's
#     refusal (wrong_key) and its message; B is still empty, and restore
#     mode is over (a bad request is answered 400 again, not 503);
#   - a box with a volume: 409 box_not_empty naming it, nothing changed;
#   - the restore, with the sshd stopped (SIGSTOP) at first so that it
#     visibly runs: GET says running, a mutating request gets 503
#     `restoring`; sshd continues; boxctl follows it to the end through
#     the daemon's re-exec (same pid) and prints what changed;
#   - after: both apps' containers run, tree hashes equal A's, A's task
#     history is there, the volume is at B's root, the volume posted during
#     the restore does not exist.
#
# TAP. Needs root, the test env (engine, app image). The trap stops the
# sshd (and continues it first), kills the daemons, removes containers.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp-lib.sh"
. "$(dirname "$0")/box-lib.sh"
sftp_need
command -v sftp >/dev/null && [ -x /usr/sbin/sshd ] || skip_all "openssh is missing"

TESTENV=$(cd "$(dirname "$0")/../.." && pwd)/scripts/test-env.sh
DATA_MB=2
plan 24

SSHD=$E2E_TMP/sshd
mkdir -p "$SSHD"
on_exit "'$TESTENV' sshd-stop '$SSHD'"
eval "$("$TESTENV" sshd-start "$SSHD")" || bail "cannot start sshd"
on_exit "kill -CONT $SSH_PGID 2>/dev/null"
URL=sftp://$SSH_USER@127.0.0.1:$SSH_PORT$SSH_ROOT/target
KEY=$E2E_TMP/backup.key
openssl rand -hex 32 >"$KEY"
chmod 0600 "$KEY"
backups_ini() {
	printf '[backups]\ntarget = %s\nssh_key_file = %s\nknown_hosts = %s\nencryption_key_file = %s\n' \
		"$URL" "$SSH_KEY" "$SSH_KNOWN_HOSTS" "$KEY"
}

# ---- box A ----------------------------------------------------------------------------
sftp_setup "$(backups_ini)"
daemon_start --config "$APPS_CONF"
APPS=("$APP_PREFIX-a1" "$APP_PREFIX-a2")
n=0
for a in "${APPS[@]}"; do install_wait "$a" && n=$((n + 1)); done
equal "box A: two apps installed" "$n" 2
for a in "${APPS[@]}"; do fill "$(app "$a" .dataDir)"; done
VOL=$APP_PREFIX-vol
req POST /volumes "$(jq -nc --arg id "$VOL" '{id: $id}')"
equal "box A: a volume" "$STATUS" 201
sftp_wait_idle
req POST /backups/create
FB_TASK=$(jq -r .taskId <<<"$BODY")
check "box A: an encrypted full backup to the sftp target" \
	eval 'wait_task "$FB_TASK" 600 && ls "$SSH_ROOT/target" | grep -q "\.enc$"'
declare -A HASH
for a in "${APPS[@]}"; do HASH[$a]=$(tree_hash "$(app "$a" .dataDir)"); done
TASKS_A=$(all_tasks | jq -c '[.[] | select(.state == "succeeded") | .id] | sort')
box_destroy

# ---- box B ----------------------------------------------------------------------------
STATE=$E2E_TMP/stateB
SOCK=$STATE/boxd.sock
export BOXD_SOCKET=$SOCK
ROOT_B=$E2E_TMP/B-apps
VOLS_B=$E2E_TMP/B-vols
B_CONF=$E2E_TMP/boxd-b.conf
mkdir -p "$STATE"
{
	grep -v -e '^\[backups\]' -e '^target' -e '^ssh_key_file' -e '^known_hosts' -e '^encryption_key_file' "$APPS_CONF"
	printf '[paths]\nappsdata = %s\nvolumes = %s\n' "$ROOT_B" "$VOLS_B"
	backups_ini
} >"$B_CONF"
daemon_start --config "$B_CONF"
B_PID=$DAEMON_PID
check "box B: a fresh daemon, nothing active (platformstart done)" wait_for 120 no_active_task

restore_state() { api GET /box/restore | jq -r "${1:-.state}"; }

# A wrong key: refused before anything changed.
openssl rand -hex 32 >"$E2E_TMP/wrong.key"
chmod 0600 "$E2E_TMP/wrong.key"
out=$("$BOXCTL" box restore --from "$URL" --key "$E2E_TMP/wrong.key" --wait 2>&1)
rc=$?
refused_wrong_key() {
	[ $rc != 0 ] && grep -q "wrong key" <<<"$out" && grep -q "(wrong_key)" <<<"$out" || { diag "exit $rc: $out"; return 1; }
}
check "a wrong key: boxctl exits non-zero naming it" refused_wrong_key
equal "GET /box/restore: failed, wrong_key" "$(restore_state '[.state, .error.code] | join(" ")')" "failed wrong_key"
check "a wrong key: B is still empty" box_b_empty "$ROOT_B"
req POST /volumes '{}'
equal "restore mode is over: a bad request is answered 400 again" "$STATUS" 400

# A box that is not empty: 409, nothing changed.
req POST /volumes "$(jq -nc --arg id "$APP_PREFIX-zz" '{id: $id}')"
equal "box B gets a volume" "$STATUS" 201
req POST /box/restore "$(jq -nc --arg f "$URL" '{from: $f}')"
refused_not_empty() {
	[ "$STATUS" = 409 ] && [ "$(jq -r .error.code <<<"$BODY")" = box_not_empty ] && grep -q "$APP_PREFIX-zz" <<<"$BODY" ||
		{ diag "$STATUS $BODY"; return 1; }
}
check "a box with a volume: 409 box_not_empty naming it" refused_not_empty
equal "nothing changed: the record is still the wrong key's" "$(restore_state .error.code)" wrong_key
req DELETE "/volumes/$APP_PREFIX-zz"
check "the volume is removed again: B is empty" box_b_empty "$ROOT_B"
req POST /box/restore '{"from": "relative/dir"}'
equal "a relative source is refused (400)" "$STATUS" 400
req POST /box/restore "$(jq -nc --arg f "$URL" '{from: $f, keyFile: "/etc/../etc/passwd"}')"
equal "a key path with .. is refused (400)" "$STATUS" 400

# The restore. sshd stopped first: the child waits on it, visibly.
kill -STOP "$SSH_PGID"
LOG=$E2E_TMP/boxctl.log
t0=$(now_ms)
"$BOXCTL" box restore --from "$URL" --wait >"$LOG" 2>&1 &
CPID=$!
running() { [ "$(restore_state '[.state, .restoring] | join(" ")' 2>/dev/null)" = "running true" ]; }
check "GET /box/restore: running, restore mode on" wait_for 30 running
req POST /volumes "$(jq -nc --arg id "$APP_PREFIX-during" '{id: $id}')"
refused_restoring() {
	[ "$STATUS" = 503 ] && [ "$(jq -r .error.code <<<"$BODY")" = restoring ] || { diag "$STATUS $BODY"; return 1; }
}
check "a mutating request during the restore: 503 restoring" refused_restoring
req POST /box/restore "$(jq -nc --arg f "$URL" '{from: $f}')"
equal "a second restore meanwhile: 409 restore_running" "$(jq -r .error.code <<<"$BODY")" restore_running
kill -CONT "$SSH_PGID"
check "boxctl box restore --wait follows it to the end (exit 0)" eval 'wait_for 300 gone $CPID && wait $CPID'
t1=$(now_ms)
diag "box restore through the API: $(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100)) s (boxctl, incl. the stopped sshd and the re-exec)"
diag "$(grep -e '^Restored' -e '^Box restored' "$LOG")"
printed_changes() { grep -q "changed: app ${APPS[0]} data dir .* -> $ROOT_B/${APPS[0]}" "$LOG" || { diag "$(cat "$LOG")"; return 1; }; }
check "it printed what changed (the data dirs at B's root)" printed_changes
check "the daemon re-executed (same pid) and says it restarted" \
	eval 'alive $B_PID && [ "$(restore_state "[.state, .restarted] | map(tostring) | join(\" \")")" = "succeeded true" ]'

running_all() {
	local a
	for a in "${APPS[@]}"; do [ "$(container_state "app-$a")" = running ] || return 1; done
}
check "both apps' containers run on B (platformstart)" wait_for 300 running_all
same=0
for a in "${APPS[@]}"; do
	h=$(tree_hash "$ROOT_B/$a")
	if [ "$h" = "${HASH[$a]}" ]; then same=$((same + 1)); else diag "app $a: tree hash $h, A had ${HASH[$a]}"; fi
done
equal "the tree hash of every data dir equals A's" "$same" 2
TASKS_B=$(all_tasks | jq -c '[.[] | .id]')
equal "A's task history is on B" "$(jq -n --argjson a "$TASKS_A" --argjson b "$TASKS_B" '$a - $b | length')" 0
equal "the volume is at B's root; the one posted during the restore is not there" \
	"$(api GET /volumes | jq -c '[.volumes[] | .hostPath]')" "[\"$VOLS_B/$VOL\"]"

done_testing
