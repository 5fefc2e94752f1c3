// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel lease: the time until which this node may write to the volumes it owns.
 *
 * The daemon renews it (LEASE_RENEW, an absolute CLOCK_MONOTONIC deadline: its cluster
 * lease's, so the kernel stops no later than the cluster assumes) while its node holds its
 * cluster lease. The lease ends three ways, and each fences every open gate:
 *   - expiry: the bio path compares ktime_get_ns() with the deadline itself, so no write
 *     passes from the deadline on even before anything runs; an hrtimer at the deadline
 *     queues the work that starts the fences (trigger time = the deadline);
 *   - LEASE_LOST from the daemon (quorum lost...), at once;
 *   - the daemon's death (NETLINK_URELEASE of its socket, mxfs_netlink.c), at once.
 * A lease whose deadline passed is over: a renewal arriving late starts a new lease, but the
 * gates that were open are fenced first (the cluster may already count this node as gone).
 *
 * Locking: mxfs_lease_lock (irqsave) for the state, and a seqcount around every change, so
 * the bio path's look at (deadline, now) is never split by a renewal: a write refused at the
 * deadline always belongs to a lease that is then fenced, never to one renewed in between.
 * Writers clear the fast deadline before fencing, so a write bio either was counted in
 * flight before the clear (and is drained) or sees it cleared.
 */
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/seqlock.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include "mxfs_internal.h"

struct workqueue_struct *mxfs_fence_wq;

static DEFINE_SPINLOCK(mxfs_lease_lock);
static seqcount_spinlock_t mxfs_lease_seq = SEQCNT_SPINLOCK_ZERO(mxfs_lease_seq, &mxfs_lease_lock);
static struct {
	u8 state;
	u64 deadline_ns;
	u64 renewed_ns;
	bool renewed;
	u64 deadline_fast;	/* what the bio path reads: 0 = no valid lease */
} mxfs_lease;
static struct hrtimer mxfs_lease_timer;
static struct work_struct mxfs_lease_work;

bool mxfs_lease_valid_now(void)
{
	unsigned int seq;
	bool valid;

	do {
		seq = read_seqcount_begin(&mxfs_lease_seq);
		valid = mxfs_lease.deadline_fast && ktime_get_ns() < mxfs_lease.deadline_fast;
	} while (read_seqcount_retry(&mxfs_lease_seq, seq));
	return valid;
}

/* Under the lock and the seqcount: a valid lease past its deadline becomes expired. */
static bool mxfs_lease_expire_locked(u64 now, u64 *deadline)
{
	if (mxfs_lease.state != MXFS_LEASE_VALID || now < mxfs_lease.deadline_ns)
		return false;
	mxfs_lease.state = MXFS_LEASE_EXPIRED;
	mxfs_lease.deadline_fast = 0;
	*deadline = mxfs_lease.deadline_ns;
	return true;
}

static void mxfs_lease_expired(u64 now, u64 deadline)
{
	smp_mb();	/* the cleared deadline before the drains read the in-flight counters */
	pr_warn("mxfs: kernel lease expired %llu us ago without renewal\n", (now - deadline) / 1000);
	mxfs_volumes_fence_all(MXFS_FENCE_LEASE_EXPIRED, deadline);
}

static void mxfs_lease_work_fn(struct work_struct *work)
{
	unsigned long flags;
	u64 now, deadline = 0;
	bool due;

	spin_lock_irqsave(&mxfs_lease_lock, flags);
	write_seqcount_begin(&mxfs_lease_seq);
	now = ktime_get_ns();
	due = mxfs_lease_expire_locked(now, &deadline);
	write_seqcount_end(&mxfs_lease_seq);
	spin_unlock_irqrestore(&mxfs_lease_lock, flags);
	if (due)
		mxfs_lease_expired(now, deadline);
}

static enum hrtimer_restart mxfs_lease_timer_fn(struct hrtimer *t)
{
	queue_work(mxfs_fence_wq, &mxfs_lease_work);
	return HRTIMER_NORESTART;
}

void mxfs_lease_renew(u64 deadline_ns)
{
	unsigned long flags;
	u64 now, old = 0;
	bool due, valid;

	for (;;) {
		spin_lock_irqsave(&mxfs_lease_lock, flags);
		write_seqcount_begin(&mxfs_lease_seq);
		now = ktime_get_ns();
		due = mxfs_lease_expire_locked(now, &old);
		valid = !due && deadline_ns > now;
		if (!due) {
			mxfs_lease.deadline_ns = deadline_ns;
			mxfs_lease.renewed_ns = now;
			mxfs_lease.renewed = true;
			if (valid)
				mxfs_lease.state = MXFS_LEASE_VALID;
			else if (mxfs_lease.state == MXFS_LEASE_VALID)
				mxfs_lease.state = MXFS_LEASE_EXPIRED;
			mxfs_lease.deadline_fast = valid ? deadline_ns : 0;
		}
		write_seqcount_end(&mxfs_lease_seq);
		spin_unlock_irqrestore(&mxfs_lease_lock, flags);
		if (!due)
			break;
		/* Renewed too late: the lease that ended is fenced before a new one begins. */
		mxfs_lease_expired(now, old);
	}
	if (valid) {
		hrtimer_start(&mxfs_lease_timer, ns_to_ktime(deadline_ns), HRTIMER_MODE_ABS);
	} else {
		/* A deadline already past: no lease from now on. */
		smp_mb();
		mxfs_volumes_fence_all(MXFS_FENCE_LEASE_EXPIRED, now);
	}
}

void mxfs_lease_lost(u8 cause, const char *reason)
{
	unsigned long flags;
	u64 now;
	u8 was;

	spin_lock_irqsave(&mxfs_lease_lock, flags);
	write_seqcount_begin(&mxfs_lease_seq);
	now = ktime_get_ns();
	was = mxfs_lease.state;
	mxfs_lease.state = MXFS_LEASE_LOST;
	mxfs_lease.deadline_fast = 0;
	write_seqcount_end(&mxfs_lease_seq);
	spin_unlock_irqrestore(&mxfs_lease_lock, flags);
	smp_mb();
	hrtimer_try_to_cancel(&mxfs_lease_timer);
	if (was == MXFS_LEASE_VALID)
		pr_warn("mxfs: kernel lease lost (%s): %s\n", mxfs_fence_cause_name(cause), reason);
	mxfs_volumes_fence_all(cause, now);
}

void mxfs_lease_get(struct mxfs_lease_info *out)
{
	unsigned long flags;
	u64 now;

	spin_lock_irqsave(&mxfs_lease_lock, flags);
	now = ktime_get_ns();
	out->state = mxfs_lease.state;
	out->deadline_ns = mxfs_lease.deadline_ns;
	out->renewed = mxfs_lease.renewed;
	out->age_ns = mxfs_lease.renewed ? now - mxfs_lease.renewed_ns : 0;
	spin_unlock_irqrestore(&mxfs_lease_lock, flags);
	/* Past its deadline, the timer's work not run yet: already over for writes. */
	if (out->state == MXFS_LEASE_VALID && now >= out->deadline_ns)
		out->state = MXFS_LEASE_EXPIRED;
	out->remaining_ns = out->state == MXFS_LEASE_VALID ? out->deadline_ns - now : 0;
}

int mxfs_lease_init(void)
{
	/* The fences must progress under memory pressure: a rescuer, high priority. */
	mxfs_fence_wq = alloc_workqueue("mxfs_fence", WQ_MEM_RECLAIM | WQ_HIGHPRI | WQ_UNBOUND, 0);
	if (!mxfs_fence_wq)
		return -ENOMEM;
	INIT_WORK(&mxfs_lease_work, mxfs_lease_work_fn);
	hrtimer_init(&mxfs_lease_timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	mxfs_lease_timer.function = mxfs_lease_timer_fn;
	return 0;
}

void mxfs_lease_exit(void)
{
	hrtimer_cancel(&mxfs_lease_timer);
	cancel_work_sync(&mxfs_lease_work);
	destroy_workqueue(mxfs_fence_wq);
}
