#!/usr/bin/env bash
# t0910-pg-failover-connect.sh — boxd's PostgreSQL store on a primary with
# a streaming standby (scripts/test-pgrepl.sh, both on 127.0.0.1, started
# and stopped here), through a libpq multi-host DSN that lists the standby
# first and says nothing of target_session_attrs or connect_timeout:
#  - a write succeeds: the store asks for a read-write session unless the
#    DSN says otherwise, so libpq skips the standby (before: boxd could not
#    even migrate its schema, "read-only transaction");
#  - with the standby frozen (SIGSTOP: the kernel still accepts the TCP
#    connection, nobody answers), it reaches the primary after the store's
#    per-host connect timeout (3 s) instead of hanging (before: it hung
#    until the test's timeout killed it).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

PGREPL=$(cd "$(dirname "$0")/../.." && pwd)/scripts/test-pgrepl.sh
if [ "$(id -u)" != 0 ] || ! id postgres >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/15/bin/pg_basebackup ]; then
	skip_all "needs root, the postgres user and PostgreSQL 15's server binaries"
fi

plan 2

# The servers run as postgres: it must reach its dirs below ours.
chmod 0711 "$E2E_TMP"
PGDIR=$E2E_TMP/pg
mkdir -p "$PGDIR"
on_exit "$PGREPL" stop "$PGDIR"
"$PGREPL" start "$PGDIR" >>"$E2E_TMP/pgrepl.log" 2>&1 ||
	{ diag <"$E2E_TMP/pgrepl.log"; bail "cannot start the primary and the standby"; }
# shellcheck source=/dev/null
. "$PGDIR/env"
P1=$PGREPL_PRIMARY_PORT
P2=$PGREPL_STANDBY_PORT
diag "primary on 127.0.0.1:$P1, standby on 127.0.0.1:$P2 (synchronous: $PGREPL_SYNC)"

printf '[store]\nbackend = postgres\ndsn = host=127.0.0.1,127.0.0.1 port=%s,%s user=postgres dbname=boxd\n' \
	"$P2" "$P1" >"$E2E_TMP/standby-first.conf"
probe() {
	timeout -k 5 30 "$BOXD" --config "$E2E_TMP/standby-first.conf" --state-dir "$E2E_TMP/probe" \
		locks hold app:probe --for 0 >>"$E2E_TMP/probe.log" 2>&1
}
mkdir -p "$E2E_TMP/probe"
check "a DSN listing the standby first, without target_session_attrs, writes on the primary" probe
"$PGREPL" signal "$PGDIR" standby STOP
t0=$(now_ms)
probe
rc=$?
took=$(($(now_ms) - t0))
"$PGREPL" signal "$PGDIR" standby CONT
diag "with the standby frozen: $took ms"
check "with the standby frozen, it reaches the primary within 15 s (per-host connect timeout)" \
	test $rc = 0 -a $took -lt 15000
[ -s "$E2E_TMP/probe.log" ] && diag <"$E2E_TMP/probe.log"

done_testing
