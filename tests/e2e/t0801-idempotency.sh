#!/usr/bin/env bash
# t0801-idempotency.sh — a POST sent again with the same Idempotency-Key
# gets the task the first one created, never a second task:
#  1. the same request twice: 202 with the same taskId, one task;
#  2. also after kill -9 and a restart of the daemon between the two (the
#     key is stored with the task, in the same INSERT);
#  3. five copies at once: one task; each answer names it or is 409;
#  4. POST /backups/create (one full backup at a time): the retry gets the
#     first backup's task, not 409 "already running";
#  5. the same key with another body is 422 idempotency_key_reused; a bad
#     key is 400; without a key every POST creates a task;
#  6. a key is kept 24 h: once its task is older, the key makes a new task.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 14
daemon_start --stop-grace 2s

body() { jq -nc --arg n "$1" '{type: "hold", args: {locks: [{name: $n, mode: "exclusive"}], seconds: 0}}'; }
count_tasks() { api GET "/tasks?type=${2:-hold}&per_page=1000" | jq --arg n "$1" '[.tasks[] | select(.args.locks[0].name == $n)] | length'; }

# ---- 1. twice -------------------------------------------------------------
K1="key-$RANDOM-$RANDOM"
req_h "Idempotency-Key: $K1" POST /tasks "$(body app:idem1)"
s1=$STATUS a=$(jq -r .taskId <<<"$BODY")
req_h "Idempotency-Key: $K1" POST /tasks "$(body app:idem1)"
s2=$STATUS b=$(jq -r .taskId <<<"$BODY")
equal "the same request twice: 202 both times, the same taskId" "$s1 $s2 $b" "202 202 $a"
equal "one task exists" "$(count_tasks app:idem1)" 1

# ---- 2. across kill -9 of the daemon --------------------------------------
K2="key-$RANDOM-$RANDOM"
req_h "Idempotency-Key: $K2" POST /tasks "$(body app:idem2)"
first=$(jq -r .taskId <<<"$BODY")
daemon_kill9
daemon_start --stop-grace 2s
req_h "Idempotency-Key: $K2" POST /tasks "$(body app:idem2)"
equal "after kill -9 and a restart, the retry gets the same task" "$STATUS $(jq -r .taskId <<<"$BODY")" "202 $first"
equal "one task exists" "$(count_tasks app:idem2)" 1

# ---- 3. five at once ------------------------------------------------------
K3="key-$RANDOM-$RANDOM"
cpids=()
for i in 1 2 3 4 5; do
	curl -s -o "$E2E_TMP/c$i" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X POST \
		-H "Idempotency-Key: $K3" -H 'Content-Type: application/json' --data-binary "$(body app:idem3)" \
		http://boxd/api/v1/tasks >"$E2E_TMP/s$i" &
	cpids+=($!)
done
wait "${cpids[@]}"
equal "five concurrent copies: one task" "$(count_tasks app:idem3)" 1
id3=$(api GET '/tasks?type=hold&per_page=1000' | jq -r '[.tasks[] | select(.args.locks[0].name == "app:idem3")][0].id')
answers=$(for i in 1 2 3 4 5; do
	s=$(cat "$E2E_TMP/s$i")
	if [ "$s" = 202 ]; then echo "202:$(jq -r .taskId "$E2E_TMP/c$i")"; else echo "$s"; fi
done | sort | uniq -c | awk '{ printf "%s ", $2 }')
diag "answers: $answers"
all_name_it() {
	local i s
	for i in 1 2 3 4 5; do
		s=$(cat "$E2E_TMP/s$i")
		case $s in
		202) [ "$(jq -r .taskId "$E2E_TMP/c$i")" = "$id3" ] || return 1 ;;
		409) ;;
		*) return 1 ;;
		esac
	done
}
check "each answer is 202 with that task or 409" all_name_it

# ---- 4. a route with its own check ----------------------------------------
K4="key-$RANDOM-$RANDOM"
blocker=$(hold_task 60 "$(here platform)") || bail "cannot create a hold task"
wait_for 15 state_is "$blocker" running || bail "task $blocker does not run"
req_h "Idempotency-Key: $K4" POST /backups/create
fb1=$(jq -r .taskId <<<"$BODY") s1=$STATUS
req_h "Idempotency-Key: $K4" POST /backups/create
equal "POST /backups/create again with its key: the same task, not 409" "$s1 $STATUS $(jq -r .taskId <<<"$BODY")" \
	"202 202 $fb1"
req POST /backups/create
equal "without the key: 409, a full backup is already running" "$STATUS" 409
req POST "/tasks/$blocker/stop"
req POST "/tasks/$fb1/stop"

# ---- 5. misuse ------------------------------------------------------------
req_h "Idempotency-Key: $K1" POST /tasks "$(body app:other)"
equal "the same key with another body: 422 idempotency_key_reused" "$STATUS $(jq -r .error.code <<<"$BODY")" \
	"422 idempotency_key_reused"
equal "and no task was created" "$(count_tasks app:other)" 0
req_h "Idempotency-Key: $(printf 'x%.0s' $(seq 1 300))" POST /tasks "$(body app:other)"
equal "a key of 300 characters: 400 bad_idempotency_key" "$STATUS $(jq -r .error.code <<<"$BODY")" \
	"400 bad_idempotency_key"
req POST /tasks "$(body app:nokey)"
req POST /tasks "$(body app:nokey)"
equal "without a key, two POSTs make two tasks" "$(count_tasks app:nokey)" 2

# ---- 6. 24 hours ----------------------------------------------------------
old=$(($(now_ms) - 25 * 3600 * 1000))
db_sql "UPDATE tasks SET created_at = $old WHERE id = $a" >/dev/null
req_h "Idempotency-Key: $K1" POST /tasks "$(body app:idem1)"
c=$(jq -r .taskId <<<"$BODY")
check "once the key's task is older than 24 h, the key makes a new task ($a, then $c)" \
	test "$STATUS" = 202 -a "$c" != "$a" -a "$c" != null
req_h "Idempotency-Key: $K1" POST /tasks "$(body app:idem1)"
equal "which the next retry gets" "$STATUS $(jq -r .taskId <<<"$BODY")" "202 $c"

done_testing
