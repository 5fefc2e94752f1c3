/** The peer wire format and the authentication primitives: every message round-trips,
 *  garbage / wrong magic / wrong version / unknown or reserved types are refused with a
 *  clear error, and random input only ever produces PeerProtocolError; proofs, per-direction
 *  session keys and frame MACs are bound to what they must be bound to. */
import { expect } from 'chai';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePayload, encodeFrameWithTrailer, FrameDecoder } from '../src/wire/frame';
import {
  encodePeerMessage, EPOCH_RULE, PeerBody, PeerProtocolError, PEER_PROTOCOL_VERSION, RESERVED_PEER_TYPES,
  toWire, validatePeerMessage,
} from '../src/cluster/peer-protocol';
import {
  computeProof, FRAME_MAC_BYTES, frameMac, loadClusterKey, makeNonce, openFrame, ProofInput, sessionKeys, verifyProof,
} from '../src/cluster/auth';
import { leaseTimes } from '../src/cluster/options';
import { backoffDelay } from '../src/cluster/peer-link';
import { MAX_DLM_LIST_BYTES, validateDlmMessage } from '../src/cluster/dlm-messages';
import { REC_BATCH } from '../src/daemon/lock-router';
import { MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../src/dlm/types';
import { encodedSize } from '../src/wire/frame';
import { validateTraceStamp, type TraceStamp } from '../src/trace/event';

const nonce = Buffer.alloc(32, 1);
const SAMPLES: PeerBody[] = [
  { type: 'hello', cluster: 'prod', nonce },
  { type: 'challenge', nonce, proof: Buffer.alloc(32, 2) },
  { type: 'auth', proof: Buffer.alloc(32, 3) },
  { type: 'welcome' },
  { type: 'dlm', inc: 5, n: 1, seq: 0, msg: { t: 'recDone', epoch: 3 } },
  { type: 'dlm', inc: 5, n: 2, seq: 9, ack: { inc: 6, n: 1, next: 4, rinc: 5 }, msg: { t: 'recDone', epoch: 3 } },
  { type: 'dlmAck', inc: 6, n: 1, next: 4, rinc: 5, gap: true },
  { type: 'refuse', code: 'auth', reason: 'authentication failed' },
  { type: 'bye', reason: 'shutdown' },
  { type: 'renew', sentAt: 1234.5, inc: 0xdeadbeef, pending: 0 },
  { type: 'renewAck', sentAt: 1234.5, member: true, inc: 7 },
  { type: 'propose', epoch: 7, members: [1, 2, 5], incs: [11, 22, 55] },
  { type: 'accept', epoch: 7 },
  { type: 'reject', epoch: 7, reason: 'member sets differ', live: [1, 2], committedEpoch: 6 },
  { type: 'commit', epoch: 7, members: [1, 2, 5], incs: [11, 22, 55] },
  { type: 'ping', token: 9 },
  { type: 'pong', token: 9 },
];
const hdr = { from: 1, to: 2, epoch: 6, seq: 41 };
const wire = (body: PeerBody) => toWire({ hdr, body });
const refusal = (x: unknown) => { try { validatePeerMessage(x); } catch (e) { expect(e).to.be.instanceOf(PeerProtocolError); return (e as Error).message; } return 'accepted'; };

describe('peer protocol', () => {
  it('every message type round-trips through the frame codec and validation', () => {
    expect([...new Set(SAMPLES.map((b) => b.type))].sort()).to.deep.equal(Object.keys(EPOCH_RULE).sort());
    const dec = new FrameDecoder(1 << 20);
    for (const body of SAMPLES) {
      const [decoded] = dec.push(encodePeerMessage({ hdr, body }));
      expect(validatePeerMessage(decoded)).to.deep.equal({ hdr, body });
    }
  });

  it('refuses garbage, wrong magic, wrong version, unknown and reserved types with clear errors', () => {
    expect(refusal(42)).to.equal('peer frame is not a map');
    expect(refusal([1, 2])).to.equal('peer frame is not a map');
    expect(refusal(Buffer.from('MXFS'))).to.equal('peer frame is not a map');
    expect(refusal({ ...wire({ type: 'welcome' }), magic: 'MXFZ' })).to.equal('bad magic "MXFZ": not an MXFS peer frame');
    expect(refusal({ ...wire({ type: 'welcome' }), ver: 2 })).to.equal(`unsupported protocol version 2; this node speaks version ${PEER_PROTOCOL_VERSION}`);
    try { validatePeerMessage({ ...wire({ type: 'welcome' }), ver: 0 }); } catch (e) { expect((e as PeerProtocolError).code).to.equal('version'); }
    expect(refusal({ ...wire({ type: 'welcome' }), type: 'explode' })).to.equal('unknown message type "explode"');
    expect(refusal({ ...wire({ type: 'welcome' }), type: 7 })).to.equal("field 'type' must be a string, got 7");
    expect(refusal({ ...wire({ type: 'welcome' }), type: RESERVED_PEER_TYPES[0] })).to.match(/is reserved but not defined in protocol version 1/);
  });

  it('names the header or body field that is wrong', () => {
    expect(refusal({ ...wire({ type: 'welcome' }), from: 0 })).to.equal("'welcome': field 'from' must be a node id 1..1023, got 0");
    expect(refusal({ ...wire({ type: 'welcome' }), to: 1024 })).to.equal("'welcome': field 'to' must be a node id 1..1023, got 1024");
    expect(refusal({ ...wire({ type: 'welcome' }), epoch: -1 })).to.match(/field 'epoch' must be an integer/);
    expect(refusal({ ...wire({ type: 'welcome' }), seq: 1.5 })).to.match(/field 'seq' must be an integer/);
    expect(refusal({ ...wire({ type: 'welcome' }), body: undefined })).to.equal("'welcome': missing body");
    expect(refusal({ ...wire({ type: 'hello', cluster: 'x', nonce }), body: { cluster: 'x', nonce: Buffer.alloc(8) } })).to.equal("'hello': field 'nonce' must be 32 bytes, got 8");
    expect(refusal({ ...wire({ type: 'hello', cluster: 'x', nonce }), body: { cluster: '', nonce } })).to.equal("'hello': field 'cluster' must be a non-empty string");
    const propose = wire({ type: 'propose', epoch: 1, members: [1], incs: [1] });
    expect(refusal({ ...propose, body: { epoch: 1, members: [2, 1], incs: [1, 1] } })).to.equal("'propose': field 'members' must be strictly ascending");
    expect(refusal({ ...propose, body: { epoch: 1, members: [], incs: [] } })).to.match(/non-empty list of node ids/);
    expect(refusal({ ...propose, body: { epoch: 1, members: [1, 2], incs: [1] } })).to.equal("'propose': field 'incs' must be a list of 2 incarnations (one per member)");
    expect(refusal({ ...propose, body: { epoch: 1, members: [1], incs: [0] } })).to.match(/field 'incs' holds 0, not an incarnation/);
    const renew = wire({ type: 'renew', sentAt: 1, inc: 1, pending: 0 });
    expect(refusal({ ...renew, body: { sentAt: Infinity, inc: 1, pending: 0 } })).to.match(/'renew': field 'sentAt' must be a finite number/);
    expect(refusal({ ...renew, body: { sentAt: 1, pending: 0 } })).to.match(/'renew': field 'inc' must be an incarnation/);
    expect(refusal({ ...renew, body: { sentAt: 1, inc: 1 } })).to.match(/'renew': field 'pending' must be an integer/);
    expect(refusal({ ...wire({ type: 'refuse', code: 'auth', reason: '' }), body: { code: 'nope', reason: '' } })).to.match(/field 'code' must be one of/);
    expect(refusal({ ...wire({ type: 'renewAck', sentAt: 1, member: true, inc: 1 }), body: { sentAt: 1, member: 'yes', inc: 1 } })).to.equal("'renewAck': field 'member' must be a boolean");
    const dlm = wire({ type: 'dlm', inc: 1, n: 1, seq: 0, msg: { t: 'recDone', epoch: 1 } });
    expect(refusal({ ...dlm, body: { inc: 1, n: 1, seq: -1, msg: { t: 'recDone', epoch: 1 } } })).to.match(/'dlm': field 'seq' must be an integer/);
    expect(refusal({ ...dlm, body: { inc: 0, n: 1, seq: 0, msg: { t: 'recDone', epoch: 1 } } })).to.match(/'dlm': field 'inc' must be an incarnation/);
    expect(refusal({ ...dlm, body: { inc: 1, n: 1, seq: 0, ack: 3, msg: { t: 'recDone', epoch: 1 } } })).to.equal("'dlm' field 'ack' is not a map");
    expect(refusal({ ...dlm, body: { inc: 1, n: 1, seq: 0, ack: { inc: 1, n: 1 }, msg: { t: 'recDone', epoch: 1 } } })).to.match(/'dlm' ack: field 'next' must be an integer/);
    // A bad lock message inside a sound envelope is not a link error: it is delivered as
    // `invalid`, for the DlmChannel to refuse that one message (dlm-channel.ts, "Refusals").
    const bad = validatePeerMessage({ ...dlm, body: { inc: 1, n: 1, seq: 4, msg: { t: 'nope', epoch: 1 } } }).body;
    expect(bad).to.deep.equal({ type: 'dlm', inc: 1, n: 1, seq: 4, invalid: 'dlm message: unknown message kind' });
    expect(refusal({ ...wire({ type: 'dlmAck', inc: 1, n: 1, next: 0, rinc: 2, gap: false }), body: { inc: 1, n: 1, next: 0, rinc: 2, gap: false, refused: [{ seq: 'x' }] } })).to.match(/'dlmAck': field 'seq' must be an integer/);
    expect(refusal({ ...wire({ type: 'dlmAck', inc: 1, n: 1, next: 0, rinc: 2, gap: false }), body: { inc: 1, n: 1, next: 0, rinc: 2 } })).to.equal("'dlmAck': field 'gap' must be a boolean");
  });

  it('a trace stamp, the frame\'s and a lock message\'s: kept when sound, refused naming its field when not', () => {
    const body: PeerBody = { type: 'dlm', inc: 5, n: 1, seq: 0, msg: { t: 'recDone', epoch: 3, tr: [2 ** 41 + 7, 12, 'r.1', 'default'] } };
    const tr: TraceStamp = [2 ** 40 + 3, 11];
    const frame = encodePeerMessage({ hdr, body, tr });
    // On the wire a stamp is a msgpack list (fixarray of 2: 0x92), not a map.
    expect(frame.includes(Buffer.from([0xa2, 0x74, 0x72, 0x92]))).to.equal(true); // 'tr' [
    const [decoded] = new FrameDecoder(1 << 20).push(frame);
    expect(validatePeerMessage(decoded)).to.deep.equal({ hdr, body, tr });
    const stamped = (t: unknown) => { try { return validatePeerMessage({ ...wire({ type: 'welcome' }), tr: t }).tr; } catch (e) { return (e as Error).message; } };
    expect(stamped([0, Number.MAX_SAFE_INTEGER])).to.deep.equal([0, Number.MAX_SAFE_INTEGER]);
    expect(stamped([1, 2, 'r.1'])).to.deep.equal([1, 2, 'r.1']);
    // A sound stamp is kept as decoded (no copy per received stamp).
    for (const t of [[4, 9], [4, 9, 'r.1', 'default']]) expect(validateTraceStamp(t)).to.equal(t);
    const shape = "field 'tr' must be a list [id, lc], [id, lc, res] or [id, lc, res, ls]";
    expect(stamped({ id: 1, lc: 2 })).to.equal(shape);
    expect(stamped(null)).to.equal(shape);
    expect(stamped([1])).to.equal(shape);
    expect(stamped([1, 2, 'r.1', 'default', 5])).to.equal(shape);
    expect(stamped(Buffer.from([1, 2]))).to.equal(shape);
    expect(stamped([-1, 1])).to.equal("field 'tr.id' must be an unsigned integer");
    expect(stamped([2 ** 53, 1])).to.equal("field 'tr.id' must be an unsigned integer");
    expect(stamped([1, 1.5])).to.equal("field 'tr.lc' must be an unsigned integer");
    expect(stamped([1, null])).to.equal("field 'tr.lc' must be an unsigned integer");
    expect(stamped([1, 2, ''])).to.match(/tr\.res/);
    expect(stamped([1, 2, 'r.1', 3])).to.match(/tr\.ls/);
    // A lock message's bad stamp makes that one message `invalid`, as any bad lock message.
    const bad = validatePeerMessage(wire({ type: 'dlm', inc: 5, n: 1, seq: 0, msg: { t: 'recDone', epoch: 3, tr: [1, 'x'] } } as unknown as PeerBody)).body;
    expect(bad).to.deep.equal({ type: 'dlm', inc: 5, n: 1, seq: 0, invalid: "dlm message: field 'tr.lc' must be an unsigned integer" });
  });

  it('random values and random mutations only ever produce PeerProtocolError', () => {
    fc.assert(fc.property(fc.anything({ withTypedArray: true, withMap: false }), (x) => {
      try { validatePeerMessage(x); } catch (e) { return e instanceof PeerProtocolError; }
      return true;
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.constantFrom(...SAMPLES), fc.constantFrom('magic', 'ver', 'type', 'from', 'to', 'epoch', 'seq', 'body'), fc.anything(), (body, k, v) => {
      const w = { ...wire(body), [k]: v };
      try { validatePeerMessage(w); } catch (e) { return e instanceof PeerProtocolError; }
      return true;
    }), { numRuns: 2000 });
  });
});

describe('lock message bounds', () => {
  it('a batch of REC_BATCH records of the largest possible size stays within MAX_DLM_LIST_BYTES', () => {
    const name = (c: string) => c.repeat(MAX_RESOURCE_NAME);
    const record = (i: number) => ({
      lockspace: 'l'.repeat(MAX_LOCKSPACE_NAME), resource: name('r'), lockId: `1023:${999999999999000 + i}/${999999999999000 + i}9`, owner: `1023:${999999999999000 + i}`,
      grMode: 5, token: Number.MAX_SAFE_INTEGER, rqMode: 5, noqueue: true, timeoutMs: Number.MAX_SAFE_INTEGER, lvb: Buffer.alloc(1024, 0xff), lvbValid: true,
    });
    const msg = { t: 'rec', epoch: Number.MAX_SAFE_INTEGER, records: Array.from({ length: REC_BATCH }, (_, i) => record(i)) };
    expect(validateDlmMessage(msg).t).to.equal('rec'); // every field at its limit is still valid
    expect(encodedSize(msg)).to.be.at.most(MAX_DLM_LIST_BYTES);
  });
});

describe('authentication primitives', () => {
  const key = Buffer.from('k'.repeat(32));
  const p: ProofInput = { cluster: 'prod', initiatorNonce: makeNonce(), responderNonce: makeNonce(), initiatorId: 1, responderId: 2 };

  it('a proof is bound to the key, the direction, the nonces, the ids and the cluster', () => {
    const proof = computeProof(key, p, 'initiator');
    expect(proof.length).to.equal(32);
    expect(verifyProof(key, p, 'initiator', proof)).to.equal(true);
    expect(verifyProof(key, p, 'responder', proof), 'reflected').to.equal(false);
    expect(verifyProof(Buffer.from('j'.repeat(32)), p, 'initiator', proof), 'other key').to.equal(false);
    expect(verifyProof(key, { ...p, responderNonce: makeNonce() }, 'initiator', proof), 'other nonce').to.equal(false);
    expect(verifyProof(key, { ...p, initiatorId: 3 }, 'initiator', proof), 'other id').to.equal(false);
    expect(verifyProof(key, { ...p, cluster: 'prod2' }, 'initiator', proof), 'other cluster').to.equal(false);
    expect(verifyProof(key, p, 'initiator', proof.subarray(0, 16)), 'short').to.equal(false);
  });

  it('session keys: one per direction, the same at both ends, different for every connection', () => {
    const i = sessionKeys(key, p, 'initiator');
    const r = sessionKeys(key, p, 'responder');
    expect([i.send.length, i.recv.length]).to.deep.equal([32, 32]);
    expect(i.send.equals(r.recv) && i.recv.equals(r.send), 'both ends agree per direction').to.equal(true);
    expect(i.send.equals(i.recv), 'the two directions differ').to.equal(false);
    const hex = (b: Buffer) => b.toString('hex');
    const others = [
      sessionKeys(key, { ...p, initiatorNonce: makeNonce() }, 'initiator'), // another connection
      sessionKeys(key, { ...p, responderNonce: makeNonce() }, 'initiator'),
      sessionKeys(Buffer.from('j'.repeat(32)), p, 'initiator'),
      sessionKeys(key, { ...p, initiatorId: 3 }, 'initiator'),
      sessionKeys(key, { ...p, cluster: 'prod2' }, 'initiator'),
    ];
    const all = [i, ...others].flatMap((k) => [hex(k.send), hex(k.recv)]);
    expect(new Set(all).size, 'no key repeats across connections, ids, clusters, cluster keys').to.equal(all.length);
    expect(all).to.not.include(hex(computeProof(key, p, 'initiator'))).and.to.not.include(hex(computeProof(key, p, 'responder')));
  });

  it('frame MAC: 16 bytes of HMAC-SHA256(direction key, u64 BE seq | msgpack), checked before decoding', () => {
    const { send, recv } = sessionKeys(key, p, 'initiator');
    const body = Buffer.from('some msgpack bytes');
    const seq = 2 ** 40 + 3;
    const u64 = Buffer.alloc(8);
    u64.writeBigUInt64BE(BigInt(seq));
    const expected = createHmac('sha256', send).update(u64).update(body).digest().subarray(0, 16);
    expect(FRAME_MAC_BYTES).to.equal(16);
    expect(frameMac(send, seq, body).equals(expected), 'the documented layout').to.equal(true);
    const frame = Buffer.concat([body, expected]);
    expect(openFrame(send, seq, frame)?.equals(body)).to.equal(true);
    expect(openFrame(recv, seq, frame), 'the other direction').to.equal(undefined);
    expect(openFrame(send, seq - 1, frame), 'another sequence number').to.equal(undefined);
    expect(openFrame(send, seq - 2 ** 32, frame), 'the same low 32 bits').to.equal(undefined);
    for (let at = 0; at < frame.length; at++) {
      const bad = Buffer.from(frame);
      bad[at] ^= 0x80;
      expect(openFrame(send, seq, bad), `byte ${at} flipped`).to.equal(undefined);
    }
    expect(openFrame(send, seq, expected), 'a MAC alone').to.equal(undefined);
    expect(openFrame(send, seq, body.subarray(0, 5)), 'too short').to.equal(undefined);
    // What a PeerLink writes: length prefix, msgpack, MAC.
    const msg = { magic: 'MXFS', n: 1 };
    const wire = encodeFrameWithTrailer(msg, 1 << 10, FRAME_MAC_BYTES, (b) => frameMac(send, 7, b));
    expect(wire.readUInt32BE(0)).to.equal(wire.length - 4);
    expect(decodePayload(openFrame(send, 7, wire.subarray(4))!)).to.deep.equal(msg);
    expect(() => encodeFrameWithTrailer(msg, wire.length - 5, FRAME_MAC_BYTES, (b) => frameMac(send, 7, b)), 'the MAC counts toward the limit').to.throw(/exceeds the limit/);
  });

  it('loads a key file, strips one newline, refuses a short key, a loose mode or a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mxfs-key-'));
    const f = join(dir, 'key');
    writeFileSync(f, 'a-long-enough-cluster-secret\n');
    chmodSync(f, 0o600);
    expect(loadClusterKey(f)).to.deep.equal(Buffer.from('a-long-enough-cluster-secret'));
    chmodSync(f, 0o644);
    expect(() => loadClusterKey(f)).to.throw(`cluster key file ${f} is accessible by group or others (mode 0644): run 'chmod 600 ${f}'`);
    chmodSync(f, 0o610);
    expect(() => loadClusterKey(f)).to.throw(/mode 0610/);
    chmodSync(f, 0o600);
    writeFileSync(f, 'short\n');
    expect(() => loadClusterKey(f)).to.throw(/holds 5 bytes; at least 16 are required/);
    expect(() => loadClusterKey(join(dir, 'absent'))).to.throw(/does not exist: create it on one node with 'mxfsctl keygen --out .*absent'/);
  });
});

describe('timing rules', () => {
  it('derives the lease margins and refuses a renew interval of half the lease or more', () => {
    expect(leaseTimes({ leaseTimeoutMs: 10000, renewIntervalMs: 2000 })).to.deep.equal({
      leaseMs: 10000, renewMs: 2000, fenceMarginMs: 1000, deadMarginMs: 1000, fenceAfterMs: 9000, deadAfterMs: 11000,
    });
    expect(() => leaseTimes({ leaseTimeoutMs: 4000, renewIntervalMs: 2000 })).to.throw(/more than twice/);
  });

  it('backoff is capped, exponential and jittered within [d/2, d)', () => {
    const b = { initialMs: 100, maxMs: 5000 };
    expect(backoffDelay(b, 0, () => 0)).to.equal(50);
    expect(backoffDelay(b, 3, () => 0.999)).to.be.closeTo(799.6, 0.1);
    expect(backoffDelay(b, 40, () => 0)).to.equal(2500);
    expect(backoffDelay(b, 40, () => 0.999999)).to.be.below(5000);
  });
});
