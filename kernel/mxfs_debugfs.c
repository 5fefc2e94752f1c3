// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs: /sys/kernel/debug/mxfs/
 *   status  daemon attachment and every counter, one "key=value" per line
 *   locks   the cluster locks the test hook holds (id, name, mode, token, pending blocking cb)
 *   glocks  the inode lock cache: one line per (volume, inode): type, cached mode, state,
 *           holders, waiters, pending demote, lock id, hits, misses, data version, pages
 *   hooks   whether the XFS hooks are installed; calls per entry point on MXFS volumes
 *   nodes   the last state the daemon reported for each cluster node
 *   volumes the kernel lease (state, remaining, age, fence bound, options), then per volume
 *           its gate, generation, opens, writes in flight, refused writes, and its recent
 *           fences (cause, time, duration, drained, filesystem shutdown)
 *   test    test hook. Write one command; the write returns when the daemon answered
 *           (or fails with the error), and the outcome is appended to what a read returns:
 *             lock [LOCKSPACE/]RESOURCE MODE [TIMEOUT_MS] [noqueue]
 *             unlock LOCK_ID
 *             mount VOLUME | unmount VOLUME
 *             bench RESOURCE COUNT   (COUNT lock EX + unlock round trips, timed)
 *             ghold VOLUME INO MODE  take inode INO's lock as a holder with no operation
 *             gdrop VOLUME INO       and give it back (lock-ordering tests)
 *             gbench VOLUME FIRST COUNT [keep]   COUNT inode locks taken uncached, then
 *                                    cached, timed; keep leaves them cached (benchmark)
 *           Read lines: "<seq> <command> -> ok id=.. mode=.. token=.." or "-> err <-errno>".
 * Module parameters (request_timeout_ms, reply_grace_ms) are in /sys/module/mxfs/parameters.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include "mxfs_internal.h"

static struct dentry *mxfs_dir;

/* ---- status ---- */

static int mxfs_status_show(struct seq_file *m, void *v)
{
	struct mxfs_daemon_info d;

	mxfs_daemon_get(&d);
	seq_printf(m, "daemon=%s\nportid=%u\nreq_portid=%u\nnode_id=%u\ngeneration=%llu\n",
		   d.attached ? "attached" : "detached", d.portid, d.req_portid, d.node_id, d.generation);
	seq_printf(m, "pending=%u\nheld=%u\n", mxfs_requests_pending(), mxfs_locks_held());
#define C(name) seq_printf(m, #name "=%lld\n", (long long)atomic64_read(&mxfs_stats.name))
	C(requests); C(grants); C(denies); C(timeouts); C(interrupted); C(daemon_losses);
	C(failed_on_detach); C(rejected); C(stale_replies); C(basts); C(locks_lost); C(releases);
	C(cache_invals); C(node_status); C(recoveries); C(daemon_ready); C(cancels); C(conversions);
	C(send_waits); C(send_failures); C(lease_renewals); C(reply_failures);
#undef C
	seq_printf(m, "request_timeout_ms=%u\nreply_grace_ms=%u\n",
		   READ_ONCE(mxfs_request_timeout_ms), READ_ONCE(mxfs_reply_grace_ms));
	mxfs_glock_stats_show(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(mxfs_status);

static int mxfs_locks_file_show(struct seq_file *m, void *v)
{
	mxfs_locks_show(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(mxfs_locks_file);

static int mxfs_glocks_file_show(struct seq_file *m, void *v)
{
	mxfs_glocks_show(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(mxfs_glocks_file);

static int mxfs_hooks_file_show(struct seq_file *m, void *v)
{
	mxfs_hooks_show(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(mxfs_hooks_file);

/* ---- nodes ---- */

#define MXFS_NODES_MAX 64
static DEFINE_SPINLOCK(mxfs_nodes_lock);
static struct { u32 id; u8 state; bool used; } mxfs_nodes[MXFS_NODES_MAX];

void mxfs_node_status_record(u32 node_id, u8 state)
{
	int i, free = -1;

	spin_lock(&mxfs_nodes_lock);
	for (i = 0; i < MXFS_NODES_MAX; i++) {
		if (mxfs_nodes[i].used && mxfs_nodes[i].id == node_id)
			break;
		if (!mxfs_nodes[i].used && free < 0)
			free = i;
	}
	if (i == MXFS_NODES_MAX)
		i = free;
	if (i >= 0) {
		mxfs_nodes[i].used = true;
		mxfs_nodes[i].id = node_id;
		mxfs_nodes[i].state = state;
	}
	spin_unlock(&mxfs_nodes_lock);
}

static int mxfs_nodes_show(struct seq_file *m, void *v)
{
	static const char *const names[] = { "unknown", "up", "down", "fenced" };
	int i;

	spin_lock(&mxfs_nodes_lock);
	for (i = 0; i < MXFS_NODES_MAX; i++)
		if (mxfs_nodes[i].used)
			seq_printf(m, "node=%u state=%s\n", mxfs_nodes[i].id,
				   mxfs_nodes[i].state <= MXFS_NODE_STATE_MAX ? names[mxfs_nodes[i].state] : "?");
	spin_unlock(&mxfs_nodes_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(mxfs_nodes);

/* ---- volumes ---- */

static const char *const mxfs_lease_names[] = { "none", "valid", "expired", "lost" };

static int mxfs_volume_show_one(const struct mxfs_vol_info *vi, void *arg)
{
	struct seq_file *m = arg;
	unsigned int i;

	seq_printf(m, "volume=%s dev=%u:%u gate=%s generation=%llu openers=%u writers=%u inflight=%u inflight_writes=%u refused=%llu fences=%u\n",
		   vi->name, MAJOR(vi->dev), MINOR(vi->dev), mxfs_gate_name(vi->gate), vi->generation,
		   vi->openers, vi->writers, vi->inflight, vi->inflight_writes, vi->refused, vi->fences);
	for (i = 0; i < vi->nrec; i++) {
		const struct mxfs_fence_rec *r = &vi->rec[i];

		seq_printf(m, "  fence cause=%s generation=%llu time_ms=%llu duration_us=%u inflight=%u drained=%u shutdown=%s\n",
			   mxfs_fence_cause_name(r->cause), r->generation, r->time_ms, r->duration_us, r->inflight,
			   r->drained, mxfs_shutdown_name(r->shutdown));
	}
	return 0;
}

static int mxfs_volumes_show(struct seq_file *m, void *v)
{
	struct mxfs_lease_info l;

	mxfs_lease_get(&l);
	seq_printf(m, "lease=%s", l.state <= MXFS_LEASE_MAX ? mxfs_lease_names[l.state] : "?");
	if (l.state == MXFS_LEASE_VALID)
		seq_printf(m, " remaining_ms=%llu", l.remaining_ns / NSEC_PER_MSEC);
	if (l.renewed)
		seq_printf(m, " age_ms=%llu deadline_ns=%llu", l.age_ns / NSEC_PER_MSEC, l.deadline_ns);
	seq_printf(m, " fence_bound_ms=%u timer_slack_ms=%u drain_timeout_ms=%u fence_fallback=%s open_wait_ms=%u xfs_shutdown=%s\n",
		   mxfs_fence_bound_ms(), READ_ONCE(mxfs_timer_slack_ms), READ_ONCE(mxfs_drain_timeout_ms),
		   mxfs_fallback_name(READ_ONCE(mxfs_fence_fallback)), READ_ONCE(mxfs_open_wait_ms),
		   mxfs_xfs_available() ? "available" : "unavailable");
	return mxfs_volumes_for_each(NULL, mxfs_volume_show_one, m);
}
DEFINE_SHOW_ATTRIBUTE(mxfs_volumes);

/* ---- test hook ---- */

#define MXFS_RESULTS 32
#define MXFS_RESULT_LEN 192
static DEFINE_SPINLOCK(mxfs_results_lock);
static char mxfs_results[MXFS_RESULTS][MXFS_RESULT_LEN];
static unsigned int mxfs_results_seq;

static void mxfs_result_add(const char *cmd, int err, const struct mxfs_grant *g)
{
	char line[MXFS_RESULT_LEN];
	unsigned int seq;

	spin_lock(&mxfs_results_lock);
	seq = ++mxfs_results_seq;
	if (err)
		snprintf(line, sizeof(line), "%u %s -> err %d", seq, cmd, err);
	else if (g)
		snprintf(line, sizeof(line), "%u %s -> ok id=%llu mode=%s token=%llu", seq, cmd,
			 g->lock_id, mxfs_mode_name(g->mode), g->token);
	else
		snprintf(line, sizeof(line), "%u %s -> ok", seq, cmd);
	strscpy(mxfs_results[seq % MXFS_RESULTS], line, MXFS_RESULT_LEN);
	spin_unlock(&mxfs_results_lock);
}

static int mxfs_parse_mode(const char *s)
{
	static const char *const names[] = { "NL", "CR", "CW", "PR", "PW", "EX" };
	int i;

	for (i = 0; i <= MXFS_MODE_MAX; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	return -EINVAL;
}

static int mxfs_test_lock(char *args, struct mxfs_grant *g)
{
	char *name = strsep(&args, " "), *mode_s = strsep(&args, " "), *opt;
	const char *lockspace = "default", *resource;
	unsigned int timeout = READ_ONCE(mxfs_request_timeout_ms);
	u32 flags = 0;
	char *slash;
	int mode;

	if (!name || !mode_s)
		return -EINVAL;
	mode = mxfs_parse_mode(mode_s);
	if (mode < 0)
		return mode;
	while ((opt = strsep(&args, " ")) != NULL) {
		if (!*opt)
			continue;
		if (!strcmp(opt, "noqueue"))
			flags |= MXFS_LKF_NOQUEUE;
		else if (kstrtouint(opt, 10, &timeout))
			return -EINVAL;
	}
	slash = strchr(name, '/');
	if (slash) {
		*slash = '\0';
		lockspace = name;
		resource = slash + 1;
	} else {
		resource = name;
	}
	return mxfs_lock(lockspace, resource, mode, flags, timeout, g);
}

/* "bench RESOURCE COUNT": COUNT x (lock EX, unlock) through the daemon, timed. The
 * outcome line gets the total and the mean round trip (an uncached cluster lock). */
static int mxfs_test_bench(char *args, char *cmd, size_t cmdlen)
{
	char *resource = strsep(&args, " "), *count_s = strsep(&args, " ");
	struct mxfs_grant g;
	unsigned int count, i;
	ktime_t t0;
	s64 ns;
	int err = 0;
	size_t used;

	if (!resource || !count_s || kstrtouint(count_s, 10, &count) || !count || count > 100000)
		return -EINVAL;
	t0 = ktime_get();
	for (i = 0; i < count && !err; i++) {
		err = mxfs_lock("default", resource, MXFS_MODE_MAX, 0, READ_ONCE(mxfs_request_timeout_ms), &g);
		if (!err)
			err = mxfs_unlock(g.lock_id);
	}
	ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	used = strlen(cmd);
	snprintf(cmd + used, cmdlen - used, " [done=%u total_us=%lld per_op_us=%lld]", i - (err ? 1 : 0),
		 ns / 1000, ns / 1000 / (i ? i : 1));
	return err;
}

/* "ghold VOLUME INO MODE" / "gdrop VOLUME INO". */
static int mxfs_test_ghold(char *args, bool hold)
{
	char *volume = strsep(&args, " "), *ino_s = strsep(&args, " "), *mode_s = strsep(&args, " ");
	int mode = hold && mode_s ? mxfs_parse_mode(mode_s) : 5;
	u64 ino;

	if (!volume || !ino_s || kstrtou64(ino_s, 10, &ino) || (hold && (mode != 3 && mode != 5)))
		return -EINVAL;
	return mxfs_glock_test_hold(volume, ino, mode, hold);
}

/* "gbench VOLUME FIRST COUNT [keep]": inode locks FIRST.. taken uncached, then cached (mxfs_glock.c
 * mxfs_glock_test_bench); the outcome line gets both passes' mean per lock. */
static int mxfs_test_gbench(char *args, char *cmd, size_t cmdlen)
{
	char *volume = strsep(&args, " "), *first_s = strsep(&args, " "), *count_s = strsep(&args, " ");
	char *keep_s = strsep(&args, " ");
	unsigned int count;
	u64 first, ns[2] = { 0, 0 };
	size_t used;
	int err;

	if (!volume || !first_s || !count_s || kstrtou64(first_s, 10, &first) || kstrtouint(count_s, 10, &count) ||
	    !count || count > 1000000 || (keep_s && strcmp(keep_s, "keep")))
		return -EINVAL;
	err = mxfs_glock_test_bench(volume, first, count, keep_s != NULL, ns);
	used = strlen(cmd);
	snprintf(cmd + used, cmdlen - used, " [uncached_ns=%llu cached_ns=%llu]", ns[0] / count, ns[1] / count);
	return err;
}

static ssize_t mxfs_test_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[160], cmd[160], *args, *verb;
	struct mxfs_grant g = {};
	bool granted = false;
	u64 id;
	int err;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	strim(buf);
	strscpy(cmd, buf, sizeof(cmd));
	args = buf;
	verb = strsep(&args, " ");

	if (!strcmp(verb, "lock")) {
		err = mxfs_test_lock(args, &g);
		granted = !err;
	} else if (!strcmp(verb, "bench")) {
		err = mxfs_test_bench(args, cmd, sizeof(cmd));
	} else if (!strcmp(verb, "unlock")) {
		err = args && !kstrtou64(strim(args), 10, &id) ? mxfs_unlock(id) : -EINVAL;
	} else if (!strcmp(verb, "gbench")) {
		err = mxfs_test_gbench(args, cmd, sizeof(cmd));
	} else if (!strcmp(verb, "ghold") || !strcmp(verb, "gdrop")) {
		err = mxfs_test_ghold(args, verb[1] == 'h');
	} else if (!strcmp(verb, "mount") && args) {
		err = mxfs_volume(MXFS_CMD_VOLUME_MOUNT, strim(args), READ_ONCE(mxfs_request_timeout_ms), false);
	} else if (!strcmp(verb, "unmount") && args) {
		err = mxfs_volume(MXFS_CMD_VOLUME_UNMOUNT, strim(args), READ_ONCE(mxfs_request_timeout_ms), false);
	} else {
		err = -EINVAL;
	}
	mxfs_result_add(cmd, err, granted ? &g : NULL);
	return err ? err : len;
}

static int mxfs_test_show(struct seq_file *m, void *v)
{
	unsigned int seq, first, i;

	spin_lock(&mxfs_results_lock);
	seq = mxfs_results_seq;
	first = seq > MXFS_RESULTS ? seq - MXFS_RESULTS + 1 : 1;
	for (i = first; i <= seq; i++)
		seq_printf(m, "%s\n", mxfs_results[i % MXFS_RESULTS]);
	spin_unlock(&mxfs_results_lock);
	return 0;
}

static int mxfs_test_open(struct inode *inode, struct file *file)
{
	return single_open(file, mxfs_test_show, inode->i_private);
}

static const struct file_operations mxfs_test_fops = {
	.owner = THIS_MODULE,
	.open = mxfs_test_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.write = mxfs_test_write,
	.release = single_release,
};

void mxfs_debugfs_init(void)
{
	mxfs_dir = debugfs_create_dir("mxfs", NULL);
	debugfs_create_file("status", 0400, mxfs_dir, NULL, &mxfs_status_fops);
	debugfs_create_file("locks", 0400, mxfs_dir, NULL, &mxfs_locks_file_fops);
	debugfs_create_file("glocks", 0400, mxfs_dir, NULL, &mxfs_glocks_file_fops);
	debugfs_create_file("hooks", 0400, mxfs_dir, NULL, &mxfs_hooks_file_fops);
	debugfs_create_file("nodes", 0400, mxfs_dir, NULL, &mxfs_nodes_fops);
	debugfs_create_file("volumes", 0400, mxfs_dir, NULL, &mxfs_volumes_fops);
	debugfs_create_file("test", 0600, mxfs_dir, NULL, &mxfs_test_fops);
}

void mxfs_debugfs_exit(void)
{
	debugfs_remove_recursive(mxfs_dir);
	mxfs_dir = NULL;
}
