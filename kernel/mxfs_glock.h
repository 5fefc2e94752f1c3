/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The inode lock cache's private types, shared by mxfs_glock.c (the state machine) and
 * mxfs_glops.c (the per-type operations).
 */
#ifndef MXFS_GLOCK_H
#define MXFS_GLOCK_H

#include <linux/list.h>
#include <linux/list_bl.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include "mxfs_internal.h"

#define MXFS_MODE_NL 0
#define MXFS_MODE_PR 3
#define MXFS_MODE_EX 5

struct mxfs_gvol;

struct mxfs_glock {
	struct hlist_bl_node hnode;	/* mxfs_gl_hash, key (volume, ino) */
	struct list_head vnode;		/* its volume's list */
	struct list_head lru;		/* mxfs_lru while idle with a cluster lock */
	struct mxfs_gvol *gv;
	struct mxfs_vol *vol;		/* the hash key (the hooks know the volume) */
	u64 ino;
	refcount_t ref;			/* users, queued work, requests, the cluster lock */
	spinlock_t lock;
	wait_queue_head_t wq;		/* waiters; the destroy hook waiting for inode_busy */
	struct work_struct work;	/* runs the state machine's actions */
	/* Everything below is under lock. */
	u8 mode;			/* cluster mode held: NL, PR or EX */
	u8 state;			/* MXFS_GLOCK_* */
	u8 type;			/* MXFS_GLT_*, from the bound inode */
	s8 demote;			/* target (NL or PR) of a pending demote, -1: none */
	s8 bast_mode;			/* what the last blocking callback asked for, -1: none */
	bool stale;			/* pages may predate the lock: invalidate before holders */
	bool dirty;			/* an EX holder changed the inode since the LVB was written */
	bool on_lru;
	bool inode_busy;		/* the work uses inode: its destroy waits */
	bool lockref;			/* the cluster lock's reference is taken */
	u8 conv_to;			/* CONVERTING: the mode asked for */
	u64 lock_id;			/* the kernel's held lock (mxfs_request.c), 0: none */
	u32 nholders[2];		/* node-scope holders in PR, EX */
	struct list_head holders;	/* struct mxfs_gholder.node (recursion check) */
	u32 nwaiters, want_pr, want_ex;
	u64 grant_gen;			/* bumped whenever a request or a demote ends */
	u64 err_gen;			/* grant_gen at which err was set */
	int err;			/* the last failed request's errno, for its waiters */
	struct inode *inode;		/* bound VFS inode (no reference; cleared at destroy) */
	u64 data_version;		/* from the LVB, and bumped when this node changed the inode */
	u64 hits, misses;
};

/* The per-type operations (GFS2's glops), mxfs_glops.c. Each may be NULL. */
struct mxfs_glock_ops {
	const char *name;
	int (*go_sync)(struct inode *inode);	/* write back what EX let this node dirty */
	int (*go_inval)(struct inode *inode);	/* drop what another node's EX makes stale */
	bool (*go_demote_ok)(const struct mxfs_glock *gl);	/* the shrinker may give it up */
};
extern const struct mxfs_glock_ops *const mxfs_glops[MXFS_GLT_MAX + 1];
u8 mxfs_glock_type_of(umode_t mode);

#endif /* MXFS_GLOCK_H */
