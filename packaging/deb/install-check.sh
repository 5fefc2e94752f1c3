#!/usr/bin/env bash
# CI check of the Debian packages on this machine (root): build them (npm run package:deb),
# lintian, install with dpkg -i, use what got installed — mxfsd --version, the unit under
# systemd-analyze verify (with an application unit ordered after it, as docs/deploy.md says), the
# tmpfiles directories, mxfsctl keygen, a standalone mxfsd from /usr/bin taking a lock,
# mxfs-cluster from /usr/bin — and the DKMS package building the module for the Debian
# kernel whose headers are installed; then purge both, leaving the machine as it was.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
T="$(mktemp -d "${TMPDIR:-/tmp}/mxfs-debcheck.XXXXXX")"
OUT="$T/deb"
VERSION="$(node -p "require('$ROOT/package.json').version")"
DAEMON=
cleanup() {
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null || true
  dpkg --purge mxfs-dkms mxfs >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
step() { echo "-- $*"; }

for tool in dpkg-deb lintian systemd-analyze dkms; do
  command -v "$tool" >/dev/null || { echo "install-check: $tool missing (apt-get install lintian systemd dkms)" >&2; exit 1; }
done
if dpkg -s mxfs >/dev/null 2>&1 || dpkg -s mxfs-dkms >/dev/null 2>&1; then
  echo "install-check: mxfs is already installed here; not touching it" >&2; exit 1
fi

step "build"
MXFS_DEB_OUT="$OUT" bash "$ROOT/packaging/deb/build.sh"
MAIN="$(ls "$OUT"/mxfs_*.deb)"; DKMS="$(ls "$OUT"/mxfs-dkms_*.deb)"

step "lintian (errors and warnings fail)"
lintian --fail-on error,warning "$MAIN" "$DKMS"

step "dpkg -i"
dpkg -i "$MAIN" >/dev/null
[ "$(mxfsd --version)" = "mxfsd $VERSION" ] || { echo "mxfsd --version: $(mxfsd --version)" >&2; exit 1; }
echo "mxfsd --version: $(cd / && mxfsd --version)"

step "systemd-analyze verify"
mkdir -p "$T/units"
cat > "$T/units/mxfs-check-app.service" <<EOF
[Unit]
Description=an application on a shared volume, as docs/deploy.md shows
Requires=mxfsd.service
After=mxfsd.service
[Service]
ExecStartPre=/usr/bin/mxfsctl mount data --wait
ExecStart=/bin/true
EOF
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify /lib/systemd/system/mxfsd.service "$T/units/mxfs-check-app.service"
# mxfsd's volume mounts must be seen by the whole host: no private mount namespace.
if grep -Eq '^(PrivateTmp|PrivateMounts|ProtectSystem|ProtectHome|ReadOnlyPaths|InaccessiblePaths|TemporaryFileSystem)=' /lib/systemd/system/mxfsd.service; then
  echo "mxfsd.service puts mxfsd in a private mount namespace: its volume mounts would be invisible" >&2; exit 1
fi
for d in /run/mxfs /var/lib/mxfs /var/log/mxfs; do [ -d "$d" ] || { echo "tmpfiles: $d missing" >&2; exit 1; }; done
[ "$(stat -c %a /var/lib/mxfs)" = 700 ] || { echo "/var/lib/mxfs is not 0700" >&2; exit 1; }

step "installed binaries at work"
mxfsctl keygen --out "$T/cluster.key" 2>/dev/null
[ "$(stat -c %a "$T/cluster.key")" = 600 ]
cat > "$T/mxfs.conf" <<EOF
[node]
id = 1
socket = $T/mxfsd.sock
state_dir = $T/state
kernel = off
[logging]
stderr = true
EOF
mxfsd --config "$T/mxfs.conf" --check-config
mxfsd --config "$T/mxfs.conf" 2>"$T/mxfsd.err" &
DAEMON=$!
for _ in $(seq 1 200); do [ -S "$T/mxfsd.sock" ] && break; sleep 0.1; done
mxfsctl --socket "$T/mxfsd.sock" lock ci-check EX -- sh -c 'echo "lock held, token $MXFS_TOKEN"'
mxfsctl --socket "$T/mxfsd.sock" status | head -1
kill -TERM "$DAEMON"; wait "$DAEMON"; DAEMON=
(cd / && mxfs-cluster up --nodes 2 --dir "$T/cluster" --lease-ms 1500 && mxfs-cluster down --dir "$T/cluster")

step "mxfs-dkms: dpkg -i, then the module built by DKMS"
dpkg -i "$DKMS" >/dev/null 2>&1 || { echo "dpkg -i mxfs-dkms failed" >&2; exit 1; }
KVER="$("$ROOT/kernel/kver.sh")"
if [ -d "/usr/src/linux-headers-$KVER" ]; then
  dkms status -m mxfs -v "$VERSION" -k "$KVER" | grep -q installed || dkms install -m mxfs -v "$VERSION" -k "$KVER"
  BUILT="$(modinfo -F version "/lib/modules/$KVER/updates/dkms/mxfs.ko"* 2>&1 || true)"
  [ "$BUILT" = "$VERSION" ] || { echo "mxfs.ko built by DKMS reports version '$BUILT', the package is $VERSION (kernel/Makefile reads it from the DKMS tree's VERSION)" >&2; exit 1; }
  echo "mxfs.ko $VERSION built by DKMS for $KVER"
else
  echo "no headers for $KVER: DKMS build not checked" >&2; exit 1
fi

step "purge"
dpkg --purge mxfs-dkms mxfs >/dev/null
[ ! -e /usr/lib/mxfs ] && [ ! -e /usr/src/mxfs-"$VERSION" ] && [ ! -e /usr/bin/mxfsd ]
echo "Debian packages: built, lintian-clean, installed, used and purged"
