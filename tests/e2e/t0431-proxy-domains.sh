#!/usr/bin/env bash
# t0431-proxy-domains.sh — the proxy service serves an app's domains over
# HTTPS with certificates from ACME (issue 13, "Ports and domains").
#
# boxd runs with [proxy] enabled on two free high ports and pebble (the
# test env's ACME CA, PEBBLE_VA_ALWAYS_VALID=1) as its CA; platformstart
# makes the boxd-proxy container (Caddy, built offline from Debian's caddy).
# - A web app installed with domains [A] answers on https://A (curl
#   --resolve A:PORT:127.0.0.1 --cacert <pebble's root>) with the page the
#   test wrote into its data dir: a certificate was issued for it. The time
#   from the install request to the first HTTPS answer is printed.
# - http://A/x redirects (308) to https://A:PORT/x.
# - GET /apps/:id shows the URL.
# - Refused with nothing changed: the same domain for another app (409
#   naming the holder), an invalid or duplicate domain (400).
# - A domain change (configure {domains: [B]}) is a route change: B answers,
#   A does not, and the proxy container's id is the same before and after
#   (printed).
# - An uninstall removes the route: B no longer answers.
#
# TAP. Needs the test env (Podman, pebble, the web and proxy images).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_WEB_IMAGE BOXD_TEST_PROXY_IMAGE BOXD_TEST_PEBBLE_URL \
	BOXD_TEST_PEBBLE_CA BOXD_TEST_PEBBLE_MGMT

W=$APP_PREFIX-wiki
X=$APP_PREFIX-other
DA=wiki-$$.test
DB=docs-$$.test
T=60

plan 21

HP=$(free_port)
SP=$(free_port)
while [ "$SP" = "$HP" ]; do SP=$(free_port); done

# The proxy container is boxd-proxy for every daemon on this engine: ours
# is the one that binds our state dir.
rm_proxy_if_ours() {
	engine GET /containers/boxd-proxy/json
	[ "$ESTATUS" = 200 ] || return 0
	case $(jq -r '.Mounts[]?.Source' <<<"$EBODY") in
	"$E2E_TMP"/*) engine DELETE '/containers/boxd-proxy?force=1&v=1' ;;
	esac
}
on_exit rm_proxy_if_ours
apps_setup "$(printf '[proxy]\nenabled = true\nimage = %s\nhttp_port = %s\nhttps_port = %s\nacme_ca = %s\nacme_ca_root = %s\n' \
	"$BOXD_TEST_PROXY_IMAGE" "$HP" "$SP" "$BOXD_TEST_PEBBLE_URL" "$BOXD_TEST_PEBBLE_CA")"
daemon_start --config "$APPS_CONF"

# The root of what pebble issues (new at each pebble start).
ROOT=$E2E_TMP/pebble-root.pem
curl -sf --cacert "$BOXD_TEST_PEBBLE_CA" "$BOXD_TEST_PEBBLE_MGMT/roots/0" >"$ROOT"
check "pebble's root certificate" grep -q 'BEGIN CERTIFICATE' "$ROOT"

proxy_healthy() { [ "$(api GET /services/proxy | jq -r .health)" = healthy ]; }
check "platformstart runs the proxy service" wait_for $T proxy_healthy
PROXY_ID=$(container_inspect boxd-proxy .Id)

https_page() { curl -s --max-time 5 --resolve "$1:$SP:127.0.0.1" --cacert "$ROOT" "https://$1:$SP/"; }
answers() { [ "$(https_page "$1")" = "$2" ]; }
# Anything over verified HTTPS from the app (httpd's 404 before the page
# exists counts): TLS with a pebble certificate for the name, and a route.
https_up() { curl -s -o /dev/null --max-time 5 --resolve "$1:$SP:127.0.0.1" --cacert "$ROOT" "https://$1:$SP/" \
	-w '%{http_code}' | grep -qE '^(200|404)$'; }
body() {
	jq -nc --arg id "$1" --arg img "$BOXD_TEST_WEB_IMAGE" --argjson d "$2" \
		'{id: $id, image: $img, env: {HTTP_PORT: "8080"}, httpPort: 8080, domains: $d}'
}

# ---- install with a domain: HTTPS answers ------------------------------------------

t0=$(now_ms)
req POST /apps "$(body "$W" "[\"$DA\"]")"
equal "install with a domain: accepted" "$STATUS" 202
tid=$(jq -r .taskId <<<"$BODY")
check "install: the task succeeds" wait_task "$tid" $T
t1=$(now_ms)
check "https://$DA answers through the proxy" wait_for $T https_up "$DA"
t2=$(now_ms)
diag "install request → first HTTPS answer of the app: $((t2 - t0)) ms (install task seen done after $((t1 - t0)) ms; certificate and first answer $((t2 - t1)) ms later)"
TOKEN="page of $W $RANDOM"
printf '%s\n' "$TOKEN" >"$STATE/appsdata/$W/index.html"
check "... with the app's page, over a certificate pebble issued" answers "$DA" "$TOKEN"
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 --resolve "$DA:$HP:127.0.0.1" \
	"http://$DA:$HP/x?y=1")
equal "http:// redirects to https://" "$loc" "308 https://$DA:$SP/x?y=1"
equal "GET /apps/:id shows the URL" "$(app "$W" '.urls | join(",")')" "https://$DA:$SP"

# ---- refused, nothing changed -------------------------------------------------------

req POST /apps "$(body "$X" "[\"$DA\"]")"
equal "the same domain for another app: 409" "$STATUS" 409
check "... naming the app it is routed to" grep -q "routed to app $W" <<<"$BODY"
equal "... and no app $X" "$(app_state "$X")" absent
req POST /apps "$(body "$X" '["*.example.com"]')"
equal "a wildcard: 400" "$STATUS" 400
req POST "/apps/$W/configure" "{\"domains\":[\"$DB\",\"${DB^^}\"]}"
equal "one domain twice: 400" "$STATUS" 400
equal "after the refusals: $W keeps its domain" "$(app "$W" '.domains | join(",")')" "$DA"

# ---- a domain change is a route change ---------------------------------------------

wcid=$(container_inspect "app-$W" .Id)
tid=$(app_task "$W" configure "{\"domains\":[\"$DB\"]}") || tid=
check "configure to $DB: the task succeeds" wait_task "$tid" $T
check "https://$DB answers with the app's page" wait_for $T answers "$DB" "$TOKEN"
check "https://$DA no longer does" eval '! answers "$DA" "$TOKEN"'
AFTER_ID=$(container_inspect boxd-proxy .Id)
diag "proxy container id before the domain change: $PROXY_ID"
diag "proxy container id after the domain change:  $AFTER_ID"
equal "the proxy container is the same (no rebuild)" "$AFTER_ID" "$PROXY_ID"
equal "... and so is the app's (a route change only)" "$(container_inspect "app-$W" .Id)" "$wcid"

# ---- uninstall removes the route -------------------------------------------------------

tid=$(app_task "$W" uninstall) || tid=
check "uninstall: the task succeeds" wait_task "$tid" $T
check "https://$DB no longer answers with the page" eval '! answers "$DB" "$TOKEN"'

done_testing
