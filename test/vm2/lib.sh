# Host side of the two-VM harness (bash), sourced by run-vm2-tests.sh and by the scenario files
# in tests/. Owns the two QEMU VMs of one test: their disk, link, consoles,
# control channels and QMP sockets, and the PASS/FAIL bookkeeping.
#
# Layout of one test's directory ($TD = $WORK/<test>/):
#   disk.raw           the shared disk (XFS made on the host), attached to both VMs
#   other.raw          only if the scenario made it: one more disk (serial "other")
#   witness.raw        a 1 MiB shared disk for the lock-exclusion witness (mxfs-writer hold /
#                      witness): a lock holder keeps writing its records there, the next
#                      holder watches for them
#   a.console          VM A's serial console (ttyS0); b.console likewise
#   a.ctl.in/.out      FIFOs of A's control line (ttyS1): the host writes commands to .in
#   a.qmp              A's QMP socket (set_link, quit)
#   a.pid              A's qemu pid
#
# Scenario API (A = role a = node 1, B = role b = node 2):
#   vm_do ROLE SECONDS SCRIPT       run SCRIPT in the VM, wait for it; sets VM_RC, VM_OUT
#   vm_start ROLE SCRIPT            start SCRIPT, do not wait; prints the command id
#   vm_wait ROLE ID SECONDS         wait for a started SCRIPT; sets VM_RC, VM_OUT
#   wait_console ROLE ERE SECONDS   wait until a console line matches; prints that line
#   vm_kill ROLE                    SIGKILL its qemu: a power loss
#   vm_link ROLE on|off             QMP set_link on its NIC: the link is cut (or back)
#   check NAME DETAIL CMD...        PASS if CMD succeeds, else FAIL (one MXFS-TEST line)
#   pass NAME DETAIL / fail NAME DETAIL
#   ms_since T0                     ms elapsed since T0 (from now_ns), host clock
# Steps shared by the scenarios (below): cluster_formed, lock_held_on_a, b_queues_for_lock /
# b_got_lock (the witness), manifest_of, rec_ok_seqs, vm_put, repair_clean.
set -o pipefail

VM2_MEM=${MXFS_VM2_MEM:-768}
# The [volume]'s driver in the VMs: command (mount/umount commands) unless a scenario sets
# VOLUME_DRIVER=kernel (the kernel volume tests, volumes.sh: the module's gate and fence);
# MXFS_VM2_VOLUME_DRIVER overrides both.
VOLUME_DRIVER=command
QMP_JS="$ROOT/dist/test/vm2/qmp.js"

now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
log() { echo "[$(date +%H:%M:%S)] $*"; }

# ---- results: every check is one line in $RESULTS, counted from there only ----------------
pass() { echo "MXFS-TEST PASS $1: $2" | tee -a "$RESULTS"; }
fail() { echo "MXFS-TEST FAIL $1: $2" | tee -a "$RESULTS"; }
# check NAME DETAIL CMD...: PASS or FAIL by CMD's status, which check returns (`check ... || return`
# ends a scenario whose later steps need this one).
check() { local name="$1" detail="$2"; shift 2; if "$@"; then pass "$name" "$detail"; else fail "$name" "$detail"; return 1; fi; }

# ---- ports -------------------------------------------------------------------------------
# Two free UDP ports on loopback for the link between the VMs (never fixed ones: other
# engineers run VMs on this machine too).
free_udp_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    [ -z "$(ss -Hlun "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
  done
  return 1
}

# ---- VMs ---------------------------------------------------------------------------------
# vm_boot ROLE TEST PORT_SELF PORT_PEER: start one VM in the background (pid in $TD/ROLE.pid).
# no_timer_check: on a loaded host the TCG guest's boot-time check of the IO-APIC timer can
# miss its window and panic ("IO-APIC + timer doesn't work!"); seen once at load 17.
vm_boot() {
  local role="$1" test="$2" me="$3" peer="$4" mac
  mac=$([ "$role" = a ] && echo 52:54:00:00:99:01 || echo 52:54:00:00:99:02)
  rm -f "$TD/$role.ctl.in" "$TD/$role.ctl.out" "$TD/$role.qmp"
  mkfifo "$TD/$role.ctl.in" "$TD/$role.ctl.out"
  : > "$TD/$role.console"
  # A disk a scenario brings for itself (tests/inode-ops.sh: a filesystem that is no volume).
  local other=()
  [ -f "$TD/other.raw" ] && other=(-drive "file=$TD/other.raw,format=raw,if=none,id=d2,file.locking=off" -device virtio-blk-pci,drive=d2,share-rw=on,serial=other)
  qemu-system-x86_64 \
    -accel tcg -cpu max -smp 1 -m "$VM2_MEM" \
    -kernel "$KERNEL_IMG" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 quiet loglevel=4 no_timer_check mxfs.run=/mxfs/vm2/agent.sh mxfs.role=$role mxfs.test=$test mxfs.run_id=$RUN_ID mxfs.volume_driver=$VOLUME_DRIVER" \
    -nographic -no-reboot \
    -drive "file=$TD/disk.raw,format=raw,if=none,id=d0,file.locking=off" \
    -device virtio-blk-pci,drive=d0,share-rw=on,serial=shared \
    -drive "file=$TD/witness.raw,format=raw,if=none,id=d1,file.locking=off" \
    -device virtio-blk-pci,drive=d1,share-rw=on,serial=witness \
    "${other[@]}" \
    -netdev "socket,id=n0,udp=127.0.0.1:$peer,localaddr=127.0.0.1:$me" \
    -device "virtio-net-pci,netdev=n0,id=nic0,mac=$mac" \
    -serial "file:$TD/$role.console" \
    -chardev "pipe,id=ctl,path=$TD/$role.ctl" -serial chardev:ctl \
    -qmp "unix:$TD/$role.qmp,server=on,wait=off" \
    -monitor none -display none </dev/null >"$TD/$role.qemu.out" 2>&1 &
  echo $! > "$TD/$role.pid"
  disown   # killing it is the test's doing: no job report from bash
}

vm_alive() { local p; p=$(cat "$TD/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

# vm2_up TEST: a fresh shared disk and a fresh pair of VMs; waits for both agents.
vm2_up() {
  local test="$1" pa pb t0
  mkdir -p "$TD"
  rm -f "$TD/disk.raw"
  truncate -s "${MXFS_VM2_DISK_MB:-512}M" "$TD/disk.raw"
  mkfs.xfs -q -f -L mxfsvm2 "$TD/disk.raw" || return 1
  rm -f "$TD/witness.raw"; truncate -s 1M "$TD/witness.raw"
  pa=$(free_udp_port) && pb=$(free_udp_port) || { echo "vm2: no free UDP port" >&2; return 1; }
  [ "$pa" != "$pb" ] || pb=$((pa + 1))
  t0=$(now_ns)
  vm_boot a "$test" "$pa" "$pb"
  vm_boot b "$test" "$pb" "$pa"
  local r
  for r in a b; do
    if ! wait_console "$r" '^MXFS-VM2 ready' "${MXFS_VM2_BOOT_TIMEOUT:-180}" >/dev/null; then
      echo "vm2: VM $r not ready; qemu: $(head -c 500 "$TD/$r.qemu.out")" >&2
      return 1
    fi
  done
  log "both VMs up in $(ms_since "$t0") ms (link udp $pa <-> $pb)"
}

# vm2_down: quit both VMs (QMP quit, then SIGKILL). Always safe to call.
vm2_down() {
  local r p
  for r in a b; do
    vm_alive "$r" || continue
    node "$QMP_JS" "$TD/$r.qmp" quit --timeout-ms 3000 >/dev/null 2>&1 || true
  done
  for r in a b; do
    p=$(cat "$TD/$r.pid" 2>/dev/null) || continue
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}

vm_kill() {
  local p; p=$(cat "$TD/$1.pid")
  kill -9 "$p"
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

vm_qmp() { local r="$1"; shift; node "$QMP_JS" "$TD/$r.qmp" "$@"; }
vm_link() { vm_qmp "$1" set_link "{\"name\":\"nic0\",\"up\":$([ "$2" = on ] && echo true || echo false)}" >/dev/null; }

# ---- console -----------------------------------------------------------------------------
# The serial console carries both the guest's user output (the agent's MXFS-OUT/MXFS-DONE
# lines, the writers' records) and the kernel's messages, and the kernel writes its messages
# to the UART directly, in the middle of whatever line the tty was sending: seen in CI as
# "MXFS-REC node=1 seq=259 err errno=5[   47.062386] XFS (mxfs!data): User initiated shutdown
# received." followed by the record's own newline. So kernel messages that start inside a line
# (a timestamp "[ s.us] " after other text) are cut out with their newline, which joins the
# line again. A kernel message at a line's start is kept, and so is one after "| " (dmesg
# output the agent relays: "MXFS-OUT ID| [ s.us] ...").
console() { tr -d '\r' < "$TD/$1.console" | perl -0777 -pe 's/(?<=[^\n])(?<!\| )(?:\[ *\d+\.\d{6}\] [^\n]*\n)+//g'; }

# wait_console ROLE ERE SECONDS: the first console line matching ERE (printed).
wait_console() {
  local role="$1" re="$2" deadline=$(( $(date +%s) + $3 )) line
  while :; do
    line=$(console "$role" | grep -a -E -m1 "$re") && { echo "$line"; return 0; }
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    vm_alive "$role" || { line=$(console "$role" | grep -a -E -m1 "$re") && { echo "$line"; return 0; }; return 1; }
    sleep 0.2
  done
}

# ---- control channel ---------------------------------------------------------------------
# The id is printed; a dead VM's FIFO has no reader, so the write is bounded.
vm_start() {
  local role="$1" script="$2" id line
  id="c$(date +%N)$RANDOM"
  line="$id $(printf '%s\n' "$script" | base64 -w0)"
  vm_alive "$role" && timeout 10 sh -c 'printf "%s\n" "$1" > "$2"' sh "$line" "$TD/$role.ctl.in" \
    || echo "vm2: cannot send to VM $role (not running)" >&2
  echo "$id"
}

vm_wait() {
  local role="$1" id="$2" line
  VM_RC=timeout; VM_OUT=
  line=$(wait_console "$role" "MXFS-DONE $id rc=" "$3") || return 1
  VM_RC=$(echo "$line" | sed -n 's/.*MXFS-DONE [^ ]* rc=\([0-9]*\).*/\1/p')
  VM_OUT=$(console "$role" | grep -a "MXFS-OUT $id| " | sed "s/.*MXFS-OUT $id| //" || true)
  [ "$VM_RC" = 0 ]
}

vm_do() {
  local id
  id=$(vm_start "$1" "$3")
  vm_wait "$1" "$id" "$2"
}

# ---- steps shared by the scenarios -------------------------------------------------------
# cluster_formed TEST: both VMs see the members 1,2 in quorum, and `mxfsctl nodes --json` on
# both agrees on members and epoch (read again until it does: a view change may be in
# flight; bounded).
cluster_formed() {
  local t="$1" ia ib ra rb wa wb na nb
  ia=$(vm_start a 'watch_cluster members=1,2 120000')
  ib=$(vm_start b 'watch_cluster members=1,2 120000')
  vm_wait a "$ia" 150; ra=$VM_RC; wa=$VM_OUT
  vm_wait b "$ib" 150; rb=$VM_RC; wb=$VM_OUT
  if [ "$ra" != 0 ] || [ "$rb" != 0 ]; then
    fail "$t/cluster-forms" "no 2-member view: A: $wa; B: $wb"
    return 1
  fi
  for _ in 1 2 3 4 5; do
    vm_do a 60 'nodes_line'; na=$VM_OUT
    vm_do b 60 'nodes_line'; nb=$VM_OUT
    [ "$na" = "$nb" ] && break
  done
  check "$t/cluster-forms" "A: $na; B: $nb (A waited $(field elapsedMs "$wa") ms for the view)" \
    eval '[ "$na" = "$nb" ] && [[ "$na" == *"members=1,2 state=running quorum=true" ]]'
}

# A's lock on R is held (hold_lock: its command keeps writing to the witness disk) and B's
# `mxfsctl lock --noqueue R EX` is refused.
lock_held_on_a() {
  local t="$1"
  if ! vm_do a 90 'hold_lock holdR R 80'; then
    fail "$t/a-takes-lock" "mxfsctl lock R EX on A was not granted: $VM_OUT"
    return 1
  fi
  vm_do b 60 'ctl lock --noqueue R EX -- true'
  local b_rc="$VM_RC" b_out="$VM_OUT"
  # Whether A's holder was still running then: a holder that ended released R, and B's grant
  # would then be no exclusion failure (the detail says which it was).
  vm_do a 30 'if kill -0 "$(cat /tmp/holdR.holder)" 2>/dev/null; then echo "A still holds R (its holder runs)"; else echo "A'"'"'s holder ended: rc $(cat /tmp/bg/holdR.rc 2>/dev/null || echo ?): $(tail -n 3 /tmp/bg/holdR.log | tr "\n" " ")"; fi'
  check "$t/b-noqueue-refused" "B's mxfsctl lock --noqueue R EX while A holds R: rc=$b_rc, $b_out; $VM_OUT" \
    eval '[ "$b_rc" = 1 ] && [[ "$b_out" == *"is locked (not queued)"* ]]'
}

# The console lines "MXFS-FILE node=N name=... size=... sum=... ok" of ROLE as a manifest
# ("name size sum" per line), for mxfs-writer check-files.
manifest_of() {
  console "$1" | grep -a -o "MXFS-FILE node=$2 name=[^ ]* size=[0-9]* sum=[0-9a-f]* ok" \
    | sed 's/.*name=\([^ ]*\) size=\([0-9]*\) sum=\([0-9a-f]*\) ok/\1 \2 \3/' | sort -u
}

# Sequence numbers of the records node N wrote successfully, as its console says (sorted).
rec_ok_seqs() {
  console "$1" | grep -a -o "MXFS-REC node=$2 seq=[0-9]* ok" | sed 's/.*seq=\([0-9]*\) ok/\1/' | sort -n -u
}

# vm_put ROLE PATH CONTENT: write CONTENT to PATH inside the VM (through the control channel).
vm_put() {
  vm_do "$1" 60 "echo '$(printf '%s' "$3" | base64 -w0)' | base64 -d > '$2'"
}

# xfs_repair -n on the image once both VMs are gone.
repair_clean() {
  local out rc=0
  out=$(xfs_repair -n "$TD/disk.raw" 2>&1) || rc=$?
  check "$1/xfs-repair" "xfs_repair -n on the image: exit $rc" [ "$rc" = 0 ]
  [ "$rc" = 0 ] || echo "$out" | tail -n 20
}

# b_queues_for_lock TEST: before the fault, B asks for R (mxfsctl lock --timeout 120000, so
# it is granted the moment the cluster lets it) with a command that, once granted, watches
# the witness disk for 3 s: no record of A's holder may appear there while B holds R.
# Returns once B's request is queued behind A's lock (B_LOCK_ID: the command, for b_got_lock).
b_queues_for_lock() {
  B_LOCK_ID=$(vm_start b 'ctl lock --timeout 120000 R EX -- mxfs-writer witness $WITNESS --node 2 --run $RUN_ID --watch-ms 3000')
  vm_do b 120 'lock_waiting R 100' || fail "$1/b-queued" "B's request for R never showed as waiting: $VM_OUT"
}
# b_got_lock TEST: B's queued request (b_queues_for_lock) was granted, the witness clean.
b_got_lock() {
  vm_wait b "$B_LOCK_ID" 200
  check "$1/b-takes-lock" "B's queued mxfsctl lock R EX granted, then 3 s watching the witness disk: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ' ')" \
    eval '[ "$VM_RC" = 0 ] && [[ "$VM_OUT" == *"MXFS-WITNESS clean"* ]]'
}

# field NAME JSON-LINE: a number or word field of cluster-watch's JSON line.
field() { echo "$2" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" | tr -d '"'; }
# peer_age PEER JSON-LINE: the lease age (ms since last heard) of that peer in the line.
peer_age() { echo "$2" | sed -n "s/.*{\"id\":$1,\"state\":\"[a-z]*\",\"leaseAgeMs\":\([0-9]*\)}.*/\1/p"; }
