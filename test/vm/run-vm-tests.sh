#!/bin/bash
# Kernel module + kernel bridge tests in a QEMU VM (TCG; KVM does not work on these hosts).
#   test/vm/run-vm-tests.sh [--no-install] [--daemon auto|driver|mxfsd] [--keep]
# Steps: install missing Debian packages, compile the TypeScript, build mxfs.ko against the
# headers linux-headers-amd64 resolves to, build an initramfs, boot the matching Debian
# kernel with it, and read the results from the serial console. Exit 0 only when the VM
# printed "MXFS-VM-RESULT PASS"; non-zero on FAIL, on a timeout, or on any build error.
# qemu is always killed on exit. Logs: $MXFS_VM_WORK (default /tmp/mxfs-vm)/serial.log.
# MXFS_VM_ONLY=volumes (or hooks, burst) runs the kernel volume (or inode lock, burst) tests alone (development;
# CI runs everything); MXFS_VM_ONLY=hooks-bench runs the inode locks' benchmark instead
# (bench/inode-locks-vm.sh; not part of the test run). MXFS_KO: boot another build of the module
# (test/vm/mutations.sh). MXFS_VM_MEM: the VM's memory in MiB (default 1536). MXFS_VM_APPEND:
# more kernel command line (the benchmark's mxfs.bench_cache=). MXFS_VM_QEMU_ARGS: more QEMU
# arguments, split on blanks; MXFS_VM_SMP: its vCPUs (default 2).
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
  [ "$KEEP" = 1 ] || rm -f "$WORK/initramfs.cpio.gz" "$WORK/volume.raw" "$WORK/hot.raw"
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
  dist/test/vm/hooks-probe.js dist/test/vm2/qmp.js; do
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
# The volume tests' disk is virtio and holds XFS: init.sh loads these before the tests
# (dm_mod: the fence fallback tests put the disk behind a device-mapper target; virtio_scsi and
# sd_mod, with the CRC algorithms sd_mod's T10 PI support looks up: the hot-plugged SCSI disk of
# the udev rule test). --udev and the rule: vm-tests.sh udev_claim. MXFS_VM_UDEV_RULE: another
# rule file, installed under its own name (how the test was seen to fail: docs/kernel.md).
UDEV_RULE="${MXFS_VM_UDEV_RULE:-$ROOT/test/vm/udev/61-mxfs.rules}"
# The benchmark's file workload and memory hog are test/vm/inode-probe (static C: a Node
# process would drown the per-call costs it times); the shrinker test's memory hog too.
gcc -static -O2 -Wall -Wextra -Werror -o "$WORK/inode-probe" "$ROOT/test/vm/inode-probe.c"
EXTRA=(--add "$WORK/inode-probe:/usr/bin/inode-probe")
"$ROOT/test/vm/build-initramfs.sh" "$WORK/initramfs.cpio.gz" \
  --kmod virtio_pci --kmod virtio_blk --kmod crc32c_generic --kmod xfs --kmod dm_mod \
  --kmod crct10dif_generic --kmod crc64_rocksoft_generic --kmod virtio_scsi --kmod sd_mod \
  --udev --add "$UDEV_RULE:/etc/udev/rules.d/$(basename "$UDEV_RULE")" ${EXTRA[@]+"${EXTRA[@]}"}
echo "run-vm-tests: initramfs built in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# The shared disk of the volume tests: a 64 MiB XFS made here, then 32 MiB for the raw-device
# writer and the benchmark. (mkfs.xfs refuses < 300 MiB unless TEST_DIR, TEST_DEV and
# QA_CHECK_FS are all set, as fstests does.)
VOLIMG="$WORK/volume.raw"
rm -f "$VOLIMG"
truncate -s 96M "$VOLIMG"
TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -d size=64m "$VOLIMG"

# The disk the udev rule test hot-plugs (a SCSI disk with the rule's WWN), with an XFS on it,
# so that a raw mount would succeed if nothing claimed it.
HOTIMG="$WORK/hot.raw"
rm -f "$HOTIMG"
truncate -s 64M "$HOTIMG"
TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f "$HOTIMG"
QMP="$WORK/qmp.sock"
rm -f "$QMP"

SERIAL="$WORK/serial.log"
: > "$SERIAL"
T0=$(date +%s.%N)
qemu-system-x86_64 \
  -accel tcg -cpu max -smp "${MXFS_VM_SMP:-2}" -m "${MXFS_VM_MEM:-1536}" \
  -kernel "$KERNEL_IMG" -initrd "$WORK/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 mxfs.daemon=$DAEMON${MXFS_VM_ONLY:+ mxfs.only=$MXFS_VM_ONLY}${MXFS_VM_APPEND:+ $MXFS_VM_APPEND}" \
  -nographic -no-reboot -nic none \
  -drive "file=$VOLIMG,format=raw,if=none,id=vol0" -device virtio-blk-pci,drive=vol0,serial=mxfsvol0 \
  -device virtio-scsi-pci,id=scsi0 -drive "file=$HOTIMG,format=raw,if=none,id=hot0" \
  -qmp "unix:$QMP,server=on,wait=off" ${MXFS_VM_QEMU_ARGS:-} \
  -serial "file:$SERIAL" -monitor none -display none </dev/null >"$WORK/qemu.out" 2>&1 &
QEMU_PID=$!

# Console lines as text: no carriage returns, no terminal escapes (SeaBIOS clears the screen).
plain() { tr -d '\r' | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[c78]//g'; }

RESULT=
TIMED_OUT=0
HOTPLUGGED=0
DEADLINE=$(( $(date +%s) + TIMEOUT_S ))
SHOWN=0
while :; do
  # Echo new console lines as they arrive.
  LINES=$(wc -l < "$SERIAL")
  if [ "$LINES" -gt "$SHOWN" ]; then
    sed -n "$((SHOWN + 1)),${LINES}p" "$SERIAL" | plain
    SHOWN=$LINES
  fi
  # The udev rule test waits for its disk: plugged in now (HMP's device_add through QMP: the
  # WWN is a 64-bit number, which JSON cannot carry exactly).
  if [ "$HOTPLUGGED" = 0 ] && grep -a -q '^MXFS-HOTPLUG ready' "$SERIAL"; then
    HOTPLUGGED=1
    node "$ROOT/dist/test/vm2/qmp.js" "$QMP" human-monitor-command \
      '{"command-line":"device_add scsi-hd,bus=scsi0.0,drive=hot0,id=hotdisk,wwn=0x5000c500a1b2c3d4"}' >"$WORK/hotplug.out" 2>&1 \
      || echo "run-vm-tests: device_add failed: $(cat "$WORK/hotplug.out")" >&2
  fi
  if grep -q 'MXFS-VM-RESULT' "$SERIAL"; then RESULT=$(grep -a -o 'MXFS-VM-RESULT [A-Z]*' "$SERIAL" | head -n 1); fi
  if ! kill -0 "$QEMU_PID" 2>/dev/null; then break; fi
  if [ -n "$RESULT" ] && grep -q 'MXFS-VM done' "$SERIAL"; then sleep 1; fi
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    echo "run-vm-tests: TIMEOUT after ${TIMEOUT_S} s" >&2
    TIMED_OUT=1
    break
  fi
  sleep 0.5
done
LINES=$(wc -l < "$SERIAL")
[ "$LINES" -gt "$SHOWN" ] && sed -n "$((SHOWN + 1)),${LINES}p" "$SERIAL" | plain
VM_S=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

PASSES=$(grep -a -c '^MXFS-TEST PASS' "$SERIAL" || true)
FAILS=$(grep -a -c '^MXFS-TEST FAIL' "$SERIAL" || true)
# The fence's last resort, fence_fallback=restart (vm-tests.sh fallback_restart, the run's last
# step, after the result line): a write held below the gate past the fence bound must make the
# module restart the machine. QEMU runs with -no-reboot: the restart ends it. Checked here: the
# VM armed the test, the console has the module's "restarting the machine" line, QEMU exited by
# itself, the VM never said it survived (it resumes the held write bound + 5 s after the
# trigger, and would say so), and the held write is not in the disk image.
# Seen to fail without the mechanism: test/vm/mutations.sh run no-fallback (docs/kernel.md).
if [ -z "${MXFS_VM_ONLY:-}" ] || [ "${MXFS_VM_ONLY}" = volumes ]; then
  ARMED=$(grep -a -m1 '^MXFS-FALLBACK armed' "$SERIAL" | plain || true)
  RESTART_LINE=$(grep -a -m1 'restarting the machine (fence_fallback=restart)' "$SERIAL" | plain || true)
  OTHER=$(grep -a -m1 '^MXFS-FALLBACK \(survived\|not armed\)' "$SERIAL" | plain || true)
  MARKER=$(echo "$ARMED" | sed -n 's/.* marker=\([^ ]*\).*/\1/p')
  OFFSET=$(echo "$ARMED" | sed -n 's/.* offset=\([0-9]*\).*/\1/p')
  BOUND=$(echo "$ARMED" | sed -n 's/.* bound_ms=\([0-9]*\).*/\1/p')
  ON_DISK=unknown
  if [ -n "$MARKER" ] && [ -n "$OFFSET" ]; then
    if dd if="$VOLIMG" bs=4096 skip=$((OFFSET / 4096)) count=1 2>/dev/null | grep -a -q "$MARKER"; then ON_DISK=yes; else ON_DISK=no; fi
  fi
  # Trigger -> restart in the guest's kernel clock (the printk timestamps of both lines).
  ts() { sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p' | head -n 1; }
  T_TRIG=$(grep -a -m1 'mxfs-test: fence trigger' "$SERIAL" | plain | ts)
  T_RST=$(echo "$RESTART_LINE" | ts)
  FENCE_LINE=$(grep -a 'mxfs: volume fb fenced' "$SERIAL" | tail -n 1 | plain || true)   # the log test's comes first
  TOOK=$( [ -n "$T_TRIG" ] && [ -n "$T_RST" ] && awk -v a="$T_TRIG" -v b="$T_RST" 'BEGIN { printf "%.0f", (b - a) * 1000 }' || echo '?')
  DETAIL="armed: $( [ -n "$ARMED" ] && echo "yes (bound ${BOUND} ms)" || echo no); ${OTHER:+$OTHER; }console: ${RESTART_LINE:-(no restarting line)}; ${FENCE_LINE:+$FENCE_LINE; }trigger -> restart ${TOOK} ms (guest clock); qemu $( [ "$TIMED_OUT" = 1 ] && echo 'killed at the timeout' || echo 'exited by itself' ); held write in the image: ${ON_DISK}"
  if [ -n "$ARMED" ] && [ -n "$RESTART_LINE" ] && [ -z "$OTHER" ] && [ "$TIMED_OUT" = 0 ] && [ "$ON_DISK" = no ]; then
    echo "MXFS-TEST PASS fence-fallback-restart: $DETAIL"; PASSES=$((PASSES + 1))
    echo "MXFS-PERF fence drain missed (fence_fallback=restart): trigger -> restart ${TOOK} ms (bound ${BOUND} ms)"
  else
    echo "MXFS-TEST FAIL fence-fallback-restart: $DETAIL"; FAILS=$((FAILS + 1))
  fi
fi
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
