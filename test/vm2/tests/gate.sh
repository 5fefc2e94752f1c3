# gate (issue 10, VM test 1): A owns and mounts the volume (mxfsctl mount data: /dev/mxfs/data
# on /mnt/data) and writes fsync'd files; on B, `mxfsctl mount data --no-wait` is refused
# (exit 1, naming node 1), opening /dev/mxfs/data for writing is refused (ENOLCK), mounting it
# fails, and mounting the raw disk fails (EBUSY: the module's exclusive claim); A unmounts; B
# mounts and finds A's files with their checksums; now A cannot mount the raw disk either.
# Fails without the feature: without the gate B's open/mount of /dev/mxfs/data succeeds
# (b-open-refused, b-gated-mount-refused); without the claim B's raw mount succeeds
# (b-raw-mount-refused); without the ownership lock B's mount --no-wait succeeds.
# Checked by mutation: a module whose write opens pass a closed gate (mxfs_vol_open) made
# b-open-refused fail (dd opened the device; its write then failed with EIO at the bio gate,
# which also kept b-gated-mount-refused passing). This test found that the tiebreaker (node 2) was never given a
# kernel lease, so B could not mount after A's umount (src/volumes/manager.ts).
. "$HERE/volumes.sh"
scenario() {
  local t=gate
  cluster_formed $t || return
  vm_do a 120 'ctl mount data --wait --timeout 60000 && wait_vol data mounted 60 && grep " $MNT " /proc/mounts'
  check $t/a-mounts "A: mxfsctl mount data: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ';')" \
    eval '[ "$VM_RC" = 0 ] && [[ "$VM_OUT" == *"/dev/mxfs/data /mnt/data xfs"* ]]'
  vm_do a 120 'mxfs-writer files $MNT --node 1 --run $RUN_ID --count 20 --size 16384 --interval-ms 0 | tee /dev/console | tail -n 1'
  check $t/a-writes "A wrote 20 fsync'd files: $VM_OUT" eval '[[ "$VM_OUT" == *"ok=20 err=0"* ]]'
  vm_do b 60 'ctl mount data --no-wait'
  check $t/b-mount-refused "B: mxfsctl mount data --no-wait: rc=$VM_RC $VM_OUT" eval '[ "$VM_RC" = 1 ] && [[ "$VM_OUT" == *"node 1"* ]]'
  # The device must exist on B too (the module exposes it on every node): refusing to open a
  # missing device proves nothing. ENOLCK ("No locks available": this node does not hold the
  # volume's lock; not EACCES/EROFS, on which mount(8) retries read-only).
  vm_do b 60 '[ -b /dev/mxfs/data ] || { echo "no block device /dev/mxfs/data"; exit 99; }
    dd if=/dev/zero of=/dev/mxfs/data bs=4096 count=1 conv=notrunc oflag=direct'
  check $t/b-open-refused "B: open /dev/mxfs/data for writing: rc=$VM_RC $VM_OUT" \
    eval '[ "$VM_RC" != 0 ] && [ "$VM_RC" != 99 ] && [[ "$VM_OUT" == *"No locks available"* ]]'
  vm_do b 60 '[ -b /dev/mxfs/data ] || { echo "no block device /dev/mxfs/data"; exit 99; }
    mkdir -p /mnt/x && mount -t xfs /dev/mxfs/data /mnt/x'
  check $t/b-gated-mount-refused "B: mount /dev/mxfs/data: rc=$VM_RC $VM_OUT" eval '[ "$VM_RC" != 0 ] && [ "$VM_RC" != 99 ]'
  vm_do b 60 'mkdir -p /mnt/raw && mount -t xfs $DEV /mnt/raw'
  check $t/b-raw-mount-refused "B: mount the raw disk: rc=$VM_RC $VM_OUT (EBUSY expected)" \
    eval '[ "$VM_RC" != 0 ] && [[ "$VM_OUT" == *[Bb]usy* ]]'
  vm_do b 30 'umount /mnt/raw /mnt/x 2>/dev/null; true'   # only if a check above failed
  vm_do a 120 'ctl umount data && wait_vol data unmounted 60'
  check $t/a-umounts "A: mxfsctl umount data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
  manifest_of a 1 > "$TD/a.manifest"
  vm_put b /tmp/a.manifest "$(cat "$TD/a.manifest")"
  vm_do b 120 'ctl mount data --wait --timeout 60000 && wait_vol data mounted 60 && mxfs-writer check-files $MNT /tmp/a.manifest'
  check $t/b-sees-a-files "B mounted after A's umount and checked A's files: rc=$VM_RC $(echo "$VM_OUT" | tail -n 1)" \
    eval '[ "$VM_RC" = 0 ] && [ "$(wc -l < "$TD/a.manifest")" = 20 ]'
  vm_do a 60 'mkdir -p /mnt/raw && mount -t xfs $DEV /mnt/raw'
  check $t/a-raw-mount-refused "A: mount the raw disk while B owns the volume: rc=$VM_RC $VM_OUT" \
    eval '[ "$VM_RC" != 0 ] && [[ "$VM_OUT" == *[Bb]usy* ]]'
  vm_do a 30 'umount /mnt/raw 2>/dev/null; true'
  vm_do b 120 'ctl umount data'
  check $t/b-umounts "B: mxfsctl umount data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
}
after_vms() { repair_clean gate; }
