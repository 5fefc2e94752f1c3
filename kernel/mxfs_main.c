// SPDX-License-Identifier: GPL-2.0
/*
 * MXFS module entry: parameters, init and exit order.
 *
 * Init: request tables, the inode lock cache, the kernel lease (and the fence workqueue),
 * volumes (bioset, kallsyms), debugfs, then the genetlink family (so that no message can
 * arrive before the tables exist), then the volumes of the "volumes" parameter (claimed
 * before anything else can mount their disks). Exit in reverse: the family goes first (its
 * daemon detach fences any open gate and drops every cluster lock), then the volumes (none
 * can be open: each open stacked disk holds a module reference; each waits for its inode
 * locks to go), the XFS hooks (removed with the last close already), the lease, debugfs,
 * the lock cache, the tables.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string.h>
#include "mxfs_internal.h"

unsigned int mxfs_request_timeout_ms = 30000;
module_param_named(request_timeout_ms, mxfs_request_timeout_ms, uint, 0644);
MODULE_PARM_DESC(request_timeout_ms, "Default time a kernel request may wait for the cluster (ms)");

unsigned int mxfs_reply_grace_ms = 2000;
module_param_named(reply_grace_ms, mxfs_reply_grace_ms, uint, 0644);
MODULE_PARM_DESC(reply_grace_ms, "Extra time the daemon gets to answer after the request's own timeout (ms)");

/* The fence bound (timer_slack_ms + drain_timeout_ms) is told to the daemon, which records it
 * for the nodes that take over: fixed at load, never changed under a running cluster. */
unsigned int mxfs_timer_slack_ms = 100;
module_param_named(timer_slack_ms, mxfs_timer_slack_ms, uint, 0444);
MODULE_PARM_DESC(timer_slack_ms, "Allowed delay between the kernel lease's end and the fence starting (ms; part of the fence bound)");

unsigned int mxfs_drain_timeout_ms = 5000;
module_param_named(drain_timeout_ms, mxfs_drain_timeout_ms, uint, 0444);
MODULE_PARM_DESC(drain_timeout_ms, "Longest wait for a fenced volume's writes in flight (ms; part of the fence bound)");

unsigned int mxfs_lock_timeout_ms = 60000;
module_param_named(lock_timeout_ms, mxfs_lock_timeout_ms, uint, 0644);
MODULE_PARM_DESC(lock_timeout_ms, "Longest wait of a file operation on a kernel volume for its inode lock (ms); then it fails with ETIMEDOUT");

bool mxfs_hooks_enabled = true;
module_param_named(hooks, mxfs_hooks_enabled, bool, 0444);
MODULE_PARM_DESC(hooks, "Hook XFS's inode operations on mounted kernel volumes (inode locks, the lock cache); 0: volumes without inode locks");

unsigned int mxfs_open_wait_ms;
module_param_named(open_wait_ms, mxfs_open_wait_ms, uint, 0644);
MODULE_PARM_DESC(open_wait_ms, "0: opening a volume this node does not own for writing fails (ENOLCK); N: ask the daemon and wait up to N ms (interruptible)");

/* ---- fence_fallback ---- */

int mxfs_fence_fallback = MXFS_FALLBACK_RESTART;
static const char *const mxfs_fallback_names[] = {
	[MXFS_FALLBACK_RESTART] = "restart", [MXFS_FALLBACK_PANIC] = "panic", [MXFS_FALLBACK_LOG] = "log",
};

const char *mxfs_fallback_name(int fallback)
{
	return fallback >= 0 && fallback < ARRAY_SIZE(mxfs_fallback_names) ? mxfs_fallback_names[fallback] : "?";
}

static int mxfs_fallback_set(const char *val, const struct kernel_param *kp)
{
	int i = sysfs_match_string(mxfs_fallback_names, val);

	if (i < 0)
		return -EINVAL;
	WRITE_ONCE(mxfs_fence_fallback, i);
	return 0;
}

static int mxfs_fallback_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", mxfs_fallback_name(READ_ONCE(mxfs_fence_fallback)));
}

static const struct kernel_param_ops mxfs_fallback_ops = { .set = mxfs_fallback_set, .get = mxfs_fallback_get };
module_param_cb(fence_fallback, &mxfs_fallback_ops, NULL, 0444);
MODULE_PARM_DESC(fence_fallback, "When a fence's writes do not drain within the bound: restart (emergency_restart, default), panic, or log");

/* ---- volumes: claims at load (modprobe.d) or later (a udev rule writes here) ---- */

#define MXFS_VOLUMES_PARAM_MAX 1024
static char *mxfs_volumes_param;	/* every spec given, comma separated (for reading back) */
static DEFINE_MUTEX(mxfs_volumes_param_lock);

static int mxfs_volumes_set(const char *val, const struct kernel_param *kp)
{
	char *spec = kstrdup(val, GFP_KERNEL), *joined;
	size_t old;
	int err;

	if (!spec)
		return -ENOMEM;
	mutex_lock(&mxfs_volumes_param_lock);
	old = mxfs_volumes_param ? strlen(mxfs_volumes_param) : 0;
	err = old + strlen(spec) + 2 > MXFS_VOLUMES_PARAM_MAX ? -ENOSPC : 0;
	if (!err)
		err = mxfs_volumes_from_param(strim(spec));	/* at load: registered by mxfs_init */
	joined = err ? NULL : kasprintf(GFP_KERNEL, "%s%s%s", mxfs_volumes_param ?: "", old ? "," : "", strim(spec));
	if (joined) {
		kfree(mxfs_volumes_param);
		mxfs_volumes_param = joined;
	}
	mutex_unlock(&mxfs_volumes_param_lock);
	kfree(spec);
	return err;
}

static int mxfs_volumes_get(char *buf, const struct kernel_param *kp)
{
	int n;

	mutex_lock(&mxfs_volumes_param_lock);
	n = sysfs_emit(buf, "%s\n", mxfs_volumes_param ?: "");
	mutex_unlock(&mxfs_volumes_param_lock);
	return n;
}

static const struct kernel_param_ops mxfs_volumes_ops = { .set = mxfs_volumes_set, .get = mxfs_volumes_get };
module_param_cb(volumes, &mxfs_volumes_ops, NULL, 0644);
MODULE_PARM_DESC(volumes, "Volumes to claim: name=/dev/path|MAJOR:MINOR[,...]; writing registers more");

struct mxfs_counters mxfs_stats;

static const char *const mxfs_mode_names[] = { "NL", "CR", "CW", "PR", "PW", "EX" };

const char *mxfs_mode_name(u8 mode)
{
	return mode <= MXFS_MODE_MAX ? mxfs_mode_names[mode] : "??";
}

static int __init mxfs_init(void)
{
	int err;

	mxfs_requests_init();
	err = mxfs_glock_init();
	if (err)
		goto requests;
	err = mxfs_lease_init();
	if (err)
		goto glock;
	err = mxfs_volumes_init();
	if (err)
		goto lease;
	mxfs_debugfs_init();
	err = mxfs_netlink_init();
	if (err)
		goto debugfs;
	pr_info("mxfs: loaded (genetlink family \"%s\", protocol %d, fence bound %u ms, fallback %s)\n",
		MXFS_GENL_NAME, MXFS_PROTO_VERSION, mxfs_fence_bound_ms(), mxfs_fallback_name(mxfs_fence_fallback));
	/* Claims failing here are logged; the module stays loaded for the others. */
	if (mxfs_volumes_param)
		mxfs_volumes_from_param(mxfs_volumes_param);
	return 0;
debugfs:
	mxfs_debugfs_exit();
	mxfs_volumes_exit();
lease:
	mxfs_lease_exit();
glock:
	mxfs_glock_exit();
requests:
	mxfs_requests_exit();
	return err;
}

static void __exit mxfs_exit(void)
{
	mxfs_netlink_exit();
	mxfs_requests_daemon_gone();
	mxfs_volumes_exit();
	mxfs_hooks_exit();
	mxfs_lease_exit();
	mxfs_debugfs_exit();
	mxfs_glock_exit();
	mxfs_requests_exit();
	kfree(mxfs_volumes_param);
	pr_info("mxfs: unloaded\n");
}

module_init(mxfs_init);
module_exit(mxfs_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("MXFS cluster lock layer for XFS: the mxfsd channel, kernel volumes, self-fencing, inode locks");
MODULE_VERSION(MXFS_MODULE_VERSION);
