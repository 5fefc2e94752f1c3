#!/bin/sh
# Inode locks in one VM (vm-tests.sh runs this after the volume tests; mxfs.only=hooks runs it
# alone): the real mxfsd with a kernel volume "data" on /dev/vda, mounted through
# `mxfsctl mount`, the XFS hooks and the lock cache of the module. The "other node" is a
# second client of the same DLM: `mxfsctl lock --lockspace mxfs-inodes data:<ino> EX`, which
# makes the daemon send the kernel a blocking callback exactly as a remote request would (the
# two-VM test does it from another VM). Prints "MXFS-TEST PASS|FAIL hooks/<check>: ...".
#
# How each check fails without its mechanism (test/vm/mutations.sh builds such a module; which
# of them were run, and what they showed: docs/kernel.md "Mutation checks"):
#   bast-writeback      no go_sync: the new marker is not on the disk when the other holder runs
#   bast-invalidate     no go_inval: pages stay cached (the glock line keeps pages > 0)
#   cache-hits          a glock released after each operation: every cat is a daemon request
#   reader-waits        no hook on read: the read does not wait for the other holder
#   killable            an uninterruptible wait: the killed reader stays until the holder ends
#   lock-order          a demote path taking i_rwsem: the truncate (holding i_rwsem) and the
#                       demote wait for each other until lock_timeout_ms: truncate fails
#   fence-eio           waiters not woken by the fence: the reader waits until its timeout
#   shrinker            a scan that gives nothing back: the 200 locks stay cached and held
#   shrinker-pressure   the same (no-shrinker): reclaim asks, nothing is demoted, the hog ends
#                       in the OOM killer
#   send-retry          a send tried once (no-send-retry): the releases sent while the daemon's
#                       receive buffer is full are lost (send_failures, the DLM keeps them),
#                       the opens' requests too (EIO)
T=/sys/kernel/debug/mxfs
CONF=/tmp/hooks.conf
MNT=/mnt/data
PROBE="node /mxfs/dist/test/vm/hooks-probe.js"
DEV=/dev/mxfs/data
. /mxfs/hooks-lib.sh

rmmod mxfs 2>/dev/null
insmod /lib/modules/mxfs.ko volumes=data=/dev/vda lock_timeout_ms=60000 timer_slack_ms=100 drain_timeout_ms=3000 || {
  fail insmod "insmod with volumes=data=/dev/vda failed"; echo "MXFS-HOOKS-TESTS passes=$HP fails=$HF"; exit 1; }
# Dirty pages stay dirty until something writes them back (the flusher would race the
# write-back check otherwise).
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 360000 > /proc/sys/vm/dirty_expire_centisecs
write_conf hooks info
node /mxfs/dist/src/cli/mxfsd.js --config $CONF > /tmp/hooks-mxfsd.log 2>&1 &
DPID=$!
wait_for 60 grep -q '^daemon=attached' $T/status || fail daemon "mxfsd did not attach: $(tail -n 5 /tmp/hooks-mxfsd.log)"
OUT=$(ctl mount data --wait --timeout 60000 2>&1); rc=$?
check mount "mxfsctl mount data: rc=$rc $OUT; $(grep " $MNT " /proc/mounts)" sh -c "[ $rc = 0 ] && grep -q '^/dev/mxfs/data $MNT xfs' /proc/mounts"
check hooks-installed "$(head -n 1 $T/hooks)" grep -q '^installed=1' $T/hooks
GAP=$(lock_gap)

# 1. Cache hits: after the first access, repeated opens and reads make no daemon request.
echo hello > $MNT/f
INO=$(stat -c %i $MNT/f)
cat $MNT/f > /dev/null
R0=$(stat_of requests); H0=$(stat_of glock_hits)
i=0; while [ $i -lt 50 ]; do cat $MNT/f > /dev/null; i=$((i + 1)); done
R1=$(stat_of requests); H1=$(stat_of glock_hits)
check cache-hits "50 x cat: daemon requests $R0->$R1, cache hits $H0->$H1; $(gl_line $INO)" \
  sh -c "[ $R1 = $R0 ] && [ $((H1 - H0)) -ge 100 ]"

# 2. A blocking callback writes back and invalidates before the other holder is granted. The
#    file is written and synced once (its blocks allocated), then overwritten in place: the
#    new marker is only in dirty pages until something writes them back.
$PROBE fill $MNT/g MXFSMARKA 1024 > /dev/null
sync
$PROBE fill $MNT/g MXFSMARKC 1024 > /dev/null
G=$(stat -c %i $MNT/g)
BEFORE=$($PROBE find $DEV MXFSMARKC)
MODE=$(gl_field $G mode); PAGES=$(gl_field $G pages)
S0=$(stat_of glock_syncs); I0=$(stat_of glock_invals)
OUT=$(ctl lock --lockspace mxfs-inodes "data:$G" EX -- $PROBE find $DEV MXFSMARKC 2>&1); rc=$?
OFF=$(echo "$OUT" | sed -n 's/^FOUND //p')
GL=$(gl_line $G)
check bast-writeback "cached $MODE with $PAGES pages, on disk before: $BEFORE; the other holder (rc=$rc) saw: $OUT; syncs $S0->$(stat_of glock_syncs)" \
  sh -c "[ '$MODE' = EX ] && [ '$PAGES' -gt 0 ] && [ '$BEFORE' = ABSENT ] && [ $rc = 0 ] && [ -n '$OFF' ]"
# Given up to NL, an unused glock is freed: no line, or one in NL without pages.
check bast-invalidate "after the callback: ${GL:-(lock no longer cached)}; invals $I0->$(stat_of glock_invals)" \
  sh -c "[ '$(gl_field $G pages)' = '' -o '$(gl_field $G pages)' = 0 ] && [ '$(gl_field $G mode)' = '' -o '$(gl_field $G mode)' = NL ] && [ $(stat_of glock_invals) -gt $I0 ]"

# 3. While the other holder has EX, a read waits; the holder writes a new marker to the disk
#    where the file's data is; released, the read goes on and reads it from the disk.
cat $MNT/g > /dev/null   # cached again (PR), with pages
rm -f /tmp/h1 /tmp/r1 /tmp/read1.rc
ctl lock --lockspace mxfs-inodes "data:$G" EX -- sh -c "$PROBE overwrite $DEV $OFF MXFSMARKB > /tmp/h1; while [ ! -e /tmp/r1 ]; do usleep 100000; done" > /tmp/holder1.log 2>&1 &
HOLDER=$!
wait_for 60 test -s /tmp/h1
(grep -c MXFSMARKB $MNT/g > /tmp/read1; echo $? > /tmp/read1.rc) &
wait_for 30 sh -c "[ \"\$(grep '^volume=data ino=$G ' $T/glocks | sed -n 's/.* waiters=\([0-9]*\).*/\1/p')\" = 1 ]"
W=$(gl_field $G waiters); DONE_EARLY=$([ -e /tmp/read1.rc ] && echo yes || echo no)
touch /tmp/r1
wait $HOLDER
wait_for 30 test -e /tmp/read1.rc
check reader-waits "holder wrote: $(cat /tmp/h1); reader waiting=$W finished-before-release=$DONE_EARLY; then read $(cat /tmp/read1) blocks of the new marker (rc $(cat /tmp/read1.rc))" \
  sh -c "[ '$W' = 1 ] && [ $DONE_EARLY = no ] && [ \"\$(cat /tmp/read1)\" -ge 1 ]"

# 4. Killable: a reader waiting for the lock goes away on SIGKILL at once.
rm -f /tmp/h2 /tmp/r2
ctl lock --lockspace mxfs-inodes "data:$G" EX -- sh -c "touch /tmp/h2; while [ ! -e /tmp/r2 ]; do usleep 100000; done" > /tmp/holder2.log 2>&1 &
HOLDER=$!
wait_for 60 test -e /tmp/h2
K0=$(stat_of glock_interrupted)
cat $MNT/g > /dev/null &
READER=$!
wait_for 30 sh -c "[ \"\$(grep '^volume=data ino=$G ' $T/glocks | sed -n 's/.* waiters=\([0-9]*\).*/\1/p')\" = 1 ]"
W=$(gl_field $G waiters)
kill -9 $READER
wait_for 5 sh -c "! kill -0 $READER 2>/dev/null"; gone=$?
check killable "reader waiting=$W, after SIGKILL gone=$([ $gone = 0 ] && echo yes || echo no), waiters now $(gl_field $G waiters), interrupted $K0->$(stat_of glock_interrupted)" \
  sh -c "[ '$W' = 1 ] && [ $gone = 0 ] && [ '$(gl_field $G waiters)' = 0 ] && [ $(stat_of glock_interrupted) -gt $K0 ]"
touch /tmp/r2; wait $HOLDER

# 5. Lock ordering: a demote waits for a local holder (ghold); meanwhile a truncate waits for
#    the lock holding the inode's i_rwsem, and an append waits holding sb_start_write. The
#    demote must complete without either lock: once the holder drops, the other node gets
#    the lock, then both operations run.
echo "ghold data $G EX" > $T/test || fail lock-order-setup "ghold: $(tail -n 1 $T/test)"
rm -f /tmp/b3
ctl lock --lockspace mxfs-inodes "data:$G" EX -- touch /tmp/b3 > /tmp/holder3.log 2>&1 &
HOLDER=$!
wait_for 30 sh -c "grep '^volume=data ino=$G ' $T/glocks | grep -q 'demote=NL'"
D=$(gl_field $G demote)
(truncate -s 4096 $MNT/g; echo $? > /tmp/trunc.rc) &
(echo more >> $MNT/g; echo $? > /tmp/append.rc) &
wait_for 30 sh -c "[ \"\$(grep '^volume=data ino=$G ' $T/glocks | sed -n 's/.* waiters=\([0-9]*\).*/\1/p')\" = 2 ]"
W=$(gl_field $G waiters)
echo "gdrop data $G" > $T/test
wait $HOLDER; hrc=$?
wait_for 30 sh -c 'test -e /tmp/trunc.rc && test -e /tmp/append.rc'
check lock-order "demote pending=$D with waiters=$W (truncate in setattr, append in write); after the holder dropped: other node rc=$hrc ran=$([ -e /tmp/b3 ] && echo yes), truncate rc=$(cat /tmp/trunc.rc 2>/dev/null), append rc=$(cat /tmp/append.rc 2>/dev/null)" \
  sh -c "[ '$D' = NL ] && [ '$W' = 2 ] && [ $hrc = 0 ] && [ -e /tmp/b3 ] && [ \"\$(cat /tmp/trunc.rc)\" = 0 ] && [ \"\$(cat /tmp/append.rc)\" = 0 ]"

# 6. The other entry points on the volume: each operation works and went through its hook.
mkdir -p $MNT/bin && cp /bin/busybox $MNT/bin/busybox && $MNT/bin/busybox true; rc1=$?
ls $MNT > /dev/null && mkdir $MNT/d && ln -s f $MNT/d/s && ln $MNT/f $MNT/d/hard && mknod $MNT/d/fifo p && mv $MNT/d/hard $MNT/d/moved \
  && rm $MNT/d/moved $MNT/d/s $MNT/d/fifo && rmdir $MNT/d; rc2=$?
node -e 'const fs = require("fs"); const fd = fs.openSync(process.argv[1], 0o20000000 | 0o200000 | 2, 0o600); fs.writeSync(fd, "t"); fs.fsyncSync(fd); fs.closeSync(fd);' $MNT; rc3=$?
MISSING=
for h in xfs_vn_mkdir xfs_vn_symlink xfs_vn_link xfs_vn_mknod xfs_vn_rename xfs_vn_unlink xfs_vn_tmpfile xfs_file_fsync xfs_filemap_fault xfs_dir_open xfs_vn_create xfs_vn_setattr; do
  [ "$(hook_calls $h)" -gt 0 ] || MISSING="$MISSING $h"
done
check entry-points "exec from the volume rc=$rc1, mkdir/symlink/link/mknod/rename/unlink/rmdir rc=$rc2, O_TMPFILE+fsync rc=$rc3; hooks never called:${MISSING:- none}" \
  sh -c "[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ $rc3 = 0 ] && [ -z '$MISSING' ]"

# 7a. The shrinker under real memory pressure (no drop_caches). A file written (its lock
#    cached EX, dirty pages), then 300 idle locks through the test hook (gbench ... keep: inode
#    numbers no file has, 4 writers; few enough that their releases fit the daemon's receive
#    buffer: a burst of 1009 under memory pressure once cost the kernel lease on the loaded
#    machine before the daemon's requests had a socket of their own; burst-tests.sh checks
#    bursts now). A process touches more anonymous memory than
#    MemAvailable (no swap: reclaim can take only page cache and slab, so it goes deep and
#    calls the shrinkers) until the shrinker has demoted 128 locks, then it is stopped (or the
#    OOM killer ends it first: its oom_score_adj is 1000). The file's lock, the oldest on the
#    LRU, is given back: off the cache, and gone from the DLM once the daemon has taken the
#    releases in; reading the file takes a new lock and reads what was written.
echo pressure-marker > $MNT/p
PI=$(stat -c %i $MNT/p)
rm -f /tmp/gbench-p.err; PIDS=
for k in 0 1 2 3; do
  (echo "gbench data $((4000100000 + k * 75)) 75 keep" > $T/test || echo "writer $k: $(tail -n 1 $T/test)" >> /tmp/gbench-p.err) &
  PIDS="$PIDS $!"
done
wait $PIDS   # not a bare wait: mxfsd is a child of this shell too
G0=$(stat_of glocks); SC0=$(stat_of glock_shrink_counts); SS0=$(stat_of glock_shrink_scans); SD0=$(stat_of glock_shrink_demotes)
PM0=$(gl_field $PI mode)
KS0=$(vm_of pgscan_kswapd); DS0=$(vm_of pgscan_direct); SL0=$(vm_of slabs_scanned); OOM0=$(vm_of oom_kill)
LOW=$(awk '$1 == "low" { s += $2 } END { print s * 4 }' /proc/zoneinfo)
MA0=$(mem_kb MemAvailable); MF0=$(mem_kb MemFree); SLAB0=$(mem_kb Slab); DL0=$(dlm_locks)
RSS0=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$DPID/status)
HOG=$(( MA0 / 1024 + 256 ))
progress "shrinker-pressure: $G0 locks cached, a hog of $HOG MiB (MemAvailable $MA0 kB)"
# The hog stops itself once the shrinker has demoted 128 (it reads debugfs before each 4 MiB).
/usr/bin/inode-probe hog $HOG $T/status glock_shrink_demotes $((SD0 + 128)) > /tmp/hog.log 2>&1 &
HOGPID=$!
MINFREE=$MF0; n=0
while kill -0 $HOGPID 2>/dev/null && [ $n -lt 3000 ]; do
  f=$(mem_kb MemFree); [ "$f" -lt "$MINFREE" ] && MINFREE=$f
  usleep 100000; n=$((n + 1))
done
kill -9 $HOGPID 2>/dev/null
wait $HOGPID; HRC=$?
HOGEND="exit $HRC: $(cat /tmp/hog.log | tr '\n' ' ')"
[ $(( $(vm_of oom_kill) - OOM0 )) -gt 0 ] && HOGEND="$HOGEND; OOM kills $(( $(vm_of oom_kill) - OOM0 ))"
# The demotes run in the lock cache's workqueue: wait until the file's lock has left.
wait_for 60 sh -c "! grep '^volume=data ino=$PI ' $T/glocks | grep -q 'mode=\(PR\|EX\)'"
G1=$(stat_of glocks); SD=$(( $(stat_of glock_shrink_demotes) - SD0 )); PM1=$(gl_field $PI mode)
RECLAIM="MemAvailable $MA0 kB, hog $HOG MiB ($HOGEND), MemFree min $MINFREE kB (low watermarks $LOW kB); kswapd scanned $(( $(vm_of pgscan_kswapd) - KS0 )) pages, direct $(( $(vm_of pgscan_direct) - DS0 )), slab objects $(( $(vm_of slabs_scanned) - SL0 ))"
echo "MXFS-PERF shrinker-pressure $RECLAIM; glock shrinker counts $(( $(stat_of glock_shrink_counts) - SC0 )) scans $(( $(stat_of glock_shrink_scans) - SS0 )) demotes $SD; cached $G0 -> $G1"
check shrinker-pressure "$RECLAIM; shrinker counts +$(( $(stat_of glock_shrink_counts) - SC0 )), scans +$(( $(stat_of glock_shrink_scans) - SS0 )), demotes +$SD; cached $G0 -> $G1; the file's lock ${PM0:-?} -> ${PM1:-gone}" \
  sh -c "[ ! -s /tmp/gbench-p.err ] && [ $G0 -ge 300 ] && [ '$PM0' = EX ] && [ $(stat_of glock_shrink_scans) -gt $SS0 ] && [ $SD -ge 128 ] && [ $G1 -le $((G0 - 128)) ] && [ '$PM1' != EX ] && [ '$PM1' != PR ]"
# The daemon saw the releases: its lock count comes back to the kernel's held locks + the gap
# measured after the mount, and the file's resource has no lock in the DLM (the resource itself may stay, with its LVB).
GAP1=$(settle_gap $GAP)
echo "MXFS-PERF shrinker-pressure-after cached $G0 -> $(stat_of glocks), daemon locks $DL0 -> $(dlm_locks), Slab $SLAB0 -> $(mem_kb Slab) kB, mxfsd RSS $RSS0 -> $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$DPID/status) kB, MemAvailable $MA0 -> $(mem_kb MemAvailable) kB, send_waits $(stat_of send_waits) send_failures $(stat_of send_failures)"
PDLM=$(ctl locks --lockspace mxfs-inodes --resource "data:$PI" 2>&1)
# Released, the resource may stay (its LVB kept) but with no lock in any queue.
PGONE=$(echo "$PDLM" | grep -c '^  \(Granted\|Conversion\|Waiting\)')
PSEEN=$(echo "$PDLM" | grep -c "^Resource mxfs-inodes/data:$PI \\|^no locks")
check shrinker-pressure-daemon "daemon locks - kernel held: $GAP after the mount, $GAP1 now; mxfsctl locks data:$PI: $(echo "$PDLM" | head -n 3 | tr '\n' ' ')" \
  sh -c "[ '$GAP1' = '$GAP' ] && [ $PGONE = 0 ] && [ $PSEEN = 1 ]"
# A later access takes the lock again (a daemon request) and reads what was written.
RQ0=$(stat_of requests)
PC=$(cat $MNT/p 2>&1)
PDLM=$(ctl locks --lockspace mxfs-inodes --resource "data:$PI" 2>&1 | grep -A1 Granted | tail -n 1)
PHELD=$(echo "$PDLM" | grep -c ' PR '); PCOK=0; [ "$PC" = pressure-marker ] && PCOK=1
check shrinker-pressure-retake "cat: '$PC'; requests $RQ0 -> $(stat_of requests); $(gl_line $PI | cut -d' ' -f2-6); DLM granted: $PDLM" \
  sh -c "[ $PCOK = 1 ] && [ $(stat_of requests) -gt $RQ0 ] && [ '$(gl_field $PI mode)' = PR ] && [ $PHELD = 1 ]"

# 7. The shrinker gives idle cached locks back when reclaim runs it: 200 locks cached through
#    the test hook (gbench ... keep: inode numbers no file has), then drop_caches, which runs
#    every shrinker with GFP_KERNEL as reclaim does: the cache empties, and the DLM sees the
#    locks released (the daemon's lock count falls back).
L0=$(dlm_locks)
echo "gbench data 4000000000 200 keep" > $T/test || fail shrinker-setup "gbench: $(tail -n 1 $T/test)"
G1=$(stat_of glocks); L1=$(dlm_locks); SD0=$(stat_of glock_shrink_demotes)
echo 2 > /proc/sys/vm/drop_caches
wait_for 120 sh -c "[ \$(grep '^glocks=' $T/status | cut -d= -f2) -lt 10 ]"
G2=$(stat_of glocks)
# Each look at the daemon starts a Node process (seconds under TCG): a look every 2 s, at most
# 60; the daemon takes each LOCK_RELEASE in turn (tens of ms each under a loaded TCG). Only
# when the kernel gave its locks up: otherwise the check has failed already.
i=0; L2=$(dlm_locks)
while [ "$G2" -lt 10 ] && [ "${L2:-999999}" -gt "$L0" ] && [ $i -lt 60 ]; do sleep 2; L2=$(dlm_locks); i=$((i + 1)); done
check shrinker "$(tail -n 1 $T/test | sed 's/.*\[/[/'); cached $G1 -> $G2 after drop_caches (scans $(stat_of glock_shrink_scans), demotes $SD0 -> $(stat_of glock_shrink_demotes)); daemon's locks $L0 -> $L1 -> $L2" \
  sh -c "[ $G1 -ge 200 ] && [ $G2 -lt 10 ] && [ $L1 -ge $((L0 + 200)) ] && [ $L2 -le $L0 ] && [ \$(grep '^glock_shrink_demotes=' $T/status | cut -d= -f2) -ge $((SD0 + 200)) ]"

# 7c. Sends to a full receive buffer wait and are not lost. 20 files written (their locks
#    cached EX) and 800 idle locks through the test hook; the daemon stopped (SIGSTOP) right
#    after a kernel lease renewal; then drop_caches (820 demotes: as many LOCK_RELEASEs,
#    more than the daemon's receive buffer holds: 320 did not fill it, 1009 did) and 20
#    readers of the files (their locks asked for again). The daemon runs again once the module
#    counted a send waiting (at most 5 s: the kernel lease is 10 s). No reader fails, nothing
#    is lost (send_failures), and every lock given back leaves the DLM.
mkdir -p $MNT/burst
i=1; while [ $i -le 20 ]; do echo "burst $i" > $MNT/burst/f$i; i=$((i + 1)); done
rm -f /tmp/gbench-b.err; PIDS=
for k in 0 1 2 3; do
  (echo "gbench data $((4000200000 + k * 200)) 200 keep" > $T/test || echo "writer $k: $(tail -n 1 $T/test)" >> /tmp/gbench-b.err) &
  PIDS="$PIDS $!"
done
wait $PIDS
# The daemon idle (every earlier release taken in), its kernel lease just renewed.
settle_gap $GAP > /dev/null
wait_for 10 sh -c "[ \$(sed -n 's/.* age_ms=\([0-9]*\) .*/\1/p' $T/volumes) -lt 500 ]"
GB0=$(stat_of glocks); W0=$(stat_of send_waits); F0=$(stat_of send_failures); RL0=$(stat_of releases)
rm -f /tmp/burst.*
kill -STOP $DPID
echo 2 > /proc/sys/vm/drop_caches
i=1; while [ $i -le 20 ]; do (cat $MNT/burst/f$i > /tmp/burst.$i 2>&1; echo $? > /tmp/burst.$i.rc) & i=$((i + 1)); done
wait_for 5 sh -c "[ \$(grep '^send_waits=' $T/status | cut -d= -f2) -gt $W0 ]"
W1=$(stat_of send_waits); RL1=$(stat_of releases); AGE=$(sed -n 's/.* age_ms=\([0-9]*\) .*/\1/p' $T/volumes)
kill -CONT $DPID
progress "send-retry: the daemon ran again (lease age $AGE ms); send_waits $W0 -> $W1 while stopped"
wait_for 120 sh -c 'i=1; while [ $i -le 20 ]; do [ -e /tmp/burst.$i.rc ] || exit 1; i=$((i + 1)); done'
BAD=; NBAD=0; i=1
while [ $i -le 20 ]; do
  if [ "$(cat /tmp/burst.$i.rc 2>/dev/null)" != 0 ] || [ "$(cat /tmp/burst.$i)" != "burst $i" ]; then
    BAD="$BAD f$i:rc=$(cat /tmp/burst.$i.rc 2>/dev/null),$(head -c 60 /tmp/burst.$i 2>/dev/null)"; NBAD=$((NBAD + 1))
  fi
  i=$((i + 1))
done
GAP2=$(settle_gap $GAP)
echo "MXFS-PERF send-retry cached=$GB0 releases_while_stopped=$((RL1 - RL0)) send_waits_while_stopped=$((W1 - W0)) send_waits_total=$(( $(stat_of send_waits) - W0 )) send_failures=$(( $(stat_of send_failures) - F0 ))"
check send-retry "cached $GB0; while stopped (lease age $AGE ms at the end): releases $RL0 -> $RL1, send_waits $W0 -> $W1; after: send_waits $(stat_of send_waits), send_failures $F0 -> $(stat_of send_failures); readers failed:${BAD:- none}; daemon locks - kernel held $GAP after the mount, $GAP2 now" \
  sh -c "[ ! -s /tmp/gbench-b.err ] && [ $GB0 -ge 800 ] && [ $W1 -gt $W0 ] && [ $(stat_of send_failures) = $F0 ] && [ $NBAD = 0 ] && [ '$GAP2' = '$GAP' ]"

# 8. A fence fails the operations waiting for an inode lock with EIO at once.
rm -f /tmp/h4 /tmp/r4 /tmp/read4.rc
ctl lock --lockspace mxfs-inodes "data:$G" EX -- sh -c "touch /tmp/h4; while [ ! -e /tmp/r4 ]; do usleep 100000; done" > /tmp/holder4.log 2>&1 &
HOLDER=$!
wait_for 60 test -e /tmp/h4
E0=$(stat_of glock_eio_fenced)
(cat $MNT/g > /dev/null 2> /tmp/read4.err; echo $? > /tmp/read4.rc) &
wait_for 30 sh -c "[ \"\$(grep '^volume=data ino=$G ' $T/glocks | sed -n 's/.* waiters=\([0-9]*\).*/\1/p')\" = 1 ]"
W=$(gl_field $G waiters)
kill -9 $DPID   # the daemon's death ends the kernel lease: the volume is fenced at once
wait_for 10 test -e /tmp/read4.rc
check fence-eio "reader waiting=$W; after kill -9 of mxfsd: rc=$(cat /tmp/read4.rc 2>/dev/null) $(cat /tmp/read4.err 2>/dev/null); eio_fenced $E0->$(stat_of glock_eio_fenced)" \
  sh -c "[ '$W' = 1 ] && [ \"\$(cat /tmp/read4.rc)\" = 1 ] && grep -q 'Input/output error' /tmp/read4.err"
touch /tmp/r4; kill $HOLDER 2>/dev/null; wait $HOLDER 2>/dev/null

echo "---- glock counters"; grep '^glock_' $T/status | tr '\n' ' '; echo
# Clean up: the shut-down XFS unmounted, the module gone, the raw disk mounted once so XFS
# replays its log (the host runs xfs_repair -n on the image afterwards).
progress "cleanup: umount, rmmod, log replay"
umount $MNT
rmmod mxfs || fail cleanup "rmmod: $(dmesg | tail -n 3)"
mkdir -p /mnt/raw && mount -t xfs /dev/vda /mnt/raw && umount /mnt/raw || fail cleanup "log replay mount of /dev/vda failed"
[ $HF = 0 ] || { echo "---- mxfsd log (tail)"; tail -n 30 /tmp/hooks-mxfsd.log; dmesg | grep mxfs | tail -n 20; }
echo "MXFS-HOOKS-TESTS passes=$HP fails=$HF"
