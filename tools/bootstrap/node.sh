#!/usr/bin/env bash
# Prints the bin directory of a Node.js >= 22.19 (undici 8's floor). Uses the host's node when it is new enough,
# otherwise fetches the official binary from the npm registry (node-<os>-<arch>@22) into
# .node/ at the repository root. Nothing is downloaded from anywhere but the npm registry.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
want=22
want_minor=19

# Prints 1 when the given node is at least $want.$want_minor.
new_enough() {
  "$1" -e "const [a, b] = process.versions.node.split('.').map(Number); console.log(a > $want || (a === $want && b >= $want_minor) ? 1 : 0)" 2>/dev/null || echo 0
}

if [ -x "$root/.node/bin/node" ] && [ "$(new_enough "$root/.node/bin/node")" = 1 ]; then
  echo "$root/.node/bin"; exit 0
fi
if command -v node >/dev/null 2>&1 && [ "$(new_enough node)" = 1 ]; then
  dirname "$(command -v node)"; exit 0
fi

case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) echo "berth: no Node.js >= $want and no npm package for $(uname -s); install Node.js $want" >&2; exit 1 ;; esac
case "$(uname -m)" in x86_64|amd64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) echo "berth: no Node.js >= $want package for $(uname -m)" >&2; exit 1 ;; esac
pkg="node-$os-$arch"

echo "berth: host Node.js is older than $want.$want_minor; fetching $pkg@$want from the npm registry into .node/" >&2
mkdir -p "$root/.node"
# The folder is self-contained: its own package.json keeps npm from walking up into the workspace.
[ -f "$root/.node/package.json" ] || echo '{"private":true}' > "$root/.node/package.json"
npm install --prefix "$root/.node" --no-save --no-package-lock --no-audit --no-fund --silent "$pkg@$want" >&2
ln -sfn "node_modules/$pkg/bin" "$root/.node/bin"
"$root/.node/bin/node" -v >&2
echo "$root/.node/bin"
