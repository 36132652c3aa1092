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
 * `ptrauth_strip_kernel_insn_pac` (6.4+): the pointer is known to be a
 * kernel one, so the mask is ORed in whatever bit 55 says. Allocation-free.
 */
export function stripKernelInsnPac(hi: number, lo: number, kernelMask: number): Addr {
  return foldAddress((hi | kernelMask) >>> 0, lo);
}

/**
 * `ptrauth_strip_insn_pac` (before 6.4): bit 55 picks the half; a kernel
 * pointer gets the kernel mask ORed in, a user one loses its PAC bits.
 */
export function stripInsnPac(hi: number, lo: number, kernelMask: number, userMask: number): Addr {
  const h = hi & 0x00800000 ? hi | kernelMask : hi & ~userMask;
  return foldAddress(h >>> 0, lo);
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
