/**
 * Encoders for the few A64 instructions the simulator writes into its text:
 * calls, returns, the frame-record prologue and epilogue, and the hints that
 * surround them. Each returns the 32-bit little-endian instruction word.
 */

export const NOP = 0xd503201f;
export const PACIASP = 0xd503233f;
export const AUTIASP = 0xd50323bf;
export const BTI_C = 0xd503245f;
/** `mov x29, sp` (an alias of `add x29, sp, #0`). */
export const MOV_X29_SP = 0x910003fd;
/** `ret` (to x30). */
export const RET = 0xd65f03c0;
export const RETAA = 0xd65f0bff;
export const RETAB = 0xd65f0fff;

export class EncodeError extends Error {
  readonly code = 'KLPSIM_ENCODE_RANGE';
}

function reg(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30)
    throw new EncodeError(`x${n} is not a general register`);
  return n;
}

function branchImm26(from: number, to: number): number {
  const delta = to - from;
  if (delta % 4 !== 0 || delta < -(2 ** 27) || delta >= 2 ** 27) {
    throw new EncodeError(`branch offset ${delta} is outside +/-128 MiB or unaligned`);
  }
  return (delta / 4) & 0x3ffffff;
}

/** `bl to`, placed at `from` (both byte offsets in the same numbering). */
export function encodeBl(from: number, to: number): number {
  return (0x94000000 | branchImm26(from, to)) >>> 0;
}

/** `b to`, placed at `from`. */
export function encodeB(from: number, to: number): number {
  return (0x14000000 | branchImm26(from, to)) >>> 0;
}

/** `blr xn`. */
export function encodeBlr(n: number): number {
  return (0xd63f0000 | (reg(n) << 5)) >>> 0;
}

/** `br xn`. */
export function encodeBr(n: number): number {
  return (0xd61f0000 | (reg(n) << 5)) >>> 0;
}

/** `blraa xn, xm` (key A) or `blrab xn, xm` (key B); m = 31 means sp as modifier. */
export function encodeBlra(key: 'a' | 'b', n: number, m: number): number {
  const mm = m === 31 ? 31 : reg(m);
  return ((key === 'a' ? 0xd73f0800 : 0xd73f0c00) | (reg(n) << 5) | mm) >>> 0;
}

/** `blraaz xn` or `blrabz xn` (zero modifier). */
export function encodeBlraz(key: 'a' | 'b', n: number): number {
  return ((key === 'a' ? 0xd63f081f : 0xd63f0c1f) | (reg(n) << 5)) >>> 0;
}

/** `ret xn`. */
export function encodeRet(n = 30): number {
  return (0xd65f0000 | (reg(n) << 5)) >>> 0;
}

/** `stp x29, x30, [sp, #-size]!`: the prologue that pushes a frame record. */
export function encodeStpFramePush(size: number): number {
  if (size % 8 !== 0 || size < 16 || size > 512)
    throw new EncodeError(`frame size ${size} cannot be pre-indexed`);
  const imm7 = (-size / 8) & 0x7f;
  return (0xa9800000 | (imm7 << 15) | (30 << 10) | (31 << 5) | 29) >>> 0;
}

/** `ldp x29, x30, [sp], #size`: the epilogue that pops a frame record. */
export function encodeLdpFramePop(size: number): number {
  if (size % 8 !== 0 || size < 16 || size > 504)
    throw new EncodeError(`frame size ${size} cannot be post-indexed`);
  const imm7 = (size / 8) & 0x7f;
  return (0xa8c00000 | (imm7 << 15) | (30 << 10) | (31 << 5) | 29) >>> 0;
}

function spImm(imm: number): number {
  if (!Number.isInteger(imm) || imm < 0 || imm > 4095)
    throw new EncodeError(`immediate ${imm} does not fit add/sub (imm12)`);
  return imm << 10;
}

function frameSlot(offset: number): number {
  if (offset % 8 !== 0 || offset < -512 || offset > 504)
    throw new EncodeError(`record offset ${offset} cannot be encoded in stp/ldp`);
  return ((offset / 8) & 0x7f) << 15;
}

/** `sub sp, sp, #n` (n > 0) or `add sp, sp, #-n` (n < 0): sp moves down by `n`. */
export function encodeSpDown(n: number): number {
  return ((n >= 0 ? 0xd10003ff : 0x910003ff) | spImm(Math.abs(n))) >>> 0;
}

/** `stp x29, x30, [sp, #offset]`: the record saved below a frame `sub sp` made. */
export function encodeStpFrameAt(offset: number): number {
  return (0xa9000000 | frameSlot(offset) | (30 << 10) | (31 << 5) | 29) >>> 0;
}

/** `ldp x29, x30, [sp, #offset]`. */
export function encodeLdpFrameAt(offset: number): number {
  return (0xa9400000 | frameSlot(offset) | (30 << 10) | (31 << 5) | 29) >>> 0;
}

/** `add x29, sp, #offset` (`mov x29, sp` when 0): x29 at the record. */
export function encodeAddFpSp(offset: number): number {
  return (0x910003fd | spImm(offset)) >>> 0;
}

/** `mov sp, x29` (`add sp, x29, #0`): the epilogue of a frame whose size varied (alloca). */
export const MOV_SP_X29 = 0x910003bf;

/** `sub sp, sp, xn` (extended register, uxtx): a dynamic allocation (alloca, VLA). */
export function encodeSubSpReg(n: number): number {
  return (0xcb2063ff | (reg(n) << 16)) >>> 0;
}

/** `cbz xt, to`, placed at `from`. */
export function encodeCbz(t: number, from: number, to: number): number {
  const delta = to - from;
  if (delta % 4 !== 0 || delta < -(2 ** 20) || delta >= 2 ** 20)
    throw new EncodeError(`branch offset ${delta} is outside +/-1 MiB or unaligned`);
  return (0xb4000000 | (((delta / 4) & 0x7ffff) << 5) | reg(t)) >>> 0;
}
