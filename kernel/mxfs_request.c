// SPDX-License-Identifier: GPL-2.0
/*
 * Requests the kernel sends to the daemon, and the cluster locks the kernel holds.
 *
 * Call stages of a lock request (mxfs_lock, mxfs_lock_async, mxfs_convert_async):
 *   1. allocate the request (id from a 64-bit counter, never reused) and, for a new lock,
 *      the lock it will become; insert it into mxfs_pending; re-check the daemon generation
 *      so a detach that raced with the insert cannot leave it waiting;
 *   2. send LOCK_REQ (REQ_ID, LOCKSPACE, RESOURCE, MODE, FLAGS, TIMEOUT_MS), or LOCK_CONVERT
 *      (REQ_ID, LOCK_ID, MODE, ...) for a held lock, to the daemon;
 *   3. wait: a synchronous caller sleeps (killable; interruptible for a volume request from
 *      an open()) for TIMEOUT_MS + reply_grace_ms; an asynchronous request (the inode lock
 *      cache, mxfs_glock.c) arms a delayed work for the same bound and returns at once;
 *   4. the reply (LOCK_GRANT or LOCK_DENY with the same REQ_ID) completes it: a grant of a new
 *      lock moves it into mxfs_held under id = REQ_ID, a grant of a conversion changes the
 *      held lock's mode; a reply for an id that no longer waits gets -ENOENT, so the daemon
 *      knows to release what it granted; an asynchronous request's done() runs next;
 *   5. the daemon going away (mxfs_requests_daemon_gone) completes every request with
 *      -ENOTCONN and drops every held lock (their owners' lost() is called); no reply within
 *      the bound gives -ETIMEDOUT (a killed task -EINTR): LOCK_CANCEL tells the daemon to
 *      withdraw a new-lock or volume request; a conversion nobody answered leaves the lock's
 *      mode unknown, so the lock is dropped (owner's lost()) and LOCK_RELEASE sent.
 * One spinlock covers both tables: every section under it is short and never sleeps. The
 * owner callbacks bast() and lost() run under it (they only record and queue work); done()
 * runs without it, in process context (the netlink handler or a workqueue), never in the
 * submitter's own call.
 */
#include <linux/hashtable.h>
#include <linux/completion.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/seq_file.h>
#include <linux/workqueue.h>
#include "mxfs_internal.h"

struct mxfs_lock {
	struct hlist_node node;
	u64 id;
	char lockspace[MXFS_NAME_MAX + 1];
	char resource[MXFS_NAME_MAX + 1];
	u8 mode;
	u64 token;
	int bast_mode;		/* -1: no blocking callback received */
	u64 converting;		/* REQ_ID of the conversion in flight, 0: none */
	const struct mxfs_lock_owner_ops *ops;	/* the inode lock cache, or NULL (test hook) */
	void *owner;
};

struct mxfs_request {
	struct hlist_node node;
	struct list_head gone;	/* mxfs_requests_daemon_gone's local list */
	u64 id;
	u8 cmd;			/* MXFS_CMD_LOCK_REQ, _LOCK_CONVERT or _VOLUME_(UN)MOUNT */
	u8 mode;		/* requested mode */
	bool finished;
	struct mxfs_lock_result res;
	struct completion done;
	struct mxfs_lock *lock;	/* LOCK_REQ: becomes a held lock on grant */
	u64 lock_id;		/* LOCK_CONVERT: the held lock */
	/* Asynchronous requests only. */
	mxfs_lock_done_fn done_fn;
	void *done_arg;
	struct delayed_work timeout;
	refcount_t ref;		/* the finisher's and the armed timeout's */
};

static DEFINE_SPINLOCK(mxfs_req_lock);
static DEFINE_HASHTABLE(mxfs_pending, 8);
static DEFINE_HASHTABLE(mxfs_held, 14);	/* one lock per cached inode: sized for 10^5 */
static unsigned int mxfs_n_pending, mxfs_n_held;
static atomic64_t mxfs_next_id = ATOMIC64_INIT(0);

static struct mxfs_request *mxfs_pending_find(u64 id)
{
	struct mxfs_request *req;

	hash_for_each_possible(mxfs_pending, req, node, id)
		if (req->id == id)
			return req;
	return NULL;
}

static struct mxfs_lock *mxfs_held_find(u64 id)
{
	struct mxfs_lock *lk;

	hash_for_each_possible(mxfs_held, lk, node, id)
		if (lk->id == id)
			return lk;
	return NULL;
}

static void mxfs_request_timeout_fn(struct work_struct *work);

static struct mxfs_request *mxfs_request_new(u8 cmd, u8 mode)
{
	struct mxfs_request *req = kzalloc(sizeof(*req), GFP_KERNEL);

	if (!req)
		return NULL;
	init_completion(&req->done);
	INIT_DELAYED_WORK(&req->timeout, mxfs_request_timeout_fn);
	refcount_set(&req->ref, 1);
	req->id = atomic64_inc_return(&mxfs_next_id);
	req->cmd = cmd;
	req->mode = mode;
	return req;
}

static void mxfs_request_put(struct mxfs_request *req)
{
	if (refcount_dec_and_test(&req->ref)) {
		kfree(req->lock);
		kfree(req);
	}
}

/* Stage 1: make the request visible to replies and to a daemon detach. */
static int mxfs_request_insert(struct mxfs_request *req, u32 *portid)
{
	struct mxfs_daemon_info before, after;

	mxfs_daemon_get(&before);
	if (!before.attached) {
		req->finished = true;	/* never inserted: nothing to take out */
		return -ENOTCONN;
	}
	spin_lock(&mxfs_req_lock);
	hash_add(mxfs_pending, &req->node, req->id);
	mxfs_n_pending++;
	spin_unlock(&mxfs_req_lock);

	mxfs_daemon_get(&after);
	if (!after.attached || after.generation != before.generation) {
		spin_lock(&mxfs_req_lock);
		if (!req->finished) {
			hash_del(&req->node);
			mxfs_n_pending--;
			req->finished = true;
		}
		spin_unlock(&mxfs_req_lock);
		return -ENOTCONN;
	}
	*portid = before.portid;
	return 0;
}

/* The request was not sent after all: nobody else may finish it. */
static void mxfs_request_abort(struct mxfs_request *req)
{
	spin_lock(&mxfs_req_lock);
	if (!req->finished) {
		hash_del(&req->node);
		mxfs_n_pending--;
		req->finished = true;
	}
	if (req->cmd == MXFS_CMD_LOCK_CONVERT) {
		struct mxfs_lock *lk = mxfs_held_find(req->lock_id);

		if (lk && lk->converting == req->id)
			lk->converting = 0;
	}
	spin_unlock(&mxfs_req_lock);
}

/*
 * The kernel gave up on req (its own timer, or a killed task). Called with req already
 * finished by the caller (under the spinlock). A conversion nobody answered: the lock's mode
 * in the DLM is unknown, so the lock is dropped here (its owner's lost()) and released.
 */
static void mxfs_request_gave_up(struct mxfs_request *req, int status)
{
	struct mxfs_daemon_info d;
	struct mxfs_lock *lk = NULL;

	if (req->cmd == MXFS_CMD_LOCK_CONVERT) {
		spin_lock(&mxfs_req_lock);
		lk = mxfs_held_find(req->lock_id);
		if (lk && lk->converting == req->id) {
			hash_del(&lk->node);
			mxfs_n_held--;
			if (lk->ops)
				lk->ops->lost(lk->owner, lk->id, status);
		} else {
			lk = NULL;
		}
		spin_unlock(&mxfs_req_lock);
	}
	mxfs_daemon_get(&d);
	if (lk) {
		atomic64_inc(&mxfs_stats.locks_lost);
		if (d.attached)
			mxfs_nl_send_lock_release(d.portid, lk->id, lk->lockspace, lk->resource, NULL, 0);
		kfree(lk);
	} else if (d.attached && !mxfs_nl_send_lock_cancel(d.portid, req->id)) {
		/* Withdraw the DLM request (or a volume about to be granted); a grant racing with
		 * this is refused (-ENOENT) and given back anyway. */
		atomic64_inc(&mxfs_stats.cancels);
	}
	/* Only count what the kernel decided itself; a daemon's -ETIMEDOUT denial is a denial. */
	if (status == -ETIMEDOUT) {
		atomic64_inc(&mxfs_stats.timeouts);
		mxfs_nl_event(MXFS_EVENT_REQUEST_TIMEOUT, req->id, -ETIMEDOUT);
	} else {
		atomic64_inc(&mxfs_stats.interrupted);
	}
}

/* Stage 3 and the end of a synchronous request: returns its status. */
static int mxfs_request_wait(struct mxfs_request *req, unsigned int timeout_ms, bool interruptible)
{
	unsigned long wait = msecs_to_jiffies(timeout_ms) + msecs_to_jiffies(READ_ONCE(mxfs_reply_grace_ms));
	long left = interruptible ? wait_for_completion_interruptible_timeout(&req->done, wait) :
				    wait_for_completion_killable_timeout(&req->done, wait);
	bool gave_up = false;
	int status;

	spin_lock(&mxfs_req_lock);
	if (!req->finished) {
		hash_del(&req->node);
		mxfs_n_pending--;
		req->finished = true;
		req->res.status = left < 0 ? -EINTR : -ETIMEDOUT;
		gave_up = true;
	}
	status = req->res.status;
	spin_unlock(&mxfs_req_lock);
	if (gave_up)
		mxfs_request_gave_up(req, status);
	return status;
}

/* Stage 3 of an asynchronous request: the kernel's own bound. */
static void mxfs_request_timeout_fn(struct work_struct *work)
{
	struct mxfs_request *req = container_of(to_delayed_work(work), struct mxfs_request, timeout);
	bool mine = false;

	spin_lock(&mxfs_req_lock);
	if (!req->finished) {
		hash_del(&req->node);
		mxfs_n_pending--;
		req->finished = true;
		req->res.status = -ETIMEDOUT;
		mine = true;
	}
	spin_unlock(&mxfs_req_lock);
	if (mine) {
		mxfs_request_gave_up(req, -ETIMEDOUT);
		req->done_fn(req->done_arg, &req->res);
		mxfs_request_put(req);		/* the finisher's reference */
	}
	mxfs_request_put(req);			/* the timeout's */
}

/* Stage 4/5 of an asynchronous request, after someone else finished it. */
static void mxfs_request_finish_async(struct mxfs_request *req)
{
	if (cancel_delayed_work(&req->timeout))
		mxfs_request_put(req);		/* the timeout will not run */
	req->done_fn(req->done_arg, &req->res);
	mxfs_request_put(req);
}

static bool mxfs_name_ok(const char *s, bool may_be_empty)
{
	size_t n = strnlen(s, MXFS_NAME_MAX + 1);

	return n <= MXFS_NAME_MAX && (may_be_empty || n > 0);
}

static struct mxfs_request *mxfs_lock_request_new(const char *lockspace, const char *resource, u8 mode,
						  const struct mxfs_lock_owner_ops *ops, void *owner)
{
	struct mxfs_request *req = mxfs_request_new(MXFS_CMD_LOCK_REQ, mode);
	struct mxfs_lock *lk = kzalloc(sizeof(*lk), GFP_KERNEL);

	if (!req || !lk) {
		kfree(req);
		kfree(lk);
		return NULL;
	}
	req->lock = lk;
	lk->id = req->id;
	lk->mode = mode;
	lk->bast_mode = -1;
	lk->ops = ops;
	lk->owner = owner;
	strscpy(lk->lockspace, lockspace, sizeof(lk->lockspace));
	strscpy(lk->resource, resource, sizeof(lk->resource));
	return req;
}

/* The arguments of a lock request the daemon would accept (mxfs_lock and mxfs_lock_async). */
static bool mxfs_lock_args_ok(const char *lockspace, const char *resource, u8 mode, u32 flags)
{
	return mode <= MXFS_MODE_MAX && !(flags & ~MXFS_LKF_ALL) && mxfs_name_ok(lockspace, true) &&
	       mxfs_name_ok(resource, false);
}

int mxfs_lock(const char *lockspace, const char *resource, u8 mode, u32 flags,
	      unsigned int timeout_ms, struct mxfs_grant *out)
{
	struct mxfs_request *req;
	u32 portid;
	int err;

	if (!mxfs_lock_args_ok(lockspace, resource, mode, flags))
		return -EINVAL;
	req = mxfs_lock_request_new(lockspace, resource, mode, NULL, NULL);
	if (!req)
		return -ENOMEM;
	err = mxfs_request_insert(req, &portid);
	if (err)
		goto out;
	atomic64_inc(&mxfs_stats.requests);
	err = mxfs_nl_send_lock_req(portid, req->id, lockspace, resource, mode, flags, timeout_ms);
	if (err) {
		mxfs_request_abort(req);
		goto out;
	}
	err = mxfs_request_wait(req, timeout_ms, false);
	if (!err) {
		out->lock_id = req->id;
		out->mode = mode;
		out->token = req->res.token;
	}
out:
	mxfs_request_put(req);	/* on success the lock moved to mxfs_held and req->lock was cleared */
	return err;
}

static void mxfs_request_arm(struct mxfs_request *req, mxfs_lock_done_fn done, void *arg, unsigned int timeout_ms)
{
	req->done_fn = done;
	req->done_arg = arg;
	refcount_inc(&req->ref);
	queue_delayed_work(system_wq, &req->timeout,
			   msecs_to_jiffies(timeout_ms) + msecs_to_jiffies(READ_ONCE(mxfs_reply_grace_ms)));
}

/* A request that was armed but could not be sent: undo the timeout. */
static void mxfs_request_disarm(struct mxfs_request *req)
{
	if (cancel_delayed_work_sync(&req->timeout))
		mxfs_request_put(req);
}

int mxfs_lock_async(const char *lockspace, const char *resource, u8 mode, u32 flags, unsigned int timeout_ms,
		    const struct mxfs_lock_owner_ops *ops, void *owner, mxfs_lock_done_fn done, void *arg)
{
	struct mxfs_request *req;
	u32 portid;
	int err;

	if (!mxfs_lock_args_ok(lockspace, resource, mode, flags))
		return -EINVAL;
	req = mxfs_lock_request_new(lockspace, resource, mode, ops, owner);
	if (!req)
		return -ENOMEM;
	mxfs_request_arm(req, done, arg, timeout_ms);
	err = mxfs_request_insert(req, &portid);
	if (!err) {
		atomic64_inc(&mxfs_stats.requests);
		err = mxfs_nl_send_lock_req(portid, req->id, lockspace, resource, mode, flags, timeout_ms);
		if (!err)
			return 0;
		mxfs_request_abort(req);
	}
	mxfs_request_disarm(req);
	mxfs_request_put(req);
	return err;
}

int mxfs_convert_async(u64 lock_id, u8 mode, u32 flags, unsigned int timeout_ms, const u8 *lvb,
		       unsigned int lvb_len, mxfs_lock_done_fn done, void *arg)
{
	struct mxfs_request *req;
	struct mxfs_lock *lk;
	u32 portid;
	int err;

	if (mode > MXFS_MODE_MAX || (flags & ~MXFS_LKF_ALL) || lvb_len > MXFS_LVB_MAX)
		return -EINVAL;
	req = mxfs_request_new(MXFS_CMD_LOCK_CONVERT, mode);
	if (!req)
		return -ENOMEM;
	req->lock_id = lock_id;
	spin_lock(&mxfs_req_lock);
	lk = mxfs_held_find(lock_id);
	err = !lk ? -ENOENT : lk->converting ? -EBUSY : 0;
	if (!err)
		lk->converting = req->id;
	spin_unlock(&mxfs_req_lock);
	if (err) {
		mxfs_request_put(req);
		return err;
	}
	mxfs_request_arm(req, done, arg, timeout_ms);
	err = mxfs_request_insert(req, &portid);
	if (!err) {
		atomic64_inc(&mxfs_stats.requests);
		atomic64_inc(&mxfs_stats.conversions);
		err = mxfs_nl_send_lock_convert(portid, req->id, lock_id, mode, flags, timeout_ms, lvb, lvb_len);
		if (!err)
			return 0;
	}
	mxfs_request_abort(req);
	mxfs_request_disarm(req);
	mxfs_request_put(req);
	return err;
}

int mxfs_volume(u8 cmd, const char *volume, unsigned int timeout_ms, bool interruptible)
{
	struct mxfs_request *req;
	u32 portid;
	int err;

	if ((cmd != MXFS_CMD_VOLUME_MOUNT && cmd != MXFS_CMD_VOLUME_UNMOUNT) || !mxfs_name_ok(volume, false))
		return -EINVAL;
	req = mxfs_request_new(cmd, 0);
	if (!req)
		return -ENOMEM;
	err = mxfs_request_insert(req, &portid);
	if (err)
		goto out;
	atomic64_inc(&mxfs_stats.requests);
	err = mxfs_nl_send_volume(portid, cmd, req->id, volume, timeout_ms);
	if (err) {
		mxfs_request_abort(req);
		goto out;
	}
	err = mxfs_request_wait(req, timeout_ms, interruptible);
out:
	mxfs_request_put(req);
	return err;
}

int mxfs_request_complete(u64 req_id, bool lock_reply, const struct mxfs_lock_result *r)
{
	struct mxfs_request *req;
	struct mxfs_lock *lk;
	bool async = false;
	int err = 0;

	spin_lock(&mxfs_req_lock);
	req = mxfs_pending_find(req_id);
	if (!req) {
		err = -ENOENT;
	} else if (lock_reply != (req->cmd == MXFS_CMD_LOCK_REQ || req->cmd == MXFS_CMD_LOCK_CONVERT)) {
		err = -EINVAL;		/* a lock reply to a volume request or vice versa */
	} else if (!r->status && lock_reply && r->mode != req->mode) {
		err = -EINVAL;		/* granted a mode that was not asked for */
	} else {
		hash_del(&req->node);
		mxfs_n_pending--;
		req->finished = true;
		req->res = *r;
		if (req->cmd == MXFS_CMD_LOCK_REQ) {
			req->res.lock_id = req->id;
			if (!r->status) {
				req->lock->token = r->token;
				hash_add(mxfs_held, &req->lock->node, req->lock->id);
				mxfs_n_held++;
				req->lock = NULL;
			}
		} else if (req->cmd == MXFS_CMD_LOCK_CONVERT) {
			req->res.lock_id = req->lock_id;
			lk = mxfs_held_find(req->lock_id);
			if (lk && lk->converting == req->id) {
				lk->converting = 0;
				if (!r->status) {
					lk->mode = r->mode;
					lk->token = r->token;
					lk->bast_mode = -1;
				}
			} else if (!r->status) {
				req->res.status = -ENOLCK;	/* dropped meanwhile (lost) */
			}
		}
		async = req->done_fn != NULL;
		if (!async)
			complete(&req->done);
	}
	spin_unlock(&mxfs_req_lock);
	if (err)
		return err;
	atomic64_inc(r->status ? &mxfs_stats.denies : &mxfs_stats.grants);
	if (async)
		mxfs_request_finish_async(req);
	return 0;
}

int mxfs_unlock_lvb(u64 lock_id, const u8 *lvb, unsigned int lvb_len)
{
	struct mxfs_daemon_info d;
	struct mxfs_lock *lk;
	int err = 0;

	spin_lock(&mxfs_req_lock);
	lk = mxfs_held_find(lock_id);
	if (lk) {
		hash_del(&lk->node);
		mxfs_n_held--;
	}
	spin_unlock(&mxfs_req_lock);
	if (!lk)
		return -ENOENT;
	atomic64_inc(&mxfs_stats.releases);
	mxfs_daemon_get(&d);
	if (d.attached)
		err = mxfs_nl_send_lock_release(d.portid, lk->id, lk->lockspace, lk->resource, lvb, lvb_len);
	kfree(lk);
	return err;
}

int mxfs_unlock(u64 lock_id)
{
	return mxfs_unlock_lvb(lock_id, NULL, 0);
}

int mxfs_lock_bast(u64 lock_id, u8 mode)
{
	struct mxfs_lock *lk;

	spin_lock(&mxfs_req_lock);
	lk = mxfs_held_find(lock_id);
	if (lk) {
		lk->bast_mode = mode;
		if (lk->ops)
			lk->ops->bast(lk->owner, lk->id, mode);
	}
	spin_unlock(&mxfs_req_lock);
	if (!lk)
		return -ENOENT;
	atomic64_inc(&mxfs_stats.basts);
	return 0;
}

int mxfs_lock_lost(u64 lock_id, int status)
{
	struct mxfs_lock *lk;

	spin_lock(&mxfs_req_lock);
	lk = mxfs_held_find(lock_id);
	if (lk) {
		hash_del(&lk->node);
		mxfs_n_held--;
		if (lk->ops)
			lk->ops->lost(lk->owner, lk->id, status);
	}
	spin_unlock(&mxfs_req_lock);
	if (!lk)
		return -ENOENT;
	atomic64_inc(&mxfs_stats.locks_lost);
	mxfs_nl_event(MXFS_EVENT_LOCK_LOST, lock_id, status);
	kfree(lk);
	return 0;
}

void mxfs_requests_daemon_gone(void)
{
	struct mxfs_request *req, *rtmp;
	struct mxfs_lock *lk;
	struct hlist_node *tmp;
	unsigned int failed = 0, lost = 0;
	LIST_HEAD(async);
	int bkt;

	spin_lock(&mxfs_req_lock);
	hash_for_each_safe(mxfs_pending, bkt, tmp, req, node) {
		hash_del(&req->node);
		req->finished = true;
		req->res.status = -ENOTCONN;
		if (req->done_fn)
			list_add_tail(&req->gone, &async);
		else
			complete(&req->done);
		failed++;
	}
	mxfs_n_pending = 0;
	hash_for_each_safe(mxfs_held, bkt, tmp, lk, node) {
		hash_del(&lk->node);
		if (lk->ops)
			lk->ops->lost(lk->owner, lk->id, -ENOTCONN);
		kfree(lk);
		lost++;
	}
	mxfs_n_held = 0;
	spin_unlock(&mxfs_req_lock);
	list_for_each_entry_safe(req, rtmp, &async, gone)
		mxfs_request_finish_async(req);
	atomic64_add(failed, &mxfs_stats.failed_on_detach);
	atomic64_add(lost, &mxfs_stats.locks_lost);
	if (failed || lost)
		pr_warn("mxfs: daemon gone: %u pending requests failed, %u held locks dropped\n", failed, lost);
}

unsigned int mxfs_requests_pending(void)
{
	return READ_ONCE(mxfs_n_pending);
}

unsigned int mxfs_locks_held(void)
{
	return READ_ONCE(mxfs_n_held);
}

/* The test hook's locks (the inode locks are in debugfs "glocks"). */
void mxfs_locks_show(struct seq_file *m)
{
	struct mxfs_lock *lk;
	int bkt;

	spin_lock(&mxfs_req_lock);
	hash_for_each(mxfs_held, bkt, lk, node) {
		if (lk->ops)
			continue;
		seq_printf(m, "id=%llu lockspace=%s resource=%s mode=%s token=%llu bast=%s\n",
			   lk->id, lk->lockspace, lk->resource, mxfs_mode_name(lk->mode), lk->token,
			   lk->bast_mode < 0 ? "-" : mxfs_mode_name(lk->bast_mode));
	}
	spin_unlock(&mxfs_req_lock);
}

void mxfs_requests_init(void)
{
	hash_init(mxfs_pending);
	hash_init(mxfs_held);
}

void mxfs_requests_exit(void)
{
	mxfs_requests_daemon_gone();
}
