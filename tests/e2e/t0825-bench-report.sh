#!/usr/bin/env bash
# t0825-bench-report.sh — `scripts/bench.sh --report` on a results file
# made up here: issue 18's ratio targets take the medians of their three
# interleaved runs when the file has them (and list every run), and the
# matrix's single run when it does not; the hand-off p99 target takes the
# median of the runs' p99s, and the task rate the median of its three
# runs. The made-up numbers are chosen so that a
# mean, the first run or the matrix's run would each give another verdict.
set -u
# shellcheck source=tests/e2e/tap.sh
. "$(dirname "$0")/tap.sh"
: "${SOURCE_DIR:?}"
command -v jq >/dev/null || bail "jq is needed"

T=$(mktemp -d "${TMPDIR:-/tmp}/t0825.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
plan 8

row() { # IMPL NAMES PAIRS_PER_S [P99] [ROUND]
	jq -cn --arg i "$1" --arg n "$2" --argjson p "$3" --argjson h "${4:-null}" --argjson r "${5:-null}" \
		'{impl: $i, procs: 8, names: $n, pairs_per_s: $p, handoff_p99_ms: $h}
		 + (if $r then {target_round: $r} else {} end)'
}
{
	# The matrix: SQLite's ratio would be 60 % (PASS) from these alone.
	row update-sqlite shared 10000
	row boxd-sqlite+broker shared 6000 3.0
	row boxd-sqlite shared 1000 9.0
	# The interleaved runs: medians 4,000 / 10,000 = 40 % (MISS); the
	# mean of the boxd runs (5,333) would give 53 % (PASS), the first
	# run (9,000 / 10,000) 90 %.
	row update-sqlite shared 10000 null 1
	row boxd-sqlite+broker shared 9000 2.5 1
	row update-sqlite shared 11000 null 2
	row boxd-sqlite+broker shared 3000 1.5 2
	row update-sqlite shared 9000 null 3
	row boxd-sqlite+broker shared 4000 1.8 3
	# MariaDB: no interleaved runs, the matrix's 35 % (PASS).
	row getlock shared 2000
	row boxd-mysql+broker shared 700 1.0
	# One process's serial UPDATEs on MariaDB: the ceiling of one commit
	# per hand-off, 1,000 / 2,000.
	jq -cn '{impl: "update-mysql", procs: 1, names: "shared", pairs_per_s: 1000}'
	# Three task-rate runs: the first alone (250/s) would miss.
	for r in 250 320 310; do
		jq -cn --argjson r "$r" '{bench: "task-rate", tasks: 1000, tasks_per_s: $r}'
	done
} >"$T/results.jsonl"

run_report() { "$SOURCE_DIR/scripts/bench.sh" --report "$T/results.jsonl"; }
out=$(run_report 2>&1)
rc=$?
check "the report runs" test "$rc" -eq 0
line=$(grep -F 'boxd-sqlite with the broker / SQLite CAS floor' <<<"$out")
diag "$line"
check "SQLite one name: the ratio of the medians, 40 %, misses" grep -q '^MISS .*: 40% (4000 / 10000 pairs/s' <<<"$line"
check "every interleaved run is listed, and the matrix's run beside them" \
	grep -qF 'medians of 3 interleaved runs: 9000, 3000, 4000 / 10000, 11000, 9000; the matrix run alone: 60%' <<<"$line"
line=$(grep -F 'boxd-mysql with the broker / MariaDB GET_LOCK' <<<"$out")
diag "$line"
check "without interleaved runs, the matrix's ratio (35 %)" grep -q '^PASS .*: 35% (700 / 2000 pairs/s; direct' <<<"$line"
check "the ceiling of one commit per hand-off (50 %)" \
	grep -qF 'at one commit per hand-off (update-mysql 1p, 1000/s) the most it could be is 50%)' <<<"$line"
line=$(grep -F 'boxd-sqlite with the broker hand-off p99' <<<"$out")
diag "$line"
# The matrix's p99 (3.0 ms) and the first run's (2.5 ms) would miss.
check "the hand-off p99 is the median of the runs' (1.8 ms)" grep -q '^PASS .*: 1.8 ms (median of 3 interleaved runs: 2.5, 1.5, 1.8' <<<"$line"
line=$(grep -F 'boxd-mysql with the broker hand-off p99' <<<"$out")
check "without interleaved runs, the matrix's p99" grep -q '^PASS .*: 1 ms (direct' <<<"$line"
line=$(grep -F 'zero-second tasks' <<<"$out")
diag "$line"
check "the task rate is the median of its runs (310/s)" \
	grep -q '^PASS .*: 310/s (1000 tasks; the median of 3 runs: 250, 320, 310)' <<<"$line"
done_testing
