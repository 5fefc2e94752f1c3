# partition: the host cuts A's link (QMP set_link nic0 off) while A holds lock R.
# Proves: A reports no quorum (it self-fences: node 2 is the tiebreaker, so A alone is not a
# quorum) and A's `mxfsctl lock` holder is told the lock is lost (exit 3, its command
# terminated); B drops A, keeps quorum and is granted R; A cannot take any lock while cut
# off; B's request, queued before the cut, is granted, and while B holds R nothing of A's
# holder (it wrote to the witness disk every 5 ms until terminated) appears on the witness
# disk. After the link comes back, both VMs agree again
# on members 1,2 and one epoch.
# Fails without the feature: without the tiebreaker rule both halves would keep quorum
# (split brain: A's holder would keep running while B holds R); without self-fencing A's
# holder would not be stopped.
scenario() {
  local t=partition ia ib ra oa ob
  cluster_formed $t || return
  lock_held_on_a $t || return
  b_queues_for_lock $t
  ia=$(vm_start a 'watch_cluster no-quorum 120000 /tmp/w-nq.ready')
  ib=$(vm_start b 'watch_cluster without=1 120000 /tmp/w-drop.ready')
  vm_do a 120 'wait_file /tmp/w-nq.ready 100' || fail $t/watcher "A's watcher did not start"
  vm_do b 120 'wait_file /tmp/w-drop.ready 100' || fail $t/watcher "B's watcher did not start"
  check $t/link-cut "QMP set_link nic0 off on A" vm_link a off
  vm_wait a "$ia" 150; ra=$VM_RC; oa=$VM_OUT
  check $t/a-no-quorum "A without quorum: $oa" [ "$ra" = 0 ]
  vm_do a 60 'bg_rc holdR 30'
  check $t/a-holder-lost-lock "A's mxfsctl lock R EX exit status: $VM_OUT (3 = lock lost, command terminated)" [ "$VM_OUT" = 3 ]
  vm_wait b "$ib" 150; ob=$VM_OUT
  check $t/b-drops-a "B keeps quorum without A: $ob" [ "$VM_RC" = 0 ]
  b_got_lock $t
  vm_do a 60 'ctl lock --noqueue R2 EX -- true'
  check $t/a-fenced-grants-nothing "A's mxfsctl lock --noqueue R2 EX while cut off: rc=$VM_RC $VM_OUT" \
    eval '[ "$VM_RC" = 4 ] && [[ "$VM_OUT" == *"not in a quorate cluster"* ]]'
  echo "MXFS-VM2-TIME partition A-lost-quorum (B last heard $(peer_age 2 "$oa") ms before), B-dropped-A (A last heard $(peer_age 1 "$ob") ms before)"
  check $t/link-restored "QMP set_link nic0 on on A" vm_link a on
  cluster_formed $t-healed
}
