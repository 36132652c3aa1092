import type { KernelOracle } from '@klpsim/kernel';
import type { WalkResult } from './walk.js';

/** How a walk compares with what the real kernel itself reported for the same task. */
export interface OracleComparison {
  /** Which of the kernel's results it was compared with. */
  readonly against: 'arch_stack_walk_reliable' | 'arch_stack_walk' | null;
  /** null when the capture has no such result. */
  readonly traceMatches: boolean | null;
  readonly verdictMatches: boolean | null;
  /** The kernel's entries, as "address symbol" lines, when they differ. */
  readonly kernelTrace: readonly string[] | null;
}

const line = (e: { address: string; symbol: string }) => `${e.address} ${e.symbol}`;

/**
 * Compares a walk with the capture's own kernel result: a reliable walk with
 * `stack_trace_save_tsk_reliable` (verdict and entries), a debug walk with
 * the unfiltered `arch_stack_walk`.
 */
export function compareWithKernel(
  result: WalkResult,
  oracle: KernelOracle | undefined,
): OracleComparison {
  if (result.walk === 'reliable') {
    const k = oracle?.reliable ?? null;
    if (k === null)
      return { against: null, traceMatches: null, verdictMatches: null, kernelTrace: null };
    const ours = result.trace.map(line);
    const theirs = k.trace.map(line);
    const same = ours.length === theirs.length && ours.every((l, i) => l === theirs[i]);
    return {
      against: 'arch_stack_walk_reliable',
      traceMatches: same,
      verdictMatches: k.ret >= 0 === result.reliable,
      kernelTrace: same ? null : theirs,
    };
  }
  const k = oracle?.traceFull ?? null;
  if (k === null)
    return { against: null, traceMatches: null, verdictMatches: null, kernelTrace: null };
  const ours = result.trace.map(line);
  const theirs = k.map(line);
  const same = ours.length === theirs.length && ours.every((l, i) => l === theirs[i]);
  return {
    against: 'arch_stack_walk',
    traceMatches: same,
    verdictMatches: null,
    kernelTrace: same ? null : theirs,
  };
}
