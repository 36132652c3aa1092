import {
  type Addr,
  AUTIASP,
  encodeAddFpSp,
  encodeB,
  encodeBl,
  encodeCbz,
  encodeLdpFrameAt,
  encodeLdpFramePop,
  encodeSpDown,
  encodeStpFrameAt,
  encodeStpFramePush,
  encodeSubSpReg,
  MOV_SP_X29,
  NOP,
  PACIASP,
  RET,
} from '@klpsim/arm64';

/**
 * Function bodies as GCC lays them out, with the frame state of every
 * instruction written down as each one is emitted: the truth by
 * construction that the frame analysis (@klpsim/frames) must reproduce.
 *
 * A function some task's chain runs through gets the plain prologue
 * (`paciasp; stp x29, x30, [sp, #-N]!; mov x29, sp`, N its frame size) in
 * its first three words and the epilogue in its last three, so call sites
 * and exception offsets between them keep their meaning. A function no
 * chain names gets one of the other shapes a real kernel has (chosen from
 * its name, so the same description gives the same text).
 */

/** The layouts the builder writes. */
export const FRAME_SHAPES = [
  'push',
  'sub-sp',
  'shrink-wrapped',
  'mid-epilogue-tail-call',
  'leaf',
  'noreturn',
  'duplicated-prologue',
  'alloca',
] as const;
export type FrameShape = (typeof FRAME_SHAPES)[number];

/** What is true before one instruction runs (the same meaning as `FrameRow` of @klpsim/frames). */
export interface BuiltFrameRow {
  readonly state: 'L' | 'S' | 'F';
  readonly cfa: { readonly base: 'sp' | 'x29'; readonly offset: number };
  /** Where x29 was saved, from the CFA (x30 at +8); null in state L. */
  readonly record: number | null;
  /** CFA - sp whatever the CFA rule (ORC's sp offset); null where sp moved by a register amount. */
  readonly sp: number | null;
  readonly lrSigned: boolean;
}

/** One function's text as the builder wrote it, with its truth. */
export interface BuiltFunctionFrames {
  readonly name: string;
  readonly start: Addr;
  /** Bytes the function's words take (alignment padding after it is not reached). */
  readonly size: number;
  readonly shape: FrameShape | 'sym-code';
  /** One row per word of `size`; null where no path reaches. Empty for SYM_CODE. */
  readonly rows: readonly (BuiltFrameRow | null)[];
}

/** Where the body is written and which words it must leave alone. */
export interface BodyTarget {
  readonly name: string;
  readonly start: Addr;
  readonly size: number;
  /** Where the next function starts (kallsyms bounds this one there): tail calls and calls go there. */
  readonly next: Addr;
  readonly write32: (addr: Addr, word: number) => void;
  /** Words a task's call site or a corruption claimed (body words only, never prologue or epilogue). */
  readonly claimed: (addr: Addr) => boolean;
}

const L = (sp: number, s: boolean): BuiltFrameRow => ({
  state: 'L',
  cfa: { base: 'sp', offset: sp },
  record: null,
  sp,
  lrSigned: s,
});
const S = (sp: number, rec: number, s: boolean): BuiltFrameRow => ({
  state: 'S',
  cfa: { base: 'sp', offset: sp },
  record: rec,
  sp,
  lrSigned: s,
});
/** x29 at the record; sp at it too unless said (`sub sp` frames, alloca). */
const F = (rec: number, s: boolean, sp: number | null = -rec): BuiltFrameRow => ({
  state: 'F',
  cfa: { base: 'x29', offset: -rec },
  record: rec,
  sp,
  lrSigned: s,
});

/** Words and their rows, written in order; `at` is the next word's index. */
class Emitter {
  readonly words: number[] = [];
  readonly rows: (BuiltFrameRow | null)[] = [];
  constructor(
    readonly start: Addr,
    readonly pac: boolean,
  ) {}
  get at(): number {
    return this.words.length;
  }
  put(word: number, row: BuiltFrameRow | null): void {
    this.words.push(word >>> 0);
    this.rows.push(row);
  }
  /** `count` filler words with one row (body code with no frame effect). */
  fill(count: number, row: BuiltFrameRow | null): void {
    for (let i = 0; i < count; i++) this.put(NOP, row);
  }
  addr(index: number): Addr {
    return this.start + index * 4;
  }
  /** `paciasp; stp x29, x30, [sp, #-n]!; mov x29, sp`, entered with nothing pushed. */
  pushPrologue(n: number): void {
    const p = this.pac;
    this.put(p ? PACIASP : NOP, L(0, false));
    this.put(encodeStpFramePush(n), L(0, p));
    this.put(encodeAddFpSp(0), S(n, -n, p));
  }
  /** `ldp x29, x30, [sp], #n; autiasp`, then what `exit` writes (ret or a tail call). */
  popEpilogue(n: number, exit: number): void {
    const p = this.pac;
    this.put(encodeLdpFramePop(n), F(-n, p));
    this.put(p ? AUTIASP : NOP, L(0, p));
    this.put(exit, L(0, false));
  }
}

/** A small stable hash of a name (FNV-1a). */
function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The shape a function no chain uses gets: from its name, so builds are deterministic. */
export function shapeFor(name: string): FrameShape {
  return FRAME_SHAPES[hashName(name) % FRAME_SHAPES.length]!;
}

/**
 * Writes `f`'s body and returns its truth. `frameSize` is the plain
 * prologue's N for a function tasks run through; `shape` picks the layout.
 */
export function emitBody(
  f: BodyTarget,
  shape: FrameShape,
  frameSize: number,
  pac: boolean,
): BuiltFunctionFrames {
  const e = new Emitter(f.start, pac);
  const w = f.size / 4;
  const n = frameSize;
  const p = pac;
  const afterEnd = f.next;
  switch (shape) {
    case 'push': {
      e.pushPrologue(n);
      e.fill(w - 6, F(-n, p));
      e.popEpilogue(n, RET);
      break;
    }
    case 'sub-sp': {
      // GCC's layout with the record at the top of the frame: `add x29, sp, #m`.
      const m = n - 16;
      e.put(p ? PACIASP : NOP, L(0, false));
      e.put(encodeSpDown(n), L(0, p));
      e.put(encodeStpFrameAt(m), L(n, p));
      e.put(encodeAddFpSp(m), S(n, -16, p));
      e.fill(w - 8, F(-16, p, n));
      e.put(encodeLdpFrameAt(m), F(-16, p, n));
      e.put(encodeSpDown(-n), L(n, p));
      e.put(p ? AUTIASP : NOP, L(0, p));
      e.put(RET, L(0, false));
      break;
    }
    case 'shrink-wrapped': {
      // Body code runs on the caller's frame, an early exit skips the prologue.
      const before = Math.max(1, Math.floor(w / 4));
      e.fill(before, L(0, false));
      e.put(encodeCbz(0, e.addr(e.at), e.addr(w - 1)), L(0, false));
      e.pushPrologue(n);
      const body = w - e.at - 4;
      e.fill(body - 1, F(-n, p));
      e.put(encodeBl(e.addr(e.at), afterEnd), F(-n, p));
      e.popEpilogue(n, RET);
      e.put(RET, L(0, false));
      break;
    }
    case 'mid-epilogue-tail-call': {
      // A return in the middle, and a second epilogue that ends in a tail call.
      const tail = w - 4;
      e.pushPrologue(n);
      e.put(encodeCbz(0, e.addr(e.at), e.addr(tail)), F(-n, p));
      e.fill(tail - 3 - e.at, F(-n, p));
      e.popEpilogue(n, RET);
      e.put(encodeLdpFramePop(n), F(-n, p));
      e.put(p ? AUTIASP : NOP, L(0, p));
      e.put(encodeB(e.addr(e.at), afterEnd), L(0, false));
      e.put(NOP, null);
      break;
    }
    case 'leaf': {
      // A frameless assembly leaf (__arch_clear_user): LR live throughout.
      e.put(encodeCbz(1, e.addr(0), e.addr(w - 1)), L(0, false));
      e.fill(w - 2, L(0, false));
      e.put(RET, L(0, false));
      break;
    }
    case 'noreturn': {
      // The last call never returns: the word after it belongs to the early exit.
      e.put(encodeCbz(0, e.addr(0), e.addr(w - 1)), L(0, false));
      e.pushPrologue(n);
      e.fill(w - 6, F(-n, p));
      e.put(encodeBl(e.addr(e.at), afterEnd), F(-n, p));
      e.put(RET, L(0, false));
      break;
    }
    case 'duplicated-prologue': {
      // Two paths, each with its own prologue and frame size.
      const half = Math.floor(w / 2);
      const m = n === 16 ? 32 : 16;
      e.put(encodeCbz(0, e.addr(0), e.addr(half)), L(0, false));
      e.pushPrologue(n);
      e.fill(half - 7, F(-n, p));
      e.popEpilogue(n, RET);
      e.pushPrologue(m);
      e.fill(w - half - 6, F(-m, p));
      e.popEpilogue(m, RET);
      break;
    }
    case 'alloca': {
      // sp moves by a register amount: only x29 still finds the CFA.
      e.pushPrologue(n);
      e.put(encodeSubSpReg(0), F(-n, p));
      e.fill(w - 8, F(-n, p, null));
      e.put(MOV_SP_X29, F(-n, p, null));
      e.popEpilogue(n, RET);
      break;
    }
  }
  if (e.at !== w) throw new Error(`builder shape ${shape} wrote ${e.at} words for ${w}`);
  for (let i = 0; i < w; i++) {
    const addr = e.addr(i);
    if (!f.claimed(addr)) f.write32(addr, e.words[i]!);
  }
  return { name: f.name, start: f.start, size: f.size, shape, rows: e.rows };
}

/** The smallest function every shape fits (16 words, the schema's minimum size). */
export const MIN_SHAPED_SIZE = 0x40;
