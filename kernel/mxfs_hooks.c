// SPDX-License-Identifier: GPL-2.0
/*
 * The XFS hooks: ftrace redirects of XFS's inode entry points to wrappers that take the
 * inode locks (mxfs_glock.c) before calling XFS, only for a superblock mounted on a kernel
 * volume's stacked disk; on any other filesystem a wrapper calls XFS at once.
 *
 * How (shared/design/kernel-path.md): XFS exports nothing, and its operation tables are
 * const inside xfs.ko. Each entry point gets an ftrace_ops with IPMODIFY whose handler points
 * the traced call at our wrapper, unless the caller is this module (the wrapper calling the
 * original: the handler runs again and lets it through). The wrapper's call of the original
 * must never be a tail call (it would re-enter the redirect forever): this file is built with
 * -fno-optimize-sibling-calls (Makefile), and every wrapper does work after the call anyway.
 * The addresses come from kallsyms (mxfs_xfs.c); xfs.ko is pinned while the hooks are in.
 *
 * When: installed when the first stacked disk is opened (a mount), removed (from a work
 * item, never under the block layer's open_mutex) when the last one is closed or the module
 * unloads. After unregister_ftrace_function (which waits for tasks in the trampoline), the
 * unload waits until no task is inside a wrapper (a per-cpu count around each wrapper).
 *
 * The entry points, the inode lock each takes, and what the caller already holds there (6.1):
 *
 *   hook                      inode lock                        held by the VFS/mm at entry
 *   xfs_file_read_iter        file PR                           (nothing; f_pos_lock)
 *   xfs_file_write_iter       file EX                           sb_start_write; f_pos_lock
 *   xfs_file_fsync            file PR                           nothing
 *   xfs_file_fallocate        file EX                           sb_start_write
 *   xfs_file_remap_range      source PR, destination EX         sb_start_write (destination)
 *   xfs_file_open, xfs_dir_open   inode PR                      nothing (the path is resolved)
 *   xfs_vn_setattr            inode EX                          i_rwsem of the inode
 *   xfs_vn_create/mknod/mkdir/symlink   directory EX, then the new inode EX (cached)
 *                                                               i_rwsem of the directory
 *   xfs_vn_tmpfile            directory PR, the new inode EX    i_rwsem of the directory
 *   xfs_vn_link               directory EX, inode EX            i_rwsem of directory and inode
 *   xfs_vn_unlink (unlink, rmdir)  directory EX, inode EX       i_rwsem of directory and inode
 *   xfs_vn_rename             both directories, source and target EX (inode number order)
 *                                                               i_rwsem of the directories and
 *                                                               the inodes; s_vfs_rename_mutex
 *   xfs_filemap_fault         file PR                           mmap_lock (read)
 *   xfs_filemap_map_pages     file PR, only if cached (fault-around is opportunistic)
 *                                                               mmap_lock (read)
 *   xfs_filemap_page_mkwrite  file EX                           mmap_lock (read), sb_start_pagefault
 *   xfs_fs_destroy_inode      none: unbinds the inode from its lock
 *
 * Every wait happens at the entry of XFS's function, before XFS takes its own locks (ILOCK,
 * IOLOCK = i_rwsem for files, MMAPLOCK = invalidate_lock). Why none of these can deadlock
 * with the blocking-callback path: that path runs in mxfs_glock's work item, holds no VFS
 * lock, and takes only folio locks, i_mmap_rwsem (unmapping) and, inside XFS writeback,
 * ILOCK and sb_start_intwrite (a read lock); it never takes i_rwsem, mmap_lock,
 * invalidate_lock, s_vfs_rename_mutex nor sb_start_write's level, which the waiting tasks
 * may hold; it waits for the glock's holders, and a holder is a task inside XFS that waits
 * for no glock (all of an operation's glocks are taken at entry, in inode number order).
 * A task already holding a glock takes it again without waiting (a write faulting in a
 * mapping of the same file). docs/kernel.md "Lock ordering" has the argument and its test.
 */
#include <linux/fs.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include "mxfs_internal.h"

#define PR 3
#define EX 5

struct mxfs_hook {
	const char *name;
	void *wrapper;
	void **orig;
	unsigned long addr;
	struct ftrace_ops ops;
	bool registered;
	atomic64_t calls;	/* calls on an MXFS volume */
	atomic64_t errors;	/* of which the inode lock failed */
};

static DEFINE_PER_CPU(long, mxfs_in_wrapper);
static DEFINE_MUTEX(mxfs_hooks_mutex);
static unsigned int mxfs_hooks_users;
static bool mxfs_hooks_installed;
static struct file_system_type *mxfs_xfs_type;	/* pins xfs.ko while hooked */
static atomic64_t mxfs_passthrough;		/* calls on other filesystems */

#define ENTER() this_cpu_inc(mxfs_in_wrapper)
#define LEAVE() this_cpu_dec(mxfs_in_wrapper)

/* ---- the wrappers -------------------------------------------------------------------- */

static ssize_t (*orig_read_iter)(struct kiocb *iocb, struct iov_iter *to);
static ssize_t (*orig_write_iter)(struct kiocb *iocb, struct iov_iter *from);
static int (*orig_fsync)(struct file *file, loff_t start, loff_t end, int datasync);
static long (*orig_fallocate)(struct file *file, int mode, loff_t offset, loff_t len);
static loff_t (*orig_remap)(struct file *in, loff_t pos_in, struct file *out, loff_t pos_out, loff_t len,
			    unsigned int flags);
static int (*orig_file_open)(struct inode *inode, struct file *file);
static int (*orig_dir_open)(struct inode *inode, struct file *file);
static int (*orig_setattr)(struct user_namespace *ns, struct dentry *dentry, struct iattr *iattr);
static int (*orig_create)(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, umode_t mode,
			  bool excl);
static int (*orig_mknod)(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, umode_t mode,
			 dev_t rdev);
static int (*orig_mkdir)(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, umode_t mode);
static int (*orig_symlink)(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, const char *target);
static int (*orig_tmpfile)(struct user_namespace *ns, struct inode *dir, struct file *file, umode_t mode);
static int (*orig_link)(struct dentry *old, struct inode *dir, struct dentry *dentry);
static int (*orig_unlink)(struct inode *dir, struct dentry *dentry);
static int (*orig_rename)(struct user_namespace *ns, struct inode *odir, struct dentry *odentry,
			  struct inode *ndir, struct dentry *ndentry, unsigned int flags);
static vm_fault_t (*orig_fault)(struct vm_fault *vmf);
static vm_fault_t (*orig_map_pages)(struct vm_fault *vmf, pgoff_t start, pgoff_t end);
static vm_fault_t (*orig_page_mkwrite)(struct vm_fault *vmf);
static void (*orig_destroy_inode)(struct inode *inode);

enum mxfs_hook_id {
	H_READ, H_WRITE, H_FSYNC, H_FALLOC, H_REMAP, H_OPEN, H_DIROPEN, H_SETATTR, H_CREATE, H_MKNOD,
	H_MKDIR, H_SYMLINK, H_TMPFILE, H_LINK, H_UNLINK, H_RENAME, H_FAULT, H_MAPPAGES, H_MKWRITE,
	H_DESTROY, H_NR
};
static struct mxfs_hook mxfs_hooks[H_NR];

static struct mxfs_vol *mxfs_hook_vol(enum mxfs_hook_id id, const struct inode *inode)
{
	struct mxfs_vol *v = inode ? mxfs_blk_sb_volume(inode->i_sb) : NULL;

	if (v)
		atomic64_inc(&mxfs_hooks[id].calls);
	else
		atomic64_inc(&mxfs_passthrough);
	return v;
}

static int mxfs_hook_lock(enum mxfs_hook_id id, struct mxfs_vol *v, struct inode *inode, u8 mode,
			  unsigned int flags, struct mxfs_gholder *h)
{
	int err = mxfs_glock_acquire(v, inode, mode, flags, h);

	if (err)
		atomic64_inc(&mxfs_hooks[id].errors);
	return err;
}

static ssize_t mxfs_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	ssize_t ret;

	ENTER();
	v = mxfs_hook_vol(H_READ, inode);
	if (!v) {
		ret = orig_read_iter(iocb, to);
	} else {
		ret = mxfs_hook_lock(H_READ, v, inode, PR, iocb->ki_flags & IOCB_NOWAIT ? MXFS_GH_NOWAIT : 0, &h);
		if (!ret) {
			ret = orig_read_iter(iocb, to);
			mxfs_glock_release(&h);
		}
	}
	LEAVE();
	return ret;
}

static ssize_t mxfs_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	ssize_t ret;

	ENTER();
	v = mxfs_hook_vol(H_WRITE, inode);
	if (!v) {
		ret = orig_write_iter(iocb, from);
	} else {
		ret = mxfs_hook_lock(H_WRITE, v, inode, EX,
				     MXFS_GH_DIRTIES | (iocb->ki_flags & IOCB_NOWAIT ? MXFS_GH_NOWAIT : 0), &h);
		if (!ret) {
			ret = orig_write_iter(iocb, from);
			mxfs_glock_release(&h);
		}
	}
	LEAVE();
	return ret;
}

static int mxfs_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct inode *inode = file_inode(file);
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	ENTER();
	v = mxfs_hook_vol(H_FSYNC, inode);
	if (!v) {
		ret = orig_fsync(file, start, end, datasync);
	} else {
		ret = mxfs_hook_lock(H_FSYNC, v, inode, PR, 0, &h);
		if (!ret) {
			ret = orig_fsync(file, start, end, datasync);
			mxfs_glock_release(&h);
		}
	}
	LEAVE();
	return ret;
}

static long mxfs_fallocate(struct file *file, int mode, loff_t offset, loff_t len)
{
	struct inode *inode = file_inode(file);
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	long ret;

	ENTER();
	v = mxfs_hook_vol(H_FALLOC, inode);
	if (!v) {
		ret = orig_fallocate(file, mode, offset, len);
	} else {
		ret = mxfs_hook_lock(H_FALLOC, v, inode, EX, MXFS_GH_DIRTIES, &h);
		if (!ret) {
			ret = orig_fallocate(file, mode, offset, len);
			mxfs_glock_release(&h);
		}
	}
	LEAVE();
	return ret;
}

/* Several inodes: NULLs and repeats are skipped, the rest taken in inode number order. */
static int mxfs_hook_lock_many(enum mxfs_hook_id id, struct mxfs_vol *v, struct inode **inodes, const u8 *modes,
			       unsigned int n, struct mxfs_gholder *h)
{
	int err = mxfs_glock_acquire_many(v, inodes, modes, n, MXFS_GH_DIRTIES, h);

	if (err)
		atomic64_inc(&mxfs_hooks[id].errors);
	return err;
}

static loff_t mxfs_remap(struct file *in, loff_t pos_in, struct file *out, loff_t pos_out, loff_t len,
			 unsigned int flags)
{
	struct inode *inodes[2] = { file_inode(in), file_inode(out) };
	static const u8 modes[2] = { PR, EX };
	struct mxfs_gholder h[2];
	struct mxfs_vol *v;
	loff_t ret;

	ENTER();
	v = mxfs_hook_vol(H_REMAP, inodes[1]);
	if (!v) {
		ret = orig_remap(in, pos_in, out, pos_out, len, flags);
	} else {
		ret = mxfs_hook_lock_many(H_REMAP, v, inodes, modes, 2, h);
		if (!ret) {
			ret = orig_remap(in, pos_in, out, pos_out, len, flags);
			mxfs_glock_release_many(h, 2);
		}
	}
	LEAVE();
	return ret;
}

static int mxfs_open_common(enum mxfs_hook_id id, int (*orig)(struct inode *, struct file *),
			    struct inode *inode, struct file *file)
{
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	ENTER();
	v = mxfs_hook_vol(id, inode);
	if (!v) {
		ret = orig(inode, file);
	} else {
		ret = mxfs_hook_lock(id, v, inode, PR, 0, &h);
		if (!ret) {
			ret = orig(inode, file);
			mxfs_glock_release(&h);
		}
	}
	LEAVE();
	return ret;
}

static int mxfs_file_open(struct inode *inode, struct file *file)
{
	return mxfs_open_common(H_OPEN, orig_file_open, inode, file);
}

static int mxfs_dir_open(struct inode *inode, struct file *file)
{
	return mxfs_open_common(H_DIROPEN, orig_dir_open, inode, file);
}

static int mxfs_setattr(struct user_namespace *ns, struct dentry *dentry, struct iattr *iattr)
{
	struct inode *inode = d_inode(dentry);
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	ENTER();
	v = mxfs_hook_vol(H_SETATTR, inode);
	if (!v) {
		ret = orig_setattr(ns, dentry, iattr);
	} else {
		ret = mxfs_hook_lock(H_SETATTR, v, inode, EX, MXFS_GH_DIRTIES, &h);
		if (!ret) {
			ret = orig_setattr(ns, dentry, iattr);
			mxfs_glock_release(&h);
		}
	}
	LEAVE();
	return ret;
}

/*
 * create, mknod, mkdir, symlink: the directory EX around XFS's call; the new inode's lock is
 * then taken EX and left cached (the open and writes that follow are cache hits). XFS fills
 * dentry with the new inode.
 */
#define MXFS_CREATE_WRAPPER(fn, id, call)						\
	ENTER();									\
	v = mxfs_hook_vol(id, dir);							\
	if (!v) {									\
		ret = call;								\
	} else {									\
		ret = mxfs_hook_lock(id, v, dir, EX, MXFS_GH_DIRTIES, &h);		\
		if (!ret) {								\
			ret = call;							\
			if (!ret && d_inode(dentry))					\
				mxfs_glock_new_inode(v, d_inode(dentry));		\
			mxfs_glock_release(&h);						\
		}									\
	}										\
	LEAVE();									\
	return ret

static int mxfs_create(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, umode_t mode, bool excl)
{
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	MXFS_CREATE_WRAPPER(create, H_CREATE, orig_create(ns, dir, dentry, mode, excl));
}

static int mxfs_mknod(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, umode_t mode, dev_t rdev)
{
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	MXFS_CREATE_WRAPPER(mknod, H_MKNOD, orig_mknod(ns, dir, dentry, mode, rdev));
}

static int mxfs_mkdir(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	MXFS_CREATE_WRAPPER(mkdir, H_MKDIR, orig_mkdir(ns, dir, dentry, mode));
}

static int mxfs_symlink(struct user_namespace *ns, struct inode *dir, struct dentry *dentry, const char *target)
{
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	MXFS_CREATE_WRAPPER(symlink, H_SYMLINK, orig_symlink(ns, dir, dentry, target));
}

/* O_TMPFILE: no name is added to the directory (PR); the unnamed inode is new (EX). */
static int mxfs_tmpfile(struct user_namespace *ns, struct inode *dir, struct file *file, umode_t mode)
{
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	int ret;

	ENTER();
	v = mxfs_hook_vol(H_TMPFILE, dir);
	if (!v) {
		ret = orig_tmpfile(ns, dir, file, mode);
	} else {
		ret = mxfs_hook_lock(H_TMPFILE, v, dir, PR, 0, &h);
		if (!ret) {
			ret = orig_tmpfile(ns, dir, file, mode);
			if (!ret)
				mxfs_glock_new_inode(v, file_inode(file));
			mxfs_glock_release(&h);
		}
	}
	LEAVE();
	return ret;
}

static int mxfs_link(struct dentry *old, struct inode *dir, struct dentry *dentry)
{
	struct inode *inodes[2] = { dir, d_inode(old) };
	static const u8 modes[2] = { EX, EX };
	struct mxfs_gholder h[2];
	struct mxfs_vol *v;
	int ret;

	ENTER();
	v = mxfs_hook_vol(H_LINK, dir);
	if (!v) {
		ret = orig_link(old, dir, dentry);
	} else {
		ret = mxfs_hook_lock_many(H_LINK, v, inodes, modes, 2, h);
		if (!ret) {
			ret = orig_link(old, dir, dentry);
			mxfs_glock_release_many(h, 2);
		}
	}
	LEAVE();
	return ret;
}

/* unlink and rmdir (XFS uses one function for both). */
static int mxfs_unlink(struct inode *dir, struct dentry *dentry)
{
	struct inode *inodes[2] = { dir, d_inode(dentry) };
	static const u8 modes[2] = { EX, EX };
	struct mxfs_gholder h[2];
	struct mxfs_vol *v;
	int ret;

	ENTER();
	v = mxfs_hook_vol(H_UNLINK, dir);
	if (!v) {
		ret = orig_unlink(dir, dentry);
	} else {
		ret = mxfs_hook_lock_many(H_UNLINK, v, inodes, modes, 2, h);
		if (!ret) {
			ret = orig_unlink(dir, dentry);
			mxfs_glock_release_many(h, 2);
		}
	}
	LEAVE();
	return ret;
}

static int mxfs_rename(struct user_namespace *ns, struct inode *odir, struct dentry *odentry,
		       struct inode *ndir, struct dentry *ndentry, unsigned int flags)
{
	struct inode *inodes[4] = { odir, ndir, d_inode(odentry), d_inode(ndentry) };
	static const u8 modes[4] = { EX, EX, EX, EX };
	struct mxfs_gholder h[4];
	struct mxfs_vol *v;
	int ret;

	ENTER();
	v = mxfs_hook_vol(H_RENAME, odir);
	if (!v) {
		ret = orig_rename(ns, odir, odentry, ndir, ndentry, flags);
	} else {
		ret = mxfs_hook_lock_many(H_RENAME, v, inodes, modes, 4, h);
		if (!ret) {
			ret = orig_rename(ns, odir, odentry, ndir, ndentry, flags);
			mxfs_glock_release_many(h, 4);
		}
	}
	LEAVE();
	return ret;
}

static vm_fault_t mxfs_fault_errno(int err)
{
	return err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
}

static vm_fault_t mxfs_fault(struct vm_fault *vmf)
{
	struct inode *inode = file_inode(vmf->vma->vm_file);
	bool nowait = vmf->flags & FAULT_FLAG_RETRY_NOWAIT;
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	vm_fault_t ret;
	int err;

	ENTER();
	v = mxfs_hook_vol(H_FAULT, inode);
	if (!v) {
		ret = orig_fault(vmf);
	} else {
		err = mxfs_hook_lock(H_FAULT, v, inode, PR, nowait ? MXFS_GH_NOWAIT : 0, &h);
		if (!err) {
			ret = orig_fault(vmf);
			mxfs_glock_release(&h);
		} else {
			/* NOWAIT: retry later without dropping mmap_lock, as filemap_fault does. */
			ret = err == -EAGAIN ? VM_FAULT_RETRY : mxfs_fault_errno(err);
		}
	}
	LEAVE();
	return ret;
}

static vm_fault_t mxfs_map_pages(struct vm_fault *vmf, pgoff_t start, pgoff_t end)
{
	struct inode *inode = file_inode(vmf->vma->vm_file);
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	vm_fault_t ret = 0;

	ENTER();
	v = mxfs_hook_vol(H_MAPPAGES, inode);
	if (!v) {
		ret = orig_map_pages(vmf, start, end);
	} else if (!mxfs_glock_acquire(v, inode, PR, MXFS_GH_NOWAIT, &h)) {
		ret = orig_map_pages(vmf, start, end);
		mxfs_glock_release(&h);
	}
	/* Not cached: map nothing around; the fault itself then waits in mxfs_fault. */
	LEAVE();
	return ret;
}

static vm_fault_t mxfs_page_mkwrite(struct vm_fault *vmf)
{
	struct inode *inode = file_inode(vmf->vma->vm_file);
	struct mxfs_vol *v;
	struct mxfs_gholder h;
	vm_fault_t ret;
	int err;

	ENTER();
	v = mxfs_hook_vol(H_MKWRITE, inode);
	if (!v) {
		ret = orig_page_mkwrite(vmf);
	} else {
		err = mxfs_hook_lock(H_MKWRITE, v, inode, EX, MXFS_GH_DIRTIES, &h);
		if (!err) {
			ret = orig_page_mkwrite(vmf);
			mxfs_glock_release(&h);
		} else {
			ret = mxfs_fault_errno(err);
		}
	}
	LEAVE();
	return ret;
}

static void mxfs_destroy_inode(struct inode *inode)
{
	struct mxfs_vol *v;

	ENTER();
	v = mxfs_hook_vol(H_DESTROY, inode);
	if (v)
		mxfs_glock_inode_gone(v, inode);
	orig_destroy_inode(inode);
	LEAVE();
}

/* ---- the table, install, remove ------------------------------------------------------ */

#define HOOK(id, sym, fn, o) [id] = { .name = sym, .wrapper = fn, .orig = (void **)&o }
static struct mxfs_hook mxfs_hooks[H_NR] = {
	HOOK(H_READ, "xfs_file_read_iter", mxfs_read_iter, orig_read_iter),
	HOOK(H_WRITE, "xfs_file_write_iter", mxfs_write_iter, orig_write_iter),
	HOOK(H_FSYNC, "xfs_file_fsync", mxfs_fsync, orig_fsync),
	HOOK(H_FALLOC, "xfs_file_fallocate", mxfs_fallocate, orig_fallocate),
	HOOK(H_REMAP, "xfs_file_remap_range", mxfs_remap, orig_remap),
	HOOK(H_OPEN, "xfs_file_open", mxfs_file_open, orig_file_open),
	HOOK(H_DIROPEN, "xfs_dir_open", mxfs_dir_open, orig_dir_open),
	HOOK(H_SETATTR, "xfs_vn_setattr", mxfs_setattr, orig_setattr),
	HOOK(H_CREATE, "xfs_vn_create", mxfs_create, orig_create),
	HOOK(H_MKNOD, "xfs_vn_mknod", mxfs_mknod, orig_mknod),
	HOOK(H_MKDIR, "xfs_vn_mkdir", mxfs_mkdir, orig_mkdir),
	HOOK(H_SYMLINK, "xfs_vn_symlink", mxfs_symlink, orig_symlink),
	HOOK(H_TMPFILE, "xfs_vn_tmpfile", mxfs_tmpfile, orig_tmpfile),
	HOOK(H_LINK, "xfs_vn_link", mxfs_link, orig_link),
	HOOK(H_UNLINK, "xfs_vn_unlink", mxfs_unlink, orig_unlink),
	HOOK(H_RENAME, "xfs_vn_rename", mxfs_rename, orig_rename),
	HOOK(H_FAULT, "xfs_filemap_fault", mxfs_fault, orig_fault),
	HOOK(H_MAPPAGES, "xfs_filemap_map_pages", mxfs_map_pages, orig_map_pages),
	HOOK(H_MKWRITE, "xfs_filemap_page_mkwrite", mxfs_page_mkwrite, orig_page_mkwrite),
	HOOK(H_DESTROY, "xfs_fs_destroy_inode", mxfs_destroy_inode, orig_destroy_inode),
};

static void notrace mxfs_ftrace_thunk(unsigned long ip, unsigned long parent_ip, struct ftrace_ops *ops,
				      struct ftrace_regs *fregs)
{
	struct mxfs_hook *hook = container_of(ops, struct mxfs_hook, ops);

	/* The wrapper calling the original: let it through. */
	if (!within_module(parent_ip, THIS_MODULE))
		ftrace_instruction_pointer_set(fregs, (unsigned long)hook->wrapper);
}

static void mxfs_hooks_remove_locked(void)
{
	int i;
	long inside;

	for (i = 0; i < H_NR; i++) {
		struct mxfs_hook *hk = &mxfs_hooks[i];

		if (!hk->registered)
			continue;
		unregister_ftrace_function(&hk->ops);	/* waits for tasks in its trampoline */
		ftrace_set_filter_ip(&hk->ops, hk->addr, 1, 0);
		hk->registered = false;
	}
	/* No task enters a wrapper any more; wait for those inside (a pass-through read, a
	 * waiter) to leave before the module text may go. */
	for (;;) {
		inside = 0;
		for_each_possible_cpu(i)
			inside += per_cpu(mxfs_in_wrapper, i);
		if (!inside)
			break;
		msleep(10);
	}
	if (mxfs_xfs_type) {
		module_put(mxfs_xfs_type->owner);
		mxfs_xfs_type = NULL;
	}
	if (mxfs_hooks_installed)
		pr_info("mxfs: XFS hooks removed\n");
	mxfs_hooks_installed = false;
}

static int mxfs_hooks_install_locked(void)
{
	int i, err = 0;

	mxfs_xfs_type = get_fs_type("xfs");	/* holds xfs.ko */
	if (!mxfs_xfs_type) {
		pr_err("mxfs: XFS is not available: inode hooks not installed\n");
		return -ENODEV;
	}
	for (i = 0; i < H_NR && !err; i++) {
		struct mxfs_hook *hk = &mxfs_hooks[i];

		hk->addr = mxfs_kallsyms_lookup(hk->name);
		if (!hk->addr) {
			pr_err("mxfs: XFS symbol %s not found: inode hooks not installed\n", hk->name);
			err = -ENOENT;
			break;
		}
		*hk->orig = (void *)hk->addr;
		hk->ops.func = mxfs_ftrace_thunk;
		hk->ops.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_RECURSION | FTRACE_OPS_FL_IPMODIFY;
		err = ftrace_set_filter_ip(&hk->ops, hk->addr, 0, 0);
		if (!err)
			err = register_ftrace_function(&hk->ops);
		if (err) {
			ftrace_set_filter_ip(&hk->ops, hk->addr, 1, 0);
			pr_err("mxfs: cannot hook %s (%d): inode hooks not installed\n", hk->name, err);
			break;
		}
		hk->registered = true;
	}
	if (err) {
		mxfs_hooks_remove_locked();
		return err;
	}
	mxfs_hooks_installed = true;
	pr_info("mxfs: XFS hooks installed (%d entry points)\n", H_NR);
	return 0;
}

static void mxfs_hooks_remove_work(struct work_struct *w)
{
	mutex_lock(&mxfs_hooks_mutex);
	if (!mxfs_hooks_users && mxfs_hooks_installed)
		mxfs_hooks_remove_locked();
	mutex_unlock(&mxfs_hooks_mutex);
}
static DECLARE_WORK(mxfs_hooks_remove, mxfs_hooks_remove_work);

int mxfs_hooks_get(void)
{
	int err = 0;

	if (!READ_ONCE(mxfs_hooks_enabled))
		return 0;
	mutex_lock(&mxfs_hooks_mutex);
	if (!mxfs_hooks_installed)
		err = mxfs_hooks_install_locked();
	if (!err)
		mxfs_hooks_users++;
	mutex_unlock(&mxfs_hooks_mutex);
	return err;
}

void mxfs_hooks_put(void)
{
	bool idle;

	mutex_lock(&mxfs_hooks_mutex);
	if (mxfs_hooks_users)
		mxfs_hooks_users--;
	idle = !mxfs_hooks_users && mxfs_hooks_installed;
	mutex_unlock(&mxfs_hooks_mutex);
	/* Not here: the caller holds the block layer's open_mutex, and removing waits. */
	if (idle)
		schedule_work(&mxfs_hooks_remove);
}

void mxfs_hooks_show(struct seq_file *m)
{
	int i;

	mutex_lock(&mxfs_hooks_mutex);
	seq_printf(m, "installed=%d users=%u passthrough=%lld\n", mxfs_hooks_installed, mxfs_hooks_users,
		   (long long)atomic64_read(&mxfs_passthrough));
	for (i = 0; i < H_NR; i++)
		seq_printf(m, "hook=%s calls=%lld errors=%lld\n", mxfs_hooks[i].name,
			   (long long)atomic64_read(&mxfs_hooks[i].calls), (long long)atomic64_read(&mxfs_hooks[i].errors));
	mutex_unlock(&mxfs_hooks_mutex);
}

void mxfs_hooks_exit(void)
{
	cancel_work_sync(&mxfs_hooks_remove);
	mutex_lock(&mxfs_hooks_mutex);
	if (mxfs_hooks_installed)
		mxfs_hooks_remove_locked();
	mutex_unlock(&mxfs_hooks_mutex);
}
