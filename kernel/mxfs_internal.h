/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared by the module's files:
 *   mxfs_main.c     module init/exit, parameters
 *   mxfs_netlink.c  the "mxfs" genetlink family: policies, handlers, sends, daemon tracking
 *   mxfs_request.c  requests waiting for the daemon, and the locks the kernel holds
 *   mxfs_debugfs.c  counters, lock table, volumes, and the test hook (debugfs)
 *   mxfs_volume.c   kernel volumes: the gate, the fence, fence records (no block-layer calls)
 *   mxfs_lease.c    the kernel lease: deadline, timer, expiry and loss
 *   mxfs_blk.c      every block-layer call: the claim, the stacked disk, bio forwarding
 *   mxfs_xfs.c      what is reached through kallsyms: get_super, xfs_fs_goingdown
 *   mxfs_glock.c    the inode lock cache: one state machine per (volume, inode)
 *   mxfs_glops.c    the inode locks' per-type operations (sync, invalidate, demote_ok, lvb)
 *   mxfs_hooks.c    ftrace redirects of XFS entry points to wrappers that take inode locks
 */
#ifndef MXFS_INTERNAL_H
#define MXFS_INTERNAL_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <linux/list.h>
#include "mxfs_netlink.h"

#define MXFS_MODE_MAX 5

/* Module parameters (mxfs_main.c). */
extern unsigned int mxfs_request_timeout_ms;	/* default wait for a reply */
extern unsigned int mxfs_reply_grace_ms;	/* extra time the daemon gets past TIMEOUT_MS */
extern unsigned int mxfs_timer_slack_ms;	/* lease end -> fence started, allowed delay */
extern unsigned int mxfs_drain_timeout_ms;	/* fence started -> in-flight writes ended */
extern unsigned int mxfs_open_wait_ms;		/* 0: refuse write opens of a closed gate; else ask and wait */
enum mxfs_fallback { MXFS_FALLBACK_RESTART, MXFS_FALLBACK_PANIC, MXFS_FALLBACK_LOG };
extern int mxfs_fence_fallback;			/* what to do when a fence misses its bound */
extern unsigned int mxfs_lock_timeout_ms;	/* longest wait of a file operation for its inode lock */
extern bool mxfs_hooks_enabled;			/* install the XFS hooks when a volume is opened */
const char *mxfs_fallback_name(int fallback);
/* The fence bound the daemon is told: timer slack + drain bound. */
static inline unsigned int mxfs_fence_bound_ms(void)
{
	return READ_ONCE(mxfs_timer_slack_ms) + READ_ONCE(mxfs_drain_timeout_ms);
}

struct mxfs_counters {
	atomic64_t requests;		/* LOCK_REQ / VOLUME_* sent to the daemon */
	atomic64_t grants;
	atomic64_t denies;
	atomic64_t timeouts;		/* the daemon did not answer within the bound */
	atomic64_t interrupted;		/* the waiting task was killed */
	atomic64_t daemon_losses;	/* the registered daemon's socket was released */
	atomic64_t failed_on_detach;	/* pending requests failed because the daemon left */
	atomic64_t rejected;		/* messages refused by pre_doit (missing attr, sender) */
	atomic64_t stale_replies;	/* replies to requests that no longer wait */
	atomic64_t basts;
	atomic64_t locks_lost;
	atomic64_t releases;
	atomic64_t cache_invals;
	atomic64_t node_status;
	atomic64_t recoveries;
	atomic64_t daemon_ready;
	atomic64_t cancels;		/* LOCK_CANCEL sent after giving up on a request */
	atomic64_t conversions;		/* LOCK_CONVERT sent */
	atomic64_t send_waits;		/* a send found the daemon's receive buffer full and waited */
	atomic64_t send_failures;	/* a send to the daemon failed (the message is lost) */
	atomic64_t lease_renewals;	/* LEASE_RENEW taken from the daemon */
	atomic64_t reply_failures;	/* a reply to a daemon request was refused by its socket */
};
extern struct mxfs_counters mxfs_stats;

/* The registered daemon (mxfs_netlink.c). */
struct mxfs_daemon_info {
	bool attached;
	u32 portid;		/* where the kernel's messages go */
	u32 req_portid;		/* where the daemon's requests come from (== portid with one socket) */
	u32 node_id;
	u64 generation;		/* bumped on every attach and detach */
};
void mxfs_daemon_get(struct mxfs_daemon_info *out);

/* Sends (mxfs_netlink.c). Return 0 or -errno. */
int mxfs_nl_send_lock_req(u32 portid, u64 req_id, const char *lockspace, const char *resource,
			  u8 mode, u32 flags, u32 timeout_ms);
int mxfs_nl_send_lock_release(u32 portid, u64 lock_id, const char *lockspace, const char *resource,
			      const u8 *lvb, unsigned int lvb_len);
int mxfs_nl_send_lock_convert(u32 portid, u64 req_id, u64 lock_id, u8 mode, u32 flags, u32 timeout_ms,
			      const u8 *lvb, unsigned int lvb_len);
int mxfs_nl_send_lock_cancel(u32 portid, u64 req_id);
int mxfs_nl_send_volume(u32 portid, u8 cmd, u64 req_id, const char *volume, u32 timeout_ms);
struct mxfs_fence_rec;
/* VOLUME_EVENT to the registered daemon, if any (best effort). */
void mxfs_nl_volume_event(const char *volume, u8 event, u64 generation, const struct mxfs_fence_rec *rec);
void mxfs_nl_event(u8 event, u64 lock_id, s32 status);
int mxfs_netlink_init(void);
void mxfs_netlink_exit(void);

/* Requests and held locks (mxfs_request.c). */
struct mxfs_grant {
	u64 lock_id;
	u8 mode;
	u64 token;
};
int mxfs_lock(const char *lockspace, const char *resource, u8 mode, u32 flags,
	      unsigned int timeout_ms, struct mxfs_grant *out);
int mxfs_unlock(u64 lock_id);
/* Release with a value block written back (only kept by the DLM when held in PW/EX). */
int mxfs_unlock_lvb(u64 lock_id, const u8 *lvb, unsigned int lvb_len);
int mxfs_volume(u8 cmd, const char *volume, unsigned int timeout_ms, bool interruptible);

/* The outcome of a lock request or conversion (a reply, or the kernel's own verdict). */
struct mxfs_lock_result {
	int status;		/* 0 granted, or -errno */
	u64 lock_id;
	u8 mode;
	u64 token;
	bool lvb_valid;
	u8 lvb_len;
	u8 lvb[MXFS_LVB_MAX];
};
/* Who owns a held lock: told of blocking callbacks and of the lock's loss. Both run under
 * the request table's spinlock: record, queue work, never sleep nor call back in. */
struct mxfs_lock_owner_ops {
	void (*bast)(void *owner, u64 lock_id, u8 mode);
	void (*lost)(void *owner, u64 lock_id, int status);
};
typedef void (*mxfs_lock_done_fn)(void *arg, const struct mxfs_lock_result *r);
/*
 * Asynchronous lock request and conversion: 0 when sent (done() is then called exactly once,
 * in process context, never from within this call), or -errno at once (done() not called).
 * A conversion the daemon never answers drops the lock (owner's lost(), then done()).
 */
int mxfs_lock_async(const char *lockspace, const char *resource, u8 mode, u32 flags, unsigned int timeout_ms,
		    const struct mxfs_lock_owner_ops *ops, void *owner, mxfs_lock_done_fn done, void *arg);
int mxfs_convert_async(u64 lock_id, u8 mode, u32 flags, unsigned int timeout_ms, const u8 *lvb,
		       unsigned int lvb_len, mxfs_lock_done_fn done, void *arg);
/* Called by the netlink handlers; return 0 or -ENOENT when nobody waits for req_id. */
int mxfs_request_complete(u64 req_id, bool lock_reply, const struct mxfs_lock_result *r);
int mxfs_lock_bast(u64 lock_id, u8 mode);
int mxfs_lock_lost(u64 lock_id, int status);
/* The daemon went away: fail every pending request and drop every held lock. */
void mxfs_requests_daemon_gone(void);
unsigned int mxfs_requests_pending(void);
unsigned int mxfs_locks_held(void);
struct seq_file;
void mxfs_locks_show(struct seq_file *m);
void mxfs_requests_init(void);
void mxfs_requests_exit(void);

/* Kernel volumes (mxfs_volume.c). */
#define MXFS_FENCE_HISTORY 8
struct mxfs_fence_rec {
	u8 cause;		/* MXFS_FENCE_* */
	u8 drained;		/* every write in flight ended within the bound */
	u8 shutdown;		/* MXFS_SHUTDOWN_* */
	u32 inflight;		/* writes in flight when the fence began */
	u32 duration_us;	/* trigger -> drained (or bound missed) and XFS shut down */
	u64 generation;
	u64 time_ms;		/* wall clock of the trigger */
};
/* A copy of one volume's state, for status replies and debugfs. */
struct mxfs_vol_info {
	char name[MXFS_VOLUME_DEV_NAME_MAX + 1];
	u32 dev;		/* major << 20 | minor */
	u8 gate;
	u64 generation;
	u32 openers, writers, inflight, inflight_writes;
	u64 refused;
	u32 fences;		/* since registration */
	unsigned int nrec;	/* records below, oldest first */
	struct mxfs_fence_rec rec[MXFS_FENCE_HISTORY];
};
struct mxfs_vol;
const char *mxfs_vol_name(const struct mxfs_vol *v);
/* Fencing or fenced: nothing may be done on the volume's behalf any more. */
bool mxfs_vol_fenced(const struct mxfs_vol *v);
int mxfs_volume_register(const char *name, dev_t dev, const char **why);
int mxfs_volume_unregister(const char *name, const char **why);
enum mxfs_gate_op { MXFS_GATE_OP_OPEN, MXFS_GATE_OP_CLOSE, MXFS_GATE_OP_CLEAR };
/* VOLUME_GATE open/close and VOLUME_CLEAR: 0 or -errno with *why (a string literal). */
int mxfs_volume_gate(const char *name, enum mxfs_gate_op op, u64 generation, const char **why);
int mxfs_volume_fence(const char *name);
/* Fence every open gate; trigger_ns is when writes stopped being allowed (CLOCK_MONOTONIC). */
void mxfs_volumes_fence_all(u8 cause, u64 trigger_ns);
/* Calls fn with a copy of each volume (or only `name`); stops at the first error. -ENOENT
 * when `name` is not registered. */
int mxfs_volumes_for_each(const char *name, int (*fn)(const struct mxfs_vol_info *, void *), void *arg);
int mxfs_volume_get_info(const char *name, struct mxfs_vol_info *out);
/* "name=device[,name=device...]", device a path or MAJOR:MINOR (module parameter). */
int mxfs_volumes_from_param(const char *spec);
int mxfs_volumes_init(void);
void mxfs_volumes_exit(void);
/* The block layer's calls into the gate (mxfs_blk.c -> mxfs_volume.c). */
int mxfs_vol_open(struct mxfs_vol *v, bool write);
void mxfs_vol_release(struct mxfs_vol *v, bool write);
bool mxfs_vol_bio_start(struct mxfs_vol *v, bool write);
void mxfs_vol_bio_end(struct mxfs_vol *v, bool write);
/* Sleeps until *counter is 0 (bios forwarded by the module complete). */
void mxfs_wait_drained(atomic_t *counter);
const char *mxfs_gate_name(u8 gate);
const char *mxfs_fence_cause_name(u8 cause);
const char *mxfs_shutdown_name(u8 shutdown);

/* The block layer (mxfs_blk.c): the only file that calls it. */
struct mxfs_blk;
int mxfs_blk_lookup(const char *path, dev_t *dev);
/* Claims dev exclusively and adds the stacked disk "mxfs!<name>" forwarding to it. */
struct mxfs_blk *mxfs_blk_create(struct mxfs_vol *v, dev_t dev, const char *name);
/* Removes the stacked disk (no opener left), waits for its bios, releases the claim. */
void mxfs_blk_destroy(struct mxfs_blk *b, atomic_t *inflight);
/* Forced shutdown of the filesystem mounted on the stacked disk: MXFS_SHUTDOWN_*. */
u8 mxfs_blk_shutdown_fs(struct mxfs_blk *b);
struct super_block;
/* The volume whose stacked disk sb is mounted on, or NULL (any other filesystem). */
struct mxfs_vol *mxfs_blk_sb_volume(const struct super_block *sb);
int mxfs_blk_init(void);
void mxfs_blk_exit(void);

/* kallsyms (mxfs_xfs.c). */
struct block_device;
void mxfs_xfs_init(void);
u8 mxfs_xfs_shutdown(struct block_device *bdev);
bool mxfs_xfs_available(void);
/* Any kernel symbol's address (kallsyms_lookup_name found through a kprobe), or 0. */
unsigned long mxfs_kallsyms_lookup(const char *name);

/* The kernel lease (mxfs_lease.c). */
struct mxfs_lease_info {
	u8 state;		/* MXFS_LEASE_* */
	u64 deadline_ns;	/* CLOCK_MONOTONIC */
	bool renewed;		/* renewed at least once */
	u64 age_ns;		/* since the last renewal */
	u64 remaining_ns;	/* when valid */
};
/* True while writes may pass: a valid lease whose deadline is still ahead. Any context. */
bool mxfs_lease_valid_now(void);
void mxfs_lease_renew(u64 deadline_ns);
void mxfs_lease_lost(u8 cause, const char *reason);
void mxfs_lease_get(struct mxfs_lease_info *out);
int mxfs_lease_init(void);
void mxfs_lease_exit(void);
extern struct workqueue_struct *mxfs_fence_wq;

/* The inode lock cache (mxfs_glock.c), see the header of that file. */
struct inode;
struct mxfs_glock;
struct mxfs_gholder {
	struct mxfs_glock *gl;
	struct list_head node;	/* the glock's holders */
	const void *task;	/* the holding task (recursion); NULL for the test hook */
	u8 mode;		/* MXFS_MODE PR or EX */
	bool dirties;		/* the operation changes the inode (bumps the LVB's data version) */
};
#define MXFS_GH_DIRTIES	0x1	/* the operation changes the inode */
#define MXFS_GH_NOWAIT	0x2	/* only if cached: -EAGAIN instead of waiting */
/* Takes the inode lock of inode in mode for the caller (killable; bounded by
 * lock_timeout_ms): 0, or -EIO (fenced, no daemon), -ETIMEDOUT, -EINTR (fatal signal),
 * -EDEADLK, -ENOMEM, -EAGAIN (MXFS_GH_NOWAIT). */
int mxfs_glock_acquire(struct mxfs_vol *v, struct inode *inode, u8 mode, unsigned int flags, struct mxfs_gholder *h);
/* Several inodes in one operation (rename, link...): taken in inode number order. n <= 4;
 * NULL and repeated inodes are skipped. On error nothing is held. */
int mxfs_glock_acquire_many(struct mxfs_vol *v, struct inode **inodes, const u8 *modes, unsigned int n,
			    unsigned int flags, struct mxfs_gholder *h);
void mxfs_glock_release(struct mxfs_gholder *h);
void mxfs_glock_release_many(struct mxfs_gholder *h, unsigned int n);
/* A new inode (create/mkdir/symlink/tmpfile): its lock is taken EX and kept cached. */
void mxfs_glock_new_inode(struct mxfs_vol *v, struct inode *inode);
/* The VFS is freeing inode: forget it (its pages are gone already). */
void mxfs_glock_inode_gone(struct mxfs_vol *v, struct inode *inode);
/* The volume was fenced: waiters fail with EIO. */
void mxfs_glocks_fenced(struct mxfs_vol *v);
/* The volume's stacked disk was opened (counted) / closed: at the last close every cached
 * lock of the volume is released. */
int mxfs_glocks_volume_opened(struct mxfs_vol *v);
void mxfs_glocks_volume_closed(struct mxfs_vol *v);
/* The volume is unregistered: waits until its inode locks are gone. */
void mxfs_glocks_volume_gone(struct mxfs_vol *v);
/* Test hook: take/drop an inode lock as a holder with no operation (debugfs "ghold"). */
int mxfs_glock_test_hold(const char *volume, u64 ino, u8 mode, bool hold);
/* Test hook: count locks taken uncached then cached, timed (debugfs "gbench"). */
int mxfs_glock_test_bench(const char *volume, u64 first, unsigned int count, bool keep, u64 *ns);
void mxfs_glocks_show(struct seq_file *m);
void mxfs_glock_stats_show(struct seq_file *m);
struct mxfs_glock_info {
	char volume[MXFS_VOLUME_DEV_NAME_MAX + 1];
	u64 ino;
	u8 mode, state, type;
	int demote_mode;	/* -1: none */
	u64 lock_id;
	u32 holders, waiters;
	u64 hits, misses, data_version, pages;
};
/* Up to max cached inode locks of volume (or of each volume in turn) with ino >= from, in
 * inode number order; returns how many were filled. */
unsigned int mxfs_glocks_list(const char *volume, u64 from, struct mxfs_glock_info *out, unsigned int max);
int mxfs_glock_init(void);
void mxfs_glock_exit(void);

/* The XFS hooks (mxfs_hooks.c). */
/* A stacked disk was opened / closed (mount / umount): the hooks are installed while any is open. */
int mxfs_hooks_get(void);
void mxfs_hooks_put(void);
void mxfs_hooks_show(struct seq_file *m);
void mxfs_hooks_exit(void);

/* debugfs (mxfs_debugfs.c). */
void mxfs_node_status_record(u32 node_id, u8 state);
void mxfs_debugfs_init(void);
void mxfs_debugfs_exit(void);

const char *mxfs_mode_name(u8 mode);

#endif /* MXFS_INTERNAL_H */
