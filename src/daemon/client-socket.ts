/**
 * The client socket's listener, created with its final mode and group from the start.
 *
 * A socket file gets its mode from the umask at bind time; a chmod after listen() leaves a
 * window in which anyone the umask allowed may connect. So the socket is bound inside a
 * fresh private directory (mode 0700, beside the final path, same filesystem), given its
 * mode and group there where nobody else can reach it, and then hard-linked to the final
 * path. link(2) fails if that path exists, so two daemons racing for one socket cannot
 * silently replace each other's (as rename would).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Bytes the private bind path adds to the socket's directory: "/.mxfsd-XXXXXX/s". */
export const PRIVATE_BIND_SUFFIX_BYTES = '/.mxfsd-XXXXXX/s'.length;

export interface SocketSpec { path: string; mode: number; gid?: number }

export async function listenClientSocket(server: net.Server, spec: SocketSpec): Promise<void> {
  const dir = path.dirname(spec.path);
  fs.mkdirSync(dir, { recursive: true });
  await removeStaleSocket(spec.path);
  const priv = fs.mkdtempSync(path.join(dir, '.mxfsd-'));
  const bound = path.join(priv, 's');
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bound, () => { server.off('error', reject); resolve(); });
    });
    fs.chmodSync(bound, spec.mode);
    if (spec.gid !== undefined) fs.chownSync(bound, -1, spec.gid);
    try {
      fs.linkSync(bound, spec.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`another mxfsd is already listening on ${spec.path}`);
      throw e;
    }
  } catch (e) {
    server.close();
    throw e;
  } finally {
    fs.rmSync(priv, { recursive: true, force: true });
  }
}

/** Remove a socket file left by a dead daemon; refuse if a live daemon answers on it. */
async function removeStaleSocket(p: string): Promise<void> {
  if (!fs.existsSync(p)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.createConnection(p);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another mxfsd is already listening on ${p}`);
  fs.unlinkSync(p);
}
