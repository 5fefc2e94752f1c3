# In-VM helpers of the two-VM harness (busybox sh), sourced by agent.sh and by every command
# the host sends (see lib.sh vm_do). Names the host's scenario scripts may use:
#   ctl ARGS...             mxfsctl against this node's mxfsd
#   watch_cluster COND MS [READY]  dist/test/vm2/cluster-watch.js: wait for members=1,2 |
#                           without=N | no-quorum; prints one JSON line (met, elapsedMs,
#                           pollGapMs, view, lease ages); creates READY once it is polling
#   lock_waiting RES SEC    wait until a request for RES is queued (mxfsctl locks --json)
#   json EXPR [ARGS]        read JSON on stdin, print the JS expression EXPR of it (x = the
#                           value; ARGS are process.argv[2...])
#   bg NAME CMD...          run CMD in the background: output /tmp/bg/NAME.log, its pid
#                           /tmp/bg/NAME.pid, its exit status /tmp/bg/NAME.rc when it ends
#   bg_console NAME CMD...  the same, with the output also on the console (markers the host
#                           reads even after this VM was killed)
#   bg_rc NAME SECONDS      wait for NAME to end; print its exit status (or "running")
#   wait_file FILE SECONDS  wait until FILE exists
#   mxfsd_pid               pid of this node's mxfsd
#   nodes_line              "epoch=E members=1,2 state=S quorum=true|false" (mxfsctl nodes --json)
#   hold_lock NAME RES SEC  take RES in EX with `mxfsctl lock` and hold it in the background
#                           job NAME; its command writes its records to the witness disk
#                           until stopped (mxfs-writer hold); returns once granted (or fails
#                           after SEC)
#   release_lock NAME       end the holder's command (SIGTERM): mxfsctl unlocks and exits
#   now_ms                  this VM's uptime in ms
ROLE=$(sed -n 's/.*mxfs\.role=\([ab]\).*/\1/p' /proc/cmdline)
TEST=$(sed -n 's/.*mxfs\.test=\([^ ]*\).*/\1/p' /proc/cmdline)
RUN_ID=$(sed -n 's/.*mxfs\.run_id=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ "$ROLE" = a ]; then NODE=1; PEER=2; else NODE=2; PEER=1; fi
VOLUME_DRIVER=$(sed -n 's/.*mxfs\.volume_driver=\([a-z]*\).*/\1/p' /proc/cmdline)
CONF=/tmp/mxfsd.conf   # written by agent.sh: node<N>.conf + the [volume] section
SOCK=/tmp/mxfsd.sock
MNT=/mnt/data
# The shared disks, by the serial the host gave them: DEV holds XFS (the [volume]); WITNESS
# is the lock-exclusion witness (hold_lock, lib.sh b_queues_for_lock).
for d in /sys/block/vd*; do
  case "$(cat "$d/serial" 2>/dev/null)" in
    shared) DEV=/dev/${d##*/} ;;
    witness) WITNESS=/dev/${d##*/} ;;
  esac
done
export ROLE TEST RUN_ID NODE PEER VOLUME_DRIVER CONF SOCK MNT DEV WITNESS

ctl() { node /mxfs/dist/src/cli/mxfsctl.js --config "$CONF" "$@"; }
watch_cluster() { node /mxfs/dist/test/vm2/cluster-watch.js --socket "$SOCK" --until "$1" --timeout-ms "$2" ${3:+--ready-file "$3"}; }
json() { node -e 'let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => { const x = JSON.parse(s); console.log(eval(process.argv[1])); })' "$@"; }
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
mxfsd_pid() { cat /tmp/mxfsd.pid; }

bg() {
  name=$1; shift
  mkdir -p /tmp/bg; rm -f /tmp/bg/$name.rc /tmp/bg/$name.pid
  ( sh -c 'echo $$ > "$0"; exec "$@"' /tmp/bg/$name.pid "$@" > /tmp/bg/$name.log 2>&1; echo $? > /tmp/bg/$name.rc ) &
  wait_file /tmp/bg/$name.pid 10
}
bg_console() {
  name=$1; shift
  mkdir -p /tmp/bg; rm -f /tmp/bg/$name.rc /tmp/bg/$name.pid
  ( set -o pipefail; sh -c 'echo $$ > "$0"; exec "$@"' /tmp/bg/$name.pid "$@" 2>&1 | tee /tmp/bg/$name.log > /dev/console; echo $? > /tmp/bg/$name.rc ) &
  wait_file /tmp/bg/$name.pid 10
}
bg_rc() {
  if wait_file /tmp/bg/$1.rc "$2"; then cat /tmp/bg/$1.rc; else echo running; return 1; fi
}
wait_file() {
  n=$(($2 * 10))
  while [ ! -e "$1" ]; do
    [ $n -le 0 ] && return 1
    usleep 100000; n=$((n - 1))
  done
}

nodes_line() {
  ctl --json nodes | json '"epoch=" + x.epoch + " members=" + x.members.join(",") + " state=" + x.state + " quorum=" + !!(x.transport && x.transport.inQuorum)'
}
lock_waiting() {
  deadline=$(($(now_ms) + $2 * 1000))
  until [ "$(ctl --json locks --resource "$1" | json 'x.resources.some((r) => r.waiting.length > 0)')" = true ]; do
    [ "$(now_ms)" -ge $deadline ] && return 1
    usleep 200000
  done
}
hold_lock() {
  rm -f /tmp/$1.granted
  bg "$1" node /mxfs/dist/src/cli/mxfsctl.js --config "$CONF" lock "$2" EX -- \
    sh -c 'echo $$ > "$0.holder"; touch "$0.granted"; exec mxfs-writer hold "$1" --node "$2" --run "$3" --interval-ms 5' \
    /tmp/$1 "$WITNESS" "$NODE" "$RUN_ID"
  wait_file /tmp/$1.granted "$3"
}
release_lock() { kill "$(cat /tmp/$1.holder)"; }

start_mxfsd() {
  node /mxfs/dist/src/cli/mxfsd.js --config "$CONF" >> /tmp/mxfsd.log 2>&1 &
  echo $! > /tmp/mxfsd.pid
}

# ---- volumes (mxfsctl mount/umount/standby/volumes), used by the kernel volume tests
# (test/vm2/volumes.sh):
#   mxfsctl volumes --json  -> {"node", "volumes": [{"volume", "state" (this node's: unmounted
#                               acquiring standby recovering mounting mounted unmounting
#                               blocked fenced), "owner", "generation", "standbys", ...}]}
#   vol_line VOL            "state=S owner=N generation=G"
#   wait_vol VOL STATE SEC  poll vol_line until state=STATE; prints the last line
vol_line() {
  ctl --json volumes | json '(() => { const l = Array.isArray(x) ? x : x.volumes; const v = l.find((e) => (e.volume ?? e.name) === process.argv[2]); return v ? "state=" + v.state + " owner=" + v.owner + " generation=" + v.generation : "state=missing"; })()' "$1"
}
wait_vol() {
  deadline=$(($(now_ms) + $3 * 1000))
  while :; do
    line=$(vol_line "$1")
    case "$line" in "state=$2 "*) echo "$line"; return 0 ;; esac
    [ "$(now_ms)" -ge $deadline ] && { echo "$line"; return 1; }
    usleep 200000
  done
}
