# PENDING THE KERNEL HALF OF THE VOLUME WORK (issue 10). Not run by CI, nor by
# run-vm2-tests.sh unless asked (--pending, or --only NAME). Host-side steps shared by the
# pending scenarios, which run with `driver = kernel` and use:
#   mxfsctl mount <vol> [--wait|--no-wait] [--timeout MS]   become owner, then mount at the
#       configured mountpoint; --no-wait: exit 1 at once if another node owns it, naming it
#   mxfsctl umount <vol>          unmount, give ownership back
#   mxfsctl standby <vol>         queue for ownership: take over when the owner dies/unmounts
#   mxfsctl volumes --json        this node's state, owner, generation (vmlib.sh vol_line)
# (these four exist: issue 9), and from the kernel half, still to come:
#   /dev/mxfs/<vol>               the gated device, on every node; opening it for writing
#                                 while not the owner fails with EACCES
#   the raw disk's claim          mounting /dev/vda fails with EBUSY while the module holds it
#   kernel fence                  writes fail with EIO within the fence bound after the lease
#                                 ends (link cut), the daemon dies or is stopped
#   /sys/kernel/debug/mxfs/volumes  one line per volume naming it and its fence state
#                                 ("fenced"), read when A's daemon is dead
# The volume is [volume] data on the shared disk at /mnt/data (agent.sh writes it).
# Sourced by the pending scenarios (after lib.sh); each defines `scenario` and `after_vms`.
VOLUME_DRIVER=kernel

# fence_scenario TEST FAULT: tests 3-5 of issue 10. A owns and mounts the volume and writes
# sequence-numbered O_DIRECT|O_DSYNC records (one per 4 KiB slot of a preallocated file) and
# fsync'd files, logging every outcome on its console; B is standby. FAULT hits A:
#   cut    QMP set_link off on A's NIC (partition: A's kernel lease runs out)
#   kill9  kill -9 of A's mxfsd (the module sees the daemon die: NETLINK_URELEASE)
#   stop   SIGSTOP of A's mxfsd past the lease (the kernel lease timer), SIGCONT at the end
# Then: A's writers get EIO (never a success after their first error); B takes over after the
# fence-proof wait and mounts (log replay); the node-1 records B finds on the disk are exactly
# the ones A saw succeed (none A saw fail landed, none it saw succeed is missing); every file
# A saw fsync'd matches its checksum; B overwrites every slot and, after both VMs stopped, the
# host finds only B's records in the image (nothing of A landed after B took over);
# xfs_repair -n is clean (after_vms: fence_after_vms).
SLOTS=8192
fence_scenario() {
  local t="$1" fault="$2" g0 t0 line fence_ms b_ms ok_a found_a
  cluster_formed "$t" || return
  vm_do a 120 'ctl mount data --wait --timeout 60000 && wait_vol data mounted 60 && mkdir -p $MNT/files && mxfs-writer prep $MNT/records --slots '$SLOTS
  check "$t/a-mounts" "A: mxfsctl mount data, records file prepared: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ] || return
  g0=$(echo "$VM_OUT" | sed -n 's/.*generation=\([0-9]*\).*/\1/p' | head -n 1)
  vm_do b 60 'ctl standby data && wait_vol data standby 60'
  check "$t/b-standby" "B: mxfsctl standby data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
  vm_do a 30 'bg_console recs mxfs-writer records $MNT/records --node 1 --run $RUN_ID --slots '$SLOTS' --interval-ms 5 --max-errors 200;
              bg_console files mxfs-writer files $MNT/files --node 1 --run $RUN_ID --count 100000 --size 16384 --interval-ms 50 --max-errors 40'
  # B's first write after the takeover, timed from the fault by the host (B's console).
  vm_start b 'until grep -q " $MNT " /proc/mounts; do usleep 50000; done;
              mxfs-writer files $MNT --node 2 --run $RUN_ID --count 1 --size 4096 --interval-ms 0 > /dev/console' >/dev/null
  wait_console a 'MXFS-REC node=1 seq=100 ok' 120 >/dev/null && wait_console a 'MXFS-FILE node=1 name=f1-000010 .* ok' 120 >/dev/null
  check "$t/a-writing" "A wrote 100 records and 10 fsync'd files before the fault" [ $? = 0 ]
  t0=$(now_ns)
  case "$fault" in
    cut) vm_link a off ;;
    kill9) vm_do a 30 'kill -9 $(mxfsd_pid)' ;;
    stop) vm_do a 30 'kill -STOP $(mxfsd_pid)' ;;
  esac
  check "$t/fault" "$fault applied to A" [ $? = 0 ]
  line=$(wait_console a 'MXFS-REC node=1 seq=[0-9]* err errno=[0-9]*' 120); fence_ms=$(ms_since "$t0")
  check "$t/a-writes-fail" "A's first failed record write ${fence_ms} ms after the fault: ${line:-none} (EIO = 5)" \
    eval '[[ "$line" == *"errno=5" ]]'
  line=$(wait_console b 'MXFS-FILE node=2 name=f2-000001 .* ok' 180); b_ms=$(ms_since "$t0")
  check "$t/b-takes-over" "B mounted and wrote its first file ${b_ms} ms after the fault: ${line:-none}" [ -n "$line" ]
  echo "MXFS-VM2-TIME $t fault->A-first-EIO ${fence_ms} ms, fault->B-first-write ${b_ms} ms"
  vm_do b 60 'vol_line data'
  check "$t/generation" "B's view after the takeover: $VM_OUT (A's generation was $g0)" \
    eval '[[ "$VM_OUT" == "state=mounted owner=2 generation=$((g0 + 1))" ]]'
  # A's side, with its daemon running again (a stopped one answers nothing): the writers'
  # summaries (they stop after --max-errors consecutive errors) and the volume's state, from
  # mxfsctl or, with the daemon dead, from the module (debugfs; planned file).
  [ "$fault" = stop ] && vm_do a 30 'kill -CONT $(mxfsd_pid)'
  if [ "$fault" = kill9 ]; then
    vm_do a 120 'bg_rc recs 100 >/dev/null; bg_rc files 100 >/dev/null; grep -h -E "MXFS-(REC|FILE)-END" /tmp/bg/recs.log /tmp/bg/files.log; grep -w data /sys/kernel/debug/mxfs/volumes'
  else
    vm_do a 120 'bg_rc recs 100 >/dev/null; bg_rc files 100 >/dev/null; grep -h -E "MXFS-(REC|FILE)-END" /tmp/bg/recs.log /tmp/bg/files.log; vol_line data'
  fi
  check "$t/a-no-success-after-error" "A's writers: $(echo "$VM_OUT" | grep END | tr '\n' ';')" \
    eval '[ "$(echo "$VM_OUT" | grep -c "END .*err=[1-9][0-9]* .*late_ok=0")" = 2 ]'
  check "$t/a-fenced" "A's volume: $(echo "$VM_OUT" | tail -n 1)" eval '[[ "$(echo "$VM_OUT" | tail -n 1)" == *fenced* ]]'
  # What A saw succeed, against what B finds on the disk.
  rec_ok_seqs a 1 > "$TD/a-ok.seqs"
  vm_do b 120 'mxfs-writer scan $MNT/records --run $RUN_ID'
  echo "$VM_OUT" | sed -n 's/^REC node=1 seq=\([0-9]*\) .*/\1/p' | sort -n -u > "$TD/b-found-a.seqs"
  ok_a=$(wc -l < "$TD/a-ok.seqs"); found_a=$(wc -l < "$TD/b-found-a.seqs")
  check "$t/records-exact" "A saw $ok_a records succeed, B finds $found_a of node 1 on the disk; differences: $(diff "$TD/a-ok.seqs" "$TD/b-found-a.seqs" | grep '^[<>]' | head -n 5 | tr '\n' ' ')" \
    eval '[ "$ok_a" -ge 100 ] && cmp -s "$TD/a-ok.seqs" "$TD/b-found-a.seqs"'
  manifest_of a 1 > "$TD/a.manifest"
  vm_put b /tmp/a.manifest "$(cat "$TD/a.manifest")"
  vm_do b 120 'mxfs-writer check-files $MNT/files /tmp/a.manifest'
  check "$t/fsynced-files" "every file A saw fsync'd, checked on B: $(echo "$VM_OUT" | tail -n 1)" \
    eval '[ "$VM_RC" = 0 ] && [ "$(wc -l < "$TD/a.manifest")" -ge 10 ]'
  vm_do b 300 'mxfs-writer records $MNT/records --node 2 --run $RUN_ID --slots '$SLOTS' --interval-ms 0 | tail -n 1'
  check "$t/b-overwrites" "B rewrote every slot: $VM_OUT" eval '[[ "$VM_OUT" == *" err=0 "* ]]'
  [ "$fault" = cut ] && vm_link a on
  vm_do b 120 'ctl umount data && vol_line data'
  check "$t/b-umounts" "B: mxfsctl umount data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
}

# Host checks on the image after both VMs stopped: only B's records, xfs_repair clean.
fence_after_vms() {
  local t="$1" n1 n2
  "$WORK/mxfs-writer" scan "$TD/disk.raw" --run "$RUN_ID" > "$TD/image.scan"
  n1=$(grep -c '^REC node=1 ' "$TD/image.scan" || true)
  n2=$(grep -c '^REC node=2 ' "$TD/image.scan" || true)
  check "$t/image-only-b" "records in the image after both VMs stopped: node 1: $n1, node 2: $n2 (of $SLOTS slots)" \
    eval '[ "$n1" = 0 ] && [ "$n2" = $SLOTS ]'
  repair_clean "$t"
}
