/**
 * A connected pair of Unix stream sockets (socketpair(2), through koffi), for a byte stream
 * between two threads of this process: each side opens its end as a net.Socket ({ fd }).
 * The cluster worker's thread pipe uses it (thread-pipe.ts, cluster-worker.ts): a write wakes
 * the other thread through its event loop's poll, with no lock held across the wake-up —
 * unlike a MessagePort, whose sender signals the receiver while holding the queue's mutex,
 * so a receiver woken on the other CPU often sleeps once more on that mutex (measured:
 * docs/benchmarks.md, "Remote pair across builds"). Both ends are close-on-exec.
 */
import koffi from 'koffi';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;

type SocketPairFn = (domain: number, type: number, protocol: number, sv: Int32Array) => number;
let socketpair: SocketPairFn | undefined;

/** The two descriptors, or why there are none (not Linux, no libc, a failed call). */
export function socketPair(): { fds: [number, number] } | { error: string } {
  try {
    socketpair ??= koffi.load('libc.so.6').func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)') as unknown as SocketPairFn;
    const sv = new Int32Array([-1, -1]); // the two ints socketpair(2) writes, in memory of our own
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) !== 0 || sv[0]! < 0 || sv[1]! < 0) return { error: 'socketpair(2) failed' };
    return { fds: [sv[0]!, sv[1]!] };
  } catch (e) {
    return { error: `socketpair(2) unavailable: ${(e as Error).message}` };
  }
}
