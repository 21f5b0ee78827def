#!/usr/bin/env bash
# t0212-argv-secrets — a database password given with --dsn never shows in
# the daemon's command line (issue 10, finding 2: any local user read it
# with ps and wrote to the database as boxd): not at start, not in its
# workers, not after an update's re-exec (which used to repeat the saved
# argv), and boxctl's --token neither. The reader is `nobody`.
set -u
export BOXD_TEST_STORE=mysql
. "$(dirname "$0")/lib.sh"
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"

plan 14

command -v setpriv >/dev/null || bail "setpriv (util-linux) is needed"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
# cmdline_of PID: the command line as nobody reads it (as ps does).
cmdline_of() { as_nobody cat "/proc/$1/cmdline" | tr '\0' ' '; }
not() { ! "$@"; }
has() { grep -qF -- "$2" <<<"$1"; }

# A database user with a password, for this test only.
db=$(store_db_create) || bail "cannot create a database"
user="u_$db"
user=${user:0:32}
pass="Pw-$RANDOM$RANDOM$RANDOM"
on_exit "_store_admin \"DROP USER IF EXISTS '$user'@'localhost'\"; store_db_drop $db"
_store_admin "CREATE USER '$user'@'localhost' IDENTIFIED BY '$pass'; GRANT ALL ON $db.* TO '$user'@'localhost'" ||
	bail "cannot create the database user"
dsn="mysql://$user:$pass@localhost/$db?socket=$BOXD_TEST_MYSQL_SOCKET"

# A release dir for the re-exec: <install>/current/bin/boxd is this build.
install="$E2E_TMP/install"
mkdir -p "$install/releases/t/bin"
ln -s "$BOXD" "$install/releases/t/bin/boxd"
ln -s releases/t "$install/current"
printf '[update]\ninstall_root = %s\n' "$install" >"$E2E_TMP/boxd.conf"

# lib.sh's daemon_start would add the root DSN: start on ours only.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TEST_STORE=sqlite daemon_start --config "$E2E_TMP/boxd.conf" --store mysql --dsn "$dsn" --listen "127.0.0.1:$port"
req GET /status
equal "the daemon runs on the password-protected database" "$(jq -r .store.backend <<<"$BODY")" mysql

line=$(cmdline_of "$DAEMON_PID")
check "nobody reads the daemon's command line (the control)" has "$line" "--state-dir $STATE"
check "it does not hold the password" not has "$line" "$pass"
check "nor the DSN" not has "$line" "$user:"
environ_readable() { as_nobody cat "/proc/$1/environ" >/dev/null 2>&1; }
check "nobody cannot read the daemon's environment (where the DSN goes)" not environ_readable "$DAEMON_PID"
id=$(hold_task 30 app:argv) || bail "cannot create a task"
wait_for 15 state_is "$id" running || bail "task $id does not run"
wpid=$(task "$id" .pid)
check "nor does a worker's command line" not has "$(cmdline_of "$wpid")" "$pass"
everything=$(as_nobody ps -eo args)
check "ps -eo args as nobody shows the password nowhere" not has "$everything" "$pass"

# An update's hand-over: the daemon re-executes itself (same pid).
printf '{"task":%s,"version":"t","requestedAt":0}\n' "$id" >"$STATE/update-reexec.json"
kill -USR2 "$DAEMON_PID"
wait_for 30 test -s "$STATE/update-reexec-result.json" || bail "no answer from the re-exec"
equal "the re-exec succeeded, same pid" "$(jq -r '"\(.ok) \(.pid)"' "$STATE/update-reexec-result.json")" "true $DAEMON_PID"
wait_for 15 daemon_answers
req GET /status
equal "the new image found the database without --dsn" "$(jq -r .store.backend <<<"$BODY")" mysql
line=$(cmdline_of "$DAEMON_PID")
check "after the re-exec nobody still reads the command line (the control)" has "$line" "--state-dir $STATE"
check "and it does not hold the password" not has "$line" "$pass"
# (lines starting with === are the test's own notes of how it started boxd)
log_has_pass() { grep -v '^===' "$DAEMON_LOG" | grep -qF -- "$pass"; }
check "the daemon log never shows the password" not log_has_pass

# boxctl --token, for as long as a command runs.
token=$("$BOXD" --state-dir "$STATE" token create argv 2>/dev/null)
"$BOXCTL" --url "http://127.0.0.1:$port" --token "$token" task wait "$id" >/dev/null 2>&1 &
cpid=$!
on_exit "kill $cpid"
# Once it talks to the daemon, main() has long run.
boxctl_connected() { ss -Htnp state established "( dport = :$port )" | grep -q "pid=$cpid,"; }
wait_for 10 boxctl_connected || diag "boxctl did not connect within 10 s"
check "boxctl's command line does not hold its token" not has "$(cmdline_of "$cpid")" "$token"
check "(but its other arguments)" has "$(cmdline_of "$cpid")" "task wait $id"

done_testing
