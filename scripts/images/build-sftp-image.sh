#!/usr/bin/env bash
# build-sftp-image.sh [TAG] — the sftp service image, built offline from the
# host's openssh-server: /usr/sbin/sshd and the libraries ldd lists, a
# busybox-static shell for the entrypoint, host keys made at build time.
# Skips the build when TAG already exists with the same inputs.
# Default TAG: localhost/boxd/sftp:latest. Prints the tag.
#
# The container (see the entrypoint below):
#   - serves sftp only (internal-sftp, no shell, no forwarding) to the user
#     `boxd`, by public key only, chrooted to /mnt: clients see /appsdata,
#     /volumes and /custom, which boxd bind-mounts under /mnt.
#   - env SFTP_AUTHORIZED_KEYS: authorized_keys content, written at start to
#     /etc/boxd-sftp/authorized_keys (or bind-mount that file instead).
#   - env SFTP_PORT (default 22): the port sshd listens on, so that the
#     container can run with host networking.
#   - env SFTP_UID / SFTP_GID (default 0/0): the ids the sftp user works as.
#     uid 0 by default because the user manages every app's files, whatever
#     uid the app writes them with.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/images/common.sh
source "$here/common.sh"

tag=${1:-localhost/boxd/sftp:latest}
sshd=/usr/sbin/sshd
[[ -x $sshd ]] || { echo "build-sftp-image: $sshd missing (apt-get install openssh-server)" >&2; exit 1; }
bb=$(command -v busybox)

mapfile -t libs < <(loader_libs "$sshd")
hash=$(input_hash "$0" "$here/common.sh" "$bb" "$sshd" "${libs[@]}")

begin_rootfs "$tag" "$hash" sftp
install -D -m 0755 "$sshd" "$root/usr/sbin/sshd"
copy_libs "$root" "${libs[@]}"
mkdir -p "$root"/{dev,proc,sys,run,var/log,root}
install -d -m 1777 "$root/tmp"
# sshd's privilege separation dir (Debian's build uses /run/sshd); made
# again by the entrypoint in case /run is a fresh tmpfs.
install -d -m 0755 "$root/run/sshd"
# The chroot: sshd requires every component of ChrootDirectory to be
# root-owned and not group/world writable.
install -d -m 0755 "$root/mnt" "$root/mnt/appsdata" "$root/mnt/volumes" "$root/mnt/custom"
install -d -m 0755 "$root/etc/ssh" "$root/etc/boxd-sftp"
: > "$root/etc/boxd-sftp/authorized_keys"
chmod 0644 "$root/etc/boxd-sftp/authorized_keys"

# Users: `sshd` is the unprivileged privsep user. `boxd` is rewritten by the
# entrypoint when SFTP_UID/SFTP_GID are set. glibc reads these files itself
# (nss "files" is built into libc).
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
boxd:x:0:0:boxd sftp:/:/bin/sh
sshd:x:100:65534:sshd privsep:/run/sshd:/bin/false
nobody:x:65534:65534:nobody:/:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
boxd:x:1000:
nogroup:x:65534:
GROUP
# "*" = no password (not "!", which sshd without PAM treats as a locked
# account and refuses even for public keys).
cat > "$root/etc/shadow" <<'SHADOW'
root:*:19000:0:99999:7:::
boxd:*:19000:0:99999:7:::
sshd:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
SHADOW
chmod 0600 "$root/etc/shadow"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' > "$root/etc/nsswitch.conf"

ssh-keygen -q -t ed25519 -N '' -C boxd-sftp -f "$root/etc/ssh/ssh_host_ed25519_key"
ssh-keygen -q -t ecdsa -N '' -C boxd-sftp -f "$root/etc/ssh/ssh_host_ecdsa_key"

cat > "$root/etc/ssh/sshd_config" <<'SSHD'
# boxd sftp service: sftp only, public keys only, chrooted to /mnt.
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PidFile /run/sshd.pid
UsePAM no
UseDNS no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# boxd may be uid 0 (see SFTP_UID); keys only, and ForceCommand below.
PermitRootLogin prohibit-password
AllowUsers boxd
AuthorizedKeysFile /etc/boxd-sftp/authorized_keys
StrictModes yes
ChrootDirectory /mnt
Subsystem sftp internal-sftp
ForceCommand internal-sftp
AllowTcpForwarding no
AllowStreamLocalForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PermitTTY no
PermitUserEnvironment no
PrintMotd no
LogLevel INFO
SSHD

cat > "$root/entrypoint.sh" <<'ENTRY'
#!/bin/sh
# boxd sftp entrypoint: apply the env, then run sshd in the foreground
# (logs to stderr, i.e. the container log).
set -eu
uid=${SFTP_UID:-0}
gid=${SFTP_GID:-0}
case "$uid$gid" in *[!0-9]*) echo "entrypoint: SFTP_UID/SFTP_GID must be numbers" >&2; exit 1 ;; esac
sed -i "s|^boxd:[^:]*:[^:]*:[^:]*:|boxd:x:$uid:$gid:|" /etc/passwd
if [ -n "${SFTP_AUTHORIZED_KEYS:-}" ]; then
	umask 022
	printf '%s\n' "$SFTP_AUTHORIZED_KEYS" > /etc/boxd-sftp/authorized_keys
fi
mkdir -p /run/sshd
chmod 0755 /run/sshd
# sshd re-executes itself, so it needs its absolute path.
exec /usr/sbin/sshd -D -e -p "${SFTP_PORT:-22}"
ENTRY
chmod 0755 "$root/entrypoint.sh"

import_rootfs "$root" "$tag" "$hash" \
	'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
	'WORKDIR /' \
	'EXPOSE 22' \
	'ENTRYPOINT ["/entrypoint.sh"]'
echo "$tag"
