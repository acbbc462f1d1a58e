#!/usr/bin/env bash
# `npm start`: builds the example app (examples/hello) with `engine build` and runs it with
# `engine run`, daemonless, as a user would. Its base is `FROM scratch` plus the static busybox of
# Debian's busybox-static, copied into the build context here, so nothing comes from a registry;
# the app needs no network either, so it is built and run without one and the job asks nothing of
# the host's networking. run.sh has built everything first. State goes where every engine command
# puts it: BERTH_ROOT and BERTH_RUNROOT (default /var/lib/berth and /run/berth).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
engine="$root/apps/engine/bin/engine.js"
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "main-job: $busybox not found: install Debian's busybox-static" >&2; exit 1; }
context=$(mktemp -d /tmp/berth-start-XXXXXX)
trap 'rm -rf "$context"' EXIT
cp -r "$root/examples/hello/." "$context/"
cp "$busybox" "$context/busybox"

echo "==> engine build --network none -t berth-hello examples/hello"
"$engine" build --network none -t berth-hello:latest "$context"
echo
echo "==> engine run --rm --network none berth-hello"
"$engine" run --rm --network none berth-hello:latest
