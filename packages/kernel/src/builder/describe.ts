import { z } from 'zod';
import { STACK_TYPE_NAMES } from '../machine.js';
import { FRAME_SHAPES } from './prologue.js';

/**
 * The builder's input: a kernel and its tasks described as call chains.
 * Zod first; the TypeScript types are derived from it (and so will the
 * published JSON Schema be), never written twice.
 */

export const SECTIONS = [
  'text',
  'entry',
  'sched',
  'lock',
  'irqentry',
  'init',
  'module',
  'bpf',
  'ftrace-trampoline',
  'kprobe-slot',
] as const;
export const CALL_KINDS = ['bl', 'blr', 'blraa', 'blrab', 'blraaz', 'blrabz'] as const;
export const CORRUPTIONS = [
  'misaligned-fp',
  'loop',
  'other-stack',
  'off-stack',
  'truncated',
  'lr-not-text',
  'lr-not-after-call',
  'missing-fgraph',
  'missing-kretprobe',
  'final-misplaced',
  'meta-unknown',
] as const;
/** The stacks a built frame can live on: every stack type but 'unknown'. */
export const [, ...STACK_NAMES] = STACK_TYPE_NAMES;

export const functionDescSchema = z.strictObject({
  name: z.string().min(1),
  /** Bytes; a multiple of 4. */
  size: z.number().int().min(0x40).max(0x100000).multipleOf(4).optional(),
  section: z.enum(SECTIONS).optional(),
  /** For section "module": which module. */
  module: z.string().optional(),
  /** Add this function to sym_code_functions (SYM_CODE assembly). */
  symCode: z.boolean().optional(),
  /**
   * Force the body's layout (prologue.ts). A function some chain uses as a
   * call site must keep 'push'; an exception's interrupted function may have any.
   */
  shape: z.enum(FRAME_SHAPES).optional(),
});

export const exceptionDescSchema = z.strictObject({
  /**
   * "saved": the interrupted function had pushed its frame record (x29 is its
   * own frame). "unsaved": it was interrupted before (a leaf, or mid-prologue):
   * x29 is still its caller's frame and its return address lives only in LR,
   * so a walk through the pt_regs silently loses the caller.
   * "text": the frame state of the function's own text at `at` (L, S or F)
   * decides what the stack and pt_regs hold, as the kernel would leave them.
   */
  lr: z.enum(['saved', 'unsaved', 'text']).default('saved'),
  /**
   * With "saved": the function had clobbered LR with `ADR LR, <fn>` (to
   * `BLR LR` next) when the exception hit, so `regs[30]` holds this
   * function's address, not a return address
   * (Documentation/livepatch/reliable-stacktrace.rst 4.6).
   */
  lrTo: z.string().min(1).optional(),
});

export const frameDescSchema = z.strictObject({
  /** The function this entry of the backtrace is in. */
  fn: z.string().min(1),
  /**
   * Offset of the entry's pc in `fn`: for a return address, just after the
   * call. 0 (the function's first instruction) only for an exception with lr "text".
   */
  at: z.number().int().min(0).max(0x100000).multipleOf(4).optional(),
  /** The call instruction before the return address. */
  call: z.enum(CALL_KINDS).optional(),
  /** Bytes of stack the frame takes (its 16-byte record at the bottom). */
  frameSize: z.number().int().min(16).max(496).multipleOf(16).optional(),
  /** The function-graph tracer hooked the return into this frame (return_to_handler in the LR slot). */
  fgraph: z.boolean().optional(),
  /** A kretprobe hooked the return into this frame (the trampoline in the LR slot). */
  kretprobe: z.boolean().optional(),
  /** This entry is where an exception interrupted `fn`: pt_regs lie between it and the entry before. */
  exception: exceptionDescSchema.optional(),
  /** The per-CPU stack this frame's record lives on (walks of `current` only). */
  stack: z.enum(STACK_NAMES).optional(),
});

export const corruptionSchema = z.strictObject({
  kind: z.enum(CORRUPTIONS),
  /** The frame whose saved record (or, for lr-not-after-call, whose pc) is corrupted. */
  frame: z.number().int().nonnegative().max(4095),
});

export const taskDescSchema = z.strictObject({
  pid: z.number().int().nonnegative().max(4194304).optional(),
  comm: z.string().optional(),
  /** Defaults from the outermost frame: ret_from_fork means a kernel thread. */
  kthread: z.boolean().optional(),
  state: z.string().length(1).optional(),
  cpu: z.number().int().nonnegative().max(511).optional(),
  /** The task is `current` on its CPU: walk it from its caller, not from cpu_context. */
  running: z.boolean().optional(),
  /** Innermost first, as a backtrace prints them; the last is the entry (el0t_64_sync, ret_from_fork...). */
  frames: z.array(frameDescSchema).min(1).max(4096),
  corrupt: z.array(corruptionSchema).max(64).optional(),
});

export const kernelDescSchema = z.strictObject({
  release: z.string().optional(),
  /** `mainline`: pt_regs->stackframe is a meta record (6.13+); `linux-6.1`: a plain frame record. */
  layout: z.enum(['mainline', 'linux-6.1']).default('mainline'),
  vaBits: z.union([z.literal(48), z.literal(52)]).default(48),
  pac: z.boolean().default(true),
  cpus: z.number().int().min(1).max(512).default(2),
  /** Map per-CPU IRQ/overflow/SDEI stacks (false: known but unreadable). */
  mapCpuStacks: z.boolean().default(true),
  initFreed: z.boolean().default(true),
  /**
   * Modules already unloaded (`delete_module`) while a stack still holds
   * return addresses into them: their text stays mapped but is no longer
   * module text, and kallsyms no longer names it.
   */
  unloadedModules: z.array(z.string().min(1).max(64)).max(64).default([]),
  /** Functions beyond the built-in catalogue, or overriding its sizes and sections. */
  functions: z.array(functionDescSchema).max(100_000).default([]),
  tasks: z.array(taskDescSchema).max(1_000_000).default([]),
});

export type FunctionDesc = z.infer<typeof functionDescSchema>;
export type FrameDesc = z.input<typeof frameDescSchema>;
export type CorruptionDesc = z.infer<typeof corruptionSchema>;
export type TaskDesc = z.input<typeof taskDescSchema>;
export type KernelDesc = z.input<typeof kernelDescSchema>;
export type KernelDescParsed = z.output<typeof kernelDescSchema>;
export type CorruptionKind = (typeof CORRUPTIONS)[number];
