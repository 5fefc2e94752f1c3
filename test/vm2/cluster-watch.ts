/**
 * cluster-watch: waits, inside a two-VM test VM, until the local mxfsd's cluster view meets a
 * condition, polling its status every 100 ms over one client connection (an mxfsctl per poll
 * costs a Node start, seconds under TCG). Prints one JSON line: the condition, whether it was
 * met, the elapsed time on this VM's clock, and the view at that moment (state, epoch,
 * members, quorum, each peer's lease age: for a dropped peer, how long ago it was last heard
 * from, which is the daemon's own measure of how long it took to declare that peer dead).
 *
 *   node cluster-watch.js --socket PATH --until COND [--timeout-ms MS] [--ready-file PATH]
 *   COND: members=1,2   view is exactly these members, running, in quorum
 *         without=N     view does not hold node N, running, in quorum
 *         no-quorum     this node has lost quorum (self-fenced)
 * --ready-file: created after the first status answer, so the host can start a fault only once
 * the watcher is polling (a Node start takes seconds under TCG). `pollGapMs` in the output is
 * the time since the previous poll: the condition became true within that gap.
 * Exit: 0 met, 1 not met within the timeout (the last view is printed), 2 usage.
 * The daemon may not be up yet: connection failures are retried until the timeout.
 */
import fs from 'node:fs';
import { MxfsClient } from '../../src/client/client';

type Cond = { kind: 'members'; ids: number[] } | { kind: 'without'; id: number } | { kind: 'no-quorum' };

interface View { state: string; epoch: number; members: number[]; inQuorum: boolean; peers: Array<{ id: number; state: string; leaseAgeMs: number | null }> }

function usage(msg: string): never {
  process.stderr.write(`cluster-watch: ${msg}\nusage: cluster-watch --socket PATH --until members=1,2|without=N|no-quorum [--timeout-ms MS] [--ready-file PATH]\n`);
  process.exit(2);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function parseCond(s: string): Cond {
  if (s === 'no-quorum') return { kind: 'no-quorum' };
  const m = /^(members|without)=([0-9,]+)$/.exec(s);
  if (!m) usage(`bad condition '${s}'`);
  const ids = m[2]!.split(',').filter((x) => x !== '').map(Number).sort((a, b) => a - b);
  if (ids.length === 0) usage(`bad condition '${s}'`);
  return m[1] === 'members' ? { kind: 'members', ids } : { kind: 'without', id: ids[0]! };
}

function viewOf(st: any): View {
  const cl = st.cluster ?? {};
  return {
    state: cl.state, epoch: cl.epoch, members: [...(cl.members ?? [])].sort((a: number, b: number) => a - b),
    inQuorum: !!cl.transport?.inQuorum,
    peers: (cl.transport?.peers ?? []).map((p: any) => ({ id: p.id, state: p.state, leaseAgeMs: p.leaseAgeMs })),
  };
}

function met(c: Cond, v: View): boolean {
  const serving = v.state === 'running' && v.inQuorum;
  switch (c.kind) {
    case 'members': return serving && v.members.join(',') === c.ids.join(',');
    case 'without': return serving && !v.members.includes(c.id);
    case 'no-quorum': return v.state === 'no-quorum' || !v.inQuorum;
  }
}

async function main(): Promise<void> {
  const socket = arg('--socket') ?? usage('--socket is required');
  const until = arg('--until') ?? usage('--until is required');
  const timeoutMs = Number(arg('--timeout-ms') ?? '60000');
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) usage('--timeout-ms wants a positive number');
  const cond = parseCond(until);
  const readyFile = arg('--ready-file');
  const t0 = performance.now();
  const elapsed = () => Math.round(performance.now() - t0);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let client: MxfsClient | undefined;
  let last: View | undefined;
  let lastError: string | undefined;
  let lastPoll: number | undefined;
  while (elapsed() < timeoutMs) {
    try {
      client ??= await MxfsClient.connect(socket, { name: 'cluster-watch' });
      last = viewOf(await client.status());
      const now = elapsed();
      const pollGapMs = lastPoll === undefined ? null : now - lastPoll;
      if (lastPoll === undefined && readyFile) fs.writeFileSync(readyFile, `${now}\n`);
      lastPoll = now;
      if (met(cond, last)) {
        process.stdout.write(JSON.stringify({ until, met: true, elapsedMs: now, pollGapMs, ...last }) + '\n');
        await client.close();
        return;
      }
    } catch (e) {
      lastError = (e as Error).message;
      if (client) { client.close().catch(() => undefined); client = undefined; }
    }
    await sleep(100);
  }
  process.stdout.write(JSON.stringify({ until, met: false, elapsedMs: elapsed(), ...(last ?? {}), error: lastError ?? null }) + '\n');
  if (client) await client.close().catch(() => undefined);
  process.exit(1);
}

main().catch((e) => { process.stderr.write(`cluster-watch: ${(e as Error).stack ?? e}\n`); process.exit(1); });
