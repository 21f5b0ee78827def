#!/usr/bin/env bash
# t0215-events — GET /api/v1/events, the live feed the dashboard runs on:
#   - a hello, then task events as a worker (not the API) moves its task:
#     running, its progress, succeeded; lock events as it takes and frees
#     its lock;
#   - a row changed by another process writing the store directly shows up;
#   - heartbeats; Last-Event-ID resumes without a gap (events published
#     while the client was away arrive), an unknown id gets `resync`;
#   - `boxctl events` prints the feed (KIND JSON lines, --kind, --json) and
#     exits 3 when the stream ends;
#   - a daemon with an open stream stops at once.
# Prints how long a task's end took to reach the stream (TAP comment).
set -u
. "$(dirname "$0")/lib.sh"

plan 22

daemon_start --stop-grace 2s
EV="$E2E_TMP/events"
# stream FILE [CURL_ARGS...]: follow the feed into FILE, each line prefixed
# with the wall-clock ms it arrived at; sets STREAM_PID.
STREAM_PID=
stream() {
	local out=$1
	shift
	(
		curl -sN --max-time 120 --unix-socket "$SOCK" "$@" | while IFS= read -r line; do
			printf '%s %s\n' "$(now_ms)" "$line"
		done >"$out"
	) &
	STREAM_PID=$!
}
stop_stream() { pkill -P "$STREAM_PID" curl 2>/dev/null; wait "$STREAM_PID" 2>/dev/null; }
# events FILE KIND: the data of every KIND event, one JSON per line.
events() { awk -v k="event: $2" '$2 == "event:" { cur = $2 " " $3 } $2 == "data:" && cur == k { $1 = ""; $2 = ""; sub(/^  /, ""); print }' "$1"; }
has() { grep -q -- "$2" "$1"; }

stream "$EV" 'http://boxd/api/v1/events?heartbeat=1'
check "the stream starts with hello" wait_for 10 has "$EV" 'event: hello'

id=$(hold_task 3 ev:a)
task_ev() { events "$EV" task | jq -c --argjson id "$1" "select(.id == \$id) | $2" 2>/dev/null; }
ran() { task_ev "$id" 'select(.state == "running")' | grep -q .; }
check "task $id: an event when its worker runs it" wait_for 10 ran
done_ev() { task_ev "$id" 'select(.state == "succeeded")' | grep -q .; }
check "and when it succeeded" wait_for 15 done_ev
pcts=$(task_ev "$id" .percent | sort -un | wc -l)
check "its progress moved in between (percents seen: $pcts)" test "$pcts" -ge 3
held() { events "$EV" lock | jq -se --argjson id "$id" 'any(.[]; .holders | any(.task == $id))' >/dev/null; }
check "a lock event shows it holding ev:a" held
check "and the last lock event shows nobody" test "$(events "$EV" lock | tail -1 | jq '.holders | length')" = 0

# The feed's delay: the task's end as the worker recorded it, to the
# moment the event arrived here.
fin=$(ms_of "$(task "$id" .finishedAt)")
got=$(awk -v id="$id" '$2 == "data:" && index($0, "\"id\":" id ",") && index($0, "\"succeeded\"") { print $1; exit }' "$EV")
diag "task end to event: $((got - fin)) ms"

# Another process writes a row: the feed sees it.
db_sql "INSERT INTO apps (id, image, env, install_state, run_state, health, created_at, updated_at)
	VALUES ('by-hand', 'localhost/x:1', '{}', 'installed', 'running', 'unknown', 0, 0)"
by_hand() { events "$EV" app | jq -se 'any(.[]; .id == "by-hand" and .image == "localhost/x:1")' >/dev/null; }
check "a row written straight into the store reaches the stream" wait_for 10 by_hand
db_sql "DELETE FROM apps WHERE id = 'by-hand'"
gone_app() { events "$EV" app | jq -se 'any(.[]; .id == "by-hand" and .deleted)' >/dev/null; }
check "and its removal" wait_for 10 gone_app
check "heartbeats come" wait_for 5 has "$EV" 'event: heartbeat'

# Resume: the client goes away, things happen, it comes back.
last=$(awk '$2 == "id:" { id = $3 } END { print id }' "$EV")
stop_stream
# With no subscriber the watchers wait a while (30 s) before they sleep,
# so the events of this task are published and kept for the resume.
away=$(hold_task 0 ev:b)
wait_for 10 is_final "$away"
EV2="$E2E_TMP/events2"
stream "$EV2" -H "Last-Event-ID: $last" 'http://boxd/api/v1/events'
check "a resumed stream says so" wait_for 10 has "$EV2" '"resumed":true'
missed() { events "$EV2" task | jq -e --argjson id "$away" 'select(.id == $id and .state == "succeeded")' >/dev/null; }
check "and brings the events it missed (task $away)" wait_for 10 missed
check "without a resync" bash -c "! grep -q 'event: resync' '$EV2'"
stop_stream

EV3="$E2E_TMP/events3"
stream "$EV3" -H 'Last-Event-ID: 00000000-5' 'http://boxd/api/v1/events'
check "an id from another start of boxd gets resync" wait_for 10 has "$EV3" 'event: resync'
check "and hello says: not resumed" has "$EV3" '"resumed":false'
req GET '/events?heartbeat=0'
equal "heartbeat out of range: 400" "$STATUS" 400

# boxctl events: the same feed, one line per change (KIND JSON), or JSON
# lines with --json; only the kinds asked for.
BE="$E2E_TMP/boxctl-events"
BJ="$E2E_TMP/boxctl-events.json"
"$BOXCTL" --socket "$SOCK" events --kind task >"$BE" 2>"$BE.err" &
BE_PID=$!
"$BOXCTL" --socket "$SOCK" --json events >"$BJ" 2>/dev/null &
BJ_PID=$!
# A hold long enough that both are connected before it ends.
cli=$(hold_task 2 ev:cli)
cli_end() { sed -n 's/^task //p' "$BE" | jq -e --argjson id "$cli" 'select(.id == $id and .state == "succeeded")' >/dev/null 2>&1; }
check "boxctl events prints task $cli's end as \`task {json}\`" wait_for 15 cli_end
check "and, with --kind task, nothing but task lines" bash -c "! grep -qv '^task {' '$BE'"
cli_json() { jq -se --argjson id "$cli" 'any(.[]; .event == "task" and .data.id == $id and .data.state == "succeeded")' "$BJ" >/dev/null 2>&1; }
check "boxctl --json events: JSON lines {event, data}, task $cli's end among them" wait_for 15 cli_json
cli_kinds() { jq -se 'any(.[]; .event == "lock") and all(.[]; .event != "hello" and .event != "heartbeat")' "$BJ" >/dev/null; }
check "with lock events, and no hello or heartbeat" cli_kinds

# Stopping the daemon ends open streams at once.
kill -TERM "$DAEMON_PID"
check "the daemon stops within 5 s with a stream open" wait_for 5 gone "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
stop_stream
wait "$BE_PID"
equal "boxctl events exits 3 when boxd ends the stream" "$?" 3
check "and says so" grep -q "the event stream ended" "$BE.err"
wait "$BJ_PID" 2>/dev/null

done_testing
