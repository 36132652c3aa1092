import { formatAddr, parseAddr, stripInsnPac } from '@klpsim/arm64';
import { decodeFrameInsn, type FrameLookup, lazyFrameTableOf, STATE_NAMES } from '@klpsim/frames';
import type { KernelOracle, Machine, Task } from '@klpsim/kernel';
import { POLICIES, type PolicyName } from '../policies/index.js';
import type { ReasonCode } from '../reason.js';
import { Source } from '../state.js';
import { entrySource } from '../trace.js';
import { type TraceEntry, Walker } from '../walk.js';
import { policiesFor } from './judge.js';

/**
 * A real capture's tasks stopped at an exception boundary, under each
 * policy: what each walk says, and whether the kernel's own debug trace
 * of the task is complete. The evidence is the kernel's: the frame state
 * at the interrupted pc (from its text), the LR the exception saved in
 * pt_regs, and the instruction before that LR in its text.
 */

export interface BoundaryVerdict {
  readonly policy: PolicyName;
  /** null: a debug walk (the policy has no reliable one). */
  readonly reliable: boolean | null;
  readonly reason: ReasonCode | null;
  readonly trace: readonly TraceEntry[];
}

export interface BoundaryTask {
  readonly pid: number;
  readonly comm: string;
  /** The interrupted pc (pt_regs->pc) and the frame state there. */
  readonly pc: string;
  readonly symbol: string;
  readonly state: 'L' | 'S' | 'F' | 'none';
  /** pt_regs->regs[30], PAC-stripped, and the function the call before it calls (calls null: no `bl` there); null when unreadable. */
  readonly lr: {
    readonly address: string;
    readonly symbol: string;
    readonly calls: string | null;
  } | null;
  /**
   * The caller a frame-pointer walk cannot see (state L: the LR, when the
   * word before it calls the interrupted function), or null when there is
   * none (S is reported only as "unknown": the record is not at x29).
   */
  readonly hidden: string | null;
  /** Whether the kernel's own `arch_stack_walk` holds `hidden`: null when there is nothing to miss or no kernel trace. */
  readonly kernelTraceComplete: boolean | null;
  readonly verdicts: readonly BoundaryVerdict[];
}

/** The boundary tasks of `machine` (their mainline debug walk has a pt_regs pc) under `policies`. */
export function boundaryTasks(
  machine: Machine,
  oracle: ReadonlyMap<number, KernelOracle>,
  policies: readonly PolicyName[],
): BoundaryTask[] {
  const probe = new Walker(machine, POLICIES.mainline);
  const frames = lazyFrameTableOf(machine);
  const out: BoundaryTask[] = [];
  for (const task of machine.tasks) {
    probe.walk(task, { reliable: false });
    // The first boundary: the one mainline's reliable walk stops at, whose pt_regs it keeps.
    let at = -1;
    for (let i = 0; i < probe.trace.len && at < 0; i++)
      if (entrySource(probe.trace, i) === Source.REGS_PC) at = i;
    if (at < 0) continue;
    out.push(describe(machine, oracle, policies, frames, task, probe, at));
  }
  return out;
}

function describe(
  machine: Machine,
  oracle: ReadonlyMap<number, KernelOracle>,
  policies: readonly PolicyName[],
  frames: FrameLookup,
  task: Task,
  probe: Walker,
  at: number,
): BoundaryTask {
  const ks = machine.kallsyms;
  const pc = probe.trace.pcs[at]!;
  const state = STATE_NAMES[frames.stateAt(pc)]!;
  // The pt_regs of that boundary, where mainline's reliable walk refused its pc: regs[30] follows regs[29].
  probe.walk(task, { reliable: true });
  const st = probe.st;
  const w = { hi: 0, lo: 0 };
  const layout = machine.config.ptRegs;
  const readable =
    st.reason === 'EXCEPTION_BOUNDARY' &&
    machine.memory.read64(st.regs + layout.regs29Offset + 8, w);
  const lr = readable ? stripInsnPac(w.hi, w.lo, st.kernelMask, st.userMask) : Number.NaN;
  const site = Number.isNaN(lr) ? -1 : machine.memory.read32(lr - 4);
  const insn = site < 0 ? null : decodeFrameInsn(site >>> 0);
  const callee = insn?.kind === 'bl' ? lr - 4 + insn.offset : Number.NaN;
  const calls = Number.isNaN(callee) ? null : (ks.lookup(callee)?.name ?? formatAddr(callee));
  const interrupted = ks.lookup(pc)?.name ?? null;
  const hidden = state === 'L' && calls !== null && calls === interrupted ? formatAddr(lr) : null;
  const full = oracle.get(task.pid)?.traceFull ?? null;
  const kernelTraceComplete =
    hidden === null || full === null ? null : full.some((e) => parseAddr(e.address) === lr);
  const verdicts = policiesFor(machine, policies).map((p): BoundaryVerdict => {
    const walker = new Walker(machine, POLICIES[p]);
    const reliable = POLICIES[p].hasReliableWalk;
    walker.walk(task, { reliable });
    const r = walker.result();
    return { policy: p, reliable: r.reliable, reason: r.reason?.code ?? null, trace: r.trace };
  });
  return {
    pid: task.pid,
    comm: task.comm,
    pc: formatAddr(pc),
    symbol: ks.formatS(pc),
    state,
    lr: Number.isNaN(lr) ? null : { address: formatAddr(lr), symbol: ks.formatS(lr), calls },
    hidden,
    kernelTraceComplete,
    verdicts,
  };
}
