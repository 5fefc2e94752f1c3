# daemon-stop: SIGSTOP of A's mxfsd, past the lease, while A holds lock R.
# Proves: B is granted R (its request, queued before the SIGSTOP, once A's lease ends); A's
# `mxfsctl lock` holder, no longer hearing its daemon, gives the lock up by itself (exit 3,
# command terminated) within client_timeout_ms, which is shorter than the lease, so A's
# command never runs while B holds R: A's command wrote to the witness disk every 5 ms, and
# B, holding R, watches that disk for 3 s and sees none of A's records. After SIGCONT A
# rejoins: both agree on members 1,2.
# Fails without the feature: without lease expiry B's request times out; without the client
# timeout A's command would still run after B's grant (the witness sees its records).
# Checked by mutation: with A's client_timeout_ms at 8000 (the config rule that keeps it below
# the lease disabled), b-takes-lock fails: "MXFS-WITNESS intruder node=1 ... after=2 ms".
scenario() {
  local t=daemon-stop ib
  cluster_formed $t || return
  lock_held_on_a $t || return
  b_queues_for_lock $t
  vm_do a 30 'kill -STOP $(mxfsd_pid) && grep State /proc/$(mxfsd_pid)/status'
  check $t/a-mxfsd-stopped "kill -STOP of A's mxfsd: $VM_OUT" [ "$VM_RC" = 0 ]
  b_got_lock $t
  vm_do a 60 'bg_rc holdR 30'
  check $t/a-holder-gave-up "A's mxfsctl lock R EX exit status: $VM_OUT (3 = lock lost, command terminated)" [ "$VM_OUT" = 3 ]
  vm_do a 30 'kill -CONT $(mxfsd_pid)'
  cluster_formed $t-resumed
}
