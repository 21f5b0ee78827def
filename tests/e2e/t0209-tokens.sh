#!/usr/bin/env bash
# t0209-tokens — `boxd token create|list|revoke`: any name is stored intact
# or refused (a 127-character name overflowed a 160-byte stack buffer and
# wrote stack bytes into api-tokens, issue 10), duplicates and bad names are
# refused without touching the file, and a revoked token stops working at
# once on the TCP listener.
set -u
. "$(dirname "$0")/lib.sh"

plan 18

mkdir -p "$STATE"
TOKENS="$STATE/api-tokens"
boxd_token() { "$BOXD" --state-dir "$STATE" token "$@"; }
# The file is only ever lines of "<64 hex> <name> <created>".
well_formed() { LC_ALL=C grep -qvE '^[0-9a-f]{64} [A-Za-z0-9][A-Za-z0-9._-]* [0-9TZ:.-]+$' "$TOKENS" && return 1; return 0; }

long=$(printf 'a%.0s' $(seq 127))
t_long=$(boxd_token create "$long" 2>"$E2E_TMP/err")
check "a 127-character name is accepted" test -n "$t_long"
equal "the file holds exactly one line" "$(wc -l <"$TOKENS")" 1
equal "that line names the token intact" "$(cut -d' ' -f2 "$TOKENS")" "$long"
check "nothing but hash, name and time is written (no stack bytes)" well_formed
equal "the tokens file is 0600" "$(stat -c %a "$TOKENS")" 600

before=$(sha256sum <"$TOKENS")
refused=0
for bad in "$(printf 'a%.0s' $(seq 129))" "" "a b" "../x" "-x" ".x" "$(printf 'a\nb')" "é"; do
	if boxd_token create "$bad" >/dev/null 2>&1; then
		diag "name '$bad' was accepted"
	else
		refused=$((refused + 1))
	fi
done
equal "too long, empty and odd names are refused" "$refused" 8
boxd_token create "$long" >/dev/null 2>"$E2E_TMP/err"
equal "a duplicate name exits 1" "$?" 1
check "and says so" grep -q "already exists" "$E2E_TMP/err"
equal "refusals leave the file as it was" "$(sha256sum <"$TOKENS")" "$before"

t_ci=$(boxd_token create ci 2>/dev/null)
equal "token list shows every name, oldest first" "$(boxd_token list | awk 'NR > 1 { print $1 }' | tr '\n' ' ')" "$long ci "
listing=$(boxd_token list)
hash_ci=$(printf %s "$t_ci" | sha256sum | cut -d' ' -f1)
check "the file holds the token's SHA-256" grep -q "^$hash_ci ci " "$TOKENS"
check "token list never shows a token or its hash" bash -c '! grep -qF -e "$1" -e "$2" <<<"$3"' _ "$t_ci" "$hash_ci" "$listing"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
daemon_start --listen "127.0.0.1:$port"
code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$port/api/v1/status"; }
equal "the long-named token works" "$(code "$t_long")" 200
boxd_token revoke "$long" >/dev/null 2>&1
equal "token revoke exits 0" "$?" 0
equal "a revoked token is refused at the next request" "$(code "$t_long")" 401
equal "the other token still works" "$(code "$t_ci")" 200
boxd_token revoke nosuch >/dev/null 2>&1
equal "revoking an unknown name exits 1" "$?" 1
check "the file stays well-formed" well_formed

done_testing
