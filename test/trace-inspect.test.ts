/**
 * The inspection side of tracing, used as an operator uses it, on 3 real mxfsd processes (TCP
 * peer links, [trace] on): `mxfsctl why` and `trace collect` against what they must and must not
 * show, and their command-line edges.
 */
import { expect } from 'chai';
import { Mode } from '../src/dlm/modes';
import { resourceOn, TestCluster } from './support/cluster-proc';
import { mxfsctl } from './support/daemon-proc';

describe('trace inspection (3 real mxfsd, mxfsctl)', function () {
  this.timeout(120000);
  let cl: TestCluster;
  const ctl = (node: number, args: string[]) => mxfsctl(['--socket', cl.node(node).socket, ...args], { timeoutMs: 30000 });

  before(async () => {
    // A 10 s lease: one view throughout on a loaded machine.
    cl = new TestCluster(3, 10000, (_id, d) => `[trace]\nenabled = true\nfile = ${d}/trace.ndjson\n`);
    await cl.up();
  });
  after(async () => { await cl?.stopAll(); });

  it('why leaves its own inspection out of the recent traffic: asked again and again it still shows the lock exchange, and so does the Mermaid diagram', async () => {
    const res = resourceOn(3, [1, 2, 3], 'why');
    const a = await cl.client(1), b = await cl.client(2);
    const ha = await a.lock(res, Mode.EX);
    const bast = new Promise<Mode>((r) => ha.once('bast', r));
    const pb = b.lock(res, Mode.PR);
    expect(await bast).to.equal(Mode.PR);
    // Each why asks every node for the resource's queues (an `inspect` through the DlmChannel);
    // the next why must not show those asks.
    for (let i = 0; i < 3; i++) expect((await ctl(2, ['why', res])).code).to.equal(0);
    const w = await ctl(2, ['why', res]);
    expect(w.code, w.stderr).to.equal(0);
    const traffic = w.stdout.slice(w.stdout.indexOf('recent traffic'));
    expect(traffic).to.match(/lock\.bast/);
    expect(traffic).to.match(/request default\/\S+ EX/);
    expect(traffic).to.not.match(/inspect/);
    const mm = await ctl(1, ['trace', 'collect', '--resource', res, '--format', 'mermaid']);
    expect(mm.code, mm.stderr).to.equal(0);
    expect(mm.stdout).to.match(/lock\.bast PR/);
    expect(mm.stdout).to.not.match(/inspect/);
    await ha.unlock();
    await (await pb).unlock();
  });
});
