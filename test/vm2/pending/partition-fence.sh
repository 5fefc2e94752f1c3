# PENDING THE VOLUME WORK. Issue 10, VM test 3 (partition): A owns the volume and writes
# O_DIRECT records and fsync'd files; the host cuts A's link (QMP set_link off). A's kernel
# lease fences within its bound (writes fail with EIO, never succeed again); B takes over
# after the fence-proof wait; the records on the disk are exactly those A saw succeed; every
# fsync'd file matches; nothing of A lands after B took over; xfs_repair -n clean.
# See pending/volumes.sh fence_scenario. Without the kernel lease, A (partitioned, its daemon
# alive but without quorum) would go on writing: records-exact/image-only-b fail.
. "$HERE/pending/volumes.sh"
scenario() { fence_scenario partition-fence cut; }
after_vms() { fence_after_vms partition-fence; }
