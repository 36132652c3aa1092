import type { Addr } from '@klpsim/arm64';
import type { Machine } from '@klpsim/kernel';
import { analyseFunction, type FunctionFrames } from './analyse.js';

/**
 * The functions of a Machine's text, with bounds as kallsyms gives them
 * (each symbol runs to the next symbol with a higher address, the last one
 * to the end of its text), and the analysis of each over the words the
 * Machine holds: for a real capture the post-patching text dump, so
 * alternatives, static keys and ftrace call sites are what runs.
 */

/** A function's place in the text. */
export interface FunctionBounds {
  readonly name: string;
  readonly start: Addr;
  readonly end: Addr;
  /** Null for core kernel text. */
  readonly module: string | null;
}

/** Every function of the text, lowest first; an alias takes its first name. */
export function kernelFunctions(machine: Machine): FunctionBounds[] {
  const out: FunctionBounds[] = [];
  const text = machine.text;
  const ranges = [text.core, ...(text.init !== null ? [text.init] : [])];
  const core = machine.kallsyms.coreSymbols();
  for (const range of ranges) {
    const syms = core.filter((s) => s.address >= range.start && s.address < range.end);
    pushSized(out, syms, range.end, null);
  }
  for (const m of text.loadedModules()) {
    const syms = machine.kallsyms.moduleSymbols(m.name);
    pushSized(out, syms, m.end, m.name);
  }
  return out;
}

function pushSized(
  out: FunctionBounds[],
  syms: readonly { name: string; address: Addr }[],
  end: Addr,
  module: string | null,
): void {
  for (let i = 0; i < syms.length; i++) {
    const s = syms[i]!;
    if (i > 0 && syms[i - 1]!.address === s.address) continue;
    let j = i + 1;
    while (j < syms.length && syms[j]!.address === s.address) j++;
    const stop = j < syms.length ? syms[j]!.address : end;
    if (stop > s.address) out.push({ name: s.name, start: s.address, end: stop, module });
  }
}

/** The analysis of one function of `machine`; refused as SYM_CODE when it is. */
export function analyseKernelFunction(machine: Machine, f: FunctionBounds): FunctionFrames {
  const words = readWords(machine, f.start, f.end);
  if (words === null)
    return analyseFunction(f.name, f.start, new Uint32Array(0), {
      refuseAs: 'text-not-dumped',
      size: f.end - f.start,
    });
  if (machine.symCode.contains(f.start))
    return analyseFunction(f.name, f.start, words, { refuseAs: 'sym-code' });
  const memory = machine.memory;
  return analyseFunction(f.name, f.start, words, { readText: (a) => memory.read32(a) });
}

/** The words of `[start, end)`, or null when the Machine does not hold them all. */
function readWords(machine: Machine, start: Addr, end: Addr): Uint32Array | null {
  const region = machine.memory.regionOf(start, end - start);
  if (region === null || start % 4 !== 0) return null;
  const i = (start - region.start) / 4;
  return region.words.subarray(i, i + (end - start) / 4);
}
