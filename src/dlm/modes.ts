/**
 * The six VMS/DLM lock modes and their rules, as data tables (after fs/dlm's __dlm_compat_matrix).
 */
export enum Mode { NL = 0, CR = 1, CW = 2, PR = 3, PW = 4, EX = 5 }

export const MODE_NAMES = ['NL', 'CR', 'CW', 'PR', 'PW', 'EX'] as const;
export type ModeName = typeof MODE_NAMES[number];

/** COMPAT[a][b] === true when a lock in mode a may be granted alongside one in mode b. */
export const COMPAT: readonly (readonly boolean[])[] = [
  //        NL     CR     CW     PR     PW     EX
  /* NL */ [true,  true,  true,  true,  true,  true ],
  /* CR */ [true,  true,  true,  true,  true,  false],
  /* CW */ [true,  true,  true,  false, false, false],
  /* PR */ [true,  true,  false, true,  false, false],
  /* PW */ [true,  true,  false, false, false, false],
  /* EX */ [true,  false, false, false, false, false],
];

export function compatible(a: Mode, b: Mode): boolean {
  return COMPAT[a]![b]!;
}

/** Modes whose grant bumps the fencing token and whose holder may write the LVB. */
export function isWriteMode(m: Mode): boolean {
  return m === Mode.PW || m === Mode.EX;
}

/**
 * A down-conversion (granted in place at once) lowers the mode, except the PR<->CW
 * "middle" conversions: neither is a subset of the other, so both must queue.
 */
export function isDownConversion(from: Mode, to: Mode): boolean {
  if ((from === Mode.PR && to === Mode.CW) || (from === Mode.CW && to === Mode.PR)) return false;
  return to < from;
}

export function parseMode(s: string): Mode | undefined {
  const i = MODE_NAMES.indexOf(s.toUpperCase() as ModeName);
  return i < 0 ? undefined : (i as Mode);
}

export function modeName(m: Mode): ModeName {
  return MODE_NAMES[m]!;
}

export function isMode(x: unknown): x is Mode {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 5;
}
