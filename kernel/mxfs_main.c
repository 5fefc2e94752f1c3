// SPDX-License-Identifier: GPL-2.0
/*
 * MXFS module entry: parameters, init and exit order.
 *
 * Init: request tables, then debugfs, then the genetlink family (last, so that no message
 * can arrive before the tables exist). Exit in reverse: the family goes first, which also
 * means no new reply can race with the teardown of the tables.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include "mxfs_internal.h"

unsigned int mxfs_request_timeout_ms = 30000;
module_param_named(request_timeout_ms, mxfs_request_timeout_ms, uint, 0644);
MODULE_PARM_DESC(request_timeout_ms, "Default time a kernel request may wait for the cluster (ms)");

unsigned int mxfs_reply_grace_ms = 2000;
module_param_named(reply_grace_ms, mxfs_reply_grace_ms, uint, 0644);
MODULE_PARM_DESC(reply_grace_ms, "Extra time the daemon gets to answer after the request's own timeout (ms)");

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
	mxfs_debugfs_init();
	err = mxfs_netlink_init();
	if (err) {
		mxfs_debugfs_exit();
		mxfs_requests_exit();
		return err;
	}
	pr_info("mxfs: loaded (genetlink family \"%s\", protocol %d)\n", MXFS_GENL_NAME, MXFS_PROTO_VERSION);
	return 0;
}

static void __exit mxfs_exit(void)
{
	mxfs_netlink_exit();
	mxfs_requests_daemon_gone();
	mxfs_debugfs_exit();
	mxfs_requests_exit();
	pr_info("mxfs: unloaded\n");
}

module_init(mxfs_init);
module_exit(mxfs_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("MXFS cluster lock layer for XFS: kernel side of the mxfsd channel");
MODULE_VERSION("0.1.0");
