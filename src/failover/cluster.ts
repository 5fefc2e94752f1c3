/**
 * ClusterUnderTest: the mxfsd processes of one failover run, on 127.0.0.1.
 *
 * Owns the processes (start with MXFS_FAULT_INJECTION=1, kill, SIGSTOP/SIGCONT, restart),
 * one control client per node (fault injection, status, final lock listing) and the status
 * poller that records every change of a node's (state, epoch, members) as a `view` event.
 * Every process it starts is killed by stop(), and by a process 'exit' hook if the runner
 * itself dies.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MxfsClient } from '../client/client';
import type { FaultSpec } from '../wire/client-protocol';
import { LocalNode, pickBasePort, writeClusterConfigs } from '../local-cluster/local-cluster';
import type { History } from './history';

export type NodeInfo = LocalNode;
export { pickBasePort };
export type NodeRunState = 'down' | 'up' | 'paused';

export interface NodeStatus { state: string; epoch: number; members: number[]; at: number }

const MXFSD = path.join(__dirname, '..', 'cli', 'mxfsd.js');
const live = new Set<ChildProcess>();
/** How long a started mxfsd may take to open its control socket. */
const START_BOUND_MS = 60000;
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}

/** The fault-injection call, kept in one place: MxfsClient.fault(spec) (needs MXFS_FAULT_INJECTION=1). */
export async function sendFault(c: MxfsClient, spec: FaultSpec): Promise<unknown> {
  const f = (c as unknown as { fault?: (s: FaultSpec) => Promise<unknown> }).fault;
  if (typeof f !== 'function') throw new Error('this MxfsClient has no fault() method (fault injection API missing)');
  return f.call(c, spec);
}

export class ClusterUnderTest {
  readonly nodes: NodeInfo[];
  readonly run = new Map<number, NodeRunState>();
  readonly latest = new Map<number, NodeStatus>();
  private procs = new Map<number, ChildProcess>();
  private expectedExit = new WeakSet<ChildProcess>();
  private control = new Map<number, MxfsClient>();
  private polling = false;
  private pollLoop?: Promise<void>;
  /** The fault each node currently applies to its peer traffic (absent: none). */
  faults = new Map<number, FaultSpec>();

  /**
   * standalone: n independent single-node daemons (no [peer] sections). Used to show that
   * the checker catches double grants by uncoordinated lock servers.
   */
  constructor(readonly dir: string, n: number, basePort: number, readonly leaseMs: number, private readonly history: History, standalone = false, extraConfig?: (id: number) => string) {
    this.nodes = standalone
      ? Array.from({ length: n }, (_, i) => ({ ...writeClusterConfigs(path.join(dir, `s${i + 1}`), 1, basePort + i, leaseMs)[0]!, id: i + 1 }))
      : writeClusterConfigs(dir, n, basePort, leaseMs);
    if (extraConfig) for (const nd of this.nodes) fs.appendFileSync(nd.config, '\n' + extraConfig(nd.id));
    for (const nd of this.nodes) this.run.set(nd.id, 'down');
  }

  get ids(): number[] { return this.nodes.map((n) => n.id); }
  node(id: number): NodeInfo {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id} (nodes ${this.ids.join(' ')})`);
    return n;
  }
  upIds(): number[] { return this.ids.filter((id) => this.run.get(id) === 'up'); }

  async start(id: number): Promise<void> {
    const nd = this.node(id);
    if (this.run.get(id) !== 'down') throw new Error(`node ${id} is already running`);
    const err = fs.openSync(path.join(nd.dir, 'stderr.log'), 'a');
    const p = spawn(process.execPath, [MXFSD, '--config', nd.config], { stdio: ['ignore', 'ignore', err], env: { ...process.env, MXFS_FAULT_INJECTION: '1' } });
    fs.closeSync(err);
    live.add(p);
    p.on('exit', (code, signal) => {
      live.delete(p);
      if (this.procs.get(id) !== p) return;
      this.procs.delete(id);
      this.run.set(id, 'down');
      if (!this.expectedExit.has(p)) {
        let stderr = '';
        try { stderr = fs.readFileSync(path.join(nd.dir, 'stderr.log'), 'utf8').trim().slice(-600); } catch { /* none */ }
        this.history.add({ type: 'node-exit', node: id, code, signal, stderr });
      }
    });
    this.procs.set(id, p);
    nd.pid = p.pid!;
    this.latest.delete(id);
    this.run.set(id, 'up');
    // Generous: a start is a precondition, not a check (at load 15 a start took more than 10 s
    // and failed a nemesis run before anything was tested); a daemon that hangs still fails it.
    const end = Date.now() + START_BOUND_MS;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`mxfsd ${id} exited at start: ${fs.readFileSync(path.join(nd.dir, 'stderr.log'), 'utf8').trim().slice(-400)}`);
      try {
        await this.controlClient(id);
        return;
      } catch { /* not listening yet */ }
      if (Date.now() > end) throw new Error(`mxfsd ${id} did not open its socket within ${START_BOUND_MS / 1000} s`);
      await sleep(50);
    }
  }

  /** kill -9 (or another signal); waits for the exit. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs.get(id);
    this.dropControl(id);
    if (!p) return;
    this.expectedExit.add(p);
    const exited = new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));
    if (this.run.get(id) === 'paused' && signal !== 'SIGKILL') p.kill('SIGCONT');
    p.kill(signal);
    const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
    this.run.set(id, 'down');
    this.latest.delete(id);
    this.faults.delete(id);
  }

  pause(id: number): void {
    const p = this.procs.get(id);
    if (!p || this.run.get(id) !== 'up') throw new Error(`node ${id} is not running`);
    p.kill('SIGSTOP');
    this.run.set(id, 'paused');
  }

  resume(id: number): void {
    const p = this.procs.get(id);
    if (!p || this.run.get(id) !== 'paused') throw new Error(`node ${id} is not paused`);
    p.kill('SIGCONT');
    this.run.set(id, 'up');
  }

  async fault(id: number, spec: FaultSpec): Promise<void> {
    const c = await this.controlClient(id);
    await withTimeout(sendFault(c, spec), 3000, `fault on node ${id}`);
    if (spec.action === 'heal') this.faults.delete(id); else this.faults.set(id, spec);
  }

  async status(id: number, timeoutMs = 1000): Promise<any> {
    const c = await this.controlClient(id);
    return withTimeout(c.status(), timeoutMs, `status of node ${id}`);
  }

  async locks(id: number): Promise<any> {
    const c = await this.controlClient(id);
    return withTimeout(c.locks({}), 5000, `locks of node ${id}`);
  }

  private async controlClient(id: number): Promise<MxfsClient> {
    const have = this.control.get(id);
    if (have && have.alive) return have;
    if (have) { this.control.delete(id); void have.close(); }
    const c = await MxfsClient.connect(this.node(id).socket, { name: 'failover-control', connectTimeoutMs: 1000 });
    c.on('lost', () => { if (this.control.get(id) === c) this.control.delete(id); });
    this.control.set(id, c);
    return c;
  }

  private dropControl(id: number): void {
    const c = this.control.get(id);
    this.control.delete(id);
    if (c) void c.close();
  }

  /** Poll every running node's status; record a `view` event whenever it changes. */
  startPolling(everyMs = 100): void {
    if (this.polling) return;
    this.polling = true;
    this.pollLoop = (async () => {
      while (this.polling) {
        await Promise.all(this.upIds().map(async (id) => {
          try {
            const s = await this.status(id, Math.max(500, everyMs * 5));
            const cl = s.cluster ?? { state: 'standalone', epoch: 0, members: [id] };
            const prev = this.latest.get(id);
            const members = [...(cl.members ?? [])].sort((a: number, b: number) => a - b);
            if (!prev || prev.state !== cl.state || prev.epoch !== cl.epoch || prev.members.join() !== members.join()) {
              const rec = cl.stats?.lastRecoveryMs;
              this.history.add({ type: 'view', node: id, state: cl.state, epoch: cl.epoch, members, ...(typeof rec === 'number' && cl.state === 'running' ? { recoveryMs: rec } : {}) });
            }
            this.latest.set(id, { state: cl.state, epoch: cl.epoch, members, at: this.history.elapsed() });
          } catch { /* paused or dying: no news */ }
        }));
        await sleep(everyMs);
      }
    })();
  }

  async stopPolling(): Promise<void> {
    this.polling = false;
    await this.pollLoop;
  }

  /** True when every running node is 'running' in one epoch whose members are exactly the running nodes. */
  formed(expect: number[] = this.upIds()): boolean {
    if (!expect.length) return false;
    const want = [...expect].sort((a, b) => a - b).join();
    const epoch = this.latest.get(expect[0]!)?.epoch;
    return expect.every((id) => {
      const s = this.latest.get(id);
      return this.run.get(id) === 'up' && s !== undefined && s.state === 'running' && s.epoch === epoch && s.members.join() === want;
    });
  }

  /** The highest epoch any node reported so far. */
  maxEpoch(): number {
    let m = 0;
    for (const s of this.latest.values()) m = Math.max(m, s.epoch);
    return m;
  }

  /** Members of the running view with the highest epoch (for master selection). */
  currentMembers(): number[] {
    let best: NodeStatus | undefined;
    for (const [id, s] of this.latest) if (this.run.get(id) === 'up' && s.state === 'running' && (!best || s.epoch > best.epoch)) best = s;
    return best ? best.members : this.upIds();
  }

  async stop(): Promise<void> {
    await this.stopPolling();
    for (const id of [...this.control.keys()]) this.dropControl(id);
    await Promise.all(this.ids.map(async (id) => {
      const p = this.procs.get(id);
      if (!p) return;
      if (this.run.get(id) === 'paused') p.kill('SIGCONT');
      await this.kill(id, 'SIGKILL');
    }));
  }
}
