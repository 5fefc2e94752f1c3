# Host-side steps shared by the two-VM inode-lock tests (tests/inode-locks.sh, inode-ops.sh),
# sourced by them after lib.sh. They run with `driver = kernel`: A (node 1) owns and mounts the
# volume through `mxfsctl mount data` (/dev/mxfs/data on /mnt/data, XFS hooked by the module);
# B (node 2) never mounts it while A owns it, and takes part through the DLM only: `mxfsctl
# lock --lockspace mxfs-inodes data:<ino> MODE` (the inode's cluster lock, the one A's kernel
# caches). B reads the file's data where it is on the shared disk (the extent A's FIEMAP
# reports, O_DIRECT through B's own gated device, which passes reads on a node that does not
# own the volume) and writes only inside that extent, on the raw disk, while it holds EX:
# data blocks in place, never XFS metadata, so A's XFS stays consistent (xfs_repair -n at the
# end proves it).
#   iv ROLE SECONDS SCRIPT    vm_do with test/vm2/inode-vmlib.sh sourced
#   a_mounts TEST             A: mxfsctl mount data; periodic write-back off on A (dirty pages
#                             stay dirty until something asks for them: the check of the
#                             callback's write-back must not race the flusher)
#   a_file TEST NAME MARKER   A writes /mnt/data/NAME (64 KiB of MARKER), syncs it (its blocks
#                             allocated), prints nothing; sets INO_<NAME> and OFF_<NAME> (the
#                             inode number and the disk offset of its first block)
VOLUME_DRIVER=kernel

iv() { vm_do "$1" "$2" ". /mxfs/vm2/inode-vmlib.sh; $3"; }

a_mounts() {
  iv a 120 'ctl mount data --wait --timeout 60000 && wait_vol data mounted 60 && grep " $MNT " /proc/mounts &&
    echo 0 > /proc/sys/vm/dirty_writeback_centisecs && echo 360000 > /proc/sys/vm/dirty_expire_centisecs'
  check "$1/a-mounts" "A: mxfsctl mount data: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ';')" \
    eval '[ "$VM_RC" = 0 ] && [[ "$VM_OUT" == *"/dev/mxfs/data /mnt/data xfs"* ]]'
}

a_file() {
  local t="$1" name="$2" ino off
  iv a 60 'probe fill $MNT/'"$name $3"' 64 >/dev/null && sync && stat -c "INO %i" $MNT/'"$name"' && probe extent $MNT/'"$name"
  ino=$(echo "$VM_OUT" | sed -n 's/^INO \([0-9]*\)$/\1/p')
  off=$(echo "$VM_OUT" | sed -n 's/^EXTENT phys=\([0-9]*\) .*/\1/p')
  if [ "$VM_RC" != 0 ] || [ -z "$ino" ] || [ -z "$off" ]; then
    fail "$t/a-file-$name" "A could not write $name or map its extent: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ';')"
    return 1
  fi
  printf -v "INO_$name" '%s' "$ino"
  printf -v "OFF_$name" '%s' "$off"
}
