# shellcheck shell=bash
# installed.sh — run a command as if a tree installed into ROOT (by
# `make install DESTDIR=ROOT` or `dpkg --root=ROOT`) were installed on this
# machine, without touching the machine (sourced by t0830, t0860):
#
#	in_installed_root ROOT CMD...
#	in_installed_root_exec ROOT CMD...   (the same, replacing this shell:
#	                                      `(in_installed_root_exec R D &)`
#	                                      gives CMD's own pid in $!)
#
# CMD runs in a private mount namespace where /var/lib and /etc are
# overlays (this machine's files below, an empty upper dir in E2E_TMP on
# top) and ROOT/var/lib/boxd and ROOT/etc/boxd are bind-mounted at
# /var/lib/boxd and /etc/boxd, and /run is an empty tmpfs (no systemd, no
# other daemon's sockets). So the unit's own command line,
# `/var/lib/boxd/current/bin/boxd --config /etc/boxd/boxd.conf serve`, runs
# the installed release with the installed config, and what it writes
# there lands in ROOT. The namespace and its mounts end with CMD's last
# process.

in_installed_root() { (in_installed_root_exec "$@"); }

in_installed_root_exec() {
	local root=$1 ov
	shift
	ov=$(mktemp -d "$E2E_TMP/overlay.XXXXXX") || return 1
	mkdir -p "$ov"/{lib,etc}/{upper,work}
	# unshare without --fork and bash's exec keep one pid down to CMD.
	exec unshare -m bash -c '
		set -e
		root=$1 ov=$2
		shift 2
		mount --make-rprivate /
		mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$ov/lib/upper,workdir=$ov/lib/work" /var/lib
		mount -t overlay overlay -o "lowerdir=/etc,upperdir=$ov/etc/upper,workdir=$ov/etc/work" /etc
		mkdir -p /var/lib/boxd /etc/boxd "$root/var/lib/boxd" "$root/etc/boxd"
		mount --bind "$root/var/lib/boxd" /var/lib/boxd
		mount --bind "$root/etc/boxd" /etc/boxd
		mount -t tmpfs boxd-test-run /run
		exec "$@"
	' in_installed_root "$root" "$ov" "$@"
}
