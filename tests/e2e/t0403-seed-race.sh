#!/usr/bin/env bash
# t0403-seed-race.sh — the seed's race, on purpose, many times (issue 6).
#
# The race the older design left open: task 1 (install of A) finishes, which
# schedules an sftp rebuild; task 2 (uninstall of B) deletes B's data dir;
# the rebuild, built from a spec that still had B's dir, then creates the
# sftp container and the engine (Podman creates a missing bind source)
# brings B's dir back. Here every app has a custom data dir outside the
# appsdata root (/srv/<tmp>/rN), so each one is bound into sftp on its own
# and every install changes the spec.
#
# Iteration i: install r<i>; the moment it has finished, submit the
# uninstall of r<i-1> (installed in the iteration before) and a forced
# rebuild (POST /api/v1/services/sftp/rebuild?force=1), in alternating
# order; the scheduler's own rebuild after the quiet period (0.3 s here)
# comes on top. Checks: every uninstall succeeds; r<i-1>'s data dir is gone
# right after and is still gone once the rebuild has run; every rebuild
# succeeds, the scheduler's too; at the end no uninstalled app's dir exists,
# and the sftp container binds only the last app's dir.
#
# Before the loop, one interleaving on purpose: a rebuild that takes
# service:sftp ahead of a queued install of an app with a custom dir (the row
# exists, the dir does not yet) must succeed.
#
# ITERATIONS (default 50) are run, but only as many as fit in BUDGET seconds
# (default 140), so the test stays under ~3 minutes on a loaded machine; a
# TAP comment says how many ran and the time per iteration. Without the
# services module the rebuild part is skipped (the uninstalls still race the
# installs).
#
# TAP. Needs the test env (scripts/test-env.sh). The trap kills the daemon
# and its workers, removes our containers (and the sftp container our daemon
# made), unmounts and removes the temp dirs, also on failure.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE BOXD_TEST_SFTP_IMAGE CONTAINERS_CONF

ITERATIONS=${ITERATIONS:-50}
BUDGET=${BUDGET:-140}
IMG=$BOXD_TEST_APP_IMAGE

plan 14
APPS_QUIET=300ms apps_setup
outside_dir /srv || bail "cannot make a temp dir under /srv"
OUT=$OUTSIDE
daemon_start --config "$APPS_CONF"

SERVICES=no
services_available && SERVICES=yes
diag "services module: $SERVICES"

app_id() { echo "$APP_PREFIX-r$1"; }
dir_of() { echo "$OUT/r$1"; }

# install_custom I: install r<I> with its custom dir; prints the task id.
install_custom() { install_app "$(app_id "$1")" "$IMG" '{}' "$(dir_of "$1")"; }

# First, one interleaving on purpose: a rebuild that gets service:sftp
# before a queued install of an app with a custom dir (its row exists, its
# dir not yet: the install makes it under service:sftp shared). The rebuild
# must not fail on that dir, nor create it.
if [ $SERVICES = yes ]; then
	Q=$APP_PREFIX-q
	hold=$(hold_task 60 "$(here service:sftp)") || hold=
	wait_for 10 state_is "$hold" running
	req POST '/services/sftp/rebuild?force=1'
	tr=$(jq -r '.taskId // empty' <<<"$BODY")
	wait_for 10 state_is "$tr" waiting
	tq=$(install_app "$Q" "$IMG" '{}' "$OUT/q") || tq=
	wait_for 10 state_is "$tq" waiting
	queued="$(task_state "$tr") $(task_state "$tq")"
	req POST "/tasks/$hold/stop"
	check "a rebuild ahead of a queued install ($queued) succeeds" wait_task "$tr" 60
	check "the install after it succeeds" wait_task "$tq" 60
	tq=$(app_task "$Q" uninstall) && wait_task "$tq" 60 || diag "uninstall of $Q failed"
else
	skip "a rebuild ahead of a queued install succeeds" "services module not in this daemon"
	skip "the install after it succeeds" "services module not in this daemon"
fi
base=$(all_tasks | jq 'map(.id) | max // 0')

t=$(install_custom 0) || t=
check "r0 installed" wait_task "$t" 60

fail_install=0 fail_uninstall=0 reappeared=0 fail_rebuild=0 rebuilds=0
reappeared_list=
t_start=$(now_ms)
i=0
while [ $i -lt "$ITERATIONS" ]; do
	if [ $i -gt 0 ] && [ $(($(now_ms) - t_start)) -gt $((BUDGET * 1000 * i / (i + 1))) ]; then
		break # the next one would not fit in the budget
	fi
	i=$((i + 1))
	prev=$((i - 1))
	ta=$(install_custom $i) || ta=
	if [ -z "$ta" ] || ! wait_task "$ta" 60; then
		fail_install=$((fail_install + 1))
		continue
	fi
	# A has finished: now the uninstall of B and the rebuild, back to back.
	tu='' tr=''
	if [ $((i % 2)) = 1 ]; then
		tu=$(app_task "$(app_id $prev)" uninstall) || tu=
		[ $SERVICES = yes ] && req POST '/services/sftp/rebuild?force=1' && tr=$(jq -r '.taskId // empty' <<<"$BODY")
	else
		[ $SERVICES = yes ] && req POST '/services/sftp/rebuild?force=1' && tr=$(jq -r '.taskId // empty' <<<"$BODY")
		tu=$(app_task "$(app_id $prev)" uninstall) || tu=
	fi
	if [ -z "$tu" ] || ! wait_task "$tu" 60; then
		fail_uninstall=$((fail_uninstall + 1))
	elif [ -e "$(dir_of $prev)" ]; then
		reappeared=$((reappeared + 1))
		reappeared_list="$reappeared_list r$prev(after uninstall)"
	fi
	if [ $SERVICES = yes ]; then
		rebuilds=$((rebuilds + 1))
		if [ -z "$tr" ] || ! wait_task "$tr" 60; then
			fail_rebuild=$((fail_rebuild + 1))
			[ -n "$tr" ] || diag "iteration $i: the rebuild was refused: $STATUS $BODY"
		fi
		if [ -e "$(dir_of $prev)" ]; then
			reappeared=$((reappeared + 1))
			reappeared_list="$reappeared_list r$prev(after rebuild)"
		fi
	fi
done
t_loop=$(($(now_ms) - t_start))
per=$((t_loop / (i > 0 ? i : 1)))
if [ "$i" -lt "$ITERATIONS" ]; then
	diag "NOTE: only $i of $ITERATIONS iterations fit in the ${BUDGET} s budget: $per ms per iteration"
else
	diag "$i iterations in $t_loop ms: $per ms per iteration"
fi

all_tasks | jq -r '
	def ms: if . == null then null else (.[0:19] + "Z" | fromdateiso8601) * 1000 + (.[20:23] | tonumber) end;
	map(select(.startedAt != null and .finishedAt != null))
	| group_by(.type)[] | "\(.[0].type): \(length) tasks ran, mean \(map((.startedAt | ms) - (.createdAt | ms)) | add / length | floor) ms to start, \(map((.finishedAt | ms) - (.startedAt | ms)) | add / length | floor) ms to run"' | diag
check "iterations ran ($i)" test "$i" -gt 0
equal "every install succeeded" "$fail_install" 0
equal "every uninstall succeeded" "$fail_uninstall" 0
equal "no uninstalled app's data dir reappeared (after its uninstall, after the rebuild)" "$reappeared" 0
[ -n "$reappeared_list" ] && diag "reappeared:$reappeared_list"

# The scheduler's own rebuild after the last app task (quiet period), then
# a last look.
sched_rebuilds_done() {
	[ "$(api GET '/tasks?state=active&per_page=1000' | jq '.tasks | length')" = 0 ]
}
sleep 1
check "all tasks are done in the end" wait_for 60 sched_rebuilds_done
left=$(for ((k = 0; k < i; k++)); do [ -e "$(dir_of $k)" ] && echo "r$k"; done | tr '\n' ' ')
equal "in the end: no uninstalled app's data dir exists" "$left" ""
check "in the end: the last app's data dir exists" test -d "$(dir_of $i)"
equal "in the end: only the last app is left" "$(api GET /apps | jq -r '[.apps[].id] | join(",")')" "$(app_id $i)"

if [ $SERVICES = yes ]; then
	equal "every forced rebuild succeeded ($rebuilds)" "$fail_rebuild" 0
	all=$(all_tasks | jq -c --argjson b "$base" '[.[] | select(.type == "service.rebuild" and .id > $b)]')
	diag "service.rebuild tasks in the loop: $(jq length <<<"$all") ($(jq '[.[] | select(.args.force != true)] | length' <<<"$all") from the scheduler)"
	equal "every rebuild in the loop succeeded, the scheduler's too" \
		"$(jq -c '[.[] | select(.state != "succeeded") | {id, force: .args.force, error: .error.code}]' <<<"$all")" '[]'
	jq -r '.[] | select(.state != "succeeded") | "task \(.id): \(.error.message)"' <<<"$all" | head -n 5 | diag
	equal "the sftp container binds no uninstalled app's dir" \
		"$(container_inspect boxd-sftp "[.Mounts[].Source | select(startswith(\"$OUT/\"))] | join(\",\")")" "$(dir_of $i)"
else
	skip "every forced rebuild succeeded" "services module not in this daemon"
	skip "every rebuild in the loop succeeded, the scheduler's too" "services module not in this daemon"
	skip "the sftp container binds no uninstalled app's dir" "services module not in this daemon"
fi

done_testing
