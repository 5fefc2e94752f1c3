/**
 * What the kernel volume driver reads and runs on this host, behind one interface so the
 * driver is tested without root or a module: mount(8) and umount(8), /proc/self/mountinfo,
 * stat(2) of block devices and mountpoints, and the kernel log (/dev/kmsg), where XFS says
 * why a mount failed.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync, statSync } from 'node:fs';

/** timedOut: the command was killed (its time bound ran out, or a signal): what it did is unknown. */
export interface CommandResult { code: number; stdout: string; stderr: string; timedOut?: boolean }

export interface MountEntry {
  /** "major:minor" of the mounted block device (mountinfo field 3). */
  majorMinor: string;
  mountpoint: string;
  fstype: string;
  source: string;
}

export type BlockDeviceLookup =
  | { kind: 'block'; major: number; minor: number }
  | { kind: 'missing' }
  | { kind: 'not-block' };

export interface KmsgRecord { seq: number; message: string }

export interface KernelHost {
  /** Runs argv[0] with the rest as arguments (no shell); never rejects. */
  run(argv: string[], timeoutMs?: number): Promise<CommandResult>;
  mounts(): MountEntry[];
  blockDevice(path: string): BlockDeviceLookup;
  isDirectory(path: string): boolean;
  /** Sequence number of the newest kernel log record (-1: none or unreadable). */
  kmsgMark(): number;
  /** Kernel log records newer than `mark`. */
  kmsgSince(mark: number): KmsgRecord[];
}

/** glibc's dev_t (what stat(2) returns, as Node gives it) to major and minor. */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));
  return { major, minor };
}

/** The kernel's own dev_t encoding (MKDEV: major << 20 | minor), as VOLUME_REGISTER takes it. */
export function kernelDev(major: number, minor: number): number {
  if (major < 0 || major >= 1 << 12 || minor < 0 || minor >= 1 << 20) {
    throw new RangeError(`device ${major}:${minor} does not fit a kernel dev_t`);
  }
  return ((major << 20) | minor) >>> 0;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Lines of /proc/<pid>/mountinfo: "id parent maj:min root mountpoint opts [optional...] - fstype source superopts". */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (f.length < 10 || dash < 0 || dash + 2 >= f.length) continue;
    out.push({
      majorMinor: f[2]!, mountpoint: unescapeMountField(f[4]!), fstype: f[dash + 1]!, source: unescapeMountField(f[dash + 2]!),
    });
  }
  return out;
}

/** "prio,seq,usec,flags[,...];message" records of /dev/kmsg (continuation lines dropped). */
export function parseKmsgRecord(rec: string): KmsgRecord | undefined {
  const semi = rec.indexOf(';');
  if (semi < 0) return undefined;
  const seq = Number(rec.slice(0, semi).split(',')[1]);
  if (!Number.isInteger(seq)) return undefined;
  const message = rec.slice(semi + 1).split('\n')[0]!;
  return { seq, message };
}

/** Every record /dev/kmsg holds now (one record per read; O_NONBLOCK ends at EAGAIN). */
function readKmsg(): KmsgRecord[] {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  const out: KmsgRecord[] = [];
  const buf = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue; // overwritten while reading
        break; // EAGAIN: nothing more
      }
      if (n <= 0) break;
      const r = parseKmsgRecord(buf.subarray(0, n).toString('utf8'));
      if (r) out.push(r);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

export const systemHost: KernelHost = {
  run(argv, timeoutMs = 120_000) {
    return new Promise((resolve) => {
      execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        const why = err && typeof (err as { code?: unknown }).code !== 'number' ? `${err.message}\n` : '';
        const killed = err !== null && ((err as { killed?: boolean }).killed === true || typeof (err as { signal?: unknown }).signal === 'string');
        resolve({ code, stdout, stderr: why + stderr, timedOut: killed });
      });
    });
  },
  mounts() {
    try {
      return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
    } catch {
      return [];
    }
  },
  blockDevice(path) {
    try {
      const st = statSync(path, { bigint: true });
      if (!st.isBlockDevice()) return { kind: 'not-block' };
      return { kind: 'block', ...splitDev(st.rdev) };
    } catch {
      return { kind: 'missing' };
    }
  },
  isDirectory(path) {
    try {
      return statSync(path).isDirectory();
    } catch {
      return false;
    }
  },
  kmsgMark() {
    const all = readKmsg();
    return all.length ? all[all.length - 1]!.seq : -1;
  },
  kmsgSince(mark) {
    return readKmsg().filter((r) => r.seq > mark);
  },
};
