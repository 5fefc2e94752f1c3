// SPDX-License-Identifier: GPL-2.0
/*
 * Every block-layer call of the module, behind a small compatibility layer (these APIs move
 * after 6.1: blkdev_get_by_dev becomes bdev_open_by_dev, then bdev_file_open_by_dev; the
 * open/release prototypes change; queue limits become an atomic update). The rest of the
 * module sees struct mxfs_blk and the mxfs_blk_* functions only.
 *
 * For a volume it owns:
 *   - the claim: the shared disk opened read-write with FMODE_EXCL, holder = the mxfs_blk,
 *     so no filesystem (mount) and no other exclusive opener (mkfs, another volume) gets it;
 *   - the stacked disk "mxfs!<volume>" (/dev/mxfs/<volume>): bio-based, no partitions, its
 *     limits stacked from the disk, write cache and FUA advertised so flushes reach the disk;
 *   - bio forwarding: each bio is cloned onto the disk (bio_alloc_clone from one bioset whose
 *     front pad carries the completion context) and sent with submit_bio_noacct, once the
 *     gate (mxfs_vol_bio_start) let it through; the completion copies the status back.
 * open/release of the stacked disk go to mxfs_vol_open/mxfs_vol_release (the gate).
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include "mxfs_internal.h"

/* The claim's mode; the stacked disk writes through it. */
#define MXFS_CLAIM_MODE (FMODE_READ | FMODE_WRITE | FMODE_EXCL)

struct mxfs_blk {
	struct block_device *lower;	/* the claimed shared disk */
	struct gendisk *disk;		/* the stacked disk */
	struct mxfs_vol *vol;
};

/* One per forwarded bio, in the clone's front pad. */
struct mxfs_clone {
	struct bio *orig;
	struct mxfs_vol *vol;
	bool write;
	struct bio clone;		/* last: the bioset's front pad ends here */
};

static struct bio_set mxfs_bioset;
static const struct block_device_operations mxfs_blk_fops;

int mxfs_blk_lookup(const char *path, dev_t *dev)
{
	return lookup_bdev(path, dev);
}

static void mxfs_blk_endio(struct bio *clone)
{
	struct mxfs_clone *c = container_of(clone, struct mxfs_clone, clone);
	struct bio *orig = c->orig;
	struct mxfs_vol *v = c->vol;
	bool write = c->write;

	/* The volume (and this module's text) may go once the counters drop: RCU covers the
	 * rest of this function, and mxfs_blk_destroy waits for a grace period. */
	rcu_read_lock();
	orig->bi_status = clone->bi_status;
	bio_put(clone);
	bio_endio(orig);
	mxfs_vol_bio_end(v, write);
	rcu_read_unlock();
}

static void mxfs_blk_submit_bio(struct bio *bio)
{
	struct mxfs_blk *b = bio->bi_bdev->bd_disk->private_data;
	bool write = op_is_write(bio_op(bio));
	struct mxfs_clone *c;
	struct bio *clone;

	if (!mxfs_vol_bio_start(b->vol, write)) {
		bio->bi_status = BLK_STS_IOERR;
		bio_endio(bio);
		return;
	}
	clone = bio_alloc_clone(b->lower, bio, GFP_NOIO, &mxfs_bioset);
	if (!clone) {	/* only with REQ_NOWAIT: the mempool backs GFP_NOIO */
		mxfs_vol_bio_end(b->vol, write);
		bio->bi_status = (bio->bi_opf & REQ_NOWAIT) ? BLK_STS_AGAIN : BLK_STS_RESOURCE;
		bio_endio(bio);
		return;
	}
	c = container_of(clone, struct mxfs_clone, clone);
	c->orig = bio;
	c->vol = b->vol;
	c->write = write;
	clone->bi_end_io = mxfs_blk_endio;
	submit_bio_noacct(clone);
}

/* Opened (a mount, or any opener): the gate, then the inode lock cache and the XFS hooks,
 * which stay installed while any stacked disk is open (mxfs_hooks.c). */
static int mxfs_blk_open(struct block_device *bdev, fmode_t mode)
{
	struct mxfs_blk *b = bdev->bd_disk->private_data;
	int err = mxfs_vol_open(b->vol, mode & FMODE_WRITE);

	if (err)
		return err;
	err = mxfs_glocks_volume_opened(b->vol);
	if (!err) {
		err = mxfs_hooks_get();
		if (err)
			mxfs_glocks_volume_closed(b->vol);
	}
	if (err)
		mxfs_vol_release(b->vol, mode & FMODE_WRITE);
	return err;
}

static void mxfs_blk_release(struct gendisk *disk, fmode_t mode)
{
	struct mxfs_blk *b = disk->private_data;

	mxfs_glocks_volume_closed(b->vol);
	mxfs_hooks_put();
	mxfs_vol_release(b->vol, mode & FMODE_WRITE);
}

struct mxfs_vol *mxfs_blk_sb_volume(const struct super_block *sb)
{
	struct block_device *bdev = sb->s_bdev;
	struct mxfs_blk *b;

	if (!bdev || bdev->bd_disk->fops != &mxfs_blk_fops)
		return NULL;
	b = bdev->bd_disk->private_data;
	return b ? b->vol : NULL;
}

static const struct block_device_operations mxfs_blk_fops = {
	.owner = THIS_MODULE,
	.submit_bio = mxfs_blk_submit_bio,
	.open = mxfs_blk_open,
	.release = mxfs_blk_release,
};

/* The stacked disk's queue looks like the disk's: limits, rotational, stable writes. */
static void mxfs_blk_stack(struct gendisk *disk, struct block_device *lower)
{
	struct request_queue *q = disk->queue;

	blk_set_stacking_limits(&q->limits);
	if (blk_stack_limits(&q->limits, &bdev_get_queue(lower)->limits, 0) < 0)
		pr_warn("mxfs: %s: limits of the disk are misaligned\n", disk->disk_name);
	/* Flushes and FUA must reach the disk whatever it does with them. */
	blk_queue_write_cache(q, true, true);
	if (bdev_nonrot(lower))
		blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	else
		blk_queue_flag_clear(QUEUE_FLAG_NONROT, q);
	if (bdev_stable_writes(lower))
		blk_queue_flag_set(QUEUE_FLAG_STABLE_WRITES, q);
	set_capacity(disk, bdev_nr_sectors(lower));
	if (bdev_read_only(lower))
		set_disk_ro(disk, true);
}

struct mxfs_blk *mxfs_blk_create(struct mxfs_vol *v, dev_t dev, const char *name)
{
	struct mxfs_blk *b = kzalloc(sizeof(*b), GFP_KERNEL);
	struct gendisk *disk;
	int err;

	if (!b)
		return ERR_PTR(-ENOMEM);
	b->vol = v;
	b->lower = blkdev_get_by_dev(dev, MXFS_CLAIM_MODE, b);
	if (IS_ERR(b->lower)) {
		err = PTR_ERR(b->lower);
		goto free;
	}
	err = -EINVAL;		/* a volume on another volume's stacked disk */
	if (b->lower->bd_disk->fops == &mxfs_blk_fops)
		goto put;
	err = -EOPNOTSUPP;
	if (bdev_is_zoned(b->lower))
		goto put;
	err = -ENOMEM;
	disk = blk_alloc_disk(NUMA_NO_NODE);
	if (!disk)
		goto put;
	/* major 0, minors 0: device_add_disk picks a dynamic (extended) dev_t. */
	disk->fops = &mxfs_blk_fops;
	disk->private_data = b;
	disk->flags |= GENHD_FL_NO_PART;
	snprintf(disk->disk_name, DISK_NAME_LEN, "mxfs!%s", name);
	mxfs_blk_stack(disk, b->lower);
	err = device_add_disk(NULL, disk, NULL);
	if (err) {
		put_disk(disk);
		goto put;
	}
	b->disk = disk;
	return b;
put:
	blkdev_put(b->lower, MXFS_CLAIM_MODE);
free:
	kfree(b);
	return ERR_PTR(err);
}

void mxfs_blk_destroy(struct mxfs_blk *b, atomic_t *inflight)
{
	/* No new open or bio after this; bios already forwarded still complete. */
	del_gendisk(b->disk);
	mxfs_wait_drained(inflight);
	synchronize_rcu();	/* completions have left mxfs_blk_endio */
	b->disk->private_data = NULL;
	put_disk(b->disk);
	blkdev_put(b->lower, MXFS_CLAIM_MODE);
	kfree(b);
}

u8 mxfs_blk_shutdown_fs(struct mxfs_blk *b)
{
	return mxfs_xfs_shutdown(b->disk->part0);
}

int mxfs_blk_init(void)
{
	return bioset_init(&mxfs_bioset, BIO_POOL_SIZE, offsetof(struct mxfs_clone, clone), 0);
}

void mxfs_blk_exit(void)
{
	bioset_exit(&mxfs_bioset);
}
