# inode-ops (issue 11, two VMs): the entry points the first inode-lock tests left unexercised
# — page_mkwrite (a store through a shared mapping), fallocate, remap (FICLONE,
# copy_file_range) — each made to meet a lock B holds, and every other filesystem left alone.
# A (node 1) owns and mounts the volume; B takes inode locks with mxfsctl (inode-locks.sh).
# Checks:
#   mmap-downconvert-writeback  A stored a block through a shared mapping (page_mkwrite, EX):
#                        B asks for PR; A down-converts EX -> PR after writing the mapped
#                        page back, so B's O_DIRECT read of the block finds the store
#   page-mkwrite-waits   A's next store through the same mapping (the page was made clean,
#                        so the store calls page_mkwrite, which needs EX) waits while B holds
#                        PR, and goes through once B releases
#   mmap-ex-writeback    B asks for EX: A writes the second store back and drops its pages
#                        (and with them the process's mapping) before B reads the block
#   fallocate-waits      fallocate(2) on a file whose lock B holds EX waits until B releases,
#                        then succeeds (the file grew)
#   clone-waits          FICLONE into a file whose lock B holds EX waits until B releases, then
#                        the destination shares the source's blocks; copy_file_range on the
#                        volume goes through the same hook
#   other-fs-untouched   while B holds EX on data:<N>, A works on file N of another XFS (a second
#                        disk, mounted directly) and on a tmpfs: create, write, read, fsync,
#                        fallocate, mmap store, truncate, link, symlink, mkdir, rename, unlink,
#                        rmdir, clone — nothing waits, the MXFS hooks' counts, the module's
#                        requests and the cached locks are unchanged; only the XFS pass-through
#                        count grows
#   a-umounts, xfs-repair  A unmounts cleanly; xfs_repair -n of the image is clean
# Which checks fail when a mechanism is removed from the module (test/vm/mutations.sh):
# docs/kernel.md "Mutation checks".
. "$HERE/inode-locks.sh"
# The other filesystem: a small XFS image of its own, attached to the VMs (lib.sh vm_boot
# attaches $TD/other.raw with serial "other").
[ -f "$TD/other.raw" ] || { truncate -s 64M "$TD/other.raw" && TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f "$TD/other.raw"; }

scenario() {
  local t=inode-ops line w brc got c0 c1
  cluster_formed $t || return
  a_mounts $t || return

  # page_mkwrite: a store through a shared mapping meets B's PR, then B's EX.
  a_file $t m MXFSMMAP0 || return
  iv a 60 'bg mm /usr/bin/inode-probe mmap $MNT/m MXFSMMAP1 MXFSMMAP2 /tmp/m.go /tmp/m.end;
           n=0; until grep -q "stored=1" /tmp/bg/mm.log; do [ $n -ge 300 ] && break; usleep 100000; n=$((n + 1)); done;
           cat /tmp/bg/mm.log; echo "D $(mstat glock_conv_down)"'
  line=$VM_OUT
  iv b 150 'ihold hm '"$INO_m"' PR "/usr/bin/inode-probe readblk $(rdisk) '"$OFF_m"' > /tmp/hm.blk"; cat /tmp/hm.blk'
  got=$VM_OUT
  iv a 90 'echo "GL:$(gl_line '"$INO_m"')"; echo "D $(mstat glock_conv_down)"; touch /tmp/m.go; wait_waiters '"$INO_m"' 1 60;
           echo "W $(gl_field '"$INO_m"' waiters) stored2=$(grep -c stored=2 /tmp/bg/mm.log)"'
  w=$VM_OUT
  check $t/mmap-downconvert-writeback "A stored through its mapping: $(echo "$line" | tr '\n' ';'); B's PR grant read: $got; A then: $(echo "$w" | grep -E '^(GL|D)' | tr '\n' ';')" \
    eval '[[ "$line" == *"MMAP stored=1"* ]] && [[ "$got" == *"BLOCK MXFSMMAP1MXFSMM"* ]] && [[ "$w" == *" mode=PR "* ]] &&
          [ "$(echo "$w" | sed -n "s/^D //p")" -gt "$(echo "$line" | sed -n "s/^D //p")" ]'
  iv b 150 'irelease hm'
  brc=$VM_OUT
  iv a 90 'n=0; until grep -q "stored=2" /tmp/bg/mm.log; do [ $n -ge 600 ] && break; usleep 100000; n=$((n + 1)); done; cat /tmp/bg/mm.log'
  check $t/page-mkwrite-waits "A's second store while B held PR: $(echo "$w" | grep '^W'); B's command rc=$brc; then A: $(echo "$VM_OUT" | tr '\n' ';')" \
    eval '[[ "$w" == *"W 1 stored2=0"* ]] && [ "$brc" = 0 ] && [[ "$VM_OUT" == *"MMAP stored=2"* ]]'
  iv b 120 'ilock '"$INO_m"' EX /usr/bin/inode-probe readblk $(rdisk) '"$OFF_m"
  got="rc=$VM_RC $VM_OUT"
  iv a 60 'echo "GL:$(gl_line '"$INO_m"')"; touch /tmp/m.end; echo "RC $(bg_rc mm 30)"'
  check $t/mmap-ex-writeback "B's EX grant read: $got; A after: $(echo "$VM_OUT" | tr '\n' ';')" \
    eval '[[ "$got" == "rc=0 "*"BLOCK MXFSMMAP2MXFSMM"* ]] && gl=$(echo "$VM_OUT" | grep "^GL:") &&
          { [ "$gl" = "GL:" ] || [[ "$gl" == *" mode=NL "*" pages=0"* ]]; } && [[ "$VM_OUT" == *"RC 0"* ]]'

  # fallocate waits for B's EX. The file is opened before B takes the lock (the open hook
  # takes it too): the fallocate call alone meets B's lock.
  a_file $t f MXFSFALL0 || return
  iv a 60 'bg fa /usr/bin/inode-probe fallocate $MNT/f 1048576 65536 /tmp/fa.go;
           n=0; until grep -q OPENED /tmp/bg/fa.log; do [ $n -ge 300 ] && break; usleep 100000; n=$((n + 1)); done'
  iv b 150 'ihold hfa '"$INO_f"' EX'
  iv a 90 'touch /tmp/fa.go; wait_waiters '"$INO_f"' 1 60;
           echo "W $(gl_field '"$INO_f"' waiters) done=$(cat /tmp/bg/fa.rc 2>/dev/null || echo no)"'
  w=$VM_OUT
  iv b 150 'irelease hfa'
  brc=$VM_OUT
  iv a 90 'echo "RC $(bg_rc fa 60) $(cat /tmp/bg/fa.log | tr "\n" " ")size=$(stat -c %s $MNT/f)"'
  check $t/fallocate-waits "while B held EX: $w; B's command rc=$brc; then: $VM_OUT" \
    eval '[ "$w" = "W 1 done=no" ] && [ "$brc" = 0 ] && [[ "$VM_OUT" == "RC 0 OPENED FALLOCATE ok size=1114112" ]]'

  # FICLONE waits for B's EX on the destination; copy_file_range goes through remap too.
  a_file $t c MXFSCLON0 || return
  iv a 30 'echo "H $(hook_calls xfs_file_remap_range)"'
  c0=$(echo "$VM_OUT" | sed -n 's/^H //p')
  iv a 60 'bg cl /usr/bin/inode-probe clone $MNT/f $MNT/c /tmp/cl.go;
           n=0; until grep -q OPENED /tmp/bg/cl.log; do [ $n -ge 300 ] && break; usleep 100000; n=$((n + 1)); done'
  iv b 150 'ihold hc '"$INO_c"' EX'
  iv a 90 'touch /tmp/cl.go; wait_waiters '"$INO_c"' 1 60;
           echo "W $(gl_field '"$INO_c"' waiters) done=$(cat /tmp/bg/cl.rc 2>/dev/null || echo no)"'
  w=$VM_OUT
  iv b 150 'irelease hc'
  brc=$VM_OUT
  iv a 90 'echo "RC $(bg_rc cl 60) $(cat /tmp/bg/cl.log)"; probe extent $MNT/c; probe copyrange $MNT/f $MNT/c2 65536;
           echo "H $(hook_calls xfs_file_remap_range)"'
  got=$VM_OUT
  c1=$(echo "$got" | sed -n 's/^H //p')
  check $t/clone-waits "while B held EX on the destination: $w; B's command rc=$brc; then: $(echo "$got" | tr '\n' ';') (remap hook calls $c0 -> $c1)" \
    eval '[ "$w" = "W 1 done=no" ] && [ "$brc" = 0 ] && [[ "$got" == "RC 0 OPENED"*"CLONE ok"* ]] &&
          [ $(( 0x$(echo "$got" | sed -n "s/^EXTENT .* flags=\([0-9a-f]*\)/\1/p") & 0x2000 )) != 0 ] &&
          [[ "$got" == *"COPYRANGE n=65536"* ]] && [ "$c1" -ge $((c0 + 2)) ]'

  # Every other filesystem untouched: a second XFS (mounted directly) and a tmpfs.
  iv a 60 'o=; for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = other ] && o=/dev/${d##*/}; done;
           mkdir -p /mnt/other /mnt/tmpx && mount -t xfs $o /mnt/other && mount -t tmpfs tmpfs /mnt/tmpx &&
           echo hello > /mnt/other/x && sync && echo "XINO $(stat -c %i /mnt/other/x)"'
  local xino; xino=$(echo "$VM_OUT" | sed -n 's/^XINO //p')
  if [ -z "$xino" ]; then fail $t/other-fs-untouched "A could not mount the other XFS or a tmpfs: $VM_OUT"; else
    iv b 150 'ihold ho '"$xino"' EX'
    iv a 120 'snap() { grep -v "^hook=xfs_fs_destroy_inode " $DBG/hooks | sed 1d | tr "\n" " "; echo; echo "R $(mstat requests) G $(grep -c . $DBG/glocks)"; }
             snap > /tmp/o.before; p0=$(passthrough)
             bg ot sh -c "cat /mnt/other/x && echo more >> /mnt/other/x && /usr/bin/inode-probe other /mnt/other && /usr/bin/inode-probe other /mnt/tmpx && ls -R /mnt/other /mnt/tmpx > /dev/null"
             echo "RC $(bg_rc ot 60) $(grep OTHER /tmp/bg/ot.log | tr "\n" " ")"; snap > /tmp/o.after
             echo "P $p0 $(passthrough)"; cmp -s /tmp/o.before /tmp/o.after && echo SAME || { echo DIFF; diff /tmp/o.before /tmp/o.after; }'
    got=$VM_OUT
    iv b 150 'irelease ho'
    brc=$VM_OUT
    check $t/other-fs-untouched "B held data:$xino EX ($brc); A on the other XFS's inode $xino and a tmpfs: $(echo "$got" | tr '\n' ';')" \
      eval '[[ "$got" == *"RC 0 OTHER ok ops=16 clone=ok OTHER ok ops=16 clone=unsupported"* ]] && [[ "$got" == *SAME* ]] &&
            set -- $(echo "$got" | sed -n "s/^P //p") && [ "$2" -ge $(( $1 + 16 )) ]'
    iv a 30 'umount /mnt/other /mnt/tmpx'
  fi

  iv a 120 'ctl umount data && wait_vol data unmounted 60'
  check $t/a-umounts "A: mxfsctl umount data: rc=$VM_RC $VM_OUT" [ "$VM_RC" = 0 ]
}
after_vms() { repair_clean inode-ops; }
