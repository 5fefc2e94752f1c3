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
T=/sys/kernel/debug/mxfs
CONF=/tmp/hooks.conf
MNT=/mnt/data
PROBE="node /mxfs/dist/test/vm/hooks-probe.js"
DEV=/dev/mxfs/data
HP=0; HF=0
pass() { echo "MXFS-TEST PASS hooks/$1: $2"; HP=$((HP + 1)); }
fail() { echo "MXFS-TEST FAIL hooks/$1: $2"; HF=$((HF + 1)); }
check() { n="$1"; d="$2"; shift 2; if "$@"; then pass "$n" "$d"; else fail "$n" "$d"; fi; }
wait_for() { n=$(($1 * 10)); shift; while [ $n -gt 0 ]; do "$@" && return 0; usleep 100000; n=$((n - 1)); done; return 1; }
ctl() { node /mxfs/dist/src/cli/mxfsctl.js --config $CONF "$@"; }
stat_of() { grep "^$1=" $T/status | cut -d= -f2; }
gl_line() { grep "^volume=data ino=$1 " $T/glocks; }
gl_field() { gl_line "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
hook_calls() { grep "^hook=$1 " $T/hooks | sed 's/.*calls=\([0-9]*\).*/\1/'; }

rmmod mxfs 2>/dev/null
insmod /lib/modules/mxfs.ko volumes=data=/dev/vda lock_timeout_ms=15000 timer_slack_ms=100 drain_timeout_ms=3000 || {
  fail insmod "insmod with volumes=data=/dev/vda failed"; echo "MXFS-HOOKS-TESTS passes=$HP fails=$HF"; exit 1; }
# Dirty pages stay dirty until something writes them back (the flusher would race the
# write-back check otherwise).
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 360000 > /proc/sys/vm/dirty_expire_centisecs
mkdir -p $MNT /tmp/hooks-state
cat > $CONF <<EOF
[node]
id = 1
socket = /tmp/hooks.sock
state_dir = /tmp/hooks-state
kernel = on

[volume]
name = data
device = /dev/vda
mountpoint = $MNT
driver = kernel
start = none

[logging]
level = info
stderr = true
EOF
node /mxfs/dist/src/cli/mxfsd.js --config $CONF > /tmp/hooks-mxfsd.log 2>&1 &
DPID=$!
wait_for 60 grep -q '^daemon=attached' $T/status || fail daemon "mxfsd did not attach: $(tail -n 5 /tmp/hooks-mxfsd.log)"
OUT=$(ctl mount data --wait --timeout 60000 2>&1); rc=$?
check mount "mxfsctl mount data: rc=$rc $OUT; $(grep " $MNT " /proc/mounts)" sh -c "[ $rc = 0 ] && grep -q '^/dev/mxfs/data $MNT xfs' /proc/mounts"
check hooks-installed "$(head -n 1 $T/hooks)" grep -q '^installed=1' $T/hooks

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

# 7. The shrinker gives idle cached locks back under memory pressure: 200 locks cached through
#    the test hook (gbench ... keep: inode numbers no file has), then drop_caches, which runs
#    every shrinker with GFP_KERNEL as reclaim does: the cache empties, and the DLM sees the
#    locks released (the daemon's lock count falls back).
dlm_locks() { ctl status | sed -n 's/.* locks \([0-9]*\).*/\1/p'; }
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
umount $MNT
rmmod mxfs || fail cleanup "rmmod: $(dmesg | tail -n 3)"
mkdir -p /mnt/raw && mount -t xfs /dev/vda /mnt/raw && umount /mnt/raw || fail cleanup "log replay mount of /dev/vda failed"
[ $HF = 0 ] || { echo "---- mxfsd log (tail)"; tail -n 30 /tmp/hooks-mxfsd.log; dmesg | grep mxfs | tail -n 20; }
echo "MXFS-HOOKS-TESTS passes=$HP fails=$HF"
