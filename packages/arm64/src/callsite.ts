/**
 * "Is the instruction before this return address a call?" on the raw word.
 *
 * This is on the hot path of the `call-site` check, so it classifies the
 * encoding directly instead of disassembling. The masks follow the A64
 * encoding tables; `callsite.test.ts` proves them equal to capstone's
 * decoding over every word of the real kernels' text.
 */

/** The kinds of call an A64 word can be; NONE when it is not a call. */
export const CallKind = { NONE: 0, BL: 1, BLR: 2, BLRA: 3, BLRAZ: 4 } as const;
export type CallKind = (typeof CallKind)[keyof typeof CallKind];

/** Classifies one instruction word. */
export function callKind(word: number): CallKind {
  const w = word >>> 0;
  if ((w & 0xfc000000) >>> 0 === 0x94000000) return CallKind.BL;
  // BLR: op bits [15:10] and [4:0] are zero.
  if ((w & 0xfffffc1f) >>> 0 === 0xd63f0000) return CallKind.BLR;
  // BLRAA / BLRAB xn, xm: bit 10 picks the key.
  if ((w & 0xfffff800) >>> 0 === 0xd73f0800) return CallKind.BLRA;
  // BLRAAZ / BLRABZ xn: Rm is 11111.
  if ((w & 0xfffff81f) >>> 0 === 0xd63f081f) return CallKind.BLRAZ;
  return CallKind.NONE;
}

/** True when `word` is `bl`, `blr`, `blraa`, `blrab`, `blraaz` or `blrabz`. */
export function isCallWord(word: number): boolean {
  return callKind(word) !== CallKind.NONE;
}

/** The mnemonics capstone prints for the call instructions `isCallWord` accepts. */
export const CALL_MNEMONICS: ReadonlySet<string> = new Set([
  'bl',
  'blr',
  'blraa',
  'blrab',
  'blraaz',
  'blrabz',
]);
