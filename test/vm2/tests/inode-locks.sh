# inode-locks (issue 11, the two-VM test): a program on B takes EX on an inode A has cached.
# A (node 1) owns and mounts the volume (driver = kernel, XFS hooked); B (node 2) takes the
# inode's cluster lock with `mxfsctl lock --lockspace mxfs-inodes data:<ino> EX` and reads or
# writes the file's blocks on the shared disk (inode-locks.sh says why that is sound).
# Checks:
#   a-cached-dirty       A wrote the file (allocated, synced), then overwrote it in place: its
#                        lock is cached EX with dirty pages and the disk still has the old data
#   b-ex-sees-writeback  B's EX grant comes only after A wrote its dirty pages back: B's
#                        O_DIRECT read of the file's first block finds A's new data
#   a-invalidated        ... and after A dropped its page cache and gave the lock up (no
#                        pages, no cached mode), counted as a blocking callback, a write-back
#                        and an invalidation
#   a-read-waits         A reads the file again (PR cached, pages) and keeps it open: B takes
#                        EX and writes a new block in place on the disk; A's next read from
#                        the open file waits (seen waiting in the lock cache) until B releases,
#                        then returns B's block: read from the disk
#   locks-volume         `mxfsctl locks --volume data` on A lists A's kernel's cached lock of
#                        the file (the mode debugfs shows); on B (nothing cached) none
#   fence-eio            A waits for the file's lock while B holds EX; the host cuts A's link:
#                        A loses quorum, its kernel lease ends, the volume is fenced, and the
#                        waiting read fails with EIO (the glock's fence count says how)
#   a-remounts           the link back, A clears its fence and mounts again (XFS replays its
#                        log) and finds B's block in the file; xfs-repair: the image is
#                        consistent afterwards
# Which checks fail when a mechanism is removed from the module (test/vm/mutations.sh):
# docs/kernel.md "Mutation checks".
. "$HERE/inode-locks.sh"
scenario() {
  local t=inode-locks line ino off got
  cluster_formed $t || return
  a_mounts $t || return
  a_file $t g MXFSMARKA || return
  ino=$INO_g off=$OFF_g
  iv a 60 'probe fill $MNT/g MXFSMARKC 64 >/dev/null; echo "GL:$(gl_line '"$ino"')"; probe readblk /dev/mxfs/data '"$off"
  line=$VM_OUT
  check $t/a-cached-dirty "A: ino $ino at disk offset $off, overwritten in place: $(echo "$line" | tr '\n' ';')" \
    eval '[[ "$line" == *" mode=EX "* ]] && [[ ! "$line" == *" pages=0"* ]] && [[ "$line" == *"BLOCK MXFSMARKAMXFSMAR"* ]]'
  iv a 30 'echo "S $(mstat glock_syncs) $(mstat glock_invals) $(mstat glock_basts)"'
  local s0; s0=$(echo "$VM_OUT" | sed -n 's/^S //p')
  iv b 120 'ilock '"$ino"' EX /usr/bin/inode-probe readblk $(rdisk) '"$off"
  got=$VM_OUT
  check $t/b-ex-sees-writeback "B: mxfsctl lock data:$ino EX -- readblk at $off: rc=$VM_RC $got" \
    eval '[ "$VM_RC" = 0 ] && [[ "$got" == *"BLOCK MXFSMARKCMXFSMAR"* ]]'
  iv a 30 'echo "GL:$(gl_line '"$ino"')"; echo "S $(mstat glock_syncs) $(mstat glock_invals) $(mstat glock_basts)"'
  line=$VM_OUT
  local s1; s1=$(echo "$line" | sed -n 's/^S //p')
  check $t/a-invalidated "A after B's grant: $(echo "$line" | grep '^GL:') (syncs invals basts: $s0 -> $s1)" \
    eval 'gl=$(echo "$line" | grep "^GL:"); { [ "$gl" = "GL:" ] || [[ "$gl" == *" mode=NL "*" pages=0"* ]]; } &&
          set -- $s0 $s1 && [ "$4" -gt "$1" ] && [ "$5" -gt "$2" ] && [ "$6" -gt "$3" ]'

  # A caches the file again (PR, with pages) and keeps it open; B writes a new first block
  # under EX; A's read from the open file (no open hook involved) waits, then reads B's block.
  iv a 60 'cat $MNT/g > /dev/null; bg rd /usr/bin/inode-probe openread $MNT/g /tmp/rd.go;
           n=0; until grep -q OPENED /tmp/bg/rd.log; do [ $n -ge 300 ] && break; usleep 100000; n=$((n + 1)); done;
           echo "GL:$(gl_line '"$ino"')"'
  line=$VM_OUT
  iv b 150 'ihold hg '"$ino"' EX "/usr/bin/inode-probe writeblk $DEV '"$off"' MXFSMARKB"'
  check $t/b-holds-ex "A had: $line; B: mxfsctl lock data:$ino EX, wrote MXFSMARKB at $off: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
  iv a 90 'touch /tmp/rd.go; wait_waiters '"$ino"' 1 60; echo "W $(gl_field '"$ino"' waiters) done=$(cat /tmp/bg/rd.rc 2>/dev/null || echo no)"'
  local w=$VM_OUT
  iv b 150 'irelease hg'
  local brc=$VM_OUT
  iv a 90 'echo "RC $(bg_rc rd 60)"; cat /tmp/bg/rd.log'
  got=$VM_OUT
  check $t/a-read-waits "A had PR cached ($(echo "$line" | sed -n 's/.* mode=\([A-Z]*\) .* pages=\([0-9]*\).*/mode=\1 pages=\2/p')); while B held EX: $w; B's command rc=$brc; A's read then: $(echo "$got" | tr '\n' ' ')" \
    eval '[[ "$line" == *" mode=PR "* ]] && [[ "$w" == "W 1 done=no" ]] && [ "$brc" = 0 ] && [[ "$got" == "RC 0"*"READ MXFSMARKBMXFSMAR"* ]]'

  # The kernel's cached locks as mxfsctl shows them, on both nodes.
  iv a 60 'echo "GL:$(gl_line '"$ino"')"; ctl locks --volume data'
  line=$VM_OUT
  iv b 60 'ctl locks --volume data'
  local lb=$VM_OUT lrb=$VM_RC
  check $t/locks-volume "A: $(echo "$line" | tr '\n' ';'); B (rc=$lrb): $(echo "$lb" | tr '\n' ';')" \
    eval 'm=$(echo "$line" | sed -n "s/^GL:.* mode=\([A-Z]*\) .*/\1/p") && [ -n "$m" ] &&
          echo "$line" | grep -Eq "^ *$ino +file +$m " && [ "$lrb" = 0 ] && [[ "$lb" == *"no inode locks cached"* ]]'

  # A fence fails a waiting operation with EIO.
  iv b 150 'ihold hf '"$ino"' EX'
  iv a 90 'e0=$(mstat glock_eio_fenced); bg rf sh -c "cat $MNT/g > /dev/null"; wait_waiters '"$ino"' 1 60; echo "W $(gl_field '"$ino"' waiters) done=$(cat /tmp/bg/rf.rc 2>/dev/null || echo no) E0 $e0"'
  w=$VM_OUT
  local t0; t0=$(now_ns)
  vm_link a off
  iv a 120 'r=$(bg_rc rf 90); echo "RC $r $(cat /tmp/bg/rf.log)"; echo "E1 $(mstat glock_eio_fenced) $(mstat glock_eio_daemon)"; grep "^volume=data" $DBG/volumes'
  got=$VM_OUT
  echo "MXFS-VM2-TIME inode-locks link cut -> A's waiting read failed: $(ms_since "$t0") ms (host clock, includes the control channel)"
  check $t/fence-eio "A's read waiting for the lock ($w); link cut: $(echo "$got" | tr '\n' ';')" \
    eval '[[ "$w" == "W 1 done=no"* ]] && [[ "$got" == *"RC 1 "*"Input/output error"* ]] && [[ "$got" == *" gate=fenced "* ]] &&
          [ "$(echo "$got" | sed -n "s/^E1 \([0-9]*\) .*/\1/p")" -gt "$(echo "$w" | sed -n "s/.* E0 //p")" ]'
  iv b 60 'irelease hf'
  # The link back: A rejoins, clears its fence, mounts again (XFS replays A's log) and finds
  # B's block in the file.
  vm_link a on
  cluster_formed $t-healed
  iv a 240 'ctl umount data; ctl mount data --wait --timeout 120000 && wait_vol data mounted 60 && head -c 16 $MNT/g && echo &&
            dmesg | grep -c "XFS (mxfs!data): Ending recovery" && ctl umount data'
  check $t/a-remounts "A: umount (clears the fence), mount, g's first block, log recovery count, umount: rc=$VM_RC $(echo "$VM_OUT" | tr '\n' ';')" \
    eval '[ "$VM_RC" = 0 ] && [[ "$VM_OUT" == *"MXFSMARKBMXFSMAR"* ]]'
}
after_vms() { repair_clean inode-locks; }
