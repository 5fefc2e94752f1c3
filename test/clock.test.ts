/** The real clock: one monotonic time for every thread of the process (lease deadlines cross threads). */
import { expect } from 'chai';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { monotonicOffset, MONOTONIC_OFFSET_ERROR_MS, systemClock } from '../src/util/clock';

describe('systemClock', () => {
  it("keeps the tightest of several bracketed readings, so a thread held between two reads does not shift its clock", () => {
    // performance.now() = CLOCK_MONOTONIC - 1000 exactly; the thread is held 5 ms between the
    // reads of the first two samples, then reads come 0.0002 ms apart.
    let mono = 50_000;
    let sample = 0;
    let reads = 0;
    const perf = () => { reads++; const t = mono - 1000; mono += sample < 2 && reads % 2 === 1 ? 5 : 0.0001; if (reads % 2 === 0) sample++; return t; };
    const monoNow = () => mono;
    const r = monotonicOffset(perf, monoNow);
    expect(r.error).to.be.below(0.001);
    expect(Math.abs(r.offset - 1000)).to.be.at.most(r.error + 1e-9);
  });

  it('reads the same time in a worker thread as in the main thread, within both offsets\' error bounds', async () => {
    const clockJs = path.join(__dirname, '..', 'src', 'util', 'clock.js');
    const w = new Worker(`
      const { parentPort } = require('node:worker_threads');
      const { systemClock, MONOTONIC_OFFSET_ERROR_MS } = require(${JSON.stringify(clockJs)});
      parentPort.on('message', () => parentPort.postMessage({ now: systemClock.now(), err: MONOTONIC_OFFSET_ERROR_MS }));
    `, { eval: true });
    try {
      for (let i = 0; i < 50; i++) {
        const before = systemClock.now();
        const got = await new Promise<{ now: number; err: number }>((resolve) => { w.once('message', resolve); w.postMessage('read'); });
        const after = systemClock.now();
        const slack = MONOTONIC_OFFSET_ERROR_MS + got.err;
        expect(got.now, `worker read ${got.now}, main read ${before} before and ${after} after`).to.be.within(before - slack, after + slack);
      }
    } finally {
      await w.terminate();
    }
  });
});
