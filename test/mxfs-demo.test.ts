/**
 * `npm start` (mxfs-demo) stopped the way the README says: Ctrl-C, i.e. SIGINT to the
 * terminal's whole foreground process group (as `timeout -s INT` sends it too). The daemons
 * must not get it: they would shut down under workers still running, and the demo reported a
 * worker's failed request as a safety violation and exited 1.
 */
import { expect } from 'chai';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, run, tmpDir } from './support/daemon-proc';

const DEMO = path.join(ROOT, 'bin', 'mxfs-demo');

/** Field 5 of /proc/PID/stat: the process group. */
const pgidOf = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
};
const childrenOf = (pid: number) =>
  fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number);
const exists = (pid: number) => fs.existsSync(`/proc/${pid}`);

describe('mxfs-demo (npm start)', function () {
  this.timeout(180000);
  let demo: ChildProcess | undefined;
  afterEach(() => { if (demo && demo.exitCode === null && demo.signalCode === null) process.kill(-demo.pid!, 'SIGKILL'); });

  it('a bad argument is one line naming it and the usage, exit 2 (no stack trace, nothing started)', async () => {
    for (const [args, msg] of [
      [['--bogus'], /^mxfs-demo: Unknown option '--bogus'\nusage: mxfs-demo /],
      [['--seconds'], /^mxfs-demo: Option '--seconds <value>' argument missing\nusage: mxfs-demo /],
      [['--seconds', 'abc'], /^mxfs-demo: --seconds wants a positive number\nusage: mxfs-demo /],
    ] as Array<[string[], RegExp]>) {
      const r = await run(process.execPath, [DEMO, ...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(msg);
      expect(r.stderr, args.join(' ')).to.not.match(/\n\s+at /);
    }
  });

  it('Ctrl-C (SIGINT to its process group) stops it cleanly: exit 0, no violation, no failure, nothing left behind', async () => {
    const tmp = tmpDir('mxfs-demo-test-');
    // detached: the demo leads a group of its own, as a shell's foreground job does.
    demo = spawn(process.execPath, [DEMO, '--plain'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
    let out = '';
    let err = '';
    demo.stdout!.on('data', (d) => { out += d; });
    demo.stderr!.on('data', (d) => { err += d; });
    const exited = new Promise<number | null>((r) => demo!.once('exit', (code) => r(code)));
    // Until the workers have done some lock/unlock cycles (the view is printed every 2 s).
    await new Promise<void>((resolve, reject) => {
      const check = () => { if (/workers \(lock\+unlock cycles\):.* [1-9]/.test(out)) { demo!.stdout!.off('data', check); resolve(); } };
      demo!.stdout!.on('data', check);
      demo!.once('exit', () => reject(new Error(`demo exited early: ${out}\n${err}`)));
    });
    const daemons = childrenOf(demo.pid!);
    expect(daemons, 'three mxfsd children').to.have.length(3);
    for (const pid of daemons) expect(pgidOf(pid), `mxfsd ${pid} outside the demo's process group`).to.not.equal(pgidOf(demo.pid!));

    process.kill(-demo.pid!, 'SIGINT');
    const code = await exited;
    expect(out, err).to.match(/mxfs-demo: stopped\. \d+ lock\/unlock cycles, 0 safety violations\.\n$/);
    expect(code, out).to.equal(0);
    for (const pid of daemons) expect(exists(pid), `mxfsd ${pid} stopped`).to.equal(false);
    expect(fs.readdirSync(tmp), 'its temporary directory removed').to.deep.equal([]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
