# shared-disk: both VMs see the same disk, and the failover tests' writer and checks work.
# A mounts the raw disk (XFS, made on the host), writes 1 MiB of random data, 256
# O_DIRECT|O_DSYNC records and 20 fsync'd files with mxfs-writer (each outcome logged on its
# console), and unmounts; B mounts it, reads the same sha256, finds on the disk exactly the
# records A's console says succeeded, and every file of A's manifest with its checksum.
# After the VMs stop, the host's scan of the image finds the 256 records of node 1 and
# `xfs_repair -n` is clean.
# Uses /dev/vda directly: possible because the [volume] here uses the command driver, so the
# mxfs module does not claim the disk (with driver = kernel it does, and the same checks run
# through /dev/mxfs/data in the kernel volume tests: gate, partition-fence...).
SLOTS=256
scenario() {
  local t=shared-disk sa sb na nb
  vm_do a 180 'mount -t xfs $DEV $MNT && dd if=/dev/urandom of=$MNT/from-a bs=64k count=16 2>/dev/null && sync &&
    sha256sum $MNT/from-a | cut -d" " -f1 &&
    mxfs-writer prep $MNT/records --slots '$SLOTS' > /dev/null &&
    mxfs-writer records $MNT/records --node 1 --run $RUN_ID --slots '$SLOTS' --interval-ms 0 | tee /dev/console | tail -n 1 &&
    mkdir $MNT/files && mxfs-writer files $MNT/files --node 1 --run $RUN_ID --count 20 --size 16384 --interval-ms 0 | tee /dev/console | tail -n 1 &&
    umount $MNT'
  sa=$(echo "$VM_OUT" | head -n 1)
  check $t/a-writes "A mounted the shared disk, wrote 1 MiB (sha256 ${sa:0:16}...), records and files, unmounted: rc=$VM_RC $(echo "$VM_OUT" | tail -n 2 | tr '\n' ';')" \
    eval '[ "$VM_RC" = 0 ] && [[ "$VM_OUT" == *"MXFS-REC-END node=1 ok=$SLOTS err=0"* ]] && [[ "$VM_OUT" == *"MXFS-FILE-END node=1 ok=20 err=0"* ]]'
  manifest_of a 1 > "$TD/a.manifest"
  rec_ok_seqs a 1 > "$TD/a-ok.seqs"
  vm_put b /tmp/a.manifest "$(cat "$TD/a.manifest")"
  vm_do b 180 'mount -t xfs $DEV $MNT && sha256sum $MNT/from-a | cut -d" " -f1 &&
    mxfs-writer scan $MNT/records --run $RUN_ID && mxfs-writer check-files $MNT/files /tmp/a.manifest; rc=$?; umount $MNT; exit $rc'
  sb=$(echo "$VM_OUT" | head -n 1)
  check $t/b-reads "B mounted the disk after A and read the file: sha256 ${sb:0:16}... (A's ${sa:0:16}...)" \
    eval '[ -n "$sa" ] && [ "$sa" = "$sb" ]'
  echo "$VM_OUT" | sed -n 's/^REC node=1 seq=\([0-9]*\) .*/\1/p' | sort -n -u > "$TD/b-found-a.seqs"
  na=$(wc -l < "$TD/a-ok.seqs"); nb=$(wc -l < "$TD/b-found-a.seqs")
  check $t/b-finds-records "A's console: $na records ok; B finds $nb of node 1 on the disk, the same set" \
    eval '[ "$na" = $SLOTS ] && cmp -s "$TD/a-ok.seqs" "$TD/b-found-a.seqs"'
  check $t/b-checks-files "A's manifest ($(wc -l < "$TD/a.manifest") files) checked on B: rc=$VM_RC $(echo "$VM_OUT" | tail -n 1)" \
    eval '[ "$VM_RC" = 0 ] && [ "$(wc -l < "$TD/a.manifest")" = 20 ] && [[ "$VM_OUT" == *"CHECK-FILES total=20 ok=20 bad=0"* ]]'
}
after_vms() {
  local n
  n=$("$WORK/mxfs-writer" scan "$TD/disk.raw" --run "$RUN_ID" | grep -c '^REC node=1 ')
  check shared-disk/image-records "the host's scan of the image finds $n records of node 1 (of $SLOTS)" [ "$n" = $SLOTS ]
  repair_clean shared-disk
}
