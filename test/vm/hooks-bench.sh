#!/bin/sh
# The inode locks' benchmark (issue 11, "Numbers"), in the one-VM harness: bench/inode-locks-vm.sh
# boots vm-tests.sh with mxfs.only=hooks-bench, which runs this instead of the tests. Not part of
# the test run. The real mxfsd (one node) and the module, on /dev/vda (a 64 MiB XFS). Prints
# "MXFS-PERF hooks <what> ..." lines; docs/benchmarks.md "Inode locks" records them. Everything
# is compared within this one run, as ratios:
#  1. three configurations on the same disk, interleaved, twice:
#       plain    XFS mounted on /dev/vda directly (the module not loaded)
#       stacked  XFS on /dev/mxfs/data with hooks=0 (the gated device, no inode locks)
#       mxfs     XFS on /dev/mxfs/data with the hooks (inode locks, cached)
#     a. the workload: inode-probe workload (N files x create+write 4 KiB, stat, open+read,
#        unlink in one directory), ROUNDS rounds, each round's daemon requests counted. Round 1
#        is cold for mxfs (every new inode's lock is asked of the daemon). The unlinked inodes'
#        locks stay cached, so a later round whose creates get those inode numbers back from
#        XFS finds them cached ("warm": what the 1.2x target is about); a round where XFS hands
#        out other numbers asks the daemon once per create ("new numbers"). Both are reported.
#     b. open+fstat+close of S files (open takes the inode lock; stat(2) alone is not hooked):
#        warm (inode and lock cached), then after drop_caches (the inode read from the disk
#        again and, on mxfs, its lock asked of the daemon: the shrinker gave it back), then warm
#        again. cold(mxfs) - cold(stacked) per file is an uncached inode lock at the system
#        call, warm(mxfs) - warm(stacked) a cached one; the daemon requests are counted.
#  2. lock cost in the kernel: debugfs gbench, COUNT inode locks taken and released uncached (a
#     LOCK_REQ round trip through mxfsd each), then again cached (a hit).
#  3. a cache of 100 000 inode locks (or mxfs.bench_cache=N; gbench keep, WRITERS at once, in
#     10 steps; lock objects without XFS inodes: a 64 MiB disk cannot hold 100 000 files): the
#     time per step, the kernel's memory for it (slab) and mxfsd's (RSS), the listing by
#     `mxfsctl locks --volume`, then the shrinker under real memory pressure (a process
#     touching most of the available memory), then drop_caches.
# The first step that goes wrong ends the benchmark with one "MXFS-TEST FAIL hooks-bench/..."
# line saying what (and the logs' tails); bench/inode-locks-vm.sh then prints no numbers. Each part
# that ran prints "MXFS-TEST PASS hooks-bench/<part>" (vm-tests.sh wants all 7).
T=/sys/kernel/debug/mxfs
MNT=/mnt/data
CONF=/tmp/bench.conf
PROBE=/usr/bin/inode-probe
N=200            # workload files per round
ROUNDS=8
S=300            # files of the stat part
COUNT=2000       # gbench locks
# The big cache: 100 000 unless the kernel command line says mxfs.bench_cache=N (MXFS_BENCH_CACHE
# of bench/inode-locks-vm.sh): a multiple of STEPS x WRITERS.
CACHE=$(sed -n 's/.*mxfs\.bench_cache=\([0-9]*\).*/\1/p' /proc/cmdline)
CACHE=${CACHE:-100000}
WRITERS=8
STEPS=10         # the fill's steps
# mxfsd's V8 heap: 100 000 locks take ~0.5 GiB of it; V8's default limit in this VM is a
# quarter of its memory.
HEAP_MB=2048
BP=0
DPID=
MON=
# The helpers shared with hooks-tests.sh (wait_for, ctl, stat_of, mem_kb, write_conf); this
# script's own pass and progress below replace the library's.
. /mxfs/hooks-lib.sh
pass() { echo "MXFS-TEST PASS hooks-bench/$1: $2"; BP=$((BP + 1)); }
die() {
  [ -n "$MON" ] && kill $MON 2>/dev/null
  echo "MXFS-TEST FAIL hooks-bench/$1: $2"
  echo "---- mxfsd log (tail)"; tail -n 15 /tmp/bench-mxfsd.log 2>/dev/null
  echo "---- dmesg (tail)"; dmesg | tail -n 15
  echo "MXFS-HOOKS-BENCH passes=$BP fails=1"
  exit 1
}
perf() { echo "MXFS-PERF hooks $*"; }
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$DPID/status 2>/dev/null; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
# number NAME VALUE: VALUE must be a non-negative integer (a probe's field, a counter).
number() { case "$2" in ''|*[!0-9]*) die "$1" "not a number: '$2'" ;; esac; }
daemon_alive() { [ -n "$DPID" ] && kill -0 $DPID 2>/dev/null || die "$1" "mxfsd (pid $DPID) is gone"; }
progress() { echo "hooks-bench: $* [$(now_ms) ms]"; }
# The kernel is whatever kernel/kver.sh resolved from linux-headers-amd64 at build time: say which.
perf "kernel $(uname -r)"

echo 0 > /proc/sys/vm/dirty_writeback_centisecs 2>/dev/null
mkdir -p /mnt/plain
# The kernel bridge is one client session of mxfsd: the kernel's cached locks count against
# max_locks_per_client, which must leave room for the 100 000 of part 3 and the workload's.
write_conf bench warn "[locking]
max_locks_per_client = 1000000"

# run_probe DIR CONFIG: the workload in DIR/w, one round per probe run so that each round's
# daemon requests are counted, then the open part in DIR/s. Appends "WORKLOAD round=.. ..
# requests=.." lines to /tmp/w.CONFIG and "OPEN step=.. us=.. requests=.." lines to /tmp/s.CONFIG.
run_probe() {
  mkdir -p "$1/w" "$1/s" || die "mkdir-$2" "mkdir in $1 failed"
  r=1
  while [ $r -le $ROUNDS ]; do
    RQ0=$(requests)
    $PROBE workload "$1/w" $N 1 > /tmp/w.round 2>&1
    grep -q "^WORKLOAD round=1 .* total_us=[0-9]*$" /tmp/w.round || die "workload-$2" "$(tail -n 2 /tmp/w.round)"
    echo "$(sed "s/round=1 /round=$r /" /tmp/w.round) requests=$(( $(requests) - RQ0 ))" >> /tmp/w.$2
    r=$((r + 1))
  done
  $PROBE files "$1/s" $S > /tmp/s.out 2>&1 || die "files-$2" "$(cat /tmp/s.out)"
  sync
  open_step "$1" $2 warm
  sync; echo 3 > /proc/sys/vm/drop_caches
  open_step "$1" $2 cold
  open_step "$1" $2 rewarm
  rm -rf "$1/w" "$1/s" || die "rm-$2" "rm -rf in $1 failed"
}
# The module's daemon requests (0 while it is not loaded: plain).
requests() { r_=$(stat_of requests 2>/dev/null); echo "${r_:-0}"; }
# open_step DIR CONFIG STEP: one open+fstat+close of the S files, after 3 s of rest, so that what
# mxfsd still does for the requests just made (and XFS for the files just written) is not timed
# as the hooks' cost (with --icount the VM has one vCPU).
open_step() {
  sleep 3
  RQ0=$(requests)
  $PROBE openall "$1/s" $S > /tmp/s.out 2>&1 || die "open-$2" "$(cat /tmp/s.out)"
  us=$(sed -n 's/^OPENALL n=[0-9]* us=\([0-9]*\)$/\1/p' /tmp/s.out); number "open-$2" "$us"
  echo "OPEN step=$3 us=$us requests=$(( $(requests) - RQ0 ))" >> /tmp/s.$2
}

plain_pass() {
  rmmod mxfs 2>/dev/null
  mount -t xfs /dev/vda /mnt/plain || die plain-mount "mount -t xfs /dev/vda failed"
  run_probe /mnt/plain plain
  umount /mnt/plain || die plain-umount "umount /mnt/plain failed"
}

# mxfs_up HOOKS: the module (hooks=HOOKS), mxfsd, the volume mounted through it.
mxfs_up() {
  rmmod mxfs 2>/dev/null
  insmod /lib/modules/mxfs.ko volumes=data=/dev/vda hooks=$1 lock_timeout_ms=120000 || die insmod "insmod hooks=$1 failed"
  node --max-old-space-size=$HEAP_MB /mxfs/dist/src/cli/mxfsd.js --config $CONF > /tmp/bench-mxfsd.log 2>&1 &
  DPID=$!
  wait_for 120 grep -q '^daemon=attached' $T/status || die daemon "mxfsd did not attach"
  ctl mount data --wait --timeout 120000 > /tmp/bench-mount.log 2>&1 || die mount "$(cat /tmp/bench-mount.log)"
  grep -q "^/dev/mxfs/data $MNT xfs" /proc/mounts || die mount "/dev/mxfs/data not mounted on $MNT"
}
mxfs_down() {
  ctl umount data > /tmp/bench-umount.log 2>&1 || die umount "$(cat /tmp/bench-umount.log)"
  kill -TERM $DPID 2>/dev/null; wait $DPID 2>/dev/null; DPID=
  rmmod mxfs || die rmmod "rmmod mxfs failed"
}
mxfs_pass() {
  mxfs_up $1
  if [ $1 = 1 ]; then grep -q '^installed=1' $T/hooks || die hooks "not installed: $(head -n 1 $T/hooks)"; fi
  P0=$(stat_of requests)
  run_probe $MNT $2
  perf "daemon-requests config=$2 pass=$3 requests=$(( $(stat_of requests) - P0 )) glock_hits=$(stat_of glock_hits) glock_misses=$(stat_of glock_misses) glock_new_inodes=$(stat_of glock_new_inodes)"
}

# mxfs.bench_parts=13 (say) runs only those parts (vm-tests.sh expects their passes: 2 for
# part 1, 1 for part 2, 4 for part 3).
PARTS=$(sed -n 's/.*mxfs\.bench_parts=\([0-9]*\).*/\1/p' /proc/cmdline); PARTS=${PARTS:-123}
part() { case "$PARTS" in *$1*) return 0 ;; esac; return 1; }
# ---- 1. workload and opens, interleaved
if part 1; then
  progress "1. workload ($N files x $ROUNDS rounds) and opens ($S files), plain / stacked / mxfs, twice"
  for p in 1 2; do
    plain_pass
    progress "pass $p plain done"
    mxfs_pass 0 stacked $p; mxfs_down
    progress "pass $p stacked done"
    mxfs_pass 1 mxfs $p
    progress "pass $p mxfs done"
    [ $p = 1 ] && mxfs_down
  done
  for c in plain stacked mxfs; do
    [ "$(grep -c round= /tmp/w.$c)" = $((2 * ROUNDS)) ] || die workload "$c: $(grep -c round= /tmp/w.$c) rounds of $((2 * ROUNDS))"
    sed "s/^/MXFS-PERF hooks workload config=$c /" /tmp/w.$c
    sed "s/^OPEN /MXFS-PERF hooks open config=$c files=$S /" /tmp/s.$c
  done
  # Medians over both passes. plain and stacked: rounds 2.. ("later"). mxfs's later rounds are of
  # two kinds: those where XFS gave the new files inode numbers whose locks are still cached (the
  # unlinked inodes' locks stay cached: at most N/20 daemon requests in the round, "warm") and
  # those where it gave new numbers (a LOCK_REQ per create, "new-numbers"). Round 1 is cold for all.
  median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%d\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
  field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
  later() { grep -v "round=1 " /tmp/w.$1; }
  WARM_MAX=$((N / 20))
  mxfs_kind() { later mxfs | awk -v max=$WARM_MAX -v kind=$1 '{ for (i = 1; i <= NF; i++) if ($i ~ /^requests=/) { split($i, kv, "="); if ((kind == "warm") == (kv[2] <= max)) print } }'; }
  NW=$(mxfs_kind warm | wc -l); NN=$(mxfs_kind new | wc -l)
  for f in total_us create_us stat_us read_us unlink_us; do
    P=$(later plain | field $f | median); ST=$(later stacked | field $f | median)
    MW=$(mxfs_kind warm | field $f | median); MN=$(mxfs_kind new | field $f | median)
    number workload "$P"; number workload "$ST"; [ "$P" -gt 0 ] && [ "$ST" -gt 0 ] || die workload "a zero time"
    perf "workload-later field=$f plain=$P stacked=$ST stacked/plain=$(ratio $ST $P)" \
      "mxfs_warm=${MW:-none} (${NW} rounds) mxfs_warm/plain=$([ -n "$MW" ] && ratio $MW $P || echo -) mxfs_warm/stacked=$([ -n "$MW" ] && ratio $MW $ST || echo -)" \
      "mxfs_new_numbers=${MN:-none} (${NN} rounds) mxfs_new_numbers/plain=$([ -n "$MN" ] && ratio $MN $P || echo -)"
  done
  P=$(grep "round=1 " /tmp/w.plain | field total_us | median); ST=$(grep "round=1 " /tmp/w.stacked | field total_us | median)
  M=$(grep "round=1 " /tmp/w.mxfs | field total_us | median)
  perf "workload-round1 field=total_us plain=$P stacked=$ST mxfs=$M mxfs/plain=$(ratio $M $P) mxfs/stacked=$(ratio $M $ST) mxfs_requests=$(grep "round=1 " /tmp/w.mxfs | field requests | tr '\n' ',')"
  perf "workload-mxfs-requests per round: $(field requests < /tmp/w.mxfs | tr '\n' ',') (a round creates $N files)"
  pass workload "$(grep -c round= /tmp/w.plain) plain, $(grep -c round= /tmp/w.stacked) stacked, $(grep -c round= /tmp/w.mxfs) mxfs rounds"
  sfield() { grep "step=$2 " /tmp/s.$1 | field $3; }
  for step in warm cold rewarm; do
    P=$(sfield plain $step us | median); ST=$(sfield stacked $step us | median); M=$(sfield mxfs $step us | median)
    number open "$P"; number open "$ST"; number open "$M"
    perf "open-$step files=$S plain_us=$P stacked_us=$ST mxfs_us=$M mxfs/plain=$(ratio $M $P) mxfs/stacked=$(ratio $M $ST) per_file_mxfs-stacked_us=$(awk -v a=$M -v b=$ST -v n=$S 'BEGIN { printf "%.1f", (a - b) / n }') mxfs_requests=$(sfield mxfs $step requests | tr '\n' ',')"
  done
  # On mxfs the cold opens must have asked the daemon for the locks (drop_caches evicted the
  # inodes and the shrinker gave their locks back), the warm ones not.
  CR=$(sfield mxfs cold requests | head -n 1); WR=$(sfield mxfs rewarm requests | head -n 1)
  number open "$CR"; number open "$WR"
  [ "$CR" -ge $S ] && [ "$WR" -lt 10 ] || die open "mxfs daemon requests: cold $CR (want >= $S), rewarm $WR (want ~0)"
  pass open "cold opens: $CR daemon requests for $S files; warm again: $WR"

else
  mxfs_up 1
fi
# ---- 2. the cost of one inode lock, uncached and cached (the volume is mounted, hooks on)
if part 2; then
  progress "2. gbench $COUNT"
  echo "gbench data 1000000000 $COUNT" > $T/test || die lock-cost "gbench: $(tail -n 1 $T/test)"
  L=$(grep " gbench data 1000000000 $COUNT " $T/test | tail -n 1)
  U=$(echo "$L" | sed -n 's/.*uncached_ns=\([0-9]*\).*/\1/p'); C=$(echo "$L" | sed -n 's/.* cached_ns=\([0-9]*\).*/\1/p')
  number lock-cost "$U"; number lock-cost "$C"
  perf "lock-cost count=$COUNT uncached_ns=$U cached_ns=$C uncached/cached=$(awk -v a=$U -v b=$C 'BEGIN { printf "%.0f", b ? a / b : 0 }')"
  pass lock-cost "$L"

fi
# ---- 3. 100 000 cached locks: memory, listing, shrinker (the last part: without it, done here)
if ! part 3; then
  mxfs_down
  echo "MXFS-HOOKS-BENCH passes=$BP fails=0"
  exit 0
fi
progress "3. a cache of $CACHE locks ($WRITERS writers)"
# The module's counters every 20 s while this part runs (it takes long under TCG).
( while :; do sleep 20; echo "hooks-bench: [$(now_ms) ms] $(grep -E '^(pending|held|requests|grants|releases|glocks|send_waits|send_failures)=' $T/status | tr '\n' ' ')mxfsd_rss_kb=$(rss_kb)"; done ) &
MON=$!
sync; echo 3 > /proc/sys/vm/drop_caches; sleep 2
G0=$(stat_of glocks); SL0=$(mem_kb Slab); SR0=$(mem_kb SReclaimable); R0=$(rss_kb); MA0=$(mem_kb MemAvailable)
# The daemon may still be taking part 2's releases in (the kernel sends them after gbench
# returns): wait until its lock count stops changing.
daemon_locks() { ctl status | sed -n 's/.* locks \([0-9]*\).*/\1/p'; }
# settled_daemon_locks: the daemon's lock count once two readings 10 s apart agree (at most 20 min).
settled_daemon_locks() {
  a=$(daemon_locks); b=-1; n=0
  while [ "$a" != "$b" ] && [ $n -lt 120 ]; do b=$a; sleep 10; a=$(daemon_locks); n=$((n + 1)); done
  echo "$a"
}
DL0=$(settled_daemon_locks)
number cache-fill "$DL0"
progress "the daemon holds $DL0 locks before the fill"
# Filled in STEPS steps of CACHE/STEPS locks (WRITERS writers each): the time per step shows
# whether a lock costs more as the cache (and the daemon's lock table) grows.
t0=$(now_ms); rm -f /tmp/gbench.err
STEP=$((CACHE / STEPS)); EACH=$((STEP / WRITERS)); k=0
[ $((EACH * WRITERS * STEPS)) = $CACHE ] || die cache-fill "mxfs.bench_cache=$CACHE is not a multiple of $((WRITERS * STEPS))"
while [ $k -lt $STEPS ]; do
  ts=$(now_ms); i=0; PIDS=
  while [ $i -lt $WRITERS ]; do
    first=$((2000000000 + k * STEP + i * EACH))
    (echo "gbench data $first $EACH keep" > $T/test || echo "writer $i: $(grep " gbench data $first " $T/test)" >> /tmp/gbench.err) &
    PIDS="$PIDS $!"
    i=$((i + 1))
  done
  wait $PIDS   # not a bare wait: mxfsd and the monitor are children of this shell too
  [ -f /tmp/gbench.err ] && die cache-fill "step $((k + 1)): $(cat /tmp/gbench.err)"
  daemon_alive cache-fill
  k=$((k + 1))
  perf "cache-fill-step step=$k locks=$(( $(stat_of glocks) - G0 )) step_ms=$(( $(now_ms) - ts )) per_lock_us=$(( ($(now_ms) - ts) * 1000 / STEP )) mxfsd_rss_kb=$(rss_kb) slab_kb=$(mem_kb Slab) send_waits=$(stat_of send_waits)"
done
FILL_MS=$(( $(now_ms) - t0 ))
[ -f /tmp/gbench.err ] && die cache-fill "$(cat /tmp/gbench.err)"
daemon_alive cache-fill
G1=$(stat_of glocks); SL1=$(mem_kb Slab); SR1=$(mem_kb SReclaimable); R1=$(rss_kb); MA1=$(mem_kb MemAvailable)
NL=$((G1 - G0))
[ $NL -ge $CACHE ] || die cache-fill "only $NL of $CACHE locks cached"
DL1=$(daemon_locks)
number cache-fill "$DL1"
perf "cache-fill locks=$NL writers=$WRITERS ms=$FILL_MS per_lock_us=$(( FILL_MS * 1000 / NL )) daemon_locks=$DL0->$DL1"
perf "cache-memory locks=$NL kernel_slab_kb=$((SL1 - SL0)) (reclaimable $((SR1 - SR0))) kernel_per_lock_bytes=$(( (SL1 - SL0) * 1024 / NL )) struct_mxfs_glock_bytes=$(stat_of glock_bytes) mxfsd_rss_kb=$R0->$R1 daemon_per_lock_bytes=$(( (R1 - R0) * 1024 / NL )) mem_available_kb=$MA0->$MA1"
pass cache-fill "$NL locks cached in $FILL_MS ms; the daemon holds $DL1"

t0=$(now_ms)
ctl --json locks --volume data > /tmp/listing.json 2>/tmp/listing.err || die listing "$(head -c 300 /tmp/listing.err)"
LIST_MS=$(( $(now_ms) - t0 ))
TOTAL=$(node -e 'const x = JSON.parse(require("fs").readFileSync("/tmp/listing.json", "utf8")); console.log(x.total, x.locks.length, x.omitted)')
number listing "${TOTAL%% *}"
[ "${TOTAL%% *}" -ge $CACHE ] || die listing "total/shown/omitted $TOTAL"
perf "listing mxfsctl_locks_volume ms=$LIST_MS total/shown/omitted=$TOTAL"
pass listing "mxfsctl --json locks --volume data: $TOTAL in $LIST_MS ms"

# Memory pressure: a process touching 256 MiB more than is available (the shrinker runs only
# once free memory falls below the low watermark, which a hog inside MemAvailable never
# reaches: docs/benchmarks.md "Inode locks"), stopping itself once the glock shrinker has
# demoted DEMOTES locks (it reads debugfs before each 4 MiB). mxfsd's memory is anonymous and
# there is no swap: the OOM killer may end the hog (oom_score_adj 1000), which is recorded,
# not a failure. The demoted locks go back to the daemon (an unlock each): wait until the
# count stops falling.
DEMOTES=1000
progress "shrinker under a memory hog"
S0=$(stat_of glock_shrink_scans); D0=$(stat_of glock_shrink_demotes); G2=$(stat_of glocks); R2=$(rss_kb)
HOG=$(( $(mem_kb MemAvailable) / 1024 + 256 ))
OOM0=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat)
t0=$(now_ms)
$PROBE hog $HOG $T/status glock_shrink_demotes $((D0 + DEMOTES)) > /tmp/hog.log 2>&1 || echo "hog exit $?" >> /tmp/hog.log
HOG_MS=$(( $(now_ms) - t0 ))
echo "oom kills $(( $(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat) - OOM0 ))" >> /tmp/hog.log
prev=-1
while [ "$(stat_of glocks)" != "$prev" ]; do prev=$(stat_of glocks); sleep 5; done
daemon_alive shrinker-pressure
G3=$(stat_of glocks); D=$(( $(stat_of glock_shrink_demotes) - D0 ))
perf "shrinker-pressure hog_mb=$HOG ($(tr '\n' ' ' < /tmp/hog.log)) locks=$G2->$G3 scans=$(( $(stat_of glock_shrink_scans) - S0 )) demotes=$D settle_ms=$(( $(now_ms) - t0 - HOG_MS )) mxfsd_rss_kb=$R2->$(rss_kb) mem_available_kb=$(mem_kb MemAvailable)"
[ $D -gt 0 ] && [ $G3 -lt $G2 ] || die shrinker-pressure "locks $G2 -> $G3, demotes $D under a $HOG MiB hog: $(cat /tmp/hog.log)"
pass shrinker-pressure "locks $G2 -> $G3 under a $HOG MiB hog"

progress "drop_caches"
t0=$(now_ms)
echo 2 > /proc/sys/vm/drop_caches
wait_for 1800 sh -c "[ \$(grep '^glocks=' $T/status | cut -d= -f2) -lt 10 ]"
G4=$(stat_of glocks); DROP_MS=$(( $(now_ms) - t0 ))
daemon_alive shrinker-drop-caches
DL4=$(settled_daemon_locks)
perf "shrinker-drop-caches locks=$G3->$G4 ms=$DROP_MS mxfsd_rss_kb=$(rss_kb) daemon_locks=$DL4 slab_kb=$(mem_kb Slab) (before the fill $SL0)"
[ $G4 -lt 10 ] || die shrinker-drop-caches "locks $G3 -> $G4 after ${DROP_MS} ms"
[ "$DL4" -le $((DL0 + 10)) ] || die shrinker-drop-caches "the daemon still holds $DL4 locks (before the fill: $DL0)"
pass shrinker-drop-caches "locks $G3 -> $G4, the daemon's $DL1 -> $DL4"
# Bursts (the fill, the demotes) fill the daemon's netlink receive buffer: the module's sends
# wait for it to drain (send_waits); none may be lost.
perf "netlink-sends send_waits=$(stat_of send_waits) send_failures=$(stat_of send_failures) requests=$(stat_of requests) releases=$(stat_of releases)"
[ "$(stat_of send_failures)" = 0 ] || die netlink-sends "$(stat_of send_failures) messages to the daemon lost"

kill $MON 2>/dev/null
mxfs_down
echo "MXFS-HOOKS-BENCH passes=$BP fails=0"
