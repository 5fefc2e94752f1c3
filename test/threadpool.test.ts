/** mxfsd sizes libuv's threadpool before anything uses it (the kernel bridge blocks two of its threads). */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { THREADPOOL_SIZE } from '../src/cli/threadpool';

describe('mxfsd threadpool size', () => {
  const mod = path.join(__dirname, '..', 'src', 'cli', 'threadpool.js');
  const sizeWith = (env: NodeJS.ProcessEnv) => execFileSync(process.execPath, ['-e', `require(${JSON.stringify(mod)}); process.stdout.write(String(process.env.UV_THREADPOOL_SIZE))`], { env }).toString();

  it(`is ${THREADPOOL_SIZE} by default, above the two threads the kernel bridge keeps blocked plus libuv's usual four`, () => {
    const env = { ...process.env };
    delete env.UV_THREADPOOL_SIZE;
    expect(sizeWith(env)).to.equal(String(THREADPOOL_SIZE));
    expect(THREADPOOL_SIZE).to.be.at.least(6);
  });

  it('keeps a size the environment gives', () => {
    expect(sizeWith({ ...process.env, UV_THREADPOOL_SIZE: '3' })).to.equal('3');
  });

  it('is set by the first import of mxfsd, before any module that could use the pool', () => {
    const src = fs.readFileSync(path.join(__dirname, '..', 'src', 'cli', 'mxfsd.js'), 'utf8');
    const firstRequire = /require\("([^"]+)"\)/.exec(src);
    expect(firstRequire?.[1]).to.equal('./threadpool');
  });
});
