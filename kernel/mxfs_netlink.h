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
/* Bumped when the meaning of a command or attribute changes; checked on DAEMON_READY.
 * 3: LOCK_CONVERT; LOCK_RELEASE carries the inode LVB; GLOCK_LIST_REQ / GLOCK_INFO.
 * 4: DAEMON_READY may name the port the kernel's messages go to (DAEMON_PORTID): the daemon
 *    sends its requests from another socket, whose acks a burst of kernel messages never drops. */
#define MXFS_PROTO_VERSION	4

#define MXFS_NAME_MAX		64	/* lockspace, resource and volume names (without NUL) */
#define MXFS_LVB_MAX		32	/* lock value block bytes */
/*
 * A kernel volume's stacked disk is "mxfs!<volume>" (/dev/mxfs/<volume> under devtmpfs) and
 * a disk name has DISK_NAME_LEN (32) bytes with its NUL: volume names registered with the
 * kernel have at most 26 bytes of [A-Za-z0-9_.-], not starting with '.' or '-'.
 */
#define MXFS_VOLUME_DEV_NAME_MAX 26

/*
 * Inode locks (the module's lock cache, docs/kernel.md "Inode locks"): every inode of a
 * kernel volume has one cluster lock, in lockspace MXFS_INODE_LOCKSPACE, named
 * "<volume>:<inode number in decimal>" (MXFS_INODE_RESOURCE_FMT), e.g. "data:131".
 * Its lock value block, written by a node giving up EX after it changed the inode:
 *   bytes 0-3   MXFS_INODE_LVB_MAGIC (little endian)
 *   bytes 4-7   MXFS_INODE_LVB_LAYOUT
 *   bytes 8-15  data version: bumped by every EX holder that changed the inode
 *   bytes 16-23 the inode's size when that holder gave the lock up
 */
#define MXFS_INODE_LOCKSPACE	"mxfs-inodes"
#define MXFS_INODE_RESOURCE_FMT	"%s:%llu"
#define MXFS_INODE_LVB_MAGIC	0x5346584d	/* "MXFS" */
#define MXFS_INODE_LVB_LAYOUT	1
#define MXFS_INODE_LVB_LEN	24
/* GLOCK_LIST_REQ: most GLOCK_INFO replies per request (the daemon pages with INODE). */
#define MXFS_GLOCK_LIST_MAX	256

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
	MXFS_CMD_DAEMON_READY = 14,	/* d->k: register the sender (and DAEMON_PORTID) as the daemon */
	MXFS_CMD_LOCK_LOST = 15,	/* d->k: a granted lock was taken away */
	MXFS_CMD_EVENT = 16,		/* k->mcast: state change (EVENT) */
	MXFS_CMD_VOLUME_REPLY = 17,	/* d->k: reply to VOLUME_MOUNT/UNMOUNT (STATUS) */
	MXFS_CMD_LOCK_CANCEL = 18,	/* k->d: the kernel gave up waiting for REQ_ID (lock or volume) */
	MXFS_CMD_VOLUME_REGISTER = 19,	/* d->k: claim DEV, create /dev/mxfs/VOLUME (gate closed) */
	MXFS_CMD_VOLUME_UNREGISTER = 20, /* d->k: remove the stacked disk, release the claim */
	MXFS_CMD_VOLUME_GATE = 21,	/* d->k: open (GENERATION) or close the gate */
	MXFS_CMD_VOLUME_FENCE = 22,	/* d->k: fence VOLUME now (explicit) */
	MXFS_CMD_VOLUME_CLEAR = 23,	/* d->k: a fenced, unmounted VOLUME: gate closed again */
	MXFS_CMD_LEASE_RENEW = 24,	/* d->k: the kernel lease runs until DEADLINE_NS */
	MXFS_CMD_LEASE_LOST = 25,	/* d->k: the lease is lost: fence every open gate */
	MXFS_CMD_VOLUME_STATUS_REQ = 26, /* d->k: LEASE_INFO, then VOLUME_INFO + FENCE_INFO per volume */
	MXFS_CMD_LEASE_INFO = 27,	/* k->d: reply: the kernel lease and the fence bound */
	MXFS_CMD_VOLUME_INFO = 28,	/* k->d: reply: one volume's gate and counters */
	MXFS_CMD_FENCE_INFO = 29,	/* k->d: reply: one recorded fence of VOLUME */
	MXFS_CMD_VOLUME_EVENT = 30,	/* k->d: VOLUME released (last writer closed) or fenced */
	MXFS_CMD_LOCK_CONVERT = 31,	/* k->d: convert granted lock LOCK_ID to MODE; answered by GRANT/DENY */
	MXFS_CMD_GLOCK_LIST_REQ = 32,	/* d->k: the cached inode locks (VOLUME, from INODE); GLOCK_INFO each */
	MXFS_CMD_GLOCK_INFO = 33,	/* k->d: reply: one cached inode lock */
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
	MXFS_ATTR_DEV = 28,		/* u32: a kernel dev_t, major << 20 | minor */
	MXFS_ATTR_GENERATION = 29,	/* u64: ownership generation of a volume */
	MXFS_ATTR_DEADLINE_NS = 30,	/* u64: absolute CLOCK_MONOTONIC time (ns) */
	MXFS_ATTR_GATE = 31,		/* u8: MXFS_GATE_* */
	MXFS_ATTR_FENCE_CAUSE = 32,	/* u8: MXFS_FENCE_* */
	MXFS_ATTR_REASON = 33,		/* NUL string <= MXFS_NAME_MAX, for the log */
	MXFS_ATTR_OPENERS = 34,		/* u32: opens of the stacked device */
	MXFS_ATTR_WRITERS = 35,		/* u32: of which for writing */
	MXFS_ATTR_INFLIGHT = 36,	/* u32: bios forwarded and not completed */
	MXFS_ATTR_INFLIGHT_WRITES = 37,	/* u32: of which writes */
	MXFS_ATTR_REFUSED = 38,		/* u64: write bios failed with EIO by the gate */
	MXFS_ATTR_LEASE_STATE = 39,	/* u8: MXFS_LEASE_* */
	MXFS_ATTR_LEASE_REMAINING_MS = 40, /* u32: time left of a valid lease */
	MXFS_ATTR_LEASE_AGE_MS = 41,	/* u32: time since the last LEASE_RENEW */
	MXFS_ATTR_FENCE_BOUND_MS = 42,	/* u32: lease end -> last write landed or failed */
	MXFS_ATTR_FENCE_TIME_MS = 43,	/* u64: wall clock (ms since the epoch) of a fence */
	MXFS_ATTR_FENCE_DURATION_US = 44, /* u32: fence trigger -> drained and XFS shut down */
	MXFS_ATTR_FENCE_DRAINED = 45,	/* u8: 1 when every write in flight ended within the bound */
	MXFS_ATTR_FENCE_SHUTDOWN = 46,	/* u8: MXFS_SHUTDOWN_* */
	MXFS_ATTR_FENCE_INFLIGHT = 47,	/* u32: writes in flight when the fence began */
	MXFS_ATTR_VOLUME_EVENT = 48,	/* u8: MXFS_VOLEV_* */
	MXFS_ATTR_FENCES = 49,		/* u32: fences of the volume since it was registered */
	MXFS_ATTR_LIMIT = 50,		/* u32: most replies wanted (1..MXFS_GLOCK_LIST_MAX) */
	MXFS_ATTR_GLOCK_STATE = 51,	/* u8: MXFS_GLOCK_* */
	MXFS_ATTR_HOLDERS = 52,		/* u32: tasks using the cached lock now */
	MXFS_ATTR_WAITERS = 53,		/* u32: tasks waiting for it */
	MXFS_ATTR_DEMOTE_MODE = 54,	/* u8: mode a blocking callback asked to leave room for */
	MXFS_ATTR_HITS = 55,		/* u64: acquisitions served by the cache */
	MXFS_ATTR_MISSES = 56,		/* u64: acquisitions that went to the daemon */
	MXFS_ATTR_DATA_VERSION = 57,	/* u64: the inode's data version (LVB) this node knows */
	MXFS_ATTR_GLOCK_TYPE = 58,	/* u8: MXFS_GLT_* */
	MXFS_ATTR_PAGES = 59,		/* u64: the inode's pages in this node's page cache */
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

/* MXFS_ATTR_GATE: what the stacked device lets through. VOLUME_GATE takes CLOSED or OPEN. */
enum mxfs_gate {
	MXFS_GATE_CLOSED = 0,		/* reads only; opens for writing refused (ENOLCK) */
	MXFS_GATE_OPEN = 1,		/* this node owns the volume: writes pass while the lease is valid */
	MXFS_GATE_FENCING = 2,		/* writes refused (EIO), in-flight writes draining */
	MXFS_GATE_FENCED = 3,		/* writes refused until VOLUME_CLEAR */
	__MXFS_GATE_MAX,
};
#define MXFS_GATE_MAX (__MXFS_GATE_MAX - 1)

/* MXFS_ATTR_FENCE_CAUSE */
enum mxfs_fence_cause {
	MXFS_FENCE_NONE = 0,
	MXFS_FENCE_LEASE_EXPIRED = 1,	/* the kernel lease's deadline passed */
	MXFS_FENCE_LEASE_LOST = 2,	/* LEASE_LOST from the daemon */
	MXFS_FENCE_DAEMON_LOST = 3,	/* the daemon's netlink socket was released */
	MXFS_FENCE_EXPLICIT = 4,	/* VOLUME_FENCE from the daemon */
	__MXFS_FENCE_MAX,
};
#define MXFS_FENCE_MAX (__MXFS_FENCE_MAX - 1)

/* MXFS_ATTR_LEASE_STATE */
enum mxfs_lease_state {
	MXFS_LEASE_NONE = 0,		/* never renewed since the module loaded */
	MXFS_LEASE_VALID = 1,
	MXFS_LEASE_EXPIRED = 2,		/* the deadline passed without a renewal */
	MXFS_LEASE_LOST = 3,		/* LEASE_LOST, or the daemon went away */
	__MXFS_LEASE_MAX,
};
#define MXFS_LEASE_MAX (__MXFS_LEASE_MAX - 1)

/* MXFS_ATTR_FENCE_SHUTDOWN: what the fence did to the filesystem on the stacked device */
enum mxfs_shutdown {
	MXFS_SHUTDOWN_NO_FS = 0,	/* nothing mounted on it */
	MXFS_SHUTDOWN_DONE = 1,		/* XFS forced shutdown (xfs_fs_goingdown, no log flush) */
	MXFS_SHUTDOWN_UNAVAILABLE = 2,	/* XFS mounted but xfs_fs_goingdown was not found */
	MXFS_SHUTDOWN_NOT_XFS = 3,	/* another filesystem type is mounted on it */
	__MXFS_SHUTDOWN_MAX,
};
#define MXFS_SHUTDOWN_MAX (__MXFS_SHUTDOWN_MAX - 1)

/* MXFS_ATTR_VOLUME_EVENT */
enum mxfs_volume_event {
	MXFS_VOLEV_NONE = 0,
	MXFS_VOLEV_RELEASED = 1,	/* the last writer closed the device: the gate closed itself */
	MXFS_VOLEV_FENCED = 2,		/* a fence ended (drained or not); FENCE_* describe it */
	__MXFS_VOLEV_MAX,
};
#define MXFS_VOLEV_MAX (__MXFS_VOLEV_MAX - 1)

/* MXFS_ATTR_GLOCK_STATE: what a cached inode lock is doing */
enum mxfs_glock_state {
	MXFS_GLOCK_IDLE = 0,		/* held in its mode (or not held: NL), nothing in flight */
	MXFS_GLOCK_LOCKING = 1,		/* LOCK_REQ in flight */
	MXFS_GLOCK_CONVERTING = 2,	/* LOCK_CONVERT in flight */
	MXFS_GLOCK_DEMOTING = 3,	/* blocking callback: syncing, invalidating, releasing */
	__MXFS_GLOCK_MAX,
};
#define MXFS_GLOCK_MAX (__MXFS_GLOCK_MAX - 1)

/* MXFS_ATTR_GLOCK_TYPE: which per-type operations an inode lock uses */
enum mxfs_glock_type {
	MXFS_GLT_FILE = 0,		/* regular file: page cache written back and invalidated */
	MXFS_GLT_DIR = 1,		/* directory: lock only (XFS caches its blocks itself) */
	MXFS_GLT_OTHER = 2,		/* symlink, device, fifo, socket: lock only */
	__MXFS_GLT_MAX,
};
#define MXFS_GLT_MAX (__MXFS_GLT_MAX - 1)

/*
 * Per-command attribute sets. MXFS_A() turns an attribute into its bit. The module builds
 * one strict policy per d->k command from its _ALLOWED set (any other attribute is rejected)
 * and checks the _REQUIRED set in pre_doit; the daemon validates k->d messages with the
 * same sets. ALLOWED always includes REQUIRED. The sets are 64-bit masks: at most 63 attributes.
 */
#define MXFS_A(attr)	(1ull << (MXFS_ATTR_##attr))

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
#define MXFS_CMD_STATUS_REQ_REQUIRED	(0ull)
#define MXFS_CMD_STATUS_REQ_ALLOWED	(0ull)
#define MXFS_CMD_STATUS_RESP_REQUIRED	(MXFS_A(DAEMON_PORTID) | MXFS_A(STAT_PENDING) | MXFS_A(STAT_HELD) | \
					 MXFS_A(STAT_REQUESTS) | MXFS_A(STAT_GRANTS) | MXFS_A(STAT_DENIES) | \
					 MXFS_A(STAT_TIMEOUTS) | MXFS_A(STAT_DAEMON_LOSSES) | MXFS_A(STAT_REJECTED))
#define MXFS_CMD_STATUS_RESP_ALLOWED	(MXFS_CMD_STATUS_RESP_REQUIRED | MXFS_A(NODE_ID) | MXFS_A(PAD))
#define MXFS_CMD_RECOVERY_START_REQUIRED (MXFS_A(VOLUME) | MXFS_A(NODE_ID))
#define MXFS_CMD_RECOVERY_START_ALLOWED	(MXFS_CMD_RECOVERY_START_REQUIRED)
#define MXFS_CMD_RECOVERY_DONE_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(NODE_ID))
#define MXFS_CMD_RECOVERY_DONE_ALLOWED	(MXFS_CMD_RECOVERY_DONE_REQUIRED | MXFS_A(STATUS))
#define MXFS_CMD_DAEMON_READY_REQUIRED	(MXFS_A(NODE_ID) | MXFS_A(PROTO_VERSION))
#define MXFS_CMD_DAEMON_READY_ALLOWED	(MXFS_CMD_DAEMON_READY_REQUIRED | MXFS_A(DAEMON_PORTID))
#define MXFS_CMD_LOCK_LOST_REQUIRED	(MXFS_A(LOCK_ID) | MXFS_A(STATUS))
#define MXFS_CMD_LOCK_LOST_ALLOWED	(MXFS_CMD_LOCK_LOST_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_EVENT_REQUIRED		(MXFS_A(EVENT))
#define MXFS_CMD_EVENT_ALLOWED		(MXFS_CMD_EVENT_REQUIRED | MXFS_A(NODE_ID) | MXFS_A(DAEMON_PORTID) | \
					 MXFS_A(LOCK_ID) | MXFS_A(STATUS) | MXFS_A(PAD))
#define MXFS_CMD_VOLUME_REPLY_REQUIRED	(MXFS_A(REQ_ID) | MXFS_A(STATUS))
#define MXFS_CMD_VOLUME_REPLY_ALLOWED	(MXFS_CMD_VOLUME_REPLY_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_LOCK_CANCEL_REQUIRED	(MXFS_A(REQ_ID))
#define MXFS_CMD_LOCK_CANCEL_ALLOWED	(MXFS_CMD_LOCK_CANCEL_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_VOLUME_REGISTER_REQUIRED (MXFS_A(VOLUME) | MXFS_A(DEV))
#define MXFS_CMD_VOLUME_REGISTER_ALLOWED (MXFS_CMD_VOLUME_REGISTER_REQUIRED)
#define MXFS_CMD_VOLUME_UNREGISTER_REQUIRED (MXFS_A(VOLUME))
#define MXFS_CMD_VOLUME_UNREGISTER_ALLOWED (MXFS_CMD_VOLUME_UNREGISTER_REQUIRED)
/* GENERATION is required to open (checked by the handler), ignored when closing. */
#define MXFS_CMD_VOLUME_GATE_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(GATE))
#define MXFS_CMD_VOLUME_GATE_ALLOWED	(MXFS_CMD_VOLUME_GATE_REQUIRED | MXFS_A(GENERATION) | MXFS_A(PAD))
#define MXFS_CMD_VOLUME_FENCE_REQUIRED	(MXFS_A(VOLUME))
#define MXFS_CMD_VOLUME_FENCE_ALLOWED	(MXFS_CMD_VOLUME_FENCE_REQUIRED | MXFS_A(REASON))
#define MXFS_CMD_VOLUME_CLEAR_REQUIRED	(MXFS_A(VOLUME))
#define MXFS_CMD_VOLUME_CLEAR_ALLOWED	(MXFS_CMD_VOLUME_CLEAR_REQUIRED)
#define MXFS_CMD_LEASE_RENEW_REQUIRED	(MXFS_A(DEADLINE_NS))
#define MXFS_CMD_LEASE_RENEW_ALLOWED	(MXFS_CMD_LEASE_RENEW_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_LEASE_LOST_REQUIRED	(0ull)
#define MXFS_CMD_LEASE_LOST_ALLOWED	(MXFS_A(REASON))
#define MXFS_CMD_VOLUME_STATUS_REQ_REQUIRED (0ull)
#define MXFS_CMD_VOLUME_STATUS_REQ_ALLOWED (MXFS_A(VOLUME))
#define MXFS_CMD_LEASE_INFO_REQUIRED	(MXFS_A(LEASE_STATE) | MXFS_A(FENCE_BOUND_MS))
#define MXFS_CMD_LEASE_INFO_ALLOWED	(MXFS_CMD_LEASE_INFO_REQUIRED | MXFS_A(LEASE_REMAINING_MS) | \
					 MXFS_A(LEASE_AGE_MS) | MXFS_A(DEADLINE_NS) | MXFS_A(PAD))
#define MXFS_CMD_VOLUME_INFO_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(DEV) | MXFS_A(GATE) | MXFS_A(GENERATION) | \
					 MXFS_A(OPENERS) | MXFS_A(WRITERS) | MXFS_A(INFLIGHT) | \
					 MXFS_A(INFLIGHT_WRITES) | MXFS_A(REFUSED) | MXFS_A(FENCES))
#define MXFS_CMD_VOLUME_INFO_ALLOWED	(MXFS_CMD_VOLUME_INFO_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_FENCE_INFO_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(FENCE_CAUSE) | MXFS_A(GENERATION) | \
					 MXFS_A(FENCE_TIME_MS) | MXFS_A(FENCE_DURATION_US) | MXFS_A(FENCE_DRAINED) | \
					 MXFS_A(FENCE_SHUTDOWN) | MXFS_A(FENCE_INFLIGHT))
#define MXFS_CMD_FENCE_INFO_ALLOWED	(MXFS_CMD_FENCE_INFO_REQUIRED | MXFS_A(PAD))
#define MXFS_CMD_VOLUME_EVENT_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(VOLUME_EVENT) | MXFS_A(GENERATION))
#define MXFS_CMD_VOLUME_EVENT_ALLOWED	(MXFS_CMD_VOLUME_EVENT_REQUIRED | MXFS_A(FENCE_CAUSE) | \
					 MXFS_A(FENCE_TIME_MS) | MXFS_A(FENCE_DURATION_US) | MXFS_A(FENCE_DRAINED) | \
					 MXFS_A(FENCE_SHUTDOWN) | MXFS_A(FENCE_INFLIGHT) | MXFS_A(PAD))

#define MXFS_CMD_LOCK_CONVERT_REQUIRED	(MXFS_A(REQ_ID) | MXFS_A(LOCK_ID) | MXFS_A(MODE))
#define MXFS_CMD_LOCK_CONVERT_ALLOWED	(MXFS_CMD_LOCK_CONVERT_REQUIRED | MXFS_A(FLAGS) | MXFS_A(TIMEOUT_MS) | \
					 MXFS_A(LVB) | MXFS_A(PAD))
#define MXFS_CMD_GLOCK_LIST_REQ_REQUIRED (0ull)
#define MXFS_CMD_GLOCK_LIST_REQ_ALLOWED	(MXFS_A(VOLUME) | MXFS_A(INODE) | MXFS_A(LIMIT) | MXFS_A(PAD))
#define MXFS_CMD_GLOCK_INFO_REQUIRED	(MXFS_A(VOLUME) | MXFS_A(INODE) | MXFS_A(MODE) | MXFS_A(GLOCK_STATE) | \
					 MXFS_A(GLOCK_TYPE) | MXFS_A(HOLDERS) | MXFS_A(WAITERS) | MXFS_A(HITS) | \
					 MXFS_A(MISSES) | MXFS_A(DATA_VERSION) | MXFS_A(PAGES))
#define MXFS_CMD_GLOCK_INFO_ALLOWED	(MXFS_CMD_GLOCK_INFO_REQUIRED | MXFS_A(LOCK_ID) | MXFS_A(DEMOTE_MODE) | \
					 MXFS_A(PAD))

#endif /* MXFS_NETLINK_H */
