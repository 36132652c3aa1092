import { decodeFrameInsn, FP, type FrameInsn, type IndexMode, LR, SP_BIT } from './decode.js';
import { FrameStateCode, type Refusal, type RefusalReason } from './state.js';

/**
 * The frame state of every instruction of one function, by abstract
 * interpretation over its control-flow graph: start at the entry with the
 * return address in LR and nothing pushed, follow every branch inside the
 * function's bounds, and at each instruction apply what it does to sp, x29,
 * x30 and the saved record. Paths that meet must agree; a rule the analysis
 * cannot follow refuses the whole function with the reason, never a guess.
 *
 * What a frame is made of (the abstract state, before an instruction):
 * - `sp`: CFA - sp, NaN when unknown (after `sub sp, sp, x0`);
 * - `rec`: where the record was saved, as an offset from the CFA, NaN if not;
 * - `fp`: x29 is the caller's (0) or this function's record (1);
 * - `lr`: x30 holds the return address (0) or was overwritten after the record saved it (1);
 * - `pac`: the return address is unsigned (0), signed with key A (1) or B (2);
 * - `x9`: x9 holds a copy of the return address (`mov x9, x30` of the
 *   patchable function entry), so the ftrace call that follows keeps LR.
 */

/** Per-function result: per-instruction arrays (index = byte offset / 4) and what was assumed. */
export interface FunctionFrames {
  readonly name: string;
  readonly start: number;
  /** Bytes, a multiple of 4. */
  readonly size: number;
  /** Null when modelled. */
  readonly refusal: Refusal | null;
  /** `FrameStateCode` per instruction; NONE where unreached (padding, dead code) or refused. */
  readonly state: Uint8Array;
  /** 0: CFA = sp + offset; 1: CFA = x29 + offset. */
  readonly cfaBase: Uint8Array;
  readonly cfaOffset: Int32Array;
  /** Where x29 was saved, from the CFA (x30 at +8); 0 in state L. */
  readonly recordOffset: Int32Array;
  /**
   * CFA - sp (what ORC calls the sp offset), whatever the CFA rule; SP_UNKNOWN
   * where sp moved by an amount the analysis cannot follow (`sub sp, sp, x0`).
   */
  readonly spOffset: Int32Array;
  readonly lrSigned: Uint8Array;
  /** Calls made while the return address was only in LR: the callee cannot return (noreturn). */
  readonly noreturnCalls: number;
  /** Instructions no path reaches (0 when refused). */
  readonly unreached: number;
  /** Indirect branches inside the frame with no `bti j` pads: jump tables whose targets are unknown. */
  readonly jumpTables: number;
  /**
   * Body instructions in state L at addresses before the first S (the
   * prologue's `stp`): shrink-wrapped code that runs with no frame. Hints,
   * `paciasp`, `sub sp` and the ftrace entry are not counted.
   */
  readonly shrinkWrapped: number;
}

/**
 * `brk` immediates that stand in for another instruction
 * (arch/arm64/include/asm/brk-imm.h): kprobes 0x004, uprobes 0x005, kprobe
 * single-step 0x006, kretprobe return 0x007 (6.x). Any other brk (BUG/WARN
 * 0x800, KASAN 0x9xx, UBSAN 0x55xx, CFI 0x8xxx) is the kernel's own trap.
 */
const PROBE_BRK_MIN = 0x004;
const PROBE_BRK_MAX = 0x007;

class RefusedError {
  constructor(readonly refusal: Refusal) {}
}

/**
 * Two paths meet with different frames, and one of them is the fall-through
 * of a call (or of a `brk`): compiled code never merges two frames, so that
 * callee cannot return (a `noreturn` function, BUG()). `at` is the call.
 */
class DoesNotReturn {
  constructor(readonly at: number) {}
}

/** Instructions that belong to a prologue, not to the body, when counting shrink-wrapped code. */
const PROLOGUE_KINDS: ReadonlySet<FrameInsn['kind']> = new Set([
  'hint',
  'pac-sign',
  'mov-x9-lr',
  'stp-fp-lr',
  'sp-adjust',
]);

/** The edge into an instruction: an ordinary one, or the fall-through of a call or brk. */
const EDGE_PLAIN = 0;
const EDGE_AFTER_CALL = 1;
/** How far back along first arrivals a rule break is traced to a call (a basic block is rarely longer). */
const MAX_BACKTRACK = 256;

export interface AnalyseOptions {
  /** Refuse the function outright with this reason (SYM_CODE, text not held). */
  readonly refuseAs?: RefusalReason;
  /** Its size in bytes when `words` is empty (a refused function). */
  readonly size?: number;
  /**
   * The word at any address of the text, -1 where unmapped: lets a branch
   * out of the function be recognised as a linker veneer that comes back.
   */
  readonly readText?: (addr: number) => number;
}

/** `FunctionFrames.spOffset` where sp's distance from the CFA is unknown. */
export const SP_UNKNOWN = -0x80000000;

/** One function's words in, its frame state per instruction out; never throws. */
export function analyseFunction(
  name: string,
  start: number,
  words: Uint32Array,
  options: AnalyseOptions = {},
): FunctionFrames {
  const refuseAs = options.refuseAs ?? null;
  const size = options.size ?? words.length * 4;
  // A refused function keeps no per-instruction arrays: a lookup stops at the refusal.
  const n = refuseAs === null ? words.length : 0;
  const out = {
    name,
    start,
    size,
    refusal: null as Refusal | null,
    state: new Uint8Array(n),
    cfaBase: new Uint8Array(n),
    cfaOffset: new Int32Array(n),
    recordOffset: new Int32Array(n),
    spOffset: new Int32Array(n),
    lrSigned: new Uint8Array(n),
    noreturnCalls: 0,
    unreached: n,
    jumpTables: 0,
    shrinkWrapped: 0,
  };
  if (refuseAs !== null) {
    out.refusal = { reason: refuseAs, offset: 0, detail: '' };
    return out;
  }
  const insns = Array.from(words, decodeFrameInsn);
  // Calls and traps found not to return; each conflict they explain adds one and the walk restarts.
  const noreturn = new Set<number>();
  for (;;) {
    try {
      new Walker(insns, noreturn, start, options.readText ?? null).run(out);
      return out;
    } catch (e) {
      if (e instanceof DoesNotReturn && !noreturn.has(e.at)) {
        noreturn.add(e.at);
        continue;
      }
      if (!(e instanceof RefusedError)) throw e;
      out.refusal = e.refusal;
      out.state = new Uint8Array(0);
      out.cfaBase = new Uint8Array(0);
      out.cfaOffset = new Int32Array(0);
      out.recordOffset = new Int32Array(0);
      out.spOffset = new Int32Array(0);
      out.lrSigned = new Uint8Array(0);
      out.noreturnCalls = 0;
      out.unreached = 0;
      out.jumpTables = 0;
      out.shrinkWrapped = 0;
      return out;
    }
  }
}

class Walker {
  private readonly n: number;
  private readonly inSp: Float64Array;
  private readonly inRec: Float64Array;
  /** fp | lr << 1 | pac << 2 | x9 << 4. */
  private readonly inFlags: Uint8Array;
  private readonly reached: Uint8Array;
  /** The instruction whose edge first brought a state here, and that edge's kind. */
  private readonly origin: Int32Array;
  private readonly originKind: Uint8Array;
  private readonly work: number[] = [];
  private readonly jumpPads: number[] = [];
  private noreturnCalls = 0;
  private jumpTables = 0;

  constructor(
    private readonly insns: readonly FrameInsn[],
    private readonly noreturn: ReadonlySet<number>,
    private readonly start: number,
    private readonly readText: ((addr: number) => number) | null,
  ) {
    this.n = insns.length;
    this.origin = new Int32Array(this.n);
    this.originKind = new Uint8Array(this.n);
    this.inSp = new Float64Array(this.n);
    this.inRec = new Float64Array(this.n);
    this.inFlags = new Uint8Array(this.n);
    this.reached = new Uint8Array(this.n);
    for (let i = 0; i < this.n; i++) {
      const d = this.insns[i]!;
      // With BTI, an indirect branch can only land on a `bti j`/`bti jc` pad.
      if (d.kind === 'hint' && (d.bti === 'j' || d.bti === 'jc')) this.jumpPads.push(i);
    }
  }

  run(out: {
    state: Uint8Array;
    cfaBase: Uint8Array;
    cfaOffset: Int32Array;
    recordOffset: Int32Array;
    spOffset: Int32Array;
    lrSigned: Uint8Array;
    noreturnCalls: number;
    unreached: number;
    jumpTables: number;
    shrinkWrapped: number;
  }): void {
    if (this.n === 0) return;
    this.flow(0, 0, Number.NaN, 0, -1, EDGE_PLAIN);
    while (this.work.length > 0) this.step(this.work.pop()!);
    let unreached = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.reached[i] === 0) {
        unreached++;
        continue;
      }
      const sp = this.inSp[i]!;
      const rec = this.inRec[i]!;
      const flags = this.inFlags[i]!;
      const fp = flags & 1;
      const pac = (flags >> 2) & 3;
      if (Number.isNaN(rec)) {
        out.state[i] = FrameStateCode.L;
        out.cfaBase[i] = 0;
        out.cfaOffset[i] = sp;
        out.recordOffset[i] = 0;
      } else {
        out.state[i] = fp === 1 ? FrameStateCode.F : FrameStateCode.S;
        out.cfaBase[i] = fp;
        out.cfaOffset[i] = fp === 1 ? -rec : sp;
        out.recordOffset[i] = rec;
      }
      out.spOffset[i] = Number.isNaN(sp) ? SP_UNKNOWN : sp;
      out.lrSigned[i] = pac !== 0 ? 1 : 0;
    }
    out.noreturnCalls = this.noreturnCalls + this.noreturn.size;
    out.jumpTables = this.jumpTables;
    out.shrinkWrapped = this.countShrinkWrapped(out.state);
    out.unreached = unreached;
  }

  /**
   * Refuses the function, unless the path to `i` runs through the
   * fall-through of a call or trap: compiled code never breaks a frame rule,
   * so that path is infeasible and the callee is one that does not return.
   */
  private refuse(reason: RefusalReason, i: number, detail: string, from = i): never {
    const call = this.callBehind(from);
    if (call >= 0) throw new DoesNotReturn(call);
    throw new RefusedError({ reason, offset: i * 4, detail });
  }

  /** The call or trap whose fall-through first brought a state to `i`, following first arrivals back; -1 if none. */
  private callBehind(i: number): number {
    let j = i;
    for (let steps = 0; j >= 0 && steps < MAX_BACKTRACK; steps++) {
      if (this.originKind[j] === EDGE_AFTER_CALL) return this.origin[j]!;
      j = this.origin[j]!;
    }
    return -1;
  }

  /**
   * A branch to a linker veneer that runs one instruction and branches
   * back to the next word (the Cortex-A53 erratum 843419 fix-up moves an
   * `ldr` after an `adrp` out of line: the `e843419@...` symbols). It is
   * part of the function's path when that instruction leaves x29, x30 and
   * sp alone.
   */
  private isVeneerBack(i: number, offset: number): boolean {
    if (this.readText === null) return false;
    const at = this.start + i * 4 + offset;
    const first = this.readText(at);
    const second = this.readText(at + 4);
    if (first === -1 || second === -1) return false;
    const moved = decodeFrameInsn(first);
    const back = decodeFrameInsn(second);
    return (
      moved.kind === 'other' &&
      (moved.writes & ((1 << FP) | (1 << LR) | SP_BIT)) === 0 &&
      back.kind === 'b' &&
      at + 4 + back.offset === this.start + (i + 1) * 4
    );
  }

  /** Body instructions in state L before the first S, by address (see `FunctionFrames.shrinkWrapped`). */
  private countShrinkWrapped(state: Uint8Array): number {
    const firstS = state.indexOf(FrameStateCode.S);
    let body = 0;
    for (let i = 0; i < firstS; i++) {
      if (state[i] !== FrameStateCode.L) continue;
      const d = this.insns[i]!;
      if (PROLOGUE_KINDS.has(d.kind)) continue;
      // The ftrace call of the patchable entry (`mov x9, x30; bl ftrace_caller`).
      if (d.kind === 'bl' && i > 0 && this.insns[i - 1]!.kind === 'mov-x9-lr') continue;
      body++;
    }
    return body;
  }

  /** Brings a state to instruction `to`; merges with what is there, or queues it. */
  private flow(
    to: number,
    sp: number,
    rec: number,
    flags: number,
    from: number,
    edge: number,
  ): void {
    if (to < 0 || to >= this.n) return;
    if (this.reached[to] === 0) {
      this.reached[to] = 1;
      this.origin[to] = from;
      this.originKind[to] = edge;
      this.inSp[to] = sp;
      this.inRec[to] = rec;
      this.inFlags[to] = flags;
      this.work.push(to);
      return;
    }
    const oldSp = this.inSp[to]!;
    const oldRec = this.inRec[to]!;
    const oldFlags = this.inFlags[to]!;
    const sameSp = oldSp === sp || (Number.isNaN(oldSp) && Number.isNaN(sp));
    const sameRec = oldRec === rec || (Number.isNaN(oldRec) && Number.isNaN(rec));
    // x30 overwritten on one path and not the other only matters while no record holds it;
    // x9's copy survives only where every path made it.
    const mask = Number.isNaN(rec) ? 0xef : 0xed;
    if (!sameSp || !sameRec || (oldFlags & mask) !== (flags & mask)) {
      if (edge === EDGE_AFTER_CALL) throw new DoesNotReturn(from);
      const behind = this.callBehind(to);
      if (behind >= 0) throw new DoesNotReturn(behind);
      this.refuse(
        'paths-disagree',
        to,
        `+0x${(to * 4).toString(16)} is reached from +0x${(from * 4).toString(16)} with ${describe(sp, rec, flags)} and before with ${describe(oldSp, oldRec, oldFlags)}`,
        from,
      );
    }
    const merged = (oldFlags | (flags & 2)) & ~(~flags & 0x10);
    if (merged !== oldFlags) {
      this.inFlags[to] = merged;
      this.work.push(to);
    }
  }

  /** Applies instruction `i` to its in-state and sends the result to its successors. */
  private step(i: number): void {
    const d = this.insns[i]!;
    let sp = this.inSp[i]!;
    let rec = this.inRec[i]!;
    const flags = this.inFlags[i]!;
    let fp = flags & 1;
    let lr = (flags >> 1) & 1;
    let pac = (flags >> 2) & 3;
    let x9 = (flags >> 4) & 1;
    let edge = EDGE_PLAIN;
    const noRecord = Number.isNaN(rec);
    const at = (mode: IndexMode, imm: number): number => {
      if (Number.isNaN(sp))
        this.refuse(
          'sp-unknown',
          i,
          'the record is addressed from sp, whose offset from the CFA is unknown',
        );
      return -sp + (mode === 'post' ? 0 : imm);
    };
    const exitCheck = (key: 'a' | 'b' | null, what: string): void => {
      if (!noRecord || lr !== 0 || fp !== 0 || sp !== 0)
        this.refuse('exit-with-frame', i, `${what} with ${describe(sp, rec, flags)}`);
      const want = key === null ? 0 : key === 'a' ? 1 : 2;
      if (pac !== want)
        this.refuse(
          'pac-mismatch',
          i,
          `${what} with LR ${pac === 0 ? 'unsigned' : `signed with key ${pac === 1 ? 'A' : 'B'}`}`,
        );
    };
    let next = true;
    switch (d.kind) {
      case 'stp-fp-lr': {
        if (!noRecord) this.refuse('record-reused', i, 'stp x29, x30 with a record already saved');
        if (fp !== 0 || lr !== 0)
          this.refuse('x29-clobbered', i, "stp x29, x30 of values that are not the caller's");
        rec = at(d.mode, d.imm);
        if (d.mode !== 'offset') sp -= d.imm;
        break;
      }
      case 'ldp-fp-lr': {
        const slot = at(d.mode, d.imm);
        if (noRecord || slot !== rec)
          this.refuse(
            'record-slot-mismatch',
            i,
            `ldp x29, x30 from CFA${signed(slot)}${noRecord ? ' with no record saved' : `, saved at CFA${signed(rec)}`}`,
          );
        rec = Number.NaN;
        fp = 0;
        lr = 0;
        if (d.mode !== 'offset') sp -= d.imm;
        break;
      }
      case 'str-lr':
        // With the record saved, x30 is a scratch register like any other.
        if (noRecord) this.refuse('lr-saved-alone', i, 'str x30 to the stack');
        if (d.mode !== 'offset') sp -= d.imm;
        break;
      case 'ldr-lr': {
        const slot = at(d.mode, d.imm);
        if (noRecord) this.refuse('lr-lost', i, 'ldr x30 before the return address was saved');
        lr = slot === rec + 8 ? 0 : 1;
        if (d.mode !== 'offset') sp -= d.imm;
        break;
      }
      case 'sp-adjust':
        sp -= d.delta;
        break;
      case 'fp-from-sp': {
        if (Number.isNaN(sp))
          this.refuse('sp-unknown', i, 'x29 is set from sp, whose offset from the CFA is unknown');
        if (noRecord || -sp + d.imm !== rec)
          this.refuse(
            'x29-clobbered',
            i,
            `x29 = CFA${signed(-sp + d.imm)}${noRecord ? ' with no record saved' : `, the record is at CFA${signed(rec)}`}`,
          );
        fp = 1;
        break;
      }
      case 'sp-from-fp':
        sp = fp === 1 ? -(rec + d.imm) : Number.NaN;
        break;
      case 'mov-x9-lr':
        x9 = lr === 0 ? 1 : 0;
        break;
      case 'pac-sign':
        if (lr !== 0 || pac !== 0)
          this.refuse(
            'pac-mismatch',
            i,
            `pac${d.key}sp with LR ${lr !== 0 ? 'overwritten' : 'already signed'}`,
          );
        pac = d.key === 'a' ? 1 : 2;
        break;
      case 'pac-auth':
        if (lr !== 0 || pac !== (d.key === 'a' ? 1 : 2))
          this.refuse(
            'pac-mismatch',
            i,
            `auti${d.key}sp with LR ${lr !== 0 ? 'overwritten' : pac === 0 ? 'unsigned' : 'signed with the other key'}`,
          );
        pac = 0;
        break;
      case 'pac-strip':
        // xpaclri strips x30 only (__builtin_return_address): with a record
        // saved, the return address stays signed there and x30 is a copy.
        if (noRecord) pac = 0;
        else lr = 1;
        break;
      case 'hint':
        break;
      case 'ret':
        if (d.reg !== LR) this.refuse('ret-other-register', i, `ret x${d.reg}`);
        exitCheck(d.key, d.key === null ? 'ret' : `reta${d.key}`);
        next = false;
        break;
      case 'b': {
        const to = i + d.offset / 4;
        if (to >= 0 && to < this.n) this.flow(to, sp, rec, flags, i, EDGE_PLAIN);
        else if (this.isVeneerBack(i, d.offset)) this.flow(i + 1, sp, rec, flags, i, EDGE_PLAIN);
        else exitCheck(null, 'a tail call (b out of the function)');
        next = false;
        break;
      }
      case 'b-cond': {
        const to = i + d.offset / 4;
        if (to >= 0 && to < this.n) this.flow(to, sp, rec, flags, i, EDGE_PLAIN);
        else exitCheck(null, 'a conditional tail call');
        break;
      }
      case 'bl':
      case 'blr':
        if (noRecord && lr === 0) {
          if (x9 === 1 && d.kind === 'bl') {
            // The ftrace call of a patchable function entry: ftrace_caller
            // returns with x30 restored from x9 (arch/arm64/kernel/entry-ftrace.S).
            x9 = 0;
            break;
          }
          // A call with the return address only in LR: the callee never returns.
          this.noreturnCalls++;
          next = false;
          break;
        }
        if (noRecord)
          this.refuse('lr-lost', i, 'a call with the return address already overwritten');
        lr = 1;
        x9 = 0;
        edge = EDGE_AFTER_CALL;
        next = !this.noreturn.has(i);
        break;
      case 'br': {
        const canExit = noRecord && lr === 0 && fp === 0 && sp === 0 && pac === 0;
        // With BTI, an indirect branch inside the function lands on a `bti j` pad.
        for (const pad of this.jumpPads) this.flow(pad, sp, rec, flags, i, EDGE_PLAIN);
        // A jump table without pads: its targets are in .rodata, which a capture
        // does not hold. Code only the table reaches keeps no state (unreached).
        if (!canExit && this.jumpPads.length === 0) this.jumpTables++;
        next = false;
        break;
      }
      case 'brk':
        if (d.imm >= PROBE_BRK_MIN && d.imm <= PROBE_BRK_MAX)
          this.refuse('kprobe-brk', i, `brk #0x${d.imm.toString(16)}`);
        // BUG() does not come back, WARN() does: like a call, known only from the paths.
        edge = EDGE_AFTER_CALL;
        next = !this.noreturn.has(i);
        break;
      case 'stop':
        next = false;
        break;
      case 'other': {
        const w = d.writes;
        if ((w & (1 << FP)) !== 0)
          this.refuse('x29-clobbered', i, 'x29 is used as a general register');
        if ((w & (1 << LR)) !== 0) {
          if (noRecord)
            this.refuse('lr-lost', i, 'x30 is overwritten before the return address was saved');
          lr = 1;
        }
        if ((w & (1 << 9)) !== 0) x9 = 0;
        if ((w & SP_BIT) !== 0) sp = Number.isNaN(d.spDelta) ? Number.NaN : sp - d.spDelta;
        break;
      }
    }
    if (!next) return;
    if (Number.isNaN(sp) && fp !== 1)
      this.refuse(
        'sp-unknown',
        i,
        'sp moved by an unknown amount while x29 is not the frame pointer',
      );
    this.flow(i + 1, sp, rec, pack(fp, lr, pac, x9), i, edge);
  }
}

function pack(fp: number, lr: number, pac: number, x9: number): number {
  return fp | (lr << 1) | (pac << 2) | (x9 << 4);
}

function signed(v: number): string {
  return v < 0 ? `-${-v}` : `+${v}`;
}

function describe(sp: number, rec: number, flags: number): string {
  const parts = [Number.isNaN(sp) ? 'sp unknown' : `CFA = sp${signed(sp)}`];
  parts.push(Number.isNaN(rec) ? 'no record' : `record at CFA${signed(rec)}`);
  if ((flags & 1) !== 0) parts.push('x29 at the record');
  if ((flags & 2) !== 0) parts.push('x30 overwritten');
  const pac = (flags >> 2) & 3;
  if (pac !== 0) parts.push(`LR signed (${pac === 1 ? 'A' : 'B'})`);
  return parts.join(', ');
}
