#!/usr/bin/env bash
# t0920-placement.sh — apps placed on hosts (issue 16): two boxd hosts, a and
# b (BOXD_HOST_ID host-a, host-b; own state dirs and sockets), on one fresh
# MariaDB database of the test env.
#
#  1. GET /api/v1/hosts (and boxctl hosts) on either host lists both, alive,
#     each with its owner id (host id + boot) and version; b stopped: a
#     sees b gone once b's heartbeat is HOST_LEASE_MS (10 s) old by the
#     database's clock; b again: alive again.
#  2. A second daemon with a's host id (another machine: BOXD_FAKE_BOOT_ID,
#     the named fake of another boot) refuses to start, naming the id,
#     while a's heartbeat is alive; a's row keeps a's owner id.
#
# Needs BOXD_TEST_MYSQL_DSN (the test env).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
if [ -z "${BOXD_TEST_MYSQL_DSN:-}" ]; then
	echo "1..0 # SKIP BOXD_TEST_MYSQL_DSN is not set (test env not started; run make check)"
	exit 0
fi
export BOXD_TEST_STORE=mysql
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 10

DB=$(store_db_create) || bail "cannot create a MariaDB database"
on_exit store_db_drop "$DB"
DSN=$(store_dsn "$DB")

declare -A HPID # host -> daemon pid

# host_start NAME: start host NAME (host id host-NAME, state dir
# $E2E_TMP/NAME) and wait until its API answers.
host_start() {
	local name=$1 dir=$E2E_TMP/$1
	mkdir -p "$dir"
	cat >"$dir.conf" <<-CONF
		[store]
		backend = mysql
		dsn = $DSN
		lease = 3s
		[host]
		api_url = http://$name.example:8080
	CONF
	echo "=== host $name" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_HOST_ID="host-$name" \
		"$BOXD" --config "$dir.conf" serve --state-dir "$dir" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	HPID[$name]=$!
	on "$name"
	wait_for 15 daemon_answers || bail "host $name does not answer"
}

# host_stop NAME: SIGTERM to NAME's daemon; wait until it is gone.
host_stop() {
	kill -TERM "${HPID[$1]}"
	wait "${HPID[$1]}" 2>/dev/null
}

# on NAME: the API calls that follow go to host NAME.
on() { SOCK=$E2E_TMP/$1/boxd.sock; }

# host_field ID FIELD: FIELD of host ID in GET /hosts.
host_field() { api GET /hosts | jq -r --arg id "$1" ".hosts[] | select(.id == \$id) | .$2"; }
host_is() { [ "$(host_field "$1" alive)" = "$2" ]; }

host_start a
host_start b

# ---- 1. the hosts table ---------------------------------------------------

on a
equal "GET /hosts on a lists both hosts" "$(api GET /hosts | jq -r '[.hosts[].id] | join(" ")')" "host-a host-b"
equal "both alive, a is self" "$(api GET /hosts | jq -r '[.hosts[] | "\(.id):\(.alive):\(.self)"] | join(" ")')" \
	"host-a:true:true host-b:true:false"
owner_ok() { [[ "$(host_field host-b ownerId)" =~ ^host-b/[0-9a-f]{12}$ ]]; }
check "b's row has its owner id (host id + boot tag), version and API URL" \
	eval 'owner_ok && [ "$(host_field host-b apiUrl)" = http://b.example:8080 ] && [ -n "$(host_field host-b version)" ]'
out=$("$BOXCTL" --socket "$SOCK" hosts 2>&1)
diag "$out"
boxctl_lists() { grep -q '^host-a \* *alive' <<<"$out" && grep -q '^host-b *alive' <<<"$out"; }
check "boxctl hosts lists both, alive, this one marked" boxctl_lists

host_stop b
check "b stopped: a sees it gone within 10 s + a few" wait_for 20 host_is host-b false
age=$(host_field host-b heartbeatAgeMs)
check "gone only once its heartbeat is 10 s old (database clock): ${age} ms" test "$age" -ge 10000
equal "a stays alive" "$(host_field host-a alive)" true
host_start b
on a
check "b again: alive again" wait_for 10 host_is host-b true

# ---- 2. one host id, one daemon ----------------------------------------------

owner_a=$(host_field host-a ownerId)
mkdir -p "$E2E_TMP/a2"
rc=0
out=$(env BOXD_E2E_TAG="$E2E_TAG" BOXD_HOST_ID=host-a BOXD_FAKE_BOOT_ID=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee \
	timeout 60 "$BOXD" --config "$E2E_TMP/a.conf" serve --state-dir "$E2E_TMP/a2" 2>&1) || rc=$?
diag "$(tail -n 3 <<<"$out")"
check "a second daemon with a's host id refuses to start (exit $rc)" \
	eval '[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "host id host-a is in use by another boxd" <<<"$out"'
equal "a's row keeps a's owner id" "$(host_field host-a ownerId)" "$owner_a"
