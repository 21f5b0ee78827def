#!/usr/bin/env bash
# t0530-backup-schedule.sh — [backups] schedule (issue 15): the daemon
# queues an ordinary fullbackup task at the calendar's time, and a run
# missed while it was down runs once when it starts.
#
# No test clock: the schedule is "daily HH:MM:SS" a few seconds ahead (UTC),
# and every wait is a wait_for with a deadline.
#   - schedule 4 s ahead with random_delay = 2s: one fullbackup task whose
#     args say scheduledFor = that second, created no earlier than it and
#     within the delay (+2 s for the 1 s tick), and it succeeds (a box with
#     no apps: the box state only);
#   - boxd is killed; the schedule moves to a time 2 s ahead, which passes
#     while boxd is down; at its start it queues one full backup for that
#     slot ("missed while boxd was down") and plans the next for tomorrow;
#   - a config with a bad schedule is refused at start, saying why.
set -u
. "$(dirname "$0")/lib.sh"

plan 9
mkdir -p "$STATE"
CONF=$E2E_TMP/boxd.conf
# at SECONDS: "HH:MM:SS" and the epoch second, SECONDS from now (UTC).
at() { local s=$(($(date +%s) + $1)); echo "$(date -u -d "@$s" +%H:%M:%S) $s"; }
scheduled_for() {
	api GET '/tasks?type=fullbackup' | jq -r --argjson s "$1" '[.tasks[] | select(.args.scheduledFor == $s)] | length'
}
has_task_for() { [ "$(scheduled_for "$1")" -ge 1 ]; }
task_for() {
	api GET '/tasks?type=fullbackup' | jq -r --argjson s "$1" '[.tasks[] | select(.args.scheduledFor == $s)][0].id'
}

read -r HMS1 S1 < <(at 4)
printf '[backups]\nschedule = daily %s\nrandom_delay = 2s\n' "$HMS1" >"$CONF"
daemon_start --config "$CONF"
check "a fullbackup task is queued for $HMS1 UTC" wait_for 20 has_task_for "$S1"
t1=$(task_for "$S1")
c1=$(($(ms_of "$(task "$t1" .createdAt)") / 1000))
check "created at or after its slot and within the random delay (+$((c1 - S1)) s)" \
	test "$c1" -ge "$S1" -a "$c1" -le $((S1 + 4))
check "the scheduled full backup succeeds" wait_task "$t1" 60
equal "one task for the slot" "$(scheduled_for "$S1")" 1

daemon_kill9
read -r HMS2 S2 < <(at 2)
printf '[backups]\nschedule = daily %s\n' "$HMS2" >"$CONF"
past() { [ "$(date +%s)" -gt "$1" ]; }
wait_for 10 past "$S2"
daemon_start --config "$CONF"
check "at start, the slot missed while boxd was down is queued" wait_for 10 has_task_for "$S2"
check "it succeeds" wait_task "$(task_for "$S2")" 60
check "the log says why, and plans the next run for tomorrow" \
	grep -q "missed while boxd was down" "$DAEMON_LOG"
check "next scheduled run: tomorrow at $HMS2" \
	grep -q "next scheduled full backup at $(date -u -d "@$((S2 + 86400))" '+%Y-%m-%d %H:%M:%S') UTC" "$DAEMON_LOG"

printf '[backups]\nschedule = daily 25:00\n' >"$E2E_TMP/bad.conf"
out=$(timeout 10 "$BOXD" serve --state-dir "$STATE-bad" --config "$E2E_TMP/bad.conf" 2>&1)
check "a bad schedule is refused at start, saying why" grep -q "bad value for \[backups\] schedule: a time must be" <<<"$out"

done_testing
