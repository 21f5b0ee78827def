# shellcheck shell=bash
# common.sh — helpers shared by the offline test image builders (sourced).
#
# Images are built from host files only (no registry is reachable here): a
# root filesystem is assembled in a temp dir, tarred and `podman import`ed.
# Each image carries the label boxd.test.input-hash, a hash of everything it
# was built from; a build whose inputs hash to the label of the existing
# image is skipped, so a warm run costs one `podman image inspect`.
#
# The builders use whatever podman storage CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF point at (scripts/test-env.sh points them at its
# persistent cache under /var/tmp/boxd-podman).

hash_label=boxd.test.input-hash

# input_hash FILE... — one hash over the base names and contents of FILEs
# (base names: the same checkout reached by another path is the same input).
input_hash() {
	sha256sum -- "$@" | awk '{ n = split($2, p, "/"); print $1, p[n] }' | sha256sum | cut -d' ' -f1
}

# image_up_to_date TAG HASH — true when TAG exists and carries HASH.
image_up_to_date() {
	local have
	have=$(podman image inspect --format "{{index .Labels \"$hash_label\"}}" "$1" 2>/dev/null) || return 1
	[[ "$have" == "$2" ]]
}

# begin_rootfs TAG HASH NAME — the start of every builder: when TAG is up to
# date (image_up_to_date), print it and exit; else make a temp dir (removed
# on exit) and set $root to a fresh root filesystem in it that holds
# busybox (install_busybox).
begin_rootfs() {
	if image_up_to_date "$1" "$2"; then
		echo "$1"
		exit 0
	fi
	work=$(mktemp -d "/tmp/boxd-$3-image.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	root=$work/rootfs
	install_busybox "$root"
}

# loader_libs FILE — every library FILE loads, by the path the loader uses
# ("lib => path" and the bare loader line), one a line.
loader_libs() {
	ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
}

# copy_libs ROOT LIB... — copy each LIB to the same path under ROOT; -L: the
# file a symlink (e.g. libc.so.6) points to, under the name the loader asks
# for.
copy_libs() {
	local root=$1 lib
	shift
	for lib in "$@"; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# base_users ROOT — /etc/passwd and /etc/group with root and nobody only.
base_users() {
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$1/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
}

# import_rootfs DIR TAG HASH CHANGE... — import DIR as TAG with Dockerfile-style
# CHANGE instructions, then drop the image TAG pointed at before, if any.
import_rootfs() {
	local dir=$1 tag=$2 hash=$3
	shift 3
	local old new c args=()
	old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
	for c in "$@"; do
		args+=(--change "$c")
	done
	# Fixed owners and mtimes: the tarball depends on the inputs only.
	new=$(tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$dir" -c . |
		podman import --quiet "${args[@]}" --change "LABEL $hash_label=$hash" - "$tag")
	if [[ -n "$old" && "sha256:$old" != "$new" && "$old" != "$new" ]]; then
		podman rmi "$old" >/dev/null 2>&1 || true
	fi
}

# install_busybox ROOT — busybox-static at ROOT/bin/busybox plus one symlink
# per applet at its usual place (bin/sh, usr/bin/env, ...).
# `busybox --install -s` is not used: it links to the host's /usr/bin/busybox.
install_busybox() {
	local root=$1 bb applet
	bb=$(command -v busybox) || { echo "busybox not found (apt-get install busybox-static)" >&2; return 1; }
	if ! file_is_static "$bb"; then
		echo "$bb is not statically linked (install busybox-static)" >&2
		return 1
	fi
	install -D -m 0755 "$bb" "$root/bin/busybox"
	while read -r applet; do
		[[ "$applet" == bin/busybox || "$applet" == linuxrc ]] && continue
		mkdir -p "$root/$(dirname "$applet")"
		[[ -e "$root/$applet" || -L "$root/$applet" ]] || ln -s /bin/busybox "$root/$applet"
	done < <("$bb" --list-full)
}

# file_is_static FILE — statically linked (ldd finds no libraries).
file_is_static() {
	! LC_ALL=C ldd "$1" >/dev/null 2>&1
}
