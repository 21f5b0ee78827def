#!/usr/bin/env bash
# t0430-app-ports.sh — an app publishes ports (issue 13, "Ports and
# domains").
#
# A web app (busybox httpd on its HTTP_PORT, serving its data dir) installed
# with ports [{container: 8080, host: P1}] answers on 127.0.0.1:P1 with the
# page the test wrote into its data dir, and the app object lists its
# ports. Then, each refused with nothing changed (no app, no container, the
# ports as they were):
# - another app wanting P1 (409 naming app A), the sftp service's port
#   (409 naming sftp), a port out of range or an unknown protocol (400),
#   the same host port twice in one request (400);
# - a configure of A onto the sftp port (409; A keeps P1 and answers).
# A configure to P2 moves the port: P2 answers, P1 no longer does; boxctl
# app configure --port moves it to P3 and app show lists it.
#
# TAP. Needs the test env (Podman) and its web image.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_WEB_IMAGE

A=$APP_PREFIX-web
B=$APP_PREFIX-other
IMG=$BOXD_TEST_WEB_IMAGE
T=60

plan 25

P1=$(free_port)
P2=$(free_port)
while [ "$P2" = "$P1" ]; do P2=$(free_port); done
P3=$(free_port)
while [ "$P3" = "$P1" ] || [ "$P3" = "$P2" ]; do P3=$(free_port); done
APPS_SFTP_PORT=$(free_port)

apps_setup
daemon_start --config "$APPS_CONF"

page() { curl -s --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null; }
answers() { [ "$(page "$1")" = "$2" ]; }
install_body() {
	jq -nc --arg id "$1" --arg img "$IMG" --argjson ports "$2" \
		'{id: $id, image: $img, env: {HTTP_PORT: "8080"}, ports: $ports}'
}
ports_of() { app "$1" '.ports | map("\(.host)/\(.protocol)->\(.container)") | join(",")'; }

# ---- install with a port: it answers --------------------------------------------

req POST /apps "$(install_body "$A" "[{\"container\":8080,\"host\":$P1}]")"
equal "install with ports: accepted" "$STATUS" 202
tid=$(jq -r .taskId <<<"$BODY")
check "install: the task succeeds" wait_task "$tid" $T
TOKEN="page of $A $RANDOM"
printf '%s\n' "$TOKEN" >"$STATE/appsdata/$A/index.html"
check "the published port answers with the app's page" wait_for 20 answers "$P1" "$TOKEN"
equal "the app object lists its port" "$(ports_of "$A")" "$P1/tcp->8080"
equal "the engine publishes it on every address" \
	"$(container_inspect "app-$A" '.HostConfig.PortBindings["8080/tcp"][0].HostPort')" "$P1"
cid=$(container_inspect "app-$A" .Id)

# ---- conflicts: refused, nothing changed ----------------------------------------

req POST /apps "$(install_body "$B" "[{\"container\":80,\"host\":$P1}]")"
equal "another app wanting P1: 409" "$STATUS" 409
check "... naming the app that holds it" grep -q "taken by app $A" <<<"$BODY"
equal "... and no app $B was made" "$(app_state "$B")" absent
req POST /apps "$(install_body "$B" "[{\"container\":80,\"host\":$APPS_SFTP_PORT}]")"
equal "the sftp service's port: 409" "$STATUS" 409
check "... naming the sftp service" grep -q "sftp service" <<<"$BODY"
req POST /apps "$(install_body "$B" '[{"container":80,"host":70000}]')"
equal "a port out of range: 400" "$STATUS" 400
req POST /apps "$(install_body "$B" '[{"container":80,"host":20001,"protocol":"icmp"}]')"
equal "an unknown protocol: 400" "$STATUS" 400
req POST /apps "$(install_body "$B" '[{"container":80,"host":20001},{"container":81,"host":20001}]')"
equal "one host port twice: 400" "$STATUS" 400
equal "after the refusals: still no app $B" "$(app_state "$B")" absent
equal "... and no container app-$B" "$(container_state "app-$B")" absent

req POST "/apps/$A/configure" "{\"ports\":[{\"container\":8080,\"host\":$APPS_SFTP_PORT}]}"
equal "configure onto the sftp port: 409" "$STATUS" 409
equal "... A keeps its port" "$(ports_of "$A")" "$P1/tcp->8080"
equal "... and its container" "$(container_inspect "app-$A" .Id)" "$cid"
check "... which still answers" answers "$P1" "$TOKEN"

# ---- a configure moves the port ---------------------------------------------------

tid=$(app_task "$A" configure "{\"ports\":[{\"container\":8080,\"host\":$P2}]}") || tid=
check "configure to P2: the task succeeds" wait_task "$tid" $T
check "P2 answers with the app's page" wait_for 20 answers "$P2" "$TOKEN"
check "P1 no longer does" eval '! answers "$P1" "$TOKEN"'

# ---- the same through boxctl --------------------------------------------------------

ctl() { "$BOXCTL" --socket "$SOCK" "$@"; }
check "boxctl app configure --port P3:8080 --wait" ctl app configure "$A" --port "$P3:8080" --wait
check "boxctl app show lists the port" eval 'ctl app show "$A" | grep -q "port: *$P3/tcp -> 8080"'
check "P3 answers with the app's page" wait_for 20 answers "$P3" "$TOKEN"

done_testing
