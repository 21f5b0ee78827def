#!/usr/bin/env bash
# t0208-api-errors — every error the API gives is the JSON error format
# {"error":{"code","message"}} with Content-Type application/json (issue
# 10, finding 11): bytes that are not UTF-8 in a URL were a 500 ("cannot
# encode the answer"); oversized URLs, headers and bodies are refused by
# boxd's own limits in JSON, the body before it is read. And a decoded %0a
# in a URL cannot forge a line of the daemon's log (finding 12).
set -u
. "$(dirname "$0")/lib.sh"
RAW="$(dirname "$0")/rawhttp.py"

plan 15

daemon_start --log-level debug

# json_error STATUS CODE: the last answer (STATUS, BODY) is that error.
json_error() {
	[ "$STATUS" = "$1" ] && [ "$(jq -r '.error.code' <<<"$BODY" 2>/dev/null)" = "$2" ] &&
		[ -n "$(jq -r '.error.message // empty' <<<"$BODY" 2>/dev/null)" ]
}
# get PATH: GET on the socket with curl, the path sent as it is.
get() {
	STATUS=$(curl -s -g --path-as-is -o "$E2E_TMP/body" -D "$E2E_TMP/head" -w '%{http_code}' --max-time 10 \
		--unix-socket "$SOCK" "http://boxd$1")
	BODY=$(cat "$E2E_TMP/body")
}
# raw [--timeout S] < REQUEST: send it as it is; sets STATUS and BODY (not in a
# pipeline: the variables would stay in the subshell).
raw() {
	local out
	out=$("$RAW" "$SOCK" "$@")
	STATUS=$(head -n1 <<<"$out")
	BODY=$(tail -n +2 <<<"$out")
}
is_json() { grep -qi '^content-type: application/json' "$E2E_TMP/head"; }

get '/api/v1/tasks/%ff%fe'
check "bytes that are not UTF-8 in a URL: 404 not_found, not 500" json_error 404 not_found
check "the message shows them escaped" grep -qF 'xff' <<<"$BODY"
check "as application/json" is_json
get '/api/v1/apps/%c3%28%1b%5b31m'
check "an app id with a bad sequence and ESC: a JSON 404" json_error 404 not_found
get '/api/v1/services/%ff'
check "a service name that is not UTF-8: a JSON 404" json_error 404 not_found

get "/api/v1/tasks?type=$(head -c 10000 /dev/zero | tr '\0' a)"
check "a 10,000-byte URL: 414 uri_too_long" json_error 414 uri_too_long
check "as application/json" is_json
STATUS=$(curl -s -o "$E2E_TMP/body" -D "$E2E_TMP/head" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" \
	-H "X-Big: $(head -c 20000 /dev/zero | tr '\0' b)" http://boxd/api/v1/status)
BODY=$(cat "$E2E_TMP/body")
check "20,000 bytes of headers: 431 headers_too_large" json_error 431 headers_too_large
check "as application/json" is_json

# A body too large is refused from its Content-Length, before it is read:
# only the head is sent, the answer must come anyway.
raw --timeout 5 < <(printf 'POST /api/v1/tasks HTTP/1.1\r\nHost: boxd\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n')
check "Content-Length 2 MiB: 413 body_too_large before any byte of it" json_error 413 body_too_large
raw --timeout 5 < <(printf 'POST /api/v1/tasks HTTP/1.1\r\nHost: boxd\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
check "a chunked body: 411 length_required" json_error 411 length_required

# The log: one request, one line, whatever its URL holds.
forged='2026-01-01T00:00:00.000Z ERROR [1] forged by a client'
get "/api/v1/x%0a${forged// /%20}"
check "the request with %0a answers a JSON 404" json_error 404 not_found
wait_for 5 grep -qF 'x\n2026-01-01T00:00:00.000Z ERROR [1] forged' "$DAEMON_LOG"
check "the daemon logs the URL with the newline escaped" grep -qF 'x\n2026-01-01T00:00:00.000Z ERROR [1] forged' "$DAEMON_LOG"
check "and no forged line starts in the log" bash -c '! grep -q "^2026-01-01T00:00:00.000Z ERROR \[1\] forged" "$1"' _ "$DAEMON_LOG"
check "and the daemon still answers" daemon_answers

done_testing
