/**
 * Imported first by mxfsd: the size of libuv's threadpool, before anything uses it (the pool
 * is made on first use and reads UV_THREADPOOL_SIZE then). The kernel bridge keeps one pool
 * thread blocked per netlink socket it receives on (the channel and the request socket: koffi
 * `.async` calls run on the pool, src/ffi/genl-socket.ts), which would leave two of libuv's
 * default four for file writes (the log) and everything else. Six by default; an explicit
 * UV_THREADPOOL_SIZE in the environment is kept.
 */
export const THREADPOOL_SIZE = 6;
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(THREADPOOL_SIZE);
