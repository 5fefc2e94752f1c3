/**
 * mxfs-cluster — a local cluster on 127.0.0.1 for trying MXFS (src/local-cluster does the work).
 *
 *   mxfs-cluster up --nodes N --dir DIR [--base-port P] [--lease-ms MS]
 *       writes DIR/cluster.key and DIR/nodeI/mxfs.conf, starts N mxfsd (detached) and waits
 *       until they form one quorate view (N = 1: a standalone node); prints each node's pid,
 *       port, socket and log file.
 *   mxfs-cluster start NODE --dir DIR | stop NODE --dir DIR [--kill] | restart NODE --dir DIR
 *   mxfs-cluster down --dir DIR [--kill]     stop every node; says which it stopped
 *   mxfs-cluster status --dir DIR [--json]   each node: pid, state, epoch, members, log
 * A node is running when an mxfsd process runs with its config (found in /proc, so nodes
 * started by hand count); a recorded pid is signalled only if it is still that node's mxfsd.
 *
 * Exit codes: 0 ok, 1 failed (a daemon did not start, the cluster did not form, no cluster
 * in DIR), 2 usage.
 */
import path from 'node:path';
import { CREATE_LIMITS, LocalCluster } from '../local-cluster/local-cluster';
import { die, endOnClosedOutput, parse, UsageError } from './usage';

const USAGE = `usage: mxfs-cluster up --nodes N --dir DIR [--base-port P] [--lease-ms MS]
       mxfs-cluster start|stop|restart NODE --dir DIR     (stop: [--kill] for SIGKILL)
       mxfs-cluster down --dir DIR [--kill]
       mxfs-cluster status --dir DIR [--json]
Node i listens on 127.0.0.1:(P+i) (P defaults to 7600); its files are in DIR/nodei/.
`;

function usage(msg: string): never { die('mxfs-cluster', msg, USAGE); }
const out = (s: string) => process.stdout.write(s + '\n');

function describeNode(c: LocalCluster, id: number, pid?: number): string {
  const n = c.node(id);
  return `node ${id}: ${pid ? `pid ${pid}  ` : ''}port 127.0.0.1:${n.port}  socket ${n.socket}  log ${n.log}`;
}

async function up(dir: string, nodes: number, basePort: number, leaseMs: number): Promise<void> {
  const c = await LocalCluster.create(dir, { nodes, basePort, leaseMs });
  try {
    const epoch = await c.up();
    out(nodes === 1
      ? `standalone node up in ${c.dir} (a node without peers forms no cluster view)`
      : `cluster of ${nodes} up in ${c.dir} (epoch ${epoch}, members ${c.nodes.map((n) => n.id).join(' ')})`);
    for (const n of c.nodes) out(describeNode(c, n.id, n.pid));
    out(`logs are bunyan JSON lines; start-up errors go to ${path.join(c.dir, 'node<id>', 'stderr.log')}`);
  } catch (e) {
    process.stderr.write(`mxfs-cluster: ${(e as Error).message}\n`);
    const stopped = await c.down({ kill: true });
    if (stopped.length) process.stderr.write(`mxfs-cluster: stopped node${stopped.length > 1 ? 's' : ''} ${stopped.map((s) => s.id).join(' ')}\n`);
    process.exit(1);
  }
}

async function status(c: LocalCluster, json: boolean): Promise<void> {
  const rows = await Promise.all(c.nodes.map(async (n) => {
    const pids = c.pids(n.id);
    const st = pids.length ? await c.status(n.id) : undefined;
    return { id: n.id, pids, startedHere: pids.includes(n.pid), st, node: n };
  }));
  if (json) {
    out(JSON.stringify(rows.map((r) => ({
      id: r.id, running: r.pids.length > 0, pid: r.pids[0] ?? null, pids: r.pids, startedByMxfsCluster: r.startedHere,
      port: r.node.port, socket: r.node.socket, log: r.node.log, config: r.node.config, cluster: r.st?.cluster ?? null,
    })), null, 2));
    return;
  }
  for (const r of rows) {
    const cl = r.st?.cluster;
    const proc = r.pids.length === 0 ? 'not running' : `pid ${r.pids.join(' ')}${r.startedHere ? '' : ' (started outside mxfs-cluster)'}`;
    const state = r.pids.length === 0 ? '' : cl ? `  ${cl.state} epoch ${cl.epoch} members ${cl.members.join(' ')}  locks ${r.st.locks}` : '  not answering on its socket';
    out(`node ${r.id}: ${proc}${state}  log ${r.node.log}`);
  }
}

async function main(): Promise<void> {
  endOnClosedOutput();
  let a;
  try {
    a = parse(process.argv.slice(2), {
      nodes: { type: 'string', short: 'n' }, dir: { type: 'string', short: 'd' }, 'base-port': { type: 'string' },
      'lease-ms': { type: 'string' }, json: { type: 'boolean' }, kill: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    });
  } catch (e) {
    if (e instanceof UsageError) usage(e.message);
    throw e;
  }
  const v = a.values;
  if (v.help) { process.stdout.write(USAGE); return; }
  const [cmd, ...rest] = a.positionals;
  if (!cmd) usage('missing command (up, start, stop, restart, down or status)');
  if (!['up', 'start', 'restart', 'stop', 'down', 'status'].includes(cmd)) usage(`unknown command '${cmd}'`);
  if (!v.dir) usage('missing --dir DIR');
  const dir = path.resolve(v.dir);
  const int = (name: string, s: string | undefined, def: number, min: number, max: number) => {
    if (s === undefined) return def;
    if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) usage(`${name === 'NODE' ? name : `--${name}`} wants an integer ${min}..${max}, got '${s}'`);
    return Number(s);
  };
  const only = (allowed: string[]) => {
    for (const k of ['nodes', 'base-port', 'lease-ms', 'json', 'kill'] as const) if (v[k] !== undefined && !allowed.includes(k)) usage(`option --${k} does not apply to '${cmd}'`);
  };
  const open = () => {
    try { return LocalCluster.open(dir); } catch (e) { process.stderr.write(`mxfs-cluster: ${(e as Error).message}\n`); process.exit(1); }
  };
  // NODE is checked before DIR is read: a usage error is one whatever DIR holds.
  const nodeId = cmd === 'start' || cmd === 'restart' || cmd === 'stop' ? (() => {
    if (rest.length !== 1) usage(`'${cmd}' needs one NODE (a node id)`);
    return int('NODE', rest[0], 0, 1, 1023);
  })() : 0;
  const nodeArg = (c: LocalCluster) => {
    if (!c.nodes.some((n) => n.id === nodeId)) usage(`no node ${nodeId} in ${dir} (nodes ${c.nodes.map((n) => n.id).join(' ')})`);
    return nodeId;
  };
  const fail = (e: unknown): never => { process.stderr.write(`mxfs-cluster: ${(e as Error).message}\n`); process.exit(1); };
  switch (cmd) {
    case 'up': {
      only(['nodes', 'base-port', 'lease-ms']);
      if (rest.length) usage(`unexpected argument '${rest[0]}'`);
      if (v.nodes === undefined) usage('missing --nodes N');
      const L = CREATE_LIMITS;
      return up(dir, int('nodes', v.nodes, 3, ...L.nodes), int('base-port', v['base-port'], 7600, ...L.basePort), int('lease-ms', v['lease-ms'], 3000, ...L.leaseMs));
    }
    case 'start': case 'restart': {
      only([]);
      const c = open();
      const id = nodeArg(c);
      if (cmd === 'restart') {
        const pids = await c.stop(id);
        out(pids.length ? `node ${id} stopped (pid ${pids.join(' ')})` : `node ${id} was not running`);
      }
      const pid = await c.start(id).catch(fail);
      out(`node ${id} started`);
      out(describeNode(c, id, pid));
      return;
    }
    case 'stop': {
      only(['kill']);
      const c = open();
      const id = nodeArg(c);
      const pids = await c.stop(id, { kill: !!v.kill });
      out(pids.length ? `node ${id} stopped (pid ${pids.join(' ')}, ${v.kill ? 'SIGKILL' : 'SIGTERM'})` : `node ${id} was not running`);
      return;
    }
    case 'down': {
      only(['kill']);
      if (rest.length) usage(`unexpected argument '${rest[0]}'`);
      const c = open();
      const stopped = await c.down({ kill: !!v.kill });
      out(stopped.length
        ? `stopped ${stopped.map((s) => `node ${s.id} (pid ${s.pids.join(' ')})`).join(', ')} in ${c.dir}`
        : `no node of the cluster in ${c.dir} was running`);
      return;
    }
    case 'status':
      only(['json']);
      if (rest.length) usage(`unexpected argument '${rest[0]}'`);
      return status(open(), !!v.json);
    default:
      usage(`unknown command '${cmd}'`);
  }
}

/** The CLI entry (bin/mxfs-cluster); importing this module runs nothing. */
export function run(): void {
  main().catch((e) => { process.stderr.write(`mxfs-cluster: ${(e as Error).message}\n`); process.exit(1); });
}

if (require.main === module) run();
