# Host-side steps of issue 10's kernel volume tests (tests/gate.sh, owner-killed.sh,
# partition-fence.sh, daemon-death.sh, daemon-paused.sh), sourced by them after lib.sh. They
# run with `driver = kernel`: the module claims the shared disk, exposes the gated device
# /dev/mxfs/data on both VMs, keeps the kernel lease mxfsd renews, and fences on its own.
# The volume is [volume] data on the shared disk at /mnt/data (agent.sh writes it); it is
# driven with mxfsctl mount/umount/standby/volumes, and the module's state is read from
# debugfs (/sys/kernel/debug/mxfs/volumes: the lease line with deadline_ns and
# fence_bound_ms, one line per volume with its gate, its fence records with cause, trigger
# time, duration, drained and shutdown), which works with the node's mxfsd dead or stopped.
VOLUME_DRIVER=kernel

# fence_wait_ms BOUND: how long a node taking over waits past the old owner's departure from
# the view: the fence bound + a quarter + 50 ms (src/volumes/manager.ts fenceWaitMs).
fence_wait_ms() { echo $(( $1 + ($1 + 3) / 4 + 50 )); }

# a_fence_bound TEST: A's module's fence bound (debugfs fence_bound_ms), in A_BOUND.
a_fence_bound() {
  vm_do a 30 'sed -n "1s/.*fence_bound_ms=\([0-9]*\).*/\1/p" /sys/kernel/debug/mxfs/volumes'
  A_BOUND=$VM_OUT
  [[ "$A_BOUND" =~ ^[0-9]+$ ]] || { fail "$1/a-fence-bound" "cannot read A's fence bound from debugfs: $VM_OUT"; A_BOUND=0; return 1; }
}

# b_waited_fence_proof TEST: B's takeover used the fence-proof rule: A was out of the view
# for at least A's fence bound + margin before B took the volume. B's mxfsd logs the proof of
# every takeover ("node 1's generation G is fenced: node 1 left the view N ms ago (fence
# bound B ms ..."); N is B's own measure, B the bound in A's record, which must be the one A's
# module reports (A_BOUND). Fails if the takeover does not wait (fence wait forced to 0) or if
# the record carries another bound than the module's.
b_waited_fence_proof() {
  local t="$1" line left bound
  vm_do b 30 'grep -o "node 1.s generation [0-9]* is fenced: [^\"]*" /tmp/mxfsd.log | tail -n 1'
  line=$VM_OUT
  left=$(echo "$line" | sed -n 's/.*left the view \([0-9]*\) ms ago.*/\1/p')
  bound=$(echo "$line" | sed -n 's/.*(fence bound \([0-9]*\) ms.*/\1/p')
  check "$t/b-waited-fence-proof" "B's takeover proof: '${line:-none}'; A's module reports fence bound ${A_BOUND} ms, so the wait must be >= $(fence_wait_ms "${A_BOUND:-0}") ms" \
    eval '[ -n "$left" ] && [ "$bound" = "$A_BOUND" ] && [ "$left" -ge "$(fence_wait_ms "$A_BOUND")" ]'
  B_LEFT_MS=${left:-?}
}

# b_replayed_log TEST: B's mount of the dead owner's volume replayed its XFS log.
b_replayed_log() {
  vm_do b 30 'dmesg | grep -E "XFS \(mxfs!data\): (Starting|Ending) recovery" | tail -n 2'
  check "$1/b-log-replayed" "B's kernel log: $(echo "$VM_OUT" | tr '\n' ';')" \
    eval '[[ "$VM_OUT" == *"Starting recovery"* ]] && [[ "$VM_OUT" == *"Ending recovery"* ]]'
}

# fence_scenario TEST FAULT: tests 3-5 of issue 10. A owns and mounts the volume and writes
# sequence-numbered O_DIRECT|O_DSYNC records (one per 4 KiB slot of a preallocated file,
# stamped with A's CLOCK_MONOTONIC and CLOCK_REALTIME just before each write is issued) and
# fsync'd files, logging every outcome on its console; B is standby. FAULT hits A:
#   cut    QMP set_link off on A's NIC (partition: A's daemon loses quorum; its kernel lease,
#          renewed no more, ends at its deadline)
#   kill9  kill -9 of A's mxfsd (the module sees the daemon's socket released)
#   stop   SIGSTOP of A's mxfsd past the lease (the kernel lease's deadline), SIGCONT after
#          B took over
# Checks (each can fail on its own):
#   a-writes-fail        A's record writer gets EIO (errno 5) after the fault
#   a-fence-record       A's module recorded the fence with the cause this fault must give
#                        (cut: lease-expired or lease-lost; kill9: daemon-lost; stop:
#                        lease-expired), its writes drained, XFS shut down, gate fenced
#   b-takes-over         B mounts (log replay) and writes; b-log-replayed; generation +1
#   b-waited-fence-proof B waited A's fence bound + margin after A left the view
#   a-no-success-after-error  neither of A's writers succeeded after its first error
#   records-acked        every record A saw succeed is on the disk, and besides them at
#                        most one: the write that was in flight when the fence came (A's
#                        first failed one). The fence drains the writes in flight, so that
#                        one may land and still fail (XFS completes a direct write with EIO
#                        once it is shut down): a failed write's outcome is unknown, as
#                        always; records-before-fence bounds when it was issued
#   records-before-fence every node-1 record on the disk was issued before A's fence point:
#                        its monotonic stamp before A's kernel lease deadline (deadline_ns)
#                        and its wall-clock stamp not after the fence's trigger (time_ms).
#                        Nothing A issued after its lease ended or its fence began landed
#   fsynced-files        every file A saw fsync'd is on the disk with its checksum
#   files-after-fence    besides them, at most A's first failed file is on the disk: none A
#                        created after its first error
#   a-debugfs-lease, a-volumes-shows-fence (cut only: A's mxfsd runs)  debugfs and mxfsctl
#                        volumes on A show the fence state, the kernel lease's state and age,
#                        the fence with its cause and duration (a_shows_fence)
#   b-overwrites / image-only-b (after_vms)  B rewrote every slot A ever tried (its writer's
#                        ok + err: it writes the slots in order and stops after 200
#                        consecutive errors); once both VMs stopped the host's scan of the
#                        image finds only B's records there: nothing of A landed after B's
#                        writes; xfs-repair: xfs_repair -n clean
SLOTS=8192
fence_scenario() {
  local t="$1" fault="$2" g0 t0 line fence_ms b_ms ok_a found_a dbg lease_line fence_line deadline_ns \
    deadline_ms trig_ms cause want late n_late last_mono last_real tried first_err missing extra first_ferr fextra
  cluster_formed "$t" || return
  vm_do a 120 'ctl mount data --wait --timeout 60000 && wait_vol data mounted 60 && mkdir -p $MNT/files && mxfs-writer prep $MNT/records --slots '$SLOTS
  check "$t/a-mounts" "A: mxfsctl mount data, records file prepared: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ';')" [ "$VM_RC" = 0 ] || return
  g0=$(echo "$VM_OUT" | sed -n 's/.*generation=\([0-9]*\).*/\1/p' | head -n 1)
  a_fence_bound "$t"
  vm_do b 60 'ctl standby data && wait_vol data standby 60'
  check "$t/b-standby" "B: mxfsctl standby data: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ';')" [ "$VM_RC" = 0 ]
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
  # The console may append a kernel message to the writer's line before its newline (seen in
  # CI: "... err errno=5[   47.06] XFS (mxfs!data): User initiated shutdown ..."), so the
  # errno is matched as a whole number, not as the line's end.
  check "$t/a-writes-fail" "A's first failed record write ${fence_ms} ms after the fault: ${line:-none} (EIO = 5)" \
    eval '[[ "$line" =~ " err errno=5"([^0-9]|$) ]]'

  line=$(wait_console b 'MXFS-FILE node=2 name=f2-000001 .* ok' 180); b_ms=$(ms_since "$t0")
  check "$t/b-takes-over" "B mounted and wrote its first file ${b_ms} ms after the fault: ${line:-none}" [ -n "$line" ]
  # The module's own account, once the fence work has recorded it (A's daemon may be dead or
  # stopped: debugfs needs neither). Read after B's first write, so that the host is already
  # watching B's console when B writes (the time printed is the host's).
  vm_do a 90 'n=0; until grep -q "^  fence cause=" /sys/kernel/debug/mxfs/volumes; do [ $n -ge 600 ] && break; usleep 100000; n=$((n + 1)); done;
              cat /sys/kernel/debug/mxfs/volumes'
  dbg=$VM_OUT
  lease_line=$(echo "$dbg" | head -n 1)
  fence_line=$(echo "$dbg" | grep '^  fence cause=' | tail -n 1)
  deadline_ns=$(echo "$lease_line" | sed -n 's/.* deadline_ns=\([0-9]*\).*/\1/p')
  trig_ms=$(echo "$fence_line" | sed -n 's/.* time_ms=\([0-9]*\).*/\1/p')
  cause=$(echo "$fence_line" | sed -n 's/.*cause=\([a-z-]*\).*/\1/p')
  case "$fault" in cut) want='lease-expired|lease-lost' ;; kill9) want='daemon-lost' ;; stop) want='lease-expired' ;; esac
  check "$t/a-fence-record" "A's module: $(echo "$dbg" | grep -E '^volume=data' | sed 's/ dev=[^ ]*//'); ${fence_line# } (cause wanted: $want)" \
    eval '[[ "$cause" =~ ^($want)$ ]] && [[ "$fence_line" == *" drained=1 shutdown=done"* ]] && [[ "$(echo "$dbg" | grep -E "^volume=data")" == *" gate=fenced "* ]]'

  vm_do b 60 'vol_line data'
  check "$t/generation" "B's view after the takeover: $VM_OUT (A's generation was $g0)" \
    eval '[[ "$VM_OUT" == "state=mounted owner=2 generation=$((g0 + 1))" ]]'
  b_replayed_log "$t"
  b_waited_fence_proof "$t"
  echo "MXFS-VM2-TIME $t fault->A-first-EIO ${fence_ms} ms, fault->B-first-write ${b_ms} ms; A's fence: cause ${cause:-?} $(echo "$fence_line" | grep -o 'duration_us=[0-9]*'), bound ${A_BOUND} ms; B waited ${B_LEFT_MS} ms after A left its view"

  # A's side, with its daemon running again (a stopped one answers nothing): the writers'
  # summaries (they stop after --max-errors consecutive errors).
  [ "$fault" = stop ] && vm_do a 30 'kill -CONT $(mxfsd_pid)'
  vm_do a 120 'bg_rc recs 100 >/dev/null; bg_rc files 100 >/dev/null; grep -h -E "MXFS-(REC|FILE)-END" /tmp/bg/recs.log /tmp/bg/files.log'
  check "$t/a-no-success-after-error" "A's writers: $(echo "$VM_OUT" | tr '\n' ';')" \
    eval '[ "$(echo "$VM_OUT" | grep -c "END .*err=[1-9][0-9]* .*late_ok=0")" = 2 ]'
  first_err=$(echo "$VM_OUT" | sed -n 's/.*MXFS-REC-END node=1 .* first_err=\([0-9]*\).*/\1/p')
  # The slots A's record writer tried: 1..ok+err (all of them if its summary is missing).
  tried=$(echo "$VM_OUT" | sed -n 's/.*MXFS-REC-END node=1 ok=\([0-9]*\) err=\([0-9]*\) .*/\1 \2/p' | awk '{ print $1 + $2 }')
  [[ "$tried" =~ ^[0-9]+$ ]] && [ "$tried" -gt 0 ] || tried=$SLOTS
  echo "$tried" > "$TD/slots-tried"
  if [ "$fault" = cut ]; then
    vm_do a 60 'vol_line data'
    check "$t/a-daemon-fenced" "A's mxfsd, cut off: $VM_OUT" eval '[[ "$VM_OUT" == "state=fenced "* ]]'
    a_shows_fence "$t" "$lease_line" "$cause"
  fi

  # What A saw succeed, against what B finds on the disk.
  rec_ok_seqs a 1 > "$TD/a-ok.seqs"
  vm_do b 120 'mxfs-writer scan $MNT/records --run $RUN_ID'
  echo "$VM_OUT" | grep '^REC node=1 ' > "$TD/b-found-a.recs"
  sed -n 's/^REC node=1 seq=\([0-9]*\) .*/\1/p' "$TD/b-found-a.recs" | sort -n -u > "$TD/b-found-a.seqs"
  ok_a=$(wc -l < "$TD/a-ok.seqs"); found_a=$(wc -l < "$TD/b-found-a.seqs")
  # Acknowledged but missing (lost writes), and on the disk without an acknowledgement.
  missing=$(grep -v -x -F -f "$TD/b-found-a.seqs" "$TD/a-ok.seqs" | tr '\n' ' ')
  extra=$(grep -v -x -F -f "$TD/a-ok.seqs" "$TD/b-found-a.seqs" | tr '\n' ' ')
  check "$t/records-acked" "A saw $ok_a records succeed (first failure: seq ${first_err:-?}), B finds $found_a of node 1 on the disk; acknowledged but missing: ${missing:-none}; there but not acknowledged: ${extra:-none} (allowed: the first failed one, in flight at the fence)" \
    eval '[ "$ok_a" -ge 100 ] && [ -z "$missing" ] && { [ -z "$extra" ] || [ "$extra" = "$first_err " ]; }'
  # Issued after the fence point: a monotonic stamp past the lease deadline's millisecond, or a
  # wall-clock stamp more than 1 ms past the trigger's (time_ms is derived from the monotonic
  # trigger when the fence starts: 1 ms for the rounding of both).
  deadline_ms=$(( ${deadline_ns:-0} / 1000000 ))
  late=$(awk -v d="$deadline_ms" -v tr="${trig_ms:-0}" '{
      m = $0; sub(/.* mono_ms=/, "", m); sub(/ .*/, "", m); w = $0; sub(/.* real_ms=/, "", w)
      if (m + 0 > d + 0 || w + 0 > tr + 1) print }' "$TD/b-found-a.recs")
  n_late=$(printf '%s' "$late" | grep -c '^REC' || true)
  last_mono=$(sed -n 's/.* mono_ms=\([0-9]*\).*/\1/p' "$TD/b-found-a.recs" | sort -n | tail -n 1)
  last_real=$(sed -n 's/.* real_ms=\([0-9]*\).*/\1/p' "$TD/b-found-a.recs" | sort -n | tail -n 1)
  check "$t/records-before-fence" "node-1 records on the disk issued after A's fence point (lease deadline ${deadline_ms} ms monotonic, trigger ${trig_ms:-?} ms wall): ${n_late}$([ "$n_late" != 0 ] && echo ": $(echo "$late" | head -n 3 | tr '\n' ' ')"); the last one that landed was issued $(( deadline_ms - ${last_mono:-0} )) ms before the deadline, $(( ${trig_ms:-0} - ${last_real:-0} )) ms before the trigger" \
    eval '[ -n "$deadline_ns" ] && [ -n "$trig_ms" ] && [ "$found_a" -gt 0 ] && [ "$n_late" = 0 ]'
  manifest_of a 1 > "$TD/a.manifest"
  vm_put b /tmp/a.manifest "$(cat "$TD/a.manifest")"
  vm_do b 120 'mxfs-writer check-files $MNT/files /tmp/a.manifest'
  check "$t/fsynced-files" "every file A saw fsync'd ($(wc -l < "$TD/a.manifest")), checked on B: $(echo "$VM_OUT" | tail -n 1)" \
    eval '[ "$VM_RC" = 0 ] && [ "$(wc -l < "$TD/a.manifest")" -ge 10 ]'
  # The files on the disk: what A saw fsync'd, and besides at most its first failed one (in
  # flight at the fence). A file A created after its first error must not be there.
  first_ferr=$(console a | grep -a -o "MXFS-FILE node=1 name=f1-[0-9]* err" | head -n 1 | sed 's/.*name=\(f1-[0-9]*\) err/\1/')
  vm_do b 60 'ls $MNT/files | grep "^f1-" | sort'
  echo "$VM_OUT" | grep '^f1-' > "$TD/b-found-a.files"
  cut -d' ' -f1 "$TD/a.manifest" > "$TD/a-ok.files"
  fextra=$(grep -v -x -F -f "$TD/a-ok.files" "$TD/b-found-a.files" | tr '\n' ' ')
  check "$t/files-after-fence" "B finds $(wc -l < "$TD/b-found-a.files") files of A; A saw $(wc -l < "$TD/a-ok.files") fsync'd, its first failed one was ${first_ferr:-none}; on the disk but never acknowledged: ${fextra:-none} (allowed: the first failed one)" \
    eval '[ -n "$first_ferr" ] && [ "$(wc -l < "$TD/b-found-a.files")" -ge 10 ] && { [ -z "$fextra" ] || [ "$fextra" = "$first_ferr " ]; }'
  vm_do b 300 'mxfs-writer records $MNT/records --node 2 --run $RUN_ID --slots '$tried' --interval-ms 0 | tail -n 1'
  check "$t/b-overwrites" "B rewrote the $tried slots A tried: $VM_OUT" eval '[[ "$VM_OUT" == *" ok=$tried err=0 "* ]]'
  [ "$fault" = cut ] && vm_link a on
  vm_do b 120 'ctl umount data && vol_line data'
  check "$t/b-umounts" "B: mxfsctl umount data: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ';')" [ "$VM_RC" = 0 ]
}

# a_shows_fence TEST LEASE_LINE CAUSE: A's fence as its operator sees it, cut off but with its
# mxfsd running. debugfs (LEASE_LINE, read after the fence): the kernel lease is over (expired,
# or lost when the daemon's word came first) and says when it was last renewed (age_ms) and the
# fence bound. `mxfsctl volumes data`: this node is fenced (the Volume actor), and the driver's
# own lines from the module: gate fenced, the kernel lease's state and age, the fence bound,
# and the fence record with the cause debugfs gave (CAUSE), its duration, writes drained.
a_shows_fence() {
  local t="$1" lease_line="$2" cause="$3" vols here kf re_lease re_here re_fence
  re_lease="^lease=(expired|lost) age_ms=[0-9]+ deadline_ns=[0-9]+ fence_bound_ms=${A_BOUND} "
  check "$t/a-debugfs-lease" "A's debugfs lease line: ${lease_line:-none}" eval '[[ "$lease_line" =~ $re_lease ]]'
  vm_do a 90 'ctl volumes data'
  vols=$VM_OUT
  here=$(echo "$vols" | grep '^  driver here: ')
  kf=$(echo "$vols" | grep '^    fence ' | tail -n 1)
  re_here="^  driver here: gate fenced, .* kernel lease (expired|lost), renewed [0-9]+ ms ago, fence bound ${A_BOUND} ms"
  re_fence="^    fence ${cause:-none} at [0-9T:.Z-]+, took [0-9.]+ ms, writes drained$"
  check "$t/a-volumes-shows-fence" "A's mxfsctl volumes data (rc $VM_RC): $(echo "$vols" | grep -E '^  (here |driver here|FENCED)|^    fence ' | tr '\n' ';')" \
    eval '[ "$VM_RC" = 0 ] && [[ "$vols" == *"here (node 1): fenced "* ]] && [[ "$vols" == *"FENCED on node 1: "* ]] && [[ "$here" =~ $re_here ]] && [[ "$kf" =~ $re_fence ]]'
}

# Host checks on the image after both VMs stopped: only B's records, xfs_repair clean.
fence_after_vms() {
  local t="$1" n1 n2 tried
  tried=$(cat "$TD/slots-tried" 2>/dev/null || echo "$SLOTS")
  "$WORK/mxfs-writer" scan "$TD/disk.raw" --run "$RUN_ID" > "$TD/image.scan"
  n1=$(grep -c '^REC node=1 ' "$TD/image.scan" || true)
  n2=$(grep -c '^REC node=2 ' "$TD/image.scan" || true)
  check "$t/image-only-b" "records in the image after both VMs stopped: node 1: $n1, node 2: $n2 (B rewrote the $tried slots A tried)" \
    eval '[ "$n1" = 0 ] && [ "$n2" = "$tried" ]'
  repair_clean "$t"
}
