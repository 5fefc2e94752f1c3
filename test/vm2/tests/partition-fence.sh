# partition-fence (issue 10, VM test 3): A owns the volume and writes O_DIRECT records and
# fsync'd files; the host cuts A's link (QMP set_link off). A's daemon loses quorum and its
# kernel lease, renewed no more, ends at its deadline: the module fences (lease-expired, or
# lease-lost if the daemon's word came first), A's writes fail with EIO and never succeed
# again; B takes over after the fence-proof wait; from the disk: every record A saw succeed is
# there (and at most the one in flight at the fence besides), none was issued after A's lease deadline or fence trigger,
# every fsync'd file matches and no file A created after its first error is there, nothing of
# A lands after B's writes; xfs_repair -n clean. A, cut off, shows its fence: debugfs's lease
# line (expired or lost, its age, the bound) and `mxfsctl volumes data` (fenced, the module's
# gate, kernel lease state and age, the fence with its cause and duration).
# Checks: volumes.sh fence_scenario.
# Checked by mutation: a module whose bio path and lease timer ignore the deadline (only the
# daemon's LEASE_LOST fences) failed records-before-fence: 5 records A issued 16-77 ms after
# its lease deadline were on the disk. b-waited-fence-proof is the check owner-killed shares,
# which fenceWaitMs() returning 0 made fail. `test/vm/mutations.sh run no-fence-io` (write bios
# pass whatever the gate and lease, no XFS shutdown, the hooks blind to the fence) failed
# records-before-fence (7 records issued 14-109 ms past the deadline on the disk) and
# a-fence-record (shutdown=no-fs); A's writers still got EIO ~110 ms later from the inode
# locks its mxfsd lost with quorum, so a-writes-fail and files-after-fence did not tell it
# apart. a-volumes-shows-fence needs mxfsctl's `driver here` lines (the module's gate, lease
# age and fence records): without them it fails (argued from its patterns, not run).
. "$HERE/volumes.sh"
scenario() { fence_scenario partition-fence cut; }
after_vms() { fence_after_vms partition-fence; }
