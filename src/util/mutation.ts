/**
 * Mutation testing of the safety checks (scripts/mutation-check.ts, docs/failover-testing.md):
 * MXFS_MUTATION=<name>[,<name>...] switches one safety check OFF, so the script can count how
 * many simulation seeds (or failover runs) it takes until a violation is reported. Read once
 * when the process starts; in production it is unset and every flag below is false, so the
 * guarded code costs one constant check.
 *
 * Never set it outside the mutation check: each name removes a guarantee the lock engine
 * relies on.
 */
const names = new Set((process.env.MXFS_MUTATION ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/** The mutations, by name (the env value), with what each one removes. */
export const MUTATIONS = {
  'older-epoch-drop': 'the lock router accepts lock messages of an older epoch',
  'non-member-drop': 'the lock router accepts lock messages from nodes outside its view',
  'quorum-check': 'the lock router routes and grants without checking canGrant() (the lease)',
  'token-floor': 'fencing tokens restart at the epoch base, ignoring recorded and persisted tokens',
  'reset-stops-resources': 'resource actors of the old epoch keep running after a recovery reset',
} as const;

export type MutationName = keyof typeof MUTATIONS;

for (const n of names) {
  if (!(n in MUTATIONS)) throw new Error(`MXFS_MUTATION: unknown mutation '${n}' (known: ${Object.keys(MUTATIONS).join(', ')})`);
}

/** True where a safety check is switched off (constants for the process's lifetime). */
export const MUTATION = {
  acceptOlderEpoch: names.has('older-epoch-drop'),
  acceptNonMember: names.has('non-member-drop'),
  skipQuorumCheck: names.has('quorum-check'),
  noTokenFloor: names.has('token-floor'),
  keepResourcesAtReset: names.has('reset-stops-resources'),
} as const;
