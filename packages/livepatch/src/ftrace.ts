import type { Addr } from '@klpsim/arm64';
import type { Machine } from '@klpsim/kernel';
import { KLP_TRANSITION_UNPATCHED, type KlpFunc } from './model.js';

/**
 * The ftrace side of livepatch (kernel/livepatch/patch.c, kernel/trace/ftrace.c):
 * which version of a patched function a task runs, which functions ftrace
 * can patch at all, and who else holds a function's instruction pointer.
 */

/**
 * `klp_ftrace_handler`: which version of a patched function a task in
 * `patchState` runs now. The newest func on the function's func_stack
 * wins; while it is in transition, a task still in the UNPATCHED state runs
 * the previous one (or the original); a nop runs the original. Returns the
 * func whose new code runs, or null for the original.
 */
export function klpFtraceHandler(
  funcStack: readonly KlpFunc[] | undefined,
  patchState: number,
): KlpFunc | null {
  if (funcStack === undefined || funcStack.length === 0) return null;
  let func: KlpFunc | null = funcStack[0]!;
  if (func.transition && patchState === KLP_TRANSITION_UNPATCHED) func = funcStack[1] ?? null;
  if (func?.nop) return null;
  return func;
}

/** `mov x9, x30`: the first word of arm64's patchable function entry once `ftrace_init_nop` ran. */
const MOV_X9_X30 = 0xaa1e03e9;
/** `bti c` and `bti jc`: a landing pad the compiler puts before the patchable entry. */
const BTI_C = 0xd503245f;
const BTI_JC = 0xd50324df;

/** Why ftrace cannot patch a function. */
export type NoFtraceLocation = 'notrace' | 'sym-code' | 'init';

/**
 * `ftrace_location(old_func)`: can ftrace attach at this function's entry?
 * On a kernel whose text we have (a capture with patchable entries), the
 * text says it: a traced function starts with `mov x9, x30` (after a BTI
 * pad, if any); notrace, noinstr and assembly functions do not. Init text
 * lost its ftrace records when it was freed (`ftrace_free_init_mem`).
 * Built kernels have no pads, so there every C function is traceable
 * except those the scenario declares `notrace` and SYM_CODE assembly.
 * Returns null when it can, else why not.
 */
export function noFtraceLocation(
  machine: Machine,
  addr: Addr,
  name: string,
  notrace: ReadonlySet<string>,
): NoFtraceLocation | null {
  if (notrace.has(name)) return 'notrace';
  if (machine.text.isKernelInittext(addr)) return 'init';
  if (machine.symCode.contains(addr)) return 'sym-code';
  if (!machine.config.ftracePatchableEntry) return null;
  let word = machine.memory.read32(addr);
  if (word === BTI_C || word === BTI_JC) word = machine.memory.read32(addr + 4);
  // Text we cannot read (a module without bytes) cannot be refuted.
  if (word === -1 || word === MOV_X9_X30) return null;
  return 'notrace';
}

/** Another user of FTRACE_OPS_FL_IPMODIFY on a function: the kernel allows one per address. */
export interface IpmodifyUser {
  readonly function: string;
  /** A kprobe with a post_handler (its ftrace ops set IPMODIFY), or another ftrace IPMODIFY user. */
  readonly owner: 'kprobe' | 'ftrace';
}
