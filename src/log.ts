/**
 * Logging for mxfsd: builds the bunyan logger from the [logging] config section with up to
 * three outputs — an append-mode file that can be reopened after logrotate renames it
 * (SIGHUP), stderr, and syslog datagrams on a unix socket (RFC 3164 local format, as glibc's
 * syslog(3) writes to /dev/log). Actors get child loggers from callers via
 * log.child({ actor }); nothing here knows about actors.
 *
 * stderr carries raw bunyan JSON lines, or, when it is connected to journald (systemd sets
 * $JOURNAL_STREAM to the device:inode of that stream) or `stderr_format = journal`, one line
 * per record with a "<N>" syslog-priority prefix that journald turns into the record's
 * PRIORITY, then the message and the bunyan fields as JSON: `journalctl -p warning` works
 * and no field is lost.
 *
 * Logging must never take the daemon down: a broken syslog socket or a failing file write
 * produces one warning on stderr and the daemon keeps running.
 */
import fs from 'node:fs';
import Logger from 'bunyan';
import type { LoggingConfig } from './config/config';
import { DatagramSender } from './ffi/unix-datagram';

export interface LogHandle {
  log: Logger;
  /** The same outputs without stderr: start-up failures go there in full, and to stderr as one line. */
  quiet: Logger;
  reopen(): void;
  close(): Promise<void>;
  /**
   * Write a record another thread logged to this handle's syslog output only (the cluster
   * worker thread writes its file and stderr output itself; the syslog socket module cannot
   * be loaded in a worker thread). No-op without syslog.
   */
  syslogRecord(rec: Record<string, unknown>): void;
}

export interface LoggerOptions {
  name: string;
  levelOverride?: string;
  stderrStream?: NodeJS.WritableStream;
  /** What $JOURNAL_STREAM and fd 2 say (tests pass their own); default: this process's. */
  stderrIsJournal?: boolean;
}

/** True when fd 2 is the stream systemd connected to journald ($JOURNAL_STREAM = "dev:ino"). */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(2, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

export function createLogger(cfg: LoggingConfig, opts: LoggerOptions): LogHandle {
  // resolveLevel throws on an unknown name; callers validate --log-level first.
  const level = Logger.resolveLevel((opts.levelOverride ?? cfg.level) as Logger.LogLevelString);
  const stderr = opts.stderrStream ?? process.stderr;
  const warn = (msg: string) => { try { stderr.write(`${opts.name}: warning: ${msg}\n`); } catch { /* nowhere left to report */ } };

  const streams: Logger.Stream[] = [];
  let file: ReopenableFile | undefined;
  let syslog: SyslogStream | undefined;
  if (cfg.file !== undefined) {
    file = new ReopenableFile(cfg.file, warn);
    streams.push({ type: 'stream', level, stream: file as unknown as NodeJS.WritableStream });
  }
  if (cfg.syslog) {
    syslog = new SyslogStream(cfg.syslogSocket, cfg.syslogFacility, opts.name, warn);
    streams.push({ type: 'raw', level, stream: syslog as unknown as NodeJS.WritableStream });
  }
  const quietStreams = [...streams];
  if (cfg.stderr) {
    const journal = cfg.stderrFormat === 'journal' || (cfg.stderrFormat === 'auto' && (opts.stderrIsJournal ?? stderrIsJournal()));
    streams.push(journal
      ? { type: 'raw', level, stream: new JournalLines(stderr) as unknown as NodeJS.WritableStream }
      : { type: 'stream', level, stream: stderr });
  }

  const make = (s: Logger.Stream[]) => {
    const l = Logger.createLogger({ name: opts.name, level, streams: s, serializers: Logger.stdSerializers });
    // bunyan re-emits stream errors on the logger; an unhandled 'error' event would crash.
    l.on('error', (err: Error) => warn(`log stream error: ${err.message}`));
    return l;
  };
  const log = make(streams);
  return {
    log,
    quiet: make(quietStreams),
    reopen: () => file?.reopen(),
    syslogRecord: (rec) => { syslog?.write(rec); },
    close: async () => {
      syslog?.close();
      await file?.close();
    },
  };
}

/**
 * Append-only log file behind a stable object, so bunyan keeps one stream while the fd
 * underneath is swapped on reopen(). Opened synchronously at startup so that a bad path is
 * reported immediately; later failures only warn and keep the previous fd.
 */
class ReopenableFile {
  private out: fs.WriteStream | undefined;
  private failed = false;

  constructor(private readonly path: string, private readonly warn: (m: string) => void) {
    this.out = this.open();
  }

  private open(): fs.WriteStream {
    const fd = fs.openSync(this.path, 'a', 0o640);
    const s = fs.createWriteStream(this.path, { fd, flags: 'a' });
    s.on('error', (e) => {
      if (!this.failed) this.warn(`cannot write log file ${this.path}: ${e.message}`);
      this.failed = true;
    });
    return s;
  }

  write(chunk: string): boolean {
    this.out?.write(chunk);
    return true;
  }

  /** logrotate has renamed the file: start a new one at the same path, flush the old one. */
  reopen(): void {
    if (!this.out) return;
    let next: fs.WriteStream;
    try {
      next = this.open();
    } catch (e) {
      this.warn(`cannot reopen log file ${this.path}: ${(e as Error).message}; still writing to the old file`);
      return;
    }
    const old = this.out;
    this.out = next;
    this.failed = false;
    old.end();
  }

  close(): Promise<void> {
    const s = this.out;
    this.out = undefined;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }
}

// ---------------------------------------------------------------------------------------
// Syslog

const FACILITY_CODES: Record<string, number> = {
  user: 1, daemon: 3, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** bunyan level -> syslog severity. fatal maps to crit, not emerg: emerg is wall(1)ed to every terminal. */
export function syslogSeverity(level: number): number {
  if (level >= Logger.FATAL) return 2;  // crit
  if (level >= Logger.ERROR) return 3;  // err
  if (level >= Logger.WARN) return 4;   // warning
  if (level >= Logger.INFO) return 6;   // info
  return 7;                             // debug (debug and trace)
}

export function syslogPriority(facility: string, level: number): number {
  return (FACILITY_CODES[facility] ?? FACILITY_CODES.daemon) * 8 + syslogSeverity(level);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Fields bunyan adds to every record; not repeated in the syslog text. */
const CORE_FIELDS = new Set(['v', 'level', 'name', 'hostname', 'pid', 'time', 'msg', 'src']);
/** Keep datagrams well under common /dev/log receive limits. */
const MAX_DATAGRAM = 8192;

/** "msg {extra fields}" on one line: the record's text in syslog and journal lines. */
export function recordText(rec: Record<string, unknown>): string {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) if (!CORE_FIELDS.has(k)) extra[k] = v;
  let text = String(rec.msg ?? '');
  if (Object.keys(extra).length > 0) {
    let json: string;
    try { json = JSON.stringify(extra); } catch { json = '{"unserializable":true}'; }
    text += ` ${json}`;
  }
  return text.replace(/\n/g, ' ');
}

/** "<PRI>Mmm dd hh:mm:ss tag[pid]: msg {extra fields}" — what journald and rsyslog parse. */
export function formatSyslogLine(rec: Record<string, unknown>, facility: string, tag: string): string {
  const t = rec.time instanceof Date ? rec.time : new Date();
  const stamp = `${MONTHS[t.getMonth()]} ${String(t.getDate()).padStart(2, ' ')} ${[t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')}`;
  const pid = typeof rec.pid === 'number' ? rec.pid : process.pid;
  return `<${syslogPriority(facility, Number(rec.level))}>${stamp} ${tag}[${pid}]: ${recordText(rec)}`;
}

/** "<N>msg {extra fields}" — journald reads N as the PRIORITY and stamps time, host and pid itself. */
export function formatJournalLine(rec: Record<string, unknown>): string {
  return `<${syslogSeverity(Number(rec.level))}>${recordText(rec)}`;
}

/** bunyan raw stream writing journal lines to stderr. */
class JournalLines {
  constructor(private readonly out: NodeJS.WritableStream) {}
  write(rec: Record<string, unknown>): boolean {
    this.out.write(formatJournalLine(rec) + '\n');
    return true;
  }
}

/**
 * bunyan raw stream sending each record as one datagram. Each send names the socket path
 * (sendto, not connect) so a restarted syslog daemon is picked up without reopening.
 * While the socket is unreachable records are dropped; one warning per outage.
 */
class SyslogStream {
  private sock: DatagramSender | undefined;
  private warned = false;

  constructor(private readonly socketPath: string, private readonly facility: string, private readonly tag: string,
              private readonly warn: (m: string) => void) {
    try {
      this.sock = new DatagramSender();
    } catch (e) {
      this.unreachable((e as Error).message);
    }
  }

  write(rec: Record<string, unknown>): boolean {
    if (!this.sock) return true;
    let buf = Buffer.from(formatSyslogLine(rec, this.facility, this.tag), 'utf8');
    if (buf.length > MAX_DATAGRAM) buf = buf.subarray(0, MAX_DATAGRAM);
    const err = this.sock.send(buf, this.socketPath);
    // EAGAIN means the receiver's queue is full: drop this record, not an outage.
    if (err === undefined) this.warned = false;
    else if (err !== 'EAGAIN' && err !== 'ENOBUFS') this.unreachable(err);
    return true;
  }

  private unreachable(why: string): void {
    if (this.warned) return;
    this.warned = true;
    this.warn(`syslog socket ${this.socketPath} unreachable (${why}); syslog records are dropped until it is back`);
  }

  close(): void {
    const s = this.sock;
    this.sock = undefined;
    s?.close();
  }
}
