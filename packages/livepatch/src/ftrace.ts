import type { Addr } from '@klpsim/arm64';
import { KLP_TRANSITION_UNPATCHED, type KlpFunc, type LpTask } from './model.js';
import type { KlpCore } from './transition.js';

/**
 * `klp_ftrace_handler` (kernel/livepatch/patch.c): which version of a
 * patched function a task runs now. The newest func on the function's
 * func_stack wins; while it is in transition, a task still in the
 * UNPATCHED state runs the previous one (or the original); a nop runs the
 * original. Returns the func whose new code runs, or null for the original.
 */
export function klpFtraceHandler(core: KlpCore, task: LpTask, oldFunc: Addr): KlpFunc | null {
  const stack = core.funcStacks.get(oldFunc);
  if (stack === undefined || stack.length === 0) return null;
  let func: KlpFunc | null = stack[0]!;
  if (func.transition && task.patchState === KLP_TRANSITION_UNPATCHED) func = stack[1] ?? null;
  if (func?.nop) return null;
  return func;
}
