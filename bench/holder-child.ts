/**
 * A lock holder in its own process, for bench/event-loop.ts: it takes N PR locks on distinct
 * resources and keeps them, so that "the holders kept their locks" measures mxfsd, not a
 * benchmark process busy with its own work (a client whose process stalls past the client
 * timeout gives its locks up, rightly).
 *
 * Parent side: startHolder(socket, prefix, n) resolves once the locks are held; check() says
 * whether the client is still alive and lost none; close() ends it (the daemon purges).
 * Child side: one { socket, prefix, n } message, then 'check' and 'close' messages.
 */
import { fork } from 'node:child_process';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';

export interface Holder { check(): Promise<{ alive: boolean; lost: number }>; close(): Promise<void> }

export function startHolder(socket: string, prefix: string, n: number): Promise<Holder> {
  const child = fork(__filename, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const replies: Array<(m: any) => void> = [];
  child.on('message', (m) => replies.shift()?.(m));
  const ask = (m: unknown) => new Promise<any>((resolve, reject) => {
    replies.push(resolve);
    child.send(m as object);
    child.once('exit', () => reject(new Error('holder process exited')));
  });
  return ask({ socket, prefix, n }).then((r) => {
    if (r.error) { child.kill(); throw new Error(r.error); }
    return {
      check: () => ask('check'),
      close: async () => { await ask('close').catch(() => {}); child.kill(); },
    };
  });
}

if (require.main === module) {
  let c: MxfsClient | undefined;
  let lost = 0;
  // The bench may be gone (it failed, or gave up on this holder): then there is no one to tell.
  const reply = (x: object) => { if (process.connected) process.send!(x, undefined, undefined, () => {}); };
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m: any) => {
    if (m === 'check') { reply({ alive: !!c?.alive, lost }); return; }
    if (m === 'close') { await c?.close(); reply({}); return; }
    try {
      c = await MxfsClient.connect(m.socket, { name: `holder-${m.prefix}` });
      for (let i = 0; i < m.n; i += 200) {
        const hs = await Promise.all(Array.from({ length: Math.min(200, m.n - i) }, (_, j) => c!.lock(`${m.prefix}-${i + j}`, Mode.PR)));
        for (const h of hs) h.once('lost', () => { lost++; });
      }
      reply({ held: m.n });
    } catch (e) {
      reply({ error: (e as Error).message });
    }
  });
}
