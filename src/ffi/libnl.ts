/**
 * koffi bindings to libnl-3 / libnl-genl-3 (Debian libnl-3-200, libnl-genl-3-200, loaded by
 * soname) and the libc calls libnl does not wrap (setsockopt, for receive timeouts and
 * extended acks; getsockopt, for the receive buffer's size and use; sysconf, the page size). Loaded lazily: a daemon without libnl still starts and reports why the
 * kernel bridge cannot run. Pointers are koffi 3 BigInt addresses.
 */
import koffi, { type KoffiFunc, type LibraryHandle, type TypeObject } from 'koffi';

export type Ptr = bigint;

/** libnl's negative error codes (netlink/errno.h) used by the bridge. */
export const NLE = { AGAIN: 4, NOMEM: 5, OBJ_NOTFOUND: 12, PERM: 28 } as const;

/** nl_cb_type / nl_cb_kind / callback return actions (netlink/handlers.h). */
export const NL_CB_MSG_IN = 5;
export const NL_CB_CUSTOM = 3;
export const NL_OK = 0;
export const NL_SKIP = 1;

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20; // SO_RCVTIMEO_OLD: struct timeval on x86_64
const SO_MEMINFO = 55;
const _SC_PAGESIZE = 30;
const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const NETLINK_CAP_ACK = 10;

export interface LibNl {
  nl_socket_alloc(): Ptr | null;
  nl_socket_free(sk: Ptr): void;
  nl_socket_disable_seq_check(sk: Ptr): void;
  nl_socket_modify_cb(sk: Ptr, type: number, kind: number, cb: Ptr, arg: Ptr | null): number;
  nl_socket_get_fd(sk: Ptr): number;
  nl_socket_get_local_port(sk: Ptr): number;
  nl_socket_add_membership(sk: Ptr, group: number): number;
  nl_socket_set_buffer_size(sk: Ptr, rx: number, tx: number): number;
  nl_recvmsgs_default: KoffiFunc<(sk: Ptr) => number>;
  nl_send_auto(sk: Ptr, msg: Ptr): number;
  nl_geterror(err: number): string;
  nlmsg_alloc(): Ptr | null;
  nlmsg_free(msg: Ptr): void;
  nlmsg_hdr(msg: Ptr): Ptr;
  nla_put(msg: Ptr, type: number, len: number, data: Buffer | null): number;
  genl_connect(sk: Ptr): number;
  genl_ctrl_resolve(sk: Ptr, name: string): number;
  genl_ctrl_resolve_grp(sk: Ptr, family: string, group: string): number;
  genlmsg_put(msg: Ptr, port: number, seq: number, family: number, hdrlen: number, flags: number, cmd: number, version: number): Ptr | null;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  /** `len` is a 4-byte Buffer (socklen_t in/out). */
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: Buffer): number;
  sysconf(name: number): number;
  /** The callback type for nl_socket_modify_cb (int cb(struct nl_msg *, void *)). */
  RecvCallback: TypeObject;
}

let cached: LibNl | undefined;
let loadError: Error | undefined;

/** Loads libnl once; throws a clear error (kept for later calls) if it is not installed. */
export function libnl(): LibNl {
  if (cached) return cached;
  if (loadError) throw loadError;
  try {
    const nl = koffi.load('libnl-3.so.200');
    const genl = koffi.load('libnl-genl-3.so.200');
    const libc = koffi.load('libc.so.6');
    const RecvCallback = koffi.proto('int mxfs_nl_recvmsg_cb(void *msg, void *arg)');
    const f = (lib: LibraryHandle, decl: string) => lib.func(decl);
    cached = {
      nl_socket_alloc: f(nl, 'void *nl_socket_alloc(void)'),
      nl_socket_free: f(nl, 'void nl_socket_free(void *sk)'),
      nl_socket_disable_seq_check: f(nl, 'void nl_socket_disable_seq_check(void *sk)'),
      nl_socket_modify_cb: nl.func('nl_socket_modify_cb', 'int', ['void *', 'int', 'int', koffi.pointer(RecvCallback), 'void *']),
      nl_socket_get_fd: f(nl, 'int nl_socket_get_fd(void *sk)'),
      nl_socket_get_local_port: f(nl, 'uint32_t nl_socket_get_local_port(void *sk)'),
      nl_socket_add_membership: f(nl, 'int nl_socket_add_membership(void *sk, int group)'),
      nl_socket_set_buffer_size: f(nl, 'int nl_socket_set_buffer_size(void *sk, int rx, int tx)'),
      nl_recvmsgs_default: f(nl, 'int nl_recvmsgs_default(void *sk)') as KoffiFunc<(sk: Ptr) => number>,
      nl_send_auto: f(nl, 'int nl_send_auto(void *sk, void *msg)'),
      nl_geterror: f(nl, 'const char *nl_geterror(int err)'),
      nlmsg_alloc: f(nl, 'void *nlmsg_alloc(void)'),
      nlmsg_free: f(nl, 'void nlmsg_free(void *msg)'),
      nlmsg_hdr: f(nl, 'void *nlmsg_hdr(void *msg)'),
      nla_put: f(nl, 'int nla_put(void *msg, int type, int len, const void *data)'),
      genl_connect: f(genl, 'int genl_connect(void *sk)'),
      genl_ctrl_resolve: f(genl, 'int genl_ctrl_resolve(void *sk, const char *name)'),
      genl_ctrl_resolve_grp: f(genl, 'int genl_ctrl_resolve_grp(void *sk, const char *family, const char *grp)'),
      genlmsg_put: f(genl, 'void *genlmsg_put(void *msg, uint32_t port, uint32_t seq, int family, int hdrlen, int flags, uint8_t cmd, uint8_t version)'),
      setsockopt: f(libc, 'int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
      getsockopt: f(libc, 'int getsockopt(int fd, int level, int name, void *value, void *len)'),
      sysconf: f(libc, 'long sysconf(int name)'),
      RecvCallback,
    };
    return cached;
  } catch (e) {
    loadError = new Error(`libnl not available (install libnl-3-200 libnl-genl-3-200): ${(e as Error).message}`);
    throw loadError;
  }
}

/** Sets SO_RCVTIMEO so a blocking receive returns every `ms` (lets a receive loop stop). */
export function setReceiveTimeout(lib: LibNl, fd: number, ms: number): void {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  if (lib.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, tv.length) !== 0) {
    throw new Error(`setsockopt(SO_RCVTIMEO) failed: errno ${koffi.errno()}`);
  }
}

/** Asks the kernel for extended acks (error strings, missing attribute) and capped echoes. */
export function enableExtAck(lib: LibNl, fd: number): void {
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  lib.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
  lib.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
}

/** Copies a received struct nl_msg (pointer from the callback) into a Buffer. */
export function copyNlMsg(lib: LibNl, msg: Ptr): Buffer {
  const hdr = lib.nlmsg_hdr(msg);
  const len = koffi.decode(hdr, 'uint32_t') as number;
  return Buffer.from(new Uint8Array(koffi.view(hdr, len)));
}

function intOption(lib: LibNl, fd: number, name: number, bytes: number): Buffer {
  const v = Buffer.alloc(bytes);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(bytes);
  if (lib.getsockopt(fd, SOL_SOCKET, name, v, len) !== 0) throw new Error(`getsockopt(${name}) failed: errno ${koffi.errno()}`);
  return v;
}

/** The receive buffer's size as the kernel accounts it (sk_rcvbuf: twice what was set). */
export function receiveBufferBytes(lib: LibNl, fd: number): number {
  return intOption(lib, fd, SO_RCVBUF, 4).readInt32LE(0);
}

/** Bytes queued in the socket's receive buffer now (SO_MEMINFO's SK_MEMINFO_RMEM_ALLOC). */
export function receiveQueuedBytes(lib: LibNl, fd: number): number {
  return intOption(lib, fd, SO_MEMINFO, 36).readUInt32LE(0);
}

export function pageSize(lib: LibNl): number {
  const n = Number(lib.sysconf(_SC_PAGESIZE));
  return n > 0 ? n : 4096;
}
