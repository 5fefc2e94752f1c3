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
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { NONCE_BYTES, PROOF_BYTES } from './peer-protocol';

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

export function computeProof(key: Buffer, p: ProofInput, direction: ProofDirection): Buffer {
  const h = createHmac('sha256', key);
  const ids = Buffer.alloc(4);
  ids.writeUInt16BE(p.initiatorId, 0);
  ids.writeUInt16BE(p.responderId, 2);
  const cluster = Buffer.from(p.cluster, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(cluster.length, 0);
  h.update('MXFS-peer-auth-v1\0');
  h.update(len); h.update(cluster);                  // length-prefixed: no ambiguity
  h.update(p.initiatorNonce); h.update(p.responderNonce);
  h.update(ids);
  h.update(direction);
  return h.digest();
}

/** Constant-time check of a received proof. */
export function verifyProof(key: Buffer, p: ProofInput, direction: ProofDirection, received: Buffer): boolean {
  const expected = computeProof(key, p, direction);
  return received.length === PROOF_BYTES && timingSafeEqual(expected, received);
}

/**
 * Reads the cluster key file: its bytes with one trailing newline removed. Refuses a key
 * shorter than MIN_KEY_BYTES; `warnings` lists a file that group/other can read.
 */
export function loadClusterKey(file: string): { key: Buffer; warnings: string[] } {
  const warnings: string[] = [];
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) warnings.push(`cluster key file ${file} is accessible by group/other (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  let key = readFileSync(file);
  if (key.length > 0 && key[key.length - 1] === 0x0a) key = key.subarray(0, key.length - (key.length > 1 && key[key.length - 2] === 0x0d ? 2 : 1));
  if (key.length < MIN_KEY_BYTES) throw new Error(`cluster key file ${file} holds ${key.length} bytes; at least ${MIN_KEY_BYTES} are required`);
  return { key, warnings };
}
