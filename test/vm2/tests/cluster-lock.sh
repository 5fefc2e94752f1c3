# cluster-lock: the two VMs form one cluster and a lock is exclusive across them.
# Proves: both mxfsd see members 1,2 with the same epoch (mxfsctl nodes --json); an EX lock
# held on A (`mxfsctl lock R EX -- mxfs-writer hold`: the command keeps writing to the witness
# disk) makes B's `mxfsctl lock --noqueue R EX` fail (exit 1); once A's command ends, A's
# mxfsctl unlocks and B's same request succeeds, and while B holds R nothing of A's command
# appears on the witness disk.
# Fails without the feature: with the peers unable to authenticate (another key) or unable
# to reach each other, no 2-member view forms; a lock granted locally on each node would
# make the noqueue request succeed.
scenario() {
  local t=cluster-lock
  cluster_formed $t || return
  lock_held_on_a $t || return
  vm_do a 60 'release_lock holdR; bg_rc holdR 30'
  check $t/a-unlocks "A's holder command ended on SIGTERM, mxfsctl lock exit $VM_OUT (its command's status)" [ "$VM_OUT" = 0 ]
  vm_do b 60 'ctl lock --noqueue R EX -- mxfs-writer witness $WITNESS --node 2 --run $RUN_ID --watch-ms 2000'
  check $t/b-gets-released-lock "B's mxfsctl lock --noqueue R EX after A released: rc=$VM_RC $VM_OUT" \
    eval '[ "$VM_RC" = 0 ] && [[ "$VM_OUT" == *"MXFS-WITNESS clean"* ]]'
}
