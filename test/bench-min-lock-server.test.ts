/**
 * bench/min-lock-server.ts, the reference bench/local-ref.ts measures mxfsd against, must keep
 * answering the MXFS client library (hello, lock, unlock) and must not grant a held name twice:
 * otherwise the reference would be measuring something other than lock+unlock pairs.
 */
import { expect } from 'chai';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { ROOT, tmpDir } from './support/daemon-proc';

describe('bench reference server (min-lock-server)', () => {
  let proc: ChildProcess | undefined;
  let dir = '';
  afterEach(() => {
    proc?.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('grants a free name, refuses a held one, and grants it again after the unlock', async () => {
    dir = tmpDir('mxfs-minref-');
    const socket = path.join(dir, 'ref.sock');
    proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'min-lock-server.js'), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      proc!.stdout!.once('data', () => resolve());
      proc!.once('exit', (c) => reject(new Error(`min-lock-server exited ${c}`)));
    });
    const a = await MxfsClient.connect(socket);
    const b = await MxfsClient.connect(socket);
    try {
      const h = await a.lock('n', Mode.EX);
      let refused = '';
      try { await b.lock('n', Mode.EX, { noqueue: true }); } catch (e) { refused = (e as { code?: string }).code ?? String(e); }
      expect(refused).to.equal('NOTQUEUED');
      await h.unlock();
      const h2 = await b.lock('n', Mode.EX);
      expect(h2.grant.token).to.be.greaterThan(0);
      await h2.unlock();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
