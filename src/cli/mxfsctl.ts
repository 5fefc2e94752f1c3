/**
 * mxfsctl — inspect and use a running mxfsd.
 *
 *   mxfsctl [--socket PATH | --config FILE] [--json] status
 *   mxfsctl [...] locks [--lockspace L] [--resource R] | locks --volume V
 *   mxfsctl [...] lock [--lockspace L] [--noqueue] [--timeout MS] [--grace MS] RESOURCE MODE -- COMMAND [ARGS...]
 *   mxfsctl [...] mount VOLUME [--wait | --no-wait] [--timeout MS]
 *   mxfsctl [...] umount VOLUME | standby VOLUME | volumes [VOLUME]
 *   mxfsctl keygen [--out FILE]
 *
 * Exit codes: 0 success (for `lock`: the command's own status, 128+N if killed by signal N),
 * 1 lock or volume not obtained (--noqueue / --no-wait refused, --timeout expired) as flock(1)
 * does, 2 usage error (an unknown volume too), 3 the lock was lost while the command ran (the
 * command was terminated), 4 cannot reach mxfsd or it failed the request, 5 mount/unmount
 * failed (device or mountpoint missing, mount(8) or a command failed), 6 this node is not
 * the volume's owner, 7 the volume is blocked or fenced (recovery cannot proceed).
 * `keygen`: 0, or 1 if FILE cannot be written.
 */
import { MxfsClient, VolumeRequestFailed } from '../client/client';
import type { VolumeReplyCode } from '../volumes/volume-core';
import { LockError } from '../dlm/types';
import { Mode, modeName, parseMode } from '../dlm/modes';
import { generateClusterKey } from '../cluster/auth';
import { ConfigError, DEFAULT_CONFIG_FILE, formatConfigError, loadConfig } from '../config/config';
import { MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../dlm/types';
import { checkName } from '../wire/client-protocol';
import { writeKeyFile } from './keygen';
import { die, endOnClosedOutput, nonUtf8Argument, parse, UsageError } from './usage';
import { TraceOutputError, traceCommand, TraceUsageError, whyCommand } from './mxfsctl-trace';
import { printable } from '../trace/export-text';
import { CommandGroup } from './command-group';

const DEFAULT_SOCKET = '/run/mxfs/mxfsd.sock';
const USAGE = `usage: mxfsctl [--socket PATH | --config FILE] [--json] COMMAND
commands:
  status                                   node, uptime, lockspaces, resource and lock counts
  nodes                                    cluster members, epoch, quorum, recovery, links and leases
  leases                                   the Lease actors: this node's self-fence deadline; per peer last heard,
                                           last renewal gap, expiry, how long its ack vouches for this node
  locks [--lockspace L] [--resource R]     granted/converting/waiting queues per resource (every master's view)
  locks --volume VOLUME                    the inode locks this node's kernel caches for a kernel volume
  lock [--lockspace L] [--noqueue] [--timeout MS] [--grace MS] RESOURCE MODE -- COMMAND [ARGS...]
                                           run COMMAND while holding the lock (MODE: NL CR CW PR PW EX)
  mount VOLUME [--wait | --no-wait] [--timeout MS]
                                           become VOLUME's owner on this node, then mount it
  umount VOLUME                            unmount, then give ownership back (or withdraw a standby,
                                           or clear a fence)
  standby VOLUME                           queue for ownership: take over when the owner dies or unmounts
  volumes [VOLUME]                         state, owner, standbys, generation, last recovery, blocked/fenced;
                                           this node's driver (kernel: gate, kernel lease age, every fence)
  trace status | dump | collect | tail [FILTERS] [--format F] [--out FILE] [--node N,...]
                                           the message trace (docs/tracing.md); FILTERS: --resource R
                                           --lockspace L --actor A --type T --since 10s|ISO --trace ID;
                                           F: text ndjson json chrome (Perfetto) mermaid html;
                                           tail: --interval MS --count N
  why RESOURCE [--lockspace L]             who holds it, who waits since when, BASTs, master, epoch,
                                           last recovery, recent traffic
  keygen [--out FILE]                      a new cluster key, to stdout or a new FILE (mode 0600)
The socket is --socket, else [node] socket of --config, else $MXFS_SOCKET, else [node] socket
of ${DEFAULT_CONFIG_FILE} if it is readable, else ${DEFAULT_SOCKET}.
`;

const EXIT_NOT_OBTAINED = 1;
const EXIT_USAGE = 2;
const EXIT_LOST = 3;
const EXIT_DAEMON = 4;
const EXIT_VOLUME_FAILED = 5;
const EXIT_NOT_OWNER = 6;
const EXIT_VOLUME_BLOCKED = 7;

/** How each refused volume request ends mxfsctl (docs/daemon.md). */
const VOLUME_EXIT: Record<VolumeReplyCode, number> = {
  OWNED: EXIT_NOT_OBTAINED, TIMEOUT: EXIT_NOT_OBTAINED, CANCELLED: EXIT_NOT_OBTAINED,
  UNKNOWN_VOLUME: EXIT_USAGE,
  DEVICE_MISSING: EXIT_VOLUME_FAILED, MOUNTPOINT_MISSING: EXIT_VOLUME_FAILED, MOUNT_FAILED: EXIT_VOLUME_FAILED,
  UMOUNT_FAILED: EXIT_VOLUME_FAILED, RECOVER_FAILED: EXIT_VOLUME_FAILED, NO_MODULE: EXIT_VOLUME_FAILED, DRIVER: EXIT_VOLUME_FAILED,
  NOT_OWNER: EXIT_NOT_OWNER,
  BLOCKED: EXIT_VOLUME_BLOCKED, FENCED: EXIT_VOLUME_BLOCKED, UNPROVEN: EXIT_VOLUME_BLOCKED, NO_MAJORITY: EXIT_VOLUME_BLOCKED,
  FENCE_UNCONFIRMED: EXIT_VOLUME_BLOCKED, LOST: EXIT_VOLUME_BLOCKED,
  BUSY: EXIT_DAEMON,
};

function usage(msg: string): never { die('mxfsctl', msg, USAGE, EXIT_USAGE); }
function fail(msg: string, code = EXIT_DAEMON): never { process.stderr.write(`mxfsctl: ${msg}\n`); process.exit(code); }

async function main(): Promise<void> {
  endOnClosedOutput();
  const argv = process.argv.slice(2);
  const notUtf8 = nonUtf8Argument(argv);
  if (notUtf8) usage(notUtf8);
  // Everything after `--` belongs to the command run under `lock`.
  const dd = argv.indexOf('--');
  const own = dd >= 0 ? argv.slice(0, dd) : argv;
  const command = dd >= 0 ? argv.slice(dd + 1) : [];
  let parsed;
  try {
    parsed = parse(own, {
      socket: { type: 'string', short: 's' },
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      lockspace: { type: 'string', short: 'l' },
      resource: { type: 'string', short: 'r' },
      noqueue: { type: 'boolean', short: 'n' },
      timeout: { type: 'string', short: 'w' },
      grace: { type: 'string' },
      out: { type: 'string', short: 'o' },
      wait: { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      actor: { type: 'string' },
      type: { type: 'string' },
      since: { type: 'string' },
      trace: { type: 'string' },
      node: { type: 'string' },
      format: { type: 'string' },
      interval: { type: 'string' },
      count: { type: 'string' },
      volume: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
  } catch (e) {
    if (e instanceof UsageError) usage(e.message);
    throw e;
  }
  const v = parsed.values;
  const [cmd, ...rest] = parsed.positionals;
  if (v.help) { process.stdout.write(USAGE); return; }
  if (!cmd) usage('missing COMMAND');
  if (v.socket && v.config) usage('give --socket or --config, not both');
  if (v.config === '') usage('--config needs a file path (it was empty)');
  if (v.socket === '') usage('--socket needs a path (it was empty)');
  const only = (allowed: string[]) => {
    for (const k of ['lockspace', 'resource', 'noqueue', 'timeout', 'grace', 'wait', 'no-wait', 'out', 'actor', 'type', 'since', 'trace', 'node', 'format', 'interval', 'count', 'volume'] as const) {
      if (v[k] !== undefined && !allowed.includes(k)) usage(`option --${k} does not apply to '${cmd}'`);
    }
  };

  // Names are checked here as the daemon would, so a bad one is a usage error (2), not a refusal (4).
  const name = (what: string, value: string | undefined, max: number) => {
    if (value === undefined) return;
    try { checkName(value, what, max); } catch (e) {
      const shown = value.length > 24 ? `${value.slice(0, 21)}...` : value;
      usage(`${what} name '${shown}' ${(e as Error).message.replace(/^field '\w+' /, '')}`);
    }
  };
  name('lockspace', v.lockspace, MAX_LOCKSPACE_NAME);
  name('resource', v.resource, MAX_RESOURCE_NAME);

  if (cmd === 'keygen') {
    only(['out']);
    if (rest.length || command.length) usage(`'keygen' takes no positional arguments`);
    if (v.out === undefined) { process.stdout.write(generateClusterKey()); return; }
    const err = writeKeyFile(v.out);
    if (err) fail(err, 1);
    process.stderr.write(`mxfsctl: wrote a new cluster key to ${v.out} (mode 0600); copy it to every node's key_file\n`);
    return;
  }

  const socket = v.socket ?? socketOf(v.config);

  switch (cmd) {
    case 'status':
      only([]);
      if (rest.length || command.length) usage(`'status' takes no arguments`);
      return printStatus(await connect(socket), !!v.json);
    case 'nodes':
      only([]);
      if (rest.length || command.length) usage(`'nodes' takes no arguments`);
      return printNodes(await connect(socket), !!v.json);
    case 'leases':
      only([]);
      if (rest.length || command.length) usage(`'leases' takes no arguments`);
      return printLeases(await connect(socket), !!v.json);
    case 'locks':
      if (v.volume !== undefined) {
        only(['volume']);
        if (rest.length || command.length) usage(`'locks' takes no positional arguments`);
        const volume = volumeArg(v.volume);
        return printInodeLocks(await connect(socket), !!v.json, volume);
      }
      only(['lockspace', 'resource']);
      if (rest.length || command.length) usage(`'locks' takes no positional arguments`);
      return printLocks(await connect(socket), !!v.json, v.lockspace, v.resource);
    case 'lock': {
      only(['lockspace', 'noqueue', 'timeout', 'grace']);
      if (rest.length !== 2) usage(`'lock' needs RESOURCE MODE -- COMMAND`);
      if (command.length === 0) usage(`'lock' needs a COMMAND after --`);
      const [resource, modeStr] = rest as [string, string];
      name('resource', resource, MAX_RESOURCE_NAME);
      const mode = parseMode(modeStr);
      if (mode === undefined) usage(`bad MODE '${modeStr}' (one of NL CR CW PR PW EX)`);
      const timeoutMs = v.timeout === undefined ? undefined : msArg('--timeout', v.timeout);
      const graceMs = v.grace === undefined ? 2000 : msArg('--grace', v.grace);
      const code = await runLocked(await connect(socket), { resource, mode, lockspace: v.lockspace, noqueue: !!v.noqueue, timeoutMs, graceMs, command });
      process.exit(code);
    }
    case 'mount': {
      only(['timeout', 'wait', 'no-wait']);
      if (rest.length !== 1 || command.length) usage(`'mount' needs exactly one VOLUME`);
      if (v.wait && v['no-wait']) usage('give --wait or --no-wait, not both');
      const timeoutMs = v.timeout === undefined ? undefined : msArg('--timeout', v.timeout);
      if (v['no-wait'] && timeoutMs !== undefined) usage('--timeout applies to --wait only');
      return volumeCommand(await connect(socket), 'mount', volumeArg(rest[0]!), { wait: !v['no-wait'], ...(timeoutMs !== undefined ? { timeoutMs } : {}) }, !!v.json);
    }
    case 'umount': case 'standby':
      only([]);
      if (rest.length !== 1 || command.length) usage(`'${cmd}' needs exactly one VOLUME`);
      return volumeCommand(await connect(socket), cmd, volumeArg(rest[0]!), {}, !!v.json);
    case 'volumes':
      only([]);
      if (rest.length > 1 || command.length) usage(`'volumes' takes at most one VOLUME`);
      return printVolumes(await connect(socket), !!v.json, rest[0] === undefined ? undefined : volumeArg(rest[0]));
    case 'trace': {
      const [sub, ...more] = rest;
      only(sub === 'tail' ? ['lockspace', 'resource', 'actor', 'type', 'since', 'trace', 'node', 'format', 'interval', 'count']
        : sub === 'status' ? [] : ['lockspace', 'resource', 'actor', 'type', 'since', 'trace', 'node', 'format', 'out']);
      if (command.length) usage(`'trace' takes no command after --`);
      const c = await connect(socket);
      try {
        await traceCommand(c, sub, more, { ...v, output: v.out, json: !!v.json });
      } catch (e) {
        if (e instanceof TraceUsageError) { await c.close(); usage(e.message); }
        if (e instanceof TraceOutputError) { await c.close(); fail(e.message, 1); }
        throw e;
      }
      await c.close();
      return;
    }
    case 'why': {
      only(['lockspace']);
      if (rest.length !== 1 || command.length) usage(`'why' needs exactly one RESOURCE`);
      name('resource', rest[0], MAX_RESOURCE_NAME);
      const c = await connect(socket);
      await whyCommand(c, rest[0]!, v.lockspace, !!v.json);
      await c.close();
      return;
    }
    default:
      usage(`unknown command '${cmd}'`);
  }
}

/** The daemon's socket when --socket is not given (see USAGE for the order). */
function socketOf(config: string | undefined): string {
  if (config) {
    try { return loadConfig(config).node.socket; } catch (e) {
      if (e instanceof ConfigError) usage(`config error: ${formatConfigError(e)}`);
      throw e;
    }
  }
  if (process.env.MXFS_SOCKET) return process.env.MXFS_SOCKET;
  try { return loadConfig(DEFAULT_CONFIG_FILE).node.socket; } catch { return DEFAULT_SOCKET; }
}

function volumeArg(s: string): string {
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(s)) usage(`bad VOLUME '${s.slice(0, 40)}' (1..32 characters from A-Z a-z 0-9 _ . -)`);
  return s;
}

async function volumeCommand(c: MxfsClient, op: 'mount' | 'umount' | 'standby', volume: string, opts: { wait?: boolean; timeoutMs?: number }, json: boolean): Promise<void> {
  let out: { message: string };
  try {
    out = await c.volume(op, volume, opts);
  } catch (e) {
    await c.close();
    if (e instanceof VolumeRequestFailed) {
      if (json) process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message }) + '\n');
      fail(e.message, VOLUME_EXIT[e.code] ?? EXIT_DAEMON);
    }
    fail(`${op} ${volume}: ${(e as Error).message}`);
  }
  await c.close();
  process.stdout.write(json ? JSON.stringify({ ok: true, ...out }) + '\n' : `${out.message}\n`);
}

function ago(ms: number): string { return ms < 1000 ? `${ms} ms` : fmtDuration(ms); }

/** A query whose refusals carry a volume code: its data, the client closed; a refusal ends mxfsctl with its exit code. */
async function volumeQuery(c: MxfsClient, ask: () => Promise<any>): Promise<any> {
  try {
    return await ask();
  } catch (e) {
    if (e instanceof VolumeRequestFailed) { await c.close(); fail(e.message, VOLUME_EXIT[e.code] ?? EXIT_DAEMON); }
    throw e;
  } finally {
    await c.close();
  }
}

async function printVolumes(c: MxfsClient, json: boolean, volume?: string): Promise<void> {
  const data = await volumeQuery(c, () => c.volume('status', volume));
  if (json) { process.stdout.write(JSON.stringify(data, null, 2) + '\n'); return; }
  const out: string[] = [];
  for (const v of data.volumes) {
    const lr = v.lastRecovery;
    out.push(`volume ${v.volume}  ${v.device}${v.mountpoint ? ` on ${v.mountpoint}` : ''}  driver ${v.driver}  failover ${v.failover}`);
    out.push(`  here (node ${data.node}): ${v.state}   owner: ${v.owner ?? 'none'}${v.owner !== null ? ` (${v.ownerState})` : ''}   generation ${v.generation}   standbys: ${v.standbys.length ? v.standbys.join(' ') : 'none'}`);
    out.push(`  last recovery: ${lr ? `node ${lr.by} recovered node ${lr.of}'s generation ${lr.fromGeneration === lr.ofGeneration ? lr.ofGeneration : `${lr.fromGeneration}..${lr.ofGeneration}`} in ${lr.ms} ms${lr.at ? `, ${ago(Math.max(0, Date.now() - lr.at))} ago` : ''}` : 'none'}`);
    const here = v.here;
    if (here) {
      out.push(`  driver here: ${here.detail ?? `gate ${here.gate}${here.mounted ? ', mounted' : ''}`}`);
      for (const f of here.fences ?? []) {
        out.push(`    fence ${f.cause} at ${new Date(f.at).toISOString()}, took ${f.durationMs} ms, ${f.drained ? 'writes drained' : 'NOT DRAINED within the bound'}`);
      }
    }
    for (const b of v.blocked) out.push(`  BLOCKED on node ${b.node} for ${ago(b.ageMs)} (${b.retries} retries): ${b.reason}`);
    for (const f of v.fenced) out.push(`  FENCED on node ${f.node}: ${f.reason ?? ''}${f.done ? '' : ' (fence still running)'}`);
    for (const n of v.nodes) out.push(`    node ${String(n.node).padEnd(4)} ${String(n.state).padEnd(11)} for ${ago(n.sinceMs)}${n.step ? `  step ${n.step}` : ''}${n.reason && n.state !== 'blocked' && n.state !== 'fenced' ? `  (${n.reason})` : ''}`);
  }
  if (data.volumes.length === 0) out.push('no volumes configured');
  if (data.missing?.length) out.push(`(no answer from node${data.missing.length > 1 ? 's' : ''} ${data.missing.join(' ')})`);
  process.stdout.write(out.join('\n') + '\n');
}

function msArg(name: string, s: string): number {
  if (!/^\d+$/.test(s) || Number(s) > 2 ** 31 - 1) usage(`${name} wants whole milliseconds 0..2147483647, got '${s}'`);
  return Number(s);
}

async function connect(socket: string): Promise<MxfsClient> {
  try {
    return await MxfsClient.connect(socket, { name: 'mxfsctl' });
  } catch (e) {
    fail(`cannot reach mxfsd: ${(e as Error).message}`);
  }
}

function fmtDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return (d ? `${d}d` : '') + (d || h ? `${h}h` : '') + (d || h || m ? `${m}m` : '') + `${s % 60}s`;
}

async function printStatus(c: MxfsClient, json: boolean): Promise<void> {
  const st = await c.status();
  await c.close();
  if (json) { process.stdout.write(JSON.stringify(st, null, 2) + '\n'); return; }
  const k = st.kernel ?? {};
  process.stdout.write([
    `node ${st.node.id} (${st.node.name})  mxfsd ${st.version}  pid ${st.pid}  up ${fmtDuration(st.uptimeMs)}`,
    `socket ${st.socket}`,
    `clients ${st.clients}  resources ${st.resources}  locks ${st.locks}`,
    `lockspaces: ${st.lockspaces.length ? st.lockspaces.map((l: any) => `${printable(l.name)} (${l.resources} resources)`).join(', ') : 'none'}`,
    `counters: grants ${st.counters.grants}  basts ${st.counters.basts}  evictions ${st.counters.evictions}  resource crashes ${st.counters.resourceCrashes}${st.counters.idleCollections !== undefined ? `  idle collections ${st.counters.idleCollections} (longest ${st.counters.idleCollectionMaxMs} ms)  malloc trims ${st.counters.mallocTrims}` : ''}`,
    `kernel: ${k.state === 'no-module' ? 'no kernel module' : k.state}${k.detail ? ` (${k.detail})` : ''}`,
  ].join('\n') + '\n');
}

async function printNodes(c: MxfsClient, json: boolean): Promise<void> {
  const st = await c.status();
  await c.close();
  const cl = st.cluster ?? {};
  if (json) { process.stdout.write(JSON.stringify({ node: st.node, ...cl, eventLoop: st.eventLoop ?? null }, null, 2) + '\n'); return; }
  const out = [
    `node ${st.node.id} (${st.node.name})  epoch ${cl.epoch}  state ${cl.state}  members ${(cl.members ?? []).join(' ') || '-'}  quorum ${quorumText(cl)}`,
  ];
  if (cl.recovery) out.push(`recovery of epoch ${cl.recovery.epoch}: phase ${cl.recovery.phase} for ${cl.recovery.sinceMs} ms, waiting for ${cl.recovery.waitingFor.join(' ') || 'nobody'}`);
  if (cl.stats?.lastRecoveryMs !== undefined) out.push(`recoveries ${cl.stats.recoveries}, last took ${cl.stats.lastRecoveryMs} ms; stale messages dropped ${cl.stats.staleDropped}`);
  const lease = cl.transport?.lease;
  const ms = (x: number | null | undefined) => (typeof x === 'number' ? Math.round(x) : '-');
  if (lease) out.push(`lease: ${lease.renewals} renewals, last gap ${ms(lease.lastGapMs)} ms, largest ${ms(lease.maxGapMs)} ms in the last minute (fences at ${lease.fenceAfterMs} ms); quorum lost ${lease.quorumLosses} times`);
  const loop = st.eventLoop;
  if (loop) out.push(`event loop delay (last minute): p99 ${loop.p99Ms} ms, max ${loop.maxMs} ms`);
  const peers: any[] = cl.transport?.peers ?? [];
  if (peers.length) {
    out.push(`${'peer'.padEnd(6)} ${'name'.padEnd(10)} ${'address'.padEnd(22)} ${'link'.padEnd(10)} ${'lease age'.padStart(10)}  state`);
    for (const p of peers) {
      out.push(`${String(p.id).padEnd(6)} ${String(p.name ?? '').padEnd(10)} ${String(p.address ?? '').padEnd(22)} ${String(p.link ?? '-').padEnd(10)} ${(p.leaseAgeMs === undefined || p.leaseAgeMs === null ? '-' : `${p.leaseAgeMs} ms`).padStart(10)}  ${p.state ?? ''}`);
    }
  } else if (cl.state === 'standalone') {
    out.push('standalone node (no [peer] configured)');
  }
  process.stdout.write(out.join('\n') + '\n');
}

/**
 * The Lease actors (src/cluster/lease.ts): this node's self-fence deadline, and per peer when it
 * was last heard, the last gap between its renewals, when its lease expires and how long its
 * acknowledgement still vouches for this node.
 */
async function printLeases(c: MxfsClient, json: boolean): Promise<void> {
  const st = await c.status();
  await c.close();
  const cl = st.cluster ?? {};
  const l = cl.transport?.leases as import('../cluster/lease').LeaseStatus | null | undefined;
  if (json) { process.stdout.write(JSON.stringify({ node: st.node.id, epoch: cl.epoch ?? null, leases: l ?? null }, null, 2) + '\n'); return; }
  if (!l) {
    process.stdout.write(cl.state === 'standalone' ? 'standalone node: no leases (no [peer] configured)\n' : 'no lease figures (the cluster layer did not answer)\n');
    return;
  }
  const s = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);
  const self = l.self.state === 'valid' ? `self-fence in ${s(l.self.deadlineInMs)} unless renewals are acknowledged`
    : l.self.state === 'lapsed' ? `self-fence deadline passed ${s(-(l.self.deadlineInMs ?? 0))} ago`
    : l.self.state === 'alone' ? 'no self-fence deadline (quorum alone)' : 'no self-fence deadline: NO quorum (not granting)';
  const out = [`node ${st.node.id}  epoch ${cl.epoch ?? '-'}  ${self}  (deadline moved ${l.self.moves} times, lapsed ${l.self.lapses})`];
  const cols = ['peer', 'inc', 'last heard', 'last gap', 'expires in', 'vouches for', 'renewals', 'expiries', 'restarts'];
  const rows = l.peers.map((p) => [String(p.peer), p.inc ?? '-', p.lastHeardAgoMs === null ? 'never' : `${s(p.lastHeardAgoMs)} ago`, s(p.lastGapMs),
    p.expired ? 'EXPIRED' : s(p.expiresInMs), p.vouchesForMs === null || p.vouchesForMs < 0 ? '-' : s(p.vouchesForMs), String(p.renewals), String(p.expiries), String(p.restarts)]);
  const width = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [cols, ...rows]) out.push(r.map((x, i) => x.padEnd(width[i]!)).join('  ').trimEnd());
  process.stdout.write(out.join('\n') + '\n');
}

/** "yes (lapses in 8.4 s unless renewed)", "NO", or "n/a" for a standalone node. */
function quorumText(cl: any): string {
  if (cl.state === 'standalone') return 'n/a (standalone)';
  if (cl.state === 'no-quorum' || cl.state === 'joining') return 'NO';
  const left = cl.transport?.quorumExpiresInMs;
  return typeof left === 'number' ? `yes (lapses in ${(left / 1000).toFixed(1)} s unless renewed)` : 'yes';
}

async function printLocks(c: MxfsClient, json: boolean, lockspace?: string, resource?: string): Promise<void> {
  const data = await c.locks({ lockspace, resource });
  await c.close();
  if (json) { process.stdout.write(JSON.stringify(data, null, 2) + '\n'); return; }
  const out: string[] = [];
  const who = (l: any) => `owner ${l.owner}${l.client ? ` (${l.client}${l.pid ? ` pid ${l.pid}` : ''})` : ''}`;
  for (const r of data.resources) {
    // Names are anyone's bytes: a newline would forge a line of this listing, an escape reach the terminal.
    out.push(`Resource ${printable(r.lockspace)}/${printable(r.resource)}${r.master !== undefined ? `  master ${r.master}` : ''}  token ${r.tokenCounter}  lvb ${r.lvbValid ? 'valid' : 'INVALID'} ${r.lvb}`);
    if (r.granted.length) out.push('  Granted');
    for (const l of r.granted) out.push(`    ${l.lockId.padEnd(12)} ${String(l.mode).padEnd(2)}${l.requested ? ` (converting to ${l.requested})` : ''}  token ${l.token}  ${who(l)}`);
    if (r.converting.length) out.push('  Conversion');
    for (const l of r.converting) out.push(`    ${l.lockId.padEnd(12)} ${l.mode} -> ${l.requested}  ${who(l)}`);
    if (r.waiting.length) out.push('  Waiting');
    for (const l of r.waiting) out.push(`    ${l.lockId.padEnd(12)} -- -> ${l.requested}  ${who(l)}`);
  }
  if (data.resources.length === 0) out.push('no locks');
  if (data.omitted > 0) out.push(`(${data.omitted} more resource${data.omitted > 1 ? 's' : ''} not shown: the answer must fit in one frame; narrow it with --lockspace or --resource)`);
  if (data.missing?.length) out.push(`(no answer from node${data.missing.length > 1 ? 's' : ''} ${data.missing.join(' ')}: their resources are not shown)`);
  process.stdout.write(out.join('\n') + '\n');
}

/** `locks --volume V`: this node's kernel's cached inode locks (src/daemon/kernel-inode-locks.ts). */
async function printInodeLocks(c: MxfsClient, json: boolean, volume: string): Promise<void> {
  const data = await volumeQuery(c, () => c.inodeLocks(volume));
  if (json) { process.stdout.write(JSON.stringify(data, null, 2) + '\n'); return; }
  if (data.total === 0) { process.stdout.write(`node ${data.node} kernel: no inode locks cached on volume ${volume}\n`); return; }
  const counts = (m: Record<string, number>) => Object.entries(m).map(([k, n]) => `${k} ${n}`).join(', ');
  const out = [
    `node ${data.node} kernel: ${data.total} inode lock${data.total > 1 ? 's' : ''} cached on volume ${volume} (${counts(data.byMode)}; ${counts(data.byState)})`,
    `${'inode'.padStart(12)}  ${'type'.padEnd(5)} ${'mode'.padEnd(4)} ${'state'.padEnd(10)} ${'holders'.padStart(7)} ${'waiters'.padStart(7)} ${'demote'.padEnd(6)} ${'hits'.padStart(10)} ${'misses'.padStart(7)} ${'pages'.padStart(8)} ${'version'.padStart(8)}`,
  ];
  for (const l of data.locks) {
    out.push(`${String(l.inode).padStart(12)}  ${l.type.padEnd(5)} ${l.mode.padEnd(4)} ${l.state.padEnd(10)} ${String(l.holders).padStart(7)} ${String(l.waiters).padStart(7)} ${(l.demote ?? '-').padEnd(6)} ${String(l.hits).padStart(10)} ${String(l.misses).padStart(7)} ${String(l.pages).padStart(8)} ${String(l.dataVersion).padStart(8)}`);
  }
  if (data.omitted > 0) out.push(`(${data.omitted} more not shown: --json gives the counts; debugfs mxfs/glocks lists every one)`);
  out.push(`(the cluster's view of these locks: mxfsctl locks --lockspace mxfs-inodes --resource ${volume}:<inode>)`);
  process.stdout.write(out.join('\n') + '\n');
}

interface RunOpts { resource: string; mode: Mode; lockspace?: string; noqueue: boolean; timeoutMs?: number; graceMs: number; command: string[] }

/**
 * flock(1)-style: hold the lock while COMMAND runs; never let any of it run on after the lock
 * is lost, or after mxfsctl is gone (CommandGroup: COMMAND's own process group, a watchdog).
 */
async function runLocked(c: MxfsClient, o: RunOpts): Promise<number> {
  let h;
  try {
    h = await c.lock(o.resource, o.mode, { lockspace: o.lockspace, noqueue: o.noqueue, timeoutMs: o.timeoutMs });
  } catch (e) {
    await c.close();
    if (e instanceof LockError && e.code === 'NOTQUEUED') { process.stderr.write(`mxfsctl: ${o.resource} is locked (not queued)\n`); return EXIT_NOT_OBTAINED; }
    if (e instanceof LockError && e.code === 'TIMEOUT') { process.stderr.write(`mxfsctl: timed out waiting for ${o.resource}\n`); return EXIT_NOT_OBTAINED; }
    fail(`cannot lock ${o.resource}: ${(e as Error).message}`);
  }
  const hello = c.hello;
  const group = new CommandGroup({
    command: o.command,
    env: {
      ...process.env,
      MXFS_TOKEN: String(h.grant.token), MXFS_RESOURCE: o.resource, MXFS_LOCKSPACE: h.lockspace,
      MXFS_MODE: modeName(h.grant.mode),
    },
    // The watchdog kills the group when mxfsctl has been silent as long as the daemon lets a
    // client's locks live: the same bound the client library applies to itself.
    beatMs: Math.max(10, Math.min(hello.keepaliveMs, Math.floor(hello.lostAfterMs / 4))),
    silenceMs: hello.lostAfterMs,
  });
  let lost: string | undefined;
  let stopped: Promise<void> | undefined;
  const onLost = (reason: string) => {
    if (lost !== undefined) return;
    lost = reason;
    process.stderr.write(`mxfsctl: lock on ${o.resource} lost (${reason}); terminating the command\n`);
    stopped = group.stop(o.graceMs);
  };
  h.on('lost', onLost);
  c.on('lost', onLost);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(sig, () => group.signal(sig));
  const status = await group.exited;
  // What COMMAND left behind in its group must not outlive the lock either.
  await (stopped ?? (group.alive() ? group.stop(o.graceMs) : Promise.resolve()));
  group.release();
  if (lost !== undefined) { await c.close(); return EXIT_LOST; }
  try {
    await h.unlock();
  } catch (e) {
    await c.close();
    process.stderr.write(`mxfsctl: unlock of ${o.resource} failed: ${(e as Error).message}\n`);
    return lost !== undefined ? EXIT_LOST : status;
  }
  await c.close();
  return status;
}

main().catch((e) => {
  process.stderr.write(`mxfsctl: ${e instanceof LockError ? e.message : (e as Error).stack ?? e}\n`);
  process.exit(EXIT_DAEMON);
});
