import { addrHi, addrLo } from '@klpsim/arm64';
import type { KretprobeInstance, RetStackEntry, Task } from '@klpsim/kernel';
import type { MutationBase } from './base.js';

/**
 * The ways a stack is damaged: each draws its target and values from the
 * iteration's own PRNG, writes memory through an undo log, and returns the
 * task to walk (a copy when the tracer state changed).
 */
export const MUTATION_KINDS = [
  'flip-fp-bit',
  'flip-lr-bit',
  'bit55',
  'pac-garbage',
  'shift-fp',
  'truncate',
  'swap-records',
  'zero-record',
  'meta-type',
  'fgraph-remove',
  'fgraph-alter-retp',
  'kretprobe-remove',
  'kretprobe-zero-ret-addr',
  'kretprobe-alter-fp',
  'lr-to-non-text',
  'lr-to-sym-code',
  'lr-to-init-text',
  'fp-to-own-pt-regs',
  'non-canonical-word',
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

/** Writes that can be undone, newest last. */
export class UndoLog {
  private readonly addrs: number[] = [];
  private readonly his: number[] = [];
  private readonly los: number[] = [];
  private readonly w = { hi: 0, lo: 0 };

  constructor(private readonly base: MutationBase) {}

  read(addr: number): { hi: number; lo: number } {
    this.base.machine.memory.read64(addr, this.w);
    return { hi: this.w.hi, lo: this.w.lo };
  }

  write(addr: number, hi: number, lo: number): void {
    const old = this.read(addr);
    this.addrs.push(addr);
    this.his.push(old.hi);
    this.los.push(old.lo);
    this.base.machine.memory.write64(addr, hi >>> 0, lo >>> 0);
  }

  undo(): void {
    const mem = this.base.machine.memory;
    for (let i = this.addrs.length - 1; i >= 0; i--)
      mem.write64(this.addrs[i]!, this.his[i]!, this.los[i]!);
    this.addrs.length = 0;
    this.his.length = 0;
    this.los.length = 0;
  }
}

type Rng = () => number;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);

/** Flips bit `b` (0..63) of the 64-bit word at `addr`. */
function flip(u: UndoLog, addr: number, b: number): void {
  const w = u.read(addr);
  if (b >= 32) u.write(addr, w.hi ^ (1 << (b - 32)), w.lo);
  else u.write(addr, w.hi, w.lo ^ (1 << b));
}

/** Applies one mutation of `kind`; returns the task to walk, or null when the kind does not apply to this base. */
export function mutate(base: MutationBase, kind: MutationKind, rng: Rng, u: UndoLog): Task | null {
  const m = base.machine;
  const t = base.task;
  const recs = base.records;
  if (recs.length === 0) return null;
  const rec = pick(rng, recs);
  const va = m.config.vaBits;
  const textAt = (start: number, end: number) =>
    start + 4 * int(rng, Math.max(1, (end - start) / 4));
  const setLr = (a: number) => u.write(rec + 8, addrHi(a), addrLo(a));
  switch (kind) {
    case 'flip-fp-bit':
      flip(u, rec, int(rng, 64));
      return t;
    case 'flip-lr-bit':
      flip(u, rec + 8, int(rng, 64));
      return t;
    case 'bit55':
      flip(u, rec + 8, 55);
      return t;
    case 'pac-garbage': {
      const w = u.read(rec + 8);
      const field = (0xffffffff << (va - 32)) & ~0x00800000;
      u.write(rec + 8, (w.hi & ~field) | (Math.floor(rng() * 0x100000000) & field), w.lo);
      return t;
    }
    case 'shift-fp': {
      const w = u.read(rec);
      const d = pick(rng, [-32, -16, -8, 8, 16, 32, 4]);
      u.write(rec, w.hi, (w.lo + d) >>> 0);
      return t;
    }
    case 'truncate':
      u.write(rec, 0, 0);
      return t;
    case 'swap-records': {
      const other = pick(rng, recs);
      const a0 = u.read(rec);
      const a1 = u.read(rec + 8);
      const b0 = u.read(other);
      const b1 = u.read(other + 8);
      u.write(rec, b0.hi, b0.lo);
      u.write(rec + 8, b1.hi, b1.lo);
      u.write(other, a0.hi, a0.lo);
      u.write(other + 8, a1.hi, a1.lo);
      return t;
    }
    case 'zero-record':
      u.write(rec, 0, 0);
      u.write(rec + 8, 0, 0);
      // What follows the zero pair is read as the meta type.
      if (rng() < 0.5) u.write(rec + 16, 0, pick(rng, [0, 1, 2, 3]));
      return t;
    case 'meta-type': {
      const meta = m.config.ptRegs.meta;
      if (meta === null) return null;
      u.write(
        t.finalFrame + meta.typeOffset,
        rng() < 0.2 ? 1 : 0,
        pick(rng, [0, 2, 3, 7, 0xffffffff]),
      );
      return t;
    }
    case 'fgraph-remove':
    case 'fgraph-alter-retp': {
      const rs = t.retStack;
      if (rs === null || rs.entries.length === 0) return null;
      const i = int(rng, rs.entries.length);
      const entries: RetStackEntry[] = rs.entries.slice();
      if (kind === 'fgraph-remove') entries.splice(i, 1);
      else {
        const e = entries[i]!;
        const key = pick(rng, recs);
        entries[i] = { ...e, retp: key, retpHi: addrHi(key), retpLo: addrLo(key) };
      }
      return { ...t, retStack: { ...rs, entries } };
    }
    case 'kretprobe-remove':
    case 'kretprobe-zero-ret-addr':
    case 'kretprobe-alter-fp': {
      const list: KretprobeInstance[] = t.kretprobes.slice();
      if (kind === 'kretprobe-zero-ret-addr') {
        const fp = pick(rng, recs);
        list.splice(int(rng, list.length + 1), 0, {
          retAddr: -(2 ** 52),
          fp,
          retAddrHi: 0,
          retAddrLo: 0,
          fpHi: addrHi(fp),
          fpLo: addrLo(fp),
        });
        return { ...t, kretprobes: list };
      }
      if (list.length === 0) return null;
      const i = int(rng, list.length);
      if (kind === 'kretprobe-remove') list.splice(i, 1);
      else {
        const fp = pick(rng, recs);
        list[i] = { ...list[i]!, fp, fpHi: addrHi(fp), fpLo: addrLo(fp) };
      }
      return { ...t, kretprobes: list };
    }
    case 'lr-to-non-text':
      setLr(m.text.core.end + 8 * int(rng, 0x1000));
      return t;
    case 'lr-to-sym-code': {
      const ranges = m.symCode.ranges;
      if (ranges.length === 0) return null;
      const r = pick(rng, ranges);
      setLr(textAt(r.start, r.end));
      return t;
    }
    case 'lr-to-init-text': {
      const init = m.text.init;
      if (init === null) return null;
      setLr(textAt(init.start, init.end));
      return t;
    }
    case 'fp-to-own-pt-regs': {
      const off = 8 * int(rng, m.config.ptRegs.size / 8);
      const a = rng() < 0.3 ? t.finalFrame : t.ptRegs + off;
      u.write(rec, addrHi(a), addrLo(a));
      return t;
    }
    case 'non-canonical-word': {
      const slot = rng() < 0.5 ? rec : rec + 8;
      const w = u.read(slot);
      // Keep the low bits, put a value in neither half above them.
      u.write(
        slot,
        (pick(rng, [0x12340000, 0x00ff0000, 0x80000000, 0xffe00000]) | (w.hi & 0xffff)) >>> 0,
        w.lo,
      );
      return t;
    }
  }
}
