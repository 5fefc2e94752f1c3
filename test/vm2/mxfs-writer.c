/*
 * mxfs-writer: the writer and checker of the two-VM failover tests (test/vm2/).
 *
 * Built on the host, statically (gcc -static), and put into the VM image: it must keep
 * writing while the node's mxfsd is killed or stopped, report the outcome of every single
 * syscall (a Node writer would hide fsync behind the thread pool and cannot align O_DIRECT
 * buffers), and the same binary checks the raw disk image on the host afterwards.
 *
 *   prep FILE --slots S                 create FILE with S zeroed 4 KiB blocks (written, not
 *                                       unwritten extents), fsync it and its directory
 *   records FILE --node N --run R --slots S [--interval-ms I] [--max-errors E]
 *       write record seq = 1, 2, ... into slot seq-1 with O_DIRECT|O_DSYNC, one line per
 *       attempt:  MXFS-REC node=N seq=Q ok|err errno=E
 *       and at the end (slots full, E consecutive errors, or SIGTERM/SIGINT):
 *                 MXFS-REC-END node=N ok=K err=F first_err=Q last_ok=Q late_ok=L
 *       (late_ok counts successes after the first error: a fenced node must have none)
 *   files DIR --node N --run R --count C [--size B] [--interval-ms I] [--max-errors E]
 *       create DIR/fN-000001..., each written, fsync'd, closed, then DIR fsync'd:
 *                 MXFS-FILE node=N name=fN-000001 size=B sum=HEX ok | err errno=E at=STEP
 *       and at the end MXFS-FILE-END node=N ok=K err=F late_ok=L
 *   check-files DIR MANIFEST            MANIFEST lines "name size sum": every file must exist
 *                                       with that size and checksum; prints
 *                                       CHECK-FILES total=T ok=K bad=B, exit 1 if B > 0
 *   hold DEV --node N --run R [--interval-ms I]
 *       the lock holder's side of the exclusion witness: rewrite slot 0 of DEV (O_DIRECT,
 *       a small disk both VMs share) with record seq = 1, 2, ... until SIGTERM/SIGINT, then
 *                 MXFS-HOLD node=N writes=K errors=E
 *   witness DEV --node N --run R --watch-ms W [--interval-ms I]
 *       the next holder's side: write its own record to slot 0, then re-read slot 0
 *       (O_DIRECT, past every cache) for W ms. Any record of another node appearing there
 *       means that node still wrote while this one held the lock:
 *                 MXFS-WITNESS intruder node=M seq=Q after=T ms   (exit 1)
 *                 MXFS-WITNESS clean reads=K                       (exit 0)
 *   scan PATH --run R                   every valid record of run R in PATH (a file, a disk
 *                                       or a raw image), 4 KiB aligned:
 *                                       REC node=N seq=Q slot=K off=O mono_ms=M real_ms=W
 *                                       (the record's stamps), then SCAN records=T
 *
 * A record is one 4 KiB block: magic "MXFSREC1", run, node, seq, slot, its stamps (CLOCK_MONOTONIC
 * and CLOCK_REALTIME ms, read just before the write is issued), a fill derived from
 * (run, node, seq) and an FNV-1a 64 checksum of the rest, so a block is either a whole record
 * of one attempt or not a record at all. File contents are derived from (run, node, index).
 * Exit codes: 0 done, 1 a check failed or the writer stopped on errors, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096
#define SUM_OFF (BLK - 8)

static const char MAGIC[8] = { 'M', 'X', 'F', 'S', 'R', 'E', 'C', '1' };
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static void die_usage(const char *msg)
{
	fprintf(stderr, "mxfs-writer: %s\n(see the header of test/vm2/mxfs-writer.c)\n", msg);
	exit(2);
}

/* One line per write(2), so lines of concurrent writers on the console never mix. */
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0) return;
	if (n > (int)sizeof line - 2) n = sizeof line - 2;
	line[n++] = '\n';
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(1, line + off, n - off);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) return;
		off += w;
	}
}

static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
	return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill(unsigned char *p, size_t n, uint64_t run, uint64_t node, uint64_t idx)
{
	uint64_t s = run ^ (node << 48) ^ (idx * 0x2545f4914f6cdd1dULL);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&s);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

static uint64_t clock_ms(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop_requested) {}
}

struct opts {
	const char *path, *path2;
	uint64_t node, run, slots, count, size, interval_ms, max_errors, watch_ms;
	int have_node, have_run;
};

static uint64_t num(const char *name, const char *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 0);
	if (errno || *end || end == v) {
		char msg[128];
		snprintf(msg, sizeof msg, "%s wants a number, got '%s'", name, v);
		die_usage(msg);
	}
	return x;
}

static void parse(int argc, char **argv, struct opts *o, int npos)
{
	int pos = 0;
	memset(o, 0, sizeof *o);
	o->size = 65536;
	o->interval_ms = 10;
	o->max_errors = 50;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-') {
			if (i + 1 >= argc) die_usage("option without a value");
			const char *v = argv[++i];
			if (!strcmp(a, "--node")) { o->node = num(a, v); o->have_node = 1; }
			else if (!strcmp(a, "--run")) { o->run = num(a, v); o->have_run = 1; }
			else if (!strcmp(a, "--slots")) o->slots = num(a, v);
			else if (!strcmp(a, "--count")) o->count = num(a, v);
			else if (!strcmp(a, "--size")) o->size = num(a, v);
			else if (!strcmp(a, "--interval-ms")) o->interval_ms = num(a, v);
			else if (!strcmp(a, "--max-errors")) o->max_errors = num(a, v);
			else if (!strcmp(a, "--watch-ms")) o->watch_ms = num(a, v);
			else die_usage("unknown option");
		} else if (pos == 0) { o->path = a; pos++; }
		else if (pos == 1) { o->path2 = a; pos++; }
		else die_usage("too many arguments");
	}
	if (pos != npos) die_usage("wrong number of arguments");
}

static int fsync_parent(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir) dir[1] = 0;
	else if (slash) *slash = 0;
	else snprintf(dir, sizeof dir, ".");
	int d = open(dir, O_RDONLY | O_DIRECTORY);
	if (d < 0) return -1;
	int r = fsync(d);
	close(d);
	return r;
}

static int cmd_prep(struct opts *o)
{
	if (!o->slots) die_usage("prep needs --slots");
	int fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { say("MXFS-PREP err errno=%d at=open", errno); return 1; }
	static unsigned char zero[BLK * 64];
	for (uint64_t done = 0; done < o->slots;) {
		uint64_t n = o->slots - done < 64 ? o->slots - done : 64;
		if (pwrite(fd, zero, n * BLK, done * BLK) != (ssize_t)(n * BLK)) { say("MXFS-PREP err errno=%d at=write", errno); return 1; }
		done += n;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || fsync_parent(o->path) < 0) { say("MXFS-PREP err errno=%d at=fsync", errno); return 1; }
	say("MXFS-PREP ok slots=%" PRIu64, o->slots);
	return 0;
}

/* Fills the 4 KiB block b with the record (run, node, seq) for slot `slot`, stamped with the
 * writer's CLOCK_MONOTONIC (what the kernel lease's deadline is on) and CLOCK_REALTIME (what a
 * fence record's trigger time is in) before the write is issued: a record that landed was
 * submitted at or after its stamps. */
static void make_record(unsigned char *b, uint64_t run, uint64_t node, uint64_t seq, uint64_t slot)
{
	uint64_t t = now_ms(), real = clock_ms(CLOCK_REALTIME);
	uint32_t node32 = (uint32_t)node, pad = 0;
	memcpy(b, MAGIC, 8);
	memcpy(b + 8, &run, 8);
	memcpy(b + 16, &node32, 4);
	memcpy(b + 20, &pad, 4);
	memcpy(b + 24, &seq, 8);
	memcpy(b + 32, &slot, 8);
	memcpy(b + 40, &t, 8);
	memcpy(b + 48, &real, 8);
	fill(b + 56, SUM_OFF - 56, run, node, seq);
	uint64_t sum = fnv1a(b, SUM_OFF, FNV_INIT);
	memcpy(b + SUM_OFF, &sum, 8);
}

/* If b holds a whole record of run `run`, its node and seq; else 0. */
static int parse_record(const unsigned char *b, uint64_t run, uint32_t *node, uint64_t *seq)
{
	uint64_t r, sum;
	if (memcmp(b, MAGIC, 8)) return 0;
	memcpy(&r, b + 8, 8);
	if (r != run) return 0;
	memcpy(&sum, b + SUM_OFF, 8);
	if (fnv1a(b, SUM_OFF, FNV_INIT) != sum) return 0;
	memcpy(node, b + 16, 4);
	memcpy(seq, b + 24, 8);
	return 1;
}

static int cmd_records(struct opts *o)
{
	if (!o->have_node || !o->have_run || !o->slots) die_usage("records needs --node, --run and --slots");
	int fd = open(o->path, O_WRONLY | O_DIRECT | O_DSYNC);
	if (fd < 0) { say("MXFS-REC-END node=%" PRIu64 " ok=0 err=1 open_errno=%d", o->node, errno); return 1; }
	unsigned char *b;
	if (posix_memalign((void **)&b, BLK, BLK)) return 1;
	uint64_t ok = 0, err = 0, consecutive = 0, first_err = 0, last_ok = 0, late_ok = 0;
	for (uint64_t seq = 1; seq <= o->slots && !stop_requested; seq++) {
		uint64_t slot = seq - 1;
		make_record(b, o->run, o->node, seq, slot);
		ssize_t w = pwrite(fd, b, BLK, (off_t)(slot * BLK));
		if (w == BLK) {
			ok++; last_ok = seq; consecutive = 0;
			if (first_err) late_ok++;
			say("MXFS-REC node=%" PRIu64 " seq=%" PRIu64 " ok", o->node, seq);
		} else {
			int e = w < 0 ? errno : EIO;
			err++; consecutive++;
			if (!first_err) first_err = seq;
			say("MXFS-REC node=%" PRIu64 " seq=%" PRIu64 " err errno=%d", o->node, seq, e);
			if (consecutive >= o->max_errors) break;
		}
		if (o->interval_ms) sleep_ms((unsigned)o->interval_ms);
	}
	say("MXFS-REC-END node=%" PRIu64 " ok=%" PRIu64 " err=%" PRIu64 " first_err=%" PRIu64 " last_ok=%" PRIu64 " late_ok=%" PRIu64,
	    o->node, ok, err, first_err, last_ok, late_ok);
	close(fd);
	return err ? 1 : 0;
}

static int cmd_hold(struct opts *o)
{
	if (!o->have_node || !o->have_run) die_usage("hold needs --node and --run");
	int fd = open(o->path, O_WRONLY | O_DIRECT);
	if (fd < 0) { say("MXFS-HOLD node=%" PRIu64 " open errno=%d", o->node, errno); return 1; }
	unsigned char *b;
	if (posix_memalign((void **)&b, BLK, BLK)) return 1;
	uint64_t writes = 0, errors = 0;
	for (uint64_t seq = 1; !stop_requested; seq++) {
		make_record(b, o->run, o->node, seq, 0);
		if (pwrite(fd, b, BLK, 0) == BLK) writes++; else errors++;
		sleep_ms(o->interval_ms ? (unsigned)o->interval_ms : 1);
	}
	say("MXFS-HOLD node=%" PRIu64 " writes=%" PRIu64 " errors=%" PRIu64, o->node, writes, errors);
	close(fd);
	return errors ? 1 : 0;
}

static int cmd_witness(struct opts *o)
{
	if (!o->have_node || !o->have_run || !o->watch_ms) die_usage("witness needs --node, --run and --watch-ms");
	int fd = open(o->path, O_RDWR | O_DIRECT);
	if (fd < 0) { say("MXFS-WITNESS open errno=%d", errno); return 1; }
	unsigned char *b;
	if (posix_memalign((void **)&b, BLK, BLK)) return 1;
	make_record(b, o->run, o->node, 1, 0);
	if (pwrite(fd, b, BLK, 0) != BLK) { say("MXFS-WITNESS write errno=%d", errno); return 1; }
	uint64_t t0 = now_ms(), reads = 0;
	while (now_ms() - t0 < o->watch_ms) {
		uint32_t node;
		uint64_t seq;
		if (pread(fd, b, BLK, 0) != BLK) { say("MXFS-WITNESS read errno=%d", errno); return 1; }
		reads++;
		if (parse_record(b, o->run, &node, &seq) && node != o->node) {
			say("MXFS-WITNESS intruder node=%u seq=%" PRIu64 " after=%" PRIu64 " ms", node, seq, now_ms() - t0);
			return 1;
		}
		sleep_ms(o->interval_ms ? (unsigned)o->interval_ms : 1);
	}
	say("MXFS-WITNESS clean reads=%" PRIu64, reads);
	close(fd);
	return 0;
}

static int write_file(const char *path, const unsigned char *data, size_t n, const char **step)
{
	*step = "open";
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return errno;
	*step = "write";
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, data + off, n - off);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) { int e = w < 0 ? errno : EIO; close(fd); return e; }
		off += (size_t)w;
	}
	*step = "fsync";
	if (fsync(fd) < 0) { int e = errno; close(fd); return e; }
	*step = "close";
	if (close(fd) < 0) return errno;
	*step = "fsync-dir";
	if (fsync_parent(path) < 0) return errno;
	return 0;
}

static int cmd_files(struct opts *o)
{
	if (!o->have_node || !o->have_run || !o->count) die_usage("files needs --node, --run and --count");
	unsigned char *data = malloc(o->size ? o->size : 1);
	if (!data) return 1;
	uint64_t ok = 0, err = 0, consecutive = 0, late_ok = 0;
	for (uint64_t i = 1; i <= o->count && !stop_requested; i++) {
		char name[64], path[4096];
		snprintf(name, sizeof name, "f%" PRIu64 "-%06" PRIu64, o->node, i);
		snprintf(path, sizeof path, "%s/%s", o->path, name);
		fill(data, o->size, o->run, o->node, i);
		uint64_t sum = fnv1a(data, o->size, FNV_INIT);
		const char *step;
		int e = write_file(path, data, o->size, &step);
		if (!e) {
			ok++; consecutive = 0;
			if (err) late_ok++;
			say("MXFS-FILE node=%" PRIu64 " name=%s size=%" PRIu64 " sum=%016" PRIx64 " ok", o->node, name, o->size, sum);
		} else {
			err++; consecutive++;
			say("MXFS-FILE node=%" PRIu64 " name=%s err errno=%d at=%s", o->node, name, e, step);
			if (consecutive >= o->max_errors) break;
		}
		if (o->interval_ms) sleep_ms((unsigned)o->interval_ms);
	}
	say("MXFS-FILE-END node=%" PRIu64 " ok=%" PRIu64 " err=%" PRIu64 " late_ok=%" PRIu64, o->node, ok, err, late_ok);
	return err ? 1 : 0;
}

static int cmd_check_files(struct opts *o)
{
	FILE *m = fopen(o->path2, "r");
	if (!m) { say("CHECK-FILES cannot open manifest %s errno=%d", o->path2, errno); return 1; }
	char name[256];
	uint64_t size, sum, total = 0, good = 0;
	while (fscanf(m, "%255s %" SCNu64 " %" SCNx64, name, &size, &sum) == 3) {
		char path[4096];
		total++;
		snprintf(path, sizeof path, "%s/%s", o->path, name);
		int fd = open(path, O_RDONLY);
		if (fd < 0) { say("CHECK-FILES missing %s errno=%d", name, errno); continue; }
		uint64_t h = FNV_INIT, n = 0;
		unsigned char buf[65536];
		ssize_t r;
		while ((r = read(fd, buf, sizeof buf)) > 0) { h = fnv1a(buf, (size_t)r, h); n += (uint64_t)r; }
		int e = r < 0 ? errno : 0;
		close(fd);
		if (e) say("CHECK-FILES unreadable %s errno=%d", name, e);
		else if (n != size || h != sum) say("CHECK-FILES mismatch %s size=%" PRIu64 "/%" PRIu64 " sum=%016" PRIx64 "/%016" PRIx64, name, n, size, h, sum);
		else good++;
	}
	fclose(m);
	say("CHECK-FILES total=%" PRIu64 " ok=%" PRIu64 " bad=%" PRIu64, total, good, total - good);
	return total == good ? 0 : 1;
}

static int cmd_scan(struct opts *o)
{
	if (!o->have_run) die_usage("scan needs --run");
	int fd = open(o->path, O_RDONLY);
	if (fd < 0) { say("SCAN cannot open %s errno=%d", o->path, errno); return 1; }
	static unsigned char buf[BLK * 256];
	uint64_t found = 0;
	off_t off = 0;
	for (;;) {
		/* Skip holes of a sparse image (most of it). */
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0) break;
		off = data & ~(off_t)(BLK - 1);
		ssize_t r = pread(fd, buf, sizeof buf, off);
		if (r <= 0) break;
		for (ssize_t i = 0; i + BLK <= r; i += BLK) {
			unsigned char *b = buf + i;
			uint64_t run, seq, slot, mono, real;
			uint32_t node;
			if (memcmp(b, MAGIC, 8)) continue;
			memcpy(&run, b + 8, 8);
			if (run != o->run) continue;
			if (!parse_record(b, o->run, &node, &seq)) { say("SCAN torn block at off=%lld", (long long)(off + i)); continue; }
			memcpy(&slot, b + 32, 8);
			memcpy(&mono, b + 40, 8);
			memcpy(&real, b + 48, 8);
			say("REC node=%u seq=%" PRIu64 " slot=%" PRIu64 " off=%lld mono_ms=%" PRIu64 " real_ms=%" PRIu64,
			    node, seq, slot, (long long)(off + i), mono, real);
			found++;
		}
		off += r - (r % BLK);
		if (r % BLK) break;
	}
	close(fd);
	say("SCAN records=%" PRIu64, found);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (argc < 2) die_usage("missing command");
	const char *c = argv[1];
	if (!strcmp(c, "prep")) { parse(argc, argv, &o, 1); return cmd_prep(&o); }
	if (!strcmp(c, "records")) { parse(argc, argv, &o, 1); return cmd_records(&o); }
	if (!strcmp(c, "files")) { parse(argc, argv, &o, 1); return cmd_files(&o); }
	if (!strcmp(c, "hold")) { parse(argc, argv, &o, 1); return cmd_hold(&o); }
	if (!strcmp(c, "witness")) { parse(argc, argv, &o, 1); return cmd_witness(&o); }
	if (!strcmp(c, "check-files")) { parse(argc, argv, &o, 2); return cmd_check_files(&o); }
	if (!strcmp(c, "scan")) { parse(argc, argv, &o, 1); return cmd_scan(&o); }
	die_usage("unknown command");
}
