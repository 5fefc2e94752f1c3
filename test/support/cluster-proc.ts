/** Test support: a real mxfsd cluster on loopback, one process per node, fault injection on. */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MxfsClient } from '../../src/client/client';
import { writeClusterConfigs } from '../../src/local-cluster/local-cluster';
import { rendezvousOwner } from '../../src/cluster/rendezvous';
import { MXFSD, tmpDir, waitFor } from './daemon-proc';

export interface NodeProc { id: number; socket: string; config: string; dir: string; proc?: ChildProcess }

let clusters = 0;

/**
 * A base port whose next n ports are free now. Ports derived from the pid alone collided with
 * the clusters of other processes on the machine (other test runs, benchmarks): a node that
 * cannot bind its port never joins, and the test timed out waiting for the view. The
 * constructor is synchronous, so a child process does the checking (pickBasePort).
 */
function freeBasePort(n: number): number {
  const hint = process.pid * 131 + ++clusters * 7919;
  const lib = require.resolve('../../src/local-cluster/local-cluster');
  const js = `require(${JSON.stringify(lib)}).pickBasePort(${n}, ${hint}).then((b) => process.stdout.write(String(b)))`;
  return Number(execFileSync(process.execPath, ['-e', js], { encoding: 'utf8' }));
}

export class TestCluster {
  readonly nodes: NodeProc[];
  readonly dir: string;
  private clients: MxfsClient[] = [];

  /** extra: more config text appended to each node's file (e.g. [volume] sections); lockPorts false: no lock links (lock traffic through the cluster worker). */
  constructor(readonly n: number, readonly leaseMs = 1500, private readonly extra?: (id: number, dir: string) => string, private readonly lockPorts = true) {
    this.dir = tmpDir('mxfs-cluster-');
    this.nodes = this.writeConfigs();
  }

  /** The nodes' configs on a base port free now (written again by up() after a port clash). */
  private writeConfigs(): NodeProc[] {
    const nodes = writeClusterConfigs(this.dir, this.n, freeBasePort(this.n), this.leaseMs, this.lockPorts).map((x) => ({ id: x.id, socket: x.socket, config: x.config, dir: x.dir }));
    if (this.extra) for (const nd of nodes) fs.appendFileSync(nd.config, '\n' + this.extra(nd.id, nd.dir));
    return nodes;
  }

  node(id: number): NodeProc { return this.nodes[id - 1]!; }

  start(id: number, env: NodeJS.ProcessEnv = {}): void {
    const nd = this.node(id);
    const err = fs.openSync(path.join(nd.dir, 'stderr.log'), 'a');
    nd.proc = spawn(process.execPath, [MXFSD, '--config', nd.config], { stdio: ['ignore', 'ignore', err], env: { ...process.env, MXFS_FAULT_INJECTION: '1', ...env } });
    fs.closeSync(err);
  }

  // Formation is a liveness wait, not a figure: at load 30 five mxfsd processes starting at once
  // missed a 20 s bound (2026-12-02); the test goes on as soon as the view is there.
  //
  // A port found free by freeBasePort can be taken before the node binds it (another test run's
  // cluster on the same machine picked the same range meanwhile): that node exits at once
  // ("cannot start: ... already in use"). Then every node is stopped and the cluster is started
  // again on a new range (up to 3 times), instead of waiting out the bound for a view that
  // cannot form.
  async up(timeoutMs = 90000): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      for (const nd of this.nodes) this.start(nd.id);
      const clash = () => this.nodes.some((nd) => nd.proc !== undefined && nd.proc.exitCode !== null && /already in use/.test(this.stderr(nd.id)));
      let clashed = false;
      await waitFor(async () => {
        if (clash()) return (clashed = true);
        return (await this.viewIs(this.nodes.map((x) => x.id))) > 0;
      }, timeoutMs, `view ${this.nodes.map((x) => x.id).join(',')}`);
      if (!clashed) return;
      if (attempt === 3) throw new Error(`mxfsd could not bind its ports 3 times: ${this.nodes.map((nd) => this.stderr(nd.id)).join(' ')}`);
      await this.stopAll();
      for (const nd of this.nodes) fs.rmSync(path.join(nd.dir, 'stderr.log'), { force: true });
      const fresh = this.writeConfigs();
      this.nodes.splice(0, this.nodes.length, ...fresh);
    }
  }

  private stderr(id: number): string {
    try { return fs.readFileSync(path.join(this.node(id).dir, 'stderr.log'), 'utf8'); } catch { return ''; }
  }

  /** Whether every node in `members` runs one epoch whose members are exactly `members` (an epoch, or 0). */
  private async viewIs(members: number[]): Promise<number> {
    const sts = await Promise.all(members.map((id) => this.status(id)));
    const ok = sts.every((s) => s && s.cluster.state === 'running' && s.cluster.members.join() === members.join() && s.cluster.epoch === sts[0].cluster.epoch);
    return ok ? sts[0].cluster.epoch : 0;
  }

  /** Wait until every node in `members` runs one epoch whose members are exactly `members`. */
  async waitView(members: number[], timeoutMs = 15000): Promise<number> {
    let epoch = 0;
    await waitFor(async () => (epoch = await this.viewIs(members)) > 0, timeoutMs, `view ${members.join(',')}`);
    return epoch;
  }

  async status(id: number): Promise<any | undefined> {
    try {
      const c = await MxfsClient.connect(this.node(id).socket, { connectTimeoutMs: 500 });
      try { return await c.status(); } finally { await c.close(); }
    } catch {
      return undefined;
    }
  }

  async client(id: number, name = `client@${id}`): Promise<MxfsClient> {
    const c = await MxfsClient.connect(this.node(id).socket, { name });
    this.clients.push(c);
    return c;
  }

  kill(id: number, sig: NodeJS.Signals = 'SIGKILL'): void { this.node(id).proc?.kill(sig); }

  /** kill -9 and wait until the process is gone. */
  async killed(id: number): Promise<void> {
    const p = this.node(id).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL'); // a stopped (SIGSTOP) process dies too
    await gone;
  }

  alive(id: number): boolean {
    const p = this.node(id).proc;
    return !!p && p.exitCode === null && p.signalCode !== 'SIGKILL';
  }

  /** kill -9 every node and wait for the exits (a restart must find the state_dir free). */
  async stopAll(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => {});
    await Promise.all(this.nodes.map((nd) => this.killed(nd.id)));
  }

  log(id: number): string {
    try { return fs.readFileSync(path.join(this.node(id).dir, 'mxfsd.log'), 'utf8'); } catch { return ''; }
  }
}

/** The first resource name `<tag><i>` (lockspace 'default') mastered by `node` among `members`. */
export function resourceOn(node: number, members: number[], tag = 'r'): string {
  for (let i = 0; ; i++) if (rendezvousOwner('default', `${tag}${i}`, members) === node) return `${tag}${i}`;
}
