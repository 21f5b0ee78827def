#!/usr/bin/env bash
# t0321-sftp-under-load.sh — sftp converges under load (issue 20):
#   - under constant app work (the scheduler never sees it quiet), a spec
#     change (a custom-dir app) is rebuilt within [sftp] rebuild_max_delay
#     (6 s here) instead of never: the rebuild is queued while app work
#     still runs, and sftp shows the new dir;
#   - 20 forced rebuilds while stress-ng keeps every CPU busy all succeed
#     (the health probe backs off instead of flooding sshd); their times and
#     downtimes are printed.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp-lib.sh"
sftp_need stress-ng

MAX_DELAY=${T0321_MAX_DELAY:-6}
plan 7

sftp_setup "rebuild_max_delay = ${MAX_DELAY}s" # T0321_MAX_DELAY=0: the bound off
outside_dir /srv || bail "cannot create a temp dir under /srv"
SRV=$OUTSIDE
BUSY=$APP_PREFIX-busy
CUS=$APP_PREFIX-cus

daemon_start --config "$APPS_CONF"
sftp_wait_idle

# ---- rebuild under constant app work ----------------------------------------

check "install $BUSY" install_wait "$BUSY"
sftp_wait_converged >/dev/null
# App work that never goes quiet: a hold on app:$BUSY and a restart of it
# queued behind the hold (an active app task).
HOLD=$(hold_task 300 "app:$BUSY")
wait_for 20 eval '[ "$(holder_of app:$BUSY)" = "$HOLD" ]'
RESTART=$(app_task "$BUSY" restart)
wait_for 20 state_is "$RESTART" waiting
REBUILDS0=$(api GET '/tasks?type=service.rebuild&per_page=1000' | jq '.tasks | length')
check "install $CUS with a custom data dir (changes the spec)" install_wait "$CUS" "$SRV/$CUS"
done_at=$(now_ms)
new_rebuild() { [ "$(api GET '/tasks?type=service.rebuild&per_page=1000' | jq '.tasks | length')" -gt "$REBUILDS0" ]; }
wait_for $((MAX_DELAY + 20)) new_rebuild
RB=$(api GET '/tasks?type=service.rebuild&per_page=1' | jq -r '.tasks[0].id')
queued_after=$(($(ms_of "$(task "$RB" .createdAt)") - done_at))
diag "rebuild $RB queued $queued_after ms after the spec change (max delay ${MAX_DELAY}s), app work still running"
check "the rebuild is queued within the maximum delay although app work never went quiet" \
	eval 'new_rebuild && [ "$queued_after" -ge 0 ] && [ "$queued_after" -le $(((MAX_DELAY + 2) * 1000)) ] &&
		[ "$(task "$RESTART" .state)" = waiting ]'
check "... and sftp shows the custom dir, while app work still runs" \
	eval 'wait_task $RB 120 && sftp_lists /custom/apps ${CUS} && state_is $RESTART waiting'
req POST "/tasks/$HOLD/stop"
wait_task "$RESTART" 60 >/dev/null

# ---- 20 rebuilds under CPU load -----------------------------------------------

stress-ng --cpu "$(($(nproc) * 2))" --timeout 900s --quiet &
STRESS=$!
on_exit "kill $STRESS"
wait_for 10 eval '[ "$(awk "{print int(\$1)}" /proc/loadavg)" -ge 1 ]'
ok_n=0 times=() downs=()
for i in $(seq 20); do
	if run_task '/services/sftp/rebuild?force=1' && task_ok; then
		ok_n=$((ok_n + 1))
		times+=("$(jq -r .result.seconds <<<"$TASK")")
		downs+=("$(jq -r .result.downtimeMs <<<"$TASK")")
	fi
done
kill "$STRESS" 2>/dev/null
diag "load average during the rebuilds: $(cut -d' ' -f1-3 /proc/loadavg)"
diag "rebuild times (s): ${times[*]}"
diag "downtimes (ms): ${downs[*]}"
equal "20 forced rebuilds under CPU load: all succeed" "$ok_n" 20
check "sftp answers after them" sftp_answers
check "no old container is left behind" test "$(container_state boxd-sftp-old)" = absent

done_testing
