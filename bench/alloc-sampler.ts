/**
 * Preloaded into each daemon by bench/trace-alloc.ts (`node --require dist/bench/alloc-sampler.js`),
 * in its main thread and its worker threads alike: runs V8's sampling heap profiler over a
 * window the bench opens and closes with files in MXFS_ALLOC_DIR, counting every sampled
 * allocation, including objects collected by either garbage collector since (what a message
 * costs, not what stays). Only node's built-ins: it is loaded into other builds' daemons too.
 *
 *   MXFS_ALLOC_DIR/start  appears: sampling starts (every MXFS_ALLOC_INTERVAL bytes, default 2048)
 *   MXFS_ALLOC_DIR/stop   appears: sampling stops; the profile is written to
 *                         MXFS_ALLOC_DIR/<pid>-<threadId>.heapprofile, then <pid>-<threadId>.done
 * It also prints `mxfs-alloc window <pid> <threadId> <start ms> <stop ms>` (performance.now()) to
 * stderr, so the bench can keep only the `--trace-gc-nvp` lines of the window.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector';
import { threadId } from 'node:worker_threads';

const dir = process.env.MXFS_ALLOC_DIR;
if (dir) {
  const interval = Number(process.env.MXFS_ALLOC_INTERVAL ?? 2048);
  const session = new Session();
  session.connect();
  let state: 'idle' | 'sampling' | 'done' = 'idle';
  let t0 = 0;
  const me = `${process.pid}-${threadId}`;
  const poll = setInterval(() => {
    if (state === 'idle' && fs.existsSync(path.join(dir, 'start'))) {
      state = 'sampling';
      t0 = performance.now();
      session.post('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
    } else if (state === 'sampling' && fs.existsSync(path.join(dir, 'stop'))) {
      state = 'done';
      const t1 = performance.now();
      session.post('HeapProfiler.stopSampling', (err, res) => {
        if (!err) fs.writeFileSync(path.join(dir, `${me}.heapprofile`), JSON.stringify(res.profile));
        process.stderr.write(`mxfs-alloc window ${process.pid} ${threadId} ${t0.toFixed(1)} ${t1.toFixed(1)}\n`);
        fs.writeFileSync(path.join(dir, `${me}.done`), err ? String(err) : 'ok');
        clearInterval(poll);
      });
    }
  }, 50);
  poll.unref();
}
