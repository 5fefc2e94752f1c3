/**
 * I/O processes of the kernel volume VM tests (test/vm/volume-tests.ts runs them):
 *   writer-file PATH                    O_DSYNC 4 KiB appends to a file (an application on XFS)
 *   writer-device PATH OFF_MIB SIZE_MIB  O_DIRECT 64 KiB writes cycling over a device region
 *   open-write PATH [HOLD_MS]            open for writing (SIGUSR2 interrupts a waiting open)
 *   bench RAW STACKED OFF_MIB SIZE_MIB ROUNDS   O_DIRECT sequential 1 MiB writes and reads,
 *                                        random 4 KiB 70/30 reads/writes, the two devices
 *                                        interleaved operation by operation
 *   checksum PATH SIZE_MIB               sha1 of the first SIZE_MIB MiB, read with O_DIRECT
 *   write-once PATH OFF TEXT             one O_DIRECT 4 KiB write of TEXT (repeated) at byte OFF:
 *                                        "ONCE issuing ns=..." before it, "ONCE ok|err CODE ns=..."
 *                                        after it (the fence fallback tests hold it below the gate)
 * Writers print "WRITER ready", then on their first failure "WRITER first-error CODE ...",
 * keep trying (every failure counted) and on SIGTERM print "WRITER done ok=N errors=M ...".
 * Times are process.hrtime.bigint() (CLOCK_MONOTONIC, what the kernel lease uses).
 */
import { constants, openSync, writeSync } from 'node:fs';
import { constants as os } from 'node:os';
import { AlignedBuffer, DirectFile, diskChecksum, IoError, O_DIRECT, O_RDWR } from './direct-io';

const MiB = 1 << 20;
const now = () => process.hrtime.bigint();
const out = (line: string) => process.stdout.write(`${line}\n`);

/** The errno's name (libuv has no name for some, e.g. ENOLCK: "Unknown system error -37"). */
function errCode(e: unknown): string {
  if (e instanceof IoError) return e.code;
  const errno = (e as NodeJS.ErrnoException).errno;
  if (typeof errno === 'number') {
    const name = Object.entries(os.errno).find(([, v]) => v === -errno || v === errno)?.[0];
    if (name) return name;
  }
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** The loop of both writers: one write per turn of the event loop, so SIGTERM is seen. */
function runWriter(writeOne: (seq: number) => void): void {
  let ok = 0;
  let errors = 0;
  let seq = 0;
  let lastOk = 0n;
  let first: { code: string; at: bigint } | undefined;
  let stop = false;
  process.on('SIGTERM', () => { stop = true; });
  out('WRITER ready');
  const step = () => {
    if (stop) {
      out(`WRITER done ok=${ok} errors=${errors} first_error=${first?.code ?? '-'} first_error_ns=${first?.at ?? 0} last_ok_ns=${lastOk}`);
      process.exit(0);
    }
    try {
      writeOne(seq++);
      ok++;
      lastOk = now();
      setImmediate(step);
    } catch (e) {
      errors++;
      if (!first) {
        first = { code: errCode(e), at: now() };
        out(`WRITER first-error ${first.code} ns=${first.at} ok=${ok} last_ok_ns=${lastOk}`);
      }
      setTimeout(step, 20); // keep knocking, slowly
    }
  };
  step();
}

function writerFile(path: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC, 0o644);
  const block = Buffer.alloc(4096, 0x5a);
  runWriter((seq) => {
    block.writeUInt32LE(seq, 0);
    writeSync(fd, block);
  });
}

function writerDevice(path: string, offMiB: number, sizeMiB: number): void {
  const f = DirectFile.open(path, O_RDWR | O_DIRECT);
  const buf = new AlignedBuffer(64 * 1024);
  buf.bytes.fill(0xa5);
  const slots = (sizeMiB * MiB) / buf.size;
  runWriter((seq) => {
    new DataView(buf.bytes.buffer, buf.bytes.byteOffset).setUint32(0, seq, true);
    f.write(buf, offMiB * MiB + (seq % slots) * buf.size);
  });
}

function writeOnce(path: string, off: number, text: string): void {
  const buf = new AlignedBuffer(4096);
  buf.bytes.set(Buffer.from(text.repeat(Math.ceil(4096 / text.length)).slice(0, 4096)));
  let f: DirectFile;
  try {
    f = DirectFile.open(path, O_RDWR | O_DIRECT);
  } catch (e) {
    out(`ONCE err ${errCode(e)} (open) ns=${now()}`);
    process.exit(1);
  }
  out(`ONCE issuing ns=${now()}`);
  try {
    f.write(buf, off);
    out(`ONCE ok ns=${now()}`);
  } catch (e) {
    out(`ONCE err ${errCode(e)} ns=${now()}`);
  }
  f.close();
  process.exit(0);
}

/** open(2) through libc, not fs.openSync: libuv retries an open that returned EINTR. */
function openWrite(path: string, holdMs: number): void {
  process.on('SIGUSR2', () => { /* only to interrupt a waiting open() */ });
  const t0 = now();
  let f: DirectFile;
  try {
    f = DirectFile.open(path, O_RDWR);
  } catch (e) {
    out(`OPEN err ${errCode(e)} after ${(Number(now() - t0) / 1e6).toFixed(1)} ms`);
    process.exit(1);
  }
  out(`OPEN ok after ${(Number(now() - t0) / 1e6).toFixed(1)} ms`);
  setTimeout(() => { f.close(); out('OPEN closed'); process.exit(0); }, holdMs);
}

/**
 * The stacked device against the raw disk, interleaved operation by operation (which device
 * goes first alternates) so both see the same load: the machine is shared and TCG is slow,
 * only the ratio means something. Sequential: 1 MiB O_DIRECT writes then reads over the
 * region; mixed: random 4 KiB, 7 reads for 3 writes, offsets from a fixed LCG.
 */
function bench(raw: string, stacked: string, offMiB: number, sizeMiB: number, rounds: number): void {
  const devs = [raw, stacked].map((p) => DirectFile.open(p, O_RDWR | O_DIRECT));
  const big = new AlignedBuffer(MiB);
  big.bytes.fill(0x33);
  const small = new AlignedBuffer(4096);
  const ns: Record<string, [bigint, bigint]> = { 'seq-write': [0n, 0n], 'seq-read': [0n, 0n], mixed: [0n, 0n] };
  const timed = (kind: string, i: number, op: (f: DirectFile) => void) => {
    for (const d of i % 2 ? [1, 0] : [0, 1]) {
      const t0 = now();
      op(devs[d]!);
      ns[kind]![d] += now() - t0;
    }
  };
  const blocks = (sizeMiB * MiB) / 4096;
  let x = 12345;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < sizeMiB; i++) timed('seq-write', i, (f) => f.write(big, (offMiB + i) * MiB));
    for (let i = 0; i < sizeMiB; i++) timed('seq-read', i, (f) => f.read(big, (offMiB + i) * MiB));
    for (let i = 0; i < 1000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const off = offMiB * MiB + (x % blocks) * 4096;
      timed('mixed', i, i % 10 < 7 ? (f) => f.read(small, off, 4096) : (f) => f.write(small, off, 4096));
    }
  }
  for (const f of devs) f.close();
  const rate = (kind: string, d: number) => {
    const s = Number(ns[kind]![d]) / 1e9;
    return kind === 'mixed' ? (rounds * 1000) / s : (rounds * sizeMiB) / s;
  };
  for (const [kind, unit] of [['seq-write', 'MB/s'], ['seq-read', 'MB/s'], ['mixed', '4k IOPS']] as const) {
    const a = rate(kind, 0);
    const b = rate(kind, 1);
    out(`BENCH ${kind} ${unit}: raw ${a.toFixed(1)} stacked ${b.toFixed(1)} ratio ${(b / a).toFixed(3)}`);
  }
  out('BENCH done');
}

const [cmd, ...a] = process.argv.slice(2);
const n = (i: number) => Number(a[i]);
switch (cmd) {
  case 'writer-file': writerFile(a[0]!); break;
  case 'writer-device': writerDevice(a[0]!, n(1), n(2)); break;
  case 'open-write': openWrite(a[0]!, a[1] ? n(1) : 0); break;
  case 'bench': bench(a[0]!, a[1]!, n(2), n(3), n(4)); break;
  case 'checksum': out(`CHECKSUM ${diskChecksum(a[0]!, n(1))}`); break;
  case 'write-once': writeOnce(a[0]!, n(1), a[2]!); break;
  default:
    process.stderr.write('usage: volume-io writer-file|writer-device|open-write|bench|checksum|write-once ...\n');
    process.exit(2);
}
