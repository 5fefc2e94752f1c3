/*
 * inode-probe: the file and disk probes of the inode-lock VM tests and benchmark (the two-VM
 * test test/vm2/tests/inode-locks.sh, the one-VM benchmark test/vm/hooks-bench.sh).
 *
 * Static C (gcc -static), not Node: a Node process takes seconds to start under TCG, cannot
 * align O_DIRECT buffers or hold a shared mapping, and its timings would drown the per-call
 * costs the benchmark compares. Every command prints what it did on one line per event.
 *
 *   fill FILE MARKER KIB        pwrite KIB KiB of 4 KiB blocks of MARKER at offset 0 through
 *                               the page cache: no O_TRUNC, no fsync (pages stay dirty)
 *   extent FILE                 FIEMAP of offset 0 (no FIEMAP_FLAG_SYNC: that would write
 *                               dirty pages back): EXTENT phys=<byte offset on the disk>
 *                               len=<bytes> flags=<hex>; exit 1 if unmapped, delayed or unwritten
 *   readblk DEV OFF             O_DIRECT read of the 4 KiB block at OFF: BLOCK <first 16 bytes>
 *   writeblk DEV OFF MARKER     O_DIRECT|O_DSYNC write of a 4 KiB block of MARKER at OFF: WROTE OFF
 *   mmap FILE M1 M2 GO END      map FILE's first 4 KiB shared; store a block of M1 in it
 *                               (page_mkwrite), print MMAP stored=1; wait for the file GO,
 *                               store M2, print MMAP stored=2 after_go_ms=T; wait for END,
 *                               unmap, exit. Waits poll every 20 ms, at most 300 s each
 *   openread FILE GO            open FILE, print OPENED, wait for the file GO, then read 16
 *                               bytes at offset 0 from the open file: READ <16 bytes> (the
 *                               read alone meets the lock: the open happened before)
 *   fallocate FILE OFF LEN [GO] fallocate(2), mode 0: FALLOCATE ok; with GO, the file is
 *                               opened first (OPENED), the call made once GO exists (the
 *                               call alone meets the lock: the open happened before)
 *   clone SRC DST [GO]          ioctl FICLONE (reflink the whole file): CLONE ok; GO as for
 *                               fallocate
 *   copyrange SRC DST LEN       copy_file_range(2) of LEN bytes at offset 0: COPYRANGE n=N
 *   hog MB [FILE KEY MIN]       memory pressure: allocate and touch MB MiB (4 MiB at a time,
 *                               oom_score_adj 1000: the OOM killer picks this process first),
 *                               then free it: HOG touched=MB ms=T. With FILE, stop early once
 *                               its line KEY=N (debugfs status) has N >= MIN, looked at before
 *                               each 4 MiB: HOG touched=M ms=T stopped=yes|no
 *   workload DIR N ROUNDS       ROUNDS x (N x create+write 4 KiB+close, N x stat, N x
 *                               open+read+close, N x unlink): one line per round,
 *                               WORKLOAD round=R create_us=.. stat_us=.. read_us=.. unlink_us=..
 *                               total_us=..
 *   files DIR N                 create N files of 4 KiB (the workload's names) and fsync
 *                               them: FILES n=N
 *   openall DIR N               open+fstat+close those N files: OPENALL n=N us=T (the
 *                               benchmark's cached/uncached inode lock at the system call:
 *                               open takes the lock, stat(2) alone does not)
 *   other DIR                   one of each operation the hooks wrap (create, write, read,
 *                               fsync, fallocate, mmap store and load, setattr, link,
 *                               symlink, rename, mkdir, unlink, rmdir, FICLONE where the
 *                               filesystem has it), on a filesystem that is not a volume:
 *                               OTHER ok ops=N clone=ok|unsupported, or OTHER err at=STEP errno=E
 * Exit codes: 0 done, 1 an operation failed (errno printed), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096

static void usage(const char *msg)
{
	fprintf(stderr, "inode-probe: %s\n(see the header of test/vm/inode-probe.c)\n", msg);
	exit(2);
}

static int failed(const char *what)
{
	printf("ERR %s errno=%d (%s)\n", what, errno, strerror(errno));
	return 1;
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !*s || *end)
		usage("a number is expected");
	return v;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static void marker_block(char *b, const char *marker)
{
	size_t n = strlen(marker), i;

	if (!n)
		usage("empty marker");
	for (i = 0; i < BLK; i++)
		b[i] = marker[i % n];
}

static void *aligned_block(void)
{
	void *p;

	if (posix_memalign(&p, BLK, BLK))
		usage("out of memory");
	return p;
}

static int cmd_fill(const char *file, const char *marker, uint64_t kib)
{
	char b[BLK];
	uint64_t i;
	int fd = open(file, O_WRONLY | O_CREAT, 0644);

	if (fd < 0)
		return failed("open");
	marker_block(b, marker);
	for (i = 0; i < kib / 4; i++)
		if (pwrite(fd, b, BLK, (off_t)(i * BLK)) != BLK)
			return failed("pwrite");
	if (close(fd))
		return failed("close");
	printf("FILLED %" PRIu64 " KiB\n", kib);
	return 0;
}

static int cmd_extent(const char *file)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[1];
	} q;
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return failed("open");
	memset(&q, 0, sizeof(q));
	q.fm.fm_start = 0;
	q.fm.fm_length = BLK;
	q.fm.fm_extent_count = 1;
	if (ioctl(fd, FS_IOC_FIEMAP, &q.fm))
		return failed("FS_IOC_FIEMAP");
	close(fd);
	if (q.fm.fm_mapped_extents < 1 || q.ext[0].fe_logical != 0) {
		printf("EXTENT none\n");
		return 1;
	}
	printf("EXTENT phys=%llu len=%llu flags=%x\n", (unsigned long long)q.ext[0].fe_physical,
	       (unsigned long long)q.ext[0].fe_length, q.ext[0].fe_flags);
	return q.ext[0].fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNWRITTEN) ? 1 : 0;
}

static int cmd_readblk(const char *dev, uint64_t off)
{
	char *b = aligned_block(), shown[17];
	int fd = open(dev, O_RDONLY | O_DIRECT), i;

	if (fd < 0)
		return failed("open");
	if (pread(fd, b, BLK, (off_t)off) != BLK)
		return failed("pread");
	close(fd);
	for (i = 0; i < 16; i++)
		shown[i] = b[i] >= 0x21 && b[i] < 0x7f ? b[i] : '.';
	shown[16] = '\0';
	printf("BLOCK %s\n", shown);
	return 0;
}

static int cmd_writeblk(const char *dev, uint64_t off, const char *marker)
{
	char *b = aligned_block();
	int fd = open(dev, O_WRONLY | O_DIRECT | O_DSYNC);

	if (fd < 0)
		return failed("open");
	marker_block(b, marker);
	if (pwrite(fd, b, BLK, (off_t)off) != BLK)
		return failed("pwrite");
	if (close(fd))
		return failed("close");
	printf("WROTE %" PRIu64 "\n", off);
	return 0;
}

/* Wait until PATH exists: 20 ms polls, at most 300 s. */
static int wait_file(const char *path)
{
	struct timespec t = { 0, 20 * 1000 * 1000 };
	int i;

	for (i = 0; i < 15000; i++) {
		if (!access(path, F_OK))
			return 0;
		nanosleep(&t, NULL);
	}
	errno = ETIMEDOUT;
	return -1;
}

static int cmd_mmap(const char *file, const char *m1, const char *m2, const char *go, const char *end)
{
	char b[BLK];
	char *p;
	uint64_t t0;
	int fd = open(file, O_RDWR);

	if (fd < 0)
		return failed("open");
	p = mmap(NULL, BLK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return failed("mmap");
	marker_block(b, m1);
	memcpy(p, b, BLK);	/* fault, then page_mkwrite */
	printf("MMAP stored=1\n");
	fflush(stdout);
	if (wait_file(go))
		return failed("wait for GO");
	t0 = now_ns();
	marker_block(b, m2);
	memcpy(p, b, BLK);	/* page_mkwrite again once write-back made the page clean */
	printf("MMAP stored=2 after_go_ms=%" PRIu64 "\n", (now_ns() - t0) / 1000000);
	fflush(stdout);
	if (wait_file(end))
		return failed("wait for END");
	munmap(p, BLK);
	close(fd);
	return 0;
}

/* Print OPENED, then wait for the file go. */
static int opened_then_wait(const char *go)
{
	printf("OPENED\n");
	fflush(stdout);
	return wait_file(go);
}

static int cmd_openread(const char *file, const char *go)
{
	char b[17];
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return failed("open");
	if (opened_then_wait(go))
		return failed("wait for GO");
	if (pread(fd, b, 16, 0) != 16)
		return failed("pread");
	b[16] = '\0';
	close(fd);
	printf("READ %s\n", b);
	return 0;
}

/* With go: the file is opened first (OPENED), then fallocate waits for the file go: the call
 * alone meets the lock, not the open. */
static int cmd_fallocate(const char *file, uint64_t off, uint64_t len, const char *go)
{
	int fd = open(file, O_RDWR | O_CREAT, 0644);

	if (fd < 0)
		return failed("open");
	if (go && opened_then_wait(go))
		return failed("wait for GO");
	if (fallocate(fd, 0, (off_t)off, (off_t)len))
		return failed("fallocate");
	close(fd);
	printf("FALLOCATE ok\n");
	return 0;
}

static int cmd_clone(const char *src, const char *dst, const char *go)
{
	int s = open(src, O_RDONLY), d = open(dst, O_WRONLY | O_CREAT, 0644);

	if (s < 0 || d < 0)
		return failed("open");
	if (go && opened_then_wait(go))
		return failed("wait for GO");
	if (ioctl(d, FICLONE, s))
		return failed("FICLONE");
	close(s);
	close(d);
	printf("CLONE ok\n");
	return 0;
}

static int cmd_copyrange(const char *src, const char *dst, uint64_t len)
{
	int s = open(src, O_RDONLY), d = open(dst, O_WRONLY | O_CREAT, 0644);
	loff_t in = 0, out = 0;
	ssize_t n;

	if (s < 0 || d < 0)
		return failed("open");
	n = copy_file_range(s, &in, d, &out, len, 0);
	if (n < 0)
		return failed("copy_file_range");
	close(s);
	close(d);
	printf("COPYRANGE n=%zd\n", n);
	return 0;
}

/* KEY=N in FILE (one "key=value" a line), or -1. */
static int64_t key_value(const char *file, const char *key)
{
	char line[256];
	size_t len = strlen(key);
	int64_t v = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == '=')
			v = strtoll(line + len + 1, NULL, 10);
	fclose(f);
	return v;
}

static int cmd_hog(uint64_t mb, const char *file, const char *key, int64_t min)
{
	char **chunks = calloc(mb / 4 + 1, sizeof(*chunks));
	uint64_t i, n = mb / 4, t0 = now_ns();
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);
	int stopped = 0;

	if (fd >= 0) {
		if (write(fd, "1000", 4) != 4)
			perror("oom_score_adj");
		close(fd);
	}
	if (!chunks)
		return failed("calloc");
	for (i = 0; i < n; i++) {
		if (file && key_value(file, key) >= min) {
			stopped = 1;
			break;
		}
		chunks[i] = malloc(4 << 20);
		if (!chunks[i])
			return failed("malloc");
		memset(chunks[i], (int)i, 4 << 20);
	}
	n = i;
	for (i = 0; i < n; i++)
		free(chunks[i]);
	free(chunks);
	printf("HOG touched=%" PRIu64 " ms=%" PRIu64, n * 4, (now_ns() - t0) / 1000000);
	printf(file ? " stopped=%s\n" : "\n", stopped ? "yes" : "no");
	return 0;
}

static int cmd_workload(const char *dir, uint64_t n, uint64_t rounds)
{
	char path[4096], b[BLK];
	uint64_t r, i, t[5];
	struct stat st;
	int fd;

	memset(b, 'w', sizeof(b));
	for (r = 1; r <= rounds; r++) {
		t[0] = now_ns();
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/w%06" PRIu64, dir, i);
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0)
				return failed("create");
			if (write(fd, b, BLK) != BLK)
				return failed("write");
			if (close(fd))
				return failed("close");
		}
		t[1] = now_ns();
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/w%06" PRIu64, dir, i);
			if (stat(path, &st))
				return failed("stat");
		}
		t[2] = now_ns();
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/w%06" PRIu64, dir, i);
			fd = open(path, O_RDONLY);
			if (fd < 0)
				return failed("open");
			if (read(fd, b, BLK) != BLK)
				return failed("read");
			close(fd);
		}
		t[3] = now_ns();
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/w%06" PRIu64, dir, i);
			if (unlink(path))
				return failed("unlink");
		}
		t[4] = now_ns();
		printf("WORKLOAD round=%" PRIu64 " create_us=%" PRIu64 " stat_us=%" PRIu64 " read_us=%" PRIu64
		       " unlink_us=%" PRIu64 " total_us=%" PRIu64 "\n", r, (t[1] - t[0]) / 1000, (t[2] - t[1]) / 1000,
		       (t[3] - t[2]) / 1000, (t[4] - t[3]) / 1000, (t[4] - t[0]) / 1000);
		fflush(stdout);
	}
	return 0;
}

static int cmd_files(const char *dir, uint64_t n)
{
	char path[4096], b[BLK];
	uint64_t i;
	int fd;

	memset(b, 'f', sizeof(b));
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/w%06" PRIu64, dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return failed("create");
		if (write(fd, b, BLK) != BLK || fsync(fd))
			return failed("write");
		close(fd);
	}
	printf("FILES n=%" PRIu64 "\n", n);
	return 0;
}

static int cmd_openall(const char *dir, uint64_t n)
{
	char path[4096];
	struct stat st;
	uint64_t i, t0 = now_ns();
	int fd;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/w%06" PRIu64, dir, i);
		fd = open(path, O_RDONLY);
		if (fd < 0 || fstat(fd, &st))
			return failed("open");
		close(fd);
	}
	printf("OPENALL n=%" PRIu64 " us=%" PRIu64 "\n", n, (now_ns() - t0) / 1000);
	return 0;
}

#define STEP(what, expr) do { ops++; if ((expr)) { printf("OTHER err at=%s errno=%d (%s)\n", what, errno, strerror(errno)); return 1; } } while (0)

static int cmd_other(const char *dir)
{
	char a[4096], c[4096], l[4096], s[4096], d[4096], r[4096], b[BLK];
	const char *clone = "ok";
	int fd, fd2, ops = 0;
	char *p;

	snprintf(a, sizeof(a), "%s/probe-a", dir);
	snprintf(c, sizeof(c), "%s/probe-c", dir);
	snprintf(l, sizeof(l), "%s/probe-l", dir);
	snprintf(s, sizeof(s), "%s/probe-s", dir);
	snprintf(d, sizeof(d), "%s/probe-d", dir);
	snprintf(r, sizeof(r), "%s/probe-r", dir);
	memset(b, 'o', sizeof(b));
	STEP("create", (fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0);
	STEP("write", pwrite(fd, b, BLK, 0) != BLK);
	STEP("fsync", fsync(fd));
	STEP("read", pread(fd, b, BLK, 0) != BLK);
	STEP("fallocate", fallocate(fd, 0, BLK, 4 * BLK));
	STEP("mmap", (p = mmap(NULL, BLK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED);
	p[0] = 'm';		/* fault + page_mkwrite */
	STEP("mmap-load", p[1] != 'o');
	munmap(p, BLK);
	STEP("setattr", ftruncate(fd, 2 * BLK));
	STEP("create2", (fd2 = open(c, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0);
	ops++;
	if (ioctl(fd2, FICLONE, fd)) {
		if (errno != EOPNOTSUPP && errno != EXDEV && errno != EINVAL && errno != ENOTTY) {
			printf("OTHER err at=clone errno=%d (%s)\n", errno, strerror(errno));
			return 1;
		}
		clone = "unsupported";
	}
	close(fd2);
	close(fd);
	STEP("link", link(a, l));
	STEP("symlink", symlink("probe-a", s));
	STEP("mkdir", mkdir(d, 0755));
	STEP("rename", rename(l, r));
	STEP("unlink", unlink(r) || unlink(s) || unlink(c) || unlink(a));
	STEP("rmdir", rmdir(d));
	printf("OTHER ok ops=%d clone=%s\n", ops, clone);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int n = argc - 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "fill") && n == 3)
		return cmd_fill(argv[2], argv[3], num(argv[4]));
	if (!strcmp(cmd, "extent") && n == 1)
		return cmd_extent(argv[2]);
	if (!strcmp(cmd, "readblk") && n == 2)
		return cmd_readblk(argv[2], num(argv[3]));
	if (!strcmp(cmd, "writeblk") && n == 3)
		return cmd_writeblk(argv[2], num(argv[3]), argv[4]);
	if (!strcmp(cmd, "mmap") && n == 5)
		return cmd_mmap(argv[2], argv[3], argv[4], argv[5], argv[6]);
	if (!strcmp(cmd, "openread") && n == 2)
		return cmd_openread(argv[2], argv[3]);
	if (!strcmp(cmd, "fallocate") && (n == 3 || n == 4))
		return cmd_fallocate(argv[2], num(argv[3]), num(argv[4]), n == 4 ? argv[5] : NULL);
	if (!strcmp(cmd, "clone") && (n == 2 || n == 3))
		return cmd_clone(argv[2], argv[3], n == 3 ? argv[4] : NULL);
	if (!strcmp(cmd, "copyrange") && n == 3)
		return cmd_copyrange(argv[2], argv[3], num(argv[4]));
	if (!strcmp(cmd, "hog") && n == 1)
		return cmd_hog(num(argv[2]), NULL, NULL, 0);
	if (!strcmp(cmd, "hog") && n == 4)
		return cmd_hog(num(argv[2]), argv[3], argv[4], (int64_t)num(argv[5]));
	if (!strcmp(cmd, "workload") && n == 3)
		return cmd_workload(argv[2], num(argv[3]), num(argv[4]));
	if (!strcmp(cmd, "files") && n == 2)
		return cmd_files(argv[2], num(argv[3]));
	if (!strcmp(cmd, "openall") && n == 2)
		return cmd_openall(argv[2], num(argv[3]));
	if (!strcmp(cmd, "other") && n == 1)
		return cmd_other(argv[2]);
	usage("unknown command or wrong number of arguments");
	return 2;
}
