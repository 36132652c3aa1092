import type { Addr } from '@klpsim/arm64';

/**
 * Where executable code lives, and the kernel's predicates over it
 * (kernel/extable.c, include/asm-generic/sections.h). The walk asks these for
 * every return address, so each is a few comparisons on plain numbers.
 */

/** A named half-open range of addresses. */
export interface TextRange {
  readonly name: string;
  readonly start: Addr;
  readonly end: Addr;
}

/** Kinds of generated code that `kernel_text_address` counts as text. */
export type GeneratedKind = 'ftrace-trampoline' | 'kprobe-insn-slot' | 'bpf-jit';

export interface GeneratedText extends TextRange {
  readonly kind: GeneratedKind;
}

export interface KernelTextLayout {
  /** `[_stext, _etext)`: core kernel text, with entry, sched, lock... text inside it. */
  readonly core: TextRange;
  /** `[_sinittext, _einittext)`, or null when the kernel has none. */
  readonly init: TextRange | null;
  /** Named sub-sections (entry_text, sched_text, ...), as the kernel's linker script places them. */
  readonly sections: readonly TextRange[];
}

export class KernelText {
  readonly core: TextRange;
  readonly init: TextRange | null;
  readonly sections: readonly TextRange[];
  /** After `free_initmem`: `kernel_text_address` stops accepting init text. */
  initFreed = true;
  private modules: TextRange[] = [];
  private generated: GeneratedText[] = [];
  // Flat copies of the ranges above for the hot path: [start0, end0, start1, end1, ...].
  private moduleRanges: Float64Array = new Float64Array(0);
  private generatedRanges: Float64Array = new Float64Array(0);
  private readonly schedStart: Addr;
  private readonly schedEnd: Addr;
  private readonly lockStart: Addr;
  private readonly lockEnd: Addr;

  constructor(layout: KernelTextLayout) {
    this.core = layout.core;
    this.init = layout.init;
    this.sections = layout.sections;
    const sched = this.section('sched_text');
    const lock = this.section('lock_text');
    this.schedStart = sched?.start ?? 0;
    this.schedEnd = sched?.end ?? 0;
    this.lockStart = lock?.start ?? 0;
    this.lockEnd = lock?.end ?? 0;
  }

  /** A copy whose module and generated-code lists are its own (module loads in a simulation). */
  clone(): KernelText {
    const t = new KernelText({ core: this.core, init: this.init, sections: this.sections });
    t.initFreed = this.initFreed;
    t.modules = [...this.modules];
    t.generated = [...this.generated];
    t.moduleRanges = this.moduleRanges;
    t.generatedRanges = this.generatedRanges;
    return t;
  }

  /** The named sub-section, or undefined. */
  section(name: string): TextRange | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Makes a module's text live (module load). */
  addModule(range: TextRange): void {
    this.modules.push(range);
    this.moduleRanges = flatten(this.modules);
  }

  /** Module unload: its text is no longer text. */
  removeModule(name: string): void {
    this.modules = this.modules.filter((m) => m.name !== name);
    this.moduleRanges = flatten(this.modules);
  }

  /** Adds a generated code area (ftrace trampoline, kprobe slot page, BPF image). */
  addGenerated(range: GeneratedText): void {
    this.generated.push(range);
    this.generatedRanges = flatten(this.generated);
  }

  loadedModules(): readonly TextRange[] {
    return this.modules;
  }

  generatedAreas(): readonly GeneratedText[] {
    return this.generated;
  }

  /** `is_kernel_text`: inside `[_stext, _etext)`. */
  isKernelText(a: Addr): boolean {
    return a >= this.core.start && a < this.core.end;
  }

  /** `is_kernel_inittext`: inside `[_sinittext, _einittext)`, freed or not. */
  isKernelInittext(a: Addr): boolean {
    const init = this.init;
    return init !== null && a >= init.start && a < init.end;
  }

  /** `core_kernel_text`: core text, and init text only until it is freed. */
  coreKernelText(a: Addr): boolean {
    return this.isKernelText(a) || (!this.initFreed && this.isKernelInittext(a));
  }

  /** `is_module_text_address` over the loaded modules. */
  isModuleText(a: Addr): boolean {
    return inRanges(this.moduleRanges, a);
  }

  /** Ftrace trampolines, kprobe instruction slots and BPF JIT images. */
  isGeneratedText(a: Addr): boolean {
    return inRanges(this.generatedRanges, a);
  }

  /** `kernel_text_address` (kernel/extable.c): core, module or generated text. */
  kernelTextAddress(a: Addr): boolean {
    return this.coreKernelText(a) || this.isModuleText(a) || this.isGeneratedText(a);
  }

  /**
   * `__kernel_text_address`: as `kernel_text_address`, and init text always,
   * even after it was freed ("there might be init symbols in saved stacktraces").
   */
  kernelTextAddressOrInit(a: Addr): boolean {
    return this.kernelTextAddress(a) || this.isKernelInittext(a);
  }

  /** `in_sched_functions`: sched or lock text (what `stack_trace_save_tsk` skips). */
  inSchedFunctions(a: Addr): boolean {
    return (a >= this.schedStart && a < this.schedEnd) || (a >= this.lockStart && a < this.lockEnd);
  }

  /** A short name for where `a` lies, for explanations (not the hot path). */
  describe(a: Addr): string {
    for (const s of this.sections) if (a >= s.start && a < s.end) return s.name;
    if (this.isKernelText(a)) return 'text';
    if (this.isKernelInittext(a)) return this.initFreed ? 'init text (freed)' : 'init text';
    for (const m of this.modules) if (a >= m.start && a < m.end) return `module ${m.name}`;
    for (const g of this.generated) if (a >= g.start && a < g.end) return `${g.kind} ${g.name}`;
    return 'not text';
  }
}

function flatten(ranges: readonly TextRange[]): Float64Array<ArrayBuffer> {
  const out = new Float64Array(ranges.length * 2);
  ranges.forEach((r, i) => {
    out[2 * i] = r.start;
    out[2 * i + 1] = r.end;
  });
  return out;
}

function inRanges(ranges: Float64Array, a: Addr): boolean {
  for (let i = 0; i < ranges.length; i += 2) {
    if (a >= ranges[i]! && a < ranges[i + 1]!) return true;
  }
  return false;
}
