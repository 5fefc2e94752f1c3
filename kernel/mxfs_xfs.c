// SPDX-License-Identifier: GPL-2.0
/*
 * What the fence reaches that no module may link against: XFS exports nothing, and
 * get_super() is not exported on 6.1. kallsyms_lookup_name (itself unexported since 5.7) is
 * found once at load by registering a kprobe on it and reading the probe's address; with it
 * get_super (vmlinux, at load) and xfs_fs_goingdown (xfs.ko, looked up at each fence, since
 * XFS may be loaded, unloaded or reloaded after this module).
 *
 * mxfs_xfs_shutdown: the filesystem mounted on a block device, if it is XFS, is shut down
 * with XFS_FSOP_GOING_FLAGS_NOLOGFLUSH (what `xfs_io -x -c "shutdown"` does without -f):
 * nothing more is written, and every application call fails with EIO at once instead of at
 * its next write. Without these symbols the fence still holds (the gate fails every write);
 * XFS then shuts itself down at its next failed log write.
 */
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/string.h>
#include "mxfs_internal.h"

#define MXFS_XFS_GOINGDOWN_NOLOGFLUSH 0x2	/* XFS_FSOP_GOING_FLAGS_NOLOGFLUSH (xfs_fs.h) */

typedef unsigned long (*mxfs_kallsyms_fn)(const char *name);
typedef struct super_block *(*mxfs_get_super_fn)(struct block_device *bdev);
typedef int (*mxfs_goingdown_fn)(void *mp, u32 flags);

static mxfs_kallsyms_fn mxfs_kallsyms;
static mxfs_get_super_fn mxfs_get_super;

void mxfs_xfs_init(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };

	if (register_kprobe(&kp) == 0) {
		mxfs_kallsyms = (mxfs_kallsyms_fn)kp.addr;
		unregister_kprobe(&kp);
	}
	if (mxfs_kallsyms)
		mxfs_get_super = (mxfs_get_super_fn)mxfs_kallsyms("get_super");
	if (!mxfs_get_super)
		pr_warn("mxfs: kallsyms_lookup_name/get_super not found: fences will not shut XFS down themselves\n");
}

unsigned long mxfs_kallsyms_lookup(const char *name)
{
	return mxfs_kallsyms ? mxfs_kallsyms(name) : 0;
}

bool mxfs_xfs_available(void)
{
	return mxfs_get_super != NULL;
}

u8 mxfs_xfs_shutdown(struct block_device *bdev)
{
	mxfs_goingdown_fn goingdown;
	struct super_block *sb;
	u8 result;

	if (!mxfs_get_super)
		return MXFS_SHUTDOWN_UNAVAILABLE;
	sb = mxfs_get_super(bdev);	/* s_umount held shared: no unmount meanwhile */
	if (!sb)
		return MXFS_SHUTDOWN_NO_FS;
	if (strcmp(sb->s_type->name, "xfs")) {
		result = MXFS_SHUTDOWN_NOT_XFS;
	} else {
		goingdown = (mxfs_goingdown_fn)mxfs_kallsyms("xfs_fs_goingdown");
		if (goingdown) {
			goingdown(sb->s_fs_info, MXFS_XFS_GOINGDOWN_NOLOGFLUSH);
			result = MXFS_SHUTDOWN_DONE;
		} else {
			result = MXFS_SHUTDOWN_UNAVAILABLE;
		}
	}
	drop_super(sb);
	return result;
}
