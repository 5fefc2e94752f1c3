#!/bin/bash
# Two-VM tests: two QEMU VMs (TCG) share one raw disk and a network link, each runs the real
# mxfsd (node 1 = VM A, node 2 = VM B, a 2-node cluster with B as tiebreaker) and the mxfs
# module; the host orchestrates faults (power loss, link cut, signals inside a VM).
#   test/vm2/run-vm2-tests.sh [--no-install] [--keep] [--only NAME]...
# --only NAME  run only that test (repeatable)
# --keep       keep the initramfs and disk images in the work dir
# Builds once (tsc, mxfs.ko, the static writer, an initramfs with virtio/XFS modules), then for
# every test: a fresh XFS disk (mkfs on the host), a fresh pair of VMs, the scenario (a file in
# tests/ defining `scenario` and optionally `after_vms`, host checks once the VMs are gone),
# both VMs stopped. Each check prints "MXFS-TEST PASS|FAIL <test>/<check>: <detail>"; exit 0
# only if every test passed. Bounded: MXFS_VM2_TEST_TIMEOUT (480 s) per test, qemu always
# killed on exit. Work dir: MXFS_VM2_WORK (default /tmp/mxfs-vm2), one directory per test
# with both consoles (a.console, b.console) and the daemons' logs of failed tests.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/test/vm2"
WORK="${MXFS_VM2_WORK:-/tmp/mxfs-vm2}"
TEST_TIMEOUT="${MXFS_VM2_TEST_TIMEOUT:-480}"
# The cluster tests (command-driver volume, raw disk), issue 10's kernel volume tests
# (driver = kernel: the gated device, the kernel lease and fence; helpers in volumes.sh), then
# issue 11's inode-lock tests (another node takes the locks a node's kernel caches).
ALL=(cluster-lock shared-disk power-loss partition daemon-stop gate owner-killed partition-fence daemon-death daemon-paused inode-locks inode-ops)
INSTALL=1
KEEP=0
ONLY=()
usage() { echo "usage: $0 [--no-install] [--keep] [--only NAME]..." >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) INSTALL=0 ;;
    --keep) KEEP=1 ;;
    --only) [ $# -ge 2 ] || usage; ONLY+=("$2"); shift ;;
    *) usage ;;
  esac
  shift
done

scenario_file() {
  if [ -f "$HERE/tests/$1.sh" ]; then echo "$HERE/tests/$1.sh"; else return 1; fi
}
if [ ${#ONLY[@]} -gt 0 ]; then
  TESTS=("${ONLY[@]}")
else
  TESTS=("${ALL[@]}")
fi
for t in "${TESTS[@]}"; do scenario_file "$t" >/dev/null || { echo "run-vm2-tests: no test '$t' (known: ${ALL[*]})" >&2; exit 2; }; done

mkdir -p "$WORK"
RESULTS="$WORK/results.log"
: > "$RESULTS"
export ROOT WORK RESULTS

# Every qemu this run started is killed on exit, whatever happens.
cleanup() {
  local f p
  for f in "$WORK"/*/a.pid "$WORK"/*/b.pid; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    kill -9 "$p" 2>/dev/null || true
    rm -f "$f"
  done
  if [ "$KEEP" != 1 ]; then rm -f "$WORK/initramfs.cpio.gz" "$WORK"/*/disk.raw "$WORK"/*/witness.raw; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# kill_tree PID: PID and its descendants (a timed-out scenario's waits), by id.
kill_tree() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$c"; done
  kill -9 "$1" 2>/dev/null || true
}

T_START=$(date +%s%N)
elapsed_s() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# ---- build, once -------------------------------------------------------------------------
[ "$INSTALL" = 1 ] && "$ROOT/test/vm/install-deps.sh"
KVER="$("$ROOT/kernel/kver.sh")"
KERNEL_IMG="/boot/vmlinuz-${KVER}"
[ -r "$KERNEL_IMG" ] || { echo "run-vm2-tests: $KERNEL_IMG missing (install linux-image-${KVER})" >&2; exit 1; }
(cd "$ROOT" && npx tsc -p . >"$WORK/tsc.log" 2>&1) || true   # emits even with errors elsewhere
for f in dist/src/cli/mxfsd.js dist/src/cli/mxfsctl.js dist/test/vm2/cluster-watch.js dist/test/vm2/qmp.js; do
  [ -f "$ROOT/$f" ] || { echo "run-vm2-tests: $f was not built; see $WORK/tsc.log" >&2; exit 1; }
done
if grep -E '^test/vm2' "$WORK/tsc.log"; then echo "run-vm2-tests: type errors in test/vm2" >&2; exit 1; fi
"$ROOT/test/vm/build-module.sh" >/dev/null
gcc -static -O2 -Wall -Wextra -Werror -o "$WORK/mxfs-writer" "$HERE/mxfs-writer.c"
gcc -static -O2 -Wall -Wextra -Werror -o "$WORK/inode-probe" "$ROOT/test/vm/inode-probe.c"
# A fresh cluster key per run, mode 0600 in the image (mxfsd warns about a readable key).
head -c 32 /dev/urandom | base64 > "$WORK/cluster.key"
chmod 600 "$WORK/cluster.key"
"$ROOT/test/vm/build-initramfs.sh" "$WORK/initramfs.cpio.gz" \
  --kmod virtio_pci --kmod virtio_blk --kmod virtio_net --kmod crc32c_generic --kmod xfs \
  --add "$HERE/agent.sh:/mxfs/vm2/agent.sh" --add "$HERE/vmlib.sh:/mxfs/vm2/vmlib.sh" \
  --add "$HERE/node1.conf:/mxfs/vm2/node1.conf" --add "$HERE/node2.conf:/mxfs/vm2/node2.conf" \
  --add "$WORK/cluster.key:/mxfs/vm2/cluster.key" --add "$WORK/mxfs-writer:/usr/bin/mxfs-writer" \
  --add "$WORK/inode-probe:/usr/bin/inode-probe" --add "$HERE/inode-vmlib.sh:/mxfs/vm2/inode-vmlib.sh"
INITRD="$WORK/initramfs.cpio.gz"
BUILD_S=$(elapsed_s "$T_START")
echo "run-vm2-tests: kernel $KVER; built in ${BUILD_S} s; tests: ${TESTS[*]}"
export KERNEL_IMG INITRD

# ---- tests -------------------------------------------------------------------------------
# shellcheck source=lib.sh
. "$HERE/lib.sh"
declare -A TEST_S TEST_OK
# postmortem: the daemons' logs and the module's state of the VMs still running, for a failed
# test ($TD/a.mxfsd.log, b.mxfsd.log).
postmortem() {
  local r
  for r in a b; do
    vm_alive "$r" || continue
    vm_do "$r" 60 'tail -n 300 /tmp/mxfsd.log; dmesg | tail -n 40; for f in status volumes hooks glocks; do echo "--- debugfs $f"; cat /sys/kernel/debug/mxfs/$f 2>&1 | head -n 60; done
      for f in /tmp/bg/*.log; do [ -f "$f" ] && { echo "--- $f (rc $(cat "${f%.log}.rc" 2>/dev/null || echo running))"; tail -n 20 "$f"; }; done
      echo "--- mxfsctl locks"; timeout 10 node /mxfs/dist/src/cli/mxfsctl.js --config "$CONF" locks --json 2>&1 | head -c 4000'
    printf '%s\n' "$VM_OUT" > "$TD/$r.mxfsd.log"
  done
}
for t in "${TESTS[@]}"; do
  TD="$WORK/$t"
  rm -rf "$TD"; mkdir -p "$TD"
  RUN_ID=$(( (RANDOM << 30) | (RANDOM << 15) | RANDOM ))
  export TD RUN_ID
  file=$(scenario_file "$t")
  echo "==== $t ($(basename "$(dirname "$file")")/$(basename "$file"))"
  t0=$(date +%s%N)
  fails0=$(grep -c '^MXFS-TEST FAIL' "$RESULTS" || true)
  passes0=$(grep -c '^MXFS-TEST PASS' "$RESULTS" || true)
  (
    set +eu   # a scenario goes on after a failed step: its checks say what failed
    # shellcheck source=/dev/null
    . "$file"
    VOLUME_DRIVER=${MXFS_VM2_VOLUME_DRIVER:-$VOLUME_DRIVER}
    if ! vm2_up "$t"; then fail "$t/boot" "the VMs did not come up (see $TD/*.console)"; exit 1; fi
    scenario
  ) &
  spid=$!
  deadline=$(( $(date +%s) + TEST_TIMEOUT ))
  saved=0
  while kill -0 "$spid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail "$t/timeout" "the scenario did not finish within ${TEST_TIMEOUT} s (MXFS_VM2_TEST_TIMEOUT)"
      postmortem; saved=1   # before the kill: the VMs are the scenario's children
      kill_tree "$spid"
      break
    fi
    sleep 0.5
  done
  wait "$spid" 2>/dev/null || true
  failed_now=$(( $(grep -c '^MXFS-TEST FAIL' "$RESULTS" || true) - fails0 ))
  [ "$failed_now" != 0 ] && [ "$saved" = 0 ] && postmortem
  vm2_down
  (
    set +eu
    # shellcheck source=/dev/null
    . "$file"
    if declare -F after_vms >/dev/null; then after_vms; fi
  ) || true
  fails=$(( $(grep -c '^MXFS-TEST FAIL' "$RESULTS" || true) - fails0 ))
  passes=$(( $(grep -c '^MXFS-TEST PASS' "$RESULTS" || true) - passes0 ))
  TEST_S[$t]=$(elapsed_s "$t0")
  if [ "$fails" = 0 ] && [ "$passes" -gt 0 ]; then TEST_OK[$t]=PASS; else TEST_OK[$t]=FAIL; fi
  echo "==== $t: ${TEST_OK[$t]} ($passes checks passed, $fails failed) in ${TEST_S[$t]} s; consoles: $TD/a.console $TD/b.console"
done

# ---- summary -----------------------------------------------------------------------------
PASSES=$(grep -c '^MXFS-TEST PASS' "$RESULTS" || true)
FAILS=$(grep -c '^MXFS-TEST FAIL' "$RESULTS" || true)
NPASS=0
echo "run-vm2-tests: summary (build ${BUILD_S} s)"
for t in "${TESTS[@]}"; do
  echo "  ${TEST_OK[$t]} $t ${TEST_S[$t]} s"
  [ "${TEST_OK[$t]}" = PASS ] && NPASS=$((NPASS + 1))
done
echo "run-vm2-tests: tests passed ${NPASS}/${#TESTS[@]}; checks passed ${PASSES}, failed ${FAILS}; total $(elapsed_s "$T_START") s"
if [ "$NPASS" = "${#TESTS[@]}" ] && [ "$FAILS" = 0 ]; then
  echo "run-vm2-tests: PASS"
  exit 0
fi
echo "run-vm2-tests: FAIL" >&2
grep '^MXFS-TEST FAIL' "$RESULTS" >&2 || true
exit 1
