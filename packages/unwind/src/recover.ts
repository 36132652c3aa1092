import type { Addr } from '@klpsim/arm64';
import type { Task } from '@klpsim/kernel';
import { EINVAL, FLAG_FGRAPH, FLAG_KRETPROBE, type UnwindState, ZERO_ADDR } from './state.js';

/**
 * Recovering return addresses that a tracer rewrote (SEMANTICS.md section 4).
 * Both lookups key on the frame pointer the unwinder holds after reading the
 * record: arm64's function-graph tracer records the caller's fp as `retp`,
 * and a kretprobe instance records it as `fp`.
 */

/**
 * `ftrace_graph_ret_addr` of the 6.8+ shadow stack (kernel/trace/fgraph.c):
 * search from `graph_idx` (or the top) downwards for the frame whose `retp`
 * is `fp`, skipping tail-call frames that themselves returned to the handler,
 * and remember where it was found. Returns `ret` itself when nothing matches.
 */
export function ftraceGraphRetAddr(
  st: UnwindState,
  ret: Addr,
  fp: Addr,
  returnToHandler: Addr,
): Addr {
  const rs = st.task.retStack;
  if (rs === null) return ret;
  const top = rs.layout === 'array' ? rs.curr + 1 : rs.curr;
  const from = st.graphIdx !== 0 ? st.graphIdx : top;
  const entries = rs.entries;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.pos >= from) continue;
    if (e.retp === fp && e.ret !== returnToHandler) {
      st.graphIdx = e.pos;
      return e.ret;
    }
  }
  return ret;
}

/**
 * `ftrace_graph_ret_addr` as 6.1 calls it (no index): scan the array from
 * its oldest entry up to `curr_ret_stack` for the first `retp` equal to `fp`.
 */
export function ftraceGraphRetAddrFromBottom(task: Task, ret: Addr, fp: Addr): Addr {
  const rs = task.retStack;
  if (rs === null || rs.curr < 0) return ret;
  const top = rs.layout === 'array' ? rs.curr : rs.curr - 1;
  for (const e of rs.entries) {
    if (e.pos > top) break;
    if (e.retp === fp) return e.ret;
  }
  return ret;
}

/**
 * `kretprobe_find_ret_addr` (kernel/kprobes.c): walk the task's instances
 * from after `kr_cur`, skipping ones whose own return address is the
 * trampoline, until one whose `fp` matches. Returns 0 (folded) when none does.
 */
export function kretprobeFindRetAddr(st: UnwindState, fp: Addr, trampoline: Addr): Addr {
  const list = st.task.kretprobes;
  for (let i = st.krCur + 1; i < list.length; i++) {
    const ri = list[i]!;
    if (ri.retAddr === trampoline) continue;
    st.krCur = i;
    if (ri.fp === fp) return ri.retAddr;
  }
  return ZERO_ADDR;
}

/** Which kernel's recovery: mainline's, or 6.1's (array searched from the bottom; a kretprobe miss goes on as pc 0). */
export const RECOVER_MAINLINE = 0;
export const RECOVER_LINUX_61 = 1;

/**
 * `kunwind_recover_return_address` (mainline), and the same step of 6.1's
 * `unwind_next`: the function-graph tracer first, then kretprobes, since a
 * kretprobed function can also be traced. Every reliability check
 * afterwards sees the recovered pc, never a trampoline.
 */
export function recoverReturnAddress(st: UnwindState, version = RECOVER_MAINLINE): number {
  if (st.pc === st.returnToHandler && st.hasRetStack) {
    const orig =
      version === RECOVER_LINUX_61
        ? ftraceGraphRetAddrFromBottom(st.task, st.pc, st.fp)
        : ftraceGraphRetAddr(st, st.pc, st.fp, st.returnToHandler);
    if (orig === st.pc) {
      st.setReason('FGRAPH_UNRECOVERABLE', st.fp);
      return EINVAL;
    }
    st.pc = orig;
    st.flags |= FLAG_FGRAPH;
  }
  if (st.pc === st.kretprobeTrampoline) {
    const orig = kretprobeFindRetAddr(st, st.fp, st.kretprobeTrampoline);
    if (orig === ZERO_ADDR) {
      st.setReason('KRETPROBE_UNRECOVERABLE', st.fp);
      if (version === RECOVER_MAINLINE) return EINVAL;
    }
    st.pc = orig;
    st.flags |= FLAG_KRETPROBE;
  }
  return 0;
}
