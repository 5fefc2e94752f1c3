/**
 * Admission control and coalesced inspection, in-process (three Daemons on a LocalHub, one
 * node cut off so that requests to it stay in flight for as long as the test wants; clients
 * on each daemon's Unix socket, since in-process clients are never refused):
 * requests in flight are bounded per session and per daemon, and answered BUSY beyond;
 * requests waiting in a lock queue do not count; N clients asking `locks` at once cost at most
 * two cluster fan-outs. Time is a ManualClock, so nothing here races the wall clock.
 */
import { expect } from 'chai';
import { Daemon } from '../src/daemon/daemon';
import { LocalHub } from '../src/cluster/port';
import { rendezvousOwner } from '../src/cluster/rendezvous';
import { Mode } from '../src/dlm/modes';
import { LockError } from '../src/dlm/types';
import { ManualClock } from '../src/util/clock';
import { MxfsClient } from '../src/client/client';
import { quietLogger, testConfig, tmpDir, waitFor } from './support/daemon-proc';
import { resourceOn } from './support/cluster-proc';
import { RawClient } from '../src/failover/abuse';

const { EX } = Mode;

describe('admission control and coalesced inspection (in-process)', function () {
  this.timeout(30000);
  let hub: LocalHub;
  let nodes: Map<number, Daemon>;
  let clock: ManualClock;

  async function boot(locking: { maxRequestsPerClient?: number; maxRequests?: number; maxFrameBytes?: number; maxClientOutputBytes?: number } = {}) {
    hub = new LocalHub();
    clock = new ManualClock();
    nodes = new Map();
    for (const id of [1, 2, 3]) {
      const d = new Daemon({
        config: testConfig(tmpDir(), { node: { id }, locking, timing: { queryTimeoutMs: 500 } }),
        log: quietLogger(), port: hub.port(id), masterOf: rendezvousOwner, clock,
      });
      await d.start();
      nodes.set(id, d);
    }
    hub.commit(1, [1, 2, 3]);
    await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running'), 10000, 'first recovery');
  }
  afterEach(async () => { for (const d of nodes?.values() ?? []) await d.stop(); });

  /** Simulated time, in small steps with the event loop settling in between (keepalives flow). */
  async function advance(ms: number) {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    }
  }

  /** A client on the daemon's socket, on the simulated clock. */
  const connect = (d: Daemon, name: string) => MxfsClient.connect(d.socketPath, { name, clock });
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e) => `${(e as LockError).code}: ${(e as Error).message}`);

  it('requests in flight are bounded per client and per daemon (BUSY beyond); queued lock requests do not count', async () => {
    await boot({ maxRequestsPerClient: 4, maxRequests: 6 });
    const d1 = nodes.get(1)!;
    hub.isolate(2); // what node 1 sends to node 2 is lost: requests mastered there stay in flight
    const on2 = Array.from({ length: 8 }, (_, i) => resourceOn(2, [1, 2, 3], `stuck${i}`));
    const a = await connect(d1, 'a');
    const pa = on2.slice(0, 6).map((r) => code(a.lock(r, EX)));
    await waitFor(() => d1.admission.inFlight === 4, 20000, '4 requests in flight');
    // The 5th and 6th of client a: over max_requests_per_client. Inspection counts too.
    expect((await Promise.all(pa.slice(4))).map((x) => x.split(':')[0])).to.deep.equal(['BUSY', 'BUSY']);
    expect(await pa[4]).to.match(/4 requests are already in progress on this connection \(\[locking\] max_requests_per_client\)/);
    expect(await code(a.status())).to.match(/^BUSY: .*max_requests_per_client/);
    // Client b: its own bound is fine, the daemon's (6) is reached after two.
    const b = await connect(d1, 'b');
    const pb = on2.slice(6, 8).map((r) => code(b.lock(r, EX)));
    await waitFor(() => d1.admission.inFlight === 6, 20000, '6 requests in flight');
    expect(await code(b.lock(resourceOn(2, [1, 2, 3], 'more'), EX))).to.match(/^BUSY: mxfsd has 6 requests in progress \(\[locking\] max_requests\)/);
    // An in-process client (the kernel bridge's kind) is counted, never refused.
    const trusted = await d1.connectLocal('kernel-like');
    const pt = code(trusted.lock(resourceOn(2, [1, 2, 3], 'trusted'), EX));
    await waitFor(() => d1.admission.inFlight === 7, 20000, 'the in-process request admitted beyond the bound');
    await trusted.close();
    expect(await pt).to.match(/^SHUTDOWN/);
    // Requests queued behind a holder are lock state, not work: they do not count.
    for (const x of [a, b]) await x.close();
    await waitFor(() => d1.admission.inFlight === 0, 20000, 'closed sessions release their count');
    const holder = await connect(d1, 'holder');
    const local = Array.from({ length: 6 }, (_, i) => resourceOn(1, [1, 2, 3], `q${i}`));
    for (const r of local) await holder.lock(r, EX);
    const waiter = await connect(d1, 'waiter');
    // Four at once (the per-client bound), then two more once those wait in their queues.
    const queued = local.slice(0, 4).map((r) => code(waiter.lock(r, EX)));
    await waitFor(() => d1.admission.inFlight === 0 && d1.table.stats.locks === 10, 20000, 'four requests queued');
    queued.push(...local.slice(4).map((r) => code(waiter.lock(r, EX))));
    await waitFor(() => d1.admission.inFlight === 0 && d1.table.stats.locks === 12, 20000, 'six requests queued');
    expect(await code(waiter.status())).to.equal('ok');
    await holder.close();
    expect(await Promise.all(queued)).to.deep.equal(local.map(() => 'ok'));
    void pa; void pb;
  });

  it('N clients asking `locks` at once cost at most two cluster fan-outs, and each answer is taken after its request', async () => {
    await boot();
    const d1 = nodes.get(1)!;
    hub.isolate(3); // node 3 never answers: a fan-out lasts until query_timeout_ms (simulated time)
    const clients: MxfsClient[] = [];
    for (let i = 0; i < 30; i++) clients.push(await connect(d1, `c${i}`));
    const before = d1.router.stats.inspections;
    const first = clients[0]!.locks({});
    await waitFor(() => d1.router.stats.inspections === before + 1, 20000, 'first fan-out');
    // A lock taken after the first query started: the others' answers must show it.
    const h = await clients[1]!.lock(resourceOn(1, [1, 2, 3], 'fresh'), EX);
    const rest = clients.slice(1).map((c) => c.locks({}));
    await waitFor(() => d1.admission.inFlight === 30, 20000, 'all 30 queries in flight');
    expect(d1.router.stats.inspections).to.equal(before + 1);
    await advance(600);
    const r0: any = await first;
    expect(r0.missing).to.deep.equal([3]);
    await waitFor(() => d1.router.stats.inspections === before + 2, 20000, 'second fan-out');
    await advance(600);
    const answers: any[] = await Promise.all(rest);
    expect(d1.router.stats.inspections).to.equal(before + 2);
    for (const a of answers) {
      expect(a.missing).to.deep.equal([3]);
      expect(a.resources.map((r: any) => r.resource)).to.include(h.resource);
    }
  });
  it('a client that asks for inspections faster than it reads them gets BUSY answers, not a cut connection', async () => {
    // A coalesced run answers every waiting `locks` at once: up to max_frame_bytes each. Queued
    // blindly, 100 of them would pass max_client_output_bytes and cut the client off.
    await boot({ maxFrameBytes: 32768, maxClientOutputBytes: 65536 });
    const d1 = nodes.get(1)!;
    const holder = await connect(d1, 'holder');
    for (let i = 0; i < 300; i++) await holder.lock(resourceOn(1, [1, 2, 3], `a-rather-long-resource-name-to-fill-the-answer-${i}-`), EX);
    const raw = await RawClient.connect(d1.socketPath);
    await raw.hello('flood');
    raw.sock.pause(); // read nothing while the answers come
    hub.isolate(3); // the fan-out lasts query_timeout_ms: every request joins one run
    const answers = Array.from({ length: 100 }, () => raw.request({ type: 'locks' }));
    await waitFor(() => d1.admission.inFlight >= 100, 20000, 'all 100 queries in flight');
    await advance(1200);
    await waitFor(() => d1.admission.inFlight <= 1, 10000, 'every locks request answered');
    raw.sock.resume();
    const got = await Promise.all(answers);
    expect(raw.closed, 'connection still open').to.equal(undefined);
    const busy = got.filter((r) => r && !r.ok);
    expect(got.every((r) => r !== undefined), 'every request answered').to.equal(true);
    expect(got.filter((r) => r?.ok).length, 'some answered in full').to.be.greaterThan(0);
    expect(busy.length, 'the rest refused').to.be.greaterThan(0);
    for (const r of busy) expect(`${r!.code}: ${r!.message}`).to.match(/^BUSY: \d+ bytes of replies to this connection are not read yet/);
    raw.destroy();
    await holder.close();
  });
});
