#!/usr/bin/env bash
# t0205-logstream.sh — the task log over HTTP: GET /tasks/N/logstream
# (text/event-stream) sends the worker's log lines as "data: " lines while
# the task runs and ends by itself, shortly after the task ends, with an
# "event: end" carrying the final state; GET /tasks/N/logs is the same text.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 16
daemon_start --stop-grace 2s

# stream_start TASK FILE: follow the task's log stream into FILE in the
# background (curl's own deadline is a safety net); sets CURL_PID.
stream_start() {
	curl -sN --max-time 40 -D "$2.headers" -o "$2" --unix-socket "$SOCK" \
		"http://boxd/api/v1/tasks/$1/logstream" &
	CURL_PID=$!
}
# stream_wait: wait (deadline) for the stream to end by itself; sets
# CURL_RC (124 when it did not end in time) and CURL_END_MS.
stream_wait() {
	if wait_for "$1" gone "$CURL_PID"; then
		CURL_END_MS=$(now_ms)
		wait "$CURL_PID"
		CURL_RC=$?
	else
		kill "$CURL_PID" 2>/dev/null
		wait "$CURL_PID" 2>/dev/null
		CURL_RC=124
	fi
}
# data_lines FILE: the log text the stream carried (without the end event).
data_lines() { awk '/^event: end$/ { exit } /^data: / { print substr($0, 7) }' "$1"; }
# end_event FILE: the last event, on one line ("event: end|data: {...}").
end_event() { grep -v '^$' "$1" | tail -n 2 | paste -sd '|'; }
has_data() { grep -qs '^data: ' "$1"; }

# ---- a hold that runs to its end ------------------------------------------

T=$(hold_task 3 app:l) || bail "cannot create a hold task"
S="$E2E_TMP/stream1"
stream_start "$T" "$S"
check "the stream sends data: lines" wait_for 10 has_data "$S"
check "... while the task still runs" state_is "$T" waiting running
equal "the stream is text/event-stream" \
	"$(tr -d '\r' <"$S.headers" | sed -n 's/^[Cc]ontent-[Tt]ype: //p')" "text/event-stream"
stream_wait 20
equal "curl ends by itself, successfully" "$CURL_RC" 0
equal "the stream ends with an end event carrying the final state" "$(end_event "$S")" \
	'event: end|data: {"state":"succeeded"}'
if [ "$CURL_RC" = 0 ]; then
	fin=$(ms_of "$(task "$T" .finishedAt)")
	diag "the stream ended $((CURL_END_MS - fin)) ms after the task's finishedAt"
	check "the stream ends less than 2 s after the task" test $((CURL_END_MS - fin)) -lt 2000
else
	not_ok "the stream ends less than 2 s after the task"
fi
pid=$(task "$T" .pid)
data_lines "$S" >"$S.text"
check "the stream carried the worker's start line" grep -q "task $T (hold) starting in pid $pid" "$S.text"
check "the stream carried the worker's last line" grep -q "task $T succeeded" "$S.text"

curl -s -D "$E2E_TMP/logs.headers" -o "$E2E_TMP/logs" --unix-socket "$SOCK" "http://boxd/api/v1/tasks/$T/logs"
equal "GET /logs is text/plain" \
	"$(tr -d '\r' <"$E2E_TMP/logs.headers" | sed -n 's/^[Cc]ontent-[Tt]ype: \([^;]*\).*/\1/p')" "text/plain"
check "GET /logs returns the worker's log text" grep -q "task $T (hold) starting in pid $pid" "$E2E_TMP/logs"
check "GET /logs is exactly what the stream carried" cmp -s "$E2E_TMP/logs" "$S.text"

# ---- a stopped task ------------------------------------------------------

U=$(hold_task 60 app:m) || bail "cannot create a hold task"
S="$E2E_TMP/stream2"
stream_start "$U" "$S"
wait_for 15 state_is "$U" running || bail "task $U did not run"
wait_for 10 has_data "$S"
req POST "/tasks/$U/stop"
stream_wait 15
equal "the stream of a stopped task ends by itself" "$CURL_RC" 0
equal "... with the final state cancelled" "$(end_event "$S")" 'event: end|data: {"state":"cancelled"}'

# ---- a task that already ended -------------------------------------------

S="$E2E_TMP/stream3"
stream_start "$T" "$S"
stream_wait 5
equal "the stream of a finished task sends its log and ends at once" \
	"$CURL_RC $(end_event "$S")" '0 event: end|data: {"state":"succeeded"}'
data_lines "$S" >"$S.text"
check "... the whole log" cmp -s "$E2E_TMP/logs" "$S.text"

req GET /tasks/999999/logstream
equal "the stream of an unknown task is 404" "$STATUS" 404

done_testing
