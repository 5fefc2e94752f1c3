# owner-killed (issue 10, VM test 2): A owns the volume and writes fsync'd files, logging each
# file's checksum on its console once fsync returned (the manifest); B is a standby (mxfsctl
# standby data). The host kills A's qemu (a power loss). B takes over after the fence-proof
# wait (A out of its view for at least A's fence bound + margin), its mount replays A's XFS
# log, and every file of the manifest is there with its checksum; generation +1. Prints the
# time from the kill to B's first write (MXFS-VM2-TIME).
# Fails without the feature: without takeover B never mounts (b-takes-over); without log
# replay or with lost fsync'd data, fsynced-files; a takeover that does not wait out the fence
# bound, b-waited-fence-proof (checked by mutation: with fenceWaitMs() returning 0 in
# src/volumes/manager.ts B took over 785 ms after A left its view, and this check failed).
. "$HERE/volumes.sh"
scenario() {
  local t=owner-killed g0 t0 line b_ms
  cluster_formed $t || return
  vm_do a 120 'ctl mount data --wait --timeout 60000 && wait_vol data mounted 60'
  check $t/a-mounts "A: mxfsctl mount data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ] || return
  g0=$(echo "$VM_OUT" | sed -n 's/.*generation=\([0-9]*\).*/\1/p' | head -n 1)
  a_fence_bound $t
  vm_do b 60 'ctl standby data && wait_vol data standby 60'
  check $t/b-standby "B: mxfsctl standby data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
  vm_do a 30 'bg_console files mxfs-writer files $MNT --node 1 --run $RUN_ID --count 100000 --size 65536 --interval-ms 20'
  vm_start b 'until grep -q " $MNT " /proc/mounts; do usleep 50000; done;
              mxfs-writer files $MNT --node 2 --run $RUN_ID --count 1 --size 4096 --interval-ms 0 > /dev/console' >/dev/null
  wait_console a 'MXFS-FILE node=1 name=f1-000030 .* ok' 180 >/dev/null
  check $t/a-writing "A fsync'd 30 files" [ $? = 0 ]
  t0=$(now_ns)
  vm_kill a
  check $t/a-killed "A's qemu killed with SIGKILL" eval '! vm_alive a'
  line=$(wait_console b 'MXFS-FILE node=2 name=f2-000001 .* ok' 180); b_ms=$(ms_since "$t0")
  check $t/b-takes-over "B mounted (log replay) and wrote its first file ${b_ms} ms after the kill: ${line:-none}" [ -n "$line" ]
  vm_do b 60 'vol_line data'
  check $t/generation "B's view: $VM_OUT (A's generation was $g0)" eval '[[ "$VM_OUT" == "state=mounted owner=2 generation=$((g0 + 1))" ]]'
  b_replayed_log $t
  b_waited_fence_proof $t
  echo "MXFS-VM2-TIME owner-killed kill->B-first-write ${b_ms} ms; B waited ${B_LEFT_MS} ms after A left its view (A's fence bound ${A_BOUND} ms)"
  manifest_of a 1 > "$TD/a.manifest"
  vm_put b /tmp/a.manifest "$(cat "$TD/a.manifest")"
  vm_do b 120 'mxfs-writer check-files $MNT /tmp/a.manifest'
  check $t/fsynced-files "every file A saw fsync'd ($(wc -l < "$TD/a.manifest")), checked on B: $(echo "$VM_OUT" | tail -n 1)" \
    eval '[ "$VM_RC" = 0 ] && [ "$(wc -l < "$TD/a.manifest")" -ge 30 ]'
  vm_do b 120 'ctl umount data && vol_line data'
  check $t/b-umounts "B: mxfsctl umount data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
}
after_vms() { repair_clean owner-killed; }
