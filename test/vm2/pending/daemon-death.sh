# PENDING THE VOLUME WORK. Issue 10, VM test 4 (daemon death): kill -9 of mxfsd on the owner
# A while it writes; the module fences (the daemon's netlink socket is released) within its
# bound; B takes over; A's writers get EIO, never silent success. Same checks as the
# partition test (pending/volumes.sh fence_scenario); A's fence state is read from debugfs,
# its daemon being dead. Without the fence on daemon death, A's writers go on succeeding:
# a-writes-fail and records-exact fail.
. "$HERE/pending/volumes.sh"
scenario() { fence_scenario daemon-death kill9; }
after_vms() { fence_after_vms daemon-death; }
