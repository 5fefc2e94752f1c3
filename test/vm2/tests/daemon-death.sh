# daemon-death (issue 10, VM test 4): kill -9 of mxfsd on the owner A while it writes. The
# module sees the daemon's netlink socket released and fences at once (cause daemon-lost):
# A's writers get EIO, never a success after it; B takes over after the fence-proof wait; the
# disk holds every write A saw succeed (and at most the one in flight at the fence besides),
# nothing issued after the fence; fsync'd files match.
# A's fence is read from debugfs (its daemon is dead). Checks: volumes.sh fence_scenario.
# Checked by mutation: a module that ignores the daemon's death (no fence on
# NETLINK_URELEASE) failed a-fence-record (A was fenced seconds later by the lease deadline,
# cause lease-expired: the lease still protects the data, the daemon-death fence is what
# makes it immediate).
. "$HERE/volumes.sh"
scenario() { fence_scenario daemon-death kill9; }
after_vms() { fence_after_vms daemon-death; }
