#!/usr/bin/env bash
# Installs the peers bench:peers measures MXFS against, from Debian: redis-server (Redis 7)
# and etcd-server (etcd 3.4). Idempotent. The packages' own services are not used: the
# benchmark starts its own instances on free loopback ports (a service the package may have
# started on 6379/2379 is left alone).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "bench/peers/install.sh: run as root to install ${need[*]}" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "redis-server: $(redis-server --version | grep -o 'v=[^ ]*')  etcd: $(etcd --version | sed -n 's/^etcd Version: //p')"
