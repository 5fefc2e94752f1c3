# PENDING THE VOLUME WORK. Issue 10, VM test 5 (daemon paused): SIGSTOP of mxfsd on the owner
# A past the lease; the kernel lease timer (no renewals from the stopped daemon) fences; B
# takes over; after SIGCONT A's volume stays fenced and its writers never succeeded again.
# Same checks as the partition test (pending/volumes.sh fence_scenario). Without the kernel
# lease timer, A's writers go on succeeding while its daemon is stopped.
. "$HERE/pending/volumes.sh"
scenario() { fence_scenario daemon-paused stop; }
after_vms() { fence_after_vms daemon-paused; }
