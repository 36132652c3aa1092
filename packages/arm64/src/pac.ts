import { type Addr, foldAddress } from './addr.js';

/**
 * Pointer authentication (CONFIG_ARM64_PTR_AUTH_KERNEL).
 *
 * With TBI off for kernel addresses the PAC occupies every bit above the
 * virtual address size except bit 55, which selects the half (checked on the
 * real captures: bits [63:48] on a 48-bit 6.1 kernel, [63:52] on a 52-bit 7.2
 * kernel). XPACLRI, and so `ptrauth_strip_kernel_insn_pac`, restores those
 * bits to copies of bit 55.
 */

/** Mask of the high-word bits above the VA size: the PAC field plus bit 55. */
export function pacHighMask(vaBits: number): number {
  return (0xffffffff << (vaBits - 32)) >>> 0;
}

/**
 * XPACLRI on a 64-bit value given as halves: the folded, stripped address.
 * Allocation-free; `highMask` is `pacHighMask(vaBits)`, computed once per kernel.
 */
export function stripPac(hi: number, lo: number, highMask: number): Addr {
  const h = hi & 0x00800000 ? (hi | highMask) >>> 0 : (hi & ~highMask) >>> 0;
  return foldAddress(h, lo);
}

/** The high word after XPACLRI (for callers that need the raw bits, not the folded address). */
export function stripPacHi(hi: number, highMask: number): number {
  return hi & 0x00800000 ? (hi | highMask) >>> 0 : (hi & ~highMask) >>> 0;
}

/**
 * A deterministic model of PACIASP: signs `hi:lo` with `modifier` (the SP at
 * signing) under `key`, filling the PAC field with a hash of all three. Real
 * PACs are QARMA outputs; nothing in the unwinder depends on the bits, only
 * on stripping them, so any keyed hash that changes the field will do.
 * Returns the signed high word; the low word is unchanged.
 */
export function signPacHi(
  hi: number,
  lo: number,
  modifier: number,
  key: number,
  vaBits: number,
): number {
  let h = Math.imul(lo ^ key, 0x9e3779b1) ^ Math.imul(hi ^ (modifier >>> 0), 0x85ebca77);
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae3d);
  h ^= h >>> 13;
  const field = pacHighMask(vaBits) & ~0x00800000;
  const signed = (hi & ~field) | (h & field);
  // A PAC equal to the stripped bits would be indistinguishable from none.
  return (signed === hi ? signed ^ (0x01000000 & field) : signed) >>> 0;
}
