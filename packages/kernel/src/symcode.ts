import type { Addr } from '@klpsim/arm64';
import type { KernelSymbol } from './kallsyms.js';
import { upperBound } from './search.js';
import type { TextRange } from './text.js';

/**
 * `sym_code_functions`: the address ranges of SYM_CODE assembly, which does
 * not follow the procedure call standard, so a return address inside one
 * cannot be unwound through reliably. The 2021 series collected them with a
 * SYM_CODE_END() that emitted `{start, end}` into a section; a real capture
 * has no such section, so `deriveSymCodeFunctions` rebuilds the list from
 * the sections that hold nothing but SYM_CODE and from the SYM_CODE symbols
 * of arch/arm64 by name (docs/sym-code-functions.md lists both).
 */

/** One SYM_CODE range and where the list got it from. */
export interface SymCodeRange extends TextRange {
  /** The kernel source that defines it. */
  readonly source: string;
}

/** Text sections whose every symbol is SYM_CODE. */
export const SYM_CODE_SECTIONS: ReadonlyArray<{ section: string; source: string }> = [
  {
    section: 'entry_text',
    source: 'arch/arm64/kernel/entry.S (vectors, el*_* handlers, ret_to_user, ret_to_kernel)',
  },
  {
    section: 'idmap_text',
    source: 'arch/arm64/kernel/head.S, sleep.S, cpu-reset.S, arch/arm64/mm/proc.S',
  },
  { section: 'hyp_idmap_text', source: 'arch/arm64/kvm/hyp/nvhe/hyp-init.S' },
  { section: 'hibernate_exit_text', source: 'arch/arm64/kernel/hibernate-asm.S' },
  { section: 'relocate_new_kernel', source: 'arch/arm64/kernel/relocate_kernel.S' },
  { section: 'entry_tramp_text', source: 'arch/arm64/kernel/entry.S (tramp_vectors)' },
];

/** SYM_CODE functions that live in ordinary text, by name. */
export const SYM_CODE_SYMBOLS: ReadonlyArray<{ name: string; source: string }> = [
  { name: 'ret_from_fork', source: 'arch/arm64/kernel/entry.S' },
  { name: '__sdei_asm_handler', source: 'arch/arm64/kernel/entry.S' },
  { name: '__sdei_asm_exit_trampoline', source: 'arch/arm64/kernel/entry.S' },
  { name: 'ftrace_caller', source: 'arch/arm64/kernel/entry-ftrace.S' },
  { name: 'ftrace_regs_caller', source: 'arch/arm64/kernel/entry-ftrace.S' },
  { name: 'ftrace_common', source: 'arch/arm64/kernel/entry-ftrace.S' },
  { name: 'ftrace_graph_caller', source: 'arch/arm64/kernel/entry-ftrace.S' },
  { name: 'return_to_handler', source: 'arch/arm64/kernel/entry-ftrace.S' },
  { name: '__kretprobe_trampoline', source: 'arch/arm64/kernel/probes/kprobes_trampoline.S' },
  {
    name: 'kretprobe_trampoline',
    source: 'arch/arm64/kernel/probes/kprobes_trampoline.S (before 5.16)',
  },
  { name: 'arch_rethook_trampoline', source: 'arch/arm64/kernel/rethook_trampoline.S' },
  { name: 'primary_entry', source: 'arch/arm64/kernel/head.S' },
  { name: 'efi_enter_kernel', source: 'arch/arm64/kernel/efi-entry.S' },
  { name: '__efi_rt_asm_recover', source: 'arch/arm64/kernel/efi-rt-wrapper.S' },
  { name: '__hyp_stub_vectors', source: 'arch/arm64/kernel/hyp-stub.S' },
  { name: 'elx_sync', source: 'arch/arm64/kernel/hyp-stub.S' },
  { name: 'swsusp_arch_suspend_exit', source: 'arch/arm64/kernel/hibernate-asm.S' },
  { name: 'arm64_relocate_new_kernel', source: 'arch/arm64/kernel/relocate_kernel.S' },
  { name: 'cpu_soft_restart', source: 'arch/arm64/kernel/cpu-reset.S' },
  { name: 'cpu_resume', source: 'arch/arm64/kernel/sleep.S' },
];

const PAGE = 4096;
const MAX_MAPPED = 2 ** 32;

/** A sorted, non-overlapping set of SYM_CODE ranges with a fast membership test. */
export class SymCodeFunctions {
  readonly ranges: readonly SymCodeRange[];
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  /**
   * One byte per 4 KiB page of [mapLo, mapHi): 1 where some range touches
   * the page. Most return addresses are in pages with no SYM_CODE at all,
   * and one load settles them without a search.
   */
  private readonly pages: Uint8Array;
  private readonly mapLo: number;
  private readonly mapHi: number;

  constructor(ranges: readonly SymCodeRange[]) {
    const sorted = ranges.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
    this.ranges = sorted;
    // Membership only needs the union: a named symbol may sit inside a listed section.
    const starts: number[] = [];
    const ends: number[] = [];
    for (const r of sorted) {
      const last = ends.length - 1;
      if (last >= 0 && r.start <= ends[last]!) ends[last] = Math.max(ends[last]!, r.end);
      else {
        starts.push(r.start);
        ends.push(r.end);
      }
    }
    this.starts = Float64Array.from(starts);
    this.ends = Float64Array.from(ends);
    const lo = starts.length > 0 ? Math.floor(starts[0]! / PAGE) * PAGE : 0;
    const hi = ends.length > 0 ? ends[ends.length - 1]! : 0;
    // Ranges spread over more than 4 GiB (modules far from the kernel) get no map.
    const npages = hi > lo && hi - lo <= MAX_MAPPED ? Math.ceil((hi - lo) / PAGE) : 0;
    this.pages = new Uint8Array(npages);
    this.mapLo = npages > 0 ? lo : 0;
    this.mapHi = npages > 0 ? lo + npages * PAGE : 0;
    for (let i = 0; i < starts.length && npages > 0; i++) {
      for (let p = Math.floor((starts[i]! - lo) / PAGE); p * PAGE + lo < ends[i]!; p++)
        this.pages[p] = 1;
    }
  }

  /** True when `pc` lies in some SYM_CODE range (a binary search over their union). */
  contains(pc: Addr): boolean {
    if (pc >= this.mapLo && pc < this.mapHi && this.pages[(pc - this.mapLo) >>> 12] === 0)
      return false;
    const i = upperBound(this.starts, pc);
    return i > 0 && pc < this.ends[i - 1]!;
  }

  /** The range containing `pc`, for explanations (not the hot path). */
  find(pc: Addr): SymCodeRange | undefined {
    return this.ranges.find((r) => pc >= r.start && pc < r.end);
  }
}

/**
 * Rebuilds `sym_code_functions` for a real kernel: every SYM_CODE-only
 * section, plus each named SYM_CODE symbol sized up to the next symbol.
 */
export function deriveSymCodeFunctions(
  sections: readonly TextRange[],
  coreSymbols: readonly KernelSymbol[],
): SymCodeRange[] {
  const out: SymCodeRange[] = [];
  for (const { section, source } of SYM_CODE_SECTIONS) {
    const s = sections.find((r) => r.name === section);
    if (s !== undefined && s.end > s.start)
      out.push({ name: section, start: s.start, end: s.end, source });
  }
  const wanted = new Map(SYM_CODE_SYMBOLS.map((s) => [s.name, s.source]));
  for (let i = 0; i < coreSymbols.length; i++) {
    const sym = coreSymbols[i]!;
    const source = wanted.get(sym.name);
    if (source === undefined) continue;
    wanted.delete(sym.name);
    let j = i + 1;
    while (j < coreSymbols.length && coreSymbols[j]!.address <= sym.address) j++;
    if (j >= coreSymbols.length) continue;
    out.push({ name: sym.name, start: sym.address, end: coreSymbols[j]!.address, source });
  }
  return out;
}
