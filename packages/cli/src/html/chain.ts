import { type Addr, foldAddress, formatAddr } from '@klpsim/arm64';
import { type Machine, ptrauthStripInsnPac, type Task } from '@klpsim/kernel';

/**
 * The frame-record chain of a blocked task as it sits in memory, read
 * without any policy's rules, for drawing: each record's address, the fp it
 * points to and its (PAC-stripped) return address, with meta records and
 * the pt_regs they sit in. The policies' verdicts are drawn beside it.
 */
export interface ChainRecord {
  readonly at: Addr;
  readonly kind: 'frame' | 'final' | 'pt_regs';
  readonly fp: Addr;
  readonly lr: Addr;
  /** For pt_regs: the interrupted pc (regs->pc). */
  readonly regsPc: Addr | null;
  /** The return address is a tracer's trampoline. */
  readonly trampoline: 'fgraph' | 'kretprobe' | null;
}

export interface Chain {
  readonly records: readonly ChainRecord[];
  /** Why the chain stops where it does (beyond the last record). */
  readonly end: string;
}

// A real kernel's THREAD_SIZE holds at most about a thousand 16-byte records.
const MAX_RECORDS = 1024;
// struct pt_regs starts with regs[0..30]: x29 is the 30th word.
const REGS_X29 = 29 * 8;

/** Reads a task's chain from `cpu_context.fp` up its task stack. */
export function readChain(machine: Machine, task: Task): Chain {
  const mem = machine.memory;
  const cfg = machine.config;
  const w = { hi: 0, lo: 0 };
  const read = (a: Addr): Addr | null => (mem.read64(a, w) ? foldAddress(w.hi, w.lo) : null);
  const readLr = (a: Addr): Addr | null =>
    mem.read64(a, w) ? ptrauthStripInsnPac(cfg, w.hi, w.lo) : null;
  const trampoline = (lr: Addr) =>
    lr === machine.special.returnToHandler
      ? ('fgraph' as const)
      : lr === machine.special.kretprobeTrampoline
        ? ('kretprobe' as const)
        : null;
  const records: ChainRecord[] = [];
  let fp = task.cpuContext.fp;
  for (let i = 0; i < MAX_RECORDS; i++) {
    if (Number.isNaN(fp) || fp < task.stack.low || fp + 16 > task.stack.high)
      return { records, end: `fp ${formatAddr(fp)} is not on the task stack` };
    const zero =
      mem.read64(fp, w) &&
      w.hi === 0 &&
      w.lo === 0 &&
      mem.read64(fp + 8, w) &&
      w.hi === 0 &&
      w.lo === 0;
    const next = read(fp);
    const lr = readLr(fp + 8);
    if (next === null || lr === null) return { records, end: `${formatAddr(fp)} is not mapped` };
    const meta = cfg.ptRegs.meta;
    // {fp = 0, lr = 0}: a meta record (6.13+), whose type says what it is.
    if (zero && meta !== null) {
      mem.read64(fp + meta.typeOffset, w);
      if (w.lo === meta.typeFinal) {
        records.push({ at: fp, kind: 'final', fp: 0, lr: 0, regsPc: null, trampoline: null });
        return { records, end: 'the FINAL record' };
      }
      if (w.lo === meta.typePtRegs) {
        const regs = fp - cfg.ptRegs.stackframeOffset;
        const x29 = read(regs + REGS_X29) ?? Number.NaN;
        const pc = readLr(regs + cfg.ptRegs.pcOffset);
        records.push({ at: fp, kind: 'pt_regs', fp: x29, lr: 0, regsPc: pc, trampoline: null });
        fp = x29;
        continue;
      }
      return { records, end: `a meta record of unknown type ${w.lo}` };
    }
    if (fp === task.finalFrame) {
      // Before 6.13 the end is where fp reaches pt_regs->stackframe, whatever it holds.
      records.push({
        at: fp,
        kind: 'final',
        fp: zero ? 0 : next,
        lr: zero ? 0 : lr,
        regsPc: null,
        trampoline: null,
      });
      return { records, end: "the task's pt_regs" };
    }
    records.push({ at: fp, kind: 'frame', fp: next, lr, regsPc: null, trampoline: trampoline(lr) });
    if (next <= fp)
      return { records, end: `the next fp ${formatAddr(next)} is not above this one` };
    fp = next;
  }
  return { records, end: `more than ${MAX_RECORDS} records` };
}
