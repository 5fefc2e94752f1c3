#!/bin/bash
# Mutation checks of the inode-lock VM tests (issue 11), of the partition fence test (issue
# 10, VM test 3) and of the fence fallback tests: each mutation removes one mechanism from the module (edits of a copy of kernel/, never of the tree), and names the VM checks
# that must fail with it. `run` builds the mutated module, runs the tests that must catch it
# against that module (the harnesses take it through MXFS_KO, build-initramfs.sh), and says
# for each expected check whether it failed.
#   test/vm/mutations.sh list
#   test/vm/mutations.sh build NAME DIR     the mutated module in DIR; prints the .ko path
#   test/vm/mutations.sh run NAME...        CAUGHT (every expected check failed) or MISSED, per
#                                           mutation; exit 1 if any was missed
# Work dir: MXFS_MUT_WORK (default /tmp/mxfs-mut), one directory per mutation with the
# harnesses' logs. The one-VM tests run alone (MXFS_VM_ONLY=hooks or volumes), the two-VM ones by name.
# Results of the last runs: docs/kernel.md "Mutation checks".
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${MXFS_MUT_WORK:-/tmp/mxfs-mut}"

# The table: NAME | the tests that must catch it (vm = one-VM hooks tests, vmvol = one-VM volume
# tests with the fence fallback ones, vm2:TEST) | the
# checks that must fail (test/check, space-separated) | what is removed.
MUTATIONS='
no-writeback|vm vm2:inode-locks vm2:inode-ops|hooks/bast-writeback inode-locks/b-ex-sees-writeback inode-ops/mmap-downconvert-writeback|a demote writes nothing back (go_sync does nothing, go_inval does not write dirty pages back before retrying)
no-invalidate|vm vm2:inode-locks|hooks/bast-invalidate inode-locks/a-invalidated inode-locks/a-read-waits|a demote to NL keeps the page cache (go_inval does nothing)
no-cache|vm|hooks/cache-hits|no lock stays cached: the last holder leaving gives the cluster lock back
no-read-hook|vm2:inode-locks|inode-locks/a-read-waits|xfs_file_read_iter takes no inode lock
no-mkwrite-hook|vm2:inode-ops|inode-ops/page-mkwrite-waits|xfs_filemap_page_mkwrite takes no inode lock
no-fallocate-hook|vm2:inode-ops|inode-ops/fallocate-waits|xfs_file_fallocate takes no inode lock
no-remap-hook|vm2:inode-ops|inode-ops/clone-waits|xfs_file_remap_range takes no inode lock
hooks-every-fs|vm2:inode-ops|inode-ops/other-fs-untouched|a hooked call on another filesystem is taken for the last volume seen (locks by inode number)
uninterruptible|vm|hooks/killable|waits for an inode lock are uninterruptible (TASK_UNINTERRUPTIBLE)
demote-irwsem|vm|hooks/lock-order|the demote takes the inode'"'"'s i_rwsem around its write-back
no-shrinker|vm|hooks/shrinker hooks/shrinker-pressure|the shrinker gives nothing back (its scan returns at once)
no-send-retry|vm|hooks/send-retry|a send to the daemon is tried once: a full receive buffer drops it (-EAGAIN)
no-fence-wake|vm2:inode-locks|inode-locks/fence-eio|a fence does not wake the tasks waiting for the volume'"'"'s inode locks
no-fallback|vmvol|fence-fallback-log fence-fallback-restart|a fence whose writes did not drain within the bound applies no fence_fallback (neither restart, panic nor the log line)
no-fence-io|vm2:partition-fence|partition-fence/records-before-fence partition-fence/a-fence-record|the fence stops no write: write bios pass whatever the gate and the kernel lease, XFS is not shut down, the inode-lock hooks do not see the fence
'

row() { echo "$MUTATIONS" | grep "^$1|" || { echo "mutations: unknown mutation '$1' (see: $0 list)" >&2; exit 2; }; }

# edit FILE PERL: apply the substitution; a mutation that changes nothing is an error (the
# code it targets moved: fix the table, never report a mutation that was not applied).
edit() {
  local f="$1" before
  before=$(md5sum < "$f")
  perl -0pi -e "$2" "$f"
  [ "$(md5sum < "$f")" != "$before" ] || { echo "mutations: '$2' changed nothing in $f" >&2; exit 1; }
}

mutate() {
  local d="$1"
  case "$2" in
    no-writeback)
      edit "$d/mxfs_glops.c" 's/(static int mxfs_file_sync\(struct inode \*inode\)\n\{\n)\treturn filemap_write_and_wait_range\(inode->i_mapping, 0, LLONG_MAX\);/$1\treturn 0;/'
      edit "$d/mxfs_glops.c" 's/\t\tfilemap_write_and_wait_range\(mapping, 0, LLONG_MAX\);\n\t\terr = invalidate_inode_pages2/\t\terr = invalidate_inode_pages2/' ;;
    no-invalidate)
      edit "$d/mxfs_glops.c" 's/(static int mxfs_file_inval\(struct inode \*inode\)\n\{\n\tstruct address_space \*mapping = inode->i_mapping;\n\tint err;\n\n)/$1\treturn 0;\n/' ;;
    no-cache)
      edit "$d/mxfs_glock.c" 's/(\tgl->nholders\[mxfs_hidx\(h->mode\)\]--;\n\tlist_del\(&h->node\);\n)/$1\tif (!gl->nholders[0] && !gl->nholders[1] && gl->mode != MXFS_MODE_NL && gl->demote < 0)\n\t\tgl->demote = MXFS_MODE_NL;\n/' ;;
    no-read-hook) edit "$d/mxfs_hooks.c" 's/(static ssize_t mxfs_read_iter\(.*?)if \(!v\) \{/$1if (1) {/s' ;;
    no-mkwrite-hook) edit "$d/mxfs_hooks.c" 's/(static vm_fault_t mxfs_page_mkwrite\(.*?)if \(!v\) \{/$1if (1) {/s' ;;
    no-fallocate-hook) edit "$d/mxfs_hooks.c" 's/(static long mxfs_fallocate\(.*?)if \(!v\) \{/$1if (1) {/s' ;;
    no-remap-hook) edit "$d/mxfs_hooks.c" 's/(static loff_t mxfs_remap\(struct file \*in.*?)if \(!v\) \{/$1if (1) {/s' ;;
    hooks-every-fs)
      edit "$d/mxfs_hooks.c" 's/(\tstruct mxfs_vol \*v = inode \? mxfs_blk_sb_volume\(inode->i_sb\) : NULL;\n)/\tstatic struct mxfs_vol *mut_last;\n$1\tif (v)\n\t\tmut_last = v;\n\telse if (inode)\n\t\tv = mut_last;\n/' ;;
    uninterruptible) edit "$d/mxfs_glock.c" 's/prepare_to_wait\(&gl->wq, &wait, TASK_KILLABLE\)/prepare_to_wait(&gl->wq, &wait, TASK_UNINTERRUPTIBLE)/' ;;
    demote-irwsem)
      edit "$d/mxfs_glock.c" 's/(\tif \(inode\) \{\n)(\t\tif \(mode == MXFS_MODE_EX && ops->go_sync\) \{)/$1\t\tinode_lock(inode);\n$2/'
      edit "$d/mxfs_glock.c" 's/(\t\t\tatomic64_add\(pages - min\(pages, inode->i_mapping->nrpages\), &gst.pages_dropped\);\n\t\t\}\n)/$1\t\tinode_unlock(inode);\n/' ;;
    no-shrinker) edit "$d/mxfs_glock.c" 's/\tif \(!\(sc->gfp_mask & __GFP_FS\)\)\n\t\treturn SHRINK_STOP;/\treturn SHRINK_STOP;/' ;;
    no-send-retry) edit "$d/mxfs_netlink.c" 's/if \(err != -EAGAIN \|\| !wait \|\|/if (err != -EAGAIN || !wait || 1 ||/' ;;
    no-fence-wake) edit "$d/mxfs_glock.c" 's/(void mxfs_glocks_fenced\(struct mxfs_vol \*v\)\n\{\n)/$1\treturn;\n/' ;;
    no-fence-io)
      edit "$d/mxfs_volume.c" 's/if \(READ_ONCE\(v->gate\) == MXFS_GATE_OPEN && mxfs_lease_valid_now\(\)\)\n\t\treturn true;/if (1)\n\t\treturn true;/'
      edit "$d/mxfs_volume.c" 's/rec\.shutdown = mxfs_blk_shutdown_fs\(v->blk\);/rec.shutdown = 0;/'
      edit "$d/mxfs_volume.c" 's/\treturn gate == MXFS_GATE_FENCING \|\| gate == MXFS_GATE_FENCED;/\t(void)gate;\n\treturn false;/' ;;
    no-fallback) edit "$d/mxfs_volume.c" 's/(static void mxfs_fence_missed\(struct mxfs_vol \*v, u32 left\)\n\{\n)/$1\treturn;\n/' ;;
    *) echo "mutations: no edits for '$2'" >&2; exit 2 ;;
  esac
}

build() {
  local name="$1" d="$2" kver log
  row "$name" > /dev/null
  rm -rf "$d"; mkdir -p "$d"
  cp "$ROOT"/kernel/*.c "$ROOT"/kernel/*.h "$ROOT"/kernel/Makefile "$ROOT"/kernel/kver.sh "$d/"
  mutate "$d" "$name"
  kver="$("$ROOT/kernel/kver.sh")"
  log="$d/build.log"
  # -Werror stays: a mutation must compile as cleanly as the module.
  # The copy has no package.json beside it: the version comes from this checkout.
  if ! make -C "$d" KVER="$kver" MXFS_VERSION="$(make -s -C "$ROOT/kernel" version)" > "$log" 2>&1 || grep -q 'warning:' "$log"; then
    cat "$log" >&2; echo "mutations: $name does not build" >&2; exit 1
  fi
  echo "$d/mxfs.ko"
}

run_one() {
  local name="$1" r tests checks what dir ko t log missed=() got
  r=$(row "$name"); IFS='|' read -r _ tests checks what <<< "$r"
  dir="$WORK/$name"; mkdir -p "$dir"
  ko=$(build "$name" "$dir/kernel")
  echo "mutations: $name ($what): running ${tests}"
  : > "$dir/results.log"
  for t in $tests; do
    case "$t" in
      vm) log="$dir/vm.log"
        MXFS_KO="$ko" MXFS_VM_ONLY=hooks MXFS_VM_WORK="$dir/vm" nice bash "$ROOT/test/vm/run-vm-tests.sh" --no-install > "$log" 2>&1 || true ;;
      vmvol) log="$dir/vmvol.log"
        MXFS_KO="$ko" MXFS_VM_ONLY=volumes MXFS_VM_WORK="$dir/vmvol" nice bash "$ROOT/test/vm/run-vm-tests.sh" --no-install > "$log" 2>&1 || true ;;
      vm2:*) log="$dir/${t#vm2:}.log"
        MXFS_KO="$ko" MXFS_VM2_WORK="$dir/vm2" nice bash "$ROOT/test/vm2/run-vm2-tests.sh" --no-install --only "${t#vm2:}" > "$log" 2>&1 || true ;;
    esac
    grep -a '^MXFS-TEST \(PASS\|FAIL\)' "$log" >> "$dir/results.log" || true
  done
  for c in $checks; do
    got=$(grep -a -m1 "^MXFS-TEST [A-Z]* $c:" "$dir/results.log" || true)
    echo "  $c: ${got:-(not run)}" | cut -c1-400
    [[ "$got" == "MXFS-TEST FAIL "* ]] || missed+=("$c")
  done
  if [ ${#missed[@]} = 0 ]; then echo "MUTATION $name CAUGHT"; else echo "MUTATION $name MISSED by ${missed[*]}"; return 1; fi
}

case "${1:-}" in
  list) echo "$MUTATIONS" | sed '/^$/d' | awk -F'|' '{ printf "%-18s %-36s %s\n", $1, $2, $4 }' ;;
  build) [ $# = 3 ] || { echo "usage: $0 build NAME DIR" >&2; exit 2; }; build "$2" "$3" ;;
  run)
    shift; [ $# -gt 0 ] || { echo "usage: $0 run NAME..." >&2; exit 2; }
    for n in "$@"; do row "$n" > /dev/null; done
    (cd "$ROOT" && npx tsc -p . > /dev/null 2>&1) || true
    rc=0
    for n in "$@"; do t0=$(date +%s); run_one "$n" || rc=1; echo "mutations: $n took $(( $(date +%s) - t0 )) s"; done
    exit $rc ;;
  *) echo "usage: $0 list | build NAME DIR | run NAME..." >&2; exit 2 ;;
esac
