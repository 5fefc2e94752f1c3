// SPDX-License-Identifier: GPL-2.0
/*
 * The inode lock cache (GFS2's glocks, simplified): one struct mxfs_glock per (volume, inode
 * number) that this node uses, caching the inode's cluster lock (lockspace "mxfs-inodes",
 * resource "<volume>:<ino>", mxfs_netlink.h) until a blocking callback or the shrinker asks
 * for it. One state machine; what giving a lock up means for an inode type is in mxfs_glops.c.
 *
 * Holders are node-scope: any number of local tasks may hold a glock at once in a mode the
 * cached cluster lock covers (PR for PR; EX for both). Local exclusion is XFS's own business
 * (i_rwsem, ILOCK...): the cluster lock only keeps other nodes out. So a cached lock costs a
 * hash look-up and a spinlock (mxfs_glock_acquire's fast path): no daemon round trip.
 *
 * States (MXFS_GLOCK_*) and what moves them (mxfs_glock_next decides, the work acts):
 *   IDLE, mode NL --waiter wants M-->            LOCKING (LOCK_REQ M) --grant--> IDLE, mode M
 *   IDLE, mode PR --waiter wants EX-->           CONVERTING (LOCK_CONVERT EX) --grant--> IDLE, EX
 *   IDLE, demote pending, no conflicting holder--> DEMOTING: go_sync if EX, go_inval if to NL,
 *        LVB written if this node changed the inode, then LOCK_RELEASE (to NL) or
 *        LOCK_CONVERT PR (down-conversion) --> IDLE
 *   IDLE, stale pages (a grant found pages the LVB does not vouch for) --> DEMOTING (go_inval
 *        only) --> IDLE
 * A blocking callback (BAST) sets the demote target: NL when the other node wants EX (or PW),
 * PR when it wants PR and this node has EX; compatible callbacks are ignored. A pending demote
 * holds new holders back (so it cannot starve), except the tasks that were already waiting
 * when the lock arrived (they get one turn: no ping-pong without progress) and tasks that
 * already hold the glock (recursion, e.g. a write faulting in a mapping of the same file).
 * A conversion denied with EDEADLK (two nodes converting PR->EX) releases the PR lock and asks
 * for EX afresh. The shrinker demotes idle cached locks to NL (oldest first). LOCK_LOST and the
 * daemon's death drop the lock (lost()); the cache is then invalidated as for a demote.
 *
 * Every action runs in the work item (mxfs_glock_wq), never in a hook's task: a task leaving a
 * hook may still hold the parent directory's i_rwsem or mmap_lock, which the demote path must
 * never wait for. Waits are killable and bounded by lock_timeout_ms (-ETIMEDOUT); a fenced
 * volume or a missing daemon fails them at once with EIO.
 *
 * LVB (mxfs_netlink.h): a node giving up EX after changing the inode writes {magic, layout,
 * data version + 1, i_size}. A grant whose LVB version differs from what this node knows (or
 * with no valid LVB) while the inode has pages cached invalidates them before any holder runs:
 * pages read in without the lock (fadvise, readahead(2)) are never served as current.
 *
 * Lifetime: a reference per user (holder or waiter), queued work, request in flight, and one
 * for the cluster lock itself; at zero the glock leaves the hash and is freed. The bound VFS
 * inode is not referenced: the destroy hook unbinds it (and waits while the work uses it).
 * Lock order: mxfs_request.c's table lock -> mxfs_gvols_lock -> gv->lock -> gl->lock ->
 * inode->i_lock / mxfs_lru_lock; a hash bucket is locked alone (or under the table lock).
 * gl->lock is never held across a call of the request layer (docs/kernel.md "Lock ordering").
 */
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>
#include <asm/unaligned.h>
#include "mxfs_internal.h"
#include "mxfs_glock.h"

#define MXFS_GL_HASH_BITS 16

/* A volume as the lock cache sees it: its name (resource names), opens, glocks. */
struct mxfs_gvol {
	struct list_head node;
	struct mxfs_vol *v;
	char name[MXFS_VOLUME_DEV_NAME_MAX + 1];
	unsigned int opens;		/* opens of the stacked disk (mount) */
	spinlock_t lock;
	struct list_head glocks;
	unsigned int nglocks;
	wait_queue_head_t drained;
};

static DEFINE_SPINLOCK(mxfs_gvols_lock);
static LIST_HEAD(mxfs_gvols);
static struct hlist_bl_head *mxfs_gl_hash;
static struct kmem_cache *mxfs_glock_cache;
static struct workqueue_struct *mxfs_glock_wq;
static DEFINE_SPINLOCK(mxfs_lru_lock);
static LIST_HEAD(mxfs_lru);
static unsigned long mxfs_lru_count;
static atomic_t mxfs_nglocks = ATOMIC_INIT(0);

static struct {
	atomic64_t hits, misses, nowait, waits, timeouts, interrupted, eio_fenced, eio_daemon, errors;
	atomic64_t lock_reqs, conv_up, conv_down, deadlocks, releases, basts, basts_ignored;
	atomic64_t demotes, syncs, sync_errors, invals, inval_errors, pages_dropped, stale_invals;
	atomic64_t shrink_counts, shrink_scans, shrink_demotes, lost, lvb_writes, remote_changes, new_inodes;
} gst;

static const struct mxfs_lock_owner_ops mxfs_glock_owner_ops;
static void mxfs_glock_work(struct work_struct *work);
static void mxfs_glock_test_drop_volume(struct mxfs_vol *v);

/* ---- volumes ------------------------------------------------------------------------- */

static struct mxfs_gvol *mxfs_gvol_find_locked(const struct mxfs_vol *v)
{
	struct mxfs_gvol *gv;

	list_for_each_entry(gv, &mxfs_gvols, node)
		if (gv->v == v)
			return gv;
	return NULL;
}

static struct mxfs_gvol *mxfs_gvol_find(const struct mxfs_vol *v)
{
	struct mxfs_gvol *gv;

	spin_lock(&mxfs_gvols_lock);
	gv = mxfs_gvol_find_locked(v);
	spin_unlock(&mxfs_gvols_lock);
	return gv;
}

static struct mxfs_gvol *mxfs_gvol_by_name(const char *name)
{
	struct mxfs_gvol *gv, *found = NULL;

	spin_lock(&mxfs_gvols_lock);
	list_for_each_entry(gv, &mxfs_gvols, node)
		if (!strcmp(gv->name, name))
			found = gv;
	spin_unlock(&mxfs_gvols_lock);
	return found;
}

/* ---- references, hash ---------------------------------------------------------------- */

static struct hlist_bl_head *mxfs_gl_bucket(const struct mxfs_vol *v, u64 ino)
{
	return &mxfs_gl_hash[hash_64(ino ^ (u64)(unsigned long)v, MXFS_GL_HASH_BITS)];
}

static void mxfs_glock_get(struct mxfs_glock *gl)
{
	refcount_inc(&gl->ref);
}

static void mxfs_glock_put(struct mxfs_glock *gl)
{
	struct hlist_bl_head *b = mxfs_gl_bucket(gl->vol, gl->ino);
	struct mxfs_gvol *gv = gl->gv;

	if (refcount_dec_not_one(&gl->ref))
		return;
	hlist_bl_lock(b);
	if (!refcount_dec_and_test(&gl->ref)) {
		hlist_bl_unlock(b);
		return;
	}
	hlist_bl_del(&gl->hnode);
	hlist_bl_unlock(b);
	spin_lock(&gv->lock);
	list_del(&gl->vnode);
	gv->nglocks--;
	spin_unlock(&gv->lock);
	wake_up_all(&gv->drained);
	atomic_dec(&mxfs_nglocks);
	kmem_cache_free(mxfs_glock_cache, gl);
}

/* The glock of (v, ino), with a reference; created if absent (create) or NULL. */
static struct mxfs_glock *mxfs_glock_lookup(struct mxfs_vol *v, u64 ino, bool create)
{
	struct hlist_bl_head *b = mxfs_gl_bucket(v, ino);
	struct hlist_bl_node *pos;
	struct mxfs_glock *gl, *fresh = NULL;
	struct mxfs_gvol *gv;

again:
	hlist_bl_lock(b);
	hlist_bl_for_each_entry(gl, pos, b, hnode) {
		if (gl->vol == v && gl->ino == ino && refcount_inc_not_zero(&gl->ref)) {
			hlist_bl_unlock(b);
			if (fresh)
				kmem_cache_free(mxfs_glock_cache, fresh);
			return gl;
		}
	}
	if (fresh) {
		hlist_bl_add_head(&fresh->hnode, b);
		hlist_bl_unlock(b);
		spin_lock(&fresh->gv->lock);
		list_add_tail(&fresh->vnode, &fresh->gv->glocks);
		fresh->gv->nglocks++;
		spin_unlock(&fresh->gv->lock);
		atomic_inc(&mxfs_nglocks);
		return fresh;
	}
	hlist_bl_unlock(b);
	if (!create)
		return NULL;
	gv = mxfs_gvol_find(v);
	if (!gv)
		return NULL;	/* not opened through the stacked disk: not ours */
	fresh = kmem_cache_zalloc(mxfs_glock_cache, GFP_NOFS);
	if (!fresh)
		return NULL;
	fresh->gv = gv;
	fresh->vol = v;
	fresh->ino = ino;
	refcount_set(&fresh->ref, 1);
	spin_lock_init(&fresh->lock);
	init_waitqueue_head(&fresh->wq);
	INIT_WORK(&fresh->work, mxfs_glock_work);
	INIT_LIST_HEAD(&fresh->lru);
	INIT_LIST_HEAD(&fresh->holders);
	fresh->demote = -1;
	fresh->bast_mode = -1;
	fresh->type = MXFS_GLT_OTHER;
	goto again;
}

/* Queue the state machine (with a reference for the work). */
static void mxfs_glock_kick(struct mxfs_glock *gl)
{
	mxfs_glock_get(gl);
	if (!queue_work(mxfs_glock_wq, &gl->work))
		mxfs_glock_put(gl);
}

/* ---- the LRU of idle cached locks ---------------------------------------------------- */

static bool mxfs_glock_idle(const struct mxfs_glock *gl)
{
	return gl->mode != MXFS_MODE_NL && gl->state == MXFS_GLOCK_IDLE && gl->demote < 0 && !gl->stale &&
	       !gl->nholders[0] && !gl->nholders[1] && !gl->nwaiters;
}

/* Under gl->lock: put gl on the LRU or take it off, as its state says. */
static void mxfs_glock_lru_update(struct mxfs_glock *gl)
{
	bool idle = mxfs_glock_idle(gl);

	if (idle == gl->on_lru)
		return;
	spin_lock(&mxfs_lru_lock);
	if (idle) {
		list_add_tail(&gl->lru, &mxfs_lru);
		mxfs_lru_count++;
	} else {
		list_del_init(&gl->lru);
		mxfs_lru_count--;
	}
	spin_unlock(&mxfs_lru_lock);
	gl->on_lru = idle;
}

/* ---- the state machine --------------------------------------------------------------- */

enum mxfs_gl_action { MXFS_ACT_NONE, MXFS_ACT_LOCK, MXFS_ACT_CONVERT, MXFS_ACT_DEMOTE, MXFS_ACT_INVAL };

static int mxfs_hidx(u8 mode)
{
	return mode == MXFS_MODE_EX;
}

/* Under gl->lock: what to do next; the chosen action's state is entered here. */
static enum mxfs_gl_action mxfs_glock_next(struct mxfs_glock *gl, u8 *want)
{
	if (gl->state != MXFS_GLOCK_IDLE)
		return MXFS_ACT_NONE;
	if (gl->demote >= 0) {
		if (gl->nholders[1] || (gl->demote == MXFS_MODE_NL && gl->nholders[0]))
			return MXFS_ACT_NONE;	/* the last conflicting holder kicks again */
		gl->state = MXFS_GLOCK_DEMOTING;
		return MXFS_ACT_DEMOTE;
	}
	if (gl->stale && gl->mode != MXFS_MODE_NL) {
		gl->state = MXFS_GLOCK_DEMOTING;
		return MXFS_ACT_INVAL;
	}
	*want = gl->want_ex ? MXFS_MODE_EX : gl->want_pr ? MXFS_MODE_PR : MXFS_MODE_NL;
	if (*want <= gl->mode)
		return MXFS_ACT_NONE;
	if (gl->mode == MXFS_MODE_NL) {
		gl->state = MXFS_GLOCK_LOCKING;
		return MXFS_ACT_LOCK;
	}
	gl->state = MXFS_GLOCK_CONVERTING;
	gl->conv_to = MXFS_MODE_EX;
	return MXFS_ACT_CONVERT;
}

static int mxfs_glock_errno(int status)
{
	switch (status) {
	case -ETIMEDOUT:
	case -EDEADLK:
	case -ENOMEM:
		return status;
	default:
		return -EIO;	/* no daemon, lost, cancelled, shut down: the operation cannot go on */
	}
}

/* Under gl->lock: a request ended without a grant; its waiters fail with err. */
static void mxfs_glock_fail_locked(struct mxfs_glock *gl, int err)
{
	gl->state = MXFS_GLOCK_IDLE;
	gl->grant_gen++;
	gl->err_gen = gl->grant_gen;
	gl->err = mxfs_glock_errno(err);
	atomic64_inc(&gst.errors);
}

static void mxfs_glock_lvb_granted(struct mxfs_glock *gl, const struct mxfs_lock_result *r)
{
	bool pages = gl->inode && gl->inode->i_mapping->nrpages;
	u64 version;

	if (r->lvb_valid && r->lvb_len >= MXFS_INODE_LVB_LEN &&
	    get_unaligned_le32(r->lvb) == MXFS_INODE_LVB_MAGIC &&
	    get_unaligned_le32(r->lvb + 4) == MXFS_INODE_LVB_LAYOUT) {
		version = get_unaligned_le64(r->lvb + 8);
		if (version != gl->data_version) {
			atomic64_inc(&gst.remote_changes);
			if (pages)
				gl->stale = true;
		}
		gl->data_version = version;
	} else if (pages) {
		gl->stale = true;	/* nothing vouches for pages cached without the lock */
	}
}

/*
 * The end of a request's done(), called with gl->lock held after the state was updated:
 * requeue in the LRU, unlock, wake the waiters, let the work run, drop the request's reference.
 */
static void mxfs_glock_request_finished(struct mxfs_glock *gl)
	__releases(&gl->lock)
{
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	wake_up_all(&gl->wq);
	mxfs_glock_kick(gl);
	mxfs_glock_put(gl);
}

/* done() of LOCK_REQ (process context, no request lock). */
static void mxfs_glock_lock_done(void *arg, const struct mxfs_lock_result *r)
{
	struct mxfs_glock *gl = arg;

	spin_lock(&gl->lock);
	if (!r->status) {
		gl->mode = r->mode;
		gl->lock_id = r->lock_id;
		gl->state = MXFS_GLOCK_IDLE;
		gl->grant_gen++;
		if (!gl->lockref) {
			gl->lockref = true;
			mxfs_glock_get(gl);	/* the cluster lock's reference */
		}
		mxfs_glock_lvb_granted(gl, r);
	} else {
		mxfs_glock_fail_locked(gl, r->status);
	}
	mxfs_glock_request_finished(gl);
}

/* done() of LOCK_CONVERT, up (PR->EX) or down (EX->PR, a demote). */
static void mxfs_glock_convert_done(void *arg, const struct mxfs_lock_result *r)
{
	struct mxfs_glock *gl = arg;

	spin_lock(&gl->lock);
	if (!r->status) {
		gl->mode = r->mode;
		gl->state = MXFS_GLOCK_IDLE;
		gl->grant_gen++;
	} else if (r->status == -EDEADLK && gl->lock_id) {
		/* Another node converts PR->EX ahead of us: give PR up, then ask for EX anew. */
		atomic64_inc(&gst.deadlocks);
		gl->state = MXFS_GLOCK_IDLE;
		gl->demote = MXFS_MODE_NL;
	} else {
		mxfs_glock_fail_locked(gl, r->status);
	}
	mxfs_glock_request_finished(gl);
}

/* Owner callbacks, under mxfs_request.c's table lock: record, queue, nothing else. */
/*
 * What a blocking callback asks of a cached lock: [held mode][wanted mode] -> the mode to
 * demote to (-1: the wanted mode is compatible, nothing to do). PR coexists with NL, CR and
 * PR; EX with NL only, so an EX holder asked for CR or PR keeps PR (a down-conversion).
 */
static const s8 mxfs_bast_target[MXFS_MODE_MAX + 1][MXFS_MODE_MAX + 1] = {
	/* wanted:          NL  CR  CW  PR  PW  EX */
	[MXFS_MODE_PR] = { -1, -1,  0, -1,  0,  0 },
	[MXFS_MODE_EX] = { -1,  3,  0,  3,  0,  0 },
};

static void mxfs_glock_bast(void *owner, u64 lock_id, u8 mode)
{
	struct mxfs_glock *gl = owner;
	s8 target;

	atomic64_inc(&gst.basts);
	spin_lock(&gl->lock);
	gl->bast_mode = mode;
	target = gl->mode <= MXFS_MODE_MAX && mode <= MXFS_MODE_MAX ? mxfs_bast_target[gl->mode][mode] : -1;
	if (target < 0) {
		atomic64_inc(&gst.basts_ignored);
	} else if (gl->demote < 0 || target < gl->demote) {
		gl->demote = target;
	}
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	mxfs_glock_kick(gl);
}

static void mxfs_glock_lost(void *owner, u64 lock_id, int status)
{
	struct mxfs_glock *gl = owner;

	atomic64_inc(&gst.lost);
	spin_lock(&gl->lock);
	if (gl->lock_id == lock_id) {
		gl->lock_id = 0;
		gl->mode = MXFS_MODE_NL;
		/* What was cached under the lock is no longer vouched for: drop it. The cluster
		 * lock's reference goes with the demote that does that. */
		gl->demote = MXFS_MODE_NL;
		gl->stale = false;
		gl->grant_gen++;
	}
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	pr_warn_ratelimited("mxfs: volume %s inode %llu: cluster lock lost (%d); its cached pages are dropped\n",
			    gl->gv->name, gl->ino, status);
	mxfs_glock_kick(gl);
}

static const struct mxfs_lock_owner_ops mxfs_glock_owner_ops = {
	.bast = mxfs_glock_bast,
	.lost = mxfs_glock_lost,
};

/* Under gl->lock: the bound inode for the work, unless the VFS is freeing it. */
static struct inode *mxfs_glock_use_inode(struct mxfs_glock *gl)
{
	struct inode *inode = gl->inode;
	bool freeing;

	if (!inode)
		return NULL;
	spin_lock(&inode->i_lock);
	freeing = inode->i_state & (I_FREEING | I_WILL_FREE | I_NEW);
	spin_unlock(&inode->i_lock);
	if (freeing)
		return NULL;	/* evict() drops its pages itself */
	gl->inode_busy = true;	/* from here its destroy waits for mxfs_glock_unuse_inode */
	return inode;
}

static void mxfs_glock_unuse_inode(struct mxfs_glock *gl, struct inode *inode)
{
	if (!inode)
		return;
	spin_lock(&gl->lock);
	gl->inode_busy = false;
	spin_unlock(&gl->lock);
	wake_up_all(&gl->wq);
}

static void mxfs_glock_build_lvb(u8 *lvb, u64 version, u64 size)
{
	put_unaligned_le32(MXFS_INODE_LVB_MAGIC, lvb);
	put_unaligned_le32(MXFS_INODE_LVB_LAYOUT, lvb + 4);
	put_unaligned_le64(version, lvb + 8);
	put_unaligned_le64(size, lvb + 16);
}

/* DEMOTING: sync, invalidate, write the LVB, release or down-convert. In the work only. */
static void mxfs_glock_demote(struct mxfs_glock *gl)
{
	const struct mxfs_glock_ops *ops;
	u8 lvb[MXFS_INODE_LVB_LEN];
	unsigned int lvb_len = 0;
	struct inode *inode;
	unsigned long pages = 0;
	bool dirty, drop, converting = false;
	u64 lock_id, version;
	u8 mode, target;
	int err;

	spin_lock(&gl->lock);
	target = gl->demote;
	mode = gl->mode;
	lock_id = gl->lock_id;
	dirty = gl->dirty;
	version = gl->data_version;
	ops = mxfs_glops[gl->type];
	inode = mxfs_glock_use_inode(gl);
	spin_unlock(&gl->lock);

	atomic64_inc(&gst.demotes);
	if (inode) {
		if (mode == MXFS_MODE_EX && ops->go_sync) {
			atomic64_inc(&gst.syncs);
			err = ops->go_sync(inode);
			if (err) {
				atomic64_inc(&gst.sync_errors);
				pr_warn_ratelimited("mxfs: volume %s inode %llu: write-back before giving the lock up failed (%d)\n",
						    gl->gv->name, gl->ino, err);
			}
		}
		if (target == MXFS_MODE_NL && ops->go_inval) {
			pages = inode->i_mapping->nrpages;
			atomic64_inc(&gst.invals);
			err = ops->go_inval(inode);
			if (err) {
				atomic64_inc(&gst.inval_errors);
				pr_warn_ratelimited("mxfs: volume %s inode %llu: page cache not fully invalidated (%d)\n",
						    gl->gv->name, gl->ino, err);
			}
			atomic64_add(pages - min(pages, inode->i_mapping->nrpages), &gst.pages_dropped);
		}
	}
	if (mode == MXFS_MODE_EX && dirty) {
		version++;
		mxfs_glock_build_lvb(lvb, version, inode ? i_size_read(inode) : 0);
		lvb_len = sizeof(lvb);
		atomic64_inc(&gst.lvb_writes);
	}
	mxfs_glock_unuse_inode(gl, inode);

	if (lock_id && target == MXFS_MODE_PR && mode == MXFS_MODE_EX) {
		mxfs_glock_get(gl);	/* the request's */
		if (!mxfs_convert_async(lock_id, MXFS_MODE_PR, 0, READ_ONCE(mxfs_lock_timeout_ms), lvb_len ? lvb : NULL,
					lvb_len, mxfs_glock_convert_done, gl)) {
			converting = true;
			atomic64_inc(&gst.conv_down);
		} else {
			mxfs_glock_put(gl);
			target = MXFS_MODE_NL;	/* cannot down-convert: give it all up */
		}
	}
	if (!converting && lock_id && target == MXFS_MODE_NL) {
		mxfs_unlock_lvb(lock_id, lvb_len ? lvb : NULL, lvb_len);
		atomic64_inc(&gst.releases);
	}

	spin_lock(&gl->lock);
	if (lvb_len) {
		gl->data_version = version;
		gl->dirty = false;
	}
	gl->demote = -1;
	gl->bast_mode = -1;
	gl->stale = false;
	gl->grant_gen++;
	drop = false;
	if (converting) {
		gl->state = MXFS_GLOCK_CONVERTING;
		gl->conv_to = MXFS_MODE_PR;
	} else {
		gl->state = MXFS_GLOCK_IDLE;
		if (target == MXFS_MODE_NL) {
			gl->mode = MXFS_MODE_NL;
			gl->lock_id = 0;
		}
		if (gl->mode == MXFS_MODE_NL && gl->lockref) {
			gl->lockref = false;	/* released or lost: its reference goes */
			drop = true;
		}
	}
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	wake_up_all(&gl->wq);
	if (drop)
		mxfs_glock_put(gl);
}

/* A grant found pages nobody vouches for: drop them before the first holder. */
static void mxfs_glock_refresh(struct mxfs_glock *gl)
{
	struct inode *inode;

	spin_lock(&gl->lock);
	inode = mxfs_glock_use_inode(gl);
	spin_unlock(&gl->lock);
	if (inode && mxfs_glops[gl->type]->go_inval) {
		atomic64_inc(&gst.stale_invals);
		mxfs_glops[gl->type]->go_inval(inode);
	}
	mxfs_glock_unuse_inode(gl, inode);
	spin_lock(&gl->lock);
	gl->stale = false;
	gl->state = MXFS_GLOCK_IDLE;
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	wake_up_all(&gl->wq);
}

static void mxfs_glock_send(struct mxfs_glock *gl, enum mxfs_gl_action act, u8 want)
{
	char resource[MXFS_NAME_MAX + 1];
	u64 lock_id;
	int err;

	mxfs_glock_get(gl);	/* the request's */
	if (act == MXFS_ACT_LOCK) {
		snprintf(resource, sizeof(resource), MXFS_INODE_RESOURCE_FMT, gl->gv->name, gl->ino);
		atomic64_inc(&gst.lock_reqs);
		err = mxfs_lock_async(MXFS_INODE_LOCKSPACE, resource, want, 0, READ_ONCE(mxfs_lock_timeout_ms),
				      &mxfs_glock_owner_ops, gl, mxfs_glock_lock_done, gl);
	} else {
		spin_lock(&gl->lock);
		lock_id = gl->lock_id;
		spin_unlock(&gl->lock);
		atomic64_inc(&gst.conv_up);
		err = mxfs_convert_async(lock_id, want, 0, READ_ONCE(mxfs_lock_timeout_ms), NULL, 0,
					 mxfs_glock_convert_done, gl);
	}
	if (!err)
		return;
	spin_lock(&gl->lock);
	mxfs_glock_fail_locked(gl, err);
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	wake_up_all(&gl->wq);
	mxfs_glock_put(gl);
}

static void mxfs_glock_work(struct work_struct *work)
{
	struct mxfs_glock *gl = container_of(work, struct mxfs_glock, work);
	enum mxfs_gl_action act;
	u8 want = 0;

	for (;;) {
		spin_lock(&gl->lock);
		act = mxfs_glock_next(gl, &want);
		mxfs_glock_lru_update(gl);
		spin_unlock(&gl->lock);
		if (act == MXFS_ACT_NONE)
			break;
		if (act == MXFS_ACT_DEMOTE) {
			mxfs_glock_demote(gl);
		} else if (act == MXFS_ACT_INVAL) {
			mxfs_glock_refresh(gl);
		} else {
			mxfs_glock_send(gl, act, want);
			break;	/* its done() kicks again */
		}
	}
	mxfs_glock_put(gl);	/* the work's */
}

/* ---- holders ------------------------------------------------------------------------- */

static bool mxfs_glock_recursive(const struct mxfs_glock *gl)
{
	const struct mxfs_gholder *h;

	list_for_each_entry(h, &gl->holders, node)
		if (h->task == current)
			return true;
	return false;
}

/* Under gl->lock: may a holder in mode be added now? */
static bool mxfs_glock_grantable(const struct mxfs_glock *gl, u8 mode, u64 start_gen, bool recursive)
{
	/* While converting, only what both the old and the new mode cover. */
	u8 covered = gl->state == MXFS_GLOCK_CONVERTING ? min(gl->mode, gl->conv_to) : gl->mode;

	if (covered < mode || gl->stale || gl->state == MXFS_GLOCK_DEMOTING)
		return false;
	if (gl->demote < 0 || recursive)
		return true;
	if (gl->demote == MXFS_MODE_PR && mode == MXFS_MODE_PR)
		return true;	/* a down-conversion waits for EX holders only */
	return start_gen < gl->grant_gen;	/* waited through a grant: one turn */
}

static void mxfs_glock_add_holder(struct mxfs_glock *gl, struct mxfs_gholder *h)
{
	gl->nholders[mxfs_hidx(h->mode)]++;
	list_add(&h->node, &gl->holders);
	if (h->dirties && h->mode == MXFS_MODE_EX)
		gl->dirty = true;
	mxfs_glock_lru_update(gl);
}

static int mxfs_glock_wait(struct mxfs_glock *gl, struct mxfs_gholder *h, bool recursive)
{
	unsigned long left = msecs_to_jiffies(READ_ONCE(mxfs_lock_timeout_ms));
	struct mxfs_daemon_info d;
	DEFINE_WAIT(wait);
	u64 start_gen;
	int err;

	mxfs_daemon_get(&d);
	if (!d.attached) {
		atomic64_inc(&gst.eio_daemon);
		return -EIO;
	}
	spin_lock(&gl->lock);
	start_gen = gl->grant_gen;
	gl->nwaiters++;
	if (h->mode == MXFS_MODE_EX)
		gl->want_ex++;
	else
		gl->want_pr++;
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	mxfs_glock_kick(gl);
	atomic64_inc(&gst.waits);

	for (;;) {
		prepare_to_wait(&gl->wq, &wait, TASK_KILLABLE);
		spin_lock(&gl->lock);
		if (mxfs_vol_fenced(gl->vol)) {
			err = -EIO;
			atomic64_inc(&gst.eio_fenced);
		} else if (mxfs_glock_grantable(gl, h->mode, start_gen, recursive)) {
			mxfs_glock_add_holder(gl, h);
			err = 0;
		} else if (gl->err_gen > start_gen) {
			err = gl->err;
		} else if (fatal_signal_pending(current)) {
			err = -EINTR;
			atomic64_inc(&gst.interrupted);
		} else if (!left) {
			err = -ETIMEDOUT;
			atomic64_inc(&gst.timeouts);
		} else {
			err = -EAGAIN;
		}
		if (err != -EAGAIN) {
			gl->nwaiters--;
			if (h->mode == MXFS_MODE_EX)
				gl->want_ex--;
			else
				gl->want_pr--;
			mxfs_glock_lru_update(gl);
			spin_unlock(&gl->lock);
			break;
		}
		spin_unlock(&gl->lock);
		left = schedule_timeout(left);
	}
	finish_wait(&gl->wq, &wait);
	return err;
}

/*
 * Add h as a holder of (v, ino)'s glock in mode: at once if the cached lock covers it, else
 * after waiting (unless MXFS_GH_NOWAIT). inode (may be NULL: the test hook) is bound to the
 * glock if none is; task is the holder's task (NULL: no task, never recursive).
 */
static int mxfs_glock_take(struct mxfs_vol *v, u64 ino, struct inode *inode, u8 mode, unsigned int flags,
			   struct task_struct *task, struct mxfs_gholder *h)
{
	struct mxfs_glock *gl;
	bool recursive;
	int err;

	if (mxfs_vol_fenced(v)) {
		atomic64_inc(&gst.eio_fenced);
		return -EIO;
	}
	gl = mxfs_glock_lookup(v, ino, true);
	if (!gl)
		return -ENOMEM;
	h->gl = gl;
	h->mode = mode;
	h->dirties = flags & MXFS_GH_DIRTIES;
	h->task = task;
	spin_lock(&gl->lock);
	if (inode && !gl->inode) {
		gl->inode = inode;
		gl->type = mxfs_glock_type_of(inode->i_mode);
	}
	recursive = task && mxfs_glock_recursive(gl);
	if (mxfs_glock_grantable(gl, mode, gl->grant_gen, recursive)) {
		mxfs_glock_add_holder(gl, h);
		gl->hits++;
		spin_unlock(&gl->lock);
		atomic64_inc(&gst.hits);
		return 0;
	}
	gl->misses++;
	spin_unlock(&gl->lock);
	atomic64_inc(&gst.misses);
	if (flags & MXFS_GH_NOWAIT) {
		err = -EAGAIN;
		atomic64_inc(&gst.nowait);
	} else {
		err = mxfs_glock_wait(gl, h, recursive);
	}
	if (err) {
		mxfs_glock_kick(gl);	/* what it asked for may no longer be wanted */
		mxfs_glock_put(gl);
		h->gl = NULL;
	}
	return err;
}

int mxfs_glock_acquire(struct mxfs_vol *v, struct inode *inode, u8 mode, unsigned int flags, struct mxfs_gholder *h)
{
	return mxfs_glock_take(v, inode->i_ino, inode, mode, flags, current, h);
}

void mxfs_glock_release(struct mxfs_gholder *h)
{
	struct mxfs_glock *gl = h->gl;
	bool kick;

	if (!gl)
		return;
	spin_lock(&gl->lock);
	gl->nholders[mxfs_hidx(h->mode)]--;
	list_del(&h->node);
	kick = gl->demote >= 0 || gl->nwaiters;
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	if (kick)
		mxfs_glock_kick(gl);
	mxfs_glock_put(gl);
	h->gl = NULL;
}

struct mxfs_gl_req {
	struct inode *inode;
	u8 mode;
};

static int mxfs_gl_req_cmp(const void *a, const void *b)
{
	const struct mxfs_gl_req *x = a, *y = b;

	return x->inode->i_ino < y->inode->i_ino ? -1 : x->inode->i_ino > y->inode->i_ino;
}

int mxfs_glock_acquire_many(struct mxfs_vol *v, struct inode **inodes, const u8 *modes, unsigned int n,
			    unsigned int flags, struct mxfs_gholder *h)
{
	struct mxfs_gl_req r[4];
	unsigned int i, j, k = 0;
	int err = 0;

	for (i = 0; i < n && i < ARRAY_SIZE(r); i++) {
		if (!inodes[i])
			continue;
		for (j = 0; j < k; j++) {
			if (r[j].inode == inodes[i]) {
				r[j].mode = max(r[j].mode, modes[i]);
				break;
			}
		}
		if (j == k) {
			r[k].inode = inodes[i];
			r[k].mode = modes[i];
			k++;
		}
	}
	/* One order for every multi-inode operation on every node: no lock cycle among them. */
	sort(r, k, sizeof(r[0]), mxfs_gl_req_cmp, NULL);
	for (i = 0; i < n; i++)
		h[i].gl = NULL;
	for (i = 0; i < k; i++) {
		err = mxfs_glock_acquire(v, r[i].inode, r[i].mode, flags, &h[i]);
		if (err) {
			while (i--)
				mxfs_glock_release(&h[i]);
			return err;
		}
	}
	return 0;
}

void mxfs_glock_release_many(struct mxfs_gholder *h, unsigned int n)
{
	unsigned int i;

	for (i = n; i-- > 0;)
		mxfs_glock_release(&h[i]);
}

void mxfs_glock_new_inode(struct mxfs_vol *v, struct inode *inode)
{
	struct mxfs_gholder h;

	/* Cached EX from birth: the open, writes and setattr that usually follow are hits. */
	if (!mxfs_glock_acquire(v, inode, MXFS_MODE_EX, MXFS_GH_DIRTIES, &h)) {
		atomic64_inc(&gst.new_inodes);
		mxfs_glock_release(&h);
	}
}

void mxfs_glock_inode_gone(struct mxfs_vol *v, struct inode *inode)
{
	struct mxfs_glock *gl = mxfs_glock_lookup(v, inode->i_ino, false);
	bool busy = false;

	if (!gl)
		return;
	spin_lock(&gl->lock);
	if (gl->inode == inode) {
		gl->inode = NULL;
		busy = gl->inode_busy;
	}
	spin_unlock(&gl->lock);
	if (busy)
		wait_event(gl->wq, !READ_ONCE(gl->inode_busy));
	mxfs_glock_put(gl);
}

/* ---- volumes: open, close, fence, unregister ----------------------------------------- */

int mxfs_glocks_volume_opened(struct mxfs_vol *v)
{
	struct mxfs_gvol *gv, *fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);

	if (!fresh)
		return -ENOMEM;
	spin_lock(&mxfs_gvols_lock);
	gv = mxfs_gvol_find_locked(v);
	if (!gv) {
		gv = fresh;
		fresh = NULL;
		gv->v = v;
		strscpy(gv->name, mxfs_vol_name(v), sizeof(gv->name));
		spin_lock_init(&gv->lock);
		INIT_LIST_HEAD(&gv->glocks);
		init_waitqueue_head(&gv->drained);
		list_add_tail(&gv->node, &mxfs_gvols);
	}
	gv->opens++;
	spin_unlock(&mxfs_gvols_lock);
	kfree(fresh);
	return 0;
}

/* Under gv->lock (order gv->lock -> gl->lock): queue gl's work unless it is being freed. */
static void mxfs_glock_kick_listed(struct mxfs_glock *gl)
{
	if (!refcount_inc_not_zero(&gl->ref))
		return;
	if (!queue_work(mxfs_glock_wq, &gl->work))
		refcount_dec(&gl->ref);	/* the queued work holds another */
}

/* The last opener closed the stacked disk: every cached lock of the volume is released. */
void mxfs_glocks_volume_closed(struct mxfs_vol *v)
{
	struct mxfs_gvol *gv;
	struct mxfs_glock *gl;
	bool last;

	spin_lock(&mxfs_gvols_lock);
	gv = mxfs_gvol_find_locked(v);
	last = gv && --gv->opens == 0;
	spin_unlock(&mxfs_gvols_lock);
	if (!last)
		return;
	spin_lock(&gv->lock);
	list_for_each_entry(gl, &gv->glocks, vnode) {
		spin_lock(&gl->lock);
		if (gl->mode != MXFS_MODE_NL || gl->lock_id)
			gl->demote = MXFS_MODE_NL;
		mxfs_glock_lru_update(gl);
		spin_unlock(&gl->lock);
		mxfs_glock_kick_listed(gl);
	}
	spin_unlock(&gv->lock);
}

void mxfs_glocks_fenced(struct mxfs_vol *v)
{
	struct mxfs_gvol *gv = mxfs_gvol_find(v);
	struct mxfs_glock *gl;

	if (!gv)
		return;
	spin_lock(&gv->lock);
	list_for_each_entry(gl, &gv->glocks, vnode)
		wake_up_all(&gl->wq);
	spin_unlock(&gv->lock);
}

/* The volume is being unregistered (not open): wait for its glocks to go, then forget it. */
void mxfs_glocks_volume_gone(struct mxfs_vol *v)
{
	struct mxfs_gvol *gv;

	mxfs_glock_test_drop_volume(v);
	spin_lock(&mxfs_gvols_lock);
	gv = mxfs_gvol_find_locked(v);
	if (gv)
		list_del(&gv->node);
	spin_unlock(&mxfs_gvols_lock);
	if (!gv)
		return;
	if (!wait_event_timeout(gv->drained, READ_ONCE(gv->nglocks) == 0,
				msecs_to_jiffies(READ_ONCE(mxfs_lock_timeout_ms) + READ_ONCE(mxfs_reply_grace_ms) + 1000)))
		pr_err("mxfs: volume %s: %u inode locks still busy at unregistration\n", gv->name, gv->nglocks);
	wait_event(gv->drained, READ_ONCE(gv->nglocks) == 0);
	kfree(gv);
}

/* ---- the shrinker -------------------------------------------------------------------- */

/*
 * Not memcg-aware: reclaim calls it for the root cgroup only, i.e. under global pressure (a
 * cgroup at its own limit cannot make a node give its cluster locks back). Reclaim scans a
 * shrinker in proportion to count >> priority (DEFAULT_SEEKS, batches of 128): with few
 * cached locks only deep reclaim (low priority) reaches the scan; glock_shrink_counts against
 * glock_shrink_scans tells "never asked" (no reclaim) from "asked, too few to scan".
 */
static unsigned long mxfs_glock_shrink_count(struct shrinker *s, struct shrink_control *sc)
{
	atomic64_inc(&gst.shrink_counts);
	return READ_ONCE(mxfs_lru_count);
}

static unsigned long mxfs_glock_shrink_scan(struct shrinker *s, struct shrink_control *sc)
{
	struct mxfs_glock *batch[128], *gl;
	unsigned long want = min_t(unsigned long, sc->nr_to_scan, ARRAY_SIZE(batch));
	unsigned int n = 0, i;
	unsigned long done = 0;

	if (!(sc->gfp_mask & __GFP_FS))
		return SHRINK_STOP;	/* as GFS2: the demote writes back through the filesystem */
	atomic64_inc(&gst.shrink_scans);
	spin_lock(&mxfs_lru_lock);
	list_for_each_entry(gl, &mxfs_lru, lru) {	/* oldest first */
		if (n == want)
			break;
		if (refcount_inc_not_zero(&gl->ref))
			batch[n++] = gl;
	}
	spin_unlock(&mxfs_lru_lock);
	for (i = 0; i < n; i++) {
		gl = batch[i];
		spin_lock(&gl->lock);
		if (mxfs_glock_idle(gl) && mxfs_glops[gl->type]->go_demote_ok(gl)) {
			gl->demote = MXFS_MODE_NL;	/* off the LRU: no longer idle */
			done++;
			atomic64_inc(&gst.shrink_demotes);
		}
		mxfs_glock_lru_update(gl);
		spin_unlock(&gl->lock);
		mxfs_glock_kick(gl);
		mxfs_glock_put(gl);
	}
	return done;
}

static struct shrinker mxfs_glock_shrinker = {
	.count_objects = mxfs_glock_shrink_count,
	.scan_objects = mxfs_glock_shrink_scan,
	.seeks = DEFAULT_SEEKS,
};

/* ---- test hook, listing, debugfs ----------------------------------------------------- */

struct mxfs_test_hold {
	struct list_head node;
	struct mxfs_gholder h;
	u64 ino;
	char volume[MXFS_VOLUME_DEV_NAME_MAX + 1];
};
static DEFINE_MUTEX(mxfs_test_holds_lock);
static LIST_HEAD(mxfs_test_holds);

/* Give (v, ino)'s cached lock back as the shrinker would (test hook). */
static void mxfs_glock_test_demote(struct mxfs_vol *v, u64 ino)
{
	struct mxfs_glock *gl = mxfs_glock_lookup(v, ino, false);

	if (!gl)
		return;
	spin_lock(&gl->lock);
	if (mxfs_glock_idle(gl))
		gl->demote = MXFS_MODE_NL;
	mxfs_glock_lru_update(gl);
	spin_unlock(&gl->lock);
	mxfs_glock_kick(gl);
	mxfs_glock_put(gl);
}

int mxfs_glock_test_hold(const char *volume, u64 ino, u8 mode, bool hold)
{
	struct mxfs_test_hold *t, *found = NULL;
	struct mxfs_gvol *gv = mxfs_gvol_by_name(volume);
	int err;

	mutex_lock(&mxfs_test_holds_lock);
	list_for_each_entry(t, &mxfs_test_holds, node)
		if (t->ino == ino && !strcmp(t->volume, volume))
			found = t;
	if (!hold) {
		if (found) {
			list_del(&found->node);
			mxfs_glock_release(&found->h);
			kfree(found);
		}
		mutex_unlock(&mxfs_test_holds_lock);
		return found ? 0 : -ENOENT;
	}
	err = found ? -EEXIST : !gv ? -ENOENT : 0;
	t = err ? NULL : kzalloc(sizeof(*t), GFP_KERNEL);
	if (!err && !t)
		err = -ENOMEM;
	if (!err) {
		t->ino = ino;
		strscpy(t->volume, volume, sizeof(t->volume));
		err = mxfs_glock_take(gv->v, ino, NULL, mode, 0, NULL, &t->h);
	}
	if (err)
		kfree(t);
	else
		list_add(&t->node, &mxfs_test_holds);
	mutex_unlock(&mxfs_test_holds_lock);
	return err;
}

/*
 * The benchmark of the test hook ("gbench"): count inode numbers from first on, each taken PR
 * and released twice: the first pass finds nothing cached (a LOCK_REQ round trip through the
 * daemon each), the second finds every lock cached (a hit). ns[0], ns[1]: the passes' times.
 * Unless keep, the locks are then given back as the shrinker would; with keep they stay
 * cached (how the benchmark fills the cache). Returns the first error.
 */
int mxfs_glock_test_bench(const char *volume, u64 first, unsigned int count, bool keep, u64 *ns)
{
	struct mxfs_gvol *gv = mxfs_gvol_by_name(volume);
	struct mxfs_gholder h;
	unsigned int pass, i;
	int err = 0;
	u64 t0;

	if (!gv)
		return -ENOENT;
	for (pass = 0; pass < 2 && !err; pass++) {
		t0 = ktime_get_ns();
		for (i = 0; i < count && !err; i++) {
			err = mxfs_glock_take(gv->v, first + i, NULL, MXFS_MODE_PR, 0, NULL, &h);
			if (!err)
				mxfs_glock_release(&h);
			if (fatal_signal_pending(current))
				err = -EINTR;
		}
		ns[pass] = ktime_get_ns() - t0;
	}
	if (!keep)
		for (i = 0; i < count; i++)
			mxfs_glock_test_demote(gv->v, first + i);
	return err;
}

static void mxfs_glock_test_drop_volume(struct mxfs_vol *v)
{
	struct mxfs_test_hold *t, *tmp;

	mutex_lock(&mxfs_test_holds_lock);
	list_for_each_entry_safe(t, tmp, &mxfs_test_holds, node) {
		if (t->h.gl->vol != v)
			continue;
		list_del(&t->node);
		mxfs_glock_release(&t->h);
		kfree(t);
	}
	mutex_unlock(&mxfs_test_holds_lock);
}

static void mxfs_glock_info(struct mxfs_glock *gl, struct mxfs_glock_info *out)
{
	strscpy(out->volume, gl->gv->name, sizeof(out->volume));
	out->ino = gl->ino;
	spin_lock(&gl->lock);
	out->mode = gl->mode;
	out->state = gl->state;
	out->type = gl->type;
	out->demote_mode = gl->demote;
	out->lock_id = gl->lock_id;
	out->holders = gl->nholders[0] + gl->nholders[1];
	out->waiters = gl->nwaiters;
	out->hits = gl->hits;
	out->misses = gl->misses;
	out->data_version = gl->data_version;
	out->pages = gl->inode ? gl->inode->i_mapping->nrpages : 0;
	spin_unlock(&gl->lock);
}

/* Under gv->lock: insert gl into sel[0..*n) (ascending inode numbers, at most max kept). */
static void mxfs_glock_select(struct mxfs_glock **sel, unsigned int *n, unsigned int max, struct mxfs_glock *gl)
{
	unsigned int lo = 0, hi = *n;

	if (*n == max && gl->ino >= sel[max - 1]->ino)
		return;
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (sel[mid]->ino < gl->ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (*n < max)
		(*n)++;
	memmove(&sel[lo + 1], &sel[lo], (*n - 1 - lo) * sizeof(*sel));
	sel[lo] = gl;
}

/*
 * The cached locks of volume (or of every volume, one after the other) with ino >= from, the
 * smallest inode numbers first, at most max: a caller pages through a volume by asking again
 * from the last inode number + 1. The volume's list is in creation order, so each call scans
 * it whole (a glock cannot be freed meanwhile: freeing takes gv->lock).
 */
unsigned int mxfs_glocks_list(const char *volume, u64 from, struct mxfs_glock_info *out, unsigned int max)
{
	struct mxfs_glock **sel = kmalloc_array(max, sizeof(*sel), GFP_KERNEL);
	struct mxfs_gvol *gv;
	struct mxfs_glock *gl;
	unsigned int n = 0, k, i;

	if (!sel)
		return 0;
	spin_lock(&mxfs_gvols_lock);
	list_for_each_entry(gv, &mxfs_gvols, node) {
		if (volume && strcmp(gv->name, volume))
			continue;
		if (n == max)
			break;
		k = 0;
		spin_lock(&gv->lock);
		list_for_each_entry(gl, &gv->glocks, vnode)
			if (gl->ino >= from)
				mxfs_glock_select(sel, &k, max - n, gl);
		for (i = 0; i < k; i++)
			mxfs_glock_info(sel[i], &out[n++]);
		spin_unlock(&gv->lock);
	}
	spin_unlock(&mxfs_gvols_lock);
	kfree(sel);
	return n;
}

static const char *const mxfs_glock_state_names[] = { "idle", "locking", "converting", "demoting" };

void mxfs_glocks_show(struct seq_file *m)
{
	struct mxfs_glock_info *info = kmalloc(sizeof(*info), GFP_KERNEL);
	struct mxfs_gvol *gv;
	struct mxfs_glock *gl;

	if (!info)
		return;
	spin_lock(&mxfs_gvols_lock);
	list_for_each_entry(gv, &mxfs_gvols, node) {
		spin_lock(&gv->lock);
		list_for_each_entry(gl, &gv->glocks, vnode) {
			mxfs_glock_info(gl, info);
			seq_printf(m, "volume=%s ino=%llu type=%s mode=%s state=%s holders=%u waiters=%u demote=%s lock_id=%llu hits=%llu misses=%llu data_version=%llu pages=%llu\n",
				   info->volume, info->ino, mxfs_glops[info->type]->name, mxfs_mode_name(info->mode),
				   mxfs_glock_state_names[info->state], info->holders, info->waiters,
				   info->demote_mode < 0 ? "-" : mxfs_mode_name(info->demote_mode), info->lock_id,
				   info->hits, info->misses, info->data_version, info->pages);
		}
		spin_unlock(&gv->lock);
	}
	spin_unlock(&mxfs_gvols_lock);
	kfree(info);
}

void mxfs_glock_stats_show(struct seq_file *m)
{
#define G(name) seq_printf(m, "glock_" #name "=%lld\n", (long long)atomic64_read(&gst.name))
	seq_printf(m, "glocks=%d\nglock_lru=%lu\nglock_bytes=%zu\n", atomic_read(&mxfs_nglocks),
		   READ_ONCE(mxfs_lru_count), sizeof(struct mxfs_glock));
	G(hits); G(misses); G(nowait); G(waits); G(timeouts); G(interrupted); G(eio_fenced); G(eio_daemon); G(errors);
	G(lock_reqs); G(conv_up); G(conv_down); G(deadlocks); G(releases); G(basts); G(basts_ignored);
	G(demotes); G(syncs); G(sync_errors); G(invals); G(inval_errors); G(pages_dropped); G(stale_invals);
	G(shrink_counts); G(shrink_scans); G(shrink_demotes); G(lost); G(lvb_writes); G(remote_changes); G(new_inodes);
#undef G
	seq_printf(m, "lock_timeout_ms=%u\n", READ_ONCE(mxfs_lock_timeout_ms));
}

int mxfs_glock_init(void)
{
	unsigned int i;
	int err;

	mxfs_gl_hash = vmalloc(sizeof(*mxfs_gl_hash) << MXFS_GL_HASH_BITS);
	if (!mxfs_gl_hash)
		return -ENOMEM;
	for (i = 0; i < (1u << MXFS_GL_HASH_BITS); i++)
		INIT_HLIST_BL_HEAD(&mxfs_gl_hash[i]);
	mxfs_glock_cache = kmem_cache_create("mxfs_glock", sizeof(struct mxfs_glock), 0, SLAB_RECLAIM_ACCOUNT, NULL);
	/* Demotes write back and invalidate: they must progress under memory pressure. */
	mxfs_glock_wq = alloc_workqueue("mxfs_glock", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	err = !mxfs_glock_cache || !mxfs_glock_wq ? -ENOMEM : 0;
	if (!err)
		err = register_shrinker(&mxfs_glock_shrinker, "mxfs-glock");
	if (err) {
		if (mxfs_glock_wq)
			destroy_workqueue(mxfs_glock_wq);
		kmem_cache_destroy(mxfs_glock_cache);
		vfree(mxfs_gl_hash);
	}
	return err;
}

/* After the volumes are gone (mxfs_glocks_volume_gone drained every glock). */
void mxfs_glock_exit(void)
{
	struct mxfs_test_hold *t, *tmp;

	list_for_each_entry_safe(t, tmp, &mxfs_test_holds, node) {
		list_del(&t->node);
		mxfs_glock_release(&t->h);
		kfree(t);
	}
	unregister_shrinker(&mxfs_glock_shrinker);
	destroy_workqueue(mxfs_glock_wq);
	kmem_cache_destroy(mxfs_glock_cache);
	vfree(mxfs_gl_hash);
}
