/**
 * Disk probes of the inode-lock VM tests (hooks-tests.sh): what is on the disk, read and
 * written with O_DIRECT on the block device, beside (not through) the mounted XFS.
 *   hooks-probe find DEV MARKER        prints "FOUND <byte offset>" of the first 4 KiB block
 *                                      starting with MARKER, or "ABSENT"; exit 0 either way
 *   hooks-probe overwrite DEV OFF MARKER   writes a 4 KiB block of MARKER (repeated) at OFF
 *   hooks-probe fill FILE MARKER KIB   writes KIB KiB of MARKER through the page cache (no sync)
 * Markers are ASCII; a block "starts with" MARKER when its first bytes are MARKER.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { AlignedBuffer, DirectFile, O_DIRECT, O_RDONLY, O_RDWR } from './direct-io';

const BLOCK = 4096;

function block(marker: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += marker.length) b.write(marker, i, 'ascii');
  return b;
}

function find(dev: string, marker: string): void {
  const f = DirectFile.open(dev, O_RDONLY | O_DIRECT);
  const buf = new AlignedBuffer(1 << 20);
  const want = Buffer.from(marker, 'ascii');
  try {
    for (let off = 0; ; off += buf.size) {
      const n = f.read(buf, off);
      for (let i = 0; i + want.length <= n; i += BLOCK) {
        if (Buffer.from(buf.bytes.buffer, buf.bytes.byteOffset + i, want.length).equals(want)) {
          console.log(`FOUND ${off + i}`);
          return;
        }
      }
      if (n < buf.size) break;
    }
    console.log('ABSENT');
  } finally {
    f.close();
    buf.free();
  }
}

function overwrite(dev: string, off: number, marker: string): void {
  const f = DirectFile.open(dev, O_RDWR | O_DIRECT);
  const buf = new AlignedBuffer(BLOCK);
  try {
    buf.bytes.set(block(marker));
    f.write(buf, off);
    console.log(`WROTE ${off}`);
  } finally {
    f.close();
    buf.free();
  }
}

function fill(file: string, marker: string, kib: number): void {
  // No O_TRUNC: XFS writes a truncated file back at its last close, and the test needs the
  // pages to stay dirty until the blocking callback.
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT, 0o644);
  const b = block(marker);
  for (let i = 0; i < kib / 4; i++) writeSync(fd, b);
  closeSync(fd);
  console.log(`FILLED ${kib} KiB`);
}

const [cmd, ...a] = process.argv.slice(2);
try {
  if (cmd === 'find' && a.length === 2) find(a[0]!, a[1]!);
  else if (cmd === 'overwrite' && a.length === 3) overwrite(a[0]!, Number(a[1]), a[2]!);
  else if (cmd === 'fill' && a.length === 3) fill(a[0]!, a[1]!, Number(a[2]));
  else { console.error('usage: hooks-probe find DEV MARKER | overwrite DEV OFF MARKER | fill FILE MARKER KIB'); process.exit(2); }
} catch (e) {
  console.error(`hooks-probe: ${(e as Error).message}`);
  process.exit(1);
}
