#!/usr/bin/env bash
# run.sh BUILD STATE_DIR — start boxd in the foreground for `make run`.
set -euo pipefail
build=$1
state=$2
sock=$state/boxd.sock
cat <<MSG
boxd: starting in the foreground (state dir $state, SQLite store $state/boxd.db).
      In another terminal:
        export BOXD_SOCKET=$sock
        $build/boxctl status
        $build/boxctl lock hold app:demo --for 30s
        $build/boxctl task list
      Stop with Ctrl-C (running tasks keep going and are re-adopted at the next start).
MSG
exec "$build/boxd" --state-dir "$state" serve
