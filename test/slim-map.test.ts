/** SlimMap: a map with its first entry in fields, a Map from the second key on (src/util/slim-map.ts). */
import { expect } from 'chai';
import { SlimMap } from '../src/util/slim-map';

describe('SlimMap', () => {
  it('behaves as a Map through one entry, the switch to a Map, and back to empty', () => {
    const m = new SlimMap<string, number>();
    const ref = new Map<string, number>();
    const same = () => {
      expect([...m]).to.deep.equal([...ref]);
      expect([...m.keys()]).to.deep.equal([...ref.keys()]);
      expect([...m.values()]).to.deep.equal([...ref.values()]);
      expect(m.size).to.equal(ref.size);
      for (const k of ['a', 'b', 'c', 'zz']) { expect(m.get(k)).to.equal(ref.get(k)); expect(m.has(k)).to.equal(ref.has(k)); }
    };
    const ops: Array<[string, string, number?]> = [
      ['set', 'a', 1], ['set', 'a', 2], ['del', 'zz'], ['del', 'a'], ['set', 'b', 3], ['set', 'c', 4],
      ['set', 'b', 5], ['del', 'b'], ['set', 'a', 6], ['del', 'c'], ['del', 'a'], ['set', 'c', 7],
    ];
    same();
    for (const [op, k, v] of ops) {
      if (op === 'set') { expect(m.set(k, v!)).to.equal(m); ref.set(k, v!); } else expect(m.delete(k)).to.equal(ref.delete(k));
      same();
    }
    m.clear(); ref.clear();
    same();
  });

  it('takes any key, undefined included, and allows deleting while iterating', () => {
    const m = new SlimMap<string | undefined, string>();
    expect(m.has(undefined)).to.equal(false);
    m.set(undefined, 'u');
    expect(m.has(undefined)).to.equal(true);
    expect(m.get(undefined)).to.equal('u');
    expect(m.size).to.equal(1);
    m.set('x', 'y');
    for (const [k] of m) m.delete(k);
    expect(m.size).to.equal(0);
    m.set('one', '1');
    for (const [k] of m) m.delete(k);
    expect(m.size).to.equal(0);
    expect([...m]).to.deep.equal([]);
  });
});
