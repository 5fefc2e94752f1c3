/**
 * NdjsonFileSink: the trace as rotating NDJSON files ([trace] file, file_max_bytes,
 * file_keep): one JSON event per line, appended in batches (every flushMs, or sooner when a
 * batch is large) so recording never waits for the disk. When the file would pass
 * file_max_bytes it is renamed FILE.1 (FILE.1 -> FILE.2 ..., the oldest beyond file_keep
 * deleted) and a new FILE is started. If the disk does not keep up (more than maxPendingBytes
 * waiting to be written) a batch is dropped and counted, never buffered without bound.
 * Files from a crashed node lose at most the last flush interval.
 */
import fs from 'node:fs';
import type { TraceEvent } from './event';
import type { TraceSink } from './recorder';

export interface FileSinkOptions {
  file: string;
  maxBytes: number;
  keep: number;
  flushMs?: number;
  maxPendingBytes?: number;
  /** Told once per failure to write (the node carries on without the file). */
  onError?(err: Error): void;
}

export class NdjsonFileSink implements TraceSink {
  private batch: string[] = [];
  private batchBytes = 0;
  private timer?: NodeJS.Timeout;
  private stream?: fs.WriteStream;
  private size = 0;
  private failed = false;
  private closed = false;
  dropped = 0;

  constructor(private readonly o: FileSinkOptions) {
    try { this.size = fs.statSync(o.file).size; } catch { this.size = 0; }
    this.open();
  }

  write(e: TraceEvent): void {
    if (this.closed) return;
    const line = JSON.stringify(e) + '\n';
    this.batch.push(line);
    this.batchBytes += line.length;
    if (this.batchBytes >= 256 * 1024) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.flush(); }, this.o.flushMs ?? 50);
      this.timer.unref();
    }
  }

  private open(): void {
    const s = fs.createWriteStream(this.o.file, { flags: 'a' });
    s.on('error', (err) => {
      if (!this.failed) this.o.onError?.(err);
      this.failed = true;
    });
    this.stream = s;
  }

  private flush(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.batch.length === 0) return;
    const n = this.batch.length;
    const text = this.batch.join('');
    this.batch = [];
    this.batchBytes = 0;
    if (this.failed || !this.stream || this.stream.writableLength > (this.o.maxPendingBytes ?? 8 * 1024 * 1024)) {
      this.dropped += n;
      return;
    }
    const bytes = Buffer.byteLength(text);
    if (this.size > 0 && this.size + bytes > this.o.maxBytes) this.rotate();
    this.stream.write(text);
    this.size += bytes;
  }

  /** FILE -> FILE.1 -> ... -> FILE.keep (the oldest dropped); the old stream ends into its renamed file. */
  private rotate(): void {
    try {
      const f = this.o.file;
      if (this.o.keep === 0) fs.rmSync(f, { force: true });
      else {
        fs.rmSync(`${f}.${this.o.keep}`, { force: true });
        for (let i = this.o.keep - 1; i >= 1; i--) if (fs.existsSync(`${f}.${i}`)) fs.renameSync(`${f}.${i}`, `${f}.${i + 1}`);
        fs.renameSync(f, `${f}.1`);
      }
    } catch (e) {
      this.o.onError?.(e as Error);
    }
    this.stream?.end();
    this.size = 0;
    this.open();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    const s = this.stream;
    if (s) await new Promise<void>((r) => s.end(() => r()));
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
