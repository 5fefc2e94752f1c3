#!/bin/bash
# Kernel module + kernel bridge tests in a QEMU VM (TCG; KVM does not work on these hosts).
#   test/vm/run-vm-tests.sh [--no-install] [--daemon auto|driver|mxfsd] [--keep]
# Steps: install missing Debian packages, compile the TypeScript, build mxfs.ko against the
# headers linux-headers-amd64 resolves to, build an initramfs, boot the matching Debian
# kernel with it, and read the results from the serial console. Exit 0 only when the VM
# printed "MXFS-VM-RESULT PASS"; non-zero on FAIL, on a timeout, or on any build error.
# qemu is always killed on exit. Logs: $MXFS_VM_WORK (default /tmp/mxfs-vm)/serial.log.
# MXFS_VM_ONLY=volumes (or hooks) runs the kernel volume (or inode lock) tests alone (development;
# CI runs everything); MXFS_VM_ONLY=hooks-bench runs the inode locks' benchmark instead
# (bench/inode-locks-vm.sh; not part of the test run). MXFS_KO: boot another build of the module
# (test/vm/mutations.sh). MXFS_VM_MEM: the VM's memory in MiB (default 1536). MXFS_VM_APPEND:
# more kernel command line (the benchmark's mxfs.bench_cache=).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${MXFS_VM_WORK:-/tmp/mxfs-vm}"
TIMEOUT_S="${MXFS_VM_TIMEOUT:-1800}"
INSTALL=1
DAEMON=auto
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) INSTALL=0 ;;
    --daemon) DAEMON="$2"; shift ;;
    --keep) KEEP=1 ;;
    *) echo "usage: $0 [--no-install] [--daemon auto|driver|mxfsd] [--keep]" >&2; exit 2 ;;
  esac
  shift
done

mkdir -p "$WORK"
QEMU_PID=
cleanup() {
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill "$QEMU_PID" 2>/dev/null || true
    sleep 0.5
    kill -9 "$QEMU_PID" 2>/dev/null || true
  fi
  [ "$KEEP" = 1 ] || rm -f "$WORK/initramfs.cpio.gz" "$WORK/volume.raw"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T_START=$(date +%s.%N)
elapsed() { awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "$INSTALL" = 1 ]; then
  "$ROOT/test/vm/install-deps.sh"
fi
KVER="$("$ROOT/kernel/kver.sh")"
KERNEL_IMG="/boot/vmlinuz-${KVER}"
[ -r "$KERNEL_IMG" ] || { echo "run-vm-tests: $KERNEL_IMG missing (install linux-image-${KVER})" >&2; exit 1; }
echo "run-vm-tests: kernel ${KVER} [$(elapsed) s]"

(cd "$ROOT" && npx tsc -p . >"$WORK/tsc.log" 2>&1) || true   # emits even with errors elsewhere
for f in dist/src/cli/mxfsd.js dist/src/actors/kernel-bridge.js dist/test/vm/bridge-driver.js dist/test/vm/malformed-client.js \
  dist/src/volumes/kernel-driver.js dist/test/vm/volume-tests.js dist/test/vm/volume-daemon.js dist/test/vm/volume-io.js \
  dist/test/vm/hooks-probe.js; do
  [ -f "$ROOT/$f" ] || { echo "run-vm-tests: $f was not built; see $WORK/tsc.log" >&2; exit 1; }
done
if grep -E '^(src/ffi|src/actors/kernel-bridge|src/volumes/kernel-|test/vm)' "$WORK/tsc.log"; then
  echo "run-vm-tests: type errors in the kernel bridge files" >&2; exit 1
fi

# Which daemon runs in the VM:
#   mxfsd       dist/src/cli/mxfsd.js, the real daemon (default; what CI runs)
#   driver      test/vm/bridge-driver.js: the bridge alone on a fake lock client (debugging)
[ "$DAEMON" = auto ] && DAEMON=mxfsd
case "$DAEMON" in mxfsd|driver) ;; *) echo "run-vm-tests: unknown --daemon $DAEMON" >&2; exit 2 ;; esac
echo "run-vm-tests: daemon in the VM: $DAEMON [$(elapsed) s]"

T0=$(date +%s.%N)
"$ROOT/test/vm/build-module.sh" >/dev/null
echo "run-vm-tests: module built in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
T0=$(date +%s.%N)
# The volume tests' disk is virtio and holds XFS: init.sh loads these before the tests.
# The benchmark's file workload and memory hog are test/vm/inode-probe (static C: a Node
# process would drown the per-call costs it times); the shrinker test's memory hog too.
gcc -static -O2 -Wall -Wextra -Werror -o "$WORK/inode-probe" "$ROOT/test/vm/inode-probe.c"
EXTRA=(--add "$WORK/inode-probe:/usr/bin/inode-probe")
"$ROOT/test/vm/build-initramfs.sh" "$WORK/initramfs.cpio.gz" \
  --kmod virtio_pci --kmod virtio_blk --kmod crc32c_generic --kmod xfs "${EXTRA[@]}"
echo "run-vm-tests: initramfs built in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# The shared disk of the volume tests: a 64 MiB XFS made here, then 32 MiB for the raw-device
# writer and the benchmark. (mkfs.xfs refuses < 300 MiB unless TEST_DIR, TEST_DEV and
# QA_CHECK_FS are all set, as fstests does.)
VOLIMG="$WORK/volume.raw"
rm -f "$VOLIMG"
truncate -s 96M "$VOLIMG"
TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -d size=64m "$VOLIMG"

SERIAL="$WORK/serial.log"
: > "$SERIAL"
T0=$(date +%s.%N)
qemu-system-x86_64 \
  -accel tcg -cpu max -smp 2 -m "${MXFS_VM_MEM:-1536}" \
  -kernel "$KERNEL_IMG" -initrd "$WORK/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 mxfs.daemon=$DAEMON${MXFS_VM_ONLY:+ mxfs.only=$MXFS_VM_ONLY}${MXFS_VM_APPEND:+ $MXFS_VM_APPEND}" \
  -nographic -no-reboot -nic none \
  -drive "file=$VOLIMG,format=raw,if=none,id=vol0" -device virtio-blk-pci,drive=vol0,serial=mxfsvol0 \
  -serial "file:$SERIAL" -monitor none -display none </dev/null >"$WORK/qemu.out" 2>&1 &
QEMU_PID=$!

# Console lines as text: no carriage returns, no terminal escapes (SeaBIOS clears the screen).
plain() { tr -d '\r' | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[c78]//g'; }

RESULT=
DEADLINE=$(( $(date +%s) + TIMEOUT_S ))
SHOWN=0
while :; do
  # Echo new console lines as they arrive.
  LINES=$(wc -l < "$SERIAL")
  if [ "$LINES" -gt "$SHOWN" ]; then
    sed -n "$((SHOWN + 1)),${LINES}p" "$SERIAL" | plain
    SHOWN=$LINES
  fi
  if grep -q 'MXFS-VM-RESULT' "$SERIAL"; then RESULT=$(grep -a -o 'MXFS-VM-RESULT [A-Z]*' "$SERIAL" | head -n 1); fi
  if ! kill -0 "$QEMU_PID" 2>/dev/null; then break; fi
  if [ -n "$RESULT" ] && grep -q 'MXFS-VM done' "$SERIAL"; then sleep 1; fi
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    echo "run-vm-tests: TIMEOUT after ${TIMEOUT_S} s" >&2
    break
  fi
  sleep 0.5
done
LINES=$(wc -l < "$SERIAL")
[ "$LINES" -gt "$SHOWN" ] && sed -n "$((SHOWN + 1)),${LINES}p" "$SERIAL" | plain
VM_S=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

PASSES=$(grep -a -c '^MXFS-TEST PASS' "$SERIAL" || true)
FAILS=$(grep -a -c '^MXFS-TEST FAIL' "$SERIAL" || true)
echo "run-vm-tests: VM boot+tests ${VM_S} s, total $(elapsed) s; checks passed ${PASSES}, failed ${FAILS}"
# The shared disk after every fence and remount: XFS's own checker, read-only.
if [ -f "$VOLIMG" ]; then
  if REPAIR="$(xfs_repair -n "$VOLIMG" 2>&1)"; then
    echo "run-vm-tests: xfs_repair -n of the volume disk: clean"
  else
    echo "run-vm-tests: xfs_repair -n of the volume disk found problems:"; echo "$REPAIR" | tail -n 20
    FAILS=$((FAILS + 1))
  fi
fi
if [ "$RESULT" = "MXFS-VM-RESULT PASS" ] && [ "$FAILS" = 0 ]; then
  echo "run-vm-tests: PASS"
  exit 0
fi
echo "run-vm-tests: FAIL (${RESULT:-no result line}); serial log: $SERIAL" >&2
grep -a '^MXFS-TEST FAIL' "$SERIAL" >&2 || true
exit 1
