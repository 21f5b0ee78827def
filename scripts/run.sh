#!/usr/bin/env bash
# run.sh BUILD STATE_DIR [CONFIG] — start boxd in the foreground for `make run`.
#
# The state dir may be relative (boxd makes it absolute). The container
# engine: [engine] socket in CONFIG, or BOXD_ENGINE_SOCKET, or
# DOCKER_HOST=unix://PATH, else boxd looks for Docker's and Podman's usual
# sockets. Updates applied to this daemon (`boxctl update apply`) unpack
# into STATE_DIR/install unless CONFIG or BOXD_INSTALL_ROOT says otherwise,
# never into the system's install root.
set -euo pipefail
build=$1
state=$2
config=${3:-}
args=(--state-dir "$state")
if [[ -n $config ]]; then
	[[ -r $config ]] || { echo "make run: cannot read CONFIG=$config" >&2; exit 2; }
	args+=(--config "$config")
	grep -qE '^[[:space:]]*install_root[[:space:]]*=' "$config" || export BOXD_INSTALL_ROOT=${BOXD_INSTALL_ROOT:-$state/install}
else
	export BOXD_INSTALL_ROOT=${BOXD_INSTALL_ROOT:-$state/install}
fi
mkdir -p "$state"
cat <<MSG
boxd: starting in the foreground (state dir $state${config:+, config $config}).
      In another terminal:
        export BOXD_SOCKET=$state/boxd.sock
        $build/boxctl status
        $build/boxctl lock hold app:demo --for 30s
        $build/boxctl task list
      Stop with Ctrl-C (running tasks keep going and are re-adopted at the next start).
MSG
exec "$build/boxd" "${args[@]}" serve
