/**
 * The scenario runner: starts a ClusterUnderTest, plays a scenario's steps (workload,
 * faults, waits, assertions), stops the workload, asks the cluster which locks are left,
 * checks the history and writes the report. Every process it starts is stopped in a
 * finally block, whatever happens.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { check, CheckResult } from './checker';
import { ClusterUnderTest, pickBasePort } from './cluster';
import { History } from './history';
import { Nemesis, randomNemesis } from './nemesis';
import { Prng } from './prng';
import { Figures, figures, quorumOf, summaryText, writeReport } from './report';
import { boundOf, Condition, describeStep, NodeRef, Scenario, Step } from './scenario';
import { FencedStore } from './store';
import { storeVolumeConfig, VolumeStore } from './volume-store';
import { attachTrace, TRACE_CONFIG } from './trace-report';
import { MxfsClient } from '../client/client';
import { WorkloadClient } from './workload';
import { Mode } from '../dlm/modes';
import { ABUSE_KINDS, AbuseResult } from './abuse';
import { abuseInChild } from './abuse-child';
import { rendezvousOwner } from '../cluster/rendezvous';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RunOptions {
  seed: number;
  /** Override the scenario's node count. */
  nodes?: number;
  /** Where to write the report (default: a new directory under the OS temp dir). */
  reportDir?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface RunResult {
  figures: Figures;
  result: CheckResult;
  reportDir: string;
  summary: string;
  /** Set when the scenario could not be played to the end (the reason). */
  aborted?: string;
}

class ScenarioAbort extends Error {}

/** How long after the last fault every request must be served: derived from the lease. */
export function serveBound(leaseMs: number): number { return 4 * leaseMs + 4000; }

export async function runScenario(sc: Scenario, opts: RunOptions): Promise<RunResult> {
  const n = opts.nodes ?? sc.nodes;
  const log = opts.log ?? (() => {});
  const reportDir = path.resolve(opts.reportDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `mxfs-failover-${sc.name}-${opts.seed}-`)));
  fs.mkdirSync(reportDir, { recursive: true });
  const clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfo-'));
  const history = new History({ file: path.join(reportDir, 'history.ndjson') });
  const rng = new Prng(opts.seed);
  const store = new FencedStore(history);
  const basePort = await pickBasePort(n, opts.seed * 31 + process.pid);
  // Volumes: one store for the cluster, its socket in the cluster dir; each node mounts into its own dir.
  const volStore = sc.volumes?.length ? new VolumeStore(history) : undefined;
  const volSocket = path.join(clusterDir, 'volume-store.sock');
  const volCmd = path.join(__dirname, 'volume-cmd.js');
  // Every node traces to its own files (unless the scenario says not to): a failed run's report gets the merged trace.
  const extraConfig = (id: number) => [...(sc.trace === false ? [] : [TRACE_CONFIG]), ...(volStore ? sc.volumes!.map((v) => storeVolumeConfig({
    name: v.name, dir: path.join(clusterDir, 'volumes', v.name, `node${id}`), socket: volSocket, cmd: volCmd,
    failover: v.failover, fenceBoundMs: v.fenceBoundMs,
  })) : [])].join('\n');
  const cluster = new ClusterUnderTest(clusterDir, n, basePort, sc.leaseMs, history, sc.standalone, extraConfig);
  const volumeRequests: Array<Promise<unknown>> = [];
  const nemesis = new Nemesis(cluster, history);
  const clients: WorkloadClient[] = [];
  const bindings = new Map<string, number[]>();
  const resources = Array.from({ length: sc.resources ?? 3 }, (_, i) => `r${i}`);
  let epochAtLastFault = 0;
  let aborted: string | undefined;
  const say = (s: string) => log(`[${(history.elapsed() / 1000).toFixed(2)}s] ${s}`);

  history.add({ type: 'meta', scenario: sc.name, seed: opts.seed, nodes: n, leaseMs: sc.leaseMs, startedAt: new Date(Date.now() - history.elapsed()).toISOString() });
  say(`scenario ${sc.name}, seed ${opts.seed}, ${n} nodes on 127.0.0.1:${basePort + 1}..${basePort + n}, lease ${sc.leaseMs} ms, report ${reportDir}`);

  const grantsSince = (t: number, resource?: string) =>
    history.events.filter((e) => e.type === 'ok' && e.kind !== 'unlock' && e.t >= t && (resource === undefined || e.resource === resource)).length;

  const formed = () => (n === 1 || sc.standalone
    ? cluster.upIds().length === n && cluster.upIds().every((id) => ['standalone', 'running'].includes(cluster.latest.get(id)?.state ?? ''))
    : cluster.formed());

  const holderOf = async (resource: string, grantedWithinMs = Infinity): Promise<WorkloadClient> => {
    const end = Date.now() + 10000;
    for (;;) {
      const c = clients.find((x) => x.holding?.resource === resource && (x.holding.mode === Mode.PW || x.holding.mode === Mode.EX) && cluster.run.get(x.node) === 'up'
        && performance.now() - x.holding.since <= grantedWithinMs);
      if (c) return c;
      if (Date.now() > end) throw new ScenarioAbort(`no client held ${resource} in PW/EX${Number.isFinite(grantedWithinMs) ? ` (granted within ${grantedWithinMs} ms)` : ''} within 10 s`);
      await sleep(10);
    }
  };

  const resolve = async (ref: NodeRef): Promise<number[]> => {
    if (typeof ref === 'number') return [ref];
    if (typeof ref === 'string') {
      const b = bindings.get(ref);
      if (!b) throw new ScenarioAbort(`no node bound to '${ref}'`);
      return b;
    }
    if ('holderOf' in ref) return [(await holderOf(ref.holderOf, ref.grantedWithinMs)).node];
    if ('masterOf' in ref) return [nemesis.masterOf(ref.masterOf)];
    if ('ownerOf' in ref) {
      const on = volStore?.currentOwner(ref.ownerOf);
      if (on === undefined) throw new ScenarioAbort(`volume ${ref.ownerOf} is not mounted on any node`);
      return [on];
    }
    if ('recoveringOf' in ref) {
      const on = volStore?.heldRecovers(ref.recoveringOf) ?? [];
      if (!on.length) throw new ScenarioAbort(`no node is recovering volume ${ref.recoveringOf}`);
      return [on[0]!];
    }
    const not = new Set((await Promise.all((ref.not ?? []).map(resolve))).flat());
    const pool = cluster.upIds().filter((id) => !not.has(id));
    if (!pool.length) throw new ScenarioAbort('no running node to pick');
    return [rng.pick(pool)];
  };
  const resolveAll = async (refs: NodeRef[] | undefined) => (refs ? [...new Set((await Promise.all(refs.map(resolve))).flat())] : cluster.upIds());
  const one = async (ref: NodeRef) => (await resolve(ref))[0]!;

  const holds = async (c: Condition, since: { t: number; epoch: number }): Promise<boolean> => {
    if ('formed' in c) return formed();
    if ('recovered' in c) {
      const base = Math.max(epochAtLastFault, 0);
      const counts = new Map<number, number>();
      for (const id of cluster.upIds()) {
        const s = cluster.latest.get(id);
        if (s && s.state === 'running' && s.epoch > base) counts.set(s.epoch, (counts.get(s.epoch) ?? 0) + 1);
      }
      return [...counts.values()].some((x) => x >= quorumOf(n));
    }
    if ('recoveryStarted' in c) return cluster.upIds().some((id) => cluster.latest.get(id)?.state === 'recovering');
    if ('grants' in c) return grantsSince(since.t, c.resource) >= c.grants;
    if ('lost' in c) return history.events.filter((e) => e.type === 'lost' && e.t >= since.t).length >= c.lost;
    if ('volumeMounted' in c) {
      const on = volStore?.currentOwner(c.volumeMounted);
      if (on === undefined) return false;
      const not = new Set((await Promise.all((c.not ?? []).map((r) => resolve(r).catch(() => [] as number[])))).flat());
      return !not.has(on) && volStore!.generationFloor(c.volumeMounted) >= (c.generationAtLeast ?? 0);
    }
    if ('recoveryHeld' in c) return (volStore?.heldRecovers(c.recoveryHeld).length ?? 0) > 0;
    const id = await one(c.node);
    return cluster.latest.get(id)?.state === c.state;
  };

  const waitFor = async (c: Condition, boundMs: number, pollMs = 10): Promise<boolean> => {
    const since = { t: history.elapsed(), epoch: cluster.maxEpoch() };
    const end = Date.now() + boundMs;
    for (;;) {
      if (await holds(c, since)) return true;
      if (Date.now() > end) return false;
      await sleep(pollMs);
    }
  };

  const beforeFault = () => { epochAtLastFault = cluster.maxEpoch(); };
  const formBound = Math.max(20000, sc.leaseMs * 6);

  const step = async (s: Step): Promise<void> => {
    history.add({ type: 'step', text: describeStep(s) });
    say(describeStep(s));
    switch (s.do) {
      case 'start': {
        const ids = s.nodes ? await resolveAll(s.nodes) : cluster.ids;
        await Promise.all(ids.map((id) => cluster.start(id)));
        cluster.startPolling(25);
        if (s.wait !== false && !(await waitFor({ formed: true }, s.withinMs ?? formBound))) {
          throw new ScenarioAbort(`the cluster did not form within ${s.withinMs ?? formBound} ms: ${viewsText()}`);
        }
        return;
      }
      case 'clients': {
        const on = s.nodes ? await resolveAll(s.nodes) : cluster.upIds();
        for (let i = 0; i < s.count; i++) {
          const node = on[i % on.length]!;
          const name = `c${clients.length + 1}@n${node}`;
          const w = new WorkloadClient(name, node, cluster.node(node).socket, {
            resources: resources.slice(0, s.resources ?? resources.length),
            modes: s.modes ?? { EX: 3, PW: 1, PR: 2, CR: 1 },
            convertFraction: s.convertFraction ?? 0.2,
            holdMs: s.holdMs, thinkMs: s.thinkMs, lockTimeoutMs: serveBound(sc.leaseMs) + 5000,
          }, history, store, new Prng(rng.int(0, 0x7fffffff)));
          clients.push(w);
          w.start();
        }
        return;
      }
      case 'stop-clients': await Promise.all(clients.map((c) => c.stop())); return;
      case 'sleep': await sleep(s.ms); return;
      case 'kill': {
        const id = await one(s.node);
        beforeFault();
        await nemesis.kill(id);
        if (s.as) bindings.set(s.as, [id]);
        return;
      }
      case 'restart': {
        for (const id of await resolve(s.node)) {
          beforeFault();
          await nemesis.restart(id);
        }
        if (s.wait && !(await waitFor({ formed: true }, formBound))) throw new ScenarioAbort(`no cluster after restart: ${viewsText()}`);
        return;
      }
      case 'pause': {
        const id = await one(s.node);
        beforeFault();
        nemesis.pause(id);
        if (s.as) bindings.set(s.as, [id]);
        if (s.ms !== undefined) { await sleep(s.ms); nemesis.resume(id); }
        return;
      }
      case 'resume': for (const id of await resolve(s.node)) nemesis.resume(id); return;
      case 'volume': {
        const id = await one(s.node);
        const req = (async () => {
          const c = await MxfsClient.connect(cluster.node(id).socket, { name: 'failover-volumes' });
          try {
            const r = await c.volume(s.op, s.volume, { wait: true });
            history.add({ type: 'step', text: `volume ${s.op} ${s.volume} on node ${id}: ${r.message}` });
          } catch (e) {
            history.add({ type: 'step', text: `volume ${s.op} ${s.volume} on node ${id} failed: ${(e as Error).message}` });
            if (s.await) throw new ScenarioAbort(`volume ${s.op} ${s.volume} on node ${id} failed: ${(e as Error).message}`);
          } finally {
            await c.close().catch(() => undefined);
          }
        })();
        if (s.await) await req; else volumeRequests.push(req.catch(() => undefined));
        return;
      }
      case 'hold-recovery': volStore?.holdRecoversOf(s.volume); return;
      case 'release-recovery': volStore?.releaseRecovers(s.volume, cluster.ids.filter((id) => cluster.run.get(id) === 'down')); return;
      case 'gc-pause': {
        const c = await holderOf(s.resource);
        say(`gc-pause: freezing ${c.name} (holds ${s.resource}, token ${c.holding?.token}) for ${s.ms} ms`);
        await c.gcPause(s.ms);
        return;
      }
      case 'partition': {
        let sides: number[][];
        if (s.isolate !== undefined) {
          const cut = await resolve(s.isolate);
          sides = [cluster.ids.filter((id) => !cut.includes(id)), cut];
        } else if (s.sides) {
          sides = await Promise.all(s.sides.map(resolveAll));
        } else throw new ScenarioAbort('partition needs sides or isolate');
        beforeFault();
        await nemesis.partition(sides);
        if (s.as) bindings.set(s.as, sides[sides.length - 1]!);
        return;
      }
      case 'heal': beforeFault(); await nemesis.heal(); return;
      case 'drop': beforeFault(); await nemesis.drop(s.fraction, await resolveAll(s.nodes)); return;
      case 'delay': beforeFault(); await nemesis.delay(s.ms, await resolveAll(s.nodes)); return;
      case 'cut': {
        beforeFault();
        const pairs = await Promise.all(s.pairs.map(async (p) => [await one(p[0]!), await one(p[1]!)] as [number, number]));
        await nemesis.cut(pairs);
        return;
      }
      case 'reset-links': beforeFault(); await nemesis.resetLinks(await resolveAll(s.nodes)); return;
      case 'rolling-restart': {
        for (const id of cluster.ids) {
          beforeFault();
          if (s.hard) await nemesis.kill(id); else await nemesis.terminate(id);
          await sleep(s.gapMs ?? 200);
          beforeFault();
          await nemesis.restart(id);
          if (!(await waitFor({ formed: true }, formBound))) throw new ScenarioAbort(`no cluster after restarting node ${id}: ${viewsText()}`);
        }
        return;
      }
      case 'nemesis': {
        await randomNemesis(nemesis, cluster, rng, {
          holderNode: () => clients.find((c) => c.holding && (c.holding.mode === Mode.PW || c.holding.mode === Mode.EX))?.node,
          gcPause: (ms) => {
            const c = clients.find((x) => x.holding && (x.holding.mode === Mode.PW || x.holding.mode === Mode.EX));
            if (!c) return false;
            void c.gcPause(ms);
            return true;
          },
          waitFormed: (ms) => waitFor({ formed: true }, ms),
          log: say,
        }, { durationMs: s.durationMs, faults: s.faults, gapMs: s.gapMs });
        beforeFault();
        return;
      }
      case 'abuse': await abuse(s); return;
      case 'wait':
      case 'assert': {
        const bound = boundOf(s, sc.leaseMs, 4 * sc.leaseMs + 4000);
        const t0 = Date.now();
        if (await waitFor(s.until, bound)) { say(`  held after ${Date.now() - t0} ms`); return; }
        const text = `${s.do} ${('text' in s && s.text) || JSON.stringify(s.until)} did not hold within ${bound} ms (${viewsText()})`;
        history.add({ type: 'assert-failed', text });
        if (s.do === 'wait') throw new ScenarioAbort(text);
        say(`  ${text}`);
        return;
      }
    }
  };

  /** The 'abuse' step (see scenario.ts): abusers in child processes, then the stability checks. */
  const abuse = async (s: Extract<Step, { do: 'abuse' }>): Promise<void> => {
    const fail = (text: string) => { history.add({ type: 'assert-failed', text }); say(`  ${text}`); };
    const health = async () => {
      const m = new Map<number, { epoch: number; losses: number }>();
      for (const id of cluster.upIds()) {
        try {
          const st = await cluster.status(id, 10000);
          m.set(id, { epoch: st.cluster.epoch, losses: st.cluster.transport?.lease?.quorumLosses ?? 0 });
        } catch (e) { fail(`node ${id} did not answer status: ${(e as Error).message}`); }
      }
      return m;
    };
    const on = s.nodes ? await resolveAll(s.nodes) : cluster.upIds();
    const members = cluster.currentMembers();
    const mastered = (node: number, tag: string) => { for (let i = 0; ; i++) if (rendezvousOwner('default', `${tag}${i}`, members) === node) return `${tag}${i}`; };
    const before = await health();
    const since = history.elapsed();
    const kids = (s.kinds ?? ABUSE_KINDS).map((kind, i) => {
      const node = on[i % on.length]!;
      history.add({ type: 'abuse', kind, node });
      const other = members.find((m) => m !== node) ?? node;
      return {
        kind, node, child: abuseInChild(kind, {
          socket: cluster.node(node).socket, durationMs: s.durationMs ?? 10000, prefix: `abuse-${kind}-${opts.seed}-`,
          count: kind === 'pipeline-disconnect' ? s.pipeline ?? 100000 : undefined,
          remoteResource: mastered(other, 'abuse-remote-'), localResource: mastered(node, 'abuse-local-'),
        }),
      };
    });
    const results = await Promise.allSettled(kids.map((k) => k.child.result));
    results.forEach((r, i) => {
      const { kind, node } = kids[i]!;
      if (r.status === 'rejected') { fail(`abusive client ${kind} on node ${node} failed: ${(r.reason as Error).message}`); return; }
      const v: AbuseResult = r.value;
      const result = { sent: v.sent, ok: v.ok, errors: v.errors, examples: v.examples, unanswered: v.unanswered, cutOff: v.cutOff, unclear: v.unclear };
      history.add({ type: 'abuse', kind, node, result });
      say(`  ${kind} on node ${node}: sent ${result.sent}, ok ${result.ok}, errors ${JSON.stringify(result.errors)}, unanswered ${result.unanswered}${result.cutOff ? `, cut off: ${result.cutOff}` : ''}`);
      for (const u of result.unclear) fail(`${kind} on node ${node}: ${u}`);
    });
    const after = await health();
    for (const [id, b] of before) {
      const a = after.get(id);
      if (!a) { fail(`node ${id} is gone after the abuse`); continue; }
      if (a.epoch !== b.epoch) fail(`node ${id} changed epoch during the abuse (${b.epoch} -> ${a.epoch})`);
      if (a.losses > b.losses) fail(`node ${id} lost quorum ${a.losses - b.losses} time(s) during the abuse`);
    }
    for (const e of history.events) {
      if (e.t < since) continue;
      if (e.type === 'view' && e.state !== 'running') fail(`node ${e.node} was ${e.state} (epoch ${e.epoch}) during the abuse`);
      if (e.type === 'lost') fail(`workload client ${e.client} lost its lock on ${e.resource} during the abuse: ${e.reason}`);
    }
  };

  const viewsText = () => cluster.ids.map((id) => {
    const s = cluster.latest.get(id);
    return `node ${id} ${cluster.run.get(id)}${s ? ` ${s.state} epoch ${s.epoch} members ${s.members.join(',')}` : ''}`;
  }).join('; ');

  try {
    if (volStore) {
      fs.mkdirSync(path.dirname(volSocket), { recursive: true });
      await volStore.listen(volSocket);
      // Each node's applications write while it has a volume mounted; a killed node's die with it.
      volStore.startWriters(sc.volumes!.map((v) => v.name), cluster.ids, (id) => cluster.run.get(id) !== 'down');
    }
    try {
      for (const s of sc.steps) await step(s);
    } catch (e) {
      if (!(e instanceof ScenarioAbort)) throw e;
      aborted = e.message;
      say(`aborted: ${aborted}`);
    }
    await Promise.all(clients.map((c) => c.stop()));
    if (!aborted) await finalLocks();
  } finally {
    await Promise.all(clients.map((c) => c.stop())).catch(() => {});
    volStore?.close();
    await cluster.stop();
    await Promise.all(volumeRequests);
    history.close();
    copyLogs(cluster, reportDir);
  }

  async function finalLocks(): Promise<void> {
    // Give the cluster time to purge the sessions that just closed, then list what is left.
    if (!(await waitFor({ formed: true }, formBound))) { history.add({ type: 'assert-failed', text: `cluster not formed at the end: ${viewsText()}` }); return; }
    const end = Date.now() + 2 * sc.leaseMs + 2000;
    let left: Array<{ node: number; locks: Array<{ resource: string; owner: string; mode: string | null }> }> = [];
    for (;;) {
      left = [];
      for (const id of cluster.upIds()) {
        try {
          const r = await cluster.locks(id);
          const locks = [];
          for (const res of r.resources ?? []) {
            for (const l of [...(res.granted ?? []), ...(res.converting ?? []), ...(res.waiting ?? [])]) {
              if (l.client === 'failover-control') continue;
              if (res.lockspace === 'mxfs-volumes') continue; // volume ownership and standbys stay by design
              locks.push({ resource: `${res.lockspace}/${res.resource}`, owner: String(l.owner), mode: l.mode ?? null });
            }
          }
          if (locks.length) left.push({ node: id, locks });
        } catch (e) {
          history.add({ type: 'assert-failed', text: `could not list locks on node ${id}: ${(e as Error).message}` });
          return;
        }
        if (n > 1 && !sc.standalone) break; // a cluster member lists every master's view
      }
      if (!left.length || Date.now() > end) break;
      await sleep(100);
    }
    for (const l of left) history.add({ type: 'final-locks', node: l.node, locks: l.locks });
  }

  try {
    const events = history.events;
    const result = check(events, { serveBoundMs: serveBound(sc.leaseMs), minTakeoverMs: 0.8 * sc.leaseMs });
    const f = figures(events, result, { scenario: sc.name, seed: opts.seed, nodes: n, leaseMs: sc.leaseMs });
    writeReport(reportDir, events, f, result, aborted);
    let traced = '';
    if (result.violations.length > 0 || aborted) {
      const line = attachTrace(cluster.nodes.map((nd) => ({ id: nd.id, dir: nd.dir })), reportDir, `${sc.name} seed ${opts.seed}`);
      if (line) traced = `  ${line}\n`;
    }
    const summary = summaryText(f, result, 20, aborted) + traced + `  report: ${reportDir}\n`;
    return { figures: f, result, reportDir, summary, ...(aborted ? { aborted } : {}) };
  } finally {
    fs.rmSync(clusterDir, { recursive: true, force: true });
  }
}

function copyLogs(cluster: ClusterUnderTest, reportDir: string): void {
  for (const nd of cluster.nodes) {
    const to = path.join(reportDir, `node${nd.id}`);
    fs.mkdirSync(to, { recursive: true });
    for (const f of ['mxfsd.log', 'stderr.log', 'mxfs.conf']) {
      const from = path.join(nd.dir, f);
      if (fs.existsSync(from)) fs.copyFileSync(from, path.join(to, f));
    }
  }
}
