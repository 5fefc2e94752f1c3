# daemon-paused (issue 10, VM test 5): SIGSTOP of mxfsd on the owner A past the lease. Nobody
# renews the kernel lease: the module's own deadline check and timer fence (cause
# lease-expired) while the daemon is stopped; A's writers get EIO, never a success after it;
# B takes over after the fence-proof wait; the disk holds every write A saw succeed (and at
# most the one in flight at the fence besides), nothing issued after the lease deadline.
# After SIGCONT A's writers still never succeed.
# Checks: volumes.sh fence_scenario.
# Checked by mutation: a module whose bio path and lease timer ignore the deadline failed
# a-writes-fail, a-fence-record, records-exact (since replaced by records-acked), image-only-b
# and xfs-repair: A wrote all its slots while its mxfsd was stopped and B owned the volume,
# and the image was corrupt.
. "$HERE/volumes.sh"
scenario() { fence_scenario daemon-paused stop; }
after_vms() { fence_after_vms daemon-paused; }
