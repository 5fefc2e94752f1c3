/**
 * The npm package as a user gets it: `npm pack` of this tree (the dist/ that `npm test` just
 * built), installed into a scratch project; a strict TypeScript program there compiles
 * against the package's declarations (and a wrong call does not), then starts a node with
 * `mxfs/cluster` (the installed mxfsd) and takes a lock from it with the `mxfs` client; the
 * installed bins run from another directory.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, run, tmpDir } from './support/daemon-proc';

const NPM_TIMEOUT = 180000;

describe('npm package (pack, install, use)', function () {
  this.timeout(300000);
  let scratch: string;
  let pkg: string;

  let tgz: string;

  before(async () => {
    scratch = tmpDir('mxfs-pkg-');
    // --ignore-scripts: pack the dist/ that is here (prepare would rebuild it under running tests).
    const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', scratch], { cwd: ROOT, timeoutMs: NPM_TIMEOUT });
    expect(pack.code, pack.stderr).to.equal(0);
    tgz = path.join(scratch, pack.stdout.trim().split('\n').pop()!);
    const project = path.join(scratch, 'app');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true }));
    // Dependencies come from the npm cache that `npm ci` filled (the registry otherwise).
    const inst = await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tgz], { cwd: project, timeoutMs: NPM_TIMEOUT });
    expect(inst.code, inst.stderr).to.equal(0);
    pkg = project;
  });

  it('ships the built library, declarations, bins and support files, and no tests or sources', () => {
    const root = path.join(pkg, 'node_modules', 'mxfs');
    for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/local-cluster/local-cluster.d.ts', 'dist/src/cli/mxfsd.js',
      'dist/test/scenarios/index.js', 'bin/mxfsd', 'config/mxfs.conf.example', 'kernel/mxfs_main.c', 'kernel/Makefile',
      'packaging/systemd/mxfsd.service', 'LICENSE', 'README.md']) {
      expect(fs.existsSync(path.join(root, f)), f).to.equal(true);
    }
    for (const f of ['src', 'test', 'dist/test/config.test.js', 'dist/src/index.js.map', 'tsconfig.json']) expect(fs.existsSync(path.join(root, f)), f).to.equal(false);
  });

  it("the kernel module's version is the package's version (modinfo of a DKMS build names the release)", async function () {
    // The module's build needs make (CI installs it); a host without it has no module to version.
    if ((await run('sh', ['-c', 'command -v make'])).code !== 0) this.skip();
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
    // kernel/Makefile derives it at build time, here and in the installed package's copy.
    for (const dir of [path.join(ROOT, 'kernel'), path.join(pkg, 'node_modules', 'mxfs', 'kernel')]) {
      const r = await run('make', ['-s', '-C', dir, 'version'], { timeoutMs: 30000 });
      expect(r.stdout.trim(), `${dir}: ${r.stderr}`).to.equal(version);
    }
    expect(fs.readFileSync(path.join(ROOT, 'kernel', 'mxfs_main.c'), 'utf8')).to.match(/^MODULE_VERSION\(MXFS_MODULE_VERSION\);$/m);
  });

  it('a strict TypeScript program compiles against the types, starts a node with mxfs/cluster and takes a lock', async () => {
    const src = path.join(pkg, 'src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(pkg, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noImplicitAny: true,
        exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, outDir: 'dist', rootDir: 'src',
        types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      include: ['src/**/*.ts'],
    }));
    fs.writeFileSync(path.join(src, 'app.ts'), `
import { MxfsClient, Mode, LockError, modeName, type LockHandle, type Grant } from 'mxfs';
import { LocalCluster } from 'mxfs/cluster';

async function main(dir: string): Promise<void> {
  const cluster = await LocalCluster.create(dir, { nodes: 1 });
  await cluster.up();
  try {
    const c: MxfsClient = await MxfsClient.connect(cluster.nodes[0]!.socket, { name: 'scratch-app' });
    const h: LockHandle = await c.lock('inode-42', Mode.EX, { timeoutMs: 5000 });
    h.on('lost', (why: string) => { throw new Error(why); });
    const g: Grant = h.grant;
    try {
      await c.lock('inode-42', Mode.PR, { noqueue: true });
    } catch (e) {
      if (!(e instanceof LockError) || e.code !== 'NOTQUEUED') throw e;
    }
    console.log(JSON.stringify({ mode: modeName(g.mode), token: g.token, valid: h.valid }));
    await h.unlock({ lvb: Buffer.from('v2') });
    await c.close();
  } finally {
    await cluster.down();
  }
}
main(process.argv[2]!).catch((e: unknown) => { console.error(e); process.exit(1); });
`);
    const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
    const build = await run(tsc, ['-p', pkg], { cwd: pkg, timeoutMs: 120000 });
    expect(build.code, build.stdout + build.stderr).to.equal(0);
    const r = await run(process.execPath, [path.join(pkg, 'dist', 'app.js'), path.join(scratch, 'cluster')], { cwd: pkg, timeoutMs: 60000 });
    expect(r.code, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out).to.deep.include({ mode: 'EX', valid: true });
    expect(out.token).to.be.greaterThan(2 ** 32); // boot generation 1: tokens above 1 * 2^32
  });

  it('the declarations are real types: a wrong call does not compile', async () => {
    fs.writeFileSync(path.join(pkg, 'src', 'wrong.ts'), `
import { MxfsClient, Mode } from 'mxfs';
export async function f(c: MxfsClient): Promise<number> {
  const h = await c.lock(42, Mode.EX);
  return h.grant.token;
}
`);
    try {
      const build = await run(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', pkg, '--noEmit'], { cwd: pkg, timeoutMs: 120000 });
      expect(build.code).to.not.equal(0);
      expect(build.stdout).to.match(/wrong\.ts.*Argument of type 'number' is not assignable to parameter of type 'string'/);
    } finally {
      fs.rmSync(path.join(pkg, 'src', 'wrong.ts'));
    }
  });

  it('the installed bins run from any directory', async () => {
    const bin = path.join(pkg, 'node_modules', '.bin');
    const v = await run(path.join(bin, 'mxfsd'), ['--version'], { cwd: '/' });
    expect(v.code, v.stderr).to.equal(0);
    expect(v.stdout).to.equal(`mxfsd ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}\n`);
    const h = await run(path.join(bin, 'mxfsd'), ['--help'], { cwd: '/' });
    expect(h.stdout).to.match(/^usage: mxfsd/);
    for (const b of ['mxfsctl', 'mxfs-cluster', 'mxfs-failover']) {
      const r = await run(path.join(bin, b), ['--help'], { cwd: '/' });
      expect(r.code, `${b}: ${r.stderr}`).to.equal(0);
      expect(r.stdout, b).to.match(new RegExp(`^usage: ${b}`));
    }
    const list = await run(path.join(bin, 'mxfs-failover'), ['list'], { cwd: '/' });
    expect(list.stdout, 'scenarios ship with the package').to.match(/kill-master/);
  });

  it('npm install -g of the tarball (into a private prefix) gives working commands', async () => {
    const prefix = path.join(scratch, 'global');
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tgz], { cwd: scratch, timeoutMs: NPM_TIMEOUT });
    expect(inst.code, inst.stderr).to.equal(0);
    const h = await run(path.join(prefix, 'bin', 'mxfsd'), ['--help'], { cwd: '/' });
    expect(h.code, h.stderr).to.equal(0);
    expect(h.stdout).to.match(/^usage: mxfsd/);
    const k = await run(path.join(prefix, 'bin', 'mxfsctl'), ['keygen'], { cwd: '/' });
    expect(k.stdout).to.match(/^[0-9a-f]{64}\n$/);
  });
});
