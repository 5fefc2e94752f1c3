/**
 * thread-sched: the scheduler's figures of a thread (what the cluster worker's watchdog logs
 * when it mutes the node for a silent lock engine): parsing, the split of a silence into
 * busy / starved / blocked, and a real read of this thread's figures on Linux.
 */
import { expect } from 'chai';
import os from 'node:os';
import { busyFor, describeSilence, parseSchedstat, readThreadSched, silenceExceeds, STARVED_SILENCE_FACTOR } from '../src/util/thread-sched';

describe('thread-sched', () => {
  it('parses schedstat and refuses what is not one', () => {
    expect(parseSchedstat('7100000000 48500000000 1234\n')).to.deep.equal({ runMs: 7100, waitMs: 48500 });
    expect(parseSchedstat('')).to.equal(undefined);
    expect(parseSchedstat('x y z')).to.equal(undefined);
  });

  it('says whether a silence was a long turn, starvation or a blocked thread', () => {
    const b = { runMs: 1000, waitMs: 5000 };
    // Seen in the abuse scenario at load 19 with mxfsd at nice 19: 1623 ms, 94 on a CPU, 1353 waiting.
    const starved = describeSilence(b, { runMs: 1094, waitMs: 6353 }, 1623);
    expect(starved).to.match(/^on a CPU 94 ms, waiting for a CPU 1353 ms, neither 176 ms: starved/);
    expect(describeSilence(b, { runMs: 2900, waitMs: 5050 }, 2000)).to.match(/busy: a long turn/);
    expect(describeSilence(b, { runMs: 1021, waitMs: 5718 }, 1752)).to.match(/neither 1013 ms: blocked/);
  });

  it('reads this thread\'s own figures (Linux): its time on a CPU grows with work', function () {
    if (os.platform() !== 'linux') this.skip();
    const a = readThreadSched(process.pid)!;
    expect(a.runMs).to.be.a('number');
    let x = 0;
    for (let i = 0; i < 2e7; i++) x += i % 7;
    const b = readThreadSched(process.pid)!;
    expect(x).to.be.greaterThan(0);
    expect(b.runMs).to.be.greaterThan(a.runMs);
    expect(b.waitMs).to.be.at.least(a.waitMs);
    expect(readThreadSched(2 ** 30), 'no such thread').to.equal(undefined);
  });

  it('the watchdog\'s rule: time spent waiting for a CPU does not count against the bound, up to the starved limit', () => {
    const b = { runMs: 1000, waitMs: 5000 };
    expect(silenceExceeds(1623, 900, b, { runMs: 1094, waitMs: 6353 }), 'starved 1353 of 1623 ms').to.equal(false);
    expect(silenceExceeds(1623, 900, b, { runMs: 1994, waitMs: 5453 }), 'a long turn').to.equal(true);
    expect(silenceExceeds(1623, 900, b, { runMs: 1021, waitMs: 5100 }), 'blocked').to.equal(true);
    expect(silenceExceeds(STARVED_SILENCE_FACTOR * 900 + 1, 900, b, { runMs: 1000, waitMs: 5000 + STARVED_SILENCE_FACTOR * 900 }), 'starved without end').to.equal(true);
    expect(silenceExceeds(901, 900), 'no figures: every ms counts').to.equal(true);
    expect(silenceExceeds(900, 900)).to.equal(false);
  });

  it('busyFor runs the thread for that much CPU time (Linux)', function () {
    if (os.platform() !== 'linux') this.skip();
    const a = readThreadSched(process.pid)!;
    const ran = busyFor(60);
    const b = readThreadSched(process.pid)!;
    expect(ran).to.be.at.least(60);
    expect(b.runMs - a.runMs).to.be.at.least(60);
  });
});
