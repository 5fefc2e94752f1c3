// SPDX-License-Identifier: GPL-2.0
/*
 * The inode locks' per-type operations (GFS2's glops): what giving a lock up means for the
 * data this node caches under it. The state machine (mxfs_glock.c) calls them from its work
 * item, with no holder left and new holders held back, and never with a VFS or XFS lock
 * held: they take folio locks, the mapping's i_mmap_rwsem (unmapping) and, inside XFS's
 * writeback, its ILOCK; never i_rwsem, mmap_lock or the mapping's invalidate_lock, which the
 * tasks waiting in the hooks may hold (docs/kernel.md "Lock ordering").
 *
 *   go_sync      EX given up or down-converted: write the dirty pages back and wait
 *   go_inval     the lock goes to NL (another node will write): drop the page cache, and
 *                with it every mapping of it (invalidate_inode_pages2 unmaps)
 *   go_demote_ok may an idle cached lock be given up for memory (the shrinker)?
 *
 * Regular files have all three; directories and other inodes are lock-only: XFS keeps
 * directory blocks, inode cores and extent maps in its own caches, which nothing outside XFS
 * can invalidate (shared/design/xfs-coherency.md), so a directory lock orders operations
 * across nodes but does not make another node's view of it fresh.
 */
#include <linux/fs.h>
#include <linux/pagemap.h>
#include "mxfs_internal.h"
#include "mxfs_glock.h"

static int mxfs_file_sync(struct inode *inode)
{
	return filemap_write_and_wait_range(inode->i_mapping, 0, LLONG_MAX);
}

static int mxfs_file_inval(struct inode *inode)
{
	struct address_space *mapping = inode->i_mapping;
	int err;

	if (!mapping->nrpages)
		return 0;
	err = invalidate_inode_pages2(mapping);
	if (err) {
		/* A page was dirtied or locked meanwhile (a racing writeback): once more. */
		filemap_write_and_wait_range(mapping, 0, LLONG_MAX);
		err = invalidate_inode_pages2(mapping);
	}
	return err;
}

static bool mxfs_demote_ok_always(const struct mxfs_glock *gl)
{
	return true;
}

static const struct mxfs_glock_ops mxfs_file_glops = {
	.name = "file",
	.go_sync = mxfs_file_sync,
	.go_inval = mxfs_file_inval,
	.go_demote_ok = mxfs_demote_ok_always,
};

static const struct mxfs_glock_ops mxfs_dir_glops = {
	.name = "dir",
	.go_demote_ok = mxfs_demote_ok_always,
};

static const struct mxfs_glock_ops mxfs_other_glops = {
	.name = "other",
	.go_demote_ok = mxfs_demote_ok_always,
};

const struct mxfs_glock_ops *const mxfs_glops[MXFS_GLT_MAX + 1] = {
	[MXFS_GLT_FILE] = &mxfs_file_glops,
	[MXFS_GLT_DIR] = &mxfs_dir_glops,
	[MXFS_GLT_OTHER] = &mxfs_other_glops,
};

u8 mxfs_glock_type_of(umode_t mode)
{
	return S_ISREG(mode) ? MXFS_GLT_FILE : S_ISDIR(mode) ? MXFS_GLT_DIR : MXFS_GLT_OTHER;
}
