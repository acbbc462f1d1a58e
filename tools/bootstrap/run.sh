#!/usr/bin/env bash
# The one entry point behind `npm start`, `npm test`, `npm run build|lint|bench`: makes sure a
# Node.js >= 22, the Debian packages and the npm dependencies are there, then does the job.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
job=${1:-test}
shift || true

nodebin=$(bash tools/bootstrap/node.sh)
export PATH="$nodebin:$root/node_modules/.bin:$PATH"
# Native addons (node-pty) compile against the headers of the Node.js that runs them.
if [ "$nodebin" = "$root/.node/bin" ]; then
  export npm_config_nodedir
  npm_config_nodedir=$(cd -P "$root/.node/bin/.." && pwd)
fi
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false NX_SKIP_NX_CACHE=${NX_SKIP_NX_CACHE:-false}

[ "$job" = lint ] || bash tools/bootstrap/system-deps.sh
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

nx() { node node_modules/nx/dist/bin/nx.js "$@"; }
case "$job" in
  build) nx run-many -t build --outputStyle=stream ;;
  lint) nx run-many -t lint --outputStyle=stream ;;
  test) nx run-many -t build lint test --outputStyle=stream --parallel=2 "$@" ;;
  start)
    nx run-many -t build --outputStyle=stream
    bash tools/main-job.sh "$@"
    ;;
  bench)
    nx run-many -t build --outputStyle=stream
    node tools/dist/bench/main.js "$@"
    ;;
  *) echo "run.sh: unknown job $job (build, lint, test, start, bench)" >&2; exit 2 ;;
esac
