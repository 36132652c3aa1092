import type { Task } from '@klpsim/kernel';
import { EINVAL, FLAG_FGRAPH, FLAG_KRETPROBE, type UnwindState } from './state.js';

/**
 * Recovering return addresses that a tracer rewrote (SEMANTICS.md section 4).
 * Both lookups key on the frame pointer the unwinder holds after reading the
 * record: arm64's function-graph tracer records the caller's fp as `retp`,
 * and a kretprobe instance records it as `fp`. The kernel compares raw
 * 64-bit words, so the keys are compared as exact halves: two equal
 * non-canonical values match, as they do in the kernel.
 */

/** No entry or instance matched. */
const NOT_FOUND = -1;

/**
 * `ftrace_graph_ret_addr` of the 6.8+ shadow stack (kernel/trace/fgraph.c):
 * search from `graph_idx` (or the top) downwards for the frame whose `retp`
 * is `fp`, skipping tail-call frames that themselves returned to the handler,
 * and remember where it was found. Returns the entry's index, or NOT_FOUND.
 */
export function ftraceGraphRetAddr(st: UnwindState): number {
  const rs = st.task.retStack;
  if (rs === null) return NOT_FOUND;
  const top = rs.layout === 'array' ? rs.curr + 1 : rs.curr;
  const from = st.graphIdx !== 0 ? st.graphIdx : top;
  const entries = rs.entries;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.pos >= from) continue;
    if (e.retpHi === st.fpHi && e.retpLo === st.fpLo && e.ret !== st.returnToHandler) {
      st.graphIdx = e.pos;
      return i;
    }
  }
  return NOT_FOUND;
}

/**
 * `ftrace_graph_ret_addr` as 6.1 calls it (no index): scan the array from
 * its oldest entry up to `curr_ret_stack` for the first `retp` equal to `fp`.
 * Returns the entry's index, or NOT_FOUND.
 */
export function ftraceGraphRetAddrFromBottom(task: Task, fpHi: number, fpLo: number): number {
  const rs = task.retStack;
  if (rs === null || rs.curr < 0) return NOT_FOUND;
  const top = rs.layout === 'array' ? rs.curr : rs.curr - 1;
  const entries = rs.entries;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.pos > top) break;
    if (e.retpHi === fpHi && e.retpLo === fpLo) return i;
  }
  return NOT_FOUND;
}

/**
 * `kretprobe_find_ret_addr` (kernel/kprobes.c): take the task's instances
 * from after `kr_cur`, skipping ones whose own return address is the
 * trampoline (`__kretprobe_find_ret_addr`), until one whose `fp` matches.
 * An instance whose `ret_addr` is 0 ends the search with 0 (`if (!ret)
 * break;`), whatever its fp: the kernel does not look past it. Returns the
 * instance's index, or NOT_FOUND for that 0.
 */
export function kretprobeFindRetAddr(st: UnwindState): number {
  const list = st.task.kretprobes;
  for (let i = st.krCur + 1; i < list.length; i++) {
    const ri = list[i]!;
    if (ri.retAddr === st.kretprobeTrampoline) continue;
    st.krCur = i;
    if ((ri.retAddrHi | ri.retAddrLo) === 0) return NOT_FOUND;
    if (ri.fpHi === st.fpHi && ri.fpLo === st.fpLo) return i;
  }
  return NOT_FOUND;
}

/**
 * The function-graph half of both recoveries: `if (state->pc == orig_pc)
 * return -EINVAL` when nothing was found, or the entry found is itself the
 * handler. `i` is the entry the kernel's lookup returned, or NOT_FOUND.
 */
function takeFgraphEntry(st: UnwindState, i: number): number {
  const e = i === NOT_FOUND ? null : st.task.retStack!.entries[i]!;
  if (e === null || (e.retHi === st.pcHi && e.retLo === st.pcLo)) {
    st.setReason('FGRAPH_UNRECOVERABLE', st.fp);
    return EINVAL;
  }
  st.setPcExact(e.retHi, e.retLo);
  st.flags |= FLAG_FGRAPH;
  return 0;
}

/** The kretprobe instance `i` found for the current pc, as the pc. */
function takeKretprobe(st: UnwindState, i: number): void {
  const ri = st.task.kretprobes[i]!;
  st.setPcExact(ri.retAddrHi, ri.retAddrLo);
  st.flags |= FLAG_KRETPROBE;
}

/**
 * `kunwind_recover_return_address` (mainline): the function-graph tracer
 * first, then kretprobes, since a kretprobed function can also be traced.
 * Every reliability check afterwards sees the recovered pc, never a
 * trampoline. A kretprobe that cannot be matched fails the walk.
 */
export function recoverReturnAddress(st: UnwindState): number {
  if (st.pc === st.returnToHandler && st.hasRetStack) {
    const err = takeFgraphEntry(st, ftraceGraphRetAddr(st));
    if (err !== 0) return err;
  }
  if (st.pc === st.kretprobeTrampoline) {
    const i = kretprobeFindRetAddr(st);
    if (i === NOT_FOUND) {
      st.setReason('KRETPROBE_UNRECOVERABLE', st.fp);
      return EINVAL;
    }
    takeKretprobe(st, i);
  }
  return 0;
}

/**
 * `unwind_recover_return_address` before 6.13 (6.1 has the same code inline
 * in `unwind_next`): `ftrace_graph_ret_addr(task, NULL, ...)` searches the
 * array from the bottom, and `kretprobe_find_ret_addr`'s 0 for an
 * unmatched instance is taken as the pc: the walk goes on at pc 0.
 */
export function recoverReturnAddressBottomUp(st: UnwindState): number {
  if (st.pc === st.returnToHandler && st.hasRetStack) {
    const err = takeFgraphEntry(st, ftraceGraphRetAddrFromBottom(st.task, st.fpHi, st.fpLo));
    if (err !== 0) return err;
  }
  if (st.pc === st.kretprobeTrampoline) {
    const i = kretprobeFindRetAddr(st);
    if (i === NOT_FOUND) {
      st.setReason('KRETPROBE_UNRECOVERABLE', st.fp);
      st.setPcExact(0, 0);
      st.flags |= FLAG_KRETPROBE;
    } else takeKretprobe(st, i);
  }
  return 0;
}
