/**
 * NdjsonFileSink: the trace as rotating NDJSON files ([trace] file, file_max_bytes,
 * file_keep): one JSON event per line, appended in batches (every flushMs, or sooner when a
 * batch is large) by asynchronous writes, one at a time and in order, so recording never waits
 * for the disk. When the next line would take the file past file_max_bytes it is renamed
 * FILE.1 (FILE.1 -> FILE.2 ..., the oldest beyond file_keep deleted) and a new FILE is
 * started: a batch is split at the line where that happens, so no file passes file_max_bytes
 * (unless one line is longer than it). If the disk does not keep up (more than maxPendingBytes
 * waiting to be written) a batch is dropped and counted, never buffered without bound.
 * Files from a crashed node lose at most the last flush interval.
 *
 * A file that cannot be written (its directory removed or unwritable, the disk full) is let go
 * and its events dropped and counted, the node carrying on with the ring; the file is tried
 * again on the first flush retryMs later, and writing resumes when it can be opened. A FILE
 * removed by hand is written (unlinked) until the next rotation, which starts a new one.
 */
import fs from 'node:fs';
import type { TraceSink } from './recorder';

export interface FileSinkOptions {
  file: string;
  maxBytes: number;
  keep: number;
  flushMs?: number;
  maxPendingBytes?: number;
  /** Between a failure and the next try to open the file (ms, default 5000). */
  retryMs?: number;
  /** Told once per failure to write (the node carries on without the file)... */
  onError?(err: Error): void;
  /** ...and when a write succeeded again after one. */
  onResume?(): void;
}

export class NdjsonFileSink implements TraceSink {
  private batch: string[] = [];
  private batchBytes = 0;
  private timer?: NodeJS.Timeout;
  /** The open file (opened synchronously, so a rotation always renames a file that exists). */
  private fd = -1;
  private size = 0;
  /** Chunks waiting to be written, in order, each with the file it belongs to. */
  private queue: Array<{ fd: number; buf: Buffer }> = [];
  private pendingBytes = 0;
  private writing = false;
  private failed = false;
  /** When the last failure happened (Date.now()). */
  private failedAt = 0;
  /** A failure was told (onError) and no write has succeeded since. */
  private down = false;
  private closed = false;
  private drained?: () => void;
  dropped = 0;

  constructor(private readonly o: FileSinkOptions) {
    this.open();
  }

  writeLine(json: string): void {
    if (this.closed) return;
    const line = json + '\n';
    this.batch.push(line);
    this.batchBytes += line.length;
    if (this.batchBytes >= 256 * 1024) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.flush(); }, this.o.flushMs ?? 50);
      this.timer.unref();
    }
  }

  private open(): void {
    let fd = -1;
    try {
      fd = fs.openSync(this.o.file, 'a');
      this.size = fs.fstatSync(fd).size;
      this.fd = fd;
    } catch (e) {
      if (fd >= 0) fs.close(fd, () => {});
      this.fail(e as Error);
    }
  }

  /** Stops writing: the open file is let go (closed once nothing queued is for it), its space with it. */
  private fail(err: Error): void {
    // A file that opens but cannot be written (a full disk) fails again after each retry: told once.
    if (!this.down) { this.down = true; this.o.onError?.(err); }
    this.failed = true;
    this.failedAt = Date.now();
    this.detach();
  }

  /** Lets go of the open file: closed now, or by pump() after the last chunk queued for it. */
  private detach(): void {
    const fd = this.fd;
    this.fd = -1;
    this.size = 0;
    if (fd >= 0 && !this.queue.some((q) => q.fd === fd)) fs.close(fd, () => {});
  }

  /** After a failure, retryMs on: opens the file again; true if it is open. */
  private retry(): boolean {
    if (Date.now() - this.failedAt < (this.o.retryMs ?? 5000)) return false;
    this.failed = false;
    this.open();
    return !this.failed;
  }

  private flush(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.batch.length === 0) return;
    const lines = this.batch;
    const buf = Buffer.from(lines.join(''));
    this.batch = [];
    this.batchBytes = 0;
    if ((this.failed && !this.retry()) || this.pendingBytes > (this.o.maxPendingBytes ?? 8 * 1024 * 1024)) {
      this.dropped += lines.length;
      return;
    }
    if (this.size + buf.length <= this.o.maxBytes) { this.append(buf); return; }
    // The batch goes past the limit: split it at the line that would, rotate there (each time).
    let from = 0, bytes = 0;
    for (let i = 0; i < lines.length; i++) {
      const b = Buffer.byteLength(lines[i]!);
      if (this.size + bytes + b > this.o.maxBytes && this.size + bytes > 0) {
        if (bytes > 0) this.append(Buffer.from(lines.slice(from, i).join('')));
        from = i;
        bytes = 0;
        this.rotate();
        if (this.failed) { this.dropped += lines.length - i; return; }
      }
      bytes += b;
    }
    if (bytes > 0) this.append(Buffer.from(lines.slice(from).join('')));
  }

  /** Queues a chunk for the open file. */
  private append(buf: Buffer): void {
    this.queue.push({ fd: this.fd, buf });
    this.pendingBytes += buf.length;
    this.size += buf.length;
    this.pump();
  }

  /** One write in flight at a time, in order; a file left by a rotation is closed after its last chunk. */
  private pump(): void {
    if (this.writing) return;
    const item = this.queue[0];
    if (!item) { this.drained?.(); return; }
    this.writing = true;
    fs.write(item.fd, item.buf, 0, item.buf.length, null, (err, written) => {
      this.writing = false;
      if (err) {
        // Every queued chunk is dropped: its events counted.
        for (const q of this.queue) for (let i = q.buf.indexOf(10); i >= 0; i = q.buf.indexOf(10, i + 1)) this.dropped++;
        for (const fd of new Set(this.queue.map((q) => q.fd))) if (fd !== this.fd) fs.close(fd, () => {});
        this.queue = [];
        this.pendingBytes = 0;
        this.fail(err);
        this.drained?.();
        return;
      }
      if (this.down) { this.down = false; this.o.onResume?.(); }
      if (written < item.buf.length) { item.buf = item.buf.subarray(written); this.pendingBytes -= written; this.pump(); return; }
      this.queue.shift();
      this.pendingBytes -= item.buf.length;
      if (item.fd !== this.fd && !this.queue.some((q) => q.fd === item.fd)) fs.close(item.fd, () => {});
      this.pump();
    });
  }

  /** FILE -> FILE.1 -> ... -> FILE.keep (the oldest dropped); chunks still queued go to the renamed file. */
  private rotate(): void {
    const f = this.o.file;
    try {
      if (this.o.keep === 0) fs.rmSync(f, { force: true });
      else {
        fs.rmSync(`${f}.${this.o.keep}`, { force: true });
        for (let i = this.o.keep - 1; i >= 1; i--) if (fs.existsSync(`${f}.${i}`)) fs.renameSync(`${f}.${i}`, `${f}.${i + 1}`);
        // Removed by hand (or with its directory): nothing to rename; open() starts a new one.
        if (fs.existsSync(f)) fs.renameSync(f, `${f}.1`);
      }
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.detach();
    this.open();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.writing || this.queue.length > 0) await new Promise<void>((r) => { this.drained = r; });
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Every event in a trace file and its rotated predecessors, oldest first (bad lines are skipped and counted). */
export function readTraceFiles(file: string, keep = 64): { lines: string[]; files: string[] } {
  const files: string[] = [];
  for (let i = keep; i >= 1; i--) if (fs.existsSync(`${file}.${i}`)) files.push(`${file}.${i}`);
  if (fs.existsSync(file)) files.push(file);
  const lines: string[] = [];
  for (const f of files) for (const l of fs.readFileSync(f, 'utf8').split('\n')) if (l.trim()) lines.push(l);
  return { lines, files };
}
