/**
 * Unix datagram sockets through libc (koffi): the sending side of syslog (/dev/log) and of
 * systemd's notification socket ($NOTIFY_SOCKET), and a receiving side for tests.
 *
 * Why not a Node module: Node has no AF_UNIX datagram sockets, and the npm `unix-dgram`
 * addon copies the address with strncpy and passes sizeof(sockaddr_un), so it cannot reach
 * an abstract address ("@name", which systemd uses in containers and test harnesses); it
 * also has to be compiled for each Node ABI. koffi is already loaded for libnl and is
 * ABI-stable.
 *
 * Sends are non-blocking (MSG_DONTWAIT): a receiver whose queue is full costs the caller an
 * EAGAIN, never a stalled event loop. Errors are returned as errno names, not thrown.
 */
import koffi from 'koffi';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** struct sockaddr_un: sa_family_t (2 bytes) + sun_path[108]. */
const SUN_PATH_OFFSET = 2;
const SUN_PATH_BYTES = 108;

/** The errno values callers act on, by name (Linux x86_64 / arm64 share them). */
const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 11: 'EAGAIN', 13: 'EACCES', 20: 'ENOTDIR', 22: 'EINVAL', 90: 'EMSGSIZE', 91: 'EPROTOTYPE',
  98: 'EADDRINUSE', 105: 'ENOBUFS', 111: 'ECONNREFUSED',
};
export function errnoName(n: number): string { return ERRNO_NAMES[n] ?? `errno ${n}`; }

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  close(fd: number): number;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  const c = koffi.load('libc.so.6');
  libc = {
    socket: c.func('int socket(int domain, int type, int protocol)'),
    bind: c.func('int bind(int fd, const void *addr, uint32_t len)'),
    sendto: c.func('intptr_t sendto(int fd, const void *buf, uintptr_t len, int flags, const void *addr, uint32_t addrlen)'),
    recv: c.func('intptr_t recv(int fd, void *buf, uintptr_t len, int flags)'),
    close: c.func('int close(int fd)'),
  };
  return libc;
}

/**
 * struct sockaddr_un for `address` and its exact length. A leading '@' names an abstract
 * address: sun_path starts with NUL and the length covers the name only (no trailing NUL),
 * as systemd and the kernel expect.
 */
export function sockaddrUn(address: string): { addr: Buffer; len: number } {
  const abstract = address.startsWith('@');
  const name = Buffer.from(abstract ? address.slice(1) : address, 'utf8');
  const used = abstract ? 1 + name.length : name.length + 1;
  if (name.length === 0 || used > SUN_PATH_BYTES) throw new Error(`unix socket address '${address}' is empty or longer than ${SUN_PATH_BYTES - 1} bytes`);
  const addr = Buffer.alloc(SUN_PATH_OFFSET + SUN_PATH_BYTES);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, SUN_PATH_OFFSET + (abstract ? 1 : 0));
  return { addr, len: SUN_PATH_OFFSET + used };
}

/** An unbound datagram socket that sends to any address (sendto, not connect). */
export class DatagramSender {
  private fd: number;

  /** Throws if libc cannot be loaded or the socket cannot be created. */
  constructor() {
    this.fd = lib().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (this.fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM) failed: ${errnoName(koffi.errno())}`);
  }

  /** Sends one datagram; undefined on success, else the errno name (EAGAIN: receiver full). */
  send(data: Buffer, address: string): string | undefined {
    if (this.fd < 0) return 'EBADF';
    const { addr, len } = sockaddrUn(address);
    const n = lib().sendto(this.fd, data, data.length, MSG_DONTWAIT | MSG_NOSIGNAL, addr, len);
    return n < 0 ? errnoName(koffi.errno()) : undefined;
  }

  close(): void {
    if (this.fd >= 0) lib().close(this.fd);
    this.fd = -1;
  }
}

/**
 * A bound, non-blocking datagram socket (tests: a fake syslog or notification socket).
 * receive() returns the queued datagrams without waiting; callers poll.
 */
export class DatagramReceiver {
  private fd: number;
  private readonly buf = Buffer.alloc(65536);

  constructor(readonly address: string) {
    const c = lib();
    this.fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (this.fd < 0) throw new Error(`socket failed: ${errnoName(koffi.errno())}`);
    const { addr, len } = sockaddrUn(address);
    if (c.bind(this.fd, addr, len) !== 0) {
      const e = errnoName(koffi.errno());
      c.close(this.fd);
      throw new Error(`bind ${address} failed: ${e}`);
    }
  }

  receive(): Buffer[] {
    const out: Buffer[] = [];
    while (this.fd >= 0) {
      const n = lib().recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT);
      if (n < 0) break;
      out.push(Buffer.from(this.buf.subarray(0, Number(n))));
    }
    return out;
  }

  close(): void {
    if (this.fd >= 0) lib().close(this.fd);
    this.fd = -1;
  }
}
