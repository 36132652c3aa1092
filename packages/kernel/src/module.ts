import type { Addr } from '@klpsim/arm64';
import { fail, type InputError, ok, type Result } from './errors.js';
import type { KernelSymbol } from './kallsyms.js';
import type { Machine } from './machine.js';
import type { MemoryRegion } from './memory.js';

/**
 * Modules come and go on a running kernel (kernel/module/main.c): loading
 * makes a module's text text, its symbols kallsyms symbols and its bytes
 * readable; unloading undoes all three. One call each, so no caller can do
 * half of it.
 */

/** A module as the loader sees it: its text range, its text symbols and (when known) its bytes. */
export interface KernelModule {
  readonly name: string;
  readonly start: Addr;
  readonly end: Addr;
  readonly symbols: readonly KernelSymbol[];
  /** The text's bytes, or null when only the range and the symbols are known. */
  readonly bytes: Uint8Array | null;
}

/** Loads a module; fails if one of that name is loaded or its text would overlap mapped memory. */
export function loadModule(machine: Machine, mod: KernelModule): Result<void, InputError> {
  if (machine.text.loadedModules().some((m) => m.name === mod.name))
    return fail({ code: 'KLPSIM_INPUT_INVALID', message: `module ${mod.name} is already loaded` });
  if (mod.bytes !== null) {
    const r = machine.memory.map(`module ${mod.name}`, mod.start, mod.bytes);
    if (!r.ok) return r;
  }
  machine.text.addModule({ name: mod.name, start: mod.start, end: mod.end });
  machine.kallsyms.addModule(mod.name, mod.start, mod.end, mod.symbols);
  return ok(undefined);
}

/** Unloads a module; returns it as it was (so it can be loaded again), or null if it was not loaded. */
export function unloadModule(machine: Machine, name: string): KernelModule | null {
  const range = machine.text.loadedModules().find((m) => m.name === name);
  if (range === undefined) return null;
  const region = moduleRegion(machine, name);
  const mod: KernelModule = {
    name,
    start: range.start,
    end: range.end,
    symbols: machine.kallsyms.moduleSymbols(name),
    bytes: region === null ? null : region.bytes.slice(0, range.end - range.start),
  };
  if (region !== null) machine.memory.unmap(region);
  machine.text.removeModule(name);
  machine.kallsyms.removeModule(name);
  return mod;
}

function moduleRegion(machine: Machine, name: string): MemoryRegion | null {
  return machine.memory.list().find((r) => r.name === `module ${name}`) ?? null;
}

/**
 * A machine of its own for a simulation: module lists, kallsyms' module
 * tables and the memory map are copies, while text, stacks and symbols are
 * shared (nothing in a simulation writes them). Whatever the copy loads,
 * unloads or maps, the original never sees it.
 */
export function cloneMachine(machine: Machine): Machine {
  return {
    ...machine,
    memory: machine.memory.clone(),
    text: machine.text.clone(),
    kallsyms: machine.kallsyms.clone(),
  };
}
