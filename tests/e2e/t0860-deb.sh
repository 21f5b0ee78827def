#!/usr/bin/env bash
# t0860-deb.sh — the Debian package, end to end:
#  - `make deb` builds boxd_<version>_<arch>.deb with debhelper and lintian
#    finds nothing (make deb fails otherwise; its report is shown);
#  - its contents list is exactly the expected one (dpkg -c), the config is
#    a conffile, the state dir ships 0700;
#  - installed into a throwaway root (dpkg --root, maintainer scripts run
#    chrootless, in a mount namespace whose /run is empty so that no
#    systemd is asked anything): the postinst points `current` at the
#    packaged release and enables the unit; `boxd version` and
#    `boxctl --help` run from there; `systemd-analyze verify` accepts the
#    installed unit;
#  - the unit's own ExecStart, run as systemd would (tests/e2e/installed.sh),
#    serves release <version>; a platform update to 9.1.0 is applied; the
#    daemon is stopped (SIGTERM) and started again the same way: it runs
#    9.1.0, and /status says current points at 9.1.0 with no warning. A
#    second update (9.2.0) prunes the packaged release (keeping 9.1.0 and
#    9.2.0); `current` switched by hand makes /status warn; reinstalling the
#    package keeps `current` at the newer release.
# shellcheck disable=SC2317 # functions run through wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/installed.sh
. "$(dirname "$0")/installed.sh"
: "${SOURCE_DIR:?}" "${BUILD_DIR:?}" "${BOXCTL:?}"

plan 25
V=$(sed -n "s/^ *version *: *'\([^']*\)',.*/\1/p" "$SOURCE_DIR/meson.build" | head -1)
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
OUT=$E2E_TMP/deb
DEB=$OUT/boxd_${V}_${ARCH}.deb
R=$E2E_TMP/root

# ---- make deb -----------------------------------------------------------

if make -s -C "$SOURCE_DIR" deb DEB_DIR="$OUT" >"$E2E_TMP/make-deb.log" 2>&1 && [ -f "$DEB" ]; then
	ok "make deb builds $(basename "$DEB")"
else
	not_ok "make deb builds boxd_${V}_${ARCH}.deb"
	diag <"$E2E_TMP/make-deb.log"
	bail "no package"
fi
check "lintian: no error, warning or info left (overrides justified in debian/boxd.lintian-overrides)" \
	sh -c "! grep -E '^[EWI]: ' '$OUT/lintian.txt'"
diag "lintian: $(grep -c . "$OUT/lintian.txt") line(s): $(tr '\n' ' ' <"$OUT/lintian.txt")"

dpkg -c "$DEB" | awk '{ p = $6; if ($7 == "->") p = p " -> " $8; print $1, p }' | sort -k2 >"$E2E_TMP/got"
cat >"$E2E_TMP/want" <<EOF
drwxr-xr-x ./
drwxr-xr-x ./etc/
drwxr-xr-x ./etc/boxd/
-rw-r--r-- ./etc/boxd/boxd.conf
drwxr-xr-x ./lib/
drwxr-xr-x ./lib/systemd/
drwxr-xr-x ./lib/systemd/system/
-rw-r--r-- ./lib/systemd/system/boxd.service
drwxr-xr-x ./usr/
drwxr-xr-x ./usr/bin/
lrwxrwxrwx ./usr/bin/boxd -> /var/lib/boxd/current/bin/boxd
-rwxr-xr-x ./usr/bin/boxctl
drwxr-xr-x ./usr/share/
drwxr-xr-x ./usr/share/bash-completion/
drwxr-xr-x ./usr/share/bash-completion/completions/
-rw-r--r-- ./usr/share/bash-completion/completions/boxctl
drwxr-xr-x ./usr/share/boxd/
drwxr-xr-x ./usr/share/boxd/images/
-rwxr-xr-x ./usr/share/boxd/images/build-proxy-image.sh
-rwxr-xr-x ./usr/share/boxd/images/build-sftp-image.sh
-rw-r--r-- ./usr/share/boxd/images/common.sh
drwxr-xr-x ./usr/share/doc/
drwxr-xr-x ./usr/share/doc/boxd/
-rw-r--r-- ./usr/share/doc/boxd/ARCHITECTURE.md.gz
-rw-r--r-- ./usr/share/doc/boxd/README.md.gz
-rw-r--r-- ./usr/share/doc/boxd/changelog.gz
-rw-r--r-- ./usr/share/doc/boxd/copyright
drwxr-xr-x ./usr/share/lintian/
drwxr-xr-x ./usr/share/lintian/overrides/
-rw-r--r-- ./usr/share/lintian/overrides/boxd
drwxr-xr-x ./usr/share/man/
drwxr-xr-x ./usr/share/man/man1/
-rw-r--r-- ./usr/share/man/man1/boxctl.1.gz
drwxr-xr-x ./usr/share/man/man5/
-rw-r--r-- ./usr/share/man/man5/boxd.conf.5.gz
drwxr-xr-x ./usr/share/man/man8/
-rw-r--r-- ./usr/share/man/man8/boxd.8.gz
drwxr-xr-x ./usr/share/zsh/
drwxr-xr-x ./usr/share/zsh/vendor-completions/
-rw-r--r-- ./usr/share/zsh/vendor-completions/_boxctl
drwxr-xr-x ./var/
drwxr-xr-x ./var/lib/
drwx------ ./var/lib/boxd/
drwxr-xr-x ./var/lib/boxd/releases/
drwxr-xr-x ./var/lib/boxd/releases/$V/
drwxr-xr-x ./var/lib/boxd/releases/$V/bin/
-rwxr-xr-x ./var/lib/boxd/releases/$V/bin/boxctl
-rwxr-xr-x ./var/lib/boxd/releases/$V/bin/boxd
-rw-r--r-- ./var/lib/boxd/releases/$V/manifest.json
EOF
sort -k2 -o "$E2E_TMP/want" "$E2E_TMP/want"
if diff -u "$E2E_TMP/want" "$E2E_TMP/got" >"$E2E_TMP/diff"; then
	ok "dpkg -c: the expected files, modes and links"
else
	not_ok "dpkg -c: the expected files, modes and links"
	diag <"$E2E_TMP/diff"
fi
diag "dpkg -c $(basename "$DEB"):"
dpkg -c "$DEB" | diag
equal "the config is the one conffile" "$(dpkg-deb -f "$DEB" Package) $(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles)" \
	"boxd /etc/boxd/boxd.conf"

# ---- dpkg --root ----------------------------------------------------------

mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
dpkg_root() { # dpkg ARGS... on $R, scripts run chrootless with DPKG_ROOT=$R
	unshare -m bash -c 'mount --make-rprivate / && mount -t tmpfs boxd-test-run /run && exec "$@"' _ \
		dpkg --root="$R" --force-script-chrootless --force-depends --log=/dev/null "$@"
}
if dpkg_root -i "$DEB" >"$E2E_TMP/dpkg.log" 2>&1; then
	ok "dpkg --root -i installs it (postinst included)"
else
	not_ok "dpkg --root -i installs it"
	diag <"$E2E_TMP/dpkg.log"
fi
equal "the postinst points current at the packaged release" "$(readlink "$R/var/lib/boxd/current")" "releases/$V"
equal "... and enables the unit" "$(readlink "$R/etc/systemd/system/multi-user.target.wants/boxd.service")" \
	/lib/systemd/system/boxd.service
equal "the state dir is 0700" "$(stat -c %a "$R/var/lib/boxd")" 700
equal "boxd version (the unit's program) runs from the root" "$("$R/var/lib/boxd/current/bin/boxd" version)" "boxd $V"
check "boxctl --help runs from the root" sh -c "'$R/usr/bin/boxctl' --help | grep -q '^usage: boxctl'"
UNIT=$R/lib/systemd/system/boxd.service
if in_installed_root "$R" env MANPATH="$R/usr/share/man" systemd-analyze verify "$UNIT" >"$E2E_TMP/verify" 2>&1; then
	ok "systemd-analyze verify accepts the installed unit"
else
	not_ok "systemd-analyze verify accepts the installed unit"
	diag <"$E2E_TMP/verify"
fi

# ---- update, then restart the way the unit does ---------------------------

read -r -a EXEC < <(sed -n 's/^ExecStart=//p' "$UNIT")
SOCK=$R/var/lib/boxd/boxd.sock
unit_start() { # the unit's ExecStart, as systemd runs it (KillMode=process: just this pid)
	echo "=== unit start: ${EXEC[*]}" >>"$DAEMON_LOG"
	BOXD_E2E_TAG=$E2E_TAG in_installed_root_exec "$R" "${EXEC[@]}" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_for 30 _daemon_answers_or_died && daemon_answers || bail "the unit's command did not serve: $(tail -5 "$DAEMON_LOG")"
}
unit_stop() { # systemctl stop: KillSignal=SIGTERM to the main process
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID"
	STOPPED_PID=$DAEMON_PID
	DAEMON_PID=
}
st() { api GET /status | jq -r "$1"; }
update_to() { # VERSION: apply an update package of this build as VERSION, wait for it
	"$SOURCE_DIR/scripts/update-package.sh" "$BUILD_DIR" "$1" "$E2E_TMP/boxd-$1.tar.gz" >/dev/null &&
		BOXD_SOCKET=$SOCK "$BOXCTL" update apply "$E2E_TMP/boxd-$1.tar.gz" --skip-backup --wait \
			>>"$E2E_TMP/updates.log" 2>&1
}

unit_start
equal "the unit's ExecStart serves the packaged release" "$(st .version)" "$V"
equal "... current points at it, no warning" "$(st '[.currentVersion, (.warnings | length)] | join(" ")')" "$V 0"
if update_to 9.1.0; then ok "boxctl update apply (9.1.0) succeeds"; else not_ok "boxctl update apply (9.1.0)"; diag <"$E2E_TMP/updates.log"; fi
equal "boxd runs 9.1.0 after the re-exec" "$(st .version)" 9.1.0
unit_stop
check "SIGTERM (systemctl stop) ended the daemon's process" gone "$STOPPED_PID"
unit_start
equal "stopped and started as the unit does (a new process): still 9.1.0" \
	"$(st .version) $([ "$DAEMON_PID" != "$STOPPED_PID" ] && echo new)" "9.1.0 new"
equal "... current points at 9.1.0, no warning" "$(st '[.currentVersion, (.warnings | length)] | join(" ")')" "9.1.0 0"
if update_to 9.2.0; then ok "a second update (9.2.0) succeeds"; else not_ok "a second update (9.2.0)"; diag <"$E2E_TMP/updates.log"; fi
equal "old releases are pruned: the running one and the previous one stay" \
	"$(find "$R/var/lib/boxd/releases" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')" "9.1.0 9.2.0 "
ln -sfn releases/9.1.0 "$R/var/lib/boxd/.c" && mv -T "$R/var/lib/boxd/.c" "$R/var/lib/boxd/current"
check "current switched by hand: /status warns that a restart runs 9.1.0" \
	sh -c "printf '%s' \"\$1\" | grep -q 'runs release 9.2.0 but .*current points at 9.1.0'" _ "$(st '.warnings[0]')"
ln -sfn releases/9.2.0 "$R/var/lib/boxd/.c" && mv -T "$R/var/lib/boxd/.c" "$R/var/lib/boxd/current"
unit_stop

# Reinstalling (or upgrading to) a package of an older release never moves
# an updated box back.
dpkg_root -i "$DEB" >>"$E2E_TMP/dpkg.log" 2>&1
equal "reinstalling the package succeeds" "$?" 0
equal "... and current stays at the newer 9.2.0" "$(readlink "$R/var/lib/boxd/current")" releases/9.2.0
dpkg_root --purge boxd >>"$E2E_TMP/dpkg.log" 2>&1
equal "dpkg --purge succeeds" "$?" 0
check "... removes the releases and current, keeps the database" \
	sh -c "[ ! -e '$R/var/lib/boxd/releases' ] && [ ! -L '$R/var/lib/boxd/current' ] && [ -f '$R/var/lib/boxd/boxd.db' ]"
done_testing
