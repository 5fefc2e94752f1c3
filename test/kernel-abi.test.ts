/**
 * The kernel/daemon ABI has one source of truth, kernel/mxfs_netlink.h. This test parses it
 * (and the module's attribute policy table in kernel/mxfs_netlink.c) and fails when
 * src/ffi/mxfs-genl.ts disagrees: names, values, per-command attribute sets, attribute types.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as G from '../src/ffi/mxfs-genl';

const root = join(__dirname, '..', '..');
const header = readFileSync(join(root, 'kernel', 'mxfs_netlink.h'), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
const nlsource = readFileSync(join(root, 'kernel', 'mxfs_netlink.c'), 'utf8');

/** NAME -> value of the members of `enum <name> { ... }` (explicit values only). */
function cEnum(name: string): Map<string, number> {
  const m = new RegExp(`enum ${name}\\s*\\{([\\s\\S]*?)\\};`).exec(header);
  if (!m) throw new Error(`enum ${name} not found in the header`);
  const out = new Map<string, number>();
  for (const line of m[1]!.split(',')) {
    const e = /^\s*(\w+)\s*=\s*(\d+)\s*$/.exec(line);
    if (e) out.set(e[1]!, Number(e[2]));
    else if (line.trim() && !line.trim().startsWith('__')) throw new Error(`enum ${name}: member without explicit value: ${line.trim()}`);
  }
  return out;
}

const defines = new Map<string, string>();
for (const m of header.replace(/\\\n/g, ' ').matchAll(/^#define\s+(\w+)\s+(.+)$/gm)) defines.set(m[1]!, m[2]!.trim());

function defineNumber(name: string): number {
  const v = defines.get(name);
  if (v === undefined) throw new Error(`#define ${name} missing`);
  return Number(v);
}

function defineString(name: string): string {
  const v = defines.get(name);
  if (v === undefined) throw new Error(`#define ${name} missing`);
  return JSON.parse(v) as string;
}

/** The attribute names of an MXFS_CMD_<X>_REQUIRED/_ALLOWED set, following references. */
function attrSet(name: string): Set<string> {
  const v = defines.get(name);
  if (v === undefined) throw new Error(`#define ${name} missing`);
  const out = new Set<string>();
  for (const m of v.matchAll(/MXFS_A\((\w+)\)/g)) out.add(m[1]!);
  for (const m of v.matchAll(/(MXFS_CMD_\w+_(?:REQUIRED|ALLOWED))/g)) for (const a of attrSet(m[1]!)) out.add(a);
  return out;
}

/** TS enum -> Map NAME -> value (numeric enums only). */
function tsEnum(e: Record<string, string | number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(e)) if (typeof v === 'number') out.set(k, v);
  return out;
}

function withPrefix(m: Map<string, number>, prefix: string): Map<string, number> {
  return new Map([...m].map(([k, v]) => [prefix + k, v]));
}

describe('kernel ABI: kernel/mxfs_netlink.h vs src/ffi/mxfs-genl.ts', () => {
  it('has the same family name, version, group, protocol version and limits', () => {
    expect(G.MXFS_GENL_NAME).to.equal(defineString('MXFS_GENL_NAME'));
    expect(G.MXFS_GENL_MCGRP_EVENTS).to.equal(defineString('MXFS_GENL_MCGRP_EVENTS'));
    expect(G.MXFS_GENL_VERSION).to.equal(defineNumber('MXFS_GENL_VERSION'));
    expect(G.MXFS_PROTO_VERSION).to.equal(defineNumber('MXFS_PROTO_VERSION'));
    expect(G.MXFS_NAME_MAX).to.equal(defineNumber('MXFS_NAME_MAX'));
    expect(G.MXFS_LVB_MAX).to.equal(defineNumber('MXFS_LVB_MAX'));
    expect(G.MXFS_VOLUME_DEV_NAME_MAX).to.equal(defineNumber('MXFS_VOLUME_DEV_NAME_MAX'));
    // "mxfs!" + the name + NUL fit DISK_NAME_LEN (32).
    expect('mxfs!'.length + G.MXFS_VOLUME_DEV_NAME_MAX + 1).to.equal(32);
    expect(G.MXFS_LKF.NOQUEUE).to.equal(defineNumber('MXFS_LKF_NOQUEUE'));
    expect(G.MXFS_LKF.ALL).to.equal(defineNumber('MXFS_LKF_ALL'));
    expect(G.MXFS_GLOCK_LIST_MAX).to.equal(defineNumber('MXFS_GLOCK_LIST_MAX'));
  });

  it('names inode locks and lays out their value block the same way', () => {
    expect(G.MXFS_INODE_LOCKSPACE).to.equal(defineString('MXFS_INODE_LOCKSPACE'));
    expect(G.MXFS_INODE_RESOURCE_FMT).to.equal(defineString('MXFS_INODE_RESOURCE_FMT'));
    // inodeResource() is that format: "%s" the volume, "%llu" the inode number in decimal.
    const c = (vol: string, ino: bigint) => G.MXFS_INODE_RESOURCE_FMT.replace('%s', vol).replace('%llu', ino.toString(10));
    for (const [vol, ino] of [['data', 131n], ['v.1_x-2', 18446744073709551615n], ['a', 0n]] as const) {
      expect(G.inodeResource(vol, ino)).to.equal(c(vol, ino));
      expect(G.parseInodeResource(G.inodeResource(vol, ino))).to.deep.equal({ volume: vol, ino });
    }
    expect(G.parseInodeResource('data')).to.equal(undefined);
    expect(G.parseInodeResource('data:99999999999999999999')).to.equal(undefined);
    expect(G.MXFS_INODE_LVB_MAGIC).to.equal(defineNumber('MXFS_INODE_LVB_MAGIC'));
    expect(G.MXFS_INODE_LVB_LAYOUT).to.equal(defineNumber('MXFS_INODE_LVB_LAYOUT'));
    expect(G.MXFS_INODE_LVB_LEN).to.equal(defineNumber('MXFS_INODE_LVB_LEN'));
    expect(G.MXFS_INODE_LVB_LEN).to.be.at.most(G.MXFS_LVB_MAX);
    const lvb = Buffer.alloc(G.MXFS_INODE_LVB_LEN);
    lvb.writeUInt32LE(G.MXFS_INODE_LVB_MAGIC, 0); lvb.writeUInt32LE(1, 4);
    lvb.writeBigUInt64LE(7n, 8); lvb.writeBigUInt64LE(4096n, 16);
    expect(G.decodeInodeLvb(lvb)).to.deep.equal({ dataVersion: 7n, size: 4096n });
    expect(G.decodeInodeLvb(Buffer.alloc(24))).to.equal(undefined);
  });

  it('has the same commands (names and numbers)', () => {
    expect(withPrefix(tsEnum(G.MxfsCmd), 'MXFS_CMD_')).to.deep.equal(cEnum('mxfs_cmd'));
    expect(G.MXFS_CMD_MAX).to.equal(Math.max(...cEnum('mxfs_cmd').values()));
  });

  it('has the same attributes (names and numbers), all fitting the 64-bit set masks', () => {
    const c = cEnum('mxfs_attr');
    expect(withPrefix(tsEnum(G.MxfsAttr), 'MXFS_ATTR_')).to.deep.equal(c);
    expect(G.MXFS_ATTR_MAX).to.equal(Math.max(...c.values()));
    expect(G.MXFS_ATTR_MAX).to.be.below(64);
    expect(header, 'the sets are 64-bit masks').to.match(/#define MXFS_A\(attr\)\s+\(1ull <</);
  });

  it('has the same value enums (node states, events, gates, fence causes, lease states, shutdowns, volume events)', () => {
    const enums: Array<[Record<string, string | number>, string, string, number]> = [
      [G.MxfsNodeState, 'mxfs_node_state', 'MXFS_NODE_', G.MXFS_NODE_STATE_MAX],
      [G.MxfsEvent, 'mxfs_event', 'MXFS_EVENT_', G.MXFS_EVENT_MAX],
      [G.MxfsGate, 'mxfs_gate', 'MXFS_GATE_', G.MXFS_GATE_MAX],
      [G.MxfsFenceCause, 'mxfs_fence_cause', 'MXFS_FENCE_', G.MXFS_FENCE_MAX],
      [G.MxfsLeaseState, 'mxfs_lease_state', 'MXFS_LEASE_', G.MXFS_LEASE_MAX],
      [G.MxfsShutdown, 'mxfs_shutdown', 'MXFS_SHUTDOWN_', G.MXFS_SHUTDOWN_MAX],
      [G.MxfsVolumeEvent, 'mxfs_volume_event', 'MXFS_VOLEV_', G.MXFS_VOLEV_MAX],
      [G.MxfsGlockState, 'mxfs_glock_state', 'MXFS_GLOCK_', G.MXFS_GLOCK_MAX],
      [G.MxfsGlockType, 'mxfs_glock_type', 'MXFS_GLT_', G.MXFS_GLT_MAX],
    ];
    for (const [ts, cName, prefix, max] of enums) {
      expect(withPrefix(tsEnum(ts), prefix), cName).to.deep.equal(cEnum(cName));
      expect(max, `${cName} max`).to.equal(Math.max(...cEnum(cName).values()));
    }
  });

  it('has the same required and allowed attribute set for every command', () => {
    for (const [name, value] of tsEnum(G.MxfsCmd)) {
      if (value === 0) continue;
      const schema = G.CMD_SCHEMA[value as Exclude<G.MxfsCmd, G.MxfsCmd.UNSPEC>];
      const required = new Set(schema.required.map((a) => G.MxfsAttr[a]));
      const allowed = new Set([...schema.required, ...schema.optional].map((a) => G.MxfsAttr[a]));
      expect(required, `${name} required`).to.deep.equal(attrSet(`MXFS_CMD_${name}_REQUIRED`));
      expect(allowed, `${name} allowed`).to.deep.equal(attrSet(`MXFS_CMD_${name}_ALLOWED`));
      expect(schema.optional.filter((a) => schema.required.includes(a)), `${name} optional overlaps required`).to.deep.equal([]);
    }
  });

  it('gives every daemon->kernel command a genl op, and no other command one', () => {
    const ops = new Set([...nlsource.matchAll(/MXFS_OP\((\w+),/g)].map((m) => m[1]!));
    for (const [name, value] of tsEnum(G.MxfsCmd)) {
      if (value === 0) continue;
      const dir = G.CMD_SCHEMA[value as Exclude<G.MxfsCmd, G.MxfsCmd.UNSPEC>].dir;
      expect(ops.has(name), `${name} (${dir})`).to.equal(dir === 'to-kernel');
    }
  });

  it('uses the same attribute types and bounds as the module policy', () => {
    const kindOf: Record<string, string> = {
      NLA_U8: 'u8', NLA_U32: 'u32', NLA_U64: 'u64', NLA_S32: 's32', NLA_NUL_STRING: 'string', NLA_BINARY: 'binary',
    };
    const symbols: Record<string, number> = {
      MXFS_NAME_MAX: G.MXFS_NAME_MAX, MXFS_LVB_MAX: G.MXFS_LVB_MAX, MXFS_MODE_MAX: 5,
      MXFS_NODE_STATE_MAX: G.MXFS_NODE_STATE_MAX, MXFS_EVENT_MAX: G.MXFS_EVENT_MAX, MXFS_LKF_ALL: G.MXFS_LKF.ALL,
      MXFS_GATE_MAX: G.MXFS_GATE_MAX, MXFS_FENCE_MAX: G.MXFS_FENCE_MAX, MXFS_LEASE_MAX: G.MXFS_LEASE_MAX,
      MXFS_SHUTDOWN_MAX: G.MXFS_SHUTDOWN_MAX, MXFS_VOLEV_MAX: G.MXFS_VOLEV_MAX,
      MXFS_GLOCK_MAX: G.MXFS_GLOCK_MAX, MXFS_GLT_MAX: G.MXFS_GLT_MAX,
    };
    const num = (s: string) => (symbols[s] !== undefined ? symbols[s]! : Number(s));
    const table = /mxfs_attr_policy\[MXFS_ATTR_MAX \+ 1\] = \{([\s\S]*?)\n\};/.exec(nlsource);
    expect(table, 'policy table in mxfs_netlink.c').to.not.equal(null);
    let seen = 0;
    for (const line of table![1]!.split('\n')) {
      const m = /\[MXFS_ATTR_(\w+)\]\s*=\s*(.+?),?\s*$/.exec(line);
      if (!m) continue;
      seen++;
      const attr = G.MxfsAttr[m[1]! as keyof typeof G.MxfsAttr] as Exclude<G.MxfsAttr, G.MxfsAttr.UNSPEC>;
      const ts = G.ATTR_POLICY[attr];
      const body = m[2]!;
      let p: RegExpExecArray | null;
      if ((p = /^\{ \.type = (NLA_\w+)(?:, \.len = (\w+))? \}$/.exec(body))) {
        expect(ts.kind, m[1]).to.equal(kindOf[p[1]!]);
        if (p[2]) expect((ts as { maxLen?: number }).maxLen, `${m[1]} len`).to.equal(num(p[2]));
      } else if ((p = /^NLA_POLICY_MAX\((NLA_\w+), (\w+)\)$/.exec(body))) {
        expect(ts.kind, m[1]).to.equal(kindOf[p[1]!]);
        expect((ts as { max?: number }).max, `${m[1]} max`).to.equal(num(p[2]!));
      } else if ((p = /^NLA_POLICY_MASK\((NLA_\w+), (\w+)\)$/.exec(body))) {
        expect(ts.kind, m[1]).to.equal(kindOf[p[1]!]);
        expect((ts as { mask?: number }).mask, `${m[1]} mask`).to.equal(num(p[2]!));
      } else if ((p = /^NLA_POLICY_RANGE\((NLA_\w+), (-?\w+), (-?\w+)\)$/.exec(body))) {
        expect(ts.kind, m[1]).to.equal(kindOf[p[1]!]);
        expect([(ts as { min?: number }).min, (ts as { max?: number }).max], `${m[1]} range`).to.deep.equal([num(p[2]!), num(p[3]!)]);
      } else {
        throw new Error(`cannot read the policy of MXFS_ATTR_${m[1]}: ${body}`);
      }
    }
    expect(seen).to.equal(G.MXFS_ATTR_MAX);
  });
});

describe('docs/kernel.md boot-time udev rule', () => {
  it('is test/vm/udev/61-mxfs.rules, the file the one-VM test udev-claim installs', () => {
    const doc = readFileSync(join(root, 'docs', 'kernel.md'), 'utf8');
    const block = /```\n((?: {2})?# \/etc\/udev\/rules\.d\/[^\n]*\n[\s\S]*?) *```/.exec(doc);
    expect(block, 'a code block starting "# /etc/udev/rules.d/..." in docs/kernel.md').to.not.equal(null);
    const rule = readFileSync(join(root, 'test', 'vm', 'udev', '61-mxfs.rules'), 'utf8');
    expect(block![1]!.replace(/^ {2}/gm, '')).to.equal(rule);
  });
});
