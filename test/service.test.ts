/**
 * mxfsd under systemd, with real processes and a fake $NOTIFY_SOCKET (abstract and path
 * addresses): READY=1 only once the node serves locks (a cluster node: not while it waits
 * for a quorate view), STATUS lines, WATCHDOG=1 fed from lease renewal (and not while the
 * process is stopped), WATCHDOG_USEC corrected to fit the lease, STOPPING=1 at shutdown.
 * Plus the pure rules of src/daemon/service.ts.
 */
import { expect } from 'chai';
import path from 'node:path';
import { renewalFeedsWatchdog, statusText, watchdogPeriodMs } from '../src/daemon/service';
import { TestCluster } from './support/cluster-proc';
import { sleep, startDaemon, tmpDir } from './support/daemon-proc';
import { FakeNotifySocket } from './support/notify-socket';

describe('systemd service integration (sd_notify)', function () {
  this.timeout(90000);

  it('standalone: READY=1 once listening, WATCHDOG=1 from the periodic tick (none while SIGSTOPped), STOPPING=1 on SIGTERM', async () => {
    const dir = tmpDir();
    const fake = new FakeNotifySocket(path.join(dir, 'notify.sock')); // a path address
    const d = await startDaemon({ dir, env: { NOTIFY_SOCKET: fake.address, WATCHDOG_USEC: '400000' } });
    try {
      await fake.waitFor('READY');
      expect(fake.with('READY')[0]).to.deep.include({ READY: '1', STATUS: 'standalone node: serving locks' });
      await fake.waitFor('WATCHDOG', 3);
      d.proc.kill('SIGSTOP');
      await sleep(200);
      const before = fake.with('WATCHDOG').length;
      await sleep(1200); // three watchdog periods: systemd would have killed it
      expect(fake.with('WATCHDOG').length, 'no ping while stopped').to.equal(before);
      d.proc.kill('SIGCONT');
      await fake.waitFor('WATCHDOG', before + 2);
      expect(await d.stop('SIGTERM')).to.equal(0);
      await fake.waitFor('STOPPING');
      expect(fake.with('READY')).to.have.length(1);
    } finally {
      await d.stop('SIGKILL');
      fake.close();
    }
  });

  it('cluster: no READY while waiting for a quorate view (the watchdog is fed all the same), READY=1 once running; fed while fenced', async () => {
    const cl = new TestCluster(3, 1500); // renew interval 300 ms
    const fake = new FakeNotifySocket(); // an abstract address
    try {
      // 60 s is not below the 1.5 s lease: mxfsd corrects it (to half the lease) and says so.
      cl.start(1, { NOTIFY_SOCKET: fake.address, WATCHDOG_USEC: '60000000' });
      await fake.waitFor('WATCHDOG_USEC');
      expect(fake.with('WATCHDOG_USEC')[0]!.WATCHDOG_USEC).to.equal('750000');
      await fake.waitFor('WATCHDOG', 4);
      expect(fake.with('READY'), 'not ready alone: 1 of 3 nodes is no quorum').to.deep.equal([]);
      expect(fake.with('STATUS').map((f) => f.STATUS)).to.include('joining the cluster: waiting for a quorate view');
      cl.start(2);
      cl.start(3);
      const epoch = await cl.waitView([1, 2, 3], 30000);
      await fake.waitFor('READY');
      const ready = fake.with('READY')[0]!;
      // Ready with the first quorate view it ran in: 2 of 3 nodes already are one.
      expect(ready.STATUS).to.match(/^running: epoch \d+, members 1 (2|3|2 3)$/);
      expect(Number(/epoch (\d+)/.exec(ready.STATUS!)![1])).to.be.at.most(epoch);
      const pings = fake.with('WATCHDOG').length;
      await fake.waitFor('WATCHDOG', pings + 4);
      // The majority dies: node 1 self-fences (no quorum). Restarting it would not help, so
      // the watchdog stays fed by the renewal rounds.
      cl.kill(2);
      cl.kill(3);
      await fake.waitFor('STATUS', 1, 20000, /^no quorum in epoch \d+: self-fenced/);
      const fenced = fake.with('WATCHDOG').length;
      await fake.waitFor('WATCHDOG', fenced + 4);
      expect(fake.with('READY'), 'READY=1 is said once').to.have.length(1);
    } finally {
      await cl.stopAll();
      fake.close();
    }
  });

  it('the watchdog rules: acks feed it; rounds feed it while the deadline is ahead or the node is fenced; the period fits the lease', () => {
    const now = 1000;
    expect(renewalFeedsWatchdog({ kind: 'confirmed', quorumUntil: 5000 }, now, 'running')).to.equal(true);
    expect(renewalFeedsWatchdog({ kind: 'round', quorumUntil: 5000 }, now, 'running')).to.equal(true);
    expect(renewalFeedsWatchdog({ kind: 'round', quorumUntil: -Infinity }, now, 'joining')).to.equal(true);
    expect(renewalFeedsWatchdog({ kind: 'round', quorumUntil: 900 }, now, 'no-quorum')).to.equal(true);
    // The deadline passed but the lock engine has not fenced: stuck; let systemd restart it.
    expect(renewalFeedsWatchdog({ kind: 'round', quorumUntil: 900 }, now, 'running')).to.equal(false);
    expect(renewalFeedsWatchdog({ kind: 'round', quorumUntil: 900 }, now, 'recovering')).to.equal(false);
    const t = { leaseTimeoutMs: 10000, renewIntervalMs: 2000 };
    expect(watchdogPeriodMs(5000, t)).to.equal(5000);
    expect(watchdogPeriodMs(1000, t), 'below 2 renew intervals').to.equal(4000);
    expect(watchdogPeriodMs(10000, t), 'not below the lease').to.equal(5000);
    expect(watchdogPeriodMs(30000)).to.equal(30000); // standalone: no lease
    expect(statusText('recovering', 7, [1, 3])).to.equal('recovering locks for epoch 7 (members 1 3)');
  });

  it('a mismatched WATCHDOG_PID means the watchdog is not ours: READY but no WATCHDOG=1', async () => {
    const fake = new FakeNotifySocket();
    const d = await startDaemon({ env: { NOTIFY_SOCKET: fake.address, WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' } });
    try {
      await fake.waitFor('READY');
      await sleep(800);
      expect(fake.with('WATCHDOG')).to.deep.equal([]);
    } finally {
      await d.stop('SIGKILL');
      fake.close();
    }
  });
});


