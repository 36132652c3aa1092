import type { Machine } from '@klpsim/kernel';
import { consumeEntry } from '../checks.js';
import { recoverReturnAddress } from '../recover.js';
import { EINVAL, Source, type UnwindState } from '../state.js';
import { nextFrameRecordConsuming, takeRecordPc } from '../step.js';
import type { TraceBuffer } from '../trace.js';
import type { Policy, PolicyMismatch } from './policy.js';

/**
 * Mainline arm64 (arch/arm64/kernel/stacktrace.c, 6.13+ meta records, with
 * `arch_stack_walk_reliable` as merged for 6.17): one-way stack
 * consumption, FINAL / PT_REGS meta records, tracer recovery before every
 * consume, and a reliable consumer that refuses the first pc taken from
 * pt_regs: at an exception boundary the LR may have been live.
 */

function consume(st: UnwindState, trace: TraceBuffer): boolean {
  if (st.needReliable && st.source === Source.REGS_PC) {
    st.setReason('EXCEPTION_BOUNDARY', st.pc);
    return false;
  }
  return consumeEntry(st, trace);
}

/** `kunwind_next`: one frame record (or meta record), PAC strip, recovery. */
function next(st: UnwindState): number {
  st.flags = 0;
  if (st.source === Source.UNKNOWN) return EINVAL;
  const err = nextFrameRecordConsuming(st);
  if (err !== 0) return err;
  takeRecordPc(st);
  // Only a trampoline address needs recovering; test for one before calling out.
  return st.pc === st.returnToHandler || st.pc === st.kretprobeTrampoline
    ? recoverReturnAddress(st)
    : 0;
}

/** Refuses a kernel without meta records: a policy built on mainline's end rule cannot walk it. */
export function needsMetaRecords(name: string, machine: Machine): PolicyMismatch | null {
  if (machine.config.ptRegs.meta !== null) return null;
  return {
    code: 'KLPSIM_POLICY_LAYOUT_MISMATCH',
    message: `${name} needs meta frame records in pt_regs->stackframe (6.13+); ${machine.config.release} has none, so it cannot tell a FINAL record from an exception boundary. Use --policy linux-6.1, linux-6.6 or symcode-v8.`,
  };
}

export const mainline: Policy = {
  name: 'mainline',
  summary: 'Linux 6.13+ unwinder with meta frame records; arch_stack_walk_reliable as in 6.17+',
  hasReliableWalk: true,
  rules: {
    bounds: 'consume',
    end: 'final-meta-record',
    metaRecords: true,
    recoverStart: true,
    efiStack: true,
    refuses: ['regs-pc'],
    frameState: 'none',
  },
  checkLayout: (machine) => needsMetaRecords('mainline', machine),
  consume,
  next,
  isReliable: (st) => st.source !== Source.REGS_PC,
  recover: recoverReturnAddress,
};
