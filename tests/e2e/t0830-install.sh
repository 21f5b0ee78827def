#!/usr/bin/env bash
# t0830-install.sh — `make install` (meson install underneath) into a
# DESTDIR, from a build dir of its own:
#  - PREFIX=/usr: exactly the expected files, modes and links: boxctl, the
#    first release under /var/lib/boxd (0700) with `current` pointing at it,
#    /usr/bin/boxd -> /var/lib/boxd/current/bin/boxd, /etc/boxd/boxd.conf,
#    the unit (ExecStart = <install_root>/current/bin/boxd), three man pages,
#    bash and zsh completions, the sftp image script; the installed programs
#    run; `systemd-analyze verify` accepts the unit;
#  - a second install keeps an edited /etc/boxd/boxd.conf;
#  - the man pages render, and name every boxctl command and every key of
#    etc/boxd.conf (so they cannot drift from the code);
#  - the installed completions complete commands and options (bash with
#    COMP_WORDS, zsh with compadd replaced by a printer);
#  - the default PREFIX=/usr/local still puts the config in /etc/boxd.
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/installed.sh
. "$(dirname "$0")/installed.sh"
: "${SOURCE_DIR:?}"

plan 23
B=$E2E_TMP/build
D=$E2E_TMP/dest
V=$(sed -n "s/^ *version *: *'\([^']*\)',.*/\1/p" "$SOURCE_DIR/meson.build" | head -1)

if make -s -C "$SOURCE_DIR" install BUILD="$B" MESON_OPTS=-Dtests=disabled PREFIX=/usr DESTDIR="$D" \
	>"$E2E_TMP/install.log" 2>&1; then
	ok "make install PREFIX=/usr DESTDIR=..."
else
	not_ok "make install PREFIX=/usr DESTDIR=..."
	diag <"$E2E_TMP/install.log"
	bail "make install failed"
fi

# The installed tree: type, mode and path of each entry (links with their
# target).
listing() {
	(cd "$1" && find . -mindepth 1 \( -type l -printf '%y %p -> %l\n' \) -o \( ! -type l -printf '%y %m %p\n' \)) |
		sort -k3
}
cat >"$E2E_TMP/want" <<EOF
d 755 ./etc
d 755 ./etc/boxd
f 644 ./etc/boxd/boxd.conf
d 755 ./usr
d 755 ./usr/bin
l ./usr/bin/boxd -> /var/lib/boxd/current/bin/boxd
f 755 ./usr/bin/boxctl
d 755 ./usr/lib
d 755 ./usr/lib/systemd
d 755 ./usr/lib/systemd/system
f 644 ./usr/lib/systemd/system/boxd.service
d 755 ./usr/share
d 755 ./usr/share/bash-completion
d 755 ./usr/share/bash-completion/completions
f 644 ./usr/share/bash-completion/completions/boxctl
d 755 ./usr/share/boxd
d 755 ./usr/share/boxd/images
f 755 ./usr/share/boxd/images/build-proxy-image.sh
f 755 ./usr/share/boxd/images/build-sftp-image.sh
f 644 ./usr/share/boxd/images/common.sh
d 755 ./usr/share/man
d 755 ./usr/share/man/man1
f 644 ./usr/share/man/man1/boxctl.1
d 755 ./usr/share/man/man5
f 644 ./usr/share/man/man5/boxd.conf.5
d 755 ./usr/share/man/man8
f 644 ./usr/share/man/man8/boxd.8
d 755 ./usr/share/zsh
d 755 ./usr/share/zsh/site-functions
f 644 ./usr/share/zsh/site-functions/_boxctl
d 755 ./var
d 755 ./var/lib
d 700 ./var/lib/boxd
l ./var/lib/boxd/current -> releases/$V
d 755 ./var/lib/boxd/releases
d 755 ./var/lib/boxd/releases/$V
d 755 ./var/lib/boxd/releases/$V/bin
f 755 ./var/lib/boxd/releases/$V/bin/boxctl
f 755 ./var/lib/boxd/releases/$V/bin/boxd
f 644 ./var/lib/boxd/releases/$V/manifest.json
EOF
# systemd.pc names /lib/systemd/system on Debian 12 for prefix /usr.
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)
if [ "$unitdir" = /lib/systemd/system ]; then
	sed -i -e '/usr\/lib\/systemd/d' -e '/^d 755 .\/usr\/lib$/d' "$E2E_TMP/want"
	printf '%s\n' 'd 755 ./lib' 'd 755 ./lib/systemd' 'd 755 ./lib/systemd/system' \
		'f 644 ./lib/systemd/system/boxd.service' >>"$E2E_TMP/want"
	sort -k3 -o "$E2E_TMP/want" "$E2E_TMP/want"
fi
listing "$D" >"$E2E_TMP/got"
if diff -u "$E2E_TMP/want" "$E2E_TMP/got" >"$E2E_TMP/diff"; then
	ok "the installed files, modes and links are the expected ones"
else
	not_ok "the installed files, modes and links are the expected ones"
	diag <"$E2E_TMP/diff"
fi
equal "the release's manifest names version $V" "$(jq -r .version "$D/var/lib/boxd/releases/$V/manifest.json")" "$V"
equal "current/bin/boxd runs" "$("$D/var/lib/boxd/current/bin/boxd" version)" "boxd $V"
check "boxctl --help runs" sh -c "'$D/usr/bin/boxctl' --help | grep -q '^usage: boxctl'"
UNIT=$D$unitdir/boxd.service
equal "the unit starts the release current points at" "$(sed -n 's/^ExecStart=//p' "$UNIT")" \
	"/var/lib/boxd/current/bin/boxd --config /etc/boxd/boxd.conf serve"
# verify checks that ExecStart's program exists and that the man pages of
# Documentation= open: run it where the installed tree is in place.
if in_installed_root "$D" env MANPATH="$D/usr/share/man" systemd-analyze verify "$UNIT" >"$E2E_TMP/verify" 2>&1; then
	ok "systemd-analyze verify accepts the installed unit"
else
	not_ok "systemd-analyze verify accepts the installed unit"
	diag <"$E2E_TMP/verify"
fi

# An operator's edit survives the next install.
echo "# the operator's line" >>"$D/etc/boxd/boxd.conf"
make -s -C "$SOURCE_DIR" install BUILD="$B" PREFIX=/usr DESTDIR="$D" >>"$E2E_TMP/install.log" 2>&1
equal "a second make install succeeds" "$?" 0
check "... and keeps the edited /etc/boxd/boxd.conf" grep -q "^# the operator's line" "$D/etc/boxd/boxd.conf"

# ---- man pages ------------------------------------------------------------

for p in man8/boxd.8 man1/boxctl.1 man5/boxd.conf.5; do
	name=$(basename "$p")
	check "man $name renders" sh -c "MANWIDTH=80 man -l '$D/usr/share/man/$p' 2>/dev/null | grep -q '^NAME'"
done
# Every command of boxctl's table (the arms of its completion script) is
# in boxctl(1).
missing=
while read -r cmd; do
	grep -qF "*$cmd*" "$SOURCE_DIR/docs/man/boxctl.1.scd" || missing="$missing [$cmd]"
done < <(sed -n "s/^\t'\([a-z ]*\)' | .*/\1/p" "$D/usr/share/bash-completion/completions/boxctl")
equal "boxctl(1) names every command of boxctl's table" "$missing" ""
# Every key of etc/boxd.conf is in boxd.conf(5).
missing=
while read -r key; do
	grep -q "\*$key\* = " "$SOURCE_DIR/docs/man/boxd.conf.5.scd" || missing="$missing [$key]"
done < <(sed -nE 's/^#?([a-z_]+) = .*/\1/p' "$SOURCE_DIR/etc/boxd.conf" | grep -vx 'hold\|fullbackup' | sort -u)
equal "boxd.conf(5) names every key of etc/boxd.conf" "$missing" ""

# ---- completions ------------------------------------------------------------

bash_complete() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _boxctl; echo "${COMPREPLY[*]}"' \
		_ "$D/usr/share/bash-completion/completions/boxctl" "$@"
}
# The commands as boxctl --help lists them (first words, in order): a new
# command needs no edit here, but must reach the completion.
commands=$("$D/usr/bin/boxctl" --help | sed -n '/^commands:/,/^$/s/^  \([a-z]\+\).*/\1/p' | awk '!seen[$0]++' | tr '\n' ' ')
equal "bash: boxctl <TAB> lists the commands of boxctl --help" "$(bash_complete boxctl '')" "${commands% }"
equal "bash: boxctl task <TAB>" "$(bash_complete boxctl task '')" "list show logs stop wait"
equal "bash: boxctl --json app install wiki --im<TAB>" "$(bash_complete boxctl --json app install wiki --im)" "--image"
check "bash: boxctl task list --<TAB> offers its options and the global ones" \
	sh -c "[ \"\$1\" = '--type --state --app --page --per-page --socket --url --token --json --help' ]" _ \
	"$(bash_complete boxctl --socket /x task list --)"
zsh_complete() {
	zsh -f -c 'compadd() { shift; print -r -- "$*"; }; f=$1; shift; words=("$@"); CURRENT=$#words; source "$f"' \
		_ "$D/usr/share/zsh/site-functions/_boxctl" "$@"
}
equal "zsh: boxctl backup <TAB>" "$(zsh_complete boxctl backup '')" "list create"
check "zsh: boxctl update apply f --<TAB> offers --skip-backup" \
	sh -c "printf '%s' \"\$1\" | grep -qw -- --skip-backup" _ "$(zsh_complete boxctl update apply f --)"

# ---- the default prefix -----------------------------------------------------

D2=$E2E_TMP/dest-local
make -s -C "$SOURCE_DIR" install BUILD="$B" PREFIX=/usr/local DESTDIR="$D2" >>"$E2E_TMP/install.log" 2>&1
equal "make install PREFIX=/usr/local succeeds" "$?" 0
check "... boxctl in /usr/local/bin, the config in /etc/boxd" \
	test -x "$D2/usr/local/bin/boxctl" -a -f "$D2/etc/boxd/boxd.conf"
check "... the unit in /usr/local/lib/systemd/system, starting the release" \
	grep -q '^ExecStart=/var/lib/boxd/current/bin/boxd ' "$D2/usr/local/lib/systemd/system/boxd.service"
done_testing
