import { CallKind, callKind } from '@klpsim/arm64';

/**
 * Our own A64 decoder for what matters to a frame: which instructions build
 * and tear down the frame record, move sp or x29, sign or authenticate LR,
 * and transfer control. Everything else is `other`, with the general
 * registers it may write (a bit mask, bit 31 = sp) so that a stray write to
 * x29, x30 or sp is never missed. The masks follow the A64 encoding index
 * (Arm ARM, "A64 instruction set encoding"); where a class is ambiguous the
 * decoder errs towards "may write", which can only make the analysis refuse,
 * never guess. `decode.test.ts` checks it against capstone on the real
 * kernels' text.
 */

/** Register numbers as the encodings use them. */
export const FP = 29;
export const LR = 30;
/** Bit of `writes` that stands for sp (register field 31 where it means sp). */
export const SP_BIT = 1 << 31;

/** How a load/store addresses memory: `[sp, #imm]!`, `[sp], #imm` or `[sp, #imm]`. */
export type IndexMode = 'pre' | 'post' | 'offset';

/** The frame-relevant meaning of one instruction word. */
export type FrameInsn =
  /** `stp x29, x30, [sp, ...]`: saves the frame record. */
  | { readonly kind: 'stp-fp-lr'; readonly mode: IndexMode; readonly imm: number }
  /** `ldp x29, x30, [sp, ...]`: restores it. */
  | { readonly kind: 'ldp-fp-lr'; readonly mode: IndexMode; readonly imm: number }
  /** `str x30, [sp, ...]`: LR saved alone, with no record. */
  | { readonly kind: 'str-lr'; readonly mode: IndexMode; readonly imm: number }
  /** `ldr x30, [sp, ...]`. */
  | { readonly kind: 'ldr-lr'; readonly mode: IndexMode; readonly imm: number }
  /** `add/sub sp, sp, #imm`: delta is what is added to sp. */
  | { readonly kind: 'sp-adjust'; readonly delta: number }
  /** `mov x29, sp` / `add x29, sp, #imm`. */
  | { readonly kind: 'fp-from-sp'; readonly imm: number }
  /** `mov sp, x29` / `add/sub sp, x29, #imm`. */
  | { readonly kind: 'sp-from-fp'; readonly imm: number }
  /** `mov x9, x30`: the patchable function entry's copy of LR for the ftrace call that follows. */
  | { readonly kind: 'mov-x9-lr' }
  /** `paciasp`/`pacibsp`/`paciaz`/`pacibz`: LR gets a PAC. */
  | { readonly kind: 'pac-sign'; readonly key: 'a' | 'b' }
  /** `autiasp`/`autibsp`/`autiaz`/`autibz`: LR's PAC checked and removed. */
  | { readonly kind: 'pac-auth'; readonly key: 'a' | 'b' }
  /** `xpaclri`: LR's PAC stripped without a check. */
  | { readonly kind: 'pac-strip' }
  /** `bti`, `nop` and other hints with no effect on the frame. */
  | { readonly kind: 'hint'; readonly bti: 'c' | 'j' | 'jc' | null }
  /** `ret`/`retaa`/`retab` (through `reg`; `key` set for the authenticating forms). */
  | { readonly kind: 'ret'; readonly reg: number; readonly key: 'a' | 'b' | null }
  /** `b target` (a byte offset from this instruction). */
  | { readonly kind: 'b'; readonly offset: number }
  /** `b.cond`, `cbz`, `cbnz`, `tbz`, `tbnz`: taken or falls through. */
  | { readonly kind: 'b-cond'; readonly offset: number }
  /** `bl target`. */
  | { readonly kind: 'bl'; readonly offset: number }
  /** `blr`, `blraa`, `blrab`, `blraaz`, `blrabz`. */
  | { readonly kind: 'blr' }
  /** `br`, `braa`, `brab`, `braaz`, `brabz`. */
  | { readonly kind: 'br'; readonly reg: number }
  /** `brk #imm`. */
  | { readonly kind: 'brk'; readonly imm: number }
  /** `udf`, `eret`, `eretaa/ab`, `drps`: control never comes back to the next word. */
  | { readonly kind: 'stop' }
  /** Anything else: the general registers (and sp) it may write, and sp's change when known. */
  | { readonly kind: 'other'; readonly writes: number; readonly spDelta: number };

const SIGN_HINTS: Readonly<Record<number, 'a' | 'b'>> = { 24: 'a', 25: 'a', 26: 'b', 27: 'b' };
const AUTH_HINTS: Readonly<Record<number, 'a' | 'b'>> = { 28: 'a', 29: 'a', 30: 'b', 31: 'b' };
const BTI_HINTS: Readonly<Record<number, 'c' | 'j' | 'jc'>> = { 34: 'c', 36: 'j', 38: 'jc' };
const MOV_X9_X30 = 0xaa1e03e9;

/** Sign-extends the low `bits` bits of `v`. */
function sext(v: number, bits: number): number {
  const shift = 32 - bits;
  return (v << shift) >> shift;
}

function bit(r: number): number {
  return r === 31 ? 0 : 1 << r;
}

const OTHER_NONE: FrameInsn = { kind: 'other', writes: 0, spDelta: 0 };

/** Decodes one little-endian instruction word; never fails (unknown words are `other`). */
export function decodeFrameInsn(word: number): FrameInsn {
  const w = word >>> 0;
  const op0 = (w >>> 25) & 0xf;
  if ((op0 & 0b1110) === 0b1010) return decodeBranchSystem(w);
  if ((op0 & 0b1110) === 0b1000) return decodeDataImm(w);
  if ((op0 & 0b0101) === 0b0100) return decodeLoadStore(w);
  if ((op0 & 0b0111) === 0b0101) return decodeDataReg(w);
  if ((op0 & 0b0111) === 0b0111) return decodeSimd(w);
  // op0 = 0000: UDF (and the reserved/SME space, which a kernel never runs).
  if ((w & 0xffff0000) >>> 0 === 0) return { kind: 'stop' };
  return OTHER_NONE;
}

function decodeBranchSystem(w: number): FrameInsn {
  if ((w & 0x7c000000) >>> 0 === 0x14000000) {
    const offset = sext(w & 0x3ffffff, 26) * 4;
    return (w & 0x80000000) >>> 0 !== 0 ? { kind: 'bl', offset } : { kind: 'b', offset };
  }
  if ((w & 0xff000000) >>> 0 === 0x54000000)
    return { kind: 'b-cond', offset: sext((w >>> 5) & 0x7ffff, 19) * 4 };
  if ((w & 0x7e000000) >>> 0 === 0x34000000)
    return { kind: 'b-cond', offset: sext((w >>> 5) & 0x7ffff, 19) * 4 };
  if ((w & 0x7e000000) >>> 0 === 0x36000000)
    return { kind: 'b-cond', offset: sext((w >>> 5) & 0x3fff, 14) * 4 };
  if ((w & 0xfe000000) >>> 0 === 0xd6000000) return decodeBranchReg(w);
  if ((w & 0xff000000) >>> 0 === 0xd4000000) {
    if ((w & 0xffe0001f) >>> 0 === 0xd4200000) return { kind: 'brk', imm: (w >>> 5) & 0xffff };
    // svc/hvc/smc return to the next word; hlt/dcps are for debuggers.
    return OTHER_NONE;
  }
  if ((w & 0xfffff01f) >>> 0 === 0xd503201f) {
    const hint = (w >>> 5) & 0x7f;
    const sign = SIGN_HINTS[hint];
    if (sign !== undefined) return { kind: 'pac-sign', key: sign };
    const auth = AUTH_HINTS[hint];
    if (auth !== undefined) return { kind: 'pac-auth', key: auth };
    if (hint === 7) return { kind: 'pac-strip' };
    return { kind: 'hint', bti: BTI_HINTS[hint] ?? null };
  }
  // mrs and sysl write their Rt; every other system instruction writes no general register.
  if ((w & 0xfff00000) >>> 0 === 0xd5300000 || (w & 0xfff80000) >>> 0 === 0xd5280000)
    return { kind: 'other', writes: bit(w & 31), spDelta: 0 };
  return OTHER_NONE;
}

function decodeBranchReg(w: number): FrameInsn {
  const opc = (w >>> 21) & 0xf;
  const rn = (w >>> 5) & 31;
  const op3 = (w >>> 10) & 0x3f;
  const key = (w & 0x400) >>> 0 !== 0 ? 'b' : 'a';
  switch (opc) {
    case 0:
    case 8:
      return { kind: 'br', reg: rn };
    case 1:
    case 9:
      return callKind(w) === CallKind.NONE ? OTHER_NONE : { kind: 'blr' };
    case 2:
      // ret xn, or retaa/retab (op3 = 00001x, Rn = Rm = 11111).
      // retaa/retab encode Rn = 11111 but return to x30.
      return { kind: 'ret', reg: op3 === 0 ? rn : 30, key: op3 === 0 ? null : key };
    case 4:
    case 5:
      return { kind: 'stop' };
    default:
      return OTHER_NONE;
  }
}

function decodeDataImm(w: number): FrameInsn {
  const rd = w & 31;
  const rn = (w >>> 5) & 31;
  const sf = (w & 0x80000000) >>> 0 !== 0;
  const setsFlags = (w & 0x20000000) >>> 0 !== 0;
  if ((w & 0x1f800000) >>> 0 === 0x11000000) {
    // add/sub (immediate): Rd and Rn 31 are sp unless flags are set.
    const sub = (w & 0x40000000) >>> 0 !== 0;
    const imm = ((w >>> 10) & 0xfff) * ((w & 0x400000) >>> 0 !== 0 ? 4096 : 1);
    const delta = sub ? -imm : imm;
    if (sf && !setsFlags) {
      if (rd === 31 && rn === 31) return { kind: 'sp-adjust', delta };
      if (rd === FP && rn === 31 && !sub) return { kind: 'fp-from-sp', imm };
      if (rd === 31 && rn === FP) return { kind: 'sp-from-fp', imm: delta };
    }
    return {
      kind: 'other',
      writes: setsFlags ? bit(rd) : rd === 31 ? SP_BIT : bit(rd),
      spDelta: NaN,
    };
  }
  if ((w & 0x1f800000) >>> 0 === 0x11800000) {
    // addg/subg: tagged pointer arithmetic, Rd may be sp.
    return { kind: 'other', writes: rd === 31 ? SP_BIT : bit(rd), spDelta: NaN };
  }
  if ((w & 0x1f800000) >>> 0 === 0x12000000) {
    // Logical (immediate): Rd 31 is sp except for ands.
    const ands = ((w >>> 29) & 3) === 3;
    return { kind: 'other', writes: rd === 31 && !ands ? SP_BIT : bit(rd), spDelta: NaN };
  }
  // adr/adrp, move wide, bitfield, extract: Rd 31 is xzr.
  return { kind: 'other', writes: bit(rd), spDelta: 0 };
}

function decodeDataReg(w: number): FrameInsn {
  if (w === MOV_X9_X30) return { kind: 'mov-x9-lr' };
  const rd = w & 31;
  // add/sub (extended register) without flags: Rd 31 is sp (`sub sp, sp, x0` for alloca).
  if ((w & 0x1f200000) >>> 0 === 0x0b200000 && (w & 0x20000000) >>> 0 === 0 && rd === 31)
    return { kind: 'other', writes: SP_BIT, spDelta: NaN };
  return { kind: 'other', writes: bit(rd), spDelta: 0 };
}

function decodeSimd(w: number): FrameInsn {
  const rd = w & 31;
  // Conversions between FP and integer that land in a general register (fcvt*, fmov to general).
  if ((w & 0x5f200000) >>> 0 === 0x1e200000 && ((w >>> 10) & 0x3f) === 0) {
    const opcode = (w >>> 16) & 7;
    if (opcode !== 2 && opcode !== 3 && opcode !== 7)
      return { kind: 'other', writes: bit(rd), spDelta: 0 };
    return OTHER_NONE;
  }
  // smov/umov: AdvSIMD copy to a general register.
  if ((w & 0x9fe08400) >>> 0 === 0x0e000400) {
    const imm4 = (w >>> 11) & 0xf;
    if (imm4 === 5 || imm4 === 7) return { kind: 'other', writes: bit(rd), spDelta: 0 };
  }
  return OTHER_NONE;
}

function decodeLoadStore(w: number): FrameInsn {
  const rt = w & 31;
  const rn = (w >>> 5) & 31;
  const v = (w & 0x04000000) >>> 0 !== 0;
  if ((w & 0x3a000000) >>> 0 === 0x28000000) return decodePair(w, rt, rn, v);
  // Load/store register: unsigned offset (bit 24 set) or the 9-bit forms (bit 24 clear).
  if ((w & 0x3a000000) >>> 0 === 0x38000000) return decodeSingle(w, rt, rn, v);
  if ((w & 0x3b000000) >>> 0 === 0x18000000) {
    // Load literal: writes Rt unless it is a prefetch or a SIMD register.
    const prfm = ((w >>> 30) & 3) === 3;
    return { kind: 'other', writes: v || prfm ? 0 : bit(rt), spDelta: 0 };
  }
  if ((w & 0x3f000000) >>> 0 === 0x08000000) {
    // Exclusive / ordered / compare-and-swap: may write Rt, Rt2 and the status or compare register Rs.
    const rs = (w >>> 16) & 31;
    const rt2 = (w >>> 10) & 31;
    return { kind: 'other', writes: bit(rt) | bit(rt2) | bit(rs), spDelta: 0 };
  }
  if ((w & 0xbf800000) >>> 0 === 0x0c800000 && rn === 31) {
    // AdvSIMD structure load/store, post-indexed on sp: sp moves by an amount we do not model.
    return { kind: 'other', writes: SP_BIT, spDelta: NaN };
  }
  return OTHER_NONE;
}

function decodePair(w: number, rt: number, rn: number, v: boolean): FrameInsn {
  const opc = (w >>> 30) & 3;
  const mode = (w >>> 23) & 3;
  const load = (w & 0x400000) >>> 0 !== 0;
  const rt2 = (w >>> 10) & 31;
  const scale = v ? 4 << opc : opc === 2 ? 8 : opc === 1 && !load ? 16 : 4;
  const imm = sext((w >>> 15) & 0x7f, 7) * scale;
  const writeback = mode === 1 || mode === 3;
  const indexMode: IndexMode = mode === 1 ? 'post' : mode === 3 ? 'pre' : 'offset';
  if (!v && opc === 2 && rn === 31 && rt === FP && rt2 === LR)
    return { kind: load ? 'ldp-fp-lr' : 'stp-fp-lr', mode: indexMode, imm };
  let writes = load && !v ? bit(rt) | bit(rt2) : 0;
  if (writeback) writes |= rn === 31 ? SP_BIT : bit(rn);
  return { kind: 'other', writes, spDelta: writeback && rn === 31 ? imm : 0 };
}

function decodeSingle(w: number, rt: number, rn: number, v: boolean): FrameInsn {
  const size = (w >>> 30) & 3;
  const opc = (w >>> 22) & 3;
  const unsignedOffset = (w & 0x01000000) >>> 0 !== 0;
  const bit21 = (w & 0x200000) >>> 0 !== 0;
  const form = (w >>> 10) & 3;
  // Loads: opc != 0, except prfm (size 3, opc 2) and the 128-bit SIMD store (opc 2 with V).
  const load = v ? opc === 1 || opc === 3 : opc !== 0 && !(size === 3 && opc === 2);
  let mode: IndexMode = 'offset';
  let imm = 0;
  let writeback = false;
  if (unsignedOffset) {
    const scale = v ? (opc >= 2 ? 16 : 1 << size) : 1 << size;
    imm = ((w >>> 10) & 0xfff) * scale;
  } else if (!bit21) {
    imm = sext((w >>> 12) & 0x1ff, 9);
    if (form === 1) mode = 'post';
    if (form === 3) mode = 'pre';
    writeback = form === 1 || form === 3;
  } else if ((form & 1) === 1) {
    // Atomic memory operations (write Rt) and ldraa/ldrab (bit 11: writeback).
    const pacLoad = size === 3 && !v && (w & 0x800000) >>> 0 === 0 && (form === 1 || form === 3);
    if (pacLoad && form === 3) writeback = true;
    let writes = bit(rt);
    if (writeback) writes |= rn === 31 ? SP_BIT : bit(rn);
    return { kind: 'other', writes, spDelta: writeback && rn === 31 ? NaN : 0 };
  }
  const immediate = unsignedOffset || !bit21;
  if (immediate && !v && size === 3 && rn === 31 && rt === LR && (opc === 0 || opc === 1)) {
    return { kind: opc === 0 ? 'str-lr' : 'ldr-lr', mode, imm };
  }
  let writes = load && !v ? bit(rt) : 0;
  if (writeback) writes |= rn === 31 ? SP_BIT : bit(rn);
  return { kind: 'other', writes, spDelta: writeback && rn === 31 ? imm : 0 };
}
