/** Tests of src/log.ts: file output and logrotate-style reopen, syslog datagrams (priority
 *  and text) on a real unix datagram socket, an unreachable syslog socket, level override. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import type { LoggingConfig } from '../src/config/config';
import { createLogger, syslogPriority } from '../src/log';
import { DatagramReceiver } from '../src/ffi/unix-datagram';
import { waitFor } from './support/daemon-proc';


const BASE: LoggingConfig = { level: 'info', syslog: false, syslogSocket: '/dev/log', syslogFacility: 'daemon', stderr: false, stderrFormat: 'json' };

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}
const jsonLines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

describe('log', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-log-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('writes JSON lines to the log file', async () => {
    const file = path.join(dir, 'mxfsd.log');
    const h = createLogger({ ...BASE, file }, { name: 'mxfsd' });
    h.log.info({ node: 3 }, 'hello');
    h.log.child({ actor: 'lockspace' }).warn('careful');
    h.log.debug('not at info');
    await h.close();
    const recs = jsonLines(file);
    expect(recs.map((r) => [r.msg, r.level])).to.deep.equal([['hello', 30], ['careful', 40]]);
    expect(recs[0]).to.include({ name: 'mxfsd', node: 3 });
    expect(recs[1].actor).to.equal('lockspace');
  });

  it('reopen() after a rename starts a new file at the original path', async () => {
    const file = path.join(dir, 'mxfsd.log');
    const h = createLogger({ ...BASE, file }, { name: 'mxfsd' });
    h.log.info('before');
    fs.renameSync(file, `${file}.1`);
    h.log.info('still old');  // written to the renamed file until reopen
    h.reopen();
    h.log.info('after');
    await h.close();
    // The old stream flushes asynchronously after reopen(); give it a moment.
    await new Promise((r) => setTimeout(r, 50));
    expect(jsonLines(`${file}.1`).map((r) => r.msg)).to.deep.equal(['before', 'still old']);
    expect(jsonLines(file).map((r) => r.msg)).to.deep.equal(['after']);
  });

  it('a failing reopen warns once and keeps logging to the old file', async () => {
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'mxfsd.log');
    const err = capture();
    const h = createLogger({ ...BASE, file }, { name: 'mxfsd', stderrStream: err.stream });
    fs.renameSync(sub, path.join(dir, 'moved'));
    expect(() => h.reopen()).to.not.throw();
    h.log.info('kept');
    await h.close();
    expect(err.text().trim().split('\n')).to.have.length(1);
    expect(err.text()).to.match(/cannot reopen log file/);
    expect(jsonLines(path.join(dir, 'moved', 'mxfsd.log')).map((r) => r.msg)).to.deep.equal(['kept']);
  });

  it('an unopenable log file fails at startup', () => {
    expect(() => createLogger({ ...BASE, file: path.join(dir, 'no', 'such', 'dir.log') }, { name: 'mxfsd' })).to.throw(/ENOENT/);
  });

  it('sends syslog datagrams with the right priority and text', async () => {
    const sockPath = path.join(dir, 'log.sock');
    const server = new DatagramReceiver(sockPath);
    const got: string[] = [];
    const arrived = (n: number) => waitFor(() => { got.push(...server.receive().map((b) => b.toString('utf8'))); return got.length >= n; }, 20000, `${n} datagrams`);
    try {
      const h = createLogger({ ...BASE, syslog: true, syslogSocket: sockPath, syslogFacility: 'local0' }, { name: 'mxfsd' });
      h.log.child({ actor: 'peer-link' }).warn({ peer: 2 }, 'peer 2 silent');
      await arrived(1);
      h.log.fatal('going down');
      await arrived(2);
      await h.close();
      // local0 = 16; warning = 4 -> 16*8+4 = 132; fatal -> crit = 2 -> 130.
      expect(got[0]).to.match(new RegExp(`^<132>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d mxfsd\\[${process.pid}\\]: peer 2 silent `));
      expect(got[0]).to.contain('"actor":"peer-link"').and.contain('"peer":2');
      expect(got[1]).to.match(/^<130>.*mxfsd\[\d+\]: going down$/);
    } finally {
      server.close();
    }
  });

  it('sends syslog datagrams to an abstract socket address (@name)', async () => {
    const name = `@mxfs-log-test-${process.pid}-${Date.now()}`;
    const server = new DatagramReceiver(name);
    try {
      const h = createLogger({ ...BASE, syslog: true, syslogSocket: name }, { name: 'mxfsd' });
      h.log.info('to the abstract socket');
      const got: string[] = [];
      await waitFor(() => { got.push(...server.receive().map((b) => b.toString('utf8'))); return got.length >= 1; }, 20000, 'a datagram');
      await h.close();
      expect(got[0]).to.match(/^<30>.*mxfsd\[\d+\]: to the abstract socket$/);
    } finally {
      server.close();
    }
  });

  it('writes journal lines ("<N>msg {fields}") to stderr when it is connected to journald', async () => {
    const err = capture();
    const h = createLogger({ ...BASE, stderr: true, stderrFormat: 'auto' }, { name: 'mxfsd', stderrStream: err.stream, stderrIsJournal: true });
    h.log.child({ actor: 'cluster' }).warn({ epoch: 4, members: [1, 2] }, 'cluster view');
    h.log.info('plain');
    await h.close();
    expect(err.text().split('\n').filter((l) => l)).to.deep.equal(['<4>cluster view {"actor":"cluster","epoch":4,"members":[1,2]}', '<6>plain']);
    // Elsewhere (a terminal, a file): raw bunyan JSON, unless stderr_format says otherwise.
    const json = capture();
    const h2 = createLogger({ ...BASE, stderr: true, stderrFormat: 'auto' }, { name: 'mxfsd', stderrStream: json.stream, stderrIsJournal: false });
    h2.log.info({ node: 2 }, 'plain');
    await h2.close();
    expect(JSON.parse(json.text())).to.include({ msg: 'plain', node: 2, level: 30 });
    const forced = capture();
    const h3 = createLogger({ ...BASE, stderr: true, stderrFormat: 'journal' }, { name: 'mxfsd', stderrStream: forced.stream, stderrIsJournal: false });
    h3.log.error('forced');
    await h3.close();
    expect(forced.text()).to.equal('<3>forced\n');
  });

  it('quiet logger: every output but stderr (for start-up failures)', async () => {
    const file = path.join(dir, 'mxfsd.log');
    const err = capture();
    const h = createLogger({ ...BASE, file, stderr: true }, { name: 'mxfsd', stderrStream: err.stream, stderrIsJournal: false });
    h.quiet.fatal({ err: new Error('boom') }, 'cannot start');
    await h.close();
    expect(err.text()).to.equal('');
    expect(jsonLines(file)[0]).to.include({ msg: 'cannot start', level: 60 });
    expect(jsonLines(file)[0].err.stack).to.contain('boom');
  });

  it('maps bunyan levels and facilities to syslog priorities', () => {
    expect(syslogPriority('daemon', 30)).to.equal(3 * 8 + 6);
    expect(syslogPriority('user', 50)).to.equal(8 + 3);
    expect(syslogPriority('local7', 10)).to.equal(23 * 8 + 7);
    expect(syslogPriority('local7', 20)).to.equal(23 * 8 + 7);
  });

  it('a missing syslog socket gives one warning on stderr and no exception', async () => {
    const err = capture();
    const h = createLogger({ ...BASE, syslog: true, syslogSocket: path.join(dir, 'absent.sock') }, { name: 'mxfsd', stderrStream: err.stream });
    expect(() => { for (let i = 0; i < 5; i++) h.log.warn(`line ${i}`); }).to.not.throw();
    await new Promise((r) => setImmediate(r));
    await h.close();
    const warnings = err.text().split('\n').filter((l) => l !== '');
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.contain('absent.sock').and.contain('unreachable');
  });

  it('levelOverride wins over the configured level', async () => {
    const quiet = capture();
    const a = createLogger({ ...BASE, level: 'warn', stderr: true }, { name: 'mxfsd', stderrStream: quiet.stream });
    a.log.info('hidden');
    a.log.warn('shown');
    await a.close();
    expect(quiet.text()).to.not.contain('hidden');
    expect(quiet.text()).to.contain('shown');

    const loud = capture();
    const b = createLogger({ ...BASE, level: 'warn', stderr: true }, { name: 'mxfsd', levelOverride: 'debug', stderrStream: loud.stream });
    b.log.debug('debug line');
    await b.close();
    expect(JSON.parse(loud.text().trim())).to.include({ msg: 'debug line', level: 20 });
  });

  it('serializes errors with the standard serializer', async () => {
    const out = capture();
    const h = createLogger({ ...BASE, stderr: true }, { name: 'mxfsd', stderrStream: out.stream });
    h.log.error({ err: new Error('boom') }, 'failed');
    await h.close();
    expect(JSON.parse(out.text().trim()).err.message).to.equal('boom');
  });
});
