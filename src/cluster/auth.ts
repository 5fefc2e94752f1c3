/**
 * Cluster-key authentication primitives: loading the shared secret, nonces, and the
 * HMAC-SHA256 proofs both ends of a peer connection exchange (src/cluster/handshake.ts runs
 * the exchange). Owns no messages.
 *
 * proof = HMAC-SHA256(key, "MXFS-peer-auth-v1" | cluster | nonceI | nonceR | idI | idR | direction)
 * where I is the dialing node (initiator), R the accepting node (responder), direction is
 * "initiator" or "responder" (whose proof it is). Binding both nonces, both ids and the
 * direction means a proof cannot be replayed on another connection, reflected back to its
 * author, or used to claim another node id.
 *
 * Once the handshake succeeded, every later frame carries a MAC under a per-connection,
 * per-direction session key derived the same way with another label:
 *
 * sessionKey = HMAC-SHA256(key, "MXFS-peer-session-v1" | cluster | nonceI | nonceR | idI | idR
 *                               | "initiator->responder" or "responder->initiator")
 * frameMac   = first 16 bytes of HMAC-SHA256(sessionKey, u64 BE seq | msgpack payload)
 *
 * Fresh nonces make the keys differ on every connection (frames cannot be replayed onto
 * another one), the direction makes them differ each way (a frame cannot be reflected back
 * to its sender), and the sequence number in the MAC makes a frame valid at one position of
 * its stream only (it cannot be replayed, dropped or reordered within the connection).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { NONCE_BYTES, PROOF_BYTES } from './peer-protocol';
import { hmacSha256, MacKey, macKey } from './hmac-sha256';

export const MIN_KEY_BYTES = 16;

export type ProofDirection = 'initiator' | 'responder';

export interface ProofInput {
  cluster: string;
  initiatorNonce: Buffer;
  responderNonce: Buffer;
  initiatorId: number;
  responderId: number;
}

export function makeNonce(): Buffer { return randomBytes(NONCE_BYTES); }

/** HMAC-SHA256(key, label NUL | u16 len | cluster | nonceI | nonceR | u16 idI | u16 idR | tag). */
function bound(key: Buffer, label: string, p: ProofInput, tag: string): Buffer {
  const h = createHmac('sha256', key);
  const ids = Buffer.alloc(4);
  ids.writeUInt16BE(p.initiatorId, 0);
  ids.writeUInt16BE(p.responderId, 2);
  const cluster = Buffer.from(p.cluster, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(cluster.length, 0);
  h.update(label + '\0');
  h.update(len); h.update(cluster);                  // length-prefixed: no ambiguity
  h.update(p.initiatorNonce); h.update(p.responderNonce);
  h.update(ids);
  h.update(tag);
  return h.digest();
}

export function computeProof(key: Buffer, p: ProofInput, direction: ProofDirection): Buffer {
  return bound(key, 'MXFS-peer-auth-v1', p, direction);
}

/** Constant-time check of a received proof. */
export function verifyProof(key: Buffer, p: ProofInput, direction: ProofDirection, received: Buffer): boolean {
  const expected = computeProof(key, p, direction);
  return received.length === PROOF_BYTES && timingSafeEqual(expected, received);
}

/** The two MAC keys of one connection, as seen by one end. */
export interface SessionKeys {
  /** Key of the frames this end sends. */
  send: Buffer;
  /** Key of the frames this end receives. */
  recv: Buffer;
}

/** Bytes of the MAC that ends every frame after the handshake (truncated HMAC-SHA256). */
export const FRAME_MAC_BYTES = 16;

/** The session keys of the end playing `role` on the connection the handshake `p` opened. */
export function sessionKeys(key: Buffer, p: ProofInput, role: ProofDirection): SessionKeys {
  const iToR = bound(key, 'MXFS-peer-session-v1', p, 'initiator->responder');
  const rToI = bound(key, 'MXFS-peer-session-v1', p, 'responder->initiator');
  return role === 'initiator' ? { send: iToR, recv: rToI } : { send: rToI, recv: iToR };
}

const seqBytes = Buffer.alloc(8);

/**
 * The session keys made ready for hmacSha256 (its padded-key states), once per key: a
 * connection's keys live as long as it does and are never changed after the handshake.
 */
const ready = new WeakMap<Buffer, MacKey>();

/** MAC of the frame at position `seq` of a direction: HMAC-SHA256(dirKey, u64 BE seq | payload), truncated. */
export function frameMac(dirKey: Buffer, seq: number, payload: Buffer): Buffer {
  seqBytes.writeUInt32BE(Math.floor(seq / 0x100000000), 0);
  seqBytes.writeUInt32BE(seq >>> 0, 4);
  let k = ready.get(dirKey);
  if (!k) ready.set(dirKey, (k = macKey(dirKey)));
  return hmacSha256(k, seqBytes, payload, FRAME_MAC_BYTES);
}

/**
 * Checks a received frame payload (msgpack bytes, then the MAC) expected at position `seq`
 * (constant-time compare). Returns the msgpack bytes, or undefined if the MAC is wrong or missing.
 */
export function openFrame(dirKey: Buffer, seq: number, frame: Buffer): Buffer | undefined {
  if (frame.length <= FRAME_MAC_BYTES) return undefined;
  const payload = frame.subarray(0, frame.length - FRAME_MAC_BYTES);
  return timingSafeEqual(frameMac(dirKey, seq, payload), frame.subarray(frame.length - FRAME_MAC_BYTES)) ? payload : undefined;
}

/**
 * Reads the cluster key file: its bytes with one trailing newline removed. Refuses, with
 * one line naming the file and the fix, a file that is missing, that group or others may
 * access (as sshd refuses a loose private key), or a key shorter than MIN_KEY_BYTES.
 */
export function loadClusterKey(file: string): Buffer {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`cluster key file ${file} does not exist: create it on one node with 'mxfsctl keygen --out ${file}' and copy it to every node (mode 0600)`);
    throw new Error(`cluster key file ${file}: ${code ?? (e as Error).message}`);
  }
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`cluster key file ${file} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}): run 'chmod 600 ${file}'`);
  }
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (e) {
    throw new Error(`cluster key file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (key.length > 0 && key[key.length - 1] === 0x0a) key = key.subarray(0, key.length - (key.length > 1 && key[key.length - 2] === 0x0d ? 2 : 1));
  if (key.length < MIN_KEY_BYTES) throw new Error(`cluster key file ${file} holds ${key.length} bytes; at least ${MIN_KEY_BYTES} are required ('mxfsctl keygen' writes ${KEYGEN_BYTES * 2})`);
  return key;
}

/** Random bytes in a generated key (written as hex: 64 characters). */
export const KEYGEN_BYTES = 32;

/** A new cluster key, as the text of a key file. */
export function generateClusterKey(): string {
  return randomBytes(KEYGEN_BYTES).toString('hex') + '\n';
}
