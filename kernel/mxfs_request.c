// SPDX-License-Identifier: GPL-2.0
/*
 * Requests the kernel sends to the daemon, and the cluster locks the kernel holds.
 *
 * Call stages of a lock request (mxfs_lock):
 *   1. allocate the request (id from a 64-bit counter, never reused) and the lock it will
 *      become; insert it into mxfs_pending; re-check the daemon generation so a detach
 *      that raced with the insert cannot leave it waiting;
 *   2. send LOCK_REQ (REQ_ID, LOCKSPACE, RESOURCE, MODE, FLAGS, TIMEOUT_MS) to the daemon;
 *   3. sleep (killable; interruptible for a volume request from an open()) for
 *      TIMEOUT_MS + reply_grace_ms;
 *   4. the reply (LOCK_GRANT or LOCK_DENY with the same REQ_ID) completes it: a grant moves
 *      the lock into mxfs_held under id = REQ_ID; a reply for an id that no longer waits
 *      gets -ENOENT, so the daemon knows to release what it granted;
 *   5. the daemon going away (mxfs_requests_daemon_gone) completes every request with
 *      -ENOTCONN and drops every held lock; no reply within the bound gives -ETIMEDOUT
 *      (a killed task -EINTR), and LOCK_CANCEL tells the daemon to withdraw the request
 *      (volume requests too).
 * One spinlock covers both tables: every section under it is short and never sleeps.
 */
#include <linux/hashtable.h>
#include <linux/completion.h>
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/seq_file.h>
#include "mxfs_internal.h"

struct mxfs_lock {
	struct hlist_node node;
	u64 id;
	char lockspace[MXFS_NAME_MAX + 1];
	char resource[MXFS_NAME_MAX + 1];
	u8 mode;
	u64 token;
	int bast_mode;		/* -1: no blocking callback received */
};

struct mxfs_request {
	struct hlist_node node;
	u64 id;
	u8 cmd;			/* MXFS_CMD_LOCK_REQ or MXFS_CMD_VOLUME_(UN)MOUNT */
	u8 mode;		/* requested mode (LOCK_REQ) */
	bool finished;
	int status;
	u64 token;		/* fencing token of the grant */
	struct completion done;
	struct mxfs_lock *lock;	/* becomes a held lock on grant (LOCK_REQ only) */
};

static DEFINE_SPINLOCK(mxfs_req_lock);
static DEFINE_HASHTABLE(mxfs_pending, 8);
static DEFINE_HASHTABLE(mxfs_held, 8);
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

/* Stage 1: make the request visible to replies and to a daemon detach. */
static int mxfs_request_insert(struct mxfs_request *req, u32 *portid)
{
	struct mxfs_daemon_info before, after;

	mxfs_daemon_get(&before);
	if (!before.attached)
		return -ENOTCONN;
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
		}
		spin_unlock(&mxfs_req_lock);
		return -ENOTCONN;
	}
	*portid = before.portid;
	return 0;
}

/* Stage 3 and the end of the request: returns its status; req is no longer shared. */
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
		req->status = left < 0 ? -EINTR : -ETIMEDOUT;
		gave_up = true;
	}
	status = req->status;
	spin_unlock(&mxfs_req_lock);
	/* Tell the daemon to withdraw the request (the DLM request, or a volume it was about to
	 * grant); a grant racing with this is refused (-ENOENT) and given back anyway. */
	if (gave_up) {
		struct mxfs_daemon_info d;

		mxfs_daemon_get(&d);
		if (d.attached && !mxfs_nl_send_lock_cancel(d.portid, req->id))
			atomic64_inc(&mxfs_stats.cancels);
	}
	/* Only count what the kernel decided itself; a daemon's -ETIMEDOUT denial is a denial. */
	if (gave_up && status == -ETIMEDOUT) {
		atomic64_inc(&mxfs_stats.timeouts);
		mxfs_nl_event(MXFS_EVENT_REQUEST_TIMEOUT, req->id, -ETIMEDOUT);
	} else if (gave_up) {
		atomic64_inc(&mxfs_stats.interrupted);
	}
	return status;
}

static void mxfs_request_abort(struct mxfs_request *req)
{
	spin_lock(&mxfs_req_lock);
	if (!req->finished) {
		hash_del(&req->node);
		mxfs_n_pending--;
		req->finished = true;
	}
	spin_unlock(&mxfs_req_lock);
}

int mxfs_lock(const char *lockspace, const char *resource, u8 mode, u32 flags,
	      unsigned int timeout_ms, struct mxfs_grant *out)
{
	struct mxfs_request *req;
	struct mxfs_lock *lk;
	u32 portid;
	int err;

	if (mode > MXFS_MODE_MAX || (flags & ~MXFS_LKF_ALL) ||
	    strnlen(lockspace, MXFS_NAME_MAX + 1) > MXFS_NAME_MAX || !*resource ||
	    strnlen(resource, MXFS_NAME_MAX + 1) > MXFS_NAME_MAX)
		return -EINVAL;
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	lk = kzalloc(sizeof(*lk), GFP_KERNEL);
	if (!req || !lk) {
		kfree(req);
		kfree(lk);
		return -ENOMEM;
	}
	init_completion(&req->done);
	req->id = atomic64_inc_return(&mxfs_next_id);
	req->cmd = MXFS_CMD_LOCK_REQ;
	req->mode = mode;
	req->lock = lk;
	lk->id = req->id;
	lk->mode = mode;
	lk->bast_mode = -1;
	strscpy(lk->lockspace, lockspace, sizeof(lk->lockspace));
	strscpy(lk->resource, resource, sizeof(lk->resource));

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
		out->token = req->token;
	}
out:
	/* On success the lock moved to mxfs_held and req->lock was cleared. */
	kfree(req->lock);
	kfree(req);
	return err;
}

int mxfs_volume(u8 cmd, const char *volume, unsigned int timeout_ms, bool interruptible)
{
	struct mxfs_request *req;
	u32 portid;
	int err;

	if ((cmd != MXFS_CMD_VOLUME_MOUNT && cmd != MXFS_CMD_VOLUME_UNMOUNT) || !*volume ||
	    strnlen(volume, MXFS_NAME_MAX + 1) > MXFS_NAME_MAX)
		return -EINVAL;
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	init_completion(&req->done);
	req->id = atomic64_inc_return(&mxfs_next_id);
	req->cmd = cmd;
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
	kfree(req);
	return err;
}

int mxfs_request_complete(u64 req_id, bool lock_reply, int status, u8 mode, u64 token)
{
	struct mxfs_request *req;
	int err = 0;

	spin_lock(&mxfs_req_lock);
	req = mxfs_pending_find(req_id);
	if (!req) {
		err = -ENOENT;
	} else if (lock_reply != (req->cmd == MXFS_CMD_LOCK_REQ)) {
		err = -EINVAL;		/* a lock reply to a volume request or vice versa */
	} else if (!status && lock_reply && mode != req->mode) {
		err = -EINVAL;		/* granted a mode that was not asked for */
	} else {
		hash_del(&req->node);
		mxfs_n_pending--;
		req->finished = true;
		req->status = status;
		req->token = token;
		if (!status && req->lock) {
			req->lock->token = token;
			hash_add(mxfs_held, &req->lock->node, req->lock->id);
			mxfs_n_held++;
			req->lock = NULL;
		}
		complete(&req->done);
	}
	spin_unlock(&mxfs_req_lock);
	if (!err)
		atomic64_inc(status ? &mxfs_stats.denies : &mxfs_stats.grants);
	return err;
}

int mxfs_unlock(u64 lock_id)
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
		err = mxfs_nl_send_lock_release(d.portid, lk->id, lk->lockspace, lk->resource);
	kfree(lk);
	return err;
}

int mxfs_lock_bast(u64 lock_id, u8 mode)
{
	struct mxfs_lock *lk;

	spin_lock(&mxfs_req_lock);
	lk = mxfs_held_find(lock_id);
	if (lk)
		lk->bast_mode = mode;
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
	struct mxfs_request *req;
	struct mxfs_lock *lk;
	struct hlist_node *tmp;
	unsigned int failed = 0, lost = 0;
	int bkt;

	spin_lock(&mxfs_req_lock);
	hash_for_each_safe(mxfs_pending, bkt, tmp, req, node) {
		hash_del(&req->node);
		req->finished = true;
		req->status = -ENOTCONN;
		complete(&req->done);
		failed++;
	}
	mxfs_n_pending = 0;
	hash_for_each_safe(mxfs_held, bkt, tmp, lk, node) {
		hash_del(&lk->node);
		kfree(lk);
		lost++;
	}
	mxfs_n_held = 0;
	spin_unlock(&mxfs_req_lock);
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

void mxfs_locks_show(struct seq_file *m)
{
	struct mxfs_lock *lk;
	int bkt;

	spin_lock(&mxfs_req_lock);
	hash_for_each(mxfs_held, bkt, lk, node) {
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
