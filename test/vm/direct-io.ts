/**
 * O_DIRECT block I/O for the VM tests, through libc with koffi (Node has no O_DIRECT with
 * aligned buffers): what the writers, the device benchmark and the disk checksum use, so a
 * read sees the disk, not a page cache, and a write's error is the bio's.
 */
import { createHash } from 'node:crypto';
import koffi from 'koffi';

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_DIRECT = 0o40000;
export const O_DSYNC = 0o10000;

interface Libc {
  open: (path: string, flags: number, ...rest: unknown[]) => number;
  close(fd: number): number;
  pread(fd: number, buf: bigint, n: number, off: bigint): number;
  pwrite(fd: number, buf: bigint, n: number, off: bigint): number;
  aligned_alloc(align: number, size: number): bigint | null;
  free(p: bigint): void;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  const c = koffi.load('libc.so.6');
  libc = {
    open: c.func('int open(const char *path, int flags, ...)') as Libc['open'],
    close: c.func('int close(int fd)'),
    pread: c.func('intptr_t pread(int fd, void *buf, size_t n, int64_t off)'),
    pwrite: c.func('intptr_t pwrite(int fd, void *buf, size_t n, int64_t off)'),
    aligned_alloc: c.func('void *aligned_alloc(size_t align, size_t size)'),
    free: c.func('void free(void *p)'),
  };
  return libc;
}

const ERRNO_NAMES: Record<number, string> = { 4: 'EINTR', 5: 'EIO', 6: 'ENXIO', 13: 'EACCES', 16: 'EBUSY', 22: 'EINVAL', 28: 'ENOSPC', 30: 'EROFS', 37: 'ENOLCK' };
export function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `errno${e}`;
}

export class IoError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op}: ${errnoName(errno)}`);
    this.name = 'IoError';
  }
  get code(): string { return errnoName(this.errno); }
}

/** A page-aligned native buffer and a view of it. */
export class AlignedBuffer {
  readonly ptr: bigint;
  readonly bytes: Uint8Array;
  constructor(readonly size: number) {
    const p = lib().aligned_alloc(4096, size);
    if (!p) throw new Error('aligned_alloc failed');
    this.ptr = p;
    this.bytes = new Uint8Array(koffi.view(p, size));
  }
  free(): void { lib().free(this.ptr); }
}

export class DirectFile {
  private constructor(readonly fd: number, readonly path: string) {}

  static open(path: string, flags: number): DirectFile {
    const fd = lib().open(path, flags, 'int', 0);
    if (fd < 0) throw new IoError(`open ${path}`, koffi.errno());
    return new DirectFile(fd, path);
  }

  /** Writes buf.size bytes at `off`; throws IoError with the errno. */
  write(buf: AlignedBuffer, off: number, len = buf.size): void {
    const n = lib().pwrite(this.fd, buf.ptr, len, BigInt(off));
    if (n !== len) throw new IoError(`pwrite ${this.path}@${off}`, n < 0 ? koffi.errno() : 28);
  }

  read(buf: AlignedBuffer, off: number, len = buf.size): number {
    const n = lib().pread(this.fd, buf.ptr, len, BigInt(off));
    if (n < 0) throw new IoError(`pread ${this.path}@${off}`, koffi.errno());
    return n;
  }

  close(): void { lib().close(this.fd); }
}

/** sha1 of a device's first sizeMiB MiB, read with O_DIRECT (what is on the disk). */
export function diskChecksum(path: string, sizeMiB: number): string {
  const f = DirectFile.open(path, O_RDONLY | O_DIRECT);
  const buf = new AlignedBuffer(4 << 20);
  const h = createHash('sha1');
  try {
    for (let off = 0; off < sizeMiB << 20; off += buf.size) {
      const n = f.read(buf, off);
      h.update(buf.bytes.subarray(0, n));
      if (n < buf.size) break;
    }
  } finally {
    f.close();
    buf.free();
  }
  return h.digest('hex');
}
