import { isCallWord } from '@klpsim/arm64';
import { CHECK_CALL_SITE, CHECK_START_IN_SCHEDULE, Source, type UnwindState } from './state.js';
import type { TraceBuffer } from './trace.js';

/**
 * Checks no kernel version has, each a switch on any policy. Both come from
 * the 2015 "livepatch: reliable stack trace" discussion.
 */

export const CHECK_NAMES = ['call-site', 'start-in-schedule'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/** The CHECK_* bits for a list of check names. */
export function checkBits(names: readonly CheckName[]): number {
  let bits = 0;
  for (const n of names) bits |= n === 'call-site' ? CHECK_CALL_SITE : CHECK_START_IN_SCHEDULE;
  return bits;
}

/**
 * `call-site` (Josh Poimboeuf's proposal): the word before a return address
 * must be a call. A pc taken from pt_regs is where an exception hit, not a
 * return address, so it is exempt. A capture holds only the core text: a
 * return address in text whose bytes it lacks (init text, freed after boot)
 * cannot be refuted and passes; one outside all text fails.
 */
function passesCallSite(st: UnwindState): boolean {
  if (st.source === Source.REGS_PC) return true;
  const word = st.machine.memory.read32(st.pc - 4);
  if (word === -1) return st.machine.text.kernelTextAddressOrInit(st.pc - 4);
  return isCallWord(word);
}

/**
 * `start-in-schedule`: a blocked task's walk must begin in the context
 * switch ("make sure it starts from a __schedule() call at the top"), that is
 * entry 0 in `__switch_to` and entry 1 in `__schedule`.
 */
function passesStartInSchedule(st: UnwindState, index: number): boolean {
  if (!st.fromTask || index > 1) return true;
  const range = index === 0 ? st.machine.special.switchTo : st.machine.special.schedule;
  return range !== null && st.pc >= range.start && st.pc < range.end;
}

/**
 * Hands the current pc to the trace buffer, then runs the enabled checks on
 * it. False when the walk must stop: the buffer is full, or (in a reliable
 * walk) a check failed. In a debug walk a failed check is only recorded.
 */
export function consumeEntry(st: UnwindState, trace: TraceBuffer): boolean {
  const index = trace.len;
  const room = trace.store(st.pc, st.pcHi, st.pcLo, st.source, st.flags, st.curType);
  if (trace.len === index) {
    st.setReason('BUFFER_FULL', st.pc);
    return false;
  }
  // Reasons found here concern this very entry.
  st.consumed = index;
  if (st.checks !== 0) {
    let ok = true;
    if ((st.checks & CHECK_START_IN_SCHEDULE) !== 0 && !passesStartInSchedule(st, index)) {
      st.setReason('NOT_IN_SCHEDULE', st.pc);
      ok = false;
    }
    if (ok && (st.checks & CHECK_CALL_SITE) !== 0 && !passesCallSite(st)) {
      st.setReason('NOT_AFTER_CALL', st.pc);
      ok = false;
    }
    if (!ok && st.needReliable) return false;
  }
  if (!room) {
    st.setReason('BUFFER_FULL', st.pc);
    return false;
  }
  st.consumed = trace.len;
  return true;
}
