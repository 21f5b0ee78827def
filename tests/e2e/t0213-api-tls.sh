#!/usr/bin/env bash
# t0213-api-tls — optional TLS on the TCP listener ([api] tls_cert and
# tls_key, through libmicrohttpd's GnuTLS): a client that trusts the
# certificate gets answers, tokens still apply, plain HTTP and clients that
# do not trust it get nothing; a key readable by everyone or a key that
# does not match the certificate stops the daemon with a message. The
# certificate is self-signed, made here with openssl.
set -u
. "$(dirname "$0")/lib.sh"
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"
command -v openssl >/dev/null || bail "openssl is needed (Debian package openssl)"

plan 11

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tls="$E2E_TMP/tls"
mkdir -p "$tls" "$STATE"
selfsigned() { # DIR: cert.pem and key.pem for 127.0.0.1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
	chmod 600 "$1/key.pem"
}
selfsigned "$tls" || bail "openssl cannot make a certificate"
conf() { printf '[api]\nlisten = 127.0.0.1:%s\ntls_cert = %s\ntls_key = %s\n' "$port" "$1" "$2" >"$E2E_TMP/boxd.conf"; }
conf "$tls/cert.pem" "$tls/key.pem"
token=$("$BOXD" --state-dir "$STATE" token create tls 2>/dev/null)
daemon_start --config "$E2E_TMP/boxd.conf"
url="https://127.0.0.1:$port/api/v1/status"

code=$(curl -s -o "$E2E_TMP/out" -w '%{http_code}' --max-time 10 --cacert "$tls/cert.pem" -H "Authorization: Bearer $token" "$url")
equal "https with the token and the certificate trusted: 200" "$code" 200
check "the answer is the status" test "$(jq -r .store.backend "$E2E_TMP/out")" = sqlite
code=$(curl -s -o "$E2E_TMP/out" -w '%{http_code}' --max-time 10 --cacert "$tls/cert.pem" "$url")
equal "https without a token: 401" "$code" 401
equal "as JSON" "$(jq -r .error.code "$E2E_TMP/out")" unauthorized
curl -s -o /dev/null --max-time 10 -H "Authorization: Bearer $token" "$url"
equal "a client that does not trust the certificate fails its check (curl exit 60)" "$?" 60
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/status")
check "plain HTTP on the TLS port gets no answer" test "$code" != 200
out=$("$BOXCTL" --url "https://127.0.0.1:$port" --token "$token" --cacert "$tls/cert.pem" --json status 2>&1)
equal "boxctl --url https://... --cacert reaches the daemon" "$(jq -r .store.backend <<<"$out" 2>/dev/null)" sqlite
req GET /status
equal "the unix socket is plain HTTP as ever" "$STATUS" 200

# Refusals at start.
start_fails() { # EXPECTED_TEXT: boxd serve exits non-zero saying so
	local log="$E2E_TMP/refused.log" pid rc
	"$BOXD" serve --state-dir "$STATE.2" --config "$E2E_TMP/boxd.conf" >"$log" 2>&1 &
	pid=$!
	if ! wait_for 15 gone "$pid"; then
		kill "$pid"
		wait "$pid"
		return 1
	fi
	wait "$pid"
	rc=$?
	[ "$rc" != 0 ] && grep -q "$1" "$log" || { diag <"$log"; return 1; }
}
daemon_kill9
chmod 644 "$tls/key.pem"
check "a key readable by everyone: boxd refuses to start" start_fails "readable by every user"
chmod 600 "$tls/key.pem"
other="$E2E_TMP/other"
mkdir -p "$other"
selfsigned "$other"
conf "$tls/cert.pem" "$other/key.pem"
check "a key that does not match the certificate: boxd refuses to start" start_fails "tls_cert and tls_key"
printf '[api]\nlisten = 127.0.0.1:%s\ntls_cert = %s\n' "$port" "$tls/cert.pem" >"$E2E_TMP/boxd.conf"
check "a certificate without a key: boxd refuses to start" start_fails "go together"

done_testing
