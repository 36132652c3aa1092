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

/** High word of `GENMASK(63, vaBits)`: `ptrauth_kernel_pac_mask()`. */
export function pacKernelMask(vaBits: number): number {
  return (0xffffffff << (vaBits - 32)) >>> 0;
}

/** High word of `GENMASK(54, vaBits)`: `ptrauth_user_pac_mask()` (TBI keeps bits 63..56). */
export function pacUserMask(vaBits: number): number {
  return (pacKernelMask(vaBits) & 0x007fffff) >>> 0;
}

/**
 * The high word after stripping the PAC from an instruction pointer, as
 * both kernels do it: 6.1's `ptrauth_strip_insn_pac` by masks, mainline's
 * `ptrauth_strip_kernel_insn_pac` with XPACLRI (arch/arm64/include/asm/
 * compiler.h). Bit 55 picks the half either way: set, the kernel mask is
 * ORed in (TCR_EL1.TBI1 is clear, so the top byte is PAC too); clear, the
 * PAC bits below the top byte are cleared and the top byte is kept
 * (TCR_EL1.TBI0 is set and TBID0 is not: arch/arm64/mm/proc.S), so a
 * value with bit 55 clear never becomes a kernel address. Allocation-free.
 */
export function stripInsnPacHi(hi: number, kernelMask: number, userMask: number): number {
  return (hi & 0x00800000 ? hi | kernelMask : hi & ~userMask) >>> 0;
}

/** `stripInsnPacHi` with the low word, folded (NaN when the result is not canonical). */
export function stripInsnPac(hi: number, lo: number, kernelMask: number, userMask: number): Addr {
  return foldAddress(stripInsnPacHi(hi, kernelMask, userMask), lo);
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
  const field = pacKernelMask(vaBits) & ~0x00800000;
  const signed = (hi & ~field) | (h & field);
  // A PAC equal to the stripped bits would be indistinguishable from none.
  return (signed === hi ? signed ^ (0x01000000 & field) : signed) >>> 0;
}
