#!/bin/sh
# install-post.sh CONF_SRC CONF_DST INSTALL_ROOT VERSION BINDIR — the steps of
# `meson install` (make install, the Debian package build) that depend on
# what the target already holds. DESTDIR, if set, prefixes every path.
#  - CONF_DST is installed only when there is none: an operator's edits stay.
#  - INSTALL_ROOT/current points at releases/VERSION, the release just
#    installed: a fresh symlink renamed over it, as an update does. (The
#    Debian package leaves this to its postinst, which never moves
#    `current` back to an older release.)
#  - INSTALL_ROOT is mode 0700: root's binaries, and by default the state dir.
#  - BINDIR/boxd -> INSTALL_ROOT/current/bin/boxd (absolute: another
#    top-level directory).
set -eu
conf_src=$1 conf_dst=${DESTDIR:-}$2 root=${DESTDIR:-}$3 version=$4 bindir=${DESTDIR:-}$5
if [ ! -e "$conf_dst" ]; then
	install -D -m 0644 "$conf_src" "$conf_dst"
fi
mkdir -p "$root"
chmod 0700 "$root"
ln -sfn "releases/$version" "$root/.current.tmp.$$"
mv -T "$root/.current.tmp.$$" "$root/current"
mkdir -p "$bindir"
ln -sfn "$3/current/bin/boxd" "$bindir/boxd"
