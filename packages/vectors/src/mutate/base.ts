import {
  type BuiltMachine,
  type BuiltStart,
  buildMachine,
  type KretprobeInstance,
  type Machine,
  type RetStackEntry,
  type Task,
} from '@klpsim/kernel';
import type { LoadedVector } from '../load.js';

/**
 * One task of a recipe vector, built once, that mutations are applied to
 * and undone from. Its clean frame records are the ground truth the
 * soundness oracle knows: where the recipe put every record and, for each
 * hooked return, the tracer entry that belongs to it.
 */
export interface MutationBase {
  readonly vectorId: string;
  readonly machine: Machine;
  /** What the builder made: the text's frame state (mutations change stacks, never text). */
  readonly built: BuiltMachine;
  readonly task: Task;
  readonly from: BuiltStart;
  /** The recipe's frame records, innermost first (the record at `records[j]` holds frame j+1's return address). */
  readonly records: readonly number[];
  /**
   * The fgraph entry / kretprobe instance that hooked a return, by its key:
   * the caller's fp saved beside the hooked LR. A hooked return belongs to
   * the record content (fp, lr) it was saved with, wherever that content is.
   */
  readonly fgraphByKey: ReadonlyMap<number, RetStackEntry>;
  readonly kretprobeByKey: ReadonlyMap<number, KretprobeInstance>;
}

/** Every task of every recipe vector, as mutation bases (tasks whose records cannot be followed are left out). */
export function mutationBases(vectors: readonly LoadedVector[]): MutationBase[] {
  const out: MutationBase[] = [];
  for (const { vector } of vectors) {
    if (vector.recipe === undefined) continue;
    const b = buildMachine(vector.recipe);
    if (!b.ok) continue;
    for (const bt of b.value.tasks) {
      const from = bt.from;
      const start = from.kind === 'caller' ? from.fp : bt.task.cpuContext.fp;
      const records = cleanRecords(b.value.machine, bt.task, start);
      if (records === null) continue;
      out.push({
        vectorId: vector.id,
        machine: b.value.machine,
        built: b.value,
        task: bt.task,
        from,
        records,
        fgraphByKey: new Map((bt.task.retStack?.entries ?? []).map((e) => [e.retp, e])),
        kretprobeByKey: new Map(bt.task.kretprobes.map((k) => [k.fp, k])),
      });
    }
  }
  return out;
}

/**
 * Is the record at `r` the `stackframe` of a pt_regs that `kernel_entry`
 * pushed? Mainline writes a zero `{fp, lr}` there; 6.1 writes `{x29, elr}`,
 * which equal the saved `regs[29]` and `pc` beside it. A chain through one
 * crosses an exception boundary, where the LR may have been live, so no
 * reliable walk of it can be right.
 */
export function isExceptionRecord(m: Machine, r: number): boolean {
  const l = m.config.ptRegs;
  const regs = r - l.stackframeOffset;
  const a = { hi: 0, lo: 0 };
  const b = { hi: 0, lo: 0 };
  if (!m.memory.read64(r, a) || !m.memory.read64(r + 8, b)) return false;
  if ((a.hi | a.lo | b.hi | b.lo) === 0) return true;
  const x29 = { hi: 0, lo: 0 };
  const pc = { hi: 0, lo: 0 };
  if (!m.memory.read64(regs + l.regs29Offset, x29) || !m.memory.read64(regs + l.pcOffset, pc))
    return false;
  return x29.hi === a.hi && x29.lo === a.lo && pc.hi === b.hi && pc.lo === b.lo;
}

/** The records of the clean, just-built chain, by following its fps to the final frame; null if they do not lead there. */
function cleanRecords(m: Machine, task: Task, start: number): number[] | null {
  const out: number[] = [];
  const w = { hi: 0, lo: 0 };
  let fp = start;
  while (fp !== task.finalFrame) {
    if (out.length > 4096 || !m.memory.read64(fp, w)) return null;
    out.push(fp);
    const lr = { hi: 0, lo: 0 };
    m.memory.read64(fp + 8, lr);
    // A PT_REGS meta record: the chain goes on at the interrupted x29.
    if ((w.hi | w.lo | lr.hi | lr.lo) === 0) {
      const layout = m.config.ptRegs;
      if (!m.memory.read64(fp - layout.stackframeOffset + layout.regs29Offset, w)) return null;
    }
    // A built chain's fps are kernel addresses: fold the high word back.
    if (w.hi < 0xfff00000) return null;
    fp = (w.hi - 0xfff00000) * 4294967296 + w.lo;
  }
  return out;
}
