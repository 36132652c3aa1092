import { type Addr, foldAddress, stripInsnPac } from '@klpsim/arm64';
import type { Kallsyms } from './kallsyms.js';
import type { Memory } from './memory.js';
import type { SymCodeFunctions } from './symcode.js';
import type { Task } from './task.js';
import type { KernelText, TextRange } from './text.js';

/** `struct frame_record_meta` (6.13+): `{fp = 0, lr = 0, type}` in `pt_regs->stackframe`. */
export interface MetaRecordLayout {
  /** Offset of `type` from the start of the record. */
  readonly typeOffset: number;
  /** `sizeof(struct frame_record_meta)`: 24. */
  readonly size: number;
  readonly typeFinal: number;
  readonly typePtRegs: number;
}

/** The parts of `struct pt_regs` the unwinder reads. */
export interface PtRegsLayout {
  readonly size: number;
  readonly stackframeOffset: number;
  readonly pcOffset: number;
  readonly regs29Offset: number;
  /** Present on kernels whose `stackframe` is a meta record (6.13+). */
  readonly meta: MetaRecordLayout | null;
}

export interface KernelConfig {
  readonly release: string;
  readonly vaBits: number;
  /** High word of `ptrauth_kernel_pac_mask()`: computed once, used by every strip (a no-op on a canonical address, so kernels without PAC need no special case). */
  readonly pacKernelMask: number;
  /** High word of `ptrauth_user_pac_mask()`. */
  readonly pacUserMask: number;
  readonly kernelPacEnabled: boolean;
  readonly threadSize: number;
  readonly ptRegs: PtRegsLayout;
  readonly kallsymsAll: boolean;
  readonly functionGraphTracer: boolean;
  readonly kretprobes: boolean;
  /**
   * Dynamic ftrace with a patchable function entry (`mov x9, x30; nop` at
   * each traceable function's start): the text tells which functions have an
   * ftrace location. False for built kernels, whose text has no such pads.
   */
  readonly ftracePatchableEntry: boolean;
}

/** Addresses the unwinder compares return addresses against. */
export interface SpecialAddresses {
  readonly returnToHandler: Addr | null;
  readonly kretprobeTrampoline: Addr | null;
  readonly retFromFork: Addr | null;
  /** `__switch_to`, then `__schedule`: where a blocked task's walk must begin. */
  readonly switchTo: TextRange | null;
  readonly schedule: TextRange | null;
}

/** The kinds of stack `stack_info` can describe (asm/stacktrace/common.h). */
export const StackType = {
  UNKNOWN: 0,
  TASK: 1,
  IRQ: 2,
  OVERFLOW: 3,
  SDEI_NORMAL: 4,
  SDEI_CRITICAL: 5,
  EFI: 6,
} as const;
export type StackType = (typeof StackType)[keyof typeof StackType];

export const STACK_TYPE_NAMES = [
  'unknown',
  'task',
  'irq',
  'overflow',
  'sdei_normal',
  'sdei_critical',
  'efi',
] as const;
export type StackTypeName = (typeof STACK_TYPE_NAMES)[number];

/** A per-CPU stack: `[low, high)`. */
export interface CpuStack {
  readonly low: Addr;
  readonly high: Addr;
}

export interface Cpu {
  readonly id: number;
  readonly online: boolean;
  readonly irqStack: CpuStack | null;
  readonly overflowStack: CpuStack | null;
  readonly sdeiNormalStack: CpuStack | null;
  readonly sdeiCriticalStack: CpuStack | null;
  /** The EFI runtime services stack, used only inside an EFI call. */
  readonly efiStack: CpuStack | null;
}

/** A task that could not be captured (running), kept so reports can name it. */
export interface SkippedTask {
  readonly pid: number;
  readonly comm: string;
  readonly cpu: number | null;
  readonly reason: string;
}

/** A whole simulated (or captured) kernel. */
export interface Machine {
  readonly config: KernelConfig;
  readonly memory: Memory;
  readonly text: KernelText;
  readonly kallsyms: Kallsyms;
  readonly symCode: SymCodeFunctions;
  readonly special: SpecialAddresses;
  readonly cpus: readonly Cpu[];
  readonly tasks: readonly Task[];
  readonly skippedTasks: readonly SkippedTask[];
}

/**
 * `ptrauth_strip_insn_pac` as this kernel does it: bit 55 picks the half
 * (arm64 `xpaclri`); without CONFIG_ARM64_PTR_AUTH_KERNEL the identity
 * (asm/compiler.h). Folded; NaN when the result is not canonical.
 */
export function ptrauthStripInsnPac(config: KernelConfig, hi: number, lo: number): Addr {
  return config.kernelPacEnabled
    ? stripInsnPac(hi, lo, config.pacKernelMask, config.pacUserMask)
    : foldAddress(hi, lo);
}
