// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel volumes: one gate per shared disk the daemon registered, and the fence.
 *
 * A volume = a name, the claimed disk and its stacked disk /dev/mxfs/<name> (mxfs_blk.c),
 * and a gate:
 *
 *   CLOSED --GATE open(gen), lease valid--> OPEN --last writer closes--> CLOSED (+ RELEASED)
 *   OPEN --GATE close, no writer--> CLOSED
 *   OPEN --lease expired | LEASE_LOST | daemon lost | VOLUME_FENCE--> FENCING --drain--> FENCED
 *   FENCED --VOLUME_CLEAR, no writer--> CLOSED
 *
 *   - A write bio passes only when the gate is OPEN and the kernel lease is valid at that
 *     instant (mxfs_lease_valid_now); otherwise it fails with EIO at once. Reads always pass.
 *   - Opening the stacked disk for writing: CLOSED gives ENOLCK (or, with open_wait_ms, asks
 *     the daemon with VOLUME_MOUNT and waits, interruptibly, for the answer); FENCING and
 *     FENCED give EIO; an OPEN gate whose lease just ended gives ENOLCK.
 *   - The fence (call stages): 1. the gate goes FENCING under the volume's lock, so every
 *     new write bio fails; 2. the fence work waits until the writes in flight have ended, at
 *     most until trigger + timer_slack_ms + drain_timeout_ms (the fence bound the daemon is
 *     told); 3. the filesystem on the stacked disk is shut down (mxfs_xfs.c); 4. the gate
 *     goes FENCED, the fence is recorded and VOLUME_EVENT(fenced) goes to the daemon;
 *     5. writes still in flight past the bound: fence_fallback (restart, panic or log).
 *   - In-flight accounting is a Dekker pair with the gate: a bio is counted before the gate
 *     is read, the fence changes the gate before it reads the count, with full barriers.
 *
 * Locking: mxfs_vol_mutex for the list (register, unregister, status, fence-all); each
 * volume's spinlock for its gate, counts and records. open/release run under the block
 * layer's open_mutex and take only the volume's spinlock; the fence work takes neither the
 * list mutex nor open_mutex. A volume is freed only by unregister: no opener, the gate not
 * fencing, the stacked disk deleted and every forwarded bio completed.
 */
#include <linux/atomic.h>
#include <linux/ctype.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/reboot.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include "mxfs_internal.h"

struct mxfs_vol {
	struct list_head node;
	char name[MXFS_VOLUME_DEV_NAME_MAX + 1];
	dev_t dev;
	struct mxfs_blk *blk;
	spinlock_t lock;
	u8 gate;			/* MXFS_GATE_*; read without the lock by the bio path */
	bool dying;			/* unregistering: opens fail */
	u64 generation;
	unsigned int openers, writers;
	unsigned int waiters;		/* opens waiting for the daemon (gate-wait mode) */
	atomic_t inflight, inflight_writes;
	atomic64_t refused;
	/* The fence in progress (FENCING). */
	u8 fence_cause;
	u64 fence_trigger_ns;		/* CLOCK_MONOTONIC: when writes stopped being allowed */
	u64 fence_time_ms;		/* wall clock of the trigger */
	u32 fence_inflight;
	struct work_struct fence_work;
	unsigned int fences;
	struct mxfs_fence_rec rec[MXFS_FENCE_HISTORY];
};

static DEFINE_MUTEX(mxfs_vol_mutex);
static LIST_HEAD(mxfs_vols);
static bool mxfs_vols_ready;
/* Woken when a volume's in-flight count drops to 0 (global: see mxfs_vol_bio_end). */
static DECLARE_WAIT_QUEUE_HEAD(mxfs_drain_wq);

static const char *const mxfs_gate_names[] = { "closed", "open", "fencing", "fenced" };
static const char *const mxfs_cause_names[] = { "none", "lease-expired", "lease-lost", "daemon-lost", "explicit" };
static const char *const mxfs_shutdown_names[] = { "no-fs", "done", "unavailable", "not-xfs" };

const char *mxfs_gate_name(u8 gate)
{
	return gate <= MXFS_GATE_MAX ? mxfs_gate_names[gate] : "?";
}

const char *mxfs_fence_cause_name(u8 cause)
{
	return cause <= MXFS_FENCE_MAX ? mxfs_cause_names[cause] : "?";
}

const char *mxfs_shutdown_name(u8 shutdown)
{
	return shutdown <= MXFS_SHUTDOWN_MAX ? mxfs_shutdown_names[shutdown] : "?";
}

/* [A-Za-z0-9_.-], 1..MXFS_VOLUME_DEV_NAME_MAX bytes, not starting with '.' or '-'. */
static bool mxfs_volume_name_ok(const char *name)
{
	size_t i, len = strnlen(name, MXFS_VOLUME_DEV_NAME_MAX + 1);

	if (len == 0 || len > MXFS_VOLUME_DEV_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum(name[i]) && name[i] != '_' && name[i] != '.' && name[i] != '-')
			return false;
	return true;
}

static struct mxfs_vol *mxfs_vol_find(const char *name)
{
	struct mxfs_vol *v;

	list_for_each_entry(v, &mxfs_vols, node)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

const char *mxfs_vol_name(const struct mxfs_vol *v)
{
	return v->name;
}

bool mxfs_vol_fenced(const struct mxfs_vol *v)
{
	u8 gate = READ_ONCE(v->gate);

	return gate == MXFS_GATE_FENCING || gate == MXFS_GATE_FENCED;
}

/* ---- the block layer's calls ------------------------------------------------------- */

bool mxfs_vol_bio_start(struct mxfs_vol *v, bool write)
{
	atomic_inc(&v->inflight);
	if (!write)
		return true;
	atomic_inc(&v->inflight_writes);
	smp_mb__after_atomic();	/* counted before the gate is read (the fence: the reverse) */
	if (READ_ONCE(v->gate) == MXFS_GATE_OPEN && mxfs_lease_valid_now())
		return true;
	atomic64_inc(&v->refused);
	mxfs_vol_bio_end(v, true);
	return false;
}

void mxfs_vol_bio_end(struct mxfs_vol *v, bool write)
{
	bool idle = false;

	/* After the last decrement v may be freed (unregister waits for inflight == 0): only
	 * the global wait queue is touched after it. */
	if (write && atomic_dec_and_test(&v->inflight_writes))
		idle = true;
	if (atomic_dec_and_test(&v->inflight))
		idle = true;
	if (idle && wq_has_sleeper(&mxfs_drain_wq))
		wake_up_all(&mxfs_drain_wq);
}

void mxfs_wait_drained(atomic_t *counter)
{
	wait_event(mxfs_drain_wq, atomic_read(counter) == 0);
}

int mxfs_vol_open(struct mxfs_vol *v, bool write)
{
	unsigned int wait_ms = READ_ONCE(mxfs_open_wait_ms);
	bool asked = false;
	u8 gate;
	int err;

	for (;;) {
		spin_lock(&v->lock);
		if (v->dying) {
			spin_unlock(&v->lock);
			return -ENXIO;
		}
		gate = v->gate;
		if (!write || (gate == MXFS_GATE_OPEN && mxfs_lease_valid_now())) {
			v->openers++;
			if (write)
				v->writers++;
			spin_unlock(&v->lock);
			return 0;
		}
		spin_unlock(&v->lock);
		if (gate == MXFS_GATE_FENCING || gate == MXFS_GATE_FENCED) {
			pr_info_ratelimited("mxfs: volume %s is fenced: write open refused (EIO)\n", v->name);
			return -EIO;
		}
		if (gate == MXFS_GATE_OPEN || !wait_ms || asked) {
			pr_info_ratelimited("mxfs: volume %s: write open refused, this node does not own it (%s)\n",
					    v->name, gate == MXFS_GATE_OPEN ? "kernel lease ended" : "gate closed");
			return -ENOLCK;
		}
		/* Gate-wait mode: ask the daemon for the volume, then look at the gate again.
		 * Counted, so unregister (whose del_gendisk needs the open_mutex this task holds
		 * while it waits) refuses instead of blocking genetlink until the wait ends. */
		spin_lock(&v->lock);
		if (v->dying) {
			spin_unlock(&v->lock);
			return -ENXIO;
		}
		v->waiters++;
		spin_unlock(&v->lock);
		err = mxfs_volume(MXFS_CMD_VOLUME_MOUNT, v->name, wait_ms, true);
		spin_lock(&v->lock);
		v->waiters--;
		spin_unlock(&v->lock);
		if (err == -EINTR)
			return -EINTR;
		if (err) {
			pr_info_ratelimited("mxfs: volume %s: the daemon did not grant it (%d): write open refused\n",
					    v->name, err);
			return -ENOLCK;
		}
		asked = true;
	}
}

void mxfs_vol_release(struct mxfs_vol *v, bool write)
{
	bool released = false;
	u64 generation = 0;

	spin_lock(&v->lock);
	v->openers--;
	if (write && --v->writers == 0 && v->gate == MXFS_GATE_OPEN) {
		/* The owner is done with it (umount): the gate closes now and the daemon is told,
		 * so nothing writes under this ownership once it is given back. */
		WRITE_ONCE(v->gate, MXFS_GATE_CLOSED);
		released = true;
		generation = v->generation;
	}
	spin_unlock(&v->lock);
	if (released) {
		pr_info("mxfs: volume %s released (last writer closed), generation %llu\n", v->name, generation);
		mxfs_nl_volume_event(v->name, MXFS_VOLEV_RELEASED, generation, NULL);
	}
}

/* ---- the fence --------------------------------------------------------------------- */

/* Stage 1: writes refused from now on; the fence work does the rest. Any process context. */
static bool mxfs_vol_start_fence(struct mxfs_vol *v, u8 cause, u64 trigger_ns)
{
	u64 now = ktime_get_ns(), wall_ns = ktime_get_real_ns();
	u64 since = now > trigger_ns ? now - trigger_ns : 0;

	spin_lock(&v->lock);
	if (v->gate != MXFS_GATE_OPEN) {
		spin_unlock(&v->lock);
		return false;
	}
	WRITE_ONCE(v->gate, MXFS_GATE_FENCING);
	v->fence_cause = cause;
	v->fence_trigger_ns = trigger_ns;
	v->fence_time_ms = (wall_ns - min(wall_ns, since)) / NSEC_PER_MSEC;
	spin_unlock(&v->lock);
	smp_mb();	/* the gate before the count (mxfs_vol_bio_start: the reverse) */
	v->fence_inflight = atomic_read(&v->inflight_writes);
	queue_work(mxfs_fence_wq, &v->fence_work);
	mxfs_glocks_fenced(v);	/* file operations waiting for inode locks fail with EIO */
	return true;
}

static void mxfs_fence_missed(struct mxfs_vol *v, u32 left)
{
	switch (READ_ONCE(mxfs_fence_fallback)) {
	case MXFS_FALLBACK_RESTART:
		pr_emerg("mxfs: volume %s: %u writes still in flight %u ms after the lease ended: restarting the machine (fence_fallback=restart)\n",
			 v->name, left, mxfs_fence_bound_ms());
		emergency_restart();
		break;
	case MXFS_FALLBACK_PANIC:
		panic("mxfs: volume %s: %u writes still in flight %u ms after the lease ended (fence_fallback=panic)\n",
		      v->name, left, mxfs_fence_bound_ms());
		break;
	default:
		pr_crit("mxfs: volume %s: %u writes still in flight %u ms after the lease ended; fence_fallback=log: they may still land after another node took over\n",
			v->name, left, mxfs_fence_bound_ms());
	}
}

/* Stages 2-5. */
static void mxfs_vol_fence_work(struct work_struct *work)
{
	struct mxfs_vol *v = container_of(work, struct mxfs_vol, fence_work);
	struct mxfs_fence_rec rec = {};
	u64 bound_end, now;
	long wait;
	bool drained;
	u32 left;

	spin_lock(&v->lock);
	rec.cause = v->fence_cause;
	rec.generation = v->generation;
	rec.time_ms = v->fence_time_ms;
	rec.inflight = v->fence_inflight;
	bound_end = v->fence_trigger_ns + (u64)mxfs_fence_bound_ms() * NSEC_PER_MSEC;
	spin_unlock(&v->lock);

	now = ktime_get_ns();
	wait = now < bound_end ? nsecs_to_jiffies(bound_end - now) : 0;
	drained = wait_event_timeout(mxfs_drain_wq, atomic_read(&v->inflight_writes) == 0, wait) > 0 ||
		  atomic_read(&v->inflight_writes) == 0;
	left = atomic_read(&v->inflight_writes);
	rec.shutdown = mxfs_blk_shutdown_fs(v->blk);
	rec.drained = drained;
	now = ktime_get_ns();
	rec.duration_us = (u32)min_t(u64, (now - min(now, v->fence_trigger_ns)) / NSEC_PER_USEC, U32_MAX);

	spin_lock(&v->lock);
	WRITE_ONCE(v->gate, MXFS_GATE_FENCED);
	v->rec[v->fences % MXFS_FENCE_HISTORY] = rec;
	v->fences++;
	spin_unlock(&v->lock);
	pr_warn("mxfs: volume %s fenced (%s), generation %llu: %u writes in flight %s in %u us; filesystem: %s\n",
		v->name, mxfs_fence_cause_name(rec.cause), rec.generation, rec.inflight,
		drained ? "drained" : "NOT drained", rec.duration_us, mxfs_shutdown_name(rec.shutdown));
	mxfs_nl_volume_event(v->name, MXFS_VOLEV_FENCED, rec.generation, &rec);
	if (!drained)
		mxfs_fence_missed(v, left);
}

void mxfs_volumes_fence_all(u8 cause, u64 trigger_ns)
{
	struct mxfs_vol *v;

	mutex_lock(&mxfs_vol_mutex);
	list_for_each_entry(v, &mxfs_vols, node)
		mxfs_vol_start_fence(v, cause, trigger_ns);
	mutex_unlock(&mxfs_vol_mutex);
}

/* ---- commands from the daemon ------------------------------------------------------ */

int mxfs_volume_register(const char *name, dev_t dev, const char **why)
{
	struct mxfs_vol *v, *other;
	struct mxfs_blk *blk;
	int err = 0;

	if (!mxfs_volume_name_ok(name)) {
		*why = "mxfs: volume name: 1-26 bytes of [A-Za-z0-9_.-], not starting with '.' or '-'";
		return -EINVAL;
	}
	mutex_lock(&mxfs_vol_mutex);
	other = mxfs_vol_find(name);
	if (other) {
		/* Registered already (at boot, or by a daemon that died): adopted as it is. */
		if (other->dev != dev) {
			*why = "mxfs: volume registered with another device";
			err = -EEXIST;
		}
		goto out;
	}
	list_for_each_entry(other, &mxfs_vols, node) {
		if (other->dev == dev) {
			*why = "mxfs: device registered as another volume";
			err = -EBUSY;
			goto out;
		}
	}
	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	strscpy(v->name, name, sizeof(v->name));
	v->dev = dev;
	spin_lock_init(&v->lock);
	v->gate = MXFS_GATE_CLOSED;
	atomic_set(&v->inflight, 0);
	atomic_set(&v->inflight_writes, 0);
	atomic64_set(&v->refused, 0);
	INIT_WORK(&v->fence_work, mxfs_vol_fence_work);
	blk = mxfs_blk_create(v, dev, name);
	if (IS_ERR(blk)) {
		err = PTR_ERR(blk);
		*why = err == -EBUSY ? "mxfs: device in use (mounted, or claimed by another holder)" :
		       err == -ENXIO || err == -ENODEV ? "mxfs: no such block device" :
		       "mxfs: cannot claim the device or add the stacked disk";
		kfree(v);
		goto out;
	}
	v->blk = blk;
	list_add_tail(&v->node, &mxfs_vols);
	pr_info("mxfs: volume %s registered: %u:%u claimed, /dev/mxfs/%s (gate closed)\n",
		name, MAJOR(dev), MINOR(dev), name);
out:
	mutex_unlock(&mxfs_vol_mutex);
	return err;
}

static void mxfs_vol_destroy(struct mxfs_vol *v)
{
	mxfs_glocks_volume_gone(v);
	cancel_work_sync(&v->fence_work);
	mxfs_blk_destroy(v->blk, &v->inflight);
	pr_info("mxfs: volume %s unregistered, %u:%u released\n", v->name, MAJOR(v->dev), MINOR(v->dev));
	kfree(v);
}

int mxfs_volume_unregister(const char *name, const char **why)
{
	struct mxfs_vol *v;
	int err = 0;

	mutex_lock(&mxfs_vol_mutex);
	v = mxfs_vol_find(name);
	if (!v) {
		err = -ENOENT;
		goto out;
	}
	spin_lock(&v->lock);
	if (v->openers || v->waiters || v->gate == MXFS_GATE_FENCING) {
		*why = v->gate == MXFS_GATE_FENCING ? "mxfs: the volume is being fenced" :
		       "mxfs: the volume's device is open (or an open waits for the daemon)";
		err = -EBUSY;
	} else {
		v->dying = true;
	}
	spin_unlock(&v->lock);
	if (err)
		goto out;
	list_del(&v->node);
	mxfs_vol_destroy(v);
out:
	mutex_unlock(&mxfs_vol_mutex);
	return err;
}

/* The gate changes the daemon asks for: the new gate, or -errno and why. Under v->lock. */
static int mxfs_gate_rule(const struct mxfs_vol *v, enum mxfs_gate_op op, u64 generation, const char **why)
{
	bool fenced = v->gate == MXFS_GATE_FENCING || v->gate == MXFS_GATE_FENCED;

	switch (op) {
	case MXFS_GATE_OP_OPEN:
		if (fenced) {
			*why = "mxfs: the volume is fenced: unmount it and clear it (VOLUME_CLEAR) first";
			return -EIO;
		}
		if (generation < v->generation) {
			*why = "mxfs: an older ownership generation than the volume's";
			return -ESTALE;
		}
		if (!mxfs_lease_valid_now()) {
			*why = "mxfs: no valid kernel lease (LEASE_RENEW first)";
			return -ENOLCK;
		}
		return MXFS_GATE_OPEN;
	case MXFS_GATE_OP_CLOSE:
		if (fenced) {
			*why = "mxfs: the volume is fenced: unmount it and clear it (VOLUME_CLEAR) first";
			return -EIO;
		}
		if (v->writers) {
			*why = "mxfs: the volume is open for writing (unmount it first)";
			return -EBUSY;
		}
		return MXFS_GATE_CLOSED;
	case MXFS_GATE_OP_CLEAR:
		if (v->gate == MXFS_GATE_FENCING) {
			*why = "mxfs: the fence is still draining";
			return -EBUSY;
		}
		if (v->gate == MXFS_GATE_OPEN) {
			*why = "mxfs: the volume is not fenced";
			return -EINVAL;
		}
		if (v->writers) {
			*why = "mxfs: the fenced volume is still open for writing (unmount it first)";
			return -EBUSY;
		}
		return MXFS_GATE_CLOSED;
	}
	return -EINVAL;
}

int mxfs_volume_gate(const char *name, enum mxfs_gate_op op, u64 generation, const char **why)
{
	static const char *const op_names[] = { "opened", "closed", "cleared" };
	struct mxfs_vol *v;
	int gate;

	mutex_lock(&mxfs_vol_mutex);
	v = mxfs_vol_find(name);
	if (!v) {
		mutex_unlock(&mxfs_vol_mutex);
		return -ENOENT;
	}
	spin_lock(&v->lock);
	gate = mxfs_gate_rule(v, op, generation, why);
	if (gate >= 0) {
		if (op == MXFS_GATE_OP_OPEN)
			v->generation = generation;
		WRITE_ONCE(v->gate, gate);
		generation = v->generation;
	}
	spin_unlock(&v->lock);
	mutex_unlock(&mxfs_vol_mutex);
	if (gate < 0)
		return gate;
	pr_info("mxfs: volume %s gate %s (generation %llu)\n", name, op_names[op], generation);
	return 0;
}

int mxfs_volume_fence(const char *name)
{
	struct mxfs_vol *v;

	mutex_lock(&mxfs_vol_mutex);
	v = mxfs_vol_find(name);
	if (v)
		mxfs_vol_start_fence(v, MXFS_FENCE_EXPLICIT, ktime_get_ns());
	mutex_unlock(&mxfs_vol_mutex);
	return v ? 0 : -ENOENT;
}

/* ---- status ------------------------------------------------------------------------ */

static void mxfs_vol_snapshot(struct mxfs_vol *v, struct mxfs_vol_info *out)
{
	unsigned int i, first;

	strscpy(out->name, v->name, sizeof(out->name));
	out->dev = (u32)v->dev;
	out->inflight = atomic_read(&v->inflight);
	out->inflight_writes = atomic_read(&v->inflight_writes);
	out->refused = atomic64_read(&v->refused);
	spin_lock(&v->lock);
	out->gate = v->gate;
	out->generation = v->generation;
	out->openers = v->openers;
	out->writers = v->writers;
	out->fences = v->fences;
	out->nrec = min_t(unsigned int, v->fences, MXFS_FENCE_HISTORY);
	first = v->fences - out->nrec;
	for (i = 0; i < out->nrec; i++)
		out->rec[i] = v->rec[(first + i) % MXFS_FENCE_HISTORY];
	spin_unlock(&v->lock);
}

int mxfs_volumes_for_each(const char *name, int (*fn)(const struct mxfs_vol_info *, void *), void *arg)
{
	struct mxfs_vol_info *info = kmalloc(sizeof(*info), GFP_KERNEL);
	struct mxfs_vol *v;
	int err = 0;
	bool found = false;

	if (!info)
		return -ENOMEM;
	mutex_lock(&mxfs_vol_mutex);
	list_for_each_entry(v, &mxfs_vols, node) {
		if (name && strcmp(v->name, name))
			continue;
		found = true;
		mxfs_vol_snapshot(v, info);
		err = fn(info, arg);
		if (err)
			break;
	}
	mutex_unlock(&mxfs_vol_mutex);
	kfree(info);
	return !err && name && !found ? -ENOENT : err;
}

static int mxfs_copy_info(const struct mxfs_vol_info *info, void *arg)
{
	memcpy(arg, info, sizeof(*info));
	return 0;
}

int mxfs_volume_get_info(const char *name, struct mxfs_vol_info *out)
{
	return mxfs_volumes_for_each(name, mxfs_copy_info, out);
}

/* ---- boot-time claims: the "volumes" module parameter ------------------------------- */

/* "name=/dev/path" or "name=MAJOR:MINOR". */
static int mxfs_volume_from_pair(char *pair)
{
	char *eq = strchr(pair, '='), *dev_s, *colon;
	unsigned int major, minor;
	const char *why = "";
	dev_t dev;
	int err;

	if (!eq)
		return -EINVAL;
	*eq = '\0';
	dev_s = eq + 1;
	colon = strchr(dev_s, ':');
	if (dev_s[0] != '/' && colon) {
		*colon = '\0';
		if (kstrtouint(dev_s, 10, &major) || kstrtouint(colon + 1, 10, &minor) ||
		    major >= (1u << (32 - MINORBITS)) || minor > MINORMASK)
			return -EINVAL;
		dev = MKDEV(major, minor);
	} else {
		err = mxfs_blk_lookup(dev_s, &dev);
		if (err) {
			pr_err("mxfs: volumes=: %s=%s: no such block device (%d)\n", pair, dev_s, err);
			return err;
		}
	}
	err = mxfs_volume_register(pair, dev, &why);
	if (err)
		pr_err("mxfs: volumes=: cannot register %s (%d): %s\n", pair, err, why);
	return err;
}

int mxfs_volumes_from_param(const char *spec)
{
	char *copy, *rest, *pair;
	int err = 0, e;

	if (!READ_ONCE(mxfs_vols_ready))
		return 0;	/* at load: mxfs_volumes_init registers them */
	copy = kstrdup(spec, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	rest = strim(copy);
	while ((pair = strsep(&rest, ",")) != NULL) {
		pair = strim(pair);
		if (!*pair)
			continue;
		e = mxfs_volume_from_pair(pair);
		if (e && !err)
			err = e;
	}
	kfree(copy);
	return err;
}

int mxfs_volumes_init(void)
{
	int err = mxfs_blk_init();

	if (err)
		return err;
	mxfs_xfs_init();
	WRITE_ONCE(mxfs_vols_ready, true);
	return 0;
}

/* Module unload (no stacked disk can be open then: each holds a module reference). */
void mxfs_volumes_exit(void)
{
	struct mxfs_vol *v, *tmp;

	WRITE_ONCE(mxfs_vols_ready, false);
	flush_workqueue(mxfs_fence_wq);
	mutex_lock(&mxfs_vol_mutex);
	list_for_each_entry_safe(v, tmp, &mxfs_vols, node) {
		spin_lock(&v->lock);
		v->dying = true;
		spin_unlock(&v->lock);
		list_del(&v->node);
		mxfs_vol_destroy(v);
	}
	mutex_unlock(&mxfs_vol_mutex);
	mxfs_blk_exit();
}
