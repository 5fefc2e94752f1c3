# partition-fence (issue 10, VM test 3): A owns the volume and writes O_DIRECT records and
# fsync'd files; the host cuts A's link (QMP set_link off). A's daemon loses quorum and its
# kernel lease, renewed no more, ends at its deadline: the module fences (lease-expired, or
# lease-lost if the daemon's word came first), A's writes fail with EIO and never succeed
# again; B takes over after the fence-proof wait; from the disk: every record A saw succeed is
# there (and at most the one in flight at the fence besides), none was issued after A's lease deadline or fence trigger,
# every fsync'd file matches, nothing of A lands after B's writes; xfs_repair -n clean.
# Checks: volumes.sh fence_scenario.
# Checked by mutation: a module whose bio path and lease timer ignore the deadline (only the
# daemon's LEASE_LOST fences) failed records-before-fence: 5 records A issued 16-77 ms after
# its lease deadline were on the disk. b-waited-fence-proof is the check owner-killed shares,
# which fenceWaitMs() returning 0 made fail.
. "$HERE/volumes.sh"
scenario() { fence_scenario partition-fence cut; }
after_vms() { fence_after_vms partition-fence; }
