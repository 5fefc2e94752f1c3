/**
 * Reading an accepted socket into one reused buffer.
 *
 * net.connect's documented `onread` option makes a socket read every chunk into a buffer the
 * caller supplies and hands it to a callback, instead of allocating a buffer per read and
 * pushing it through the stream's 'data' machinery. Node 20 offers it only for sockets the
 * process creates itself (`net.connect`, `new net.Socket`), not for the sockets a net.Server
 * accepts. readIntoBuffer gives an accepted socket the same behaviour by setting what the
 * `onread` option sets on a new socket: the socket's own kBuffer / kBufferCb fields (found by
 * their symbols' descriptions) and its handle's useUserBuffer(). Node's read path then calls
 * `onRead(n, buffer)` for each read, and pause()/resume() keep working (net.Socket handles
 * them for such sockets). The server must be created with `pauseOnConnect: true`, so nothing
 * is read before this is set up.
 *
 * If those internals are not there (another Node version), the socket is read through 'data'
 * events instead and `onRead` gets each chunk (then a buffer of its own) the same way; the
 * caller sees no difference but the cost. The bytes passed to onRead are valid only during the
 * call in both cases (FrameDecoder.pushRawTransient).
 */
import type net from 'node:net';

/** Returns true if the socket reads into `buffer`, false if it fell back to 'data' events. */
export function readIntoBuffer(sock: net.Socket, buffer: Buffer, onRead: (n: number, buf: Buffer) => boolean): boolean {
  const s = sock as unknown as Record<symbol, unknown> & { _handle?: { useUserBuffer?: (b: Uint8Array) => void } };
  const syms = Object.getOwnPropertySymbols(sock);
  const kBuffer = syms.find((x) => x.description === 'kBuffer');
  const kBufferCb = syms.find((x) => x.description === 'kBufferCb');
  const handle = s._handle;
  const fast = kBuffer !== undefined && kBufferCb !== undefined && s[kBuffer] === null && typeof handle?.useUserBuffer === 'function';
  if (fast) {
    s[kBuffer] = buffer;
    s[kBufferCb] = onRead;
    handle.useUserBuffer!(buffer);
  } else {
    sock.on('data', (chunk: Buffer) => { onRead(chunk.length, chunk); });
  }
  sock.resume();
  return fast;
}
