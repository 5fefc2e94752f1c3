#!/bin/sh
# A burst of kernel -> daemon messages must not cost the node its kernel lease (issue 11), nor
# may a burst of the daemon's grants to the kernel lose their answers.
# vm-tests.sh runs this after the inode lock tests; mxfs.only=burst runs it alone. The real
# mxfsd with a kernel volume "data" on /dev/vda at the default lease (lease_timeout_ms 10000:
# a renewal starved for 10 s fences the volume; the drain takes minutes); BURST idle inode locks cached through the test
# hook, then drop_caches gives them all back at once: as many LOCK_RELEASEs, many times what
# the daemon's receive buffer holds. Prints "MXFS-TEST PASS|FAIL burst/<check>: ...".
#
# How each check fails without its mechanism (docs/kernel.md "Mutation checks"):
#   burst-lease      the daemon's requests on the channel: the module's replies to them are
#                    refused while the burst keeps it full (reply_failures); renewals queued in
#                    the bridge's mailbox behind the releases: the lease's age passes the
#                    lease, the volume is fenced (on the loaded machine; not every run)
#   burst-released   a release lost: the daemon's lock count stays above the kernel's
#   burst-resync     no resynchronisation after a channel overrun (or its end never seen):
#                    overruns counted, no resync, no "module state read" line
#   burst-grants     no request window on the daemon's request socket (every grant sent at
#                    once): the answers of the 4 000 LOCK_GRANTs and the renewals' LEASE_INFO
#                    overflow it, replies are refused (reply_failures, requestOverruns)
T=/sys/kernel/debug/mxfs
CONF=/tmp/burst.conf
MNT=/mnt/data
BURST=${MXFS_BURST:-4000}
LEASE_MS=10000
CHECKS=burst
. /mxfs/hooks-lib.sh

rmmod mxfs 2>/dev/null
insmod /lib/modules/mxfs.ko volumes=data=/dev/vda lock_timeout_ms=15000 timer_slack_ms=100 drain_timeout_ms=3000 || {
  fail insmod "insmod with volumes=data=/dev/vda failed"; echo "MXFS-BURST-TESTS passes=$HP fails=$HF"; exit 1; }
write_conf burst info "[timing]
lease_timeout_ms = $LEASE_MS
renew_interval_ms = 2000
client_timeout_ms = 5000"
node /mxfs/dist/src/cli/mxfsd.js --config $CONF > /tmp/burst-mxfsd.log 2>&1 &
DPID=$!
wait_for 60 grep -q '^daemon=attached' $T/status || fail daemon "mxfsd did not attach: $(tail -n 5 /tmp/burst-mxfsd.log)"
OUT=$(ctl mount data --wait --timeout 60000 2>&1); rc=$?
check mount "mxfsctl mount data: rc=$rc $OUT" sh -c "[ $rc = 0 ] && grep -q '^/dev/mxfs/data $MNT xfs' /proc/mounts"
GAP=$(lock_gap)

# kernel_field NAME: a field of the daemon's kernel bridge status (NAME.SUB for the request window).
kernel_field() {
  ctl --json status | node -e 'let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
    let v = JSON.parse(s).kernel; for (const k of process.argv[1].split(".")) v = v == null ? undefined : v[k];
    console.log(v === undefined ? "?" : v); });' "$1"
}
running() { for p in $PIDS; do kill -0 $p 2>/dev/null && return 0; done; return 1; }

# BURST idle locks cached (4 writers through the test hook: inode numbers no file has): as many
# LOCK_GRANTs from the daemon, whose answers come back to its request socket, with the lease's
# renewals among them. The kernel lease's age is sampled meanwhile.
RFG0=$(stat_of reply_failures); LRG0=$(stat_of lease_renewals); ROV0=$(kernel_field requestOverruns); GAL0=$(kernel_field grantAnswersLost)
LOADG=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f /tmp/gbench-burst.err; PIDS=; PER=$((BURST / 4))
TG0=$(date +%s)
for k in 0 1 2 3; do
  (echo "gbench data $((4000300000 + k * PER)) $PER keep" > $T/test || echo "writer $k: $(tail -n 1 $T/test)" >> /tmp/gbench-burst.err) &
  PIDS="$PIDS $!"
done
GMAX=0; SHOWN=$TG0
while running; do
  AGE=$(lease_age); [ -n "$AGE" ] && [ "$AGE" -gt "$GMAX" ] && GMAX=$AGE
  if [ $(( $(date +%s) - SHOWN )) -ge 10 ]; then
    SHOWN=$(date +%s)
    progress "grants: $((SHOWN - TG0)) s: cached $(stat_of glocks), lease age $AGE ms (max $GMAX), renewals +$(( $(stat_of lease_renewals) - LRG0 )), reply failures +$(( $(stat_of reply_failures) - RFG0 ))"
  fi
  usleep 100000
done
wait $PIDS
TG1=$(date +%s)
settle_gap $GAP > /dev/null
AGE=$(lease_age); [ -n "$AGE" ] && [ "$AGE" -gt "$GMAX" ] && GMAX=$AGE
RFG1=$(stat_of reply_failures); LRG1=$(stat_of lease_renewals); ROV1=$(kernel_field requestOverruns); GAL1=$(kernel_field grantAnswersLost)
QMAX=$(kernel_field requestWindow.queuedMax); WCAP=$(kernel_field requestWindow.capacity); FMAX=$(kernel_field requestWindow.inFlightMax)
echo "MXFS-PERF burst-grants cached=$(stat_of glocks) grant_s=$((TG1 - TG0)) max_lease_age_ms=$GMAX lease_renewals=$((LRG1 - LRG0)) reply_failures=$((RFG1 - RFG0)) request_overruns=$ROV0->$ROV1 grant_answers_lost=$GAL0->$GAL1 window=$WCAP in_flight_max=$FMAX queued_max=$QMAX load=$LOADG"
check burst-grants "$(stat_of glocks) locks granted in $((TG1 - TG0)) s: reply failures $RFG0 -> $RFG1, the daemon's request socket overruns $ROV0 -> $ROV1, grant answers lost $GAL0 -> $GAL1, longest time without a renewal $GMAX ms, renewals $LRG0 -> $LRG1; request window $WCAP answers, at most $FMAX in flight, $QMAX waiting" \
  sh -c "[ ! -s /tmp/gbench-burst.err ] && [ $(stat_of glocks) -ge $BURST ] && [ $RFG1 = $RFG0 ] && [ '$ROV1' = '$ROV0' ] && [ '$GAL1' = '$GAL0' ] && [ $GMAX -lt $LEASE_MS ]"

GB0=$(stat_of glocks); W0=$(stat_of send_waits); F0=$(stat_of send_failures); RL0=$(stat_of releases)
LR0=$(stat_of lease_renewals); RF0=$(stat_of reply_failures); DL0=$(dlm_locks)
FENCES0=$(grep -c '^  fence ' $T/volumes)
progress "burst: $GB0 locks cached (daemon locks $DL0), drop_caches"
[ -s /tmp/gbench-burst.err ] && progress "burst: gbench: $(cat /tmp/gbench-burst.err | tr '\n' ' '); mxfsd: $(tail -n 5 /tmp/burst-mxfsd.log | cut -c1-300 | tr '\n' ' ')"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
echo 2 > /proc/sys/vm/drop_caches &
DROP=$!
# Sample the kernel lease's age (time since the last renewal that reached the module) until
# every lock has left the cache and the daemon took every release in.
# (A safety bound of 900 s: the drain took 3-4 min at load 20.) A line every 10 s shows how it goes.
MAXAGE=0; SHOWN=$T0
while [ $(( $(date +%s) - T0 )) -lt 900 ]; do
  AGE=$(lease_age); [ -n "$AGE" ] && [ "$AGE" -gt "$MAXAGE" ] && MAXAGE=$AGE
  [ "$(stat_of glocks)" -lt 10 ] && break
  if [ $(( $(date +%s) - SHOWN )) -ge 10 ]; then
    SHOWN=$(date +%s)
    progress "burst: $((SHOWN - T0)) s: cached $(stat_of glocks), releases +$(( $(stat_of releases) - RL0 )), lease age $AGE ms (max $MAXAGE), renewals +$(( $(stat_of lease_renewals) - LR0 )), reply failures +$(( $(stat_of reply_failures) - RF0 )), send_waits +$(( $(stat_of send_waits) - W0 )), fences $(grep -c '^  fence ' $T/volumes)"
  fi
  usleep 100000
done
wait $DROP   # not a bare wait: mxfsd is a child of this shell too
T1=$(date +%s)
GAP1=$(settle_gap $GAP)
T2=$(date +%s)
AGE=$(lease_age); [ -n "$AGE" ] && [ "$AGE" -gt "$MAXAGE" ] && MAXAGE=$AGE
LR1=$(stat_of lease_renewals); FENCES1=$(grep -c '^  fence ' $T/volumes)
LEASE=$(sed -n '1s/^lease=\([a-z]*\).*/\1/p' $T/volumes)
TIMEOUTS=$(grep -c 'could not be sent to the module' /tmp/burst-mxfsd.log)
BRIDGE=$(ctl --json status | tr -d '\n ' | sed -n 's/.*"kernel":{\([^}]*\)}.*/\1/p' | head -c 400)
echo "MXFS-PERF burst cached=$GB0 releases=$(( $(stat_of releases) - RL0 )) kernel_done_s=$((T1 - T0)) daemon_done_s=$((T2 - T0)) lease_ms=$LEASE_MS max_lease_age_ms=$MAXAGE lease_renewals=$((LR1 - LR0)) reply_failures=$(( $(stat_of reply_failures) - RF0 )) send_waits=$(( $(stat_of send_waits) - W0 )) send_failures=$(( $(stat_of send_failures) - F0 )) lease_send_errors=$TIMEOUTS load=$LOAD0"
check burst-lease "burst of $GB0 releases at a $LEASE_MS ms lease: longest time without a renewal in the module $MAXAGE ms, renewals $LR0 -> $LR1 over $((T2 - T0)) s, lease now $LEASE, fences $FENCES0 -> $FENCES1, reply failures $RF0 -> $(stat_of reply_failures), daemon's lease send errors $TIMEOUTS; $(grep '^  fence ' $T/volumes | tr -s ' ' | tr '\n' ';')" \
  sh -c "[ ! -s /tmp/gbench-burst.err ] && [ $GB0 -ge $BURST ] && [ $MAXAGE -lt $LEASE_MS ] && [ '$LEASE' = valid ] && [ $FENCES1 = $FENCES0 ] && [ $((LR1 - LR0)) -ge $((T2 - T0)) ] && [ $(stat_of reply_failures) = $RF0 ]"
check burst-released "cached $GB0 -> $(stat_of glocks); send_failures $F0 -> $(stat_of send_failures), send_waits $W0 -> $(stat_of send_waits); daemon locks - kernel held: $GAP after the mount, $GAP1 now; bridge: $BRIDGE" \
  sh -c "[ $(stat_of glocks) -lt 10 ] && [ $(stat_of send_failures) = $F0 ] && [ '$GAP1' = '$GAP' ]"

# The drain overflowed the channel (the kernel's releases are retried; a VOLUME_EVENT would
# have been lost): once it drained, the daemon read the module's volume state again.
OVR=$(kernel_field overruns)
if [ "$OVR" != 0 ] && [ "$OVR" != "?" ]; then
  wait_for 120 grep -q 'after a channel overrun' /tmp/burst-mxfsd.log
fi
RSY=$(kernel_field resyncs)
RSYLOG=$(grep -c 'after a channel overrun' /tmp/burst-mxfsd.log)
echo "MXFS-PERF burst-resync overruns=$OVR resyncs=$RSY resync_log_lines=$RSYLOG"
check burst-resync "channel overruns $OVR, resyncs $RSY, driver lines $RSYLOG: $(grep 'after a channel overrun' /tmp/burst-mxfsd.log | tail -n 1 | cut -c1-300)" \
  sh -c "[ '$OVR' = 0 ] || { [ '$RSY' != '?' ] && [ '$RSY' -ge 1 ] && [ $RSYLOG -ge 1 ] && ! grep -q 'events lost in a channel overrun' /tmp/burst-mxfsd.log; }"

progress "burst: cleanup"
OUT=$(ctl umount data 2>&1) || progress "umount: $OUT"
kill -TERM $DPID; wait $DPID 2>/dev/null
umount $MNT 2>/dev/null
rmmod mxfs || fail cleanup "rmmod: $(dmesg | tail -n 3)"
[ $HF = 0 ] || { echo "---- mxfsd log (tail)"; tail -n 30 /tmp/burst-mxfsd.log; dmesg | grep mxfs | tail -n 20; }
echo "MXFS-BURST-TESTS passes=$HP fails=$HF"
