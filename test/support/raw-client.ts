/** Test support: a client socket to mxfsd that speaks frames by hand (for malformed and abusive input). */
import net from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame';
import { waitFor } from './daemon-proc';

export interface RawClient {
  s: net.Socket;
  /** Every message received so far, decoded. */
  msgs: any[];
  isClosed(): boolean;
  send(m: unknown): void;
  /** The reply to request `id` (throws if the connection closes first). */
  reply(id: number, timeoutMs?: number): Promise<any>;
}

export async function rawClient(socket: string): Promise<RawClient> {
  const s = net.createConnection(socket);
  await new Promise((r) => s.once('connect', r));
  const dec = new FrameDecoder(1 << 24);
  const msgs: any[] = [];
  let closed = false;
  s.on('data', (c) => { for (const m of dec.push(c)) msgs.push(m); });
  s.on('close', () => { closed = true; });
  s.on('error', () => {});
  const find = (id: number) => msgs.find((x) => x.type === 'reply' && x.id === id);
  return {
    s, msgs, isClosed: () => closed,
    send: (m) => { s.write(encodeFrame(m, 1 << 24)); },
    async reply(id, timeoutMs = 10000) {
      await waitFor(() => find(id) !== undefined || closed, timeoutMs, `reply ${id}`);
      const m = find(id);
      if (!m) throw new Error(`connection closed before reply ${id}: ${JSON.stringify(msgs.filter((x) => x.type === 'lost'))}`);
      return m;
    },
  };
}
