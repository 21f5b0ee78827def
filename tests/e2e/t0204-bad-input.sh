#!/usr/bin/env bash
# t0204-bad-input.sh — malformed requests, table-driven: each one is
# answered with the expected 4xx status and a JSON error
# {"error": {"code", "message"}}, and creates no task row (GET /tasks total
# is the same before and after).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

daemon_start --log-level info

big="$E2E_TMP/big.json"
# 1 MiB + 1 byte: a valid JSON object, one byte over the limit.
prefix='{"type":"hold","args":{"locks":[{"name":"app:x"}],"seconds":1},"pad":"'
{
	printf '%s' "$prefix"
	head -c $((1024 * 1024 + 1 - ${#prefix} - 2)) /dev/zero | tr '\0' a
	printf '"}'
} >"$big"
[ "$(stat -c %s "$big")" = $((1024 * 1024 + 1)) ] || bail "the big body is $(stat -c %s "$big") bytes"

L='"locks":[{"name":"app:x","mode":"exclusive"}]'
H='{"type":"hold","args":'

# A task type that exists but is not generic (created through its own
# route), if this build registers one.
non_generic=
for t in install uninstall configure update backup restore fullbackup platformstart; do
	req POST /tasks "{\"type\":\"$t\"}"
	if [ "$STATUS" = 422 ] && [ "$(jq -r .error.code <<<"$BODY")" = not_generic ]; then
		non_generic=$t
		break
	fi
done

# STATUS  METHOD  PATH  BODY  DESCRIPTION (BODY "-": none)
cases=(
	"400|POST|/tasks|{\"type\":|malformed JSON"
	"400|POST|/tasks|-|no body"
	"400|POST|/tasks|[1,2]|a body that is not an object"
	"400|POST|/tasks|\"hold\"|a body that is a string"
	"400|POST|/tasks|{\"type\":\"hold\",\"type\":\"hold\"}|a duplicate key"
	"400|POST|/tasks|${H}{$L,\"seconds\":1},\"bogus\":1}|an unknown field"
	"400|POST|/tasks|{\"type\":5}|\"type\" not a string"
	"400|POST|/tasks|{\"args\":{}}|no \"type\""
	"422|POST|/tasks|{\"type\":\"nosuch\"}|an unknown task type"
	"NONGENERIC|POST|/tasks|{\"type\":\"$non_generic\"}|a task type that is not generic"
	"400|POST|/tasks|${H}[1]}|args not an object"
	"400|POST|/tasks|${H}\"x\"}|args a string"
	"400|POST|/tasks|{\"type\":\"hold\",\"appId\":5,\"args\":{$L,\"seconds\":1}}|appId not a string"
	"422|POST|/tasks|${H}{\"seconds\":1}}|hold without locks"
	"422|POST|/tasks|${H}{\"locks\":[],\"seconds\":1}}|hold with an empty lock list"
	"422|POST|/tasks|${H}{\"locks\":{\"name\":\"app:x\"},\"seconds\":1}}|hold with locks not an array"
	"422|POST|/tasks|${H}{\"locks\":[\"app:x\"],\"seconds\":1}}|hold with a lock that is not an object"
	"422|POST|/tasks|${H}{\"locks\":[{\"name\":\"app x\"}],\"seconds\":1}}|hold with an invalid lock name (space)"
	"422|POST|/tasks|${H}{\"locks\":[{\"name\":\"\"}],\"seconds\":1}}|hold with an empty lock name"
	"422|POST|/tasks|${H}{\"locks\":[{\"name\":\"$(printf 'a%.0s' {1..200})\"}],\"seconds\":1}}|hold with a 200-character lock name"
	"422|POST|/tasks|${H}{\"locks\":[{\"name\":5}],\"seconds\":1}}|hold with a lock name that is a number"
	"422|POST|/tasks|${H}{\"locks\":[{\"name\":\"app:x\",\"mode\":\"sharedish\"}],\"seconds\":1}}|hold with a bad mode"
	"422|POST|/tasks|${H}{\"locks\":[{\"name\":\"app:x\",\"mode\":1}],\"seconds\":1}}|hold with a mode that is a number"
	"422|POST|/tasks|${H}{$L,\"seconds\":-1}}|hold with negative seconds"
	"422|POST|/tasks|${H}{$L,\"seconds\":604801}}|hold with too many seconds"
	"422|POST|/tasks|${H}{$L,\"seconds\":\"5\"}}|hold with seconds a string"
	"422|POST|/tasks|${H}{$L}}|hold without seconds"
	"422|POST|/tasks|${H}{\"locks\":[{\"name\":\"app:x\"},{\"name\":\"app:x\",\"mode\":\"shared\"}],\"seconds\":1}}|hold with duplicate lock names"
	"422|POST|/tasks|${H}{$L,\"seconds\":1,\"color\":\"red\"}}|hold with an unknown argument"
	"422|POST|/tasks|${H}{$L,\"seconds\":1,\"spawnChild\":\"yes\"}}|hold with spawnChild not a boolean"
	"413|POST|/tasks|@$big|a body over 1 MiB"
	"404|GET|/api/v1/nosuch|-|an unknown route"
	"404|GET|/api/v2/tasks|-|an unknown API version"
	"404|POST|/tasks/1/restart|-|an unknown action"
	"405|DELETE|/tasks|-|a wrong method on /tasks"
	"405|PUT|/tasks/1|-|a wrong method on /tasks/:id"
	"405|GET|/tasks/1/stop|-|GET of the stop action"
	"400|GET|/tasks?state=bogus|-|GET /tasks?state=bogus"
	"400|GET|/tasks?per_page=0|-|GET /tasks?per_page=0"
	"400|GET|/tasks?per_page=1001|-|GET /tasks?per_page=1001"
	"400|GET|/tasks?per_page=x|-|GET /tasks?per_page=x"
	"400|GET|/tasks?page=0|-|GET /tasks?page=0"
	"400|GET|/tasks?page=-1|-|GET /tasks?page=-1"
	"404|GET|/tasks/abc|-|GET /tasks/abc"
	"404|GET|/tasks/0|-|GET /tasks/0"
	"404|GET|/tasks/-3|-|GET /tasks/-3"
	"404|GET|/tasks/99999999999999999999|-|GET /tasks/ with an id out of range"
	"404|GET|/tasks/999999|-|GET /tasks/ of an unknown id"
	"404|POST|/tasks/abc/stop|-|POST /tasks/abc/stop"
	"404|GET|/tasks/999999/logs|-|logs of an unknown task"
)

plan $((${#cases[@]} + 1))

# (No jq here: it is the slow part of each case on a busy machine.)
total() {
	req GET '/tasks?per_page=1'
	[[ $BODY =~ \"total\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

for c in "${cases[@]}"; do
	IFS='|' read -r want method path body desc <<<"$c"
	if [ "$want" = NONGENERIC ]; then
		if [ -z "$non_generic" ]; then
			skip "$desc" "this build registers no task type that is not generic"
			continue
		fi
		want=422
	fi
	before=$(total)
	if [ "$body" = - ]; then req "$method" "$path"; else req "$method" "$path" "$body"; fi
	got_status=$STATUS got_body=$BODY
	after=$(total)
	problems=()
	[ "$got_status" = "$want" ] || problems+=("status $got_status, want $want")
	code=$(jq -er 'if (.error | type == "object") and (.error.code | type == "string" and length > 0)
		and (.error.message | type == "string" and length > 0) then .error.code else false end' \
		<<<"$got_body" 2>/dev/null) || problems+=("not a JSON error: ${got_body:0:200}")
	[ -n "$before" ] && [ "$before" = "$after" ] || problems+=("GET /tasks total went from $before to $after")
	if [ ${#problems[@]} = 0 ]; then
		ok "$desc: $got_status $code"
	else
		not_ok "$desc"
		for p in "${problems[@]}"; do diag "$p"; done
	fi
done

# The control: a well-formed request does create a task.
before=$(total)
req POST /tasks "${H}{$L,\"seconds\":0}}"
equal "a valid request is accepted and creates one task" "$STATUS $(total)" "202 $((before + 1))"

done_testing
