#!/bin/sh
# In-VM tests of the mxfs module and the kernel bridge (run by /init, busybox sh).
# Every check prints "MXFS-TEST PASS|FAIL <name>: <detail>"; the last line is
# "MXFS-VM-RESULT PASS|FAIL ...", which run-vm-tests.sh on the host reads from the serial
# console. The daemon is the real mxfsd when the kernel command line says mxfs.daemon=mxfsd,
# else test/vm/bridge-driver.js (the bridge actor on a fake lock client).
T=/sys/kernel/debug/mxfs
P=/sys/module/mxfs/parameters
PASSES=0
FAILS=0
DPID=
DAEMON_KIND=$(sed -n 's/.*mxfs.daemon=\([a-z-]*\).*/\1/p' /proc/cmdline)
[ -n "$DAEMON_KIND" ] || DAEMON_KIND=driver

pass() { echo "MXFS-TEST PASS $1: $2"; PASSES=$((PASSES + 1)); }
fail() { echo "MXFS-TEST FAIL $1: $2"; FAILS=$((FAILS + 1)); }
check() { name="$1"; detail="$2"; shift 2; if "$@"; then pass "$name" "$detail"; else fail "$name" "$detail"; fi; }
# sub_checks CMD...: a helper that prints MXFS-TEST lines of its own; they count here too, so
# the result line and the host (which counts the lines on the console) agree.
sub_checks() {
  out=$("$@"); rc=$?
  [ -n "$out" ] && echo "$out"
  PASSES=$((PASSES + $(echo "$out" | grep -c '^MXFS-TEST PASS')))
  FAILS=$((FAILS + $(echo "$out" | grep -c '^MXFS-TEST FAIL')))
  return $rc
}
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
stat_of() { grep "^$1=" $T/status | cut -d= -f2; }
# wait_for SECONDS COMMAND...: poll every 100 ms
wait_for() {
  n=$(($1 * 10)); shift
  while [ $n -gt 0 ]; do "$@" && return 0; usleep 100000; n=$((n - 1)); done
  return 1
}
hook() { echo "$*" > $T/test 2>/dev/null; }
# result_of "COMMAND": the outcome the test hook recorded last for exactly that command
result_of() { grep " $1 -> " $T/test | tail -n 1 | sed 's/.* -> //'; }
attached() { grep -q '^daemon=attached' $T/status 2>/dev/null; }
detached() { grep -q '^daemon=detached' $T/status 2>/dev/null; }
daemon_log() { cat /tmp/daemon.out /tmp/daemon.err 2>/dev/null; }

start_daemon() {
  : > /tmp/daemon.out; : > /tmp/daemon.err
  if [ "$DAEMON_KIND" = mxfsd ]; then
    node /mxfs/dist/src/cli/mxfsd.js --config /mxfs/mxfs.conf >>/tmp/daemon.out 2>>/tmp/daemon.err &
  else
    node /mxfs/dist/test/vm/bridge-driver.js --retry-ms 1000 >>/tmp/daemon.out 2>>/tmp/daemon.err &
  fi
  DPID=$!
}

# Kernel volumes (test/vm/volume-tests.ts): the module (re)loaded with the shared disk claimed
# at load, as at boot; the gate, the kernel lease, the fences, the benchmark.
volume_tests() {
  rmmod mxfs 2>/dev/null
  if wait_for 30 test -b /dev/vda && insmod /lib/modules/mxfs.ko volumes=vol0=/dev/vda timer_slack_ms=100 drain_timeout_ms=3000 \
      && [ -b /dev/mxfs/vol0 ]; then
    pass module-volumes-param "insmod volumes=vol0=/dev/vda: /dev/mxfs/vol0 present; $(grep '^lease=' $T/volumes | cut -c1-120)"
    : > /tmp/volume-tests.out
    node /mxfs/dist/test/vm/volume-tests.js >> /tmp/volume-tests.out 2>&1 &
    VT=$!
    # Echo its lines as they come (the host reads the console).
    SHOWN_VT=0
    while kill -0 $VT 2>/dev/null; do
      N=$(wc -l < /tmp/volume-tests.out)
      [ "$N" -gt "$SHOWN_VT" ] && sed -n "$((SHOWN_VT + 1)),${N}p" /tmp/volume-tests.out && SHOWN_VT=$N
      usleep 200000
    done
    wait $VT
    N=$(wc -l < /tmp/volume-tests.out)
    [ "$N" -gt "$SHOWN_VT" ] && sed -n "$((SHOWN_VT + 1)),${N}p" /tmp/volume-tests.out
    PASSES=$((PASSES + $(grep -c '^MXFS-TEST PASS' /tmp/volume-tests.out)))
    FAILS=$((FAILS + $(grep -c '^MXFS-TEST FAIL' /tmp/volume-tests.out)))
    grep -q '^MXFS-VOLUME-TESTS ' /tmp/volume-tests.out || fail volume-tests "did not finish"
    if grep -q '^MXFS-TEST FAIL' /tmp/volume-tests.out; then echo "---- dmesg (tail)"; dmesg | tail -n 40; fi
  else
    fail module-volumes-param "insmod with volumes= failed or no /dev/mxfs/vol0"; dmesg | tail -n 20
  fi
  fallback_log
  udev_claim
}

# The boot-time udev rule of docs/kernel.md ("Boot"), for real: Debian's systemd-udevd with
# Debian's 60-persistent-storage.rules (which sets ID_WWN) and the rule file the host installed
# (test/vm/udev/61-mxfs.rules); the module not loaded, so the rule's modprobe loads it. The host
# hot-plugs a SCSI disk with the rule's WWN when it reads "MXFS-HOTPLUG ready" (QEMU device_add);
# once udev has handled the event, the disk must be claimed: /dev/mxfs/data exists and a mount
# of the raw disk fails with EBUSY. Seen to fail with the same rule named 60-mxfs.rules (read
# before 60-persistent-storage.rules sets ID_WWN; MXFS_VM_UDEV_RULE=/tmp/x/60-mxfs.rules): mxfs
# not loaded, /dev/mxfs/data missing, the raw mount succeeded.
udev_claim() {
  rmmod mxfs 2>/dev/null
  KV=$(uname -r)
  mkdir -p /lib/modules/$KV/extra /mnt/hot
  cp /lib/modules/mxfs.ko /lib/modules/$KV/extra/ && depmod
  [ -e /sbin/modprobe ] || ln -s /bin/busybox /sbin/modprobe   # the rule's path (kmod's on Debian)
  RULE=$(ls /etc/udev/rules.d/ 2>/dev/null | tr '\n' ' ')
  if ! /lib/systemd/systemd-udevd --daemon; then
    fail udev-claim "systemd-udevd did not start"; return
  fi
  echo "MXFS-HOTPLUG ready"
  t0=$(now_ms)
  if ! wait_for 60 test -b /dev/sda; then
    fail udev-claim "the hot-plugged disk never appeared as /dev/sda"; udevadm control --exit; return
  fi
  udevadm settle --timeout=60
  t1=$(now_ms)
  WWN=$(udevadm info --query=property --name=/dev/sda | grep '^ID_WWN=')
  RAW=$(mount -t xfs /dev/sda /mnt/hot 2>&1); RAWRC=$?
  [ $RAWRC = 0 ] && umount /mnt/hot
  LINE=$(grep '^volume=data ' $T/volumes 2>/dev/null)
  check udev-claim "rules: $RULE; disk plugged -> udev settled $((t1 - t0)) ms; $WWN; mxfs $(grep -q '^mxfs ' /proc/modules && echo 'loaded by the rule' || echo 'not loaded'); /dev/mxfs/data $( [ -b /dev/mxfs/data ] && echo present || echo missing); ${LINE:-no volume data}; raw mount rc=$RAWRC $RAW" \
    sh -c "[ $RAWRC != 0 ] && echo '$RAW' | grep -q -i busy && [ -b /dev/mxfs/data ] && echo '$LINE' | grep -q 'dev=8:0 gate=closed'"
  udevadm control --exit
  rmmod mxfs 2>/dev/null
}

# The fence's last resort (fence_fallback), with a write held below the gate: the volume "fb"
# is a device-mapper linear target over /dev/vda, which `dmsetup suspend` makes hold new bios
# (volume-tests.ts "fence_fallback"). DM_DISABLE_UDEV: libdevmapper makes the nodes itself
# (udev runs only during udev_claim).
export DM_DISABLE_UDEV=1
DM=mxfs-held
DMDEV=/dev/mapper/$DM
FALLBACK_OPTS="timer_slack_ms=100 drain_timeout_ms=1000"
dm_up() {
  wait_for 30 test -b /dev/vda && dmsetup create $DM --noudevsync --table "0 $(cat /sys/block/vda/size) linear /dev/vda 0" && test -b $DMDEV
}
# fence_fallback=log: counted here like the other volume checks. Afterwards the shut-down XFS's
# log is replayed (a mount of the device), so the host's xfs_repair -n sees a clean image.
fallback_log() {
  rmmod mxfs 2>/dev/null
  if dm_up && insmod /lib/modules/mxfs.ko volumes=fb=$DMDEV $FALLBACK_OPTS fence_fallback=log; then
    sub_checks node /mxfs/dist/test/vm/volume-tests.js fallback log $DM $DMDEV
  else
    fail fence-fallback-log "set-up failed: dmsetup create $DM or insmod with volumes=fb=$DMDEV; $(dmesg | tail -n 3)"
  fi
  rmmod mxfs 2>/dev/null
  mkdir -p /mnt/raw
  mount -t xfs $DMDEV /mnt/raw && umount /mnt/raw || fail fence-fallback-log "log replay mount of $DMDEV failed"
  dmsetup remove --noudevsync $DM || fail fence-fallback-log "dmsetup remove $DM failed"
}
# fence_fallback=restart: the last step of a run (it ends the VM). The host judges it
# (run-vm-tests.sh: the console's "restarting the machine" line, QEMU's own exit, the held write
# absent from the image); this side prints "MXFS-FALLBACK armed|not armed|survived".
fallback_restart() {
  rmmod mxfs 2>/dev/null
  if dm_up && insmod /lib/modules/mxfs.ko volumes=fb=$DMDEV $FALLBACK_OPTS fence_fallback=restart; then
    echo 5 > /proc/sys/kernel/printk   # the fence's own line (a warning) on the console too
    node /mxfs/dist/test/vm/volume-tests.js fallback restart $DM $DMDEV
  else
    echo "MXFS-FALLBACK not armed: dmsetup create $DM or insmod with volumes=fb=$DMDEV failed; $(dmesg | tail -n 3 | tr '\n' ' ')"
  fi
}

finish() {
  echo "---- /sys/kernel/debug/mxfs/status"; cat $T/status
  echo "---- dmesg (mxfs)"; dmesg | grep mxfs | tail -n 20
  if [ $FAILS != 0 ]; then echo "---- daemon log (tail)"; daemon_log | tail -n 40; fi
  if [ $FAILS = 0 ] && [ $PASSES -ge $MIN_PASSES ]; then
    echo "MXFS-VM-RESULT PASS passes=$PASSES daemon=$DAEMON_KIND"
  else
    echo "MXFS-VM-RESULT FAIL passes=$PASSES fails=$FAILS daemon=$DAEMON_KIND"
  fi
}

echo "vm-tests: daemon is $DAEMON_KIND"
# The volume tests' disk is /dev/vda (virtio, XFS; init.sh loaded the modules).
# mxfs.only=volumes on the kernel command line: the volume tests alone (development runs).
# Every check: this script's own, and the MXFS-TEST lines of the helpers it counts
# (sub_checks, the volume tests): 33 channel checks + 18 volume checks (with fence-fallback-log
# and udev-claim) + 15 inode-lock checks + 5 burst checks. After the result line, fallback_restart ends the VM (the host checks it).
# A check that silently stops printing is a failure too.
MIN_PASSES=71
if grep -q 'mxfs.only=volumes' /proc/cmdline; then
  MIN_PASSES=18
  volume_tests
  finish
  fallback_restart
  exit 0
fi
# mxfs.only=hooks-bench: the inode locks' benchmark (bench/inode-locks-vm.sh), not a test run.
# Its lines are echoed as they come (it runs for many minutes); each of its 7 checks prints a
# PASS (mxfs.bench_parts=: only those parts' checks).
if grep -q 'mxfs.only=hooks-bench' /proc/cmdline; then
  PARTS=$(sed -n 's/.*mxfs\.bench_parts=\([0-9]*\).*/\1/p' /proc/cmdline)
  MIN_PASSES=0
  for k in 1 2 3; do
    case "${PARTS:-123}" in *$k*) MIN_PASSES=$((MIN_PASSES + $(echo "2 1 4" | cut -d' ' -f$k))) ;; esac
  done
  sh /mxfs/hooks-bench.sh 2>&1 | tee /tmp/hooks-bench.out
  PASSES=$(grep -c '^MXFS-TEST PASS' /tmp/hooks-bench.out)
  FAILS=$(grep -c '^MXFS-TEST FAIL' /tmp/hooks-bench.out)
  grep -q '^MXFS-HOOKS-BENCH ' /tmp/hooks-bench.out || fail hooks-bench "did not finish"
  finish
  exit 0
fi
if grep -q 'mxfs.only=burst' /proc/cmdline; then
  MIN_PASSES=5
  sub_checks sh /mxfs/burst-tests.sh
  finish
  exit 0
fi
if grep -q 'mxfs.only=hooks ' /proc/cmdline || grep -q 'mxfs.only=hooks$' /proc/cmdline; then
  MIN_PASSES=15
  sub_checks sh /mxfs/hooks-tests.sh
  finish
  exit 0
fi

# 1. The daemon starts before the module exists: it runs and says so.
t0=$(now_ms)
start_daemon
if wait_for 60 sh -c 'cat /tmp/daemon.out /tmp/daemon.err | grep -q "no kernel module"'; then
  pass no-module "daemon up without the module after $(($(now_ms) - t0)) ms, reports no kernel module"
else
  fail no-module "daemon did not report 'no kernel module'"; daemon_log | tail -n 20
fi

# 2. The module loads; its debugfs files appear.
if insmod /lib/modules/mxfs.ko && [ -f $T/status ] && [ -f $T/test ]; then
  pass module-load "insmod ok, debugfs present"
else
  fail module-load "insmod or debugfs failed"; dmesg | tail -n 20
fi

# 3. Loaded later, the module is found (nlctrl notification) and the daemon says ready.
t0=$(now_ms)
if wait_for 30 attached; then
  pass daemon-ready "attached $(($(now_ms) - t0)) ms after insmod, portid $(stat_of portid), node $(stat_of node_id)"
else
  fail daemon-ready "daemon never attached"; daemon_log | tail -n 20; cat $T/status
fi

# 3b. The real daemon reports the attachment in its status (mxfsctl status --json).
if [ "$DAEMON_KIND" != driver ]; then
  KSTATE=$(node /mxfs/dist/src/cli/mxfsctl.js --config /mxfs/mxfs.conf --json status 2>&1 | \
    node -e 'let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => { try { const k = JSON.parse(s).kernel; console.log(k.state + " family=" + k.family + " portid=" + k.portid); } catch (e) { console.log("unparsable: " + s.slice(0, 200)); } })')
  check mxfsctl-kernel-state "$KSTATE" sh -c "echo '$KSTATE' | grep -q '^attached '"
fi

# 4. The family is visible to iproute2's genl, with its multicast group.
GENL_OUT=$(genl ctrl get name mxfs 2>&1)
if echo "$GENL_OUT" | grep -q 'Name: mxfs' && echo "$GENL_OUT" | grep -q 'events'; then
  pass genl-family "$(echo "$GENL_OUT" | grep -o 'ID: 0x[0-9a-f]*' | head -n 1), events group listed"
else
  fail genl-family "genl ctrl get name mxfs: $GENL_OUT"
fi

# 5. A kernel lock request travels to the daemon and the grant comes back.
t0=$(now_ms)
hook lock a EX; rc=$?
R=$(result_of "lock a EX")
ID1=$(echo "$R" | sed -n 's/.*id=\([0-9]*\).*/\1/p')
check lock-grant "rc=$rc, $R, $(($(now_ms) - t0)) ms" sh -c "[ $rc = 0 ] && echo '$R' | grep -q 'ok id=[0-9]* mode=EX token=[1-9][0-9]*$'"

# 6. A conflicting NOQUEUE request is denied by the DLM (-EAGAIN).
hook lock a EX noqueue; rc=$?
R=$(result_of "lock a EX noqueue")
check lock-deny-noqueue "rc=$rc, $R" sh -c "[ $rc != 0 ] && [ '$R' = 'err -11' ]"

# 7. Unlock travels to the daemon: the same NOQUEUE request is granted afterwards.
hook unlock "$ID1"; rc1=$?
if wait_for 5 hook lock a EX noqueue; then
  R=$(result_of "lock a EX noqueue")
  ID2=$(echo "$R" | sed -n 's/.*id=\([0-9]*\).*/\1/p')
  check lock-release "unlock rc=$rc1, then $R" sh -c "[ $rc1 = 0 ] && echo '$R' | grep -q 'ok id='"
else
  fail lock-release "lock a EX noqueue still refused after unlock: $(result_of 'lock a EX noqueue')"
fi

# 7b. Cost of an uncached kernel lock: lock EX + unlock round trips through the daemon
#     (measured under TCG emulation: slow compared with real hardware; for the record).
hook bench perf 200
R=$(grep ' bench perf 200' $T/test | tail -n 1)
echo "MXFS-PERF $R"
check lock-bench "$(echo "$R" | sed 's/.*\[//; s/\].*//')" sh -c "echo '$R' | grep -q 'done=200 .*-> ok'"

# 8. A waiter makes the daemon send a blocking callback for the held lock; the waiter's own
#    timeout (3000 ms) is answered by the daemon with LOCK_DENY -ETIMEDOUT.
DENIES0=$(stat_of denies); TIMEOUTS0=$(stat_of timeouts)
(hook lock a PR 3000) &
BG=$!
if wait_for 10 sh -c "grep -q 'resource=a .*bast=PR' $T/locks"; then
  pass bast "$(grep 'resource=a ' $T/locks)"
else
  fail bast "no blocking callback recorded: $(cat $T/locks)"
fi
wait $BG
R=$(result_of "lock a PR 3000")
check deny-timeout "$R, denies $DENIES0->$(stat_of denies), kernel timeouts $TIMEOUTS0->$(stat_of timeouts)" \
  sh -c "[ '$R' = 'err -110' ] && [ $(stat_of denies) -gt $DENIES0 ] && [ $(stat_of timeouts) = $TIMEOUTS0 ]"
hook unlock "$ID2"

# 8b. VOLUME_MOUNT / VOLUME_UNMOUNT: the daemon takes and returns the volume's EX lock.
hook mount vol1; rc1=$?
hook mount vol1; rc2=$?
hook unmount vol1; rc3=$?
check volume-mount "mount $(result_of 'mount vol1'), unmount $(result_of 'unmount vol1')" \
  sh -c "[ $rc1 = 0 ] && [ $rc2 != 0 ] && [ $rc3 = 0 ] && grep -q 'mount vol1 -> err -16' $T/test"

# 9. Malformed or unexpected messages from another (unregistered) socket are refused.
REJ0=$(stat_of rejected)
if sub_checks node /mxfs/dist/test/vm/malformed-client.js; then
  pass malformed-client "all refusals as expected; rejected counter $REJ0->$(stat_of rejected)"
else
  fail malformed-client "see the lines above"
fi

# 9b. Without CAP_NET_ADMIN (uid 65534) nothing is accepted and the events group is closed.
if sub_checks node /mxfs/dist/test/vm/malformed-client.js --unprivileged; then
  pass unprivileged "GENL_ADMIN_PERM and GENL_MCAST_CAP_NET_ADMIN enforced"
else
  fail unprivileged "see the lines above"
fi

# 10. A daemon that does not answer: the request fails after its bound (500 + 1000 ms grace).
echo 1000 > $P/reply_grace_ms
TIMEOUTS0=$(stat_of timeouts); STALE0=$(stat_of stale_replies)
kill -STOP "$DPID"
t0=$(now_ms)
hook lock b EX 500; rc=$?
el=$(($(now_ms) - t0))
kill -CONT "$DPID"
R=$(result_of "lock b EX 500")
check daemon-hung-timeout "rc=$rc, $R after $el ms (bound 1500 ms)" \
  sh -c "[ $rc != 0 ] && [ '$R' = 'err -110' ] && [ $el -ge 1400 ] && [ $el -lt 6000 ] && [ $(stat_of timeouts) -gt $TIMEOUTS0 ]"
# ... the kernel sent LOCK_CANCEL; once the daemon runs again it withdraws the request, or,
# if its grant wins the race, the kernel refuses the late grant (-ENOENT) and the daemon
# gives it back. Either way nothing leaks: b can be taken with NOQUEUE.
if wait_for 15 hook lock b EX noqueue; then
  pass late-answer-cleaned-up "kernel cancels $(stat_of cancels), stale replies $STALE0->$(stat_of stale_replies); b is free again"
else
  fail late-answer-cleaned-up "cancels $(stat_of cancels), stale_replies $(stat_of stale_replies), last: $(result_of 'lock b EX noqueue')"
fi
[ "$(stat_of cancels)" -ge 1 ] || fail lock-cancel-sent "the kernel did not send LOCK_CANCEL"
R=$(result_of "lock b EX noqueue"); hook unlock "$(echo "$R" | sed -n 's/.*id=\([0-9]*\).*/\1/p')"
echo 2000 > $P/reply_grace_ms

# 11. Killing the daemon fails a pending kernel request at once (netlink URELEASE).
hook lock c EX
(hook lock c EX 60000) &
BG=$!
wait_for 10 sh -c "[ \$(grep '^pending=' $T/status | cut -d= -f2) = 1 ]" || fail daemon-death "the waiter never became pending"
t0=$(now_ms)
kill -9 "$DPID"
wait $BG
el=$(($(now_ms) - t0))
wait "$DPID" 2>/dev/null
R=$(result_of "lock c EX 60000")
check daemon-death "$R $el ms after kill -9; daemon=$(stat_of daemon) held=$(stat_of held) losses=$(stat_of daemon_losses) failed_on_detach=$(stat_of failed_on_detach)" \
  sh -c "[ '$R' = 'err -107' ] && [ $el -lt 3000 ] && [ $(stat_of held) = 0 ] && [ $(stat_of failed_on_detach) -ge 1 ] && [ $(stat_of daemon) = detached ]"

# 12. Without a daemon, a request fails at once instead of waiting.
t0=$(now_ms)
hook lock d EX 60000
el=$(($(now_ms) - t0))
R=$(result_of "lock d EX 60000")
check no-daemon-fails-fast "$R after $el ms" sh -c "[ '$R' = 'err -107' ] && [ $el -lt 1000 ]"

# 13. A restarted daemon attaches again and serves requests.
t0=$(now_ms)
start_daemon
if wait_for 60 attached && hook lock c EX noqueue; then
  pass daemon-restart "attached again after $(($(now_ms) - t0)) ms; $(result_of 'lock c EX noqueue')"
else
  fail daemon-restart "$(cat $T/status | head -n 2), $(result_of 'lock c EX noqueue')"
fi

# 14. Module reload: the daemon notices the family going and coming back and re-attaches.
rmmod mxfs
if wait_for 10 sh -c 'cat /tmp/daemon.out /tmp/daemon.err | grep -q "kernel module unloaded"'; then
  insmod /lib/modules/mxfs.ko
  t0=$(now_ms)
  if wait_for 30 attached && hook lock e EX; then
    pass module-reload "daemon saw the unload and re-attached $(($(now_ms) - t0)) ms after insmod; $(result_of 'lock e EX')"
  else
    fail module-reload "not attached after reload: $(head -n 1 $T/status)"
  fi
else
  fail module-reload "daemon did not notice the unload"; insmod /lib/modules/mxfs.ko
fi

# 15. A clean daemon stop (SIGTERM) detaches it in the kernel.
kill -TERM "$DPID"
if wait_for 15 detached; then pass daemon-stop "detached after SIGTERM"; else fail daemon-stop "still attached"; fi
wait "$DPID" 2>/dev/null

# 16. Kernel volumes.
volume_tests
# 17. Inode locks on a mounted kernel volume.
sub_checks sh /mxfs/hooks-tests.sh
# 18. A burst of thousands of kernel messages does not starve the kernel lease.
sub_checks sh /mxfs/burst-tests.sh
finish
# 19. The fence's last resort restarts the machine (the run's end).
fallback_restart
