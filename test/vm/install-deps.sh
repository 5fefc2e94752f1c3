#!/bin/bash
# Installs (idempotently) the Debian packages the kernel module build and the VM tests need:
# headers and the matching kernel image (version resolved from linux-headers-amd64, never
# hard-coded), QEMU (TCG), busybox-static, xfsprogs, libnl, cpio, iproute2 (genl), dmsetup (the
# fence fallback tests) and udev (systemd-udevd, scsi_id and its rules: the udev rule test); and those
# the Debian package checks need (packaging/deb/install-check.sh): lintian, dkms, systemd
# (systemd-analyze).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local missing=()
  for p in "$@"; do
    st="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [ "$st" = 'install ok installed' ] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
      apt-get update
      apt-get install -y --no-install-recommends "${missing[@]}"
    fi
  fi
}

# Make sure the package lists exist (fresh containers have none).
POLICY="$(apt-cache policy linux-headers-amd64 2>/dev/null || true)"
if ! grep -q 'Candidate: [0-9]' <<<"$POLICY"; then
  apt-get update
fi

apt_install linux-headers-amd64 make gcc libc6-dev
KVER="$("$(dirname "$0")/../../kernel/kver.sh")"
apt_install "linux-image-${KVER}" qemu-system-x86 busybox-static xfsprogs \
  libnl-3-200 libnl-genl-3-200 cpio iproute2 gzip dmsetup udev
apt_install lintian dkms systemd binutils
echo "install-deps: ok (kernel ${KVER})"
