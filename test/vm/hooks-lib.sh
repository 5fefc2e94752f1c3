# Helpers of the VM scripts on a mounted kernel volume (hooks-tests.sh, burst-tests.sh,
# hooks-bench.sh): they set T (debugfs), CONF (mxfsd's configuration) before sourcing this.
HP=0; HF=0
CHECKS=${CHECKS:-hooks}   # the prefix of the check names
# vm-tests.sh prints this script's stdout when it ends; progress goes to stderr (the console)
# as it happens, so a run that hangs still shows how far it got.
progress() { echo "$(basename "$0" .sh): $*" | cut -c1-300 >&2; }
pass() { echo "MXFS-TEST PASS $CHECKS/$1: $2"; HP=$((HP + 1)); progress "pass $1"; }
fail() { echo "MXFS-TEST FAIL $CHECKS/$1: $2"; HF=$((HF + 1)); progress "FAIL $1: $2"; }
check() { n="$1"; d="$2"; shift 2; if "$@"; then pass "$n" "$d"; else fail "$n" "$d"; fi; }
wait_for() { n=$(($1 * 10)); shift; while [ $n -gt 0 ]; do "$@" && return 0; usleep 100000; n=$((n - 1)); done; return 1; }
ctl() { node /mxfs/dist/src/cli/mxfsctl.js --config $CONF "$@"; }
stat_of() { grep "^$1=" $T/status | cut -d= -f2; }
gl_line() { grep "^volume=data ino=$1 " $T/glocks; }
gl_field() { gl_line "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
hook_calls() { grep "^hook=$1 " $T/hooks | sed 's/.*calls=\([0-9]*\).*/\1/'; }
dlm_locks() { ctl status | sed -n 's/.* locks \([0-9]*\).*/\1/p'; }
# lock_gap: the daemon's locks minus the cluster locks the kernel holds. The kernel bridge is
# the daemon's only client here, so the gap (the daemon's own locks: the volume's) stays what
# it was after the mount once every release and grant has arrived; a lost release raises it.
lock_gap() { echo $(( $(dlm_locks) - $(stat_of held) )); }
# settle_gap GAP: the gap once it is GAP again, or once three looks 2 s apart found it unchanged
# (each look starts a Node process, seconds under TCG; the daemon takes a burst of releases in
# at tens of ms each, so a gap still falling is waited for however slow the machine is).
settle_gap() {
  g=$(lock_gap); same=0
  while [ "$g" != "$1" ] && [ $same -lt 3 ]; do
    sleep 2; n=$(lock_gap)
    if [ "$n" = "$g" ]; then same=$((same + 1)); else same=0; fi
    g=$n
  done
  echo "$g"
}
mem_kb() { sed -n "s/^$1: *\([0-9]*\) kB/\1/p" /proc/meminfo; }
vm_of() { sed -n "s/^$1 //p" /proc/vmstat; }
# lease_age: ms since the last LEASE_RENEW reached the module (debugfs volumes).
lease_age() { sed -n '1s/.* age_ms=\([0-9]*\) .*/\1/p' $T/volumes; }

# write_conf NAME LEVEL [EXTRA]: mxfsd's configuration in $CONF for the one kernel volume
# `data` on /dev/vda mounted on $MNT (started by the test, not at boot): socket /tmp/NAME.sock,
# state in /tmp/NAME-state, log LEVEL on stderr, then the EXTRA sections as given.
write_conf() {
  mkdir -p $MNT /tmp/$1-state
  cat > $CONF <<EOF
[node]
id = 1
socket = /tmp/$1.sock
state_dir = /tmp/$1-state
kernel = on

[volume]
name = data
device = /dev/vda
mountpoint = $MNT
driver = kernel
start = none

[logging]
level = $2
stderr = true

${3:-}
EOF
}
