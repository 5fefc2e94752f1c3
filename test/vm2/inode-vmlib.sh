# In-VM helpers of the two-VM inode-lock tests (tests/inode-locks.sh, tests/inode-ops.sh), in
# the image at /mxfs/vm2/inode-vmlib.sh; their scripts source it after vmlib.sh:
#   gl_line INO             the module's debugfs glocks line of data:INO (empty: not cached)
#   gl_field INO FIELD      one field of it (mode state holders waiters demote pages ...)
#   mstat NAME              a counter of debugfs status (requests, glock_hits, glock_syncs ...)
#   hook_calls SYMBOL       debugfs hooks: calls of that entry point on MXFS volumes
#   passthrough             debugfs hooks: calls of the hooked XFS functions on other
#                           filesystems
#   wait_waiters INO N SEC  wait until N tasks wait for data:INO's lock on this node
#   ilock INO MODE CMD...   run CMD under `mxfsctl lock --lockspace mxfs-inodes data:INO MODE`
#   ihold NAME INO MODE [PRE]   take data:INO in MODE in the background job NAME (vmlib bg):
#                           its command runs the shell text PRE, creates /tmp/NAME.granted,
#                           then waits for /tmp/NAME.release; returns once granted (120 s)
#   irelease NAME           end that command; prints the job's exit status
#   probe ARGS...           the probe of test/vm/inode-probe.c
#   rdisk                   the device a node reads the shared disk through: the gated
#                           /dev/mxfs/data (read-only opens pass a closed gate), else the disk
DBG=/sys/kernel/debug/mxfs

gl_line() { grep "^volume=data ino=$1 " $DBG/glocks; }
gl_field() { gl_line "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
mstat() { grep "^$1=" $DBG/status | cut -d= -f2; }
hook_calls() { grep "^hook=$1 " $DBG/hooks | sed 's/.*calls=\([0-9]*\).*/\1/'; }
passthrough() { sed -n '1s/.*passthrough=\([0-9]*\).*/\1/p' $DBG/hooks; }
wait_waiters() {
  n=$(($3 * 10))
  until [ "$(gl_field "$1" waiters)" = "$2" ]; do
    [ $n -le 0 ] && return 1
    usleep 100000; n=$((n - 1))
  done
}
ilock() {
  ino=$1 mode=$2; shift 2
  node /mxfs/dist/src/cli/mxfsctl.js --config "$CONF" lock --lockspace mxfs-inodes "data:$ino" "$mode" -- "$@"
}
ihold() {
  rm -f /tmp/$1.granted /tmp/$1.release
  bg "$1" node /mxfs/dist/src/cli/mxfsctl.js --config "$CONF" lock --lockspace mxfs-inodes "data:$2" "$3" -- \
    sh -c "$4"'
      touch "$0.granted"; while [ ! -e "$0.release" ]; do usleep 50000; done' /tmp/$1
  wait_file /tmp/$1.granted 120
}
irelease() { touch /tmp/$1.release; bg_rc "$1" 120; }
probe() { /usr/bin/inode-probe "$@"; }
rdisk() { if [ -b /dev/mxfs/data ]; then echo /dev/mxfs/data; else echo "$DEV"; fi; }
