#!/usr/bin/env bash
# Installs the Debian packages that Berth's build and tests use, idempotently: nothing runs
# when every package is already there, and apt-get update runs once before an install.
set -euo pipefail
packages=(
  build-essential libseccomp-dev zlib1g-dev  # the native shims (seccomp, compressed logs)
  busybox-static                   # test and example root filesystems
  runc crun podman buildah docker.io  # reference runtimes, engines and builders to compare with
  docker-registry apache2-utils    # local registry and its htpasswd files
  skopeo umoci                     # OCI layout interoperability
  openssh-server genisoimage       # machine test hosts, VirtualBox seed ISO checks
  iproute2 iptables nftables       # networking
  openssl procps psmisc util-linux # helpers the tests and the rigs call
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "berth: missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
  exit 1
fi
echo "berth: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
