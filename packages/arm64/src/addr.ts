/**
 * 64-bit addresses as plain numbers.
 *
 * The walk runs millions of times, so it must not touch BigInt. Every
 * canonical arm64 address fits exactly in a double once folded: the kernel
 * half [0xfff0_0000_0000_0000, 2^64) becomes [0, 2^52) and the user half
 * [0, 2^52) becomes [-2^52, 0). Order is preserved within each half and the
 * kernel half compares above the user half, which is all a bounds check needs.
 * A value in neither half (a return address still carrying its PAC, or
 * garbage read from a stack) folds to NaN, which no range check accepts.
 */

/** A folded 64-bit address (see the module comment). */
export type Addr = number;

export const TWO_32 = 4294967296;
/** High word of the lowest kernel address we can fold: 0xfff0_0000_0000_0000. */
export const KERNEL_HI_BASE = 0xfff00000;
const USER_SPAN = 2 ** 52;
const USER_HI_LIMIT = 0x00100000;

/** Folds the two 32-bit halves of a 64-bit value; NaN if it is not canonical. */
export function foldAddress(hi: number, lo: number): Addr {
  if (hi >= KERNEL_HI_BASE) return (hi - KERNEL_HI_BASE) * TWO_32 + lo;
  if (hi < USER_HI_LIMIT) return hi * TWO_32 + lo - USER_SPAN;
  return Number.NaN;
}

/** True when the folded address lies in the kernel half. */
export function isKernelAddr(a: Addr): boolean {
  return a >= 0;
}

/** The high 32 bits of the 64-bit value a folded address stands for. */
export function addrHi(a: Addr): number {
  // `x >>> 0` is x mod 2^32 for any integer below 2^53, and much cheaper than `%`.
  if (a >= 0) return (a - (a >>> 0)) / TWO_32 + KERNEL_HI_BASE;
  const v = a + USER_SPAN;
  return (v - (v >>> 0)) / TWO_32;
}

/** The low 32 bits of the 64-bit value a folded address stands for. */
export function addrLo(a: Addr): number {
  return (a >= 0 ? a : a + USER_SPAN) >>> 0;
}

/** The 64-bit value as a BigInt (for the edges: parsing, printing, tests). */
export function addrToBigInt(a: Addr): bigint {
  return (BigInt(addrHi(a)) << 32n) | BigInt(addrLo(a));
}

/** Folds a 64-bit BigInt; NaN when it is not canonical. */
export function addrFromBigInt(v: bigint): Addr {
  const u = BigInt.asUintN(64, v);
  return foldAddress(Number(u >> 32n), Number(u & 0xffffffffn));
}

/** Formats a 64-bit value as the kernel prints it: lowercase, 16 hex digits. */
export function hex64(hi: number, lo: number): string {
  return `0x${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`;
}

/** Formats a folded address as `0x` and 16 hex digits; "(non-canonical)" for NaN. */
export function formatAddr(a: Addr): string {
  if (Number.isNaN(a)) return '(non-canonical)';
  return hex64(addrHi(a), addrLo(a));
}

/** The hex form captures and vectors write: `0x` and 1 to 16 digits, either case. */
export const HEX64_PATTERN = /^0x[0-9a-fA-F]{1,16}$/;

/** A hex digit's value, or -1 for any other character code. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20; // 'A'-'F' to 'a'-'f'
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/*
 * One pass over the characters, no regex, no slices, no BigInt: a capture
 * holds 45,000-160,000 of these strings and every start reads them all.
 * The last 8 digits are the low word and the rest the high word, so each
 * half collects at most 8 digits and stays an exact integer below 2^32.
 * The halves land in `parsed`, reused, so parsing allocates nothing.
 */
const parsed = { hi: 0, lo: 0 };

/** Reads `s` into `parsed` when it matches HEX64_PATTERN; false, and `parsed` unspecified, when not. */
function readHex64(s: string): boolean {
  const n = s.length;
  if (n < 3 || n > 18 || s.charCodeAt(0) !== 48 || s.charCodeAt(1) !== 120) return false;
  const split = n > 10 ? n - 8 : 2;
  let hi = 0;
  let lo = 0;
  for (let i = 2; i < n; i++) {
    const d = hexDigit(s.charCodeAt(i));
    if (d < 0) return false;
    if (i < split) hi = hi * 16 + d;
    else lo = lo * 16 + d;
  }
  parsed.hi = hi;
  parsed.lo = lo;
  return true;
}

/**
 * True when `s` is a `0x...` string of 1 to 16 hex digits. The regex, not
 * readHex64: compiled to native code at once, it is the faster check at
 * start, before the JIT has warmed up to the loop.
 */
export function isHex64(s: string): boolean {
  return HEX64_PATTERN.test(s);
}

/** Parses a `0x...` string (as captures and vectors write them) to its two 32-bit halves; null when not hex. */
export function parseHex64(s: string): { hi: number; lo: number } | null {
  return readHex64(s) ? { hi: parsed.hi, lo: parsed.lo } : null;
}

/** Parses a `0x...` string to a folded address; NaN when it is not canonical, null when not hex. */
export function parseAddr(s: string): Addr | null {
  return readHex64(s) ? foldAddress(parsed.hi, parsed.lo) : null;
}
