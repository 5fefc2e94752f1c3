#!/bin/bash
# Prints the kernel release the module and the VM use: the one linux-headers-amd64 depends on
# (the "<ver>-amd64" release string). Falls back to the newest installed /usr/src/linux-headers-*-amd64.
set -euo pipefail
dep="$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null | grep -o 'linux-headers-[0-9][^ ,]*-amd64' | head -n1 || true)"
if [ -z "$dep" ]; then
  dep="$(apt-cache depends linux-headers-amd64 2>/dev/null | grep -o 'linux-headers-[0-9][^ ,]*-amd64' | head -n1 || true)"
fi
if [ -z "$dep" ]; then
  dep="$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n1 | xargs -r basename || true)"
fi
[ -n "$dep" ] || { echo "kver: cannot resolve the kernel version (is linux-headers-amd64 known to apt?)" >&2; exit 1; }
echo "${dep#linux-headers-}"
