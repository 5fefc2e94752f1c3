/**
 * LocalCluster: an MXFS cluster of mxfsd processes on 127.0.0.1, for trying MXFS and for
 * testing applications against a real cluster (the package's `mxfs/cluster` export; the
 * `mxfs-cluster` CLI is a thin shell over it).
 *
 * Owns a directory: DIR/cluster.key, DIR/nodeI/mxfs.conf, DIR/nodeI/mxfsd.log (JSON lines),
 * DIR/nodeI/stderr.log, DIR/nodeI/state/, and DIR/cluster.json (the nodes and the pids this
 * tool started). The truth about which node runs is read from /proc (processes.ts): a node
 * started by hand from its config counts as running, and a recorded pid that now belongs
 * to another process is never signalled.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { MxfsClient } from '../client/client';
import { generateClusterKey } from '../cluster/auth';
import { alive, findNodeProcesses, isNodeProcess } from './processes';

export interface LocalNode {
  id: number;
  /** Peer (TCP) port on 127.0.0.1. */
  port: number;
  /** The node's client socket (MxfsClient.connect, mxfsctl --socket). */
  socket: string;
  config: string;
  dir: string;
  /** JSON log lines (bunyan). */
  log: string;
  /** What the process wrote to stderr (start-up failures). */
  stderrLog: string;
  /** The pid this tool last started it with (0: never); a hint, checked before any use. */
  pid: number;
}

export interface ClusterFile { nodes: LocalNode[] }

export interface CreateOptions {
  nodes: number;
  /** Node i listens on basePort + i. Default: a free range found from `portHint`. */
  basePort?: number;
  /** lease_timeout_ms of every node (renewals every lease/5). Default 3000. */
  leaseMs?: number;
}

/** The accepted range of each CreateOptions field (whole numbers; mxfs-cluster up checks the same). */
export const CREATE_LIMITS = { nodes: [1, 64], basePort: [1024, 65000], leaseMs: [500, 600000] } as const;

/** Throws a RangeError naming the first option out of CREATE_LIMITS (before anything is written). */
export function checkCreateOptions(o: CreateOptions): void {
  for (const k of ['nodes', 'basePort', 'leaseMs'] as const) {
    const v = o[k];
    if (v === undefined && k !== 'nodes') continue;
    const [min, max] = CREATE_LIMITS[k];
    if (!Number.isInteger(v) || v! < min || v! > max) throw new RangeError(`LocalCluster.create: ${k} wants an integer ${min}..${max}, got ${String(v)}`);
  }
}

const MXFSD = path.join(__dirname, '..', 'cli', 'mxfsd.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Node i's lock_port (the lock engine's own peer link, src/cluster/direct-link.ts): basePort + LOCK_PORT_OFFSET + i. */
export const LOCK_PORT_OFFSET = 5000;

/**
 * mkdir -p with one clear error. Not fs.mkdirSync(dir, { recursive: true }): it loops for ever
 * where mkdir fails ENOENT under a parent that exists (any path under /proc).
 */
function makeDir(dir: string): void {
  let st: fs.Stats | undefined;
  try { st = fs.statSync(dir); } catch { /* absent: created below */ }
  if (st) {
    if (!st.isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    return;
  }
  const parent = path.dirname(dir);
  if (parent !== dir) makeDir(parent);
  try { fs.mkdirSync(dir); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * Writes DIR/cluster.key and DIR/nodeI/mxfs.conf for an n-node cluster (n = 1: a standalone node).
 * lockPorts (default true): give every node a lock_port (basePort + LOCK_PORT_OFFSET + i); false
 * for builds that do not know the key (bench/remote-pair.ts compares with older builds).
 */
export function writeClusterConfigs(dir: string, n: number, basePort: number, leaseMs: number, lockPorts = true): LocalNode[] {
  const lockPort = (i: number) => (lockPorts && n > 1 && basePort + LOCK_PORT_OFFSET + n <= 65535 ? `lock_port = ${basePort + LOCK_PORT_OFFSET + i}\n` : '');
  makeDir(dir);
  const keyFile = path.join(dir, 'cluster.key');
  if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, generateClusterKey(), { mode: 0o600 });
  const renew = Math.max(100, Math.floor(leaseMs / 5));
  const nodes: LocalNode[] = [];
  for (let i = 1; i <= n; i++) {
    const nd = path.join(dir, `node${i}`);
    fs.mkdirSync(nd, { recursive: true });
    const socket = path.join(nd, 'mxfsd.sock');
    const peers = [];
    for (let j = 1; j <= n; j++) if (j !== i) peers.push(`[peer]\nid = ${j}\naddress = 127.0.0.1\nport = ${basePort + j}\n${lockPort(j)}`);
    const log = path.join(nd, 'mxfsd.log');
    const conf = [
      `# written by mxfs-cluster (src/local-cluster/local-cluster.ts)`,
      `[node]\nid = ${i}\naddress = 127.0.0.1\nport = ${basePort + i}\n${lockPort(i)}socket = ${socket}\nstate_dir = ${path.join(nd, 'state')}\nkernel = off\n`,
      `[cluster]\nname = local\nkey_file = ${keyFile}\n${n === 2 ? 'tiebreaker = 1\n' : ''}`,
      ...peers,
      `[timing]\nlease_timeout_ms = ${leaseMs}\nrenew_interval_ms = ${renew}\nclient_keepalive_ms = ${Math.max(50, Math.floor(renew / 2))}\nclient_timeout_ms = ${Math.floor(leaseMs * 0.6)}\n`,
      `[logging]\nfile = ${log}\nstderr = false\nlevel = info\n`,
    ].join('\n');
    const config = path.join(nd, 'mxfs.conf');
    fs.writeFileSync(config, conf);
    nodes.push({ id: i, pid: 0, port: basePort + i, socket, config, dir: nd, log, stderrLog: path.join(nd, 'stderr.log') });
  }
  return nodes;
}

export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** The busy ports among basePort+1 .. basePort+n and their lock ports (LOCK_PORT_OFFSET above). */
export async function busyPorts(basePort: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = basePort + 1; p <= basePort + n; p++) if (!(await portFree(p))) out.push(p);
  if (n > 1) for (let p = basePort + LOCK_PORT_OFFSET + 1; p <= basePort + LOCK_PORT_OFFSET + n; p++) if (!(await portFree(p))) out.push(p);
  return out;
}

/** The first port the kernel hands out as a connection's source port (ip_local_port_range); 32768 if unreadable. */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * A base port with basePort+1..basePort+n (and their lock ports) free, searched from a hint (seed, pid).
 * Every port stays below the ephemeral range when it leaves room: a port found free there can be
 * taken a moment later as some connection's source port (a CI run failed that way on a restart).
 */
export async function pickBasePort(n: number, hint: number): Promise<number> {
  const below = Math.floor((ephemeralLow() - LOCK_PORT_OFFSET - n - 1 - 20000) / 10);
  const slots = below >= 200 ? below : 4000;
  for (let i = 0; i < 50; i++) {
    const base = 20000 + (((hint >>> 0) + i * 7919) % slots) * 10;
    if ((await busyPorts(base, n)).length === 0) return base;
  }
  throw new Error('no free port range found');
}

export class LocalCluster {
  private constructor(readonly dir: string, readonly nodes: LocalNode[]) {}

  /** Writes the configs of a new cluster in `dir` (refused if a node of a cluster there runs). */
  static async create(dir: string, o: CreateOptions): Promise<LocalCluster> {
    checkCreateOptions(o);
    dir = path.resolve(dir);
    if (fs.existsSync(path.join(dir, 'cluster.json'))) {
      const old = LocalCluster.open(dir);
      const running = old.nodes.filter((n) => old.pids(n.id).length > 0).map((n) => n.id);
      if (running.length) throw new Error(`a cluster is already running in ${dir} (node${running.length > 1 ? 's' : ''} ${running.join(' ')}); stop it first ('mxfs-cluster down --dir ${dir}')`);
    }
    const base = o.basePort ?? await pickBasePort(o.nodes, process.pid);
    const busy = await busyPorts(base, o.nodes);
    if (busy.length) throw new Error(`port${busy.length > 1 ? 's' : ''} ${busy.join(' ')} on 127.0.0.1 ${busy.length > 1 ? 'are' : 'is'} in use; choose another --base-port`);
    const c = new LocalCluster(dir, writeClusterConfigs(dir, o.nodes, base, o.leaseMs ?? 3000));
    c.save();
    return c;
  }

  /** The cluster recorded in `dir`. */
  static open(dir: string): LocalCluster {
    dir = path.resolve(dir);
    const f = path.join(dir, 'cluster.json');
    if (!fs.existsSync(f)) throw new Error(`no cluster in ${dir} (${f} missing; create one with 'mxfs-cluster up')`);
    let raw: ClusterFile;
    try {
      raw = JSON.parse(fs.readFileSync(f, 'utf8')) as ClusterFile;
      if (!Array.isArray(raw?.nodes)) throw new Error("no 'nodes' list");
    } catch (e) {
      throw new Error(`${f} is not a cluster file written by mxfs-cluster: ${(e as Error).message}`);
    }
    // Files written before the log paths were recorded: derive them.
    const nodes = raw.nodes.map((n) => ({ ...n, log: n.log ?? path.join(n.dir, 'mxfsd.log'), stderrLog: n.stderrLog ?? path.join(n.dir, 'stderr.log') }));
    return new LocalCluster(dir, nodes);
  }

  node(id: number): LocalNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id} in ${this.dir} (nodes ${this.nodes.map((x) => x.id).join(' ')})`);
    return n;
  }

  /** The live mxfsd processes of node `id` (the recorded pid if it is still that node's, and any started by hand). */
  pids(id: number): number[] {
    const n = this.node(id);
    const found = new Set(findNodeProcesses(n.config));
    if (isNodeProcess(n.pid, n.config)) found.add(n.pid);
    return [...found].sort((a, b) => a - b);
  }

  /** Starts node `id` (detached: it outlives this process); resolves once its socket answers. */
  async start(id: number, o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<number> {
    const n = this.node(id);
    const running = this.pids(id);
    if (running.length) throw new Error(`node ${id} is already running (pid ${running.join(' ')})`);
    const err = fs.openSync(n.stderrLog, 'a');
    const p = spawn(process.execPath, [MXFSD, '--config', n.config], { detached: true, stdio: ['ignore', 'ignore', err], env: { ...process.env, ...o.env } });
    fs.closeSync(err);
    p.unref();
    n.pid = p.pid!;
    this.save();
    const end = Date.now() + (o.timeoutMs ?? 15000);
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null || !alive(n.pid)) throw new Error(`node ${id} exited at start: ${this.stderrTail(id) || `see ${n.log}`}`);
      if (await this.status(id, 500)) return n.pid;
      if (Date.now() > end) throw new Error(`node ${id} (pid ${n.pid}) did not answer on ${n.socket} within ${o.timeoutMs ?? 15000} ms; see ${n.log}`);
      await sleep(50);
    }
  }

  /** Stops node `id`: SIGTERM (SIGKILL after `graceMs`), or SIGKILL at once. Returns the pids stopped. */
  async stop(id: number, o: { kill?: boolean; graceMs?: number } = {}): Promise<number[]> {
    const n = this.node(id);
    const pids = this.pids(id);
    for (const pid of pids) {
      signal(pid, o.kill ? 'SIGKILL' : 'SIGTERM');
      if (!o.kill) signal(pid, 'SIGCONT'); // a paused (SIGSTOPped) node must run to shut down
    }
    const end = Date.now() + (o.graceMs ?? 5000);
    while (pids.some((pid) => isNodeProcess(pid, n.config))) {
      if (Date.now() > end) for (const pid of pids) if (isNodeProcess(pid, n.config)) signal(pid, 'SIGKILL');
      await sleep(50);
    }
    return pids;
  }

  /** Stops every node; returns which nodes had a process to stop. */
  async down(o: { kill?: boolean } = {}): Promise<Array<{ id: number; pids: number[] }>> {
    const stopped = await Promise.all(this.nodes.map(async (n) => ({ id: n.id, pids: await this.stop(n.id, o) })));
    return stopped.filter((s) => s.pids.length > 0);
  }

  /** The node's `status` answer, or undefined if it does not answer within timeoutMs. */
  async status(id: number, timeoutMs = 1000): Promise<any | undefined> {
    let c: MxfsClient | undefined;
    try {
      c = await MxfsClient.connect(this.node(id).socket, { name: 'mxfs-cluster', connectTimeoutMs: timeoutMs });
      const st = await Promise.race([c.status(), sleep(timeoutMs).then(() => undefined)]);
      return st;
    } catch {
      return undefined;
    } finally {
      await c?.close().catch(() => {});
    }
  }

  /**
   * Waits until `ids` (default: all) form the cluster: every one answers 'running' in one
   * epoch whose members are exactly `ids` — or, for a one-node cluster, 'standalone'.
   * Returns the epoch (0 standalone); throws naming each node's state when time runs out.
   */
  async waitFormed(ids = this.nodes.map((n) => n.id), timeoutMs = 20000): Promise<number> {
    const end = Date.now() + timeoutMs;
    const want = [...ids].sort((a, b) => a - b).join(' ');
    for (;;) {
      const sts = await Promise.all(ids.map((id) => this.status(id)));
      if (this.nodes.length === 1 && sts[0]?.cluster.state === 'standalone') return 0;
      const e = sts[0]?.cluster.epoch;
      if (sts.every((s) => s && s.cluster.state === 'running' && s.cluster.epoch === e && s.cluster.members.join(' ') === want)) return e;
      const dead = ids.filter((id) => this.pids(id).length === 0);
      if (dead.length) throw new Error(`node${dead.length > 1 ? 's' : ''} ${dead.join(' ')} not running: ${dead.map((id) => this.stderrTail(id) || `see ${this.node(id).log}`).join('; ')}`);
      if (Date.now() > end) {
        const states = ids.map((id, i) => `node ${id}: ${sts[i] ? `${sts[i].cluster.state} epoch ${sts[i].cluster.epoch} members ${sts[i].cluster.members.join(' ')}` : 'no answer'}`);
        throw new Error(`the cluster did not form within ${Math.round(timeoutMs / 1000)} s (${states.join('; ')})`);
      }
      await sleep(100);
    }
  }

  /** Starts every node that is not running and waits for the cluster to form. */
  async up(timeoutMs?: number): Promise<number> {
    for (const n of this.nodes) if (this.pids(n.id).length === 0) await this.start(n.id);
    const lease = Number(/lease_timeout_ms = (\d+)/.exec(fs.readFileSync(this.nodes[0]!.config, 'utf8'))?.[1] ?? 3000);
    return this.waitFormed(undefined, timeoutMs ?? Math.max(20000, lease * 4));
  }

  save(): void {
    fs.writeFileSync(path.join(this.dir, 'cluster.json'), JSON.stringify({ nodes: this.nodes }, null, 2) + '\n');
  }

  private stderrTail(id: number): string {
    try { return fs.readFileSync(this.node(id).stderrLog, 'utf8').trim().split('\n').slice(-3).join(' | '); } catch { return ''; }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* exited meanwhile */ }
}
