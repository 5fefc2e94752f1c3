/**
 * The lease the Volume drivers enforce (the kernel lease, docs/volumes.md "Taking over"):
 * which deadline mxfsd hands the kernel in each cluster state. The two-VM test `gate` found
 * the tiebreaker of a two-node cluster (quorum deadline Infinity: it alone is a quorum) being
 * told its lease was lost, so its kernel gates never opened.
 */
import { expect } from 'chai';
import { driverLeaseDeadline } from '../src/volumes/manager';

const LEASE = 6000;
const NOW = 100_000;

describe('driverLeaseDeadline: the drivers\' lease in each cluster state', () => {
  it('in a view: the cluster\'s quorum deadline, never later', () => {
    expect(driverLeaseDeadline('running', NOW + 4321, NOW, LEASE)).to.equal(NOW + 4321);
    expect(driverLeaseDeadline('recovering', NOW + 10, NOW, LEASE)).to.equal(NOW + 10);
  });

  it('a node that alone is a quorum (tiebreaker, cluster of one): a rolling lease of lease_timeout_ms', () => {
    expect(driverLeaseDeadline('running', Infinity, NOW, LEASE)).to.equal(NOW + LEASE);
    expect(driverLeaseDeadline('standalone', undefined, NOW, LEASE)).to.equal(NOW + LEASE);
  });

  it('no lease without quorum: deadline passed, no view, joining, no-quorum', () => {
    expect(driverLeaseDeadline('running', NOW, NOW, LEASE)).to.equal(null);
    expect(driverLeaseDeadline('running', -Infinity, NOW, LEASE)).to.equal(null);
    expect(driverLeaseDeadline('running', undefined, NOW, LEASE)).to.equal(null);
    expect(driverLeaseDeadline('joining', NOW + 5000, NOW, LEASE)).to.equal(null);
    expect(driverLeaseDeadline('no-quorum', Infinity, NOW, LEASE)).to.equal(null);
  });
});
