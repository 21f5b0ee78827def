#!/usr/bin/env bash
# t0312-sftp-rebuilds.sh — rebuilds and restarts that never leave sftp
# down, and engine calls that ride out transient states (issue 19), with
# the real sftp client:
#
#   - a rebuild keeps the old container until the new one answers; its
#     downtime (old container stopped → new one answering) is reported;
#   - a rebuild whose new container fails (its port is taken) puts the old
#     one back: the task fails with the reason, sftp answers as before;
#   - 20 concurrent force-rebuild requests cost one or two rebuilds (the
#     others join the one that waits: 202, same task id, coalesced);
#   - a restart while the container binds a source that is gone (a custom-
#     dir app uninstalled, its rebuild pending): 409 rebuild_pending naming
#     the path while app work runs, the container untouched and running;
#     a rebuild instead once app work is quiet;
#   - app restarts while someone stops the app's container meanwhile
#     (Podman's "container state improper"): every restart succeeds and the
#     container runs.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp-lib.sh"
sftp_need

plan 23

APPS_QUIET=3s sftp_setup
outside_dir /srv || bail "cannot create a temp dir under /srv"
SRV=$OUTSIDE
CUS=$APP_PREFIX-cus
WEB=$APP_PREFIX-web

daemon_start --config "$APPS_CONF"
sftp_wait_idle

# ---- a rebuild keeps the old container until the new one answers ----------

check "sftp answers" wait_for 60 sftp_answers
ID0=$(sftp_id)
run_task '/services/sftp/rebuild?force=1'
check "a forced rebuild succeeds" task_ok
DOWN=$(jq -r .result.downtimeMs <<<"$TASK")
check "it reports its downtime (old stopped → new answering)" test "$DOWN" -ge 0 2>/dev/null
diag "sftp downtime of a rebuild: $DOWN ms (task $TASK_ID, handler $(jq -r .result.seconds <<<"$TASK") s)"
ID1=$(sftp_id)
check "a new container, the old one removed" \
	eval '[ -n "$ID1" ] && [ "$ID1" != "$ID0" ] && [ "$(container_state "$ID0")" = absent ] && [ "$(container_state boxd-sftp-old)" = absent ]'
check "sftp answers" sftp_answers

# ---- a failed rebuild puts the old container back --------------------------

# Another port, taken on every address: the new sshd cannot bind it and
# exits at once.
BUSY=$(sftp_free_port)
"${PORT_HOLD:?}" "$BUSY" >"$E2E_TMP/hold.out" 2>&1 &
NC=$!
on_exit "kill $NC"
wait_for 10 grep -q ready "$E2E_TMP/hold.out" || diag "the listener on $BUSY did not start"
cp "$APPS_CONF" "$E2E_TMP/good.conf"
sed -i "s/^port = $SFTP_PORT\$/port = $BUSY/" "$APPS_CONF" # workers read the config file
run_task /services/sftp/rebuild
cp "$E2E_TMP/good.conf" "$APPS_CONF"
equal "the rebuild fails as unhealthy (its port is taken)" "$(jq -r '.state + " " + .error.code' <<<"$TASK")" \
	"failed unhealthy"
diag "$(jq -r .error.message <<<"$TASK")"
check "... saying that the old container runs again" \
	eval 'jq -r .error.message <<<"$TASK" | grep -q "old container runs again"'
check "the old container is back under its name, running" \
	eval '[ "$(sftp_id)" = "$ID1" ] && sftp_running && [ "$(container_state boxd-sftp-old)" = absent ]'
check "sftp answers on the old port as before" wait_for 30 sftp_answers
kill "$NC" 2>/dev/null

# ---- 20 rebuild requests at once --------------------------------------------

pids=()
for i in $(seq 20); do
	curl -s --max-time 30 --unix-socket "$SOCK" -X POST "http://boxd/api/v1/services/sftp/rebuild?force=1" \
		>"$E2E_TMP/burst.$i" &
	pids+=($!)
done
wait "${pids[@]}"
ids=$(cat "$E2E_TMP"/burst.* | jq -r .taskId | sort -u)
coalesced=$(cat "$E2E_TMP"/burst.* | jq -r 'select(.coalesced == true) | .taskId' | wc -l)
check "20 requests: all answered 202 with a task id" test "$(cat "$E2E_TMP"/burst.* | jq -r .taskId | grep -c .)" = 20
n=$(wc -w <<<"$ids")
check "... naming one or two tasks ($n; $coalesced answers coalesced)" test "$n" -ge 1 -a "$n" -le 2
all_done() { local t; for t in $ids; do is_final "$t" || return 1; done; }
wait_for 120 all_done
check "... which succeeded" eval 'for t in $ids; do state_is $t succeeded || exit 1; done'
check "no other rebuild was queued for them" \
	test "$(api GET '/tasks?type=service.rebuild&per_page=1000' | jq --argjson after "$TASK_ID" '[.tasks[] | select(.id > $after)] | length')" = "$n"
check "sftp answers" sftp_answers

# ---- restart while a source of the container is gone ------------------------

check "install $CUS with a custom data dir" install_wait "$CUS" "$SRV/$CUS"
check "sftp converges (binds $SRV/$CUS)" sftp_wait_converged
ID2=$(sftp_id)
check "install $WEB" install_wait "$WEB"
# App work that does not go quiet: a hold on app:$WEB, and a restart of
# $WEB queued behind it.
HOLD=$(hold_task 300 "app:$WEB")
wait_for 20 eval '[ "$(holder_of app:$WEB)" = "$HOLD" ]'
tid=$(app_task "$CUS" uninstall) && wait_task "$tid" 120
BUSY_TASK=$(app_task "$WEB" restart)
req POST /services/sftp/restart
check "restart with a source gone while app work runs: 409 rebuild_pending naming the path" \
	test "$STATUS $(jq -r .error.code <<<"$BODY")" = "409 rebuild_pending" -a \
	-n "$(jq -r .error.message <<<"$BODY" | grep -F "$SRV/$CUS")"
check "... the container is untouched and runs" eval '[ "$(sftp_id)" = "$ID2" ] && sftp_running && sftp_answers'
req POST "/tasks/$HOLD/stop"
wait_task "$BUSY_TASK" 60 >/dev/null
wait_for 30 eval '[ "$(api GET "/tasks?state=active" | jq "[.tasks[] | select(.appId != null)] | length")" = 0 ]'
req POST /services/sftp/restart
if [ "$STATUS" = 202 ] && [ "$(jq -r .rebuild <<<"$BODY")" = true ]; then
	ok "with app work quiet: 202, a rebuild instead of the restart"
	wait_task "$(jq -r .taskId <<<"$BODY")" 120 >/dev/null
else
	# The scheduler may have rebuilt in between: then a plain restart.
	if [ "$STATUS" = 202 ] && [ "$(sftp_id)" != "$ID2" ]; then
		ok "with app work quiet: 202 (the scheduler's rebuild came first)"
		wait_task "$(jq -r .taskId <<<"$BODY")" 120 >/dev/null
	else
		not_ok "with app work quiet: 202, a rebuild instead of the restart"
		diag "$STATUS $BODY"
	fi
fi
check "sftp runs without the gone source and answers" \
	eval 'sftp_running && sftp_answers && ! container_inspect boxd-sftp ".Mounts[].Source" | grep -qF "$SRV/$CUS"'

# ---- app restarts while the container is stopped meanwhile ------------------

restarts_ok=0
for i in $(seq 8); do
	tid=$(app_task "$WEB" restart) || break
	# Stop it behind boxd's back while the restart runs.
	podman --url "unix://$BOXD_TEST_ENGINE_SOCKET" stop -t 0 "app-$WEB" >/dev/null 2>&1 &
	stopper=$!
	if wait_task "$tid" 60; then
		restarts_ok=$((restarts_ok + 1))
	fi
	wait "$stopper"
	# Whatever the order, a restart that succeeded left it running, or
	# the stop came after it.
done
equal "8 app restarts racing a stop of the container: all succeed" "$restarts_ok" 8
tid=$(app_task "$WEB" restart)
check "... and the last one leaves it running" eval 'wait_task $tid 60 && [ "$(container_state app-$WEB)" = running ]'

done_testing
