#!/usr/bin/env bash
# t0840-disk-full.sh — the SQLite state dir on a small tmpfs fills up while
# hold tasks contend for locks and a burst of POSTs comes in:
#  - no phantom 202: every task id the API answered 202 with exists
#    afterwards, with the request's own arguments, and no id is given
#    twice; a POST the store could not take is 503 disk_full;
#  - the daemon stays up, logs the episode once (and its end once);
#  - once space returns, every task resolves within seconds: 0 stuck,
#    0 failed, no lock left behind;
#  - task log lines written while the disk was full are not lost
#    silently: they reach the log once there is room.
# Needs root (mount). The disk stays full for DISK_FULL_S seconds: that
# is the fault's length, not a synchronization.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$TEST_STORE" != sqlite ]; then
	skip_all "the state dir's disk matters to SQLite only"
fi
if [ "$(id -u)" != 0 ]; then
	skip_all "needs root to mount a tmpfs"
fi

BUSY=12        # contended hold tasks in flight when the disk fills
BURST=30       # POSTs while it is full
DISK_FULL_S=4

plan 11
mkdir -p "$STATE"
mount -t tmpfs -o size=16m,mode=0750 boxd-e2e-full "$STATE" || bail "cannot mount a tmpfs on $STATE"
daemon_start --stop-grace 2s --log-level info

for i in $(seq 1 $BUSY); do
	req POST /tasks "{\"type\":\"hold\",\"args\":{\"locks\":[{\"name\":\"app:busy$((i % 3))\"}],\"seconds\":3}}"
	[ "$STATUS" = 202 ] || bail "cannot create a hold task: $STATUS $BODY"
done
# Still in flight: running, or waiting for their lock.
in_flight() { [ "$(api GET '/tasks?state=active&type=hold' | jq '.total')" -ge 4 ]; }
wait_for 30 in_flight || bail "the hold tasks are not in flight"

# ---- fill the disk --------------------------------------------------------
dd if=/dev/zero of="$STATE/filler" bs=64k >/dev/null 2>&1
dd if=/dev/zero of="$STATE/filler2" bs=4k >/dev/null 2>&1
diag "state dir: $(df -h --output=used,avail "$STATE" | tail -n 1)"
full_ms=$(now_ms)

declare -A got # burst index -> task id (202 only)
n202=0 n503=0 nother=0 codes=
for i in $(seq 1 $BURST); do
	req POST /tasks "$(jq -nc --arg n "app:burst-$i" '{type: "hold", args: {locks: [{name: $n}], seconds: 0.2}}')"
	case $STATUS in
	202) got[$i]=$(jq -r .taskId <<<"$BODY"); n202=$((n202 + 1)) ;;
	503) n503=$((n503 + 1)); codes+="$(jq -r .error.code <<<"$BODY") " ;;
	*) nother=$((nother + 1)); diag "POST $i: $STATUS $BODY" ;;
	esac
done
diag "while full: $n202 x 202, $n503 x 503, $nother other"
equal "every POST while full is 202 or 503" "$nother" 0
only_disk_full() { [ -z "$(tr ' ' '\n' <<<"$codes" | grep -v '^$' | grep -vx disk_full)" ]; }
check "every 503 says disk_full" only_disk_full
# The fault lasts DISK_FULL_S seconds from when the disk filled.
while [ "$(now_ms)" -lt $((full_ms + DISK_FULL_S * 1000)) ]; do sleep 0.2; done
check "the daemon is up while the disk is full" daemon_answers

# ---- space returns --------------------------------------------------------
rm -f "$STATE/filler" "$STATE/filler2"
free_ms=$(now_ms)
writes() { req POST /tasks "$(jq -nc '{type: "hold", args: {locks: [{name: "app:after"}], seconds: 0}}')"; [ "$STATUS" = 202 ]; }
wait_for 30 writes || diag "POST still fails: $STATUS $BODY"
first_write_ms=$(now_ms)
none_active() { [ "$(api GET '/tasks?state=active' | jq '.total')" = 0 ]; }
check "0 stuck: every task is final within 60 s of space returning" wait_for 60 none_active
done_ms=$(now_ms)
diag "recovery after space returned: first accepted POST after $((first_write_ms - free_ms)) ms, all tasks final after $((done_ms - free_ms)) ms"

all=$(all_tasks)
diag "tasks: $(jq -c 'group_by(.state) | map({(.[0].state): length}) | add' <<<"$all")"
stuck=$(jq '[.[] | select(.state == "queued" or .state == "waiting" or .state == "running")] | length' <<<"$all")
failed=$(jq '[.[] | select(.type == "hold" and .state != "succeeded")] | length' <<<"$all")
equal "0 stuck" "$stuck" 0
equal "0 failed hold tasks (the outage failed nothing)" "$failed" 0
[ "$failed" = 0 ] || jq -c '.[] | select(.type == "hold" and .state != "succeeded") | {id, state, error}' <<<"$all" | diag

phantoms=0
for i in "${!got[@]}"; do
	id=${got[$i]}
	name=$(jq -r --argjson id "$id" '.[] | select(.id == $id) | .args.locks[0].name' <<<"$all")
	[ "$name" = "app:burst-$i" ] || { phantoms=$((phantoms + 1)); diag "202 taskId $id for app:burst-$i: the task is '${name:-missing}'"; }
done
equal "0 phantom 202 (each answered id exists with its request's arguments)" "$phantoms" 0
dups=$(for i in "${!got[@]}"; do echo "${got[$i]}"; done | sort | uniq -d | wc -l)
equal "no task id was answered twice" "$dups" 0
equal "no lock is left behind" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"

episodes=$(grep -c 'the database cannot write (no space left): refusing new work' "$DAEMON_LOG")
if [ "$n503" -gt 0 ]; then
	equal "the daemon logged the episode once" "$episodes" 1
else
	equal "the daemon logged the episode once (no POST was refused)" "$episodes" 0
fi
# Lines workers logged while their log could not be written reach it later.
outage_logs=$(grep -l 'store unavailable since' "$STATE"/logs/tasks/*.log 2>/dev/null | wc -l)
lost=$(grep -l 'could not be written here' "$STATE"/logs/tasks/*.log 2>/dev/null | wc -l)
diag "task logs with an outage logged while the disk was full: $outage_logs; with lines lost and counted: $lost"
check "task log lines written while the disk was full reach the logs" test "$outage_logs" -gt 0

done_testing
