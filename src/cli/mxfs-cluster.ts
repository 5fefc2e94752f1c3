/**
 * mxfs-cluster — a local cluster on 127.0.0.1 for trying MXFS and for tests.
 *
 *   mxfs-cluster up --nodes N --dir DIR [--base-port P] [--lease-ms MS]
 *       writes DIR/cluster.key, DIR/nodeI/mxfs.conf, starts N mxfsd (detached, logs in
 *       DIR/nodeI/), waits until every node is a member of one quorate epoch, prints each
 *       node's socket and port; DIR/cluster.json records the pids.
 *   mxfs-cluster down --dir DIR     SIGTERM every daemon (SIGKILL after 5 s)
 *   mxfs-cluster status --dir DIR   each node: pid, state, epoch, members
 *
 * Exit codes: 0 ok, 1 failed (a daemon did not start or the cluster did not form), 2 usage.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MxfsClient } from '../client/client';
import { die, parse, UsageError } from './usage';

const USAGE = `usage: mxfs-cluster up --nodes N --dir DIR [--base-port P] [--lease-ms MS]
       mxfs-cluster down --dir DIR
       mxfs-cluster status --dir DIR [--json]
`;

export interface ClusterFile {
  nodes: Array<{ id: number; pid: number; port: number; socket: string; config: string; dir: string }>;
}

function usage(msg: string): never { die('mxfs-cluster', msg, USAGE); }

function readCluster(dir: string): ClusterFile {
  const f = path.join(dir, 'cluster.json');
  if (!fs.existsSync(f)) { process.stderr.write(`mxfs-cluster: no cluster in ${dir} (${f} missing)\n`); process.exit(1); }
  return JSON.parse(fs.readFileSync(f, 'utf8')) as ClusterFile;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function statusOf(socket: string): Promise<any | undefined> {
  try {
    const c = await MxfsClient.connect(socket, { name: 'mxfs-cluster', connectTimeoutMs: 1000 });
    try { return await c.status(); } finally { await c.close(); }
  } catch {
    return undefined;
  }
}

export function writeClusterConfigs(dir: string, n: number, basePort: number, leaseMs: number): ClusterFile['nodes'] {
  fs.mkdirSync(dir, { recursive: true });
  const keyFile = path.join(dir, 'cluster.key');
  if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  const renew = Math.max(100, Math.floor(leaseMs / 5));
  const nodes: ClusterFile['nodes'] = [];
  for (let i = 1; i <= n; i++) {
    const nd = path.join(dir, `node${i}`);
    fs.mkdirSync(nd, { recursive: true });
    const socket = path.join(nd, 'mxfsd.sock');
    const peers = [];
    for (let j = 1; j <= n; j++) if (j !== i) peers.push(`[peer]\nid = ${j}\naddress = 127.0.0.1\nport = ${basePort + j}\n`);
    const conf = [
      `# written by mxfs-cluster up`,
      `[node]\nid = ${i}\naddress = 127.0.0.1\nport = ${basePort + i}\nsocket = ${socket}\nstate_dir = ${path.join(nd, 'state')}\nkernel = off\n`,
      `[cluster]\nname = local\nkey_file = ${keyFile}\n${n === 2 ? 'tiebreaker = 1\n' : ''}`,
      ...peers,
      `[timing]\nlease_timeout_ms = ${leaseMs}\nrenew_interval_ms = ${renew}\nclient_keepalive_ms = ${Math.max(50, Math.floor(renew / 2))}\nclient_timeout_ms = ${Math.floor(leaseMs * 0.6)}\n`,
      `[logging]\nfile = ${path.join(nd, 'mxfsd.log')}\nstderr = false\nlevel = info\n`,
    ].join('\n');
    const config = path.join(nd, 'mxfs.conf');
    fs.writeFileSync(config, conf);
    nodes.push({ id: i, pid: 0, port: basePort + i, socket, config, dir: nd });
  }
  return nodes;
}

export function startNode(node: ClusterFile['nodes'][number]): number {
  const err = fs.openSync(path.join(node.dir, 'stderr.log'), 'a');
  const p = spawn(process.execPath, [path.join(__dirname, 'mxfsd.js'), '--config', node.config], { detached: true, stdio: ['ignore', 'ignore', err] });
  p.unref();
  fs.closeSync(err);
  return p.pid!;
}

async function up(dir: string, n: number, basePort: number, leaseMs: number): Promise<void> {
  if (fs.existsSync(path.join(dir, 'cluster.json'))) {
    const old = readCluster(dir);
    if (old.nodes.some((x) => alive(x.pid))) { process.stderr.write(`mxfs-cluster: a cluster is already running in ${dir}; run 'mxfs-cluster down --dir ${dir}' first\n`); process.exit(1); }
  }
  const nodes = writeClusterConfigs(dir, n, basePort, leaseMs);
  for (const nd of nodes) nd.pid = startNode(nd);
  fs.writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify({ nodes }, null, 2) + '\n');
  const all = nodes.map((x) => x.id);
  const deadline = Date.now() + Math.max(20000, leaseMs * 4);
  for (;;) {
    const sts = await Promise.all(nodes.map((x) => statusOf(x.socket)));
    const formed = sts.every((s) => s && s.cluster.state === 'running' && s.cluster.members.length === n && s.cluster.epoch === sts[0]?.cluster.epoch);
    if (formed) {
      process.stdout.write(`cluster of ${n} up in ${dir} (epoch ${sts[0].cluster.epoch}, members ${all.join(' ')})\n`);
      for (const nd of nodes) process.stdout.write(`node ${nd.id}: pid ${nd.pid}  port 127.0.0.1:${nd.port}  socket ${nd.socket}\n`);
      return;
    }
    const dead = nodes.filter((x) => !alive(x.pid));
    if (dead.length) {
      for (const x of dead) process.stderr.write(`mxfs-cluster: node ${x.id} exited: ${fs.readFileSync(path.join(x.dir, 'stderr.log'), 'utf8').trim().slice(-500)}\n`);
      await down(dir);
      process.exit(1);
    }
    if (Date.now() > deadline) {
      process.stderr.write(`mxfs-cluster: the cluster did not form within ${Math.round((deadline - Date.now() + Math.max(20000, leaseMs * 4)) / 1000)} s\n`);
      for (const [i, s] of sts.entries()) process.stderr.write(`  node ${i + 1}: ${s ? `${s.cluster.state} epoch ${s.cluster.epoch} members ${s.cluster.members.join(' ')}` : 'no answer'}\n`);
      await down(dir);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function down(dir: string): Promise<void> {
  const c = readCluster(dir);
  for (const x of c.nodes) if (alive(x.pid)) process.kill(x.pid, 'SIGTERM');
  const end = Date.now() + 5000;
  while (Date.now() < end && c.nodes.some((x) => alive(x.pid))) await new Promise((r) => setTimeout(r, 50));
  for (const x of c.nodes) if (alive(x.pid)) process.kill(x.pid, 'SIGKILL');
  process.stdout.write(`cluster in ${dir} stopped\n`);
}

async function status(dir: string, json: boolean): Promise<void> {
  const c = readCluster(dir);
  const rows = await Promise.all(c.nodes.map(async (x) => ({ ...x, running: alive(x.pid), status: await statusOf(x.socket) })));
  if (json) { process.stdout.write(JSON.stringify(rows.map((r) => ({ id: r.id, pid: r.pid, running: r.running, cluster: r.status?.cluster ?? null })), null, 2) + '\n'); return; }
  for (const r of rows) {
    const cl = r.status?.cluster;
    process.stdout.write(`node ${r.id}: ${r.running ? `pid ${r.pid}` : 'not running'}  ${cl ? `${cl.state} epoch ${cl.epoch} members ${cl.members.join(' ')}  locks ${r.status.locks}` : 'no answer'}\n`);
  }
}

async function main(): Promise<void> {
  let a;
  try {
    a = parse(process.argv.slice(2), {
      nodes: { type: 'string', short: 'n' }, dir: { type: 'string', short: 'd' }, 'base-port': { type: 'string' },
      'lease-ms': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    });
  } catch (e) {
    if (e instanceof UsageError) usage(e.message);
    throw e;
  }
  const v = a.values;
  if (v.help) { process.stdout.write(USAGE); return; }
  const [cmd, ...rest] = a.positionals;
  if (rest.length) usage(`unexpected argument '${rest[0]}'`);
  if (!v.dir) usage('missing --dir DIR');
  const dir = path.resolve(v.dir);
  const int = (name: string, s: string | undefined, def: number, min: number, max: number) => {
    if (s === undefined) return def;
    if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) usage(`--${name} wants an integer ${min}..${max}, got '${s}'`);
    return Number(s);
  };
  switch (cmd) {
    case 'up': {
      if (v.nodes === undefined) usage('missing --nodes N');
      const n = int('nodes', v.nodes, 3, 1, 64);
      const base = int('base-port', v['base-port'], 7600, 1024, 65000);
      return up(dir, n, base, int('lease-ms', v['lease-ms'], 3000, 500, 600000));
    }
    case 'down': return down(dir);
    case 'status': return status(dir, !!v.json);
    default: usage(cmd ? `unknown command '${cmd}'` : 'missing command (up, down or status)');
  }
}

/** The CLI entry (bin/mxfs-cluster); importing this module runs nothing. */
export function run(): void {
  main().catch((e) => { process.stderr.write(`mxfs-cluster: ${(e as Error).stack ?? e}\n`); process.exit(1); });
}

if (require.main === module) run();
