/** Frame codec and local-protocol validation: partial and batched frames, limits, fuzzing. */
import { expect } from 'chai';
import fc from 'fast-check';
import { encodedSize, encodeFrame, encodeReplyFrame, fitList, FRAME_VIEW_BLOCK_MAX, FrameDecoder, FrameError } from '../src/wire/frame';
import { ProtocolError, validateClientRequest, validateDaemonMessage } from '../src/wire/client-protocol';
import { INVALID_KEY, invalidUtf8Fields, WHOLE } from '../src/wire/utf8-fields';

describe('frames', () => {
  it('decodes frames split at every byte and batched in one chunk', () => {
    const msgs = [{ type: 'hb' }, { type: 'status', id: 7 }, { type: 'x', data: Buffer.alloc(300, 1) }];
    const all = Buffer.concat(msgs.map((m) => encodeFrame(m, 1024)));
    for (let cut = 1; cut < all.length; cut += 7) {
      const d = new FrameDecoder(1024);
      const out = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      expect(out).to.have.length(3);
      expect(d.pending).to.equal(0);
    }
  });

  it('refuses zero-length, oversized, undecodable and trailing-garbage frames', () => {
    expect(() => new FrameDecoder(100).push(Buffer.from([0, 0, 0, 0]))).to.throw(FrameError, /zero-length/);
    expect(() => new FrameDecoder(100).push(Buffer.from([0, 0, 0, 101]))).to.throw(FrameError, /exceeds the limit of 100/);
    expect(() => new FrameDecoder(100).push(Buffer.from([0, 0, 0, 1, 0x81]))).to.throw(FrameError, /undecodable/);
    const two = Buffer.concat([encodeFrame({ a: 1 }, 100).subarray(4), encodeFrame({ b: 2 }, 100).subarray(4)]);
    const f = Buffer.alloc(4); f.writeUInt32BE(two.length);
    expect(() => new FrameDecoder(100).push(Buffer.concat([f, two]))).to.throw(FrameError);
    expect(() => encodeFrame({ big: Buffer.alloc(200) }, 100)).to.throw(FrameError);
  });

  it('random bytes only ever produce FrameError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try { new FrameDecoder(64).push(Buffer.from(bytes)); } catch (e) { expect(e).to.be.instanceOf(FrameError); }
    }), { numRuns: 2000 });
  });
});

describe('encodeFrame output', () => {
  it('every frame keeps its bytes while thousands more are encoded after it (frames are views of packr\'s blocks)', () => {
    const msgs = Array.from({ length: 5000 }, (_, i) => ({ type: 'lock', id: i, resource: `name.${i}`, pad: 'x'.repeat(i % 300) }));
    const frames = msgs.map((m) => encodeFrame(m, 1 << 20));
    const d = new FrameDecoder(1 << 20);
    frames.forEach((f, i) => {
      expect(f.readUInt32BE(0), `frame ${i} length`).to.equal(f.length - 4);
      expect(d.push(f), `frame ${i}`).to.deep.equal([msgs[i]]);
    });
  });

  it('a small frame never keeps a large block alive, even after a large message grew the encoder\'s blocks', () => {
    const big = encodeFrame({ data: Buffer.alloc(2 << 20, 7) }, 1 << 24);
    expect(big.length).to.be.greaterThan(2 << 20);
    for (let i = 0; i < 200; i++) {
      const f = encodeFrame({ type: 'reply', id: i, ok: true }, 1 << 20);
      expect(f.buffer.byteLength, `frame ${i}`).to.be.at.most(FRAME_VIEW_BLOCK_MAX);
      expect(new FrameDecoder(1 << 20).push(f)).to.deep.equal([{ type: 'reply', id: i, ok: true }]);
    }
  });
});

/** The payload of `msg` with the bytes of its string `marker` replaced by `bytes` (same length). */
function patchedPayload(msg: unknown, marker: string, bytes: number[]): Buffer {
  const p = Buffer.from(encodeFrame(msg, 1 << 20).subarray(4));
  const at = p.indexOf(Buffer.from(marker));
  expect(at, 'marker found').to.be.greaterThan(-1);
  Buffer.from(bytes).copy(p, at);
  return p;
}

describe('invalidUtf8Fields', () => {
  const bad: number[][] = [[0x61, 0xff, 0x61], [0x61, 0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0x80, 0x61], [0x61, 0x80, 0x61], [0x61, 0x61, 0xc3]];

  it('finds nothing in valid text: ASCII, multi-byte characters, U+FFFD itself', () => {
    for (const resource of ['plain.name.12', 'é', 'naïve ☃ 𝄞', '\ufffd', '']) {
      expect([...invalidUtf8Fields(encodeFrame({ type: 'lock', id: 1, lockspace: 'default', resource, mode: 5 }, 1 << 20).subarray(4))], resource).to.deep.equal([]);
    }
  });

  it('names the field whose string holds invalid bytes, at any place in the string and nested in the value', () => {
    for (const bytes of bad) {
      expect([...invalidUtf8Fields(patchedPayload({ type: 'lock', id: 1, lockspace: 'default', resource: 'QQQ', mode: 5 }, 'QQQ', bytes))], bytes.join()).to.deep.equal(['resource']);
      expect([...invalidUtf8Fields(patchedPayload({ id: 1, spec: { peers: [1, 'QQQ'] } }, 'QQQ', bytes))], bytes.join()).to.deep.equal(['spec']);
    }
  });

  it('catches a string that ends inside a character even when the next item\'s bytes would complete it', () => {
    // 'Q' + 'é' cut after its lead byte C3, then a 2-byte fixstr (A2), a continuation byte
    // in UTF-8: the payload as a whole is valid UTF-8 there, the string alone is not.
    const p = patchedPayload({ a: 'QQ', b: 'xy' }, 'QQ', [0x51, 0xc3]);
    expect(p.indexOf(Buffer.from([0xc3, 0xa1]))).to.be.greaterThan(-1);
    expect([...invalidUtf8Fields(p)]).to.deep.equal(['a']);
  });

  it('reports an invalid key without its name, and a non-map payload as a whole', () => {
    expect([...invalidUtf8Fields(patchedPayload({ QQQ: 1, b: 'ok' }, 'QQQ', [0x61, 0xff, 0x61]))]).to.deep.equal([INVALID_KEY]);
    expect([...invalidUtf8Fields(patchedPayload(['x', 'QQQ'], 'QQQ', [0x61, 0xff, 0x61]))]).to.deep.equal([WHOLE]);
    expect([...invalidUtf8Fields(encodeFrame(['x', 'é'], 100).subarray(4))]).to.deep.equal([]);
  });

  it('random maps of text: nothing found; one byte 0xFF put in one value: that key found', () => {
    fc.assert(fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.oneof(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.integer(), fc.array(fc.string({ unit: 'binary' }), { maxLength: 3 }))), fc.nat(), (obj, pick) => {
      expect([...invalidUtf8Fields(encodeFrame(obj, 1 << 20).subarray(4))]).to.deep.equal([]);
      const keys = Object.keys(obj).filter((k) => !k.includes('ZZZZ'));
      if (keys.length === 0) return;
      const key = keys[pick % keys.length]!;
      const withMarker = { ...obj, [key]: ['ZZZZ'] };
      expect([...invalidUtf8Fields(patchedPayload(withMarker, 'ZZZZ', [0x5a, 0xff, 0x5a, 0x5a]))]).to.deep.equal([key]);
    }), { numRuns: 300 });
  });
});

describe('encodeReplyFrame', () => {
  it('writes the bytes encodeFrame writes, for any reply', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.boolean(), fc.anything({ withNullPrototype: false, withMap: false, withSet: false, withBigInt: false, withDate: false, withTypedArray: false, withSparseArray: false, withObjectString: false, withBoxedValues: false }), (id, ok, data) => {
      const m = { type: 'reply', id, ok, data };
      expect(encodeReplyFrame(m, 1 << 20).equals(encodeFrame(m, 1 << 20))).to.equal(true);
    }), { numRuns: 300 });
    expect(encodeReplyFrame({ type: 'reply', id: 1, ok: true }, 1024).equals(encodeFrame({ type: 'reply', id: 1, ok: true }, 1024))).to.equal(true);
  });

  it('encodes a data object once however many replies carry it (a coalesced inspection answer), and keeps the frame limit', () => {
    const data = { node: 1, resources: Array.from({ length: 300 }, (_, i) => ({ lockspace: 'default', resource: `r${i}`, granted: [{ lockId: i, mode: 'EX' }] })), omitted: 0 };
    const frames = [1, 2, 300000].map((id) => encodeReplyFrame({ type: 'reply', id, ok: true, data }, 1 << 20));
    frames.forEach((f, k) => expect(new FrameDecoder(1 << 20).push(f)[0]).to.deep.equal({ type: 'reply', id: [1, 2, 300000][k], ok: true, data }));
    // The encoding is the first one's: a change to the object after a reply carried it is not seen.
    data.omitted = 99;
    const again = new FrameDecoder(1 << 20).push(encodeReplyFrame({ type: 'reply', id: 3, ok: true, data }, 1 << 20))[0] as { data: { omitted: number } };
    expect(again.data.omitted).to.equal(0);
    expect(() => encodeReplyFrame({ type: 'reply', id: 4, ok: true, data }, 1000)).to.throw(FrameError, /exceeds the limit of 1000/);
  });
});

describe('fitList', () => {
  it('keeps the longest prefix whose message fits, and counts the rest', () => {
    const items = Array.from({ length: 500 }, (_, i) => ({ name: `resource-${i}`, pad: 'x'.repeat(i % 50) }));
    const wrap = (xs: readonly unknown[]) => ({ resources: xs, omitted: items.length });
    for (const max of [10, 200, 1000, 5000, 20000, 1 << 20]) {
      const f = fitList(items, wrap, max);
      expect(f.items.length + f.omitted).to.equal(items.length);
      expect(f.items).to.deep.equal(items.slice(0, f.items.length));
      if (f.items.length > 0) expect(encodedSize(wrap(f.items))).to.be.at.most(max);
      if (f.omitted > 0) expect(encodedSize(wrap(items.slice(0, f.items.length + 1)))).to.be.above(max);
    }
    expect(fitList(items, wrap, 1 << 20).omitted).to.equal(0);
  });
});

describe('client protocol validation', () => {
  it('accepts well-formed requests', () => {
    expect(validateClientRequest({ type: 'lock', id: 1, lockId: 2, lockspace: 'ls', resource: 'r', mode: 5, noqueue: true, timeoutMs: 10 }))
      .to.include({ type: 'lock', mode: 5, noqueue: true });
    expect(validateClientRequest({ type: 'hb', seq: 3 })).to.deep.equal({ type: 'hb', seq: 3 });
    expect(() => validateClientRequest({ type: 'hb' })).to.throw(ProtocolError, /'seq'/);
  });

  it('names the field that is wrong', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /not a map/],
      [[1, 2], /not a map/],
      [{ type: 'lock', id: -1 }, /'id'/],
      [{ type: 'lock', id: 1, lockId: 1, lockspace: 'l', resource: 'r', mode: 6 }, /'mode'/],
      [{ type: 'lock', id: 1, lockId: 1, lockspace: 'l', resource: '', mode: 1 }, /'resource'/],
      [{ type: 'lock', id: 1, lockId: 1, lockspace: 'x'.repeat(65), resource: 'r', mode: 1 }, /'lockspace' is 65 bytes/],
      [{ type: 'lock', id: 1, lockId: 1, lockspace: 'l', resource: 'é'.repeat(33), mode: 1 }, /66 bytes/],
      [{ type: 'lock', id: 1, lockId: 1.5, lockspace: 'l', resource: 'r', mode: 1 }, /'lockId'/],
      [{ type: 'convert', id: 1, lockId: 1, mode: 1, lvb: 'text' }, /'lvb' must be binary/],
      [{ type: 'unlock', id: 1, lockId: 1, lvb: 5 }, /'lvb'/],
      [{ type: 'lock', id: 1, lockId: 1, lockspace: 'l', resource: 'r', mode: 1, noqueue: 1 }, /'noqueue'/],
      [{ type: 'lock', id: 1, lockId: 1, lockspace: 'l', resource: 'r', mode: 1, timeoutMs: 2 ** 40 }, /'timeoutMs'/],
      [{ type: 'nope', id: 1 }, /unknown request type "nope"/],
    ];
    for (const [x, re] of cases) expect(() => validateClientRequest(x), JSON.stringify(x)).to.throw(ProtocolError, re);
  });

  it('random values only ever produce ProtocolError (daemon and client side)', () => {
    const anyVal = fc.anything({ withBigInt: true, withTypedArray: true, withMap: true, withSet: true, withDate: true, withNullPrototype: true });
    const shaped = fc.record({
      type: fc.constantFrom('hello', 'lock', 'convert', 'unlock', 'cancel', 'status', 'locks', 'hb', 'reply', 'bast', 'lost'),
      id: anyVal, lockId: anyVal, mode: anyVal, resource: anyVal, lockspace: anyVal, lvb: anyVal, ok: anyVal, grant: anyVal, code: anyVal,
    }, { requiredKeys: ['type'] });
    fc.assert(fc.property(fc.oneof(anyVal, shaped), (x) => {
      for (const f of [validateClientRequest, validateDaemonMessage]) {
        try { f(x); } catch (e) { expect(e).to.be.instanceOf(ProtocolError); }
      }
    }), { numRuns: 3000 });
  });
});
