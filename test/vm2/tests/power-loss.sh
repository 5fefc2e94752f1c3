# power-loss: the host kills VM A's qemu (a faithful power loss) while A holds lock R.
# Proves: B's view drops A no sooner than A's lease (lease_timeout_ms of node2.conf) and
# within lease + dead margin (lease / 10) + a 5 s allowance for TCG scheduling, both measured by B's daemon itself (how long
# before the drop it last heard from A, read by a watcher polling every 100 ms that was
# running before the kill); B stays in quorum alone (it is the tiebreaker) and its request
# for R, queued behind A's lock before the kill, is granted.
# Fails without the feature: without lease expiry B never drops A and R stays held by a dead
# node (B's request times out); with a tiebreaker-less quorum rule B would lose quorum.
# Checked by mutation: with the daemon's deadAfterMs forced to 1000 ms, b-drops-a fails.
LEASE_MS=$(sed -n 's/^lease_timeout_ms = //p' "$HERE/node2.conf")
DEAD_AFTER_MS=$((LEASE_MS + LEASE_MS / 10))   # the daemon's dead margin: lease / 10
scenario() {
  local t=power-loss iw t0 age host_ms
  cluster_formed $t || return
  lock_held_on_a $t || return
  b_queues_for_lock $t
  iw=$(vm_start b 'watch_cluster without=1 120000 /tmp/w-drop.ready')
  vm_do b 120 'wait_file /tmp/w-drop.ready 100' || fail $t/watcher "B's watcher did not start"
  t0=$(now_ns)
  vm_kill a
  check $t/a-killed "A's qemu killed with SIGKILL" eval '! vm_alive a'
  vm_wait b "$iw" 150
  host_ms=$(ms_since "$t0")
  age=$(peer_age 1 "$VM_OUT")
  check $t/b-drops-a "B's view without A: $VM_OUT; B had last heard from A ${age:-?} ms before (host: kill -> B reports ${host_ms} ms)" \
    eval '[ "$VM_RC" = 0 ] && [ -n "$age" ] && [ "$age" -ge $LEASE_MS ] && [ "$age" -le $((DEAD_AFTER_MS + 5000)) ]'
  b_got_lock $t
  echo "MXFS-VM2-TIME power-loss kill->B-view-drops-A host ${host_ms} ms, B's last-heard age ${age} ms"
}
