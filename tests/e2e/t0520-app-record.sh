#!/usr/bin/env bash
# t0520-app-record.sh — an app archive carries the app's record, an
# uninstall keeps a final backup, and `app restore` brings an uninstalled
# app back from it (issue 15, issue 13); progress by bytes (issue 15).
#
# One daemon on the test env's engine, gzip archives (so that tar(1) can
# read them here). Then:
#   - an app backup of an app with T0520_DATA_MB (default 48) MiB of data
#     shows "Backing up <id>: N of M MB, R MB/s" while it runs and its
#     result has throughputMBps; its archive's first entry is
#     boxd-app.json with the app's image, env and data dir;
#   - boxctl app uninstall on a terminal (script(1)) asks, and "n" keeps
#     the app; without a terminal it goes ahead: the app, its container
#     and its data dir are gone, and the task result names the final
#     backup, which is an ok app backup of the app;
#   - boxctl app restore ID BACKUP on the uninstalled app installs it
#     again: installed, container running, same image, env and published
#     port, and the
#     data dir back byte for byte (tree hash);
#   - uninstall --no-backup makes no backup; a final backup that cannot
#     be written fails the uninstall and removes nothing;
#   - restore of an unknown app with another app's backup is 422, with an
#     unknown backup 404.
#
# TAP. Needs the test env (BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_APP_IMAGE).
# The trap (lib.sh) kills the daemon and its workers and removes our app-*
# containers and the temp dir, also on failure.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"

IMG=$BOXD_TEST_APP_IMAGE
DATA_MB=${T0520_DATA_MB:-48}
T=60

plan 27
apps_setup "$(printf '[backups]\nformat = gzip\n')"
daemon_start --config "$APPS_CONF" --app-concurrency 5
export BOXD_SOCKET=$SOCK
ROOT=$STATE/appsdata
A=$APP_PREFIX-wiki
B=$APP_PREFIX-blog

# poll_message TASK REGEX SECONDS: the task's message matches REGEX at
# some point (it changes twice a second).
poll_message() {
	local until=$(($(now_ms) + $3 * 1000))
	while [ "$(now_ms)" -lt "$until" ]; do
		curl -s --max-time 5 --unix-socket "$SOCK" "http://boxd/api/v1/tasks/$1" | jq -r .message | grep -qE -- "$2" && return 0
		is_final "$1" && return 1
		sleep 0.02
	done
	return 1
}

PORT=$(free_port) || bail "no free port"
req POST /apps "$(jq -nc --arg id "$A" --arg img "$IMG" --argjson p "$PORT" \
	'{id: $id, image: $img, env: {GREETING: "hello", SECRET: "s3cr3t"}, ports: [{container: 8080, host: $p}]}')"
t1=$(jq -r .taskId <<<"$BODY")
t2=$(install_app "$B" "$IMG") || t2=
both() { wait_task "$t1" $T && wait_task "$t2" $T; }
check "two apps installed" both
head -c $((DATA_MB * 1024 * 1024)) /dev/urandom >"$ROOT/$A/blob.bin"
mkdir -p "$ROOT/$A/sub"
echo "page" >"$ROOT/$A/sub/page.txt"
ln -s sub/page.txt "$ROOT/$A/link"
h_before=$(tree_hash "$ROOT/$A")

# ---- an app backup: progress by bytes, throughput, the record -------------------

tb=$(app_task "$A" backup) || tb=
check "the backup's message shows bytes and a rate" poll_message "$tb" "^Backing up $A: [0-9.]+ of [0-9.]+ MB, [0-9]+ MB/s$" 30
check "the backup succeeds" wait_task "$tb" $T
res=$(task "$tb" .result)
rate_ok() { jq -e '.throughputMBps > 0 and .dataBytes >= '$((DATA_MB * 1024 * 1024)) <<<"$res" >/dev/null; }
check "its result has throughputMBps > 0 ($(jq -r .throughputMBps <<<"$res") MB/s)" rate_ok
arc=$(jq -r .path <<<"$res")
equal "the archive's first entry is the record" "$(tar -tzf "$arc" | head -n 1)" boxd-app.json
rec=$(tar -xzOf "$arc" boxd-app.json)
equal "the record: id, image, env, data dir, ports" \
	"$(jq -c '[.boxdAppRecord, .id, .image, .env, .dataDir, .customDataDir, [.ports[].host]]' <<<"$rec")" \
	"$(jq -nc --arg id "$A" --arg img "$IMG" --arg d "$ROOT/$A" --argjson p "$PORT" \
		'[1, $id, $img, {GREETING:"hello",SECRET:"s3cr3t"}, $d, false, [$p]]')"
check "the task log has the end of the archive's progress" \
	grep -qE "^backed up $A: [0-9.]+ of [0-9.]+ MB" "$STATE/logs/tasks/$tb.log"

# ---- uninstall: asks on a terminal, keeps a final backup ---------------------------

out=$(printf 'n\n' | script -qec "$BOXCTL --socket $SOCK app uninstall $A" /dev/null 2>&1)
check "on a terminal, boxctl app uninstall asks" grep -q "Uninstall app $A?.*final backup.*\[y/N\]" <<<"$out"
equal "answering n keeps the app" "$(app_state "$A")" installed

"$BOXCTL" app uninstall "$A" --wait >"$E2E_TMP/out" 2>&1
check "without a terminal it does not ask: exit 0" test $? = 0
equal "the app is gone" "$(app_state "$A")" absent
equal "its container is gone" "$(container_state "app-$A")" absent
check "its data dir is gone" test ! -e "$ROOT/$A"
tu=$(api GET "/tasks?type=uninstall" | jq -r --arg a "$A" '[.tasks[] | select(.appId == $a)][0].id')
FINAL=$(task "$tu" .result.finalBackupId)
row=$(api GET "/backups?appId=$A" | jq -c --argjson id "${FINAL:-0}" '.backups[] | select(.id == $id)')
equal "the uninstall's result names its final backup, an ok app backup of the app" \
	"$(jq -r '"\(.kind) \(.state) \(.appId)"' <<<"$row")" "app ok $A"

# ---- restore of the uninstalled app ----------------------------------------------------

"$BOXCTL" app restore "$A" "$FINAL" --wait >"$E2E_TMP/out" 2>&1
check "boxctl app restore on the uninstalled app: exit 0" test $? = 0
equal "the app is installed again" "$(app_state "$A")" installed
equal "its container runs" "$(container_state "app-$A")" running
equal "same image, env and published port" "$(api GET "/apps/$A" | jq -c '[.image, .env, [.ports[].host]]')" \
	"$(jq -nc --arg img "$IMG" --argjson p "$PORT" '[$img, {GREETING:"hello",SECRET:"s3cr3t"}, [$p]]')"
equal "the data dir is back byte for byte (tree hash)" "$(tree_hash "$ROOT/$A")" "$h_before"
tr=$(api GET "/tasks?type=restore" | jq -r --arg a "$A" '[.tasks[] | select(.appId == $a)][0].id')
equal "the restore says it reinstalled" "$(task "$tr" .result.reinstalled)" true

# ---- --no-backup, a final backup that fails, bad restores -------------------------------

n_before=$(api GET "/backups?appId=$B" | jq '.backups | length')
# The backup dir replaced by a file: the final backup cannot be written.
mv "$STATE/backups" "$STATE/backups.away"
touch "$STATE/backups"
tf=$(app_task "$B" uninstall) || tf=
wait_for $T is_final "$tf"
equal "a final backup that fails fails the uninstall" "$(task_state "$tf")" failed
check "the error says nothing was removed" grep -q "nothing was removed" <<<"$(task "$tf" .error.message)"
equal "and the app is still installed and running" "$(app_state "$B") $(container_state "app-$B")" "installed running"
rm "$STATE/backups"
mv "$STATE/backups.away" "$STATE/backups"
"$BOXCTL" app uninstall "$B" --no-backup --yes --wait >"$E2E_TMP/out" 2>&1
check "uninstall --no-backup: exit 0" test $? = 0
equal "it made no backup" "$(api GET "/backups?appId=$B" | jq '.backups | length')" "$n_before"

req POST "/apps/$APP_PREFIX-nope/restore" "{\"backupId\": $FINAL}"
equal "restore of an unknown app with another app's backup: 422" "$STATUS" 422
req POST "/apps/$APP_PREFIX-nope/restore" '{"backupId": 999999}'
equal "restore of an unknown app with an unknown backup: 404" "$STATUS" 404

done_testing
