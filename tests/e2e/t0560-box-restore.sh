#!/usr/bin/env bash
# t0560-box-restore.sh — the whole box onto a fresh machine (issue 15):
# `boxd restore --from sftp://...` on the store BOXD_TEST_STORE (sqlite,
# mysql or postgres; tests/meson.build runs all three in suite 'extra').
#
# Box A (state dir A, its roots, the test env's Podman, sftp): five apps
# with data, one of them with a custom data dir, a volume, finished tasks.
# Its full backup is the one its [backups] schedule fires (args.scheduledFor),
# to the test env's SFTP target, encrypted ([backups] encryption_key_file). Box A is destroyed: its
# daemon killed, its containers removed, its state dir, roots and custom
# dir deleted, its database dropped. Box B (a fresh state dir, other roots,
# a fresh database, the same Podman) then:
#   - refuses a truncated archive, a flipped byte, a missing archive and a
#     wrong key, each before anything on B changed (no store, no data dir,
#     no container);
#   - restores, killed with -9 in the middle of the data dirs, and again:
#     the second run resumes and finishes;
#   - refuses to restore again over the restored box (not empty) without
#     --force;
#   - starts: every app's container runs (platformstart recreated them),
#     the tree hash of every data dir equals A's, at B's roots (the custom
#     dir remapped with --appsdata-root), sftp lists the data, A's task
#     history is there, the volume is at B's volumes root.
# The restore's own numbers (MB/s of the fetch, seconds in all) are printed
# as TAP comments; T0560_NO_KILL=1 restores in one run, for the timing.
#
# TAP. Needs root, the test env (engine, images, sshd, the store's server).
# The trap kills every process it started, removes the containers of this
# test, its target dirs, mounts and databases.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp-lib.sh"
. "$(dirname "$0")/box-lib.sh"
sftp_need
need_test_env BOXD_TEST_SSH_PORT BOXD_TEST_SSH_KEY BOXD_TEST_SSH_ROOT

DATA_MB=${T0560_DATA_MB:-12}
N=5

plan 35

TARGET=$BOXD_TEST_SSH_ROOT/$E2E_NAME-$$
URL_BASE="sftp://$BOXD_TEST_SSH_USER@127.0.0.1:$BOXD_TEST_SSH_PORT"
URL=$URL_BASE$TARGET
on_exit "rm -rf '$TARGET' '$TARGET'-*"
KEY=$E2E_TMP/backup.key
openssl rand -hex 32 >"$KEY"
chmod 0600 "$KEY"
backups_ini() {
	printf '[backups]\ntarget = %s\nssh_key_file = %s\nknown_hosts = %s\nencryption_key_file = %s\n' \
		"$URL" "$BOXD_TEST_SSH_KEY" "$BOXD_TEST_SSH_KNOWN_HOSTS" "$KEY"
}

# ---- box A ------------------------------------------------------------------------
# Two machines: A and B have host ids of their own (apps are placed on the
# host that installed them; B must take them over).
export BOXD_HOST_ID=box-a
sftp_setup "$(backups_ini)"
daemon_start --config "$APPS_CONF"
sftp_wait_idle
APPS=()
for i in $(seq 1 $N); do APPS+=("$APP_PREFIX-a$i"); done
outside_dir /srv || bail "cannot make a dir in /srv"
CUSTOM_A=$OUTSIDE/a5data
ok_installs=0
for i in $(seq 0 $((N - 1))); do
	dir=
	[ "$i" = $((N - 1)) ] && dir=$CUSTOM_A
	install_wait "${APPS[$i]}" "$dir" && ok_installs=$((ok_installs + 1))
done
equal "box A: five apps installed (one with the custom data dir $CUSTOM_A)" "$ok_installs" $N
dir_a() { app "$1" .dataDir; }
for a in "${APPS[@]}"; do fill "$(dir_a "$a")"; done
VOL=$APP_PREFIX-vol
req POST /volumes "$(jq -nc --arg id "$VOL" '{id: $id}')"
equal "box A: a volume" "$STATUS" 201
VOL_A=$(api GET /volumes | jq -r --arg id "$VOL" '.volumes[] | select(.id == $id) | .hostPath')
sftp_wait_converged
check "box A: sftp lists an app's data" sftp_lists "/appsdata/${APPS[0]}/sub" hello.txt

# Box A's full backup is the one its [backups] schedule fires: the
# schedule is set a few seconds ahead (UTC) by a reload (SIGHUP), as an
# operator would; no test clock, every wait has a deadline.
SLOT=$(($(date +%s) + 5))
printf '[backups]\nschedule = daily %s\n' "$(date -u -d "@$SLOT" +%H:%M:%S)" >>"$APPS_CONF"
kill -HUP "$DAEMON_PID"
scheduled_task() {
	api GET '/tasks?type=fullbackup' | jq -r --argjson s "$SLOT" '[.tasks[] | select(.args.scheduledFor == $s)][0].id // empty'
}
has_scheduled_task() { [ -n "$(scheduled_task)" ]; }
check "box A: the schedule fires a full backup at its slot (args.scheduledFor)" wait_for 60 has_scheduled_task
FB_TASK=$(scheduled_task)
equal "box A: no other full backup was made" \
	"$(api GET '/tasks?type=fullbackup' | jq '[.tasks[]] | length')" 1
wait_task "$FB_TASK" 600
check "box A: the full backup succeeded and went to the target" \
	test "$(task "$FB_TASK" '.result.target.files')" -gt $((2 * N))
diag "box A upload: $(task "$FB_TASK" '.result.target | tostring')"
declare -A HASH
for a in "${APPS[@]}"; do HASH[$a]=$(tree_hash "$(dir_a "$a")"); done
TASKS_A=$(all_tasks | jq -c '[.[] | select(.state == "succeeded") | .id] | sort')
ENCRYPTED=0
ls "$TARGET" | grep -q '\.enc$' && ENCRYPTED=1
diag "the archives on the target are $([ $ENCRYPTED = 1 ] && echo encrypted || echo plain)"

# ---- box A destroyed ------------------------------------------------------------------
box_destroy "$CUSTOM_A"
check "box A is gone (state dir, custom dir, containers)" \
	eval '[ ! -e "$STATE" ] && [ ! -e "$CUSTOM_A" ] && [ "$(container_state "app-${APPS[0]}")" != running ]'

# ---- box B --------------------------------------------------------------------------
export BOXD_HOST_ID=box-b
STATE=$E2E_TMP/stateB
SOCK=$STATE/boxd.sock
ROOT_B=$E2E_TMP/B-apps
VOLS_B=$E2E_TMP/B-vols
CUSTOM_B=$OUTSIDE/B-custom
B_CONF=$E2E_TMP/boxd-b.conf
mkdir -p "$STATE"
{
	grep -v -e '^\[backups\]' -e '^schedule' -e '^target' -e '^ssh_key_file' -e '^known_hosts' -e '^encryption_key_file' "$APPS_CONF"
	printf '[paths]\nappsdata = %s\nvolumes = %s\n' "$ROOT_B" "$VOLS_B"
	backups_ini
} >"$B_CONF"
if [ "$TEST_STORE" != sqlite ]; then
	E2E_DB=$(store_db_create) || bail "cannot create a $TEST_STORE database"
	on_exit store_db_drop "$E2E_DB"
	printf '[store]\nbackend = %s\ndsn = %s\n' "$TEST_STORE" "$(store_dsn "$E2E_DB")" >>"$B_CONF"
fi
restore() { "$BOXD" --state-dir "$STATE" --config "$B_CONF" restore "$@"; }

b_untouched() {
	if [ "$TEST_STORE" = sqlite ]; then
		[ ! -e "$STATE/boxd.db" ] || { diag "B has a database"; return 1; }
	fi
	box_b_empty "$ROOT_B" "$CUSTOM_B"
}

# bad_copy NAME: a copy of the target with one thing wrong; prints its URL.
BIG=$(cd "$TARGET" && ls -S | grep -v '\.json$' | grep -v '^box-' | head -n1)
bad_copy() {
	local d=$TARGET-$1
	rm -rf "$d"
	cp -a "$TARGET" "$d"
	case $1 in
	truncated) truncate -s -1000 "$d/$BIG" ;;
	flipped)
		# Every bit of the middle byte inverted: writing a fixed byte
		# changed nothing when the byte already was that one (1 run in
		# 256 restored the "damaged" copy).
		local off byte
		off=$(($(stat -c %s "$d/$BIG") / 2))
		byte=$(od -An -tu1 -j "$off" -N1 "$d/$BIG" | tr -d ' ')
		# shellcheck disable=SC2059 # the format is the octal escape
		printf "\\$(printf '%03o' $((byte ^ 255)))" | dd of="$d/$BIG" bs=1 seek="$off" conv=notrunc status=none
		;;
	missing) rm "$d/$BIG" ;;
	esac
	echo "$URL_BASE$d"
}
refused() { # WHAT PATTERN ARGS...: restore fails naming PATTERN, B untouched
	local what=$1 pat=$2 out rc
	shift 2
	out=$(restore "$@" 2>&1)
	rc=$?
	if [ $rc = 0 ] || ! grep -q -- "$pat" <<<"$out" || ! grep -q "nothing was changed" <<<"$out"; then
		diag "restore ($what): exit $rc: $(tail -n 3 <<<"$out")"
		return 1
	fi
	b_untouched
}
check "a truncated archive is refused, nothing on B changed" refused truncated "damaged" --from "$(bad_copy truncated)"
check "a flipped byte is refused, nothing on B changed" refused flipped "damaged" --from "$(bad_copy flipped)"
check "a missing archive is refused, nothing on B changed" refused missing "missing" --from "$(bad_copy missing)"
if [ $ENCRYPTED = 1 ]; then
	openssl rand -hex 32 >"$E2E_TMP/wrong.key"
	chmod 0600 "$E2E_TMP/wrong.key"
	check "a wrong key is refused, nothing on B changed" refused "wrong key" "wrong key" --from "$URL" --key "$E2E_TMP/wrong.key"
else
	skip "a wrong key is refused, nothing on B changed" "the backups are not encrypted in this build"
fi

# The restore, killed with -9 in the middle of the data dirs, then again.
LOG1=$E2E_TMP/restore1.log
LOG2=$E2E_TMP/restore2.log
t0=$(now_ms)
# boxd itself in the background (not a function: its subshell's pid is
# not boxd's).
"$BOXD" --state-dir "$STATE" --config "$B_CONF" restore --from "$URL" --appsdata-root "$CUSTOM_B" >"$LOG1" 2>&1 &
RPID=$!
apps_begun() { [ "$(grep -c '^Restoring app' "$LOG1")" -ge 3 ] || gone "$RPID"; }
if [ -z "${T0560_NO_KILL:-}" ]; then
	wait_for 300 apps_begun
	if alive "$RPID"; then
		kill -KILL "$RPID"
		wait "$RPID" 2>/dev/null
		ok "the restore killed with -9 while restoring app 3 of $N"
	else
		wait "$RPID"
		not_ok "the restore killed with -9 while restoring app 3 of $N (it had ended: $(tail -n1 "$LOG1"))"
	fi
	check "the journal of the killed restore is there" test -f "$STATE/restore/journal.json"
	restore --from "$URL" --appsdata-root "$CUSTOM_B" >"$LOG2" 2>&1
	rc=$?
	equal "the second run finishes (exit 0)" "$rc" 0
	check "it says it resumed" grep -q "(resumed)" "$LOG2"
else
	wait "$RPID"
	rc=$?
	cp "$LOG1" "$LOG2"
	equal "the restore finishes (exit 0)" "$rc" 0
	skip "the journal of the killed restore is there" T0560_NO_KILL
	skip "the second run finishes" T0560_NO_KILL
	skip "it says it resumed" T0560_NO_KILL
fi
t1=$(now_ms)
diag "restore of the $N-app box: $(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100)) s wall (both runs); $(grep '^Restored' "$LOG2")"
[ "$rc" = 0 ] || diag "$(cat "$LOG1" "$LOG2")"
check "the staging dir is gone" test ! -e "$STATE/restore"
check "it says what it changed: the default data dirs moved to B's root" \
	grep -q "changed: app ${APPS[0]} data dir .* -> $ROOT_B/${APPS[0]}" "$LOG1" "$LOG2"
check "it says what it changed: the custom data dir remapped" \
	grep -q "changed: app ${APPS[4]} data dir $CUSTOM_A -> $CUSTOM_B/${APPS[4]}" "$LOG1" "$LOG2"
check "it says what it changed: the volume" grep -q "changed: volume $VOL $VOL_A -> $VOLS_B/$VOL" "$LOG1" "$LOG2"
check "it says what it changed: A's apps are placed on B" \
	grep -q "changed: $N apps placed on this host (box-b)" "$LOG1" "$LOG2"
out=$(restore --from "$URL" 2>&1)
check "restoring again over the restored box is refused without --force" \
	eval 'grep -q "not empty" <<<"$out" && grep -q "nothing was changed" <<<"$out"'

# ---- box B runs --------------------------------------------------------------------------
daemon_start --config "$B_CONF"
export BOXD_SOCKET=$SOCK
running_all() {
	local a
	for a in "${APPS[@]}"; do [ "$(container_state "app-$a")" = running ] || return 1; done
}
check "every app's container runs on B (platformstart recreated them)" wait_for 300 running_all
for a in "${APPS[@]}"; do
	[ "$(app_state "$a")" = installed ] || diag "app $a: $(app "$a" '[.installationState, .runState] | join(" ")')"
done
equal "every app is installed" "$(api GET /apps | jq --arg p "$APP_PREFIX-" '[.apps[] | select((.id | startswith($p)) and .installationState == "installed")] | length')" $N
equal "app 1's data dir is at B's appsdata root" "$(dir_a "${APPS[0]}")" "$ROOT_B/${APPS[0]}"
equal "the custom data dir is at the remapped root" "$(dir_a "${APPS[4]}")" "$CUSTOM_B/${APPS[4]}"
same=0
for a in "${APPS[@]}"; do
	h=$(tree_hash "$(dir_a "$a")")
	if [ "$h" = "${HASH[$a]}" ]; then same=$((same + 1)); else diag "app $a: tree hash $h, A had ${HASH[$a]}"; fi
done
equal "the tree hash of every data dir equals A's" "$same" $N
equal "the volume is at B's volumes root" \
	"$(api GET /volumes | jq -r --arg id "$VOL" '.volumes[] | select(.id == $id) | .hostPath')" "$VOLS_B/$VOL"
check "the volume's directory exists" test -d "$VOLS_B/$VOL"
TASKS_B=$(all_tasks | jq -c '[.[] | .id]')
equal "A's task history is on B (every task A finished)" \
	"$(jq -n --argjson a "$TASKS_A" --argjson b "$TASKS_B" '$a - $b | length')" 0
equal "A's full backup task is listed as succeeded" "$(task "$FB_TASK" .state)" succeeded
sftp_wait_converged
check "sftp on B lists app 1's data" sftp_lists "/appsdata/${APPS[0]}/sub" hello.txt
check "sftp on B lists the custom data dir's data" sftp_lists "/custom/apps/${APPS[4]}/sub" hello.txt
check "sftp on B serves a restored file's content" \
	eval '[ "$(sftp_get "/appsdata/${APPS[1]}/sub/hello.txt")" = "$(cat "$ROOT_B/${APPS[1]}/sub/hello.txt")" ]'
equal "every app lives on B" "$(api GET /apps | jq --arg p "$APP_PREFIX-" '[.apps[] | select((.id | startswith($p)) and .host == "box-b")] | length')" $N
check "an app on B works after the restore (restart succeeds)" eval 'wait_task "$(app_task "${APPS[2]}" restart)" 120'

done_testing
