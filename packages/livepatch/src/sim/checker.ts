import type { Addr } from '@klpsim/arm64';
import { klpFtraceHandler } from '../ftrace.js';
import type { KlpFunc } from '../model.js';

/**
 * The consistency checker, independent of the engine's range choice: from
 * the task's true call chain, which version of each patched function each
 * frame is executing (the original, or some func's new code), against the
 * version `klp_ftrace_handler` gives the task once it is in `state`. A
 * frame running any other version means the task would return into one
 * version after calling another: the mix the consistency model forbids.
 * Returns the function's name, or null when the chain is consistent.
 */
export function mixedVersionOn(
  funcStacks: ReadonlyMap<Addr, readonly KlpFunc[]>,
  chain: readonly Addr[],
  state: number,
): string | null {
  for (const stack of funcStacks.values()) {
    const top = stack[0];
    if (top === undefined) continue;
    const runs = klpFtraceHandler(stack, state);
    for (let i = 0; i < chain.length; i++) {
      const pc = chain[i]!;
      const executing = versionAt(stack, pc);
      if (executing !== undefined && executing !== runs) return top.oldName;
    }
  }
  return null;
}

/** The func whose new code holds `pc` (null: the original holds it), or undefined if no version does. */
function versionAt(stack: readonly KlpFunc[], pc: Addr): KlpFunc | null | undefined {
  const f0 = stack[0]!;
  if (pc >= f0.oldFunc && pc < f0.oldFunc + f0.oldSize) return null;
  for (const f of stack) if (!f.nop && pc >= f.newFunc && pc < f.newFunc + f.newSize) return f;
  return undefined;
}
