#!/usr/bin/env bash
# t0810-no-cmocka.sh — `make` and `make run` on a machine without cmocka
# (or any other test package): in a private mount namespace, empty files are
# bind-mounted over cmocka's pkg-config file, CMake files and headers, so
# that neither pkg-config nor meson can find it; then a fresh build dir is
# configured and built with `make build`, `make run` starts the daemon, and
# boxctl talks to it. The build must have no tests (tests=auto found no
# cmocka) and must not fail. Its output is shown (TAP comments).
# shellcheck disable=SC2317 # functions run through wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
: "${SOURCE_DIR:?}"

plan 5
B=$E2E_TMP/build-nocmocka
S=$E2E_TMP/state
OUTDIR=$E2E_TMP/out
mkdir -p "$OUTDIR"
: >"$E2E_TMP/empty"

# The cmocka files that a build could find it by (none when the package is
# not installed: then there is nothing to hide).
mapfile -t HIDE < <(dpkg -L libcmocka-dev 2>/dev/null | grep -E '\.pc$|/cmake/.*\.cmake$|\.h$' | while read -r f; do [ -f "$f" ] && echo "$f"; done)

# The whole run happens in a mount namespace of its own: the binds hide
# cmocka only there, and the mounts the daemon makes vanish with it.
cat >"$E2E_TMP/inside.sh" <<EOF
set -u
mount --make-rprivate /
for f in ${HIDE[*]}; do mount --bind "$E2E_TMP/empty" "\$f" || exit 10; done
if pkg-config --exists cmocka; then echo "cmocka is still visible" >&2; exit 11; fi
cd "$SOURCE_DIR"
make build BUILD="$B" >"$OUTDIR/build.log" 2>&1 || exit 12
meson introspect "$B" --tests >"$OUTDIR/tests.json" || exit 13
setsid make run BUILD="$B" STATE_DIR="$S" >"$OUTDIR/run.log" 2>&1 </dev/null &
mr=\$!
for i in \$(seq 1 600); do
	"$B/boxctl" --socket "$S/boxd.sock" status >"$OUTDIR/status.txt" 2>&1 && break
	kill -0 \$mr 2>/dev/null || break
	sleep 0.1
done
kill -INT -- -\$mr
wait \$mr
grep -q '^boxd ' "$OUTDIR/status.txt" || exit 14
exit 0
EOF
BOXD_E2E_TAG=$E2E_TAG unshare -m bash "$E2E_TMP/inside.sh"
rc=$?
diag "cmocka files hidden: ${HIDE[*]:-none (libcmocka-dev is not installed)}"
case $rc in
10) bail "cannot bind-mount over the cmocka files" ;;
11) bail "cmocka is still visible to pkg-config" ;;
esac
if [ $rc -ne 12 ] && [ -f "$OUTDIR/build.log" ]; then
	ok "make build without cmocka succeeds"
else
	not_ok "make build without cmocka succeeds (exit $rc)"
fi
diag "--- make build (a fresh build dir, cmocka hidden; ninja's lines cut short):"
awk '!/^\[[0-9]+\/[0-9]+\] Compiling/' "$OUTDIR/build.log" | diag
check "... meson says the tests are not built" grep -q "tests: not built (cmocka not found" "$B/meson-logs/meson-log.txt"
grep -E "cmocka|tests: not built" "$B/meson-logs/meson-log.txt" | diag
equal "... and the build has no tests" "$(jq length "$OUTDIR/tests.json" 2>/dev/null)" 0
check "make run without cmocka starts boxd (boxctl status answers)" test "$rc" = 0
diag "--- make run:"
diag <"$OUTDIR/run.log"
diag "--- boxctl status:"
diag <"$OUTDIR/status.txt"
check "the test's namespace left no mount behind" sh -c "! grep -q ' $E2E_TMP/' /proc/self/mountinfo"
done_testing
