/**
 * The state_dir's files as an operator or a broken disk may leave them (black-box pass on
 * persisted state): every bad epoch.json / state.json stops mxfsd with one line naming the file,
 * the field and what is wrong, and an epoch beyond the fencing tokens' range is refused, on
 * disk and on the wire, so it cannot spread from one node to the cluster.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { MembershipCore } from '../src/cluster/membership';
import { leaseTimes } from '../src/cluster/options';
import { MAX_EPOCH, PEER_MAGIC, PEER_PROTOCOL_VERSION, PeerMessage, validatePeerMessage } from '../src/cluster/peer-protocol';
import { EPOCH_TOKEN_SHIFT } from '../src/daemon/lock-router';
import { LocalCluster } from '../src/local-cluster/local-cluster';
import { configText, MXFSD, run, tmpDir, waitFor } from './support/daemon-proc';

/** Starts mxfsd on `dir` (standalone) with the given state files; resolves with its exit. */
async function startWith(files: Record<string, string>, full?: string) {
  const dir = tmpDir('mxfs-state-');
  fs.mkdirSync(path.join(dir, 'state'), { mode: 0o700 });
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'state', f), text);
  // A full disk for one file, without root: its temporary file is /dev/full (write: ENOSPC).
  if (full) fs.symlinkSync('/dev/full', path.join(dir, 'state', `${full}.tmp`));
  const config = path.join(dir, 'mxfs.conf');
  fs.writeFileSync(config, configText(dir));
  // A daemon that wrongly starts runs until this bound: only a failing test waits for it.
  const r = await run(process.execPath, [MXFSD, '--config', config], { timeoutMs: 20000 }).catch((e: Error) => ({ code: -1, stderr: e.message }));
  return { dir, ...r };
}

describe('state_dir files (epoch.json, state.json)', function () {
  this.timeout(60000);

  it('MAX_EPOCH leaves every token of its epoch an exact integer', () => {
    expect((MAX_EPOCH + 1) * EPOCH_TOKEN_SHIFT).to.equal(2 ** 53);
    expect(Number.isSafeInteger((MAX_EPOCH + 1) * EPOCH_TOKEN_SHIFT - 1)).to.equal(true);
  });

  it('a bad epoch.json stops mxfsd with one line naming the file, the field and the bound (exit 1)', async () => {
    const cases: Array<[string, RegExp]> = [
      ['', /epoch\.json is unreadable \(Unexpected end of JSON input\)/],
      ['{"promisedEp', /epoch\.json is unreadable/],
      ['{"promisedEpoch":"7"}', /epoch\.json is malformed: 'promisedEpoch' must be a whole number 0\.\.2097151 .*, got "7"; restore it from a backup$/],
      ['{"promisedEpoch":-1}', /'promisedEpoch' must be a whole number 0\.\.2097151 .*, got -1;/],
      ['{}', /'promisedEpoch' must be a whole number .*, got nothing;/],
      ['null', /epoch\.json is malformed: it must hold a JSON object with 'promisedEpoch', got null$/],
      // Beyond the token range: before, mxfsd started, and its peers promised the same epoch.
      [`{"promisedEpoch":${2 ** 52}}`, /'promisedEpoch' must be a whole number 0\.\.2097151 \(the highest epoch whose fencing tokens stay below 2\^53\), got 4503599627370496;/],
      ['{"promisedEpoch":1e300}', /got 1e\+300;/],
      [`{"promisedEpoch":${MAX_EPOCH + 1}}`, /got 2097152;/],
    ];
    for (const [text, msg] of cases) {
      const r = await startWith({ 'epoch.json': text });
      expect(r.code, `${text}: ${r.stderr}`).to.equal(1);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      expect(lines, r.stderr).to.have.length(1);
      expect(lines[0]).to.contain(`mxfsd: cannot start: state file ${path.join(r.dir, 'state', 'epoch.json')}`);
      expect(lines[0], text).to.match(msg);
    }
  });

  it('state.json: the old promisedEpoch field has the same bound; the generation must leave room for the next', async () => {
    const big = await startWith({ 'state.json': `{"generation":1,"promisedEpoch":${2 ** 40}}` });
    expect(big.code, big.stderr).to.equal(1);
    expect(big.stderr).to.match(/state\.json is malformed: 'promisedEpoch' must be a whole number 0\.\.2097151 .*, got 1099511627776;/);
    const gen = await startWith({ 'state.json': `{"generation":${Number.MAX_SAFE_INTEGER},"promisedEpoch":0}` });
    expect(gen.code, gen.stderr).to.equal(1);
    expect(gen.stderr).to.match(/'generation' must be a whole number 0\.\.9007199254740990, got 9007199254740991;/);
  });

  it('a peer frame with an epoch beyond MAX_EPOCH is invalid (the link to its sender is dropped), MAX_EPOCH itself is not', () => {
    const frame = (epoch: number, body: Record<string, unknown>) => ({ magic: PEER_MAGIC, ver: PEER_PROTOCOL_VERSION, type: body.type, from: 2, to: 1, epoch, seq: 3, body });
    expect(validatePeerMessage(frame(MAX_EPOCH, { type: 'accept', epoch: MAX_EPOCH })).hdr.epoch).to.equal(MAX_EPOCH);
    expect(() => validatePeerMessage(frame(MAX_EPOCH + 1, { type: 'accept', epoch: 1 }))).to.throw(/field 'epoch' must be an integer 0\.\.2097151, got 2097152/);
    expect(() => validatePeerMessage(frame(1, { type: 'propose', epoch: 2 ** 52, members: [1, 2], incs: [1, 2] }))).to.throw(/'propose': field 'epoch' must be an integer 0\.\.2097151/);
    expect(() => validatePeerMessage(frame(1, { type: 'commit', epoch: MAX_EPOCH + 1, members: [1, 2], incs: [1, 2] }))).to.throw(/'commit': field 'epoch'/);
    expect(() => validatePeerMessage(frame(1, { type: 'reject', epoch: 1, reason: 'x', live: [1], committedEpoch: MAX_EPOCH + 1 }))).to.throw(/field 'committedEpoch'/);
    expect(() => validatePeerMessage(frame(1, { type: 'renew', sentAt: 0, inc: 1, pending: MAX_EPOCH + 1 }))).to.throw(/field 'pending'/);
  });

  it('a node that promised MAX_EPOCH proposes no further epoch', () => {
    const T = leaseTimes({ leaseTimeoutMs: 10000, renewIntervalMs: 2000 });
    const msg = (from: number, body: PeerMessage['body']): PeerMessage => ({ hdr: { from, to: 1, epoch: 0, seq: 0 }, body });
    const proposals = (promised: number) => {
      const core = new MembershipCore({ selfId: 1, nodeIds: [1, 2, 3], times: T, incarnation: 1, epochStore: { load: () => promised, save: () => undefined } });
      // Hearing node 2 makes [1,2] a quorum: node 1 proposes to it.
      return core.receive(0, 2, msg(2, { type: 'renew', sentAt: 0, inc: 2, pending: 0 })).out.filter((o) => o.body.type === 'propose').map((o) => (o.body as { epoch: number }).epoch);
    };
    expect(proposals(MAX_EPOCH - 1)).to.deep.equal([MAX_EPOCH]);
    expect(proposals(MAX_EPOCH)).to.deep.equal([]);
  });

  it('a state file that cannot be written (full disk) stops mxfsd at start with one line naming the file and the errno', async () => {
    const r = await startWith({}, 'state.json');
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.equal(`mxfsd: cannot start: cannot write ${path.join(r.dir, 'state', 'state.json')}: no space left on device (ENOSPC)\n`);
    expect(fs.existsSync(path.join(r.dir, 'state', 'state.json.tmp')), 'the temporary file is removed').to.equal(false);
  });

  it('a commit whose epoch cannot be recorded is not installed (the view stays as it was)', () => {
    const T = leaseTimes({ leaseTimeoutMs: 10000, renewIntervalMs: 2000 });
    const msg = (from: number, body: PeerMessage['body']): PeerMessage => ({ hdr: { from, to: 2, epoch: 0, seq: 0 }, body });
    let full = true;
    const saved: number[] = [];
    const core = new MembershipCore({ selfId: 2, nodeIds: [1, 2, 3], times: T, incarnation: 2, epochStore: { load: () => 0, save: (e) => { if (full) throw new Error('cannot write epoch.json: no space left on device (ENOSPC)'); saved.push(e); } } });
    core.receive(0, 1, msg(1, { type: 'renew', sentAt: 0, inc: 1, pending: 0 }));
    core.receive(0, 3, msg(3, { type: 'renew', sentAt: 0, inc: 3, pending: 0 }));
    // A commit forwarded to a member that never saw the proposal: it must promise the epoch first.
    const commit = msg(1, { type: 'commit', epoch: 5, members: [1, 2, 3], incs: [1, 2, 3] });
    expect(() => core.receive(1, 1, commit)).to.throw(/ENOSPC/);
    expect(core.epoch).to.equal(0);
    full = false;
    const r = core.receive(2, 1, commit);
    expect(core.epoch).to.equal(5);
    expect(saved).to.deep.equal([5]);
    expect(r.events.map((e) => e.type)).to.include('view');
  });

  it('real mxfsd: epoch.json that cannot be written at a view change is logged naming the file; the view forms once it can be', async () => {
    const dir = tmpDir('mxfs-state-full-');
    const cluster = await LocalCluster.create(dir, { nodes: 3 });
    try {
      await cluster.up();
      const stateDir = path.join(path.dirname(cluster.node(1).config), 'state');
      // Node 1's next promise fails once (the failed write removes its temporary file, the symlink).
      fs.symlinkSync('/dev/full', path.join(stateDir, 'epoch.json.tmp'));
      await cluster.stop(2, { kill: true });
      const want = `cannot write ${path.join(stateDir, 'epoch.json')}: no space left on device (ENOSPC)`;
      await waitFor(() => fs.readFileSync(cluster.node(1).log, 'utf8').includes(want), 30000, `node 1 logging '${want}'`);
      await cluster.waitFormed([1, 3], 30000);
      expect(fs.existsSync(path.join(stateDir, 'epoch.json.tmp'))).to.equal(false);
      const promised = JSON.parse(fs.readFileSync(path.join(stateDir, 'epoch.json'), 'utf8')).promisedEpoch;
      expect(promised).to.be.at.least((await cluster.status(1)).cluster.epoch);
    } finally {
      await cluster.down({ kill: true });
    }
  });
});
