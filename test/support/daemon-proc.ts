/** Test support: start real mxfsd processes with generated configs, and in-process daemons. */
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Logger from 'bunyan';
import type { Config } from '../../src/config/config';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const MXFSD = path.join(ROOT, 'dist', 'src', 'cli', 'mxfsd.js');
export const MXFSCTL = path.join(ROOT, 'dist', 'src', 'cli', 'mxfsctl.js');

/** A TCP port on 127.0.0.1 that is free now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

/** Resident memory of a process, KiB (VmRSS in /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export function tmpDir(prefix = 'mxfs-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function configText(dir: string, extra: Record<string, Record<string, string | number>> = {}): string {
  const sections: Record<string, Record<string, string | number>> = {
    node: { id: 1, socket: path.join(dir, 'mxfsd.sock'), kernel: 'off', state_dir: path.join(dir, 'state'), ...(extra.node ?? {}) },
    timing: { client_keepalive_ms: 200, client_timeout_ms: 1500, lease_timeout_ms: 3000, renew_interval_ms: 500, ...(extra.timing ?? {}) },
    locking: { ...(extra.locking ?? {}) },
    logging: { file: path.join(dir, 'mxfsd.log'), stderr: 'false', level: 'debug', ...(extra.logging ?? {}) },
  };
  // Any other section (e.g. [metrics]) as given.
  for (const [s, kv] of Object.entries(extra)) sections[s] ??= kv;
  return Object.entries(sections)
    .map(([s, kv]) => `[${s}]\n` + Object.entries(kv).map(([k, v]) => `${k} = ${v}`).join('\n'))
    .join('\n\n') + '\n';
}

export interface DaemonProc {
  proc: ChildProcess;
  dir: string;
  socket: string;
  config: string;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startDaemon(opts: { dir?: string; extra?: Record<string, Record<string, string | number>>; env?: NodeJS.ProcessEnv } = {}): Promise<DaemonProc> {
  const dir = opts.dir ?? tmpDir();
  const config = path.join(dir, 'mxfs.conf');
  fs.writeFileSync(config, configText(dir, opts.extra));
  const socket = path.join(dir, 'mxfsd.sock');
  const proc = spawn(process.execPath, [MXFSD, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let err = '';
  proc.stderr!.on('data', (d) => { err += d; });
  proc.stdout!.on('data', () => {});
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  await waitFor(async () => (await canConnect(socket)) || proc.exitCode !== null, 10000, 'mxfsd socket');
  if (proc.exitCode !== null) throw new Error(`mxfsd exited ${proc.exitCode}: ${err}`);
  return {
    proc, dir, socket, config, stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      if (proc.signalCode === 'SIGSTOP') proc.kill('SIGCONT');
      return exited;
    },
  };
}

export function canConnect(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(p);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export function run(cmd: string, args: string[], opts: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout!.on('data', (d) => { stdout += d; });
    p.stderr!.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')} timed out; stderr: ${stderr}`)); }, opts.timeoutMs ?? 15000);
    p.on('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }); });
    // A command that exits without reading its input (sh -c 'command -v make') closes the pipe
    // first: EPIPE on that write is the command's business, not an error of the test.
    p.stdin!.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') reject(e); });
    p.stdin!.end(opts.input ?? '');
  });
}

/** Bytes waiting unread in the Unix stream sockets of process `pid` (ss: Recv-Q). */
export async function unreadBytes(pid: number): Promise<number> {
  const r = await run('ss', ['-xpnH']);
  return r.stdout.split('\n').filter((l) => l.startsWith('u_str') && l.includes(`pid=${pid},`))
    .reduce((n, l) => n + Number(l.trim().split(/\s+/)[2]), 0);
}

export function mxfsctl(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run(process.execPath, [MXFSCTL, ...args], { timeoutMs: opts.timeoutMs, env: { ...process.env, ...opts.env } });
}

/** A Config object for in-process daemons (bypasses the file parser on purpose). */
export function testConfig(dir: string, over: { node?: Partial<Config['node']>; locking?: Partial<Config['locking']>; timing?: Partial<Config['timing']>; trace?: Partial<Config['trace']>; metrics?: Partial<Config['metrics']> } = {}): Config {
  const id = over.node?.id ?? 1;
  return {
    file: path.join(dir, 'inproc.conf'),
    node: { id, name: `node${id}`, address: '127.0.0.1', port: 7600, socket: path.join(dir, 'mxfsd.sock'), socketMode: 0o660, kernel: 'off', stateDir: path.join(dir, 'state'), ...over.node },
    cluster: { name: 'mxfs' },
    peers: [],
    volumes: [],
    timing: { leaseTimeoutMs: 3000, renewIntervalMs: 500, clientKeepaliveMs: 200, clientTimeoutMs: 1500, queryTimeoutMs: 2000, shutdownGraceMs: 2000, ...over.timing },
    locking: { lvbSize: 32, idleEvictMs: 60000, maxFrameBytes: 65536, maxLocksPerClient: 1000, maxClients: 64, maxRequestsPerClient: 1024, maxRequests: 16384, maxClientOutputBytes: 8 * 1024 * 1024, ...over.locking },
    logging: { level: 'fatal', syslog: false, syslogSocket: '/dev/log', syslogFacility: 'daemon', stderr: false, stderrFormat: 'json' },
    trace: { enabled: false, ringSize: 65536, fileMaxBytes: 64 * 1024 * 1024, fileKeep: 3, ...over.trace },
    metrics: { enabled: false, address: '127.0.0.1', port: 9464, maxConnections: 16, ...over.metrics },
  };
}

export function quietLogger(): Logger {
  return Logger.createLogger({ name: 'test', streams: [{ level: 'fatal', stream: process.stderr }] });
}
