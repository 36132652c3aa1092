import type { KretprobeInstance, RetStackEntry, Task } from '@klpsim/kernel';
import { isExceptionRecord, type MutationBase } from './base.js';

/**
 * The soundness oracle: the call chain the mutated machine describes, worked
 * out from what the recipe knows (where its frame records are, and which
 * tracer entry hooked which return), not by the unwinder. Starting at the
 * walk's first pc, each step must land on one of the recipe's records (never
 * twice) or on the task's final frame; the return address is read as the
 * kernel reads it (PAC stripped with bit 55 picking the half), and a hooked
 * one is replaced by the tracer entry saved with that record content (keyed
 * by the caller's fp beside it), which must still be there. Anything else
 * (a step off the recipe's records, a loop, a zero record, a missing tracer
 * entry, an exception's pt_regs) means the stack describes no chain at all,
 * and no walk may call it reliable.
 */
export class ChainOracle {
  /** The described chain's pcs as exact halves; `length` is valid only when `ok`. */
  readonly his = new Uint32Array(4096);
  readonly los = new Uint32Array(4096);
  length = 0;
  ok = false;
  private readonly w = { hi: 0, lo: 0 };
  private readonly recordIndex = new Map<number, number>();
  private readonly seen: Uint8Array;

  constructor(private readonly base: MutationBase) {
    for (const [j, r] of base.records.entries()) this.recordIndex.set(r, j);
    this.seen = new Uint8Array(base.records.length);
  }

  /** Computes the chain `task` (the mutated one) describes. */
  describe(task: Task): void {
    const b = this.base;
    const m = b.machine;
    this.ok = false;
    this.length = 0;
    this.seen.fill(0);
    const kernelPac = m.config.kernelPacEnabled;
    const va = m.config.vaBits;
    const kmaskHi = kernelPac ? (0xffffffff << (va - 32)) >>> 0 : 0;
    const umaskHi = kernelPac ? (kmaskHi & 0x007fffff) >>> 0 : 0;
    const start = b.from.kind === 'caller' ? b.from.pc : task.cpuContext.pc;
    this.push(hiOf(start), loOf(start));
    let fp = b.from.kind === 'caller' ? b.from.fp : task.cpuContext.fp;
    const rth = m.special.returnToHandler;
    const krt = m.special.kretprobeTrampoline;
    for (;;) {
      if (fp === task.finalFrame) {
        this.ok = true;
        return;
      }
      const j = this.recordIndex.get(fp);
      if (j === undefined || this.seen[j] === 1 || isExceptionRecord(m, fp)) return;
      this.seen[j] = 1;
      if (!m.memory.read64(fp, this.w)) return;
      const fpHi = this.w.hi;
      const fpLo = this.w.lo;
      if (!m.memory.read64(fp + 8, this.w)) return;
      const lrLo = this.w.lo;
      // The kernel's strip: bit 55 set, the PAC bits become ones; clear, zeros below the top byte.
      const lrHi = (this.w.hi & 0x00800000 ? this.w.hi | kmaskHi : this.w.hi & ~umaskHi) >>> 0;
      if ((fpHi | fpLo | this.w.hi | lrLo) === 0) return;
      if (fpHi < 0xfff00000) return;
      fp = (fpHi - 0xfff00000) * 4294967296 + fpLo;
      let hi = lrHi;
      let lo = lrLo;
      if (rth !== null && hi === hiOf(rth) && lo === loOf(rth) && task.retStack !== null) {
        const own = b.fgraphByKey.get(fp);
        // Still there, as it was saved (a copy with the same values is the same entry).
        if (own === undefined || !task.retStack.entries.some((e) => sameEntry(e, own))) return;
        hi = own.retHi;
        lo = own.retLo;
      }
      if (krt !== null && hi === hiOf(krt) && lo === loOf(krt)) {
        const own = b.kretprobeByKey.get(fp);
        if (own === undefined || !task.kretprobes.some((k) => sameInstance(k, own))) return;
        hi = own.retAddrHi;
        lo = own.retAddrLo;
      }
      if (!this.push(hi, lo)) return;
    }
  }

  private push(hi: number, lo: number): boolean {
    if (this.length >= this.his.length) return false;
    this.his[this.length] = hi;
    this.los[this.length] = lo;
    this.length++;
    return true;
  }
}

const sameEntry = (a: RetStackEntry, b: RetStackEntry) =>
  a.pos === b.pos &&
  a.retHi === b.retHi &&
  a.retLo === b.retLo &&
  a.retpHi === b.retpHi &&
  a.retpLo === b.retpLo;

const sameInstance = (a: KretprobeInstance, b: KretprobeInstance) =>
  a.retAddrHi === b.retAddrHi &&
  a.retAddrLo === b.retAddrLo &&
  a.fpHi === b.fpHi &&
  a.fpLo === b.fpLo;

function hiOf(a: number): number {
  // Folded kernel addresses: [0, 2^52) stands for 0xfff0_0000_0000_0000 and up.
  return a >= 0 ? Math.floor(a / 4294967296) + 0xfff00000 : Math.floor((a + 2 ** 52) / 4294967296);
}

function loOf(a: number): number {
  return (a >= 0 ? a : a + 2 ** 52) >>> 0;
}
