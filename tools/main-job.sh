#!/usr/bin/env bash
# `npm start` until the engine exists: runs a busybox container through berth-runtime on a
# bundle made by @berth/tools/rootfs and prints its output. run.sh has built everything first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d /tmp/berth-start-XXXXXX)
trap 'rm -rf "$work"' EXIT
node --input-type=module -e "
  const { makeBusyboxBundle } = await import('$root/tools/dist/rootfs.js');
  await makeBusyboxBundle(process.argv[1], { hostname: 'berth-demo', args: ['sh', '-c', process.argv[2]] });
" "$work/bundle" 'echo "hello from $(hostname): I am pid $$ as $(id -un), seeing $(ls /proc | grep -c "^[0-9]") processes"; uname -sr'
"$root/packages/runtime/dist/native/berth-runtime" --root "$work/state" run --bundle "$work/bundle" "demo-$$"
