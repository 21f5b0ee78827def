#!/usr/bin/env bash
# t0206-tcp-auth — the optional TCP listener: every request needs a bearer
# token, tokens are stored only as SHA-256 hashes, the unix socket needs none,
# and boxctl reaches the daemon with --url and --token.
set -u
. "$(dirname "$0")/lib.sh"
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"

plan 9

# A free port on the loopback: ask the kernel, then release it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$STATE"
token=$("$BOXD" --state-dir "$STATE" token create e2e 2>/dev/null)
check "boxd token create prints a token" test -n "$token"
check "the tokens file holds a SHA-256 hash, never the token" \
	bash -c "grep -q '^[0-9a-f]\{64\} e2e [0-9TZ:.-]*\$' '$STATE/api-tokens' && ! grep -q -- '$token' '$STATE/api-tokens'"

daemon_start --listen "127.0.0.1:$port"
url="http://127.0.0.1:$port/api/v1/status"

code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
equal "no token: 401" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer boxd_wrong" "$url")
equal "a wrong token: 401" "$code" 401
body=$(curl -s -H "Authorization: Bearer boxd_wrong" "$url")
equal "the 401 carries a JSON error" "$(jq -r .error.code <<<"$body")" unauthorized
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url")
equal "the right token: 200" "$code" 200

req GET /status
equal "the unix socket needs no token" "$STATUS" 200

out=$("$BOXCTL" --url "http://127.0.0.1:$port" --token "$token" --json status 2>&1)
equal "boxctl --url --token reaches the daemon" "$(jq -r .host <<<"$out" 2>/dev/null)" "$(jq -r .host <<<"$BODY")"
"$BOXCTL" --url "http://127.0.0.1:$port" --token boxd_wrong status >/dev/null 2>&1
equal "boxctl with a wrong token exits 1" "$?" 1

done_testing
