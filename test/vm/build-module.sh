#!/bin/bash
# Builds kernel/mxfs.ko against the Debian headers linux-headers-amd64 resolves to.
# Fails on any compiler warning (the kbuild file sets -Werror). Prints the .ko path.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
KVER="$("$ROOT/kernel/kver.sh")"
KDIR="/usr/src/linux-headers-${KVER}"
[ -d "$KDIR" ] || { echo "build-module: $KDIR missing; run test/vm/install-deps.sh" >&2; exit 1; }
LOG="$(mktemp)"
if ! make -C "$ROOT/kernel" KVER="$KVER" >"$LOG" 2>&1; then
  cat "$LOG" >&2; rm -f "$LOG"; exit 1
fi
if grep -E 'warning:' "$LOG" >&2; then
  echo "build-module: the module built with warnings" >&2; rm -f "$LOG"; exit 1
fi
rm -f "$LOG"
echo "$ROOT/kernel/mxfs.ko"
