/** The recovery phase machine (src/daemon/recovery.ts), pure. */
import { expect } from 'chai';
import { RecoveryMsg, RecoveryPhases } from '../src/daemon/recovery';

const m = (type: RecoveryMsg['type'], epoch: number, run = 1): RecoveryMsg => ({ type, epoch, run, note: '' } as RecoveryMsg);

describe('recovery phases', () => {
  it('goes collecting → sending → waiting → rebuilding → replaying → done, and refuses a step out of order', () => {
    const p = new RecoveryPhases();
    expect(p.apply(m('recovery.send', 1), 0)).to.equal(false); // nothing started
    for (const t of ['recovery.collect', 'recovery.send', 'recovery.wait', 'recovery.rebuild', 'recovery.replay', 'recovery.done'] as const) {
      expect(p.apply(m(t, 1), 5), t).to.equal(true);
    }
    expect(p.phase).to.equal('done');
    expect(p.open).to.equal(false);
    expect(p.apply(m('recovery.rebuild', 1), 6)).to.equal(false);
    expect([p.completed, p.ignored]).to.deep.equal([1, 2]);
  });

  it('a newer epoch starts over from any phase; late steps of the abandoned one and of a superseded run are ignored', () => {
    const p = new RecoveryPhases();
    p.apply(m('recovery.collect', 2), 0);
    p.apply(m('recovery.send', 2), 0);
    expect(p.apply(m('recovery.abandon', 2), 1)).to.equal(true);
    expect(p.apply(m('recovery.wait', 2), 1)).to.equal(false); // late, abandoned
    expect(p.apply(m('recovery.collect', 3), 2)).to.equal(true);
    expect(p.apply(m('recovery.collect', 2), 2)).to.equal(false); // older epoch
    // quorum regained in the same epoch: a second run; the first run's steps are ignored
    expect(p.apply(m('recovery.collect', 3, 2), 3)).to.equal(true);
    expect(p.apply(m('recovery.send', 3, 1), 3)).to.equal(false);
    expect(p.apply(m('recovery.send', 3, 2), 3)).to.equal(true);
    expect([p.phase, p.epoch, p.run, p.abandoned]).to.deep.equal(['sending', 3, 2, 1]);
  });
});
