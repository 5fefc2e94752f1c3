// SPDX-License-Identifier: GPL-2.0
/*
 * The "mxfs" generic netlink family: the only channel between the module and mxfsd.
 *
 * Trust: every op needs CAP_NET_ADMIN (GENL_ADMIN_PERM), and so does joining the "events"
 * group. Each daemon->kernel command has its own strict policy built from the
 * MXFS_CMD_<X>_ALLOWED set of mxfs_netlink.h, so an attribute that does not belong to the
 * command, an out-of-range value, an over-long string or trailing garbage is rejected by
 * the genetlink core before a handler runs. pre_doit then checks the _REQUIRED set and that
 * the sender is the registered daemon (only DAEMON_READY and STATUS_REQ may come from
 * another socket). Commands the kernel only sends have no op: -EOPNOTSUPP.
 *
 * The daemon registers with DAEMON_READY; its portid receives LOCK_REQ & co by unicast.
 * The daemon may send its own requests from a second socket (DAEMON_READY comes from it and
 * names the first in DAEMON_PORTID): acks and replies (genlmsg_reply, netlink_ack) never wait
 * for room, and a burst of kernel messages keeping the first socket's receive buffer full
 * would drop them (issue 11); the second socket receives nothing else. Both ports are the
 * daemon's for pre_doit. A netlink notifier watches NETLINK_URELEASE: when either socket goes
 * away (daemon exit or crash) every pending request fails with -ENOTCONN, the kernel's locks
 * are dropped, and the kernel lease is lost: every open volume gate is fenced (mxfs_lease.c).
 *
 * Volume commands (VOLUME_*, LEASE_*) are handled by mxfs_volume.c and mxfs_lease.c; their
 * replies (LEASE_INFO, VOLUME_INFO, FENCE_INFO) are built here, sent before the ack.
 */
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/spinlock.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include "mxfs_internal.h"

static DEFINE_SPINLOCK(mxfs_daemon_lock);
static struct mxfs_daemon_info mxfs_daemon;
static bool mxfs_family_live;	/* events are only sent while the family is registered */

void mxfs_daemon_get(struct mxfs_daemon_info *out)
{
	spin_lock(&mxfs_daemon_lock);
	*out = mxfs_daemon;
	spin_unlock(&mxfs_daemon_lock);
}

/* ---- policies ---------------------------------------------------------------------- */

/* The type and bounds of every attribute; a command's policy copies its allowed subset. */
static const struct nla_policy mxfs_attr_policy[MXFS_ATTR_MAX + 1] = {
	[MXFS_ATTR_PAD]			= { .type = NLA_BINARY },
	[MXFS_ATTR_REQ_ID]		= { .type = NLA_U64 },
	[MXFS_ATTR_LOCK_ID]		= { .type = NLA_U64 },
	[MXFS_ATTR_LOCKSPACE]		= { .type = NLA_NUL_STRING, .len = MXFS_NAME_MAX },
	[MXFS_ATTR_RESOURCE]		= { .type = NLA_NUL_STRING, .len = MXFS_NAME_MAX },
	[MXFS_ATTR_MODE]		= NLA_POLICY_MAX(NLA_U8, MXFS_MODE_MAX),
	[MXFS_ATTR_FLAGS]		= NLA_POLICY_MASK(NLA_U32, MXFS_LKF_ALL),
	[MXFS_ATTR_STATUS]		= NLA_POLICY_RANGE(NLA_S32, -4095, 0),
	[MXFS_ATTR_TOKEN]		= { .type = NLA_U64 },
	[MXFS_ATTR_LVB]			= { .type = NLA_BINARY, .len = MXFS_LVB_MAX },
	[MXFS_ATTR_LVB_VALID]		= NLA_POLICY_MAX(NLA_U8, 1),
	[MXFS_ATTR_NODE_ID]		= { .type = NLA_U32 },
	[MXFS_ATTR_NODE_STATE]		= NLA_POLICY_MAX(NLA_U8, MXFS_NODE_STATE_MAX),
	[MXFS_ATTR_VOLUME]		= { .type = NLA_NUL_STRING, .len = MXFS_NAME_MAX },
	[MXFS_ATTR_INODE]		= { .type = NLA_U64 },
	[MXFS_ATTR_PROTO_VERSION]	= { .type = NLA_U32 },
	[MXFS_ATTR_TIMEOUT_MS]		= { .type = NLA_U32 },
	[MXFS_ATTR_EVENT]		= NLA_POLICY_MAX(NLA_U8, MXFS_EVENT_MAX),
	[MXFS_ATTR_DAEMON_PORTID]	= { .type = NLA_U32 },
	[MXFS_ATTR_STAT_PENDING]	= { .type = NLA_U32 },
	[MXFS_ATTR_STAT_HELD]		= { .type = NLA_U32 },
	[MXFS_ATTR_STAT_REQUESTS]	= { .type = NLA_U64 },
	[MXFS_ATTR_STAT_GRANTS]		= { .type = NLA_U64 },
	[MXFS_ATTR_STAT_DENIES]		= { .type = NLA_U64 },
	[MXFS_ATTR_STAT_TIMEOUTS]	= { .type = NLA_U64 },
	[MXFS_ATTR_STAT_DAEMON_LOSSES]	= { .type = NLA_U64 },
	[MXFS_ATTR_STAT_REJECTED]	= { .type = NLA_U64 },
	[MXFS_ATTR_DEV]			= { .type = NLA_U32 },
	[MXFS_ATTR_GENERATION]		= { .type = NLA_U64 },
	[MXFS_ATTR_DEADLINE_NS]		= { .type = NLA_U64 },
	[MXFS_ATTR_GATE]		= NLA_POLICY_MAX(NLA_U8, MXFS_GATE_MAX),
	[MXFS_ATTR_FENCE_CAUSE]		= NLA_POLICY_MAX(NLA_U8, MXFS_FENCE_MAX),
	[MXFS_ATTR_REASON]		= { .type = NLA_NUL_STRING, .len = MXFS_NAME_MAX },
	[MXFS_ATTR_OPENERS]		= { .type = NLA_U32 },
	[MXFS_ATTR_WRITERS]		= { .type = NLA_U32 },
	[MXFS_ATTR_INFLIGHT]		= { .type = NLA_U32 },
	[MXFS_ATTR_INFLIGHT_WRITES]	= { .type = NLA_U32 },
	[MXFS_ATTR_REFUSED]		= { .type = NLA_U64 },
	[MXFS_ATTR_LEASE_STATE]		= NLA_POLICY_MAX(NLA_U8, MXFS_LEASE_MAX),
	[MXFS_ATTR_LEASE_REMAINING_MS]	= { .type = NLA_U32 },
	[MXFS_ATTR_LEASE_AGE_MS]	= { .type = NLA_U32 },
	[MXFS_ATTR_FENCE_BOUND_MS]	= { .type = NLA_U32 },
	[MXFS_ATTR_FENCE_TIME_MS]	= { .type = NLA_U64 },
	[MXFS_ATTR_FENCE_DURATION_US]	= { .type = NLA_U32 },
	[MXFS_ATTR_FENCE_DRAINED]	= NLA_POLICY_MAX(NLA_U8, 1),
	[MXFS_ATTR_FENCE_SHUTDOWN]	= NLA_POLICY_MAX(NLA_U8, MXFS_SHUTDOWN_MAX),
	[MXFS_ATTR_FENCE_INFLIGHT]	= { .type = NLA_U32 },
	[MXFS_ATTR_VOLUME_EVENT]	= NLA_POLICY_MAX(NLA_U8, MXFS_VOLEV_MAX),
	[MXFS_ATTR_FENCES]		= { .type = NLA_U32 },
	[MXFS_ATTR_LIMIT]		= { .type = NLA_U32 },
	[MXFS_ATTR_GLOCK_STATE]		= NLA_POLICY_MAX(NLA_U8, MXFS_GLOCK_MAX),
	[MXFS_ATTR_HOLDERS]		= { .type = NLA_U32 },
	[MXFS_ATTR_WAITERS]		= { .type = NLA_U32 },
	[MXFS_ATTR_DEMOTE_MODE]		= NLA_POLICY_MAX(NLA_U8, MXFS_MODE_MAX),
	[MXFS_ATTR_HITS]		= { .type = NLA_U64 },
	[MXFS_ATTR_MISSES]		= { .type = NLA_U64 },
	[MXFS_ATTR_DATA_VERSION]	= { .type = NLA_U64 },
	[MXFS_ATTR_GLOCK_TYPE]		= NLA_POLICY_MAX(NLA_U8, MXFS_GLT_MAX),
	[MXFS_ATTR_PAGES]		= { .type = NLA_U64 },
};

#define MXFS_CMD_SETS(cmd) [MXFS_CMD_##cmd] = { MXFS_CMD_##cmd##_REQUIRED, MXFS_CMD_##cmd##_ALLOWED }

static const struct { u64 required, allowed; } mxfs_cmd_sets[MXFS_CMD_MAX + 1] = {
	MXFS_CMD_SETS(LOCK_REQ), MXFS_CMD_SETS(LOCK_GRANT), MXFS_CMD_SETS(LOCK_DENY),
	MXFS_CMD_SETS(LOCK_RELEASE), MXFS_CMD_SETS(BAST), MXFS_CMD_SETS(CACHE_INVAL),
	MXFS_CMD_SETS(NODE_STATUS), MXFS_CMD_SETS(VOLUME_MOUNT), MXFS_CMD_SETS(VOLUME_UNMOUNT),
	MXFS_CMD_SETS(STATUS_REQ), MXFS_CMD_SETS(STATUS_RESP), MXFS_CMD_SETS(RECOVERY_START),
	MXFS_CMD_SETS(RECOVERY_DONE), MXFS_CMD_SETS(DAEMON_READY), MXFS_CMD_SETS(LOCK_LOST),
	MXFS_CMD_SETS(EVENT), MXFS_CMD_SETS(VOLUME_REPLY), MXFS_CMD_SETS(LOCK_CANCEL),
	MXFS_CMD_SETS(VOLUME_REGISTER), MXFS_CMD_SETS(VOLUME_UNREGISTER), MXFS_CMD_SETS(VOLUME_GATE),
	MXFS_CMD_SETS(VOLUME_FENCE), MXFS_CMD_SETS(VOLUME_CLEAR), MXFS_CMD_SETS(LEASE_RENEW),
	MXFS_CMD_SETS(LEASE_LOST), MXFS_CMD_SETS(VOLUME_STATUS_REQ), MXFS_CMD_SETS(LEASE_INFO),
	MXFS_CMD_SETS(VOLUME_INFO), MXFS_CMD_SETS(FENCE_INFO), MXFS_CMD_SETS(VOLUME_EVENT),
	MXFS_CMD_SETS(LOCK_CONVERT), MXFS_CMD_SETS(GLOCK_LIST_REQ), MXFS_CMD_SETS(GLOCK_INFO),
};

/* Per-command policies; filled from mxfs_attr_policy and the allowed sets at init. A zero
 * entry (NLA_UNSPEC) is "Unsupported attribute" under strict validation. The PAD
 * attribute carries no data and is accepted where allowed. Attributes of other commands
 * are NLA_REJECT. */
static struct nla_policy mxfs_cmd_policy[MXFS_CMD_MAX + 1][MXFS_ATTR_MAX + 1];

static void mxfs_build_policies(void)
{
	static const struct nla_policy reject = { .type = NLA_REJECT };
	int cmd, attr;

	/* struct nla_policy has const members: copy whole entries. */
	for (cmd = 0; cmd <= MXFS_CMD_MAX; cmd++) {
		for (attr = 1; attr <= MXFS_ATTR_MAX; attr++) {
			bool allowed = mxfs_cmd_sets[cmd].allowed & (1ull << attr);

			memcpy(&mxfs_cmd_policy[cmd][attr], allowed ? &mxfs_attr_policy[attr] : &reject,
			       sizeof(reject));
		}
	}
}

/* ---- handlers ---------------------------------------------------------------------- */

static struct genl_family mxfs_family;

static bool mxfs_from_daemon(const struct genl_info *info)
{
	bool ok;

	spin_lock(&mxfs_daemon_lock);
	ok = mxfs_daemon.attached &&
	     (mxfs_daemon.portid == info->snd_portid || mxfs_daemon.req_portid == info->snd_portid);
	spin_unlock(&mxfs_daemon_lock);
	return ok;
}

static int mxfs_pre_doit(const struct genl_ops *ops, struct sk_buff *skb, struct genl_info *info)
{
	u8 cmd = info->genlhdr->cmd;
	u64 required;
	int attr;

	if (cmd > MXFS_CMD_MAX)
		return -EOPNOTSUPP;
	required = mxfs_cmd_sets[cmd].required;
	for (attr = 1; attr <= MXFS_ATTR_MAX; attr++) {
		if ((required & (1ull << attr)) && GENL_REQ_ATTR_CHECK(info, attr)) {
			NL_SET_ERR_MSG(info->extack, "mxfs: missing required attribute");
			atomic64_inc(&mxfs_stats.rejected);
			return -EINVAL;
		}
	}
	/* Status requests are read-only: any CAP_NET_ADMIN socket may ask. */
	if (cmd != MXFS_CMD_DAEMON_READY && cmd != MXFS_CMD_STATUS_REQ && cmd != MXFS_CMD_VOLUME_STATUS_REQ &&
	    cmd != MXFS_CMD_GLOCK_LIST_REQ && !mxfs_from_daemon(info)) {
		NL_SET_ERR_MSG(info->extack, "mxfs: sender is not the registered daemon");
		atomic64_inc(&mxfs_stats.rejected);
		return -EPERM;
	}
	return 0;
}

static int mxfs_stale(struct genl_info *info, int err)
{
	if (err == -ENOENT) {
		atomic64_inc(&mxfs_stats.stale_replies);
		NL_SET_ERR_MSG(info->extack, "mxfs: no such pending request or lock");
	}
	return err;
}

static int mxfs_cmd_daemon_ready(struct sk_buff *skb, struct genl_info *info)
{
	u32 version = nla_get_u32(info->attrs[MXFS_ATTR_PROTO_VERSION]);
	u32 node_id = nla_get_u32(info->attrs[MXFS_ATTR_NODE_ID]);
	/* The kernel's messages go to DAEMON_PORTID (the daemon's other socket) if given. */
	u32 portid = info->attrs[MXFS_ATTR_DAEMON_PORTID] ? nla_get_u32(info->attrs[MXFS_ATTR_DAEMON_PORTID])
							  : info->snd_portid;
	int err = 0;

	if (version != MXFS_PROTO_VERSION) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_PROTO_VERSION],
				    "mxfs: unsupported protocol version");
		return -EPROTONOSUPPORT;
	}
	if (!portid) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_DAEMON_PORTID], "mxfs: port 0 is the kernel's");
		return -EINVAL;
	}
	spin_lock(&mxfs_daemon_lock);
	if (mxfs_daemon.attached && (mxfs_daemon.portid != portid || mxfs_daemon.req_portid != info->snd_portid)) {
		err = -EBUSY;
	} else if (!mxfs_daemon.attached) {
		mxfs_daemon.attached = true;
		mxfs_daemon.portid = portid;
		mxfs_daemon.req_portid = info->snd_portid;
		mxfs_daemon.generation++;
	}
	if (!err)
		mxfs_daemon.node_id = node_id;
	spin_unlock(&mxfs_daemon_lock);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "mxfs: another daemon is registered");
		return err;
	}
	atomic64_inc(&mxfs_stats.daemon_ready);
	pr_info("mxfs: daemon attached (node %u, portid %u, requests from %u)\n", node_id, portid, info->snd_portid);
	mxfs_nl_event(MXFS_EVENT_DAEMON_ATTACHED, 0, 0);
	return 0;
}

static int mxfs_cmd_lock_grant(struct sk_buff *skb, struct genl_info *info)
{
	struct mxfs_lock_result r = {
		.mode = nla_get_u8(info->attrs[MXFS_ATTR_MODE]),
		.token = nla_get_u64(info->attrs[MXFS_ATTR_TOKEN]),
	};

	if (info->attrs[MXFS_ATTR_LVB]) {
		r.lvb_len = nla_len(info->attrs[MXFS_ATTR_LVB]);
		memcpy(r.lvb, nla_data(info->attrs[MXFS_ATTR_LVB]), r.lvb_len);	/* <= MXFS_LVB_MAX: policy */
		r.lvb_valid = info->attrs[MXFS_ATTR_LVB_VALID] ? nla_get_u8(info->attrs[MXFS_ATTR_LVB_VALID]) : 1;
	}
	return mxfs_stale(info, mxfs_request_complete(nla_get_u64(info->attrs[MXFS_ATTR_REQ_ID]), true, &r));
}

static int mxfs_cmd_lock_deny(struct sk_buff *skb, struct genl_info *info)
{
	s32 status = nla_get_s32(info->attrs[MXFS_ATTR_STATUS]);

	if (status == 0) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_STATUS],
				    "mxfs: a denial needs a negative errno");
		return -EINVAL;
	}
	return mxfs_stale(info, mxfs_request_complete(nla_get_u64(info->attrs[MXFS_ATTR_REQ_ID]), true,
						      &(struct mxfs_lock_result){ .status = status }));
}

static int mxfs_cmd_volume_reply(struct sk_buff *skb, struct genl_info *info)
{
	return mxfs_stale(info, mxfs_request_complete(nla_get_u64(info->attrs[MXFS_ATTR_REQ_ID]), false,
						      &(struct mxfs_lock_result){
							.status = nla_get_s32(info->attrs[MXFS_ATTR_STATUS]) }));
}

static int mxfs_cmd_bast(struct sk_buff *skb, struct genl_info *info)
{
	return mxfs_stale(info, mxfs_lock_bast(nla_get_u64(info->attrs[MXFS_ATTR_LOCK_ID]),
					       nla_get_u8(info->attrs[MXFS_ATTR_MODE])));
}

static int mxfs_cmd_lock_lost(struct sk_buff *skb, struct genl_info *info)
{
	return mxfs_stale(info, mxfs_lock_lost(nla_get_u64(info->attrs[MXFS_ATTR_LOCK_ID]),
					       nla_get_s32(info->attrs[MXFS_ATTR_STATUS])));
}

/* No inode hooks yet (a later issue): count, so tests can see the message arrived. */
static int mxfs_cmd_cache_inval(struct sk_buff *skb, struct genl_info *info)
{
	atomic64_inc(&mxfs_stats.cache_invals);
	return 0;
}

static int mxfs_cmd_node_status(struct sk_buff *skb, struct genl_info *info)
{
	atomic64_inc(&mxfs_stats.node_status);
	mxfs_node_status_record(nla_get_u32(info->attrs[MXFS_ATTR_NODE_ID]),
				nla_get_u8(info->attrs[MXFS_ATTR_NODE_STATE]));
	return 0;
}

static int mxfs_cmd_recovery(struct sk_buff *skb, struct genl_info *info)
{
	atomic64_inc(&mxfs_stats.recoveries);
	return 0;
}

static int mxfs_cmd_status_req(struct sk_buff *skb, struct genl_info *info)
{
	struct mxfs_daemon_info d;
	struct sk_buff *msg;
	void *hdr;

	mxfs_daemon_get(&d);
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &mxfs_family, 0, MXFS_CMD_STATUS_RESP);
	if (!hdr)
		goto nospace;
	if (nla_put_u32(msg, MXFS_ATTR_DAEMON_PORTID, d.attached ? d.portid : 0) ||
	    (d.attached && nla_put_u32(msg, MXFS_ATTR_NODE_ID, d.node_id)) ||
	    nla_put_u32(msg, MXFS_ATTR_STAT_PENDING, mxfs_requests_pending()) ||
	    nla_put_u32(msg, MXFS_ATTR_STAT_HELD, mxfs_locks_held()) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_STAT_REQUESTS, atomic64_read(&mxfs_stats.requests), MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_STAT_GRANTS, atomic64_read(&mxfs_stats.grants), MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_STAT_DENIES, atomic64_read(&mxfs_stats.denies), MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_STAT_TIMEOUTS, atomic64_read(&mxfs_stats.timeouts), MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_STAT_DAEMON_LOSSES, atomic64_read(&mxfs_stats.daemon_losses),
			      MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_STAT_REJECTED, atomic64_read(&mxfs_stats.rejected), MXFS_ATTR_PAD))
		goto nospace;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
nospace:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

/* ---- volumes and the kernel lease -------------------------------------------------- */

static int mxfs_put_lease_info(struct sk_buff *msg, const void *unused)
{
	struct mxfs_lease_info l;

	mxfs_lease_get(&l);
	if (nla_put_u8(msg, MXFS_ATTR_LEASE_STATE, l.state) ||
	    nla_put_u32(msg, MXFS_ATTR_FENCE_BOUND_MS, mxfs_fence_bound_ms()))
		return -EMSGSIZE;
	if (l.state == MXFS_LEASE_VALID &&
	    nla_put_u32(msg, MXFS_ATTR_LEASE_REMAINING_MS, (u32)min_t(u64, l.remaining_ns / NSEC_PER_MSEC, U32_MAX)))
		return -EMSGSIZE;
	if (l.renewed &&
	    (nla_put_u32(msg, MXFS_ATTR_LEASE_AGE_MS, (u32)min_t(u64, l.age_ns / NSEC_PER_MSEC, U32_MAX)) ||
	     nla_put_u64_64bit(msg, MXFS_ATTR_DEADLINE_NS, l.deadline_ns, MXFS_ATTR_PAD)))
		return -EMSGSIZE;
	return 0;
}

static int mxfs_put_volume_info(struct sk_buff *msg, const void *arg)
{
	const struct mxfs_vol_info *vi = arg;

	if (nla_put_string(msg, MXFS_ATTR_VOLUME, vi->name) ||
	    nla_put_u32(msg, MXFS_ATTR_DEV, vi->dev) ||
	    nla_put_u8(msg, MXFS_ATTR_GATE, vi->gate) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_GENERATION, vi->generation, MXFS_ATTR_PAD) ||
	    nla_put_u32(msg, MXFS_ATTR_OPENERS, vi->openers) ||
	    nla_put_u32(msg, MXFS_ATTR_WRITERS, vi->writers) ||
	    nla_put_u32(msg, MXFS_ATTR_INFLIGHT, vi->inflight) ||
	    nla_put_u32(msg, MXFS_ATTR_INFLIGHT_WRITES, vi->inflight_writes) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_REFUSED, vi->refused, MXFS_ATTR_PAD) ||
	    nla_put_u32(msg, MXFS_ATTR_FENCES, vi->fences))
		return -EMSGSIZE;
	return 0;
}

static int mxfs_put_fence_rec(struct sk_buff *msg, const struct mxfs_fence_rec *r)
{
	if (nla_put_u8(msg, MXFS_ATTR_FENCE_CAUSE, r->cause) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_FENCE_TIME_MS, r->time_ms, MXFS_ATTR_PAD) ||
	    nla_put_u32(msg, MXFS_ATTR_FENCE_DURATION_US, r->duration_us) ||
	    nla_put_u8(msg, MXFS_ATTR_FENCE_DRAINED, r->drained) ||
	    nla_put_u8(msg, MXFS_ATTR_FENCE_SHUTDOWN, r->shutdown) ||
	    nla_put_u32(msg, MXFS_ATTR_FENCE_INFLIGHT, r->inflight))
		return -EMSGSIZE;
	return 0;
}

struct mxfs_fence_info_arg {
	const char *volume;
	const struct mxfs_fence_rec *rec;
};

static int mxfs_put_fence_info(struct sk_buff *msg, const void *arg)
{
	const struct mxfs_fence_info_arg *f = arg;

	if (nla_put_string(msg, MXFS_ATTR_VOLUME, f->volume) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_GENERATION, f->rec->generation, MXFS_ATTR_PAD))
		return -EMSGSIZE;
	return mxfs_put_fence_rec(msg, f->rec);
}

/* One reply message (same seq as the request; it arrives before the ack). */
static int mxfs_reply(struct genl_info *info, u8 cmd, int (*fill)(struct sk_buff *, const void *), const void *arg)
{
	struct sk_buff *msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	void *hdr;
	int err;

	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &mxfs_family, 0, cmd);
	err = hdr ? fill(msg, arg) : -EMSGSIZE;
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	genlmsg_end(msg, hdr);
	err = genlmsg_reply(msg, info);
	if (err)
		atomic64_inc(&mxfs_stats.reply_failures);
	return err;
}

static int mxfs_reply_volume(const struct mxfs_vol_info *vi, void *arg)
{
	struct genl_info *info = arg;
	struct mxfs_fence_info_arg f = { .volume = vi->name };
	unsigned int i;
	int err = mxfs_reply(info, MXFS_CMD_VOLUME_INFO, mxfs_put_volume_info, vi);

	for (i = 0; !err && i < vi->nrec; i++) {
		f.rec = &vi->rec[i];
		err = mxfs_reply(info, MXFS_CMD_FENCE_INFO, mxfs_put_fence_info, &f);
	}
	return err;
}

/* After a volume command succeeded: the volume as it is now. */
static int mxfs_reply_volume_state(struct genl_info *info, const char *name)
{
	return mxfs_volumes_for_each(name, mxfs_reply_volume, info);
}

/* The volume code's reasons are string literals (static storage), as extack messages must be. */
static void mxfs_extack_why(struct genl_info *info, const char *why)
{
	if (info->extack && why)
		info->extack->_msg = why;
}

static int mxfs_volume_done(struct genl_info *info, const char *name, int err, const char *why)
{
	if (err == -ENOENT)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_VOLUME], "mxfs: no such volume");
	else if (err)
		mxfs_extack_why(info, why);
	return err ? err : mxfs_reply_volume_state(info, name);
}

static int mxfs_cmd_volume_register(struct sk_buff *skb, struct genl_info *info)
{
	const char *name = nla_data(info->attrs[MXFS_ATTR_VOLUME]);
	const char *why = NULL;
	int err = mxfs_volume_register(name, (dev_t)nla_get_u32(info->attrs[MXFS_ATTR_DEV]), &why);

	if (err == -EINVAL)
		NL_SET_BAD_ATTR(info->extack, info->attrs[MXFS_ATTR_VOLUME]);
	return mxfs_volume_done(info, name, err == -ENOENT ? -ENODEV : err, why);
}

static int mxfs_cmd_volume_unregister(struct sk_buff *skb, struct genl_info *info)
{
	const char *why = NULL;
	int err = mxfs_volume_unregister(nla_data(info->attrs[MXFS_ATTR_VOLUME]), &why);

	if (err == -ENOENT)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_VOLUME], "mxfs: no such volume");
	else if (err)
		mxfs_extack_why(info, why);
	return err;
}

static int mxfs_cmd_volume_gate(struct sk_buff *skb, struct genl_info *info)
{
	const char *name = nla_data(info->attrs[MXFS_ATTR_VOLUME]);
	u8 gate = nla_get_u8(info->attrs[MXFS_ATTR_GATE]);
	const char *why = NULL;
	u64 generation = 0;
	int err;

	if (gate != MXFS_GATE_OPEN && gate != MXFS_GATE_CLOSED) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_GATE], "mxfs: a gate is opened or closed");
		return -EINVAL;
	}
	if (gate == MXFS_GATE_OPEN) {
		if (!info->attrs[MXFS_ATTR_GENERATION]) {
			NL_SET_ERR_MSG(info->extack, "mxfs: opening a gate needs the ownership GENERATION");
			return -EINVAL;
		}
		generation = nla_get_u64(info->attrs[MXFS_ATTR_GENERATION]);
	}
	err = mxfs_volume_gate(name, gate == MXFS_GATE_OPEN ? MXFS_GATE_OP_OPEN : MXFS_GATE_OP_CLOSE, generation, &why);
	return mxfs_volume_done(info, name, err, why);
}

static int mxfs_cmd_volume_fence(struct sk_buff *skb, struct genl_info *info)
{
	const char *name = nla_data(info->attrs[MXFS_ATTR_VOLUME]);

	if (info->attrs[MXFS_ATTR_REASON])
		pr_warn("mxfs: volume %s: fence asked by the daemon: %s\n", name,
			(const char *)nla_data(info->attrs[MXFS_ATTR_REASON]));
	return mxfs_volume_done(info, name, mxfs_volume_fence(name), NULL);
}

static int mxfs_cmd_volume_clear(struct sk_buff *skb, struct genl_info *info)
{
	const char *name = nla_data(info->attrs[MXFS_ATTR_VOLUME]);
	const char *why = NULL;
	int err = mxfs_volume_gate(name, MXFS_GATE_OP_CLEAR, 0, &why);	/* before `why` is read */

	return mxfs_volume_done(info, name, err, why);
}

static int mxfs_cmd_lease_renew(struct sk_buff *skb, struct genl_info *info)
{
	mxfs_lease_renew(nla_get_u64(info->attrs[MXFS_ATTR_DEADLINE_NS]));
	atomic64_inc(&mxfs_stats.lease_renewals);
	return mxfs_reply(info, MXFS_CMD_LEASE_INFO, mxfs_put_lease_info, NULL);
}

static int mxfs_cmd_lease_lost(struct sk_buff *skb, struct genl_info *info)
{
	mxfs_lease_lost(MXFS_FENCE_LEASE_LOST, info->attrs[MXFS_ATTR_REASON] ?
			(const char *)nla_data(info->attrs[MXFS_ATTR_REASON]) : "told by the daemon");
	return mxfs_reply(info, MXFS_CMD_LEASE_INFO, mxfs_put_lease_info, NULL);
}

static int mxfs_cmd_volume_status(struct sk_buff *skb, struct genl_info *info)
{
	const char *name = info->attrs[MXFS_ATTR_VOLUME] ? nla_data(info->attrs[MXFS_ATTR_VOLUME]) : NULL;
	int err = mxfs_reply(info, MXFS_CMD_LEASE_INFO, mxfs_put_lease_info, NULL);

	if (err)
		return err;
	err = mxfs_volumes_for_each(name, mxfs_reply_volume, info);
	if (err == -ENOENT)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_VOLUME], "mxfs: no such volume");
	return err;
}

/* ---- the inode lock cache ---------------------------------------------------------- */

static int mxfs_put_glock_info(struct sk_buff *msg, const void *arg)
{
	const struct mxfs_glock_info *g = arg;

	if (nla_put_string(msg, MXFS_ATTR_VOLUME, g->volume) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_INODE, g->ino, MXFS_ATTR_PAD) ||
	    nla_put_u8(msg, MXFS_ATTR_MODE, g->mode) ||
	    nla_put_u8(msg, MXFS_ATTR_GLOCK_STATE, g->state) ||
	    nla_put_u8(msg, MXFS_ATTR_GLOCK_TYPE, g->type) ||
	    nla_put_u32(msg, MXFS_ATTR_HOLDERS, g->holders) ||
	    nla_put_u32(msg, MXFS_ATTR_WAITERS, g->waiters) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_HITS, g->hits, MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_MISSES, g->misses, MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_DATA_VERSION, g->data_version, MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, MXFS_ATTR_PAGES, g->pages, MXFS_ATTR_PAD) ||
	    (g->lock_id && nla_put_u64_64bit(msg, MXFS_ATTR_LOCK_ID, g->lock_id, MXFS_ATTR_PAD)) ||
	    (g->demote_mode >= 0 && nla_put_u8(msg, MXFS_ATTR_DEMOTE_MODE, g->demote_mode)))
		return -EMSGSIZE;
	return 0;
}

/* GLOCK_INFO for up to LIMIT cached inode locks (of VOLUME, from INODE on), then the ack. */
static int mxfs_cmd_glock_list(struct sk_buff *skb, struct genl_info *info)
{
	const char *volume = info->attrs[MXFS_ATTR_VOLUME] ? nla_data(info->attrs[MXFS_ATTR_VOLUME]) : NULL;
	u64 from = info->attrs[MXFS_ATTR_INODE] ? nla_get_u64(info->attrs[MXFS_ATTR_INODE]) : 0;
	u32 limit = info->attrs[MXFS_ATTR_LIMIT] ? nla_get_u32(info->attrs[MXFS_ATTR_LIMIT]) : MXFS_GLOCK_LIST_MAX;
	struct mxfs_glock_info *out;
	unsigned int n, i;
	int err = 0;

	if (limit < 1 || limit > MXFS_GLOCK_LIST_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MXFS_ATTR_LIMIT], "mxfs: LIMIT must be 1..256");
		return -ERANGE;
	}
	out = kvmalloc_array(limit, sizeof(*out), GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	n = mxfs_glocks_list(volume, from, out, limit);
	for (i = 0; i < n && !err; i++)
		err = mxfs_reply(info, MXFS_CMD_GLOCK_INFO, mxfs_put_glock_info, &out[i]);
	kvfree(out);
	return err;
}

#define MXFS_OP(name, fn) {						\
	.cmd = MXFS_CMD_##name,						\
	.doit = fn,							\
	.flags = GENL_ADMIN_PERM,					\
	.policy = mxfs_cmd_policy[MXFS_CMD_##name],			\
	.maxattr = MXFS_ATTR_MAX,					\
}

static const struct genl_ops mxfs_ops[] = {
	MXFS_OP(LOCK_GRANT, mxfs_cmd_lock_grant),
	MXFS_OP(LOCK_DENY, mxfs_cmd_lock_deny),
	MXFS_OP(BAST, mxfs_cmd_bast),
	MXFS_OP(CACHE_INVAL, mxfs_cmd_cache_inval),
	MXFS_OP(NODE_STATUS, mxfs_cmd_node_status),
	MXFS_OP(STATUS_REQ, mxfs_cmd_status_req),
	MXFS_OP(RECOVERY_START, mxfs_cmd_recovery),
	MXFS_OP(RECOVERY_DONE, mxfs_cmd_recovery),
	MXFS_OP(DAEMON_READY, mxfs_cmd_daemon_ready),
	MXFS_OP(LOCK_LOST, mxfs_cmd_lock_lost),
	MXFS_OP(VOLUME_REPLY, mxfs_cmd_volume_reply),
	MXFS_OP(VOLUME_REGISTER, mxfs_cmd_volume_register),
	MXFS_OP(VOLUME_UNREGISTER, mxfs_cmd_volume_unregister),
	MXFS_OP(VOLUME_GATE, mxfs_cmd_volume_gate),
	MXFS_OP(VOLUME_FENCE, mxfs_cmd_volume_fence),
	MXFS_OP(VOLUME_CLEAR, mxfs_cmd_volume_clear),
	MXFS_OP(LEASE_RENEW, mxfs_cmd_lease_renew),
	MXFS_OP(LEASE_LOST, mxfs_cmd_lease_lost),
	MXFS_OP(VOLUME_STATUS_REQ, mxfs_cmd_volume_status),
	MXFS_OP(GLOCK_LIST_REQ, mxfs_cmd_glock_list),
};

static const struct genl_multicast_group mxfs_mcgrps[] = {
	{ .name = MXFS_GENL_MCGRP_EVENTS, .flags = GENL_MCAST_CAP_NET_ADMIN },
};

static struct genl_family mxfs_family = {
	.name = MXFS_GENL_NAME,
	.version = MXFS_GENL_VERSION,
	.maxattr = MXFS_ATTR_MAX,
	.module = THIS_MODULE,
	.ops = mxfs_ops,
	.n_ops = ARRAY_SIZE(mxfs_ops),
	.mcgrps = mxfs_mcgrps,
	.n_mcgrps = ARRAY_SIZE(mxfs_mcgrps),
	.pre_doit = mxfs_pre_doit,
	.resv_start_op = 0,	/* validate the reserved header field of every command */
};

/* ---- sends ------------------------------------------------------------------------- */

static struct sk_buff *mxfs_msg_new(u8 cmd, void **hdr, gfp_t gfp)
{
	struct sk_buff *skb = genlmsg_new(NLMSG_DEFAULT_SIZE, gfp);

	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &mxfs_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(skb);
		return NULL;
	}
	return skb;
}

/* jiffies when the daemon's receive buffer last took a message (mxfs_unicast). */
static unsigned long mxfs_send_progress;

/*
 * genlmsg_unicast never waits: while the daemon's receive buffer is full it drops the message
 * with -EAGAIN. A burst fills it: drop_caches or the shrinker demoting thousands of cached inode
 * locks sends as many LOCK_RELEASEs (of the benchmark's 300 cold opens after a drop_caches, one
 * failed with EIO, its LOCK_REQ sent but never answered). A lost release leaks the lock in the
 * DLM (this node's next request for that inode then waits for its own leaked lock), a lost
 * request fails an operation with EIO. Every caller is in process context (GFP_KERNEL
 * messages), so the send waits for the daemon to drain its buffer and tries again with a copy,
 * and not for a task being killed. It gives up only when the daemon took nothing for
 * request_timeout_ms: neither this message nor any other since then (a stopped daemon must
 * not hold its callers forever: its lease fences the volumes meanwhile). A daemon that drains
 * slowly is waited for: with a per-message bound, a burst of a thousand releases behind a
 * daemon taking each in tens of ms (a loaded VM) lost the unlucky ones (hooks/shrinker-pressure
 * found 175 lost). Best-effort events (!wait: the fence path sends one) are tried once.
 *
 * No send getting through does not mean the daemon takes nothing: once a send found the
 * buffer full, netlink refuses every later one until the daemon has emptied its queue
 * (NETLINK_S_CONGESTED), which took 20-30 s for ~550 releases in a loaded TCG VM; with the
 * bound alone, senders gave up on a daemon that was draining (8 releases lost in a burst of
 * 4000, issue 11). So a daemon that keeps the kernel lease valid (its renewals come from its
 * request socket, whatever the channel's state) is waited for; a stopped one stops renewing.
 *
 * Bulk messages nobody waits for (LOCK_RELEASE, LOCK_CANCEL) poll one sender at a time
 * (mxfs_send_mutex); the others sleep on the mutex, killable. A burst of thousands of demotes
 * has up to max_active work items sending at once: each polling every 10 ms kept a 2-vCPU VM's
 * CPUs busy with failed sends (issue 11). Requests a task waits for (LOCK_REQ, LOCK_CONVERT,
 * VOLUME_*) poll on their own: behind the mutex they waited for the whole burst and timed out
 * (hooks/send-retry). The first try is made without the mutex, so a buffer with room costs
 * nothing more.
 */
static DEFINE_MUTEX(mxfs_send_mutex);

static int mxfs_unicast_try(struct sk_buff *skb, u32 portid)
{
	struct sk_buff *copy = skb_clone(skb, GFP_KERNEL);
	int err = copy ? genlmsg_unicast(&init_net, copy, portid) : -ENOMEM;	/* consumes copy */

	if (!err)
		WRITE_ONCE(mxfs_send_progress, jiffies);
	return err;
}

static int mxfs_unicast(struct sk_buff *skb, void *hdr, u32 portid, bool wait, bool bulk)
{
	unsigned long start = jiffies, bound = msecs_to_jiffies(READ_ONCE(mxfs_request_timeout_ms)), last;
	unsigned int delay_us = 50;
	int err;

	genlmsg_end(skb, hdr);
	err = mxfs_unicast_try(skb, portid);
	if (err == -EAGAIN && wait && (!bulk || !mutex_lock_killable(&mxfs_send_mutex))) {
		for (;;) {
			err = mxfs_unicast_try(skb, portid);
			if (err != -EAGAIN || fatal_signal_pending(current))
				break;
			last = READ_ONCE(mxfs_send_progress);
			if (time_after(jiffies, (time_after(last, start) ? last : start) + bound) &&
			    !mxfs_lease_valid_now())
				break;	/* the daemon took nothing for the bound and renews no lease */
			atomic64_inc(&mxfs_stats.send_waits);
			usleep_range(delay_us, 2 * delay_us);
			delay_us = min(2 * delay_us, 10000u);
		}
		if (bulk)
			mutex_unlock(&mxfs_send_mutex);
	}
	if (err)
		atomic64_inc(&mxfs_stats.send_failures);
	nlmsg_free(skb);
	return err;
}

int mxfs_nl_send_lock_req(u32 portid, u64 req_id, const char *lockspace, const char *resource,
			  u8 mode, u32 flags, u32 timeout_ms)
{
	void *hdr;
	struct sk_buff *skb = mxfs_msg_new(MXFS_CMD_LOCK_REQ, &hdr, GFP_KERNEL);

	if (!skb)
		return -ENOMEM;
	if (nla_put_u64_64bit(skb, MXFS_ATTR_REQ_ID, req_id, MXFS_ATTR_PAD) ||
	    nla_put_string(skb, MXFS_ATTR_LOCKSPACE, lockspace) ||
	    nla_put_string(skb, MXFS_ATTR_RESOURCE, resource) ||
	    nla_put_u8(skb, MXFS_ATTR_MODE, mode) ||
	    nla_put_u32(skb, MXFS_ATTR_FLAGS, flags) ||
	    nla_put_u32(skb, MXFS_ATTR_TIMEOUT_MS, timeout_ms)) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	return mxfs_unicast(skb, hdr, portid, true, false);
}

int mxfs_nl_send_lock_release(u32 portid, u64 lock_id, const char *lockspace, const char *resource,
			      const u8 *lvb, unsigned int lvb_len)
{
	void *hdr;
	struct sk_buff *skb = mxfs_msg_new(MXFS_CMD_LOCK_RELEASE, &hdr, GFP_KERNEL);

	if (!skb)
		return -ENOMEM;
	if (nla_put_u64_64bit(skb, MXFS_ATTR_LOCK_ID, lock_id, MXFS_ATTR_PAD) ||
	    nla_put_string(skb, MXFS_ATTR_LOCKSPACE, lockspace) ||
	    nla_put_string(skb, MXFS_ATTR_RESOURCE, resource) ||
	    (lvb_len && nla_put(skb, MXFS_ATTR_LVB, lvb_len, lvb))) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	return mxfs_unicast(skb, hdr, portid, true, true);
}

int mxfs_nl_send_lock_convert(u32 portid, u64 req_id, u64 lock_id, u8 mode, u32 flags, u32 timeout_ms,
			      const u8 *lvb, unsigned int lvb_len)
{
	void *hdr;
	struct sk_buff *skb = mxfs_msg_new(MXFS_CMD_LOCK_CONVERT, &hdr, GFP_KERNEL);

	if (!skb)
		return -ENOMEM;
	if (nla_put_u64_64bit(skb, MXFS_ATTR_REQ_ID, req_id, MXFS_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MXFS_ATTR_LOCK_ID, lock_id, MXFS_ATTR_PAD) ||
	    nla_put_u8(skb, MXFS_ATTR_MODE, mode) ||
	    nla_put_u32(skb, MXFS_ATTR_FLAGS, flags) ||
	    nla_put_u32(skb, MXFS_ATTR_TIMEOUT_MS, timeout_ms) ||
	    (lvb_len && nla_put(skb, MXFS_ATTR_LVB, lvb_len, lvb))) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	return mxfs_unicast(skb, hdr, portid, true, false);
}

int mxfs_nl_send_lock_cancel(u32 portid, u64 req_id)
{
	void *hdr;
	struct sk_buff *skb = mxfs_msg_new(MXFS_CMD_LOCK_CANCEL, &hdr, GFP_KERNEL);

	if (!skb)
		return -ENOMEM;
	if (nla_put_u64_64bit(skb, MXFS_ATTR_REQ_ID, req_id, MXFS_ATTR_PAD)) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	return mxfs_unicast(skb, hdr, portid, true, true);
}

int mxfs_nl_send_volume(u32 portid, u8 cmd, u64 req_id, const char *volume, u32 timeout_ms)
{
	void *hdr;
	struct sk_buff *skb = mxfs_msg_new(cmd, &hdr, GFP_KERNEL);

	if (!skb)
		return -ENOMEM;
	if (nla_put_u64_64bit(skb, MXFS_ATTR_REQ_ID, req_id, MXFS_ATTR_PAD) ||
	    nla_put_string(skb, MXFS_ATTR_VOLUME, volume) ||
	    nla_put_u32(skb, MXFS_ATTR_TIMEOUT_MS, timeout_ms)) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	return mxfs_unicast(skb, hdr, portid, true, false);
}

/* Best effort: a daemon that is not there learns the state from VOLUME_STATUS_REQ. */
void mxfs_nl_volume_event(const char *volume, u8 event, u64 generation, const struct mxfs_fence_rec *rec)
{
	struct mxfs_daemon_info d;
	struct sk_buff *skb;
	void *hdr;

	mxfs_daemon_get(&d);
	if (!READ_ONCE(mxfs_family_live) || !d.attached)
		return;
	skb = mxfs_msg_new(MXFS_CMD_VOLUME_EVENT, &hdr, GFP_KERNEL);
	if (!skb)
		return;
	if (nla_put_string(skb, MXFS_ATTR_VOLUME, volume) ||
	    nla_put_u8(skb, MXFS_ATTR_VOLUME_EVENT, event) ||
	    nla_put_u64_64bit(skb, MXFS_ATTR_GENERATION, generation, MXFS_ATTR_PAD) ||
	    (rec && mxfs_put_fence_rec(skb, rec))) {
		nlmsg_free(skb);
		return;
	}
	if (mxfs_unicast(skb, hdr, d.portid, false, false))
		pr_warn_ratelimited("mxfs: volume %s: event %u not delivered to the daemon\n", volume, event);
}

/* Best effort: nobody listening (-ESRCH) or no memory only loses an event. */
void mxfs_nl_event(u8 event, u64 lock_id, s32 status)
{
	struct mxfs_daemon_info d;
	void *hdr;
	struct sk_buff *skb;

	if (!READ_ONCE(mxfs_family_live))
		return;
	skb = mxfs_msg_new(MXFS_CMD_EVENT, &hdr, GFP_ATOMIC);
	if (!skb)
		return;
	mxfs_daemon_get(&d);
	if (nla_put_u8(skb, MXFS_ATTR_EVENT, event) ||
	    nla_put_u32(skb, MXFS_ATTR_DAEMON_PORTID, d.attached ? d.portid : 0) ||
	    (lock_id && nla_put_u64_64bit(skb, MXFS_ATTR_LOCK_ID, lock_id, MXFS_ATTR_PAD)) ||
	    (status && nla_put_s32(skb, MXFS_ATTR_STATUS, status))) {
		nlmsg_free(skb);
		return;
	}
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&mxfs_family, skb, 0, 0, GFP_ATOMIC);
}

/* ---- daemon death ------------------------------------------------------------------ */

static void mxfs_daemon_detach(const char *why)
{
	bool was;
	u32 portid;

	spin_lock(&mxfs_daemon_lock);
	was = mxfs_daemon.attached;
	portid = mxfs_daemon.portid;
	mxfs_daemon.attached = false;
	mxfs_daemon.portid = 0;
	mxfs_daemon.req_portid = 0;
	if (was)
		mxfs_daemon.generation++;
	spin_unlock(&mxfs_daemon_lock);
	if (!was)
		return;
	atomic64_inc(&mxfs_stats.daemon_losses);
	pr_warn("mxfs: daemon detached (portid %u): %s\n", portid, why);
	/* Nobody renews the kernel lease any more: the open gates are fenced now. */
	mxfs_lease_lost(MXFS_FENCE_DAEMON_LOST, why);
	mxfs_requests_daemon_gone();
	mxfs_nl_event(MXFS_EVENT_DAEMON_DETACHED, 0, -ENOTCONN);
}

static int mxfs_netlink_notify(struct notifier_block *nb, unsigned long state, void *ptr)
{
	struct netlink_notify *n = ptr;
	bool ours;

	if (state != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC || !net_eq(n->net, &init_net))
		return NOTIFY_DONE;
	spin_lock(&mxfs_daemon_lock);
	ours = mxfs_daemon.attached && (mxfs_daemon.portid == n->portid || mxfs_daemon.req_portid == n->portid);
	spin_unlock(&mxfs_daemon_lock);
	if (ours)
		mxfs_daemon_detach("netlink socket released");
	return NOTIFY_DONE;
}

static struct notifier_block mxfs_netlink_nb = {
	.notifier_call = mxfs_netlink_notify,
};

int mxfs_netlink_init(void)
{
	int err;

	mxfs_build_policies();
	err = netlink_register_notifier(&mxfs_netlink_nb);
	if (err)
		return err;
	err = genl_register_family(&mxfs_family);
	if (err) {
		netlink_unregister_notifier(&mxfs_netlink_nb);
		return err;
	}
	WRITE_ONCE(mxfs_family_live, true);
	return 0;
}

void mxfs_netlink_exit(void)
{
	WRITE_ONCE(mxfs_family_live, false);
	genl_unregister_family(&mxfs_family);
	netlink_unregister_notifier(&mxfs_netlink_nb);
	mxfs_daemon_detach("module unloading");
}
