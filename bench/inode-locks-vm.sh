#!/bin/bash
# The inode locks' benchmark (issue 11, "Numbers"), inside one QEMU VM: test/vm/hooks-bench.sh
# booted by the one-VM harness (MXFS_VM_ONLY=hooks-bench; not part of `npm run test:kernel`).
# Prints the host, its load average before and after, and the "MXFS-PERF hooks ..." lines;
# docs/benchmarks.md "Inode locks" records them. If any step in the VM (or the build, or the
# boot) fails, it prints that one failure and the log's path, and no numbers.
#   npm run bench:inode-locks [-- [--icount] [--no-install]]   (bash bench/inode-locks-vm.sh ...)
# --icount: part 1 only (the file workload and the opens: the ratios the 1.2x target is about),
# in a one-vCPU VM whose clock counts instructions (QEMU `-icount shift=4,sleep=on`: 16 ns of
# guest time per guest instruction, idle time in real time). The host's load then no longer
# enters the guest's timings; what the guest itself runs (mxfsd, XFS's background work) still
# does. A count of work, not of a real CPU's time (no caches, no pipeline).
# Environment: MXFS_VM_WORK (default /tmp/mxfs-bench-vm), MXFS_VM_TIMEOUT (default 3600 s),
# MXFS_VM_MEM (default 3072 MiB: mxfsd holds the 100 000 locks of the cache part),
# MXFS_BENCH_CACHE (default 100000: the cache part's locks; under TCG each costs a daemon round
# trip of ~10-30 ms, so 100 000 take most of an hour on a loaded 2-core host).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export MXFS_VM_WORK="${MXFS_VM_WORK:-/tmp/mxfs-bench-vm}"
export MXFS_VM_TIMEOUT="${MXFS_VM_TIMEOUT:-3600}"
export MXFS_VM_MEM="${MXFS_VM_MEM:-3072}"
export MXFS_VM_ONLY=hooks-bench
CACHE="${MXFS_BENCH_CACHE:-100000}"
case "$CACHE" in ''|*[!0-9]*|0*) echo "inode-locks-vm: MXFS_BENCH_CACHE must be a positive number of locks, not '$CACHE'" >&2; exit 2 ;; esac
export MXFS_VM_APPEND="mxfs.bench_cache=$CACHE"
ARGS=()
for a in "$@"; do
  if [ "$a" = --icount ]; then
    export MXFS_VM_SMP=1 MXFS_VM_QEMU_ARGS="-icount shift=4,sleep=on"
    MXFS_VM_APPEND="$MXFS_VM_APPEND mxfs.bench_parts=1"
  else
    ARGS+=("$a")
  fi
done
mkdir -p "$MXFS_VM_WORK"
LOG="$MXFS_VM_WORK/bench.log"
echo "host: $(nproc) cpu ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(date -u +%FT%TZ)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)${MXFS_VM_QEMU_ARGS:+; QEMU $MXFS_VM_QEMU_ARGS, $MXFS_VM_SMP vCPU}"
rc=0
bash "$ROOT/test/vm/run-vm-tests.sh" ${ARGS[@]+"${ARGS[@]}"} > "$LOG" 2>&1 || rc=$?
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $rc != 0 ]; then
  # The benchmark's own failure line, else how the harness ended (timeout, build error, ...).
  WHAT=$(grep -a -m 1 '^MXFS-TEST FAIL' "$LOG" || grep -a '^run-vm-tests: \(TIMEOUT\|FAIL\)' "$LOG" | head -n 1 || tail -n 1 "$LOG")
  echo "inode-locks-vm: FAILED (exit $rc): ${WHAT:-see the log}; log: $LOG" >&2
  exit 1
fi
grep -a '^MXFS-VM booted\|^run-vm-tests: VM boot' "$LOG"
grep -a '^MXFS-PERF hooks ' "$LOG"
