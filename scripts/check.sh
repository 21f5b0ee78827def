#!/usr/bin/env bash
# check.sh BUILD BUILD_SAN — run every test, then the unit tests again under
# AddressSanitizer + UBSan, and print "N passed, N failed".
# check.sh --extra BUILD — run only the slow suite 'extra' (make check-extra).
set -uo pipefail
extra=0
if [[ ${1:-} == --extra ]]; then extra=1; shift; fi
build=${1:-build}
san=${2:-build-san}
root=$(cd "$(dirname "$0")/.." && pwd)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# An empty suite is not a pass: say so rather than print "0 passed".
# (The list is read whole: with pipefail, grep -q's early exit would make
# meson's SIGPIPE look like an empty suite.)
if ((extra)) && ! grep -q '/ ' <<<"$(meson test -C "$build" --list --suite extra 2>/dev/null)"; then
	echo "check-extra: no tests in suite 'extra'"
	exit 0
fi

# Servers shared by the tests (MariaDB, PostgreSQL, Podman) are started by
# scripts/test-env.sh when present; it exports their addresses and is torn
# down on exit whatever happens.
if [[ -x "$root/scripts/test-env.sh" ]]; then
	envfile=$(mktemp /tmp/boxd-test-env.XXXXXX)
	# The slow suite also runs tests on a real dockerd.
	((extra)) && export BOXD_TEST_DOCKER=1
	# shellcheck disable=SC1090
	"$root/scripts/test-env.sh" start "$envfile" || { echo "check: test services failed to start" >&2; exit 1; }
	trap '"$root/scripts/test-env.sh" stop "$envfile"; rm -f "$envfile"' EXIT
	set -a; source "$envfile"; set +a
fi

count() { # file → "passed failed skipped"
	jq -rs '[ .[] | .result ] | "\(map(select(. == "OK" or . == "EXPECTEDFAIL")) | length) \(map(select(. == "FAIL" or . == "TIMEOUT" or . == "ERROR" or . == "UNEXPECTEDPASS")) | length) \(map(select(. == "SKIP")) | length)"' "$1"
}

# The failed checks of every failed test, printed again last: CI may keep
# only the end of a long log, and the name of a failed test alone does not
# say which of its checks failed.
failed_checks() { # testlog.json...
	jq -r 'select(.result == "FAIL" or .result == "ERROR" or .result == "TIMEOUT" or .result == "UNEXPECTEDPASS")
		| "failed: \(.name) (\(.result))",
		  ((.stdout // "") | split("\n") | map(select(. != "")) as $out
		   | ($out | map(select(test("^(not ok|Bail out!)")))) as $bad
		   | (if ($bad | length) > 0 then $bad[:6] else $out[-3:] end)[] | "  \(.[:160])")' "$@"
}

status=0
if ((extra)); then
	meson test -C "$build" --suite extra --print-errorlogs --num-processes 2 || status=1
	read -r p f s < <(count "$build/meson-logs/testlog.json")
	echo
	failed_checks "$build/meson-logs/testlog.json"
	echo "extra: $p passed, $f failed, $s skipped"
	[[ $f -eq 0 && $status -eq 0 ]]
	exit
fi
meson test -C "$build" --no-suite extra --print-errorlogs --num-processes 2 || status=1
meson test -C "$san" --suite unit --print-errorlogs --num-processes 2 || status=1

read -r p1 f1 s1 < <(count "$build/meson-logs/testlog.json")
read -r p2 f2 s2 < <(count "$san/meson-logs/testlog.json")
passed=$((p1 + p2)) failed=$((f1 + f2)) skipped=$((s1 + s2))
echo
failed_checks "$build/meson-logs/testlog.json" "$san/meson-logs/testlog.json"
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 && $status -eq 0 ]]
