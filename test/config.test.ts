/** Tests of the config parser (src/config): defaults, the shipped example, every error class,
 *  path resolution, and a fuzz property that garbage only ever raises ConfigError. */
import { lockLinkTimes } from '../src/cluster/options';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { ConfigError, configDefaults, formatConfigError, loadConfig, parseConfig } from '../src/config/config';
import { tokenizeIni } from '../src/config/ini';

const FILE = '/etc/mxfs/test.conf';
const EXAMPLE = path.resolve(__dirname, '../../config/mxfs.conf.example');

/** Parse and return the ConfigError it must throw. */
function fails(text: string, file = FILE): ConfigError {
  try {
    parseConfig(text, file);
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

describe('ini tokenizer', () => {
  it('keeps line numbers and repeated sections in order', () => {
    const secs = tokenizeIni('# c\n[a]\nx = 1\n\n; c\n[b]\n[a]\ny=2 = 3\n');
    expect(secs.map((s) => [s.name, s.line])).to.deep.equal([['a', 2], ['b', 6], ['a', 7]]);
    expect(secs[0].entries).to.deep.equal([{ key: 'x', value: '1', line: 3 }]);
    expect(secs[2].entries).to.deep.equal([{ key: 'y', value: '2 = 3', line: 8 }]);
  });
});

describe('config', () => {
  it('applies every default for a minimal file', () => {
    const c = parseConfig('[node]\nid = 4\n', FILE);
    expect(c.file).to.equal(FILE);
    expect(c.node).to.deep.equal({ id: 4, name: 'node4', address: '127.0.0.1', port: 7600, socket: '/run/mxfs/mxfsd.sock', socketMode: 0o660, kernel: 'auto', stateDir: '/var/lib/mxfs' });
    expect(c.cluster).to.deep.equal({ name: 'mxfs' });
    expect(c.peers).to.deep.equal([]);
    expect(c.volumes).to.deep.equal([]);
    expect(c.timing).to.deep.equal({ leaseTimeoutMs: 10000, renewIntervalMs: 2000, clientKeepaliveMs: 1000, clientTimeoutMs: 5000, queryTimeoutMs: 5000, shutdownGraceMs: 5000 });
    expect(c.locking).to.deep.equal({ lvbSize: 32, idleEvictMs: 60000, maxFrameBytes: 65536, maxLocksPerClient: 100000, maxClients: 1024, maxRequestsPerClient: 1024, maxRequests: 16384, maxClientOutputBytes: 8388608 });
    expect(c.logging).to.deep.equal({ level: 'info', syslog: false, syslogSocket: '/dev/log', syslogFacility: 'daemon', stderr: true, stderrFormat: 'auto' });
    expect(configDefaults().timing).to.deep.equal(c.timing);
  });

  it('parses the shipped example file', () => {
    const c = loadConfig(EXAMPLE);
    expect(c.node.id).to.equal(1);
    expect(c.node.port).to.equal(7601);
    expect(c.peers.map((p) => [p.id, p.port])).to.deep.equal([[2, 7602], [3, 7603]]);
    expect(c.volumes).to.have.length(1);
    expect(c.volumes[0].device).to.match(/^\//);
  });

  it('parses every kind of value', () => {
    const c = parseConfig([
      '[node]', 'id = 7', 'name = alpha', 'address = ::1', 'port = 9000', 'socket_mode = 0600', 'socket_group = mxfs-users', 'kernel = off',
      '[cluster]', 'name = prod.a', 'tiebreaker = 8', 'key_file = cluster.key',
      '[peer]', 'id = 8', 'address = beta.example.com',
      '[volume]', 'name = v1', 'device = /dev/sdb', 'mountpoint = /mnt/v1/', 'driver = command',
      'mount_cmd = mount -o "$MXFS_MOUNT_OPTIONS" $MXFS_DEVICE $MXFS_MOUNTPOINT', 'umount_cmd = umount $MXFS_MOUNTPOINT',
      'mount_options = noatime,logbsize=256k', 'failover = manual', 'start = standby', 'fence_bound_ms = 250',
      '[logging]', 'level = debug', 'syslog = YES', 'stderr = 0', 'syslog_facility = local3', 'stderr_format = journal',
    ].join('\n'), FILE);
    expect(c.node).to.include({ id: 7, name: 'alpha', address: '::1', port: 9000, socketMode: 0o600, socketGroup: 'mxfs-users', kernel: 'off' });
    expect(c.cluster).to.deep.equal({ name: 'prod.a', tiebreaker: 8, keyFile: '/etc/mxfs/cluster.key' });
    expect(c.peers).to.deep.equal([{ id: 8, name: 'node8', address: 'beta.example.com', port: 7600 }]);
    const l = parseConfig('[node]\nid = 1\nlock_port = 7700\n[cluster]\nkey_file = k\n[peer]\nid = 2\naddress = h\nlock_port = 7701\n', FILE);
    expect([l.node.lockPort, l.peers[0]!.lockPort]).to.deep.equal([7700, 7701]);
    // The lock links' idle check: absent, derived from renew_interval_ms (half, one); set, as given.
    expect(lockLinkTimes(l.timing)).to.deep.equal({ pingAfterMs: 1000, deadAfterMs: 2000 });
    const t = parseConfig('[node]\nid = 1\n[timing]\nrenew_interval_ms = 500\nlock_link_dead_ms = 700\n', FILE).timing;
    expect([t.lockLinkPingMs, t.lockLinkDeadMs, lockLinkTimes(t)]).to.deep.equal([undefined, 700, { pingAfterMs: 250, deadAfterMs: 700 }]);
    expect(c.volumes).to.deep.equal([{
      name: 'v1', device: '/dev/sdb', mountpoint: '/mnt/v1/', mountOptions: 'noatime,logbsize=256k', failover: 'manual', driver: 'command', start: 'standby',
      commands: { mount: 'mount -o "$MXFS_MOUNT_OPTIONS" $MXFS_DEVICE $MXFS_MOUNTPOINT', umount: 'umount $MXFS_MOUNTPOINT' },
      commandTimeoutMs: 60000, fenceBoundMs: 250,
    }]);
    expect(c.logging).to.include({ level: 'debug', syslog: true, stderr: false, syslogFacility: 'local3', stderrFormat: 'journal' });
  });

  it('checks volume drivers: commands for driver = command, the module for driver = kernel', () => {
    const base = '[node]\nid = 1\nkernel = off\n[volume]\nname = v\ndevice = /dev/sdb\n';
    const err = (text: string) => { try { parseConfig(text, FILE); } catch (e) { return (e as ConfigError).message; } return 'no error'; };
    expect(err(base)).to.match(/\[volume\] driver: driver = kernel needs the kernel module, but \[node\] kernel = off/);
    expect(err(base + 'driver = command\numount_cmd = true\n')).to.match(/:7: \[volume\] mount_cmd: driver = command needs mount_cmd/);
    expect(err('[node]\nid = 1\n[volume]\nname = v\ndevice = /dev/sdb\nfence_cmd = true\n')).to.match(/:6: \[volume\] fence_cmd: fence_cmd is for driver = command/);
    // The module's whole name rule (kernelVolumeNameError): 1-26 bytes of [A-Za-z0-9_.-], not
    // starting with '.' or '-'; a command-mode volume may use the other names.
    const kvol = (name: string) => err(`[node]\nid = 1\n[volume]\nname = ${name}\ndevice = /dev/sdb\n`);
    expect(kvol('a23456789012345678901234567')).to.match(/:4: \[volume\] name: with driver = kernel, kernel volume names have 1-26 bytes .* has 27/);
    expect(kvol('-data')).to.match(/:4: \[volume\] name: with driver = kernel, kernel volume names use \[A-Za-z0-9_.-\] and do not start with '.' or '-'; '-data' does not/);
    expect(kvol('.data')).to.match(/\[volume\] name: with driver = kernel, .* do not start with '.' or '-'/);
    expect(kvol('a2345678901234567890123456')).to.equal('no error');
    expect(kvol('data_1.x-y')).to.equal('no error');
    expect(err(base.replace('name = v', 'name = -v') + 'driver = command\nmount_cmd = true\numount_cmd = true\n')).to.equal('no error');
    expect(err(base + 'driver = command\nmount_cmd = true\numount_cmd = true\nmount_options = a b\n')).to.match(/mount_options: 'mount_options' must be comma-separated mount options/);
    expect(err(base + 'driver = command\nmount_cmd = true\numount_cmd = true\nfailover = sometimes\n')).to.match(/failover: 'failover' must be one of auto, manual/);
    expect(err(base + 'driver = command\nmount_cmd = true\numount_cmd = true\n[locking]\nlvb_size = 16\n')).to.match(/\[locking\] lvb_size: lvb_size must be at least 32 bytes when \[volume\] sections are configured/);
    expect(err(base + 'driver = command\nmount_cmd = true\numount_cmd = true\n')).to.equal('no error');
  });

  it('resolves relative paths against the config file directory', () => {
    const c = parseConfig('[node]\nid=1\nsocket = run/d.sock\n[cluster]\nkey_file = ../keys/k\n[logging]\nfile = mxfsd.log\nsyslog_socket = /dev/log\n', '/srv/mxfs/etc/a.conf');
    expect(c.node.socket).to.equal('/srv/mxfs/etc/run/d.sock');
    expect(c.cluster.keyFile).to.equal('/srv/mxfs/keys/k');
    expect(c.logging.file).to.equal('/srv/mxfs/etc/mxfsd.log');
    expect(c.logging.syslogSocket).to.equal('/dev/log');
  });

  it('resolves relative to a relative config path via the cwd', () => {
    const c = parseConfig('[node]\nid=1\nsocket = s.sock\n', 'etc/a.conf');
    expect(c.node.socket).to.equal(path.resolve('etc/s.sock'));
  });

  describe('errors', () => {
    const cases: { name: string; text: string; line?: number; section?: string; key?: string; msg: RegExp }[] = [
      { name: 'unknown section', text: '[node]\nid=1\n[nodes]\n', line: 3, section: 'nodes', msg: /unknown section \[nodes\].*did you mean \[node\]/ },
      { name: 'unknown key with suggestion', text: '[node]\nid=1\n[timing]\nlease_timout_ms = 9000\n', line: 4, section: 'timing', key: 'lease_timout_ms', msg: /unknown key 'lease_timout_ms' \(did you mean 'lease_timeout_ms'\?\)/ },
      { name: 'unknown key in wrong section', text: '[node]\nid=1\n[timing]\nport = 1\n', line: 4, section: 'timing', key: 'port', msg: /belongs in \[node\] or \[peer\]/ },
      { name: 'unknown key without suggestion', text: '[node]\nid=1\nfrobnicate = 1\n', line: 3, section: 'node', key: 'frobnicate', msg: /unknown key 'frobnicate'.*known keys/ },
      { name: 'duplicate key', text: '[node]\nid=1\nport=1\nport=2\n', line: 4, section: 'node', key: 'port', msg: /duplicate key 'port'.*line 3/ },
      { name: 'key outside any section', text: '# hi\nid = 1\n[node]\n', line: 2, key: 'id', msg: /before any \[section\]/ },
      { name: 'malformed line', text: '[node]\nid = 1\njust words\n', line: 3, msg: /malformed line/ },
      { name: 'malformed header', text: '[node\nid = 1\n', line: 1, msg: /malformed section header/ },
      { name: 'non-integer ms', text: '[node]\nid=1\n[timing]\nlease_timeout_ms = 10s\n', line: 4, key: 'lease_timeout_ms', msg: /lease_timeout_ms.*milliseconds.*'10s'/ },
      { name: 'exponent', text: '[node]\nid=1\n[timing]\nquery_timeout_ms = 1e3\n', line: 4, key: 'query_timeout_ms', msg: /milliseconds.*decimal digits/ },
      { name: 'hex bytes', text: '[node]\nid=1\n[locking]\nlvb_size = 0x10\n', line: 4, key: 'lvb_size', msg: /bytes.*'0x10'/ },
      { name: 'negative', text: '[node]\nid=-1\n', line: 2, key: 'id', msg: /decimal digits/ },
      { name: 'out of range', text: '[node]\nid=1\nport = 70000\n', line: 3, key: 'port', msg: /out of range.*1\.\.65535/ },
      { name: 'out of range with unit', text: '[node]\nid=1\n[locking]\nmax_frame_bytes = 100\n', line: 4, key: 'max_frame_bytes', msg: /1024\.\.16777216 bytes/ },
      { name: 'node id out of range', text: '[node]\nid=1024\n', line: 2, key: 'id', msg: /1\.\.1023/ },
      { name: 'bad boolean', text: '[node]\nid=1\n[logging]\nsyslog = maybe\n', line: 4, key: 'syslog', msg: /boolean/ },
      { name: 'bad octal', text: '[node]\nid=1\nsocket_mode = 0668\n', line: 3, key: 'socket_mode', msg: /octal/ },
      { name: 'mode beyond permission bits', text: '[node]\nid=1\n\nsocket_mode = 7777\n', line: 4, key: 'socket_mode', msg: /permission bits 0000\.\.0777 .* got '7777'/ },
      { name: 'setgid bit', text: '[node]\nid=1\nsocket_mode = 2660\n', line: 3, key: 'socket_mode', msg: /permission bits/ },
      { name: 'bad socket group', text: '[node]\nid=1\nsocket_group = -x\n', line: 3, key: 'socket_group', msg: /group name or a numeric gid/ },
      { name: 'bad stderr format', text: '[node]\nid=1\n[logging]\nstderr_format = text\n', line: 4, key: 'stderr_format', msg: /auto, json, journal/ },
      { name: 'bad enum', text: '[node]\nid=1\nkernel = maybe\n', line: 3, key: 'kernel', msg: /auto, on, off/ },
      { name: 'bad level', text: '[node]\nid=1\n[logging]\nlevel = verbose\n', line: 4, key: 'level', msg: /trace, debug, info, warn, error, fatal/ },
      { name: 'bad facility', text: '[node]\nid=1\n[logging]\nsyslog_facility = local9\n', line: 4, key: 'syslog_facility', msg: /local7/ },
      { name: 'empty value', text: '[node]\nid=1\nname =\n', line: 3, key: 'name', msg: /empty value/ },
      { name: 'bad address', text: '[node]\nid=1\naddress = 300.1.1.1\n', line: 3, key: 'address', msg: /address/ },
      { name: 'bad cluster name', text: '[node]\nid=1\n[cluster]\nname = a b\n', line: 4, key: 'name', msg: /A-Za-z0-9_\.-/ },
      { name: 'relative device', text: '[node]\nid=1\n[volume]\nname=v\ndevice = sdb\n', line: 5, key: 'device', msg: /absolute/ },
      { name: 'missing node section', text: '[timing]\n', line: undefined, section: 'node', msg: /missing required section \[node\]/ },
      { name: 'missing node id', text: '\n[node]\nport = 1\n', line: 2, section: 'node', key: 'id', msg: /missing required key 'id'/ },
      { name: 'missing peer address', text: '[node]\nid=1\n[peer]\nid=2\n', line: 3, section: 'peer', key: 'address', msg: /missing required key 'address'/ },
      { name: 'missing volume device', text: '[node]\nid=1\n[volume]\nname=v\n', line: 3, section: 'volume', key: 'device', msg: /'device'/ },
      { name: 'second node section', text: '[node]\nid=1\n[node]\nid=2\n', line: 3, section: 'node', msg: /only once.*line 1/ },
      { name: 'client timeout >= lease', text: '[node]\nid=1\n[timing]\nlease_timeout_ms = 4000\nrenew_interval_ms = 1000\nclient_timeout_ms = 4000\n', line: 6, key: 'client_timeout_ms', msg: /client_timeout_ms \(4000\).*lease_timeout_ms \(4000\)/ },
      { name: 'client timeout vs lease default', text: '[node]\nid=1\n[timing]\nclient_timeout_ms = 20000\n', line: 4, key: 'client_timeout_ms', msg: /lease_timeout_ms/ },
      { name: 'peers without a key file', text: '[node]\nid=1\n[peer]\nid=2\naddress=127.0.0.2\n', line: undefined, key: 'key_file', msg: /key_file is required when \[peer\] sections are configured/ },
      { name: 'client timeout + renew >= lease', text: '[node]\nid=1\n[timing]\nlease_timeout_ms = 4000\nrenew_interval_ms = 1000\nclient_timeout_ms = 3000\n', line: 6, key: 'client_timeout_ms', msg: /\+ renew_interval_ms \(1000\) must be less than lease_timeout_ms \(4000\)/ },
      { name: 'client timeout vs keepalive', text: '[node]\nid=1\n[timing]\nclient_keepalive_ms = 2500\n', line: 4, key: 'client_timeout_ms', msg: /client_timeout_ms.*client_keepalive_ms/ },
      { name: 'lock link ping under 10 ms', text: '[node]\nid=1\n[timing]\nlock_link_ping_ms = 5\n', line: 4, key: 'lock_link_ping_ms', msg: /out of range: 5 milliseconds \(allowed 10\.\./ },
      { name: 'lock link bounds >= lease', text: '[node]\nid=1\n[timing]\nlease_timeout_ms = 4000\nrenew_interval_ms = 1000\nclient_timeout_ms = 2500\nlock_link_dead_ms = 3600\n', line: 7, key: 'lock_link_dead_ms', msg: /lock_link_ping_ms \(500\) \+ lock_link_dead_ms \(3600\) must be less than lease_timeout_ms \(4000\)/ },
      { name: 'lock link ping >= lease (default dead)', text: '[node]\nid=1\n[timing]\nlock_link_ping_ms = 9000\n', line: 4, key: 'lock_link_ping_ms', msg: /lock_link_ping_ms \(9000\) \+ lock_link_dead_ms \(2000\)/ },
      { name: 'renew too slow', text: '[node]\nid=1\n[timing]\nrenew_interval_ms = 5000\n', line: 4, key: 'renew_interval_ms', msg: /renew_interval_ms.*half of lease_timeout_ms/ },
      { name: 'peer id = node id', text: '[node]\nid=1\n[peer]\nid = 1\naddress = h\n', line: 4, section: 'peer', key: 'id', msg: /id 1 is already used by \[node\]/ },
      { name: 'duplicate peer id', text: '[node]\nid=1\n[peer]\nid=2\naddress=a\n[peer]\nid = 2\naddress=b\n', line: 7, key: 'id', msg: /id 2.*line 3/ },
      { name: 'duplicate endpoint', text: '[node]\nid=1\n[peer]\nid=2\naddress=h\nport=7000\n[peer]\nid=3\naddress = H\nport=7000\n', line: 9, key: 'address', msg: /h:7000/ },
      { name: 'lock_port = port', text: '[node]\nid=1\nport = 7000\nlock_port = 7000\n', line: 4, section: 'node', key: 'lock_port', msg: /peer port/ },
      { name: 'peer lock endpoint taken', text: '[node]\nid=1\n[cluster]\nkey_file=k\n[peer]\nid=2\naddress=h\nport=7000\nlock_port=7001\n[peer]\nid=3\naddress=h\nport=7001\n', line: 12, key: 'address', msg: /h:7001.*lock_port/ },
      { name: 'peer endpoint = node endpoint', text: '[node]\nid=1\n[peer]\nid=2\naddress=127.0.0.1\n', line: 5, key: 'address', msg: /127\.0\.0\.1:7600.*\[node\]/ },
      { name: 'tiebreaker unknown', text: '[node]\nid=1\n[cluster]\ntiebreaker = 5\nkey_file = k\n[peer]\nid=2\naddress=h\n', line: 4, key: 'tiebreaker', msg: /tiebreaker 5/ },
      { name: 'tiebreaker with three nodes', text: '[node]\nid=1\n[cluster]\ntiebreaker = 1\nkey_file = k\n[peer]\nid=2\naddress=h\n[peer]\nid=3\naddress=i\n', line: 4, key: 'tiebreaker', msg: /two-node/ },
      { name: 'duplicate volume name', text: '[node]\nid=1\n[volume]\nname=v\ndevice=/dev/a\n[volume]\nname=v\ndevice=/dev/b\n', line: 7, key: 'name', msg: /'v'.*line 3/ },
      { name: 'duplicate volume device', text: '[node]\nid=1\n[volume]\nname=v\ndevice=/dev/a\n[volume]\nname=w\ndevice=/dev/a\n', line: 8, key: 'device', msg: /\/dev\/a/ },
      { name: 'metrics port = the node\'s peer port', text: '[node]\nid=1\n[cluster]\nkey_file=k\n[peer]\nid=2\naddress=h\n[metrics]\nenabled = true\nport = 7600\n', line: 10, section: 'metrics', key: 'port', msg: /port 7600 is this node's peer port \(\[node\] port, the default\)/ },
      { name: 'metrics port = the node\'s lock_port, on a wildcard address', text: '[node]\nid=1\nlock_port = 7700\n[cluster]\nkey_file=k\n[peer]\nid=2\naddress=h\n[metrics]\nenabled = true\naddress = 0.0.0.0\nport = 7700\n', line: 12, section: 'metrics', key: 'port', msg: /port 7700 is this node's peer lock_port \(\[node\] lock_port at line 3\)/ },
      { name: 'socket path too long', text: `[node]\nid=1\nsocket = /${'x'.repeat(120)}\n`, line: 3, key: 'socket', msg: /107/ },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const e = fails(c.text);
        expect(e.file).to.equal(FILE);
        expect(e.line, 'line').to.equal(c.line);
        if (c.section !== undefined) expect(e.section, 'section').to.equal(c.section);
        if (c.key !== undefined) {
          expect(e.key, 'key').to.equal(c.key);
          expect(e.message).to.contain(c.key);
        }
        expect(e.message).to.match(c.msg);
        expect(formatConfigError(e)).to.equal(e.message);
        expect(e.message).to.not.contain('\n');
      });
    }
  });

  it('a metrics port equal to the peer port is fine where mxfsd does not listen on it (standalone, or another address)', () => {
    expect(parseConfig('[node]\nid=1\n[metrics]\nenabled = true\nport = 7600\n', FILE).metrics.port).to.equal(7600);
    expect(parseConfig('[node]\nid=1\n[cluster]\nkey_file=k\n[peer]\nid=2\naddress=h\n[metrics]\nenabled = true\naddress = 127.0.0.2\nport = 7600\n', FILE).metrics.port).to.equal(7600);
  });

  it('formats errors as FILE:LINE: [section] key: reason', () => {
    expect(formatConfigError(fails('[node]\nid=1\nport = x\n'))).to.match(/^\/etc\/mxfs\/test\.conf:3: \[node\] port: /);
    expect(formatConfigError(fails(''))).to.equal(`${FILE}: [node]: missing required section [node]`);
    expect(formatConfigError(fails('junk'))).to.match(/^\/etc\/mxfs\/test\.conf:1: malformed line/);
  });

  it('reports an unreadable file as a ConfigError', () => {
    const missing = path.join(os.tmpdir(), `mxfs-no-such-${process.pid}.conf`);
    try {
      loadConfig(missing);
      expect.fail('should throw');
    } catch (e) {
      expect(e).to.be.instanceOf(ConfigError);
      expect((e as ConfigError).message).to.contain(missing).and.contain('ENOENT');
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-cfg-'));
    try {
      expect(() => loadConfig(dir)).to.throw(ConfigError, /EISDIR/);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('throws nothing but ConfigError on garbage input', () => {
    const keys = ['id', 'name', 'address', 'port', 'socket', 'socket_mode', 'kernel', 'tiebreaker', 'device', 'lease_timeout_ms',
      'client_timeout_ms', 'lvb_size', 'syslog', 'level', 'key_file', 'mountpoint'];
    const sections = ['node', 'cluster', 'peer', 'volume', 'timing', 'locking', 'logging', 'bogus'];
    // Plausible lines reach the value and cross-field checks, plain strings exercise the tokenizer.
    const line = fc.oneof(
      fc.string(),
      fc.constantFrom(...sections).map((s) => `[${s}]`),
      fc.tuple(fc.constantFrom(...keys), fc.oneof(fc.string(), fc.nat().map(String), fc.constantFrom('1', '2', '0660', 'yes', '/x', 'a.b', '::1'))).map(([k, v]) => `${k} = ${v}`),
    );
    const check = (text: string) => {
      try {
        parseConfig(text, FILE);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        expect(e.message).to.not.contain('\n');
      }
    };
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), check), { numRuns: 500 });
    fc.assert(fc.property(fc.array(line, { maxLength: 30 }).map((ls) => ls.join('\n')), check), { numRuns: 2000 });
    fc.assert(fc.property(fc.array(line, { maxLength: 30 }).map((ls) => `[node]\nid = 1\n${ls.join('\n')}`), check), { numRuns: 2000 });
  });
});
