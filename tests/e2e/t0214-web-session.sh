#!/usr/bin/env bash
# t0214-web-session — the dashboard's page and logins, over plain HTTP with
# curl (tests/browser/ drives the page in a real browser):
#   - the page is served at / on both listeners without a token, from the
#     binary, with an ETag (304 on a match), Cache-Control, a gzip variant
#     chosen by Accept-Encoding, and its first load stays under 150 KB;
#   - every answer carries the CSP (no inline script, no eval),
#     X-Frame-Options DENY and Referrer-Policy no-referrer; API answers are
#     not cached;
#   - POST /api/v1/session exchanges a token for a cookie (HttpOnly,
#     SameSite=Strict, Path=/, Max-Age; Secure with TLS) that is not the
#     token; a wrong token is refused; changes need the CSRF header and the
#     page's own Origin (also on the unix socket); DELETE logs out; a
#     revoked token ends its sessions; sessions expire.
set -u
. "$(dirname "$0")/lib.sh"
: "${SOURCE_DIR:?SOURCE_DIR must point at the source tree}"
command -v openssl >/dev/null || bail "openssl is needed (Debian package openssl)"

plan 39

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
mkdir -p "$STATE"
token=$("$BOXD" --state-dir "$STATE" token create web 2>/dev/null)
other=$("$BOXD" --state-dir "$STATE" token create other 2>/dev/null)
conf() { printf '[api]\nlisten = 127.0.0.1:%s\n%s\n' "$port" "${1:-}" >"$E2E_TMP/boxd.conf"; }
conf
daemon_start --config "$E2E_TMP/boxd.conf"

H="$E2E_TMP/headers"
# get URL [CURL_ARGS...]: body to $E2E_TMP/out, headers to $H, prints the code.
get() {
	local url=$1
	rm -f "$E2E_TMP/out"
	shift
	curl -s -o "$E2E_TMP/out" -D "$H" -w '%{http_code}' --max-time 10 "$@" "$url"
}
header() { grep -i "^$1:" "$H" | head -1 | cut -d: -f2- | sed 's/^ //; s/\r$//'; }

# ---- the page ------------------------------------------------------------
code=$(curl -s -o "$E2E_TMP/out" -D "$H" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" http://boxd/)
equal "GET / on the unix socket: 200" "$code" 200
check "it is the dashboard's HTML, loading its module" grep -q '<script type="module" src="/js/main.js">' "$E2E_TMP/out"
equal "as text/html" "$(header Content-Type)" "text/html; charset=utf-8"
equal "GET / on TCP needs no token: 200" "$(get "$base/")" 200
etag=$(header ETag)
check "with an ETag" test -n "$etag"
equal "revalidated at each load" "$(header Cache-Control)" no-cache
equal "a matching If-None-Match: 304" "$(get "$base/" -H "If-None-Match: $etag")" 304
check "the 304 has no body" test ! -s "$E2E_TMP/out"
get "$base/js/main.js" >/dev/null
cp "$E2E_TMP/out" "$E2E_TMP/main.js"
get "$base/js/main.js" -H 'Accept-Encoding: gzip' >/dev/null
equal "Accept-Encoding: gzip gets the gzip variant" "$(header Content-Encoding)" gzip
check "which unpacks to the same bytes" bash -c "gzip -dc '$E2E_TMP/out' | cmp -s - '$E2E_TMP/main.js'"
check "and has its own ETag" test "$(header ETag)" != "$(get "$base/js/main.js" >/dev/null; header ETag)"
get "$base/js/main.js" -H 'Accept-Encoding: gzip;q=0' >/dev/null
equal "gzip;q=0 gets the plain file" "$(header Content-Encoding)" ""
check "the files are the ones in web/ (compiled in)" cmp -s "$E2E_TMP/main.js" "$SOURCE_DIR/web/js/main.js"

# The first load fetches every file of web/ (the modules import each
# other): what it transfers, compressed as a browser asks.
total=0
for f in $(cd "$SOURCE_DIR/web" && find . -type f ! -name meson.build | sed 's|^\./||'); do
	n=$(curl -s -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip, deflate, br' "$base/$f")
	total=$((total + n))
done
diag "first load: $total bytes of files (gzip), $(cd "$SOURCE_DIR/web" && find . -type f ! -name meson.build | wc -l) files"
check "the first load is at most 150 KB" test "$total" -le 153600

# ---- headers for browsers --------------------------------------------------
get "$base/" >/dev/null
csp=$(header Content-Security-Policy)
check "the page has a CSP with script-src 'self'" grep -q "script-src 'self'" <<<"$csp"
check "without unsafe-inline or unsafe-eval" bash -c "! grep -q 'unsafe' <<<\"\$1\"" _ "$csp"
equal "X-Frame-Options DENY" "$(header X-Frame-Options)" DENY
equal "Referrer-Policy no-referrer" "$(header Referrer-Policy)" no-referrer
get "$base/api/v1/status" >/dev/null
check "API answers carry them too, and are not cached" \
	test "$(header X-Frame-Options)/$(header Cache-Control)" = "DENY/no-store"
check "no inline script or event handler in index.html, no innerHTML/eval in the scripts" bash -c "
	! grep -Eq '<script>|<script [^>]*>[^<]|\son[a-z]+=' '$SOURCE_DIR/web/index.html' &&
	! grep -REn 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function' '$SOURCE_DIR/web/js'"

# ---- logins -------------------------------------------------------------------
equal "the API on TCP without a token or login: 401" "$(get "$base/api/v1/status")" 401
get "$base/api/v1/session" >/dev/null
equal "GET /session says: not logged in" "$(jq -r .auth "$E2E_TMP/out")" none
equal "a wrong token is refused: 401" \
	"$(get "$base/api/v1/session" -H 'Content-Type: application/json' -d '{"token":"boxd_000000000000000000000000000000000000000000000000"}')" 401
check "and sets no cookie" bash -c "! grep -qi '^set-cookie' '$H'"
equal "the right token: 201" "$(get "$base/api/v1/session" -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}")" 201
cookie=$(header Set-Cookie)
csrf=$(jq -r .csrfToken "$E2E_TMP/out")
sid=$(sed 's/^boxd_session=\([^;]*\);.*/\1/' <<<"$cookie")
check "the cookie is HttpOnly, SameSite=Strict, Path=/, expiring, not Secure on plain HTTP" bash -c "
	grep -q '; HttpOnly' <<<\"\$1\" && grep -q '; SameSite=Strict' <<<\"\$1\" && grep -q 'Path=/;' <<<\"\$1\" &&
	grep -q 'Max-Age=43200;' <<<\"\$1\" && ! grep -q Secure <<<\"\$1\"" _ "$cookie"
check "it is not the token, and there is a CSRF token" test "${#sid}" = 64 -a "$sid" != "$token" -a "${#csrf}" = 64
C=(-H "Cookie: boxd_session=$sid")
equal "the cookie lets GET /status in" "$(get "$base/api/v1/status" "${C[@]}")" 200
hold='{"type":"hold","args":{"locks":[{"name":"web:x","mode":"exclusive"}],"seconds":0}}'
before=$(db_sql "SELECT COUNT(*) FROM tasks")
code=$(get "$base/api/v1/tasks" "${C[@]}" -H 'Content-Type: application/json' -d "$hold")
check "a POST with the cookie but without X-CSRF-Token: 403 csrf_required, nothing created" \
	test "$code/$(jq -r .error.code "$E2E_TMP/out")/$(db_sql "SELECT COUNT(*) FROM tasks")" = "403/csrf_required/$before"
equal "with X-CSRF-Token: 202" \
	"$(get "$base/api/v1/tasks" "${C[@]}" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' -d "$hold")" 202
code=$(get "$base/api/v1/tasks" "${C[@]}" -H "X-CSRF-Token: $csrf" -H 'Origin: http://evil.example' \
	-H 'Content-Type: application/json' -d "$hold")
equal "from another site's page (Origin): 403 bad_origin" "$code/$(jq -r .error.code "$E2E_TMP/out")" 403/bad_origin
equal "from the page's own origin: 202" "$(get "$base/api/v1/tasks" "${C[@]}" -H "X-CSRF-Token: $csrf" \
	-H "Origin: $base" -H 'Content-Type: application/json' -d "$hold")" 202
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H 'Origin: http://evil.example' \
	-H 'Content-Type: application/json' -d "$hold" http://boxd/api/v1/tasks)
equal "the unix socket (an ssh tunnel to it) refuses another site's page too" "$code" 403
equal "logout: 204" "$(get "$base/api/v1/session" -X DELETE "${C[@]}" -H "X-CSRF-Token: $csrf")" 204
check "which clears the cookie" grep -qi '^set-cookie: boxd_session=; .*Max-Age=0' "$H"
equal "the old cookie is refused: 401" "$(get "$base/api/v1/status" "${C[@]}")" 401

# A revoked token ends its sessions.
get "$base/api/v1/session" -H 'Content-Type: application/json' -d "{\"token\":\"$other\"}" >/dev/null
sid2=$(header Set-Cookie | sed 's/^boxd_session=\([^;]*\);.*/\1/')
"$BOXD" --state-dir "$STATE" token revoke other >/dev/null 2>&1
equal "a session of a revoked token: 401" "$(get "$base/api/v1/status" -H "Cookie: boxd_session=$sid2")" 401

# Sessions expire ([api] session_lifetime).
daemon_kill9
conf 'session_lifetime = 2s'
daemon_start --config "$E2E_TMP/boxd.conf"
get "$base/api/v1/session" -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}" >/dev/null
sid3=$(header Set-Cookie | sed 's/^boxd_session=\([^;]*\);.*/\1/')
expired() { [ "$(get "$base/api/v1/status" -H "Cookie: boxd_session=$sid3")" = 401 ]; }
check "a session of 2 s is refused within 10 s" wait_for 10 expired

# Behind TLS the cookie is Secure.
tls="$E2E_TMP/tls"
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
chmod 600 "$tls/key.pem"
daemon_kill9
conf "tls_cert = $tls/cert.pem
tls_key = $tls/key.pem"
daemon_start --config "$E2E_TMP/boxd.conf"
get "https://127.0.0.1:$port/api/v1/session" --cacert "$tls/cert.pem" -H 'Content-Type: application/json' \
	-d "{\"token\":\"$token\"}" >/dev/null
check "over TLS the cookie is Secure" grep -qi '^set-cookie: boxd_session=.*; Secure' "$H"

done_testing
