/* SPDX-License-Identifier: GPL-2.0 */
/*
 * MXFS generic netlink ABI: the one source of truth for the numbers shared by the kernel
 * module and the daemon (mxfsd). src/ffi/mxfs-genl.ts mirrors this file and
 * test/kernel-abi.test.ts fails when the two disagree (names, values, per-command
 * attribute sets). Append new values at the end; never renumber.
 *
 * Directions: "d->k" commands are sent by the daemon and handled by the module (each has a
 * genl op); "k->d" commands are sent by the module to the registered daemon (unicast) and
 * are rejected with -EOPNOTSUPP if userspace sends them; EVENT goes to the "events"
 * multicast group. See docs/kernel.md.
 */
#ifndef MXFS_NETLINK_H
#define MXFS_NETLINK_H

#ifdef __KERNEL__
#include <linux/bits.h>
#endif

#define MXFS_GENL_NAME		"mxfs"
#define MXFS_GENL_VERSION	1
#define MXFS_GENL_MCGRP_EVENTS	"events"
/* Bumped when the meaning of a command or attribute changes; checked on DAEMON_READY. */
#define MXFS_PROTO_VERSION	1

#define MXFS_NAME_MAX		64	/* lockspace, resource and volume names (without NUL) */
#define MXFS_LVB_MAX		32	/* lock value block bytes */

enum mxfs_cmd {
	MXFS_CMD_UNSPEC = 0,
	MXFS_CMD_LOCK_REQ = 1,		/* k->d: ask the daemon for a cluster lock */
	MXFS_CMD_LOCK_GRANT = 2,	/* d->k: LOCK_REQ granted */
	MXFS_CMD_LOCK_DENY = 3,		/* d->k: LOCK_REQ failed (STATUS = -errno) */
	MXFS_CMD_LOCK_RELEASE = 4,	/* k->d: the kernel dropped a granted lock */
	MXFS_CMD_BAST = 5,		/* d->k: blocking callback: someone wants MODE */
	MXFS_CMD_CACHE_INVAL = 6,	/* d->k: drop cached data of VOLUME/INODE */
	MXFS_CMD_NODE_STATUS = 7,	/* d->k: a cluster node changed state */
	MXFS_CMD_VOLUME_MOUNT = 8,	/* k->d: ask for the right to mount VOLUME */
	MXFS_CMD_VOLUME_UNMOUNT = 9,	/* k->d: VOLUME unmounted, give the right back */
	MXFS_CMD_STATUS_REQ = 10,	/* d->k: ask for counters; answered by STATUS_RESP */
	MXFS_CMD_STATUS_RESP = 11,	/* k->d: reply to STATUS_REQ (same seq) */
	MXFS_CMD_RECOVERY_START = 12,	/* d->k: recovery of NODE_ID on VOLUME started */
	MXFS_CMD_RECOVERY_DONE = 13,	/* d->k: recovery finished (STATUS) */
	MXFS_CMD_DAEMON_READY = 14,	/* d->k: register the sender as the daemon */
	MXFS_CMD_LOCK_LOST = 15,	/* d->k: a granted lock was taken away */
	MXFS_CMD_EVENT = 16,		/* k->mcast: state change (EVENT) */
	MXFS_CMD_VOLUME_REPLY = 17,	/* d->k: reply to VOLUME_MOUNT/UNMOUNT (STATUS) */
	MXFS_CMD_LOCK_CANCEL = 18,	/* k->d: the kernel gave up waiting for REQ_ID */
	__MXFS_CMD_MAX,
};
#define MXFS_CMD_MAX (__MXFS_CMD_MAX - 1)

enum mxfs_attr {
	MXFS_ATTR_UNSPEC = 0,
	MXFS_ATTR_PAD = 1,		/* alignment padding for 64-bit attributes */
	MXFS_ATTR_REQ_ID = 2,		/* u64: kernel request id, echoed by the reply */
	MXFS_ATTR_LOCK_ID = 3,		/* u64: a granted lock (= REQ_ID of its LOCK_REQ) */
	MXFS_ATTR_LOCKSPACE = 4,	/* NUL string <= MXFS_NAME_MAX */
	MXFS_ATTR_RESOURCE = 5,		/* NUL string <= MXFS_NAME_MAX */
	MXFS_ATTR_MODE = 6,		/* u8: NL=0 CR=1 CW=2 PR=3 PW=4 EX=5 */
	MXFS_ATTR_FLAGS = 7,		/* u32: MXFS_LKF_* */
	MXFS_ATTR_STATUS = 8,		/* s32: 0 or -errno */
	MXFS_ATTR_TOKEN = 9,		/* u64: fencing token of the grant */
	MXFS_ATTR_LVB = 10,		/* binary <= MXFS_LVB_MAX */
	MXFS_ATTR_LVB_VALID = 11,	/* u8: 0 or 1 */
	MXFS_ATTR_NODE_ID = 12,		/* u32 */
	MXFS_ATTR_NODE_STATE = 13,	/* u8: MXFS_NODE_* */
	MXFS_ATTR_VOLUME = 14,		/* NUL string <= MXFS_NAME_MAX (volume uuid) */
	MXFS_ATTR_INODE = 15,		/* u64 */
	MXFS_ATTR_PROTO_VERSION = 16,	/* u32: MXFS_PROTO_VERSION */
	MXFS_ATTR_TIMEOUT_MS = 17,	/* u32: how long the kernel waits for the reply */
	MXFS_ATTR_EVENT = 18,		/* u8: MXFS_EVENT_* */
	MXFS_ATTR_DAEMON_PORTID = 19,	/* u32 */
	MXFS_ATTR_STAT_PENDING = 20,	/* u32: requests waiting for the daemon */
	MXFS_ATTR_STAT_HELD = 21,	/* u32: granted locks held by the kernel */
	MXFS_ATTR_STAT_REQUESTS = 22,	/* u64: requests sent to the daemon */
	MXFS_ATTR_STAT_GRANTS = 23,	/* u64 */
	MXFS_ATTR_STAT_DENIES = 24,	/* u64 */
	MXFS_ATTR_STAT_TIMEOUTS = 25,	/* u64: requests the daemon did not answer in time */
	MXFS_ATTR_STAT_DAEMON_LOSSES = 26, /* u64: times the daemon went away */
	MXFS_ATTR_STAT_REJECTED = 27,	/* u64: messages rejected by pre_doit checks */
	__MXFS_ATTR_MAX,
};
#define MXFS_ATTR_MAX (__MXFS_ATTR_MAX - 1)

/* MXFS_ATTR_FLAGS */
#define MXFS_LKF_NOQUEUE	0x1	/* fail at once (-EAGAIN) instead of waiting */
#define MXFS_LKF_ALL		0x1

/* MXFS_ATTR_NODE_STATE */
enum mxfs_node_state {
	MXFS_NODE_UNKNOWN = 0,
	MXFS_NODE_UP = 1,
	MXFS_NODE_DOWN = 2,
	MXFS_NODE_FENCED = 3,
	__MXFS_NODE_STATE_MAX,
};
#define MXFS_NODE_STATE_MAX (__MXFS_NODE_STATE_MAX - 1)

/* MXFS_ATTR_EVENT */
enum mxfs_event {
	MXFS_EVENT_NONE = 0,
	MXFS_EVENT_DAEMON_ATTACHED = 1,
	MXFS_EVENT_DAEMON_DETACHED = 2,
	MXFS_EVENT_REQUEST_TIMEOUT = 3,
	MXFS_EVENT_LOCK_LOST = 4,
	__MXFS_EVENT_MAX,
};
#define MXFS_EVENT_MAX (__MXFS_EVENT_MAX - 1)

/*
 * Per-command attribute sets. MXFS_A() turns an attribute into its bit. The module builds
 * one strict policy per d->k command from its _ALLOWED set (any other attribute is rejected)
 * and checks the _REQUIRED set in pre_doit; the daemon validates k->d messages with the
 * same sets. ALLOWED always includes REQUIRED.
 */
#define MXFS_A(attr)	(1u << (MXFS_ATTR_##attr))

#define MXFS_CMD_LOCK_REQ_REQUIRED	(MXFS_A(REQ_ID) | MXFS_A(LOCKSPACE) | MXFS_A(RESOURCE) | MXFS_A(MODE))
#define MXFS_CMD_LOCK_REQ_ALLOWED	(MXFS_CMD_LOCK_REQ_REQUIRED | MXFS_A(FLAGS) | MXFS_A(TIMEOUT_MS) | MXFS_A(PAD))
#define MXFS_CMD_LOCK_GRANT_REQUIRED	(MXFS_A(REQ_ID) | MXFS_A(MODE) | MXFS_A(TOKEN))
#define MXFS_CMD_LOCK_GRANT_ALLOWED	(MXFS_CMD_LOCK_GRANT_REQUIRED | MXFS_A(LVB) | MXFS_A(LVB_VALID) | MXFS_A(PAD))
#define MXFS_CMD_LOCK_DENY_REQUIRED	(MXFS_A(REQ_ID) | MXFS_A(STATUS))
#define MXFS_CMD_LOCK_DENY_ALLOWED	(MXFS_CMD_LOCK_DENY_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_LOCK_RELEASE_REQUIRED	(MXFS_A(LOCK_ID) | MXFS_A(LOCKSPACE) | MXFS_A(RESOURCE))
#define MXFS_CMD_LOCK_RELEASE_ALLOWED	(MXFS_CMD_LOCK_RELEASE_REQUIRED | MXFS_A(LVB) | MXFS_A(PAD))
#define MXFS_CMD_BAST_REQUIRED		(MXFS_A(LOCK_ID) | MXFS_A(MODE))
#define MXFS_CMD_BAST_ALLOWED		(MXFS_CMD_BAST_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_CACHE_INVAL_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(INODE))
#define MXFS_CMD_CACHE_INVAL_ALLOWED	(MXFS_CMD_CACHE_INVAL_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_NODE_STATUS_REQUIRED	(MXFS_A(NODE_ID) | MXFS_A(NODE_STATE))
#define MXFS_CMD_NODE_STATUS_ALLOWED	(MXFS_CMD_NODE_STATUS_REQUIRED)
#define MXFS_CMD_VOLUME_MOUNT_REQUIRED	(MXFS_A(REQ_ID) | MXFS_A(VOLUME))
#define MXFS_CMD_VOLUME_MOUNT_ALLOWED	(MXFS_CMD_VOLUME_MOUNT_REQUIRED | MXFS_A(TIMEOUT_MS) | MXFS_A(PAD))
#define MXFS_CMD_VOLUME_UNMOUNT_REQUIRED (MXFS_A(REQ_ID) | MXFS_A(VOLUME))
#define MXFS_CMD_VOLUME_UNMOUNT_ALLOWED	(MXFS_CMD_VOLUME_UNMOUNT_REQUIRED | MXFS_A(TIMEOUT_MS) | MXFS_A(PAD))
#define MXFS_CMD_STATUS_REQ_REQUIRED	(0u)
#define MXFS_CMD_STATUS_REQ_ALLOWED	(0u)
#define MXFS_CMD_STATUS_RESP_REQUIRED	(MXFS_A(DAEMON_PORTID) | MXFS_A(STAT_PENDING) | MXFS_A(STAT_HELD) | \
					 MXFS_A(STAT_REQUESTS) | MXFS_A(STAT_GRANTS) | MXFS_A(STAT_DENIES) | \
					 MXFS_A(STAT_TIMEOUTS) | MXFS_A(STAT_DAEMON_LOSSES) | MXFS_A(STAT_REJECTED))
#define MXFS_CMD_STATUS_RESP_ALLOWED	(MXFS_CMD_STATUS_RESP_REQUIRED | MXFS_A(NODE_ID) | MXFS_A(PAD))
#define MXFS_CMD_RECOVERY_START_REQUIRED (MXFS_A(VOLUME) | MXFS_A(NODE_ID))
#define MXFS_CMD_RECOVERY_START_ALLOWED	(MXFS_CMD_RECOVERY_START_REQUIRED)
#define MXFS_CMD_RECOVERY_DONE_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(NODE_ID))
#define MXFS_CMD_RECOVERY_DONE_ALLOWED	(MXFS_CMD_RECOVERY_DONE_REQUIRED | MXFS_A(STATUS))
#define MXFS_CMD_DAEMON_READY_REQUIRED	(MXFS_A(NODE_ID) | MXFS_A(PROTO_VERSION))
#define MXFS_CMD_DAEMON_READY_ALLOWED	(MXFS_CMD_DAEMON_READY_REQUIRED)
#define MXFS_CMD_LOCK_LOST_REQUIRED	(MXFS_A(LOCK_ID) | MXFS_A(STATUS))
#define MXFS_CMD_LOCK_LOST_ALLOWED	(MXFS_CMD_LOCK_LOST_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_EVENT_REQUIRED		(MXFS_A(EVENT))
#define MXFS_CMD_EVENT_ALLOWED		(MXFS_CMD_EVENT_REQUIRED | MXFS_A(NODE_ID) | MXFS_A(DAEMON_PORTID) | \
					 MXFS_A(LOCK_ID) | MXFS_A(STATUS) | MXFS_A(PAD))
#define MXFS_CMD_VOLUME_REPLY_REQUIRED	(MXFS_A(REQ_ID) | MXFS_A(STATUS))
#define MXFS_CMD_VOLUME_REPLY_ALLOWED	(MXFS_CMD_VOLUME_REPLY_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_LOCK_CANCEL_REQUIRED	(MXFS_A(REQ_ID))
#define MXFS_CMD_LOCK_CANCEL_ALLOWED	(MXFS_CMD_LOCK_CANCEL_REQUIRED | MXFS_A(PAD))

#endif /* MXFS_NETLINK_H */
