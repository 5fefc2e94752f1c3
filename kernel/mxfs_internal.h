/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared by the module's files:
 *   mxfs_main.c     module init/exit, parameters
 *   mxfs_netlink.c  the "mxfs" genetlink family: policies, handlers, sends, daemon tracking
 *   mxfs_request.c  requests waiting for the daemon, and the locks the kernel holds
 *   mxfs_debugfs.c  counters, lock table, and the test hook (debugfs)
 */
#ifndef MXFS_INTERNAL_H
#define MXFS_INTERNAL_H

#include <linux/types.h>
#include <linux/atomic.h>
#include "mxfs_netlink.h"

#define MXFS_MODE_MAX 5

/* Module parameters (mxfs_main.c). */
extern unsigned int mxfs_request_timeout_ms;	/* default wait for a reply */
extern unsigned int mxfs_reply_grace_ms;	/* extra time the daemon gets past TIMEOUT_MS */

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
};
extern struct mxfs_counters mxfs_stats;

/* The registered daemon (mxfs_netlink.c). */
struct mxfs_daemon_info {
	bool attached;
	u32 portid;
	u32 node_id;
	u64 generation;		/* bumped on every attach and detach */
};
void mxfs_daemon_get(struct mxfs_daemon_info *out);

/* Sends (mxfs_netlink.c). Return 0 or -errno. */
int mxfs_nl_send_lock_req(u32 portid, u64 req_id, const char *lockspace, const char *resource,
			  u8 mode, u32 flags, u32 timeout_ms);
int mxfs_nl_send_lock_release(u32 portid, u64 lock_id, const char *lockspace, const char *resource);
int mxfs_nl_send_lock_cancel(u32 portid, u64 req_id);
int mxfs_nl_send_volume(u32 portid, u8 cmd, u64 req_id, const char *volume, u32 timeout_ms);
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
int mxfs_volume(u8 cmd, const char *volume, unsigned int timeout_ms);
/* Called by the netlink handlers; return 0 or -ENOENT when nobody waits for req_id. */
int mxfs_request_complete(u64 req_id, bool lock_reply, int status, u8 mode, u64 token);
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

/* debugfs (mxfs_debugfs.c). */
void mxfs_node_status_record(u32 node_id, u8 state);
void mxfs_debugfs_init(void);
void mxfs_debugfs_exit(void);

const char *mxfs_mode_name(u8 mode);

#endif /* MXFS_INTERNAL_H */
